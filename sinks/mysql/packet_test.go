package mysql_test

import (
	"testing"

	"github.com/sluice-cdc/sluice/internal/testenv"
)

// TestGroupsFitMaxAllowedPacket: rows batched into multi-row statements
// (INSERT, DELETE ... IN, batched UPDATE) are counted against the target's
// max_allowed_packet before their statement is written, not only after.
// Each transaction's 400 rows of 12 KB would make one 5 MB statement; the
// target takes 1 MiB packets.
func TestGroupsFitMaxAllowedPacket(t *testing.T) {
	src := testenv.StartMariaDB(t, testenv.MariaDBOptions{Args: []string{"--max-allowed-packet=64M"}})
	dst := testenv.StartMariaDB(t, testenv.MariaDBOptions{Args: []string{"--max-allowed-packet=1M"}})
	schema := []string{"CREATE DATABASE p", "CREATE TABLE p.t (id INT PRIMARY KEY, b BLOB, s TEXT)"}
	src.Exec(t, schema...)
	dst.Exec(t, schema...)
	txns := sourceTxns(t, src,
		"INSERT INTO p.t SELECT seq, REPEAT(UNHEX('A5'), 4000), REPEAT('x', 8000) FROM p.seq_1_to_400",
		"UPDATE p.t SET b = REPEAT(UNHEX('5A'), 4000), s = REPEAT('y', 8000)",
		"DELETE FROM p.t WHERE id % 2 = 0")
	s := openSink(t, dst, "apply", "stop")
	if err := applyAll(t, s, txns); err != nil {
		t.Fatal(err)
	}
	if a, b := src.Checksums(t, "p.t"), dst.Checksums(t, "p.t"); a != b {
		t.Fatalf("checksums differ:\nsource %s\ntarget %s", a, b)
	}
	const q = "SELECT id, MD5(b), MD5(s) FROM p.t ORDER BY id"
	if a, b := rows(t, src, q), rows(t, dst, q); a != b || a == "" {
		t.Fatalf("rows differ:\nsource %.300s\ntarget %.300s", a, b)
	}
}
