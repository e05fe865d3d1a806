package mysql_test

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/sluice-cdc/sluice/binlog"
	"github.com/sluice-cdc/sluice/checkpoint"
	"github.com/sluice-cdc/sluice/internal/testenv"
	"github.com/sluice-cdc/sluice/mysqlconn"
	mysqlsink "github.com/sluice-cdc/sluice/sinks/mysql"
)

// TestSnapshotProgressResume: a sluice.snapshot made before chunk-level
// resume gets its columns when read (its rows keep their position, with no
// resume key); a chunk's transaction then records its end key and count,
// a resumed copy's begin keeps them with its first part's position, and
// the table's Start is that first position.
func TestSnapshotProgressResume(t *testing.T) {
	dst := testenv.StartMariaDB(t, testenv.MariaDBOptions{})
	dst.Exec(t, "CREATE DATABASE sluice", `CREATE TABLE sluice.snapshot (pipeline VARCHAR(190) NOT NULL, source VARCHAR(190) NOT NULL,
		table_schema VARCHAR(64) NOT NULL, table_name VARCHAR(64) NOT NULL, gtid_set LONGTEXT NOT NULL, binlog_file VARCHAR(255) NOT NULL,
		binlog_pos BIGINT UNSIGNED NOT NULL, rows_copied BIGINT UNSIGNED NOT NULL, done TINYINT NOT NULL, updated_at DATETIME(6) NOT NULL,
		PRIMARY KEY (pipeline, source, table_schema, table_name)) ENGINE=InnoDB`,
		"INSERT INTO sluice.snapshot VALUES ('t', 'src', 'app', 'old', '0-1-5', 'bin.000001', 4, 7, 1, NOW(6))",
		"CREATE DATABASE app", "CREATE TABLE app.t (id INT PRIMARY KEY)")
	s := openSink(t, dst, "", "")
	ctx := context.Background()
	have, err := s.SnapshotTables(ctx, "src")
	if err != nil {
		t.Fatal(err)
	}
	if len(have) != 1 || have[0].Start().GTID.String() != "0-1-5" || have[0].After != nil || !have[0].Done || have[0].Rows != 7 {
		t.Fatalf("old progress read as %+v", have)
	}

	tbl := &binlog.Table{Schema: "app", Name: "t", Columns: []binlog.Column{{Name: "id", Type: 3}}, PK: []int{0}}
	p1, _ := binlog.ParseGTIDSet("0-1-10")
	ts := checkpoint.TableSnapshot{Schema: "app", Table: "t", At: checkpoint.State{GTID: p1}, From: checkpoint.State{GTID: p1}, Definition: "d1"}
	if err := s.BeginSnapshotTable(ctx, "src", ts, tbl, false); err != nil {
		t.Fatal(err)
	}
	for i, after := range []string{"(`id`>2)", "(`id`>4)"} {
		c := ts
		c.After = []byte(after)
		rows := []*binlog.Change{{Table: tbl, Op: binlog.Insert, After: []binlog.Value{int64(2*i + 1)}}, {Table: tbl, Op: binlog.Insert, After: []binlog.Value{int64(2*i + 2)}}}
		if err := s.WriteSnapshotRows(ctx, "src", c, rows, func(context.Context) error { return nil }); err != nil {
			t.Fatal(err)
		}
	}
	got := progressOf(t, s, "app.t")
	if string(got.After) != "(`id`>4)" || got.Chunks != 2 || got.Rows != 4 || got.Done || got.Definition != "d1" {
		t.Fatalf("after two chunks: %+v", got)
	}
	// The resume: a new position, the rest read after After.
	p2, _ := binlog.ParseGTIDSet("0-1-20")
	got.At = checkpoint.State{GTID: p2}
	if err := s.BeginSnapshotTable(ctx, "src", got, tbl, false); err != nil {
		t.Fatal(err)
	}
	got = progressOf(t, s, "app.t")
	if got.Start().GTID.String() != "0-1-10" || got.At.GTID.String() != "0-1-20" || string(got.After) != "(`id`>4)" || got.Chunks != 2 || got.Rows != 4 {
		t.Fatalf("resumed: %+v", got)
	}
	if r := rows(t, dst, "SELECT COUNT(*) FROM app.t"); r != "4" {
		t.Fatalf("target rows %s", r)
	}
}

func progressOf(t *testing.T, s interface {
	SnapshotTables(context.Context, string) ([]checkpoint.TableSnapshot, error)
}, name string) checkpoint.TableSnapshot {
	t.Helper()
	have, err := s.SnapshotTables(context.Background(), "src")
	if err != nil {
		t.Fatal(err)
	}
	for _, ts := range have {
		if ts.Name() == name {
			return ts
		}
	}
	t.Fatalf("no progress for %s in %+v", name, have)
	return checkpoint.TableSnapshot{}
}

