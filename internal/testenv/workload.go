package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"
)

// BinlogWorkloadSchema is the table the generated binlog workloads write:
// integers, a decimal, temporal values, text and a JSON document, the mix
// of a typical OLTP row.
const BinlogWorkloadSchema = `CREATE TABLE bench.orders (
	id BIGINT UNSIGNED PRIMARY KEY,
	customer INT NOT NULL,
	status ENUM('new','paid','shipped','cancelled') NOT NULL,
	amount DECIMAL(12,2) NOT NULL,
	qty SMALLINT NOT NULL,
	created DATETIME(6) NOT NULL,
	updated TIMESTAMP(3) NULL,
	email VARCHAR(100) NOT NULL,
	note TEXT,
	attrs JSON
)`

// WriteBinlogWorkload fills a server's binlog with about mb megabytes of
// row events: inserts in 200-row transactions, then updates and deletes.
// It returns the paths of the binlog files, in order.
func WriteBinlogWorkload(t testing.TB, m *MariaDB, mb int) []string {
	t.Helper()
	// One inserted row logs about 330 bytes; an update logs two images.
	rows := mb * 1024 * 1024 / 330 * 10 / 16
	m.Exec(t, "CREATE DATABASE bench", "USE bench", BinlogWorkloadSchema)
	const batch = 200
	var stmts []string
	stmts = append(stmts, "USE bench")
	for lo := 1; lo <= rows; lo += batch {
		hi := min(lo+batch-1, rows)
		stmts = append(stmts, fmt.Sprintf(`INSERT INTO orders SELECT seq, seq %% 5000,
			ELT(1 + seq %% 4, 'new','paid','shipped','cancelled'), seq * 1.37 %% 100000, 1 + seq %% 20,
			'2024-01-01 00:00:00' + INTERVAL seq SECOND + INTERVAL seq %% 1000000 MICROSECOND,
			'2024-06-01 00:00:00' + INTERVAL seq MINUTE,
			CONCAT('customer', seq %% 5000, '@example.com'),
			REPEAT(CONCAT('note ', seq, ' '), 8),
			CONCAT('{"sku": "SKU-', seq, '", "tags": ["a", "b"], "weight": ', seq %% 97, '.5}')
			FROM seq_%d_to_%d`, lo, hi))
	}
	for lo := 1; lo <= rows/2; lo += batch {
		stmts = append(stmts, fmt.Sprintf("UPDATE orders SET status = 'shipped', amount = amount + 1, updated = '2024-07-01 00:00:00' WHERE id BETWEEN %d AND %d", lo, lo+batch-1))
	}
	for lo := rows / 2; lo <= rows/2+rows/8; lo += batch {
		stmts = append(stmts, fmt.Sprintf("DELETE FROM orders WHERE id BETWEEN %d AND %d", lo, lo+batch-1))
	}
	m.Exec(t, stmts...)
	m.Exec(t, "FLUSH BINARY LOGS")
	files, _ := filepath.Glob(filepath.Join(m.Dir, "data", "bin.[0-9]*"))
	sort.Strings(files)
	return files[:len(files)-1] // the last one is the new, empty log
}

// FileSize is the total size of files.
func FileSize(files []string) int64 {
	var n int64
	for _, f := range files {
		if st, err := os.Stat(f); err == nil {
			n += st.Size()
		}
	}
	return n
}