// The initial snapshot's rows are written on sessions whose character set
// is binary (the target then neither converts nor scans their text as
// multi-byte), which write the binlog unless snapshot_binlog: skip, without
// the INSERTs' text when the user may say so (BINLOG ADMIN), and with it
// otherwise; the streamed transactions' sessions stay utf8mb4 and logged.
func TestSnapshotRowsSession(t *testing.T) {
	dst := testenv.StartMariaDB(t, testenv.MariaDBOptions{})
	dst.Exec(t, "CREATE USER 'plain'@'%' IDENTIFIED BY 'pw'", "GRANT ALL ON *.* TO 'plain'@'%'", "REVOKE SUPER, BINLOG ADMIN ON *.* FROM 'plain'@'%'")
	for _, tc := range []struct {
		name             string
		dsn              string
		skip             bool
		logBin, annotate int
	}{
		{"logged", dst.DSN(), false, 1, 0},
		{"skip", dst.DSN(), true, 0, 1},
		{"logged, no BINLOG ADMIN", dst.UserDSN("plain", "pw"), false, 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := mysqlconn.ParseDSN(tc.dsn)
			if err != nil {
				t.Fatal(err)
			}
			s, err := mysqlsink.Open(context.Background(), mysqlsink.Config{DSN: d, Pipeline: "t", SnapshotSkipBinlog: tc.skip, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			charset, logBin, annotate, err := s.RowsSessionForTest(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if charset != "binary" || logBin != tc.logBin || annotate != tc.annotate {
				t.Errorf("rows written on a session of character set %s, sql_log_bin %d, binlog_annotate_row_events %d; want binary, %d, %d",
					charset, logBin, annotate, tc.logBin, tc.annotate)
			}
		})
	}
}

// TestSnapshotRowsPrepared: on a MariaDB target a chunk's rows go as
// prepared INSERTs of 500 rows, the tail as literals, and all as literals
// when the server has no prepared statement to spare; the rows are the
// same either way.
func TestSnapshotRowsPrepared(t *testing.T) {
	const statementFormat = "bulk refused (binlog_format = STATEMENT)"
	dst := testenv.StartMariaDB(t, testenv.MariaDBOptions{})
	ctx := context.Background()
	tbl := &binlog.Table{Schema: "app", Name: "p", PK: []int{0}, Columns: []binlog.Column{
		{Name: "id", Type: mysql.MYSQL_TYPE_LONG}, {Name: "v", Type: mysql.MYSQL_TYPE_VARCHAR, Charset: "latin1"}}}
	status := func(name string) int {
		n, err := strconv.Atoi(rows(t, dst, "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = '"+name+"'"))
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	for _, tc := range []struct {
		name     string
		prepared bool // without the bulk command: prepared multi-row INSERTs
		maxStmts int
		raw      int // a row whose text is RawText, which goes as a literal
		executes int
	}{
		{"bulk", false, 16382, -1, 1},                         // one command for the 1,203 rows
		{"bulk, then a literal", false, 16382, 600, 1},        // rows 0-599 in one command
		{"bulk, out of prepared statements", false, 0, -1, 0}, // all literals
		{"prepared", true, 16382, -1, 3},                      // 500, 500, then the 203 left
		{"prepared, a literal in the second statement", true, 16382, 600, 1},
		{"prepared, out of prepared statements", true, 0, -1, 0},
		// binlog_format = STATEMENT: the server refuses the bulk command
		// (counted), and the sink goes on with prepared statements.
		{statementFormat, false, 16382, -1, 1 + 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst.Exec(t, "DROP DATABASE IF EXISTS app", "DROP DATABASE IF EXISTS sluice", "CREATE DATABASE app",
				"CREATE TABLE app.p (id INT PRIMARY KEY, v VARCHAR(20) CHARACTER SET latin1)")
			if tc.name == statementFormat {
				dst.Exec(t, "SET GLOBAL binlog_format = STATEMENT")
				defer dst.Exec(t, "SET GLOBAL binlog_format = ROW")
			}
			s := openSink(t, dst, "", "")
			if tc.prepared {
				if err := s.WithoutBulkForTest(ctx); err != nil {
					t.Fatal(err)
				}
			}
			ts := checkpoint.TableSnapshot{Schema: "app", Table: "p", Definition: "d"}
			if err := s.BeginSnapshotTable(ctx, "src", ts, tbl, false); err != nil {
				t.Fatal(err)
			}
			// Only the chunk's statements are prepared from here on (the
			// sink's other queries with arguments are prepared too).
			dst.Exec(t, fmt.Sprintf("SET GLOBAL max_prepared_stmt_count = %d", tc.maxStmts))
			defer dst.Exec(t, "SET GLOBAL max_prepared_stmt_count = DEFAULT")
			var chunk []*binlog.Change
			for i := range 1203 {
				chunk = append(chunk, &binlog.Change{Table: tbl, Op: binlog.Insert, After: []binlog.Value{int64(i), fmt.Sprintf("café %d", i)}})
			}
			chunk[7].After[1] = nil
			if tc.raw >= 0 {
				chunk[tc.raw].After[1] = binlog.RawText{Bytes: []byte(fmt.Sprintf("caf\xe9 %d", tc.raw)), Charset: "latin1"}
			}
			before := status("COM_STMT_EXECUTE")
			ts.After = []byte("(`id`>1202)")
			if err := s.WriteSnapshotRows(ctx, "src", ts, chunk, func(context.Context) error { return nil }); err != nil {
				t.Fatal(err)
			}
			dst.Exec(t, "SET GLOBAL max_prepared_stmt_count = DEFAULT")
			if got := status("COM_STMT_EXECUTE") - before; got != tc.executes {
				t.Errorf("%d prepared statements executed, want %d", got, tc.executes)
			}
			sum := "SELECT CONCAT(COUNT(*), ' ', COUNT(v), ' ', BIT_XOR(CRC32(CONCAT_WS(',', id, HEX(v))))) FROM "
			want := rows(t, dst, sum+"(SELECT seq AS id, IF(seq = 7, NULL, CONVERT(CONCAT('café ', seq) USING latin1)) AS v FROM app.seq_0_to_1202) w")
			if got := rows(t, dst, sum+"app.p"); got != want {
				t.Errorf("target rows: count, non-NULL, checksum %s, want %s", got, want)
			}
			if p := progressOf(t, s, "app.p"); p.Rows != 1203 || p.Chunks != 1 {
				t.Errorf("progress %+v", p)
			}
		})
	}
}
