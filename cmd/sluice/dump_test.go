package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/sluice-cdc/sluice/internal/testenv"
)

func run(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = realMain(args, &out, &errb)
	return out.String(), errb.String(), code
}

// TestDumpLive is what a new user tries first: dump a live server from
// the start and stop at the end.
func TestDumpLive(t *testing.T) {
	m := testenv.StartMariaDB(t, testenv.MariaDBOptions{})
	m.Exec(t,
		"CREATE DATABASE shop",
		"CREATE TABLE shop.orders (id INT PRIMARY KEY, amount DECIMAL(10,2), note VARCHAR(20))",
		"CREATE TABLE shop.tmp_x (id INT PRIMARY KEY)",
		"BEGIN", "INSERT INTO shop.orders VALUES (1, 10.50, 'a')", "INSERT INTO shop.orders VALUES (2, 20, 'b')", "UPDATE shop.orders SET amount = 11 WHERE id = 1", "COMMIT",
		"BEGIN", "INSERT INTO shop.orders VALUES (3, 30, 'c')", "ROLLBACK",
		"INSERT INTO shop.tmp_x VALUES (1)",
		"ALTER TABLE shop.orders ADD COLUMN status VARCHAR(10) AFTER id",
		"INSERT INTO shop.orders VALUES (4, 'new', 40, 'd')",
	)
	out, errOut, code := run(t, "dump", "--source", m.DSN(), "--from-start", "--stop-at-end", "--include", "shop.*", "--exclude", "shop.tmp_*")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var kinds []string
	for _, l := range lines {
		var tx struct {
			GTID    string `json:"gtid"`
			DDL     *struct{ SQL string }
			Changes []struct {
				Table string         `json:"table"`
				Type  string         `json:"type"`
				After map[string]any `json:"after"`
			}
		}
		if err := json.Unmarshal([]byte(l), &tx); err != nil {
			t.Fatalf("line is not JSON: %v\n%s", err, l)
		}
		if tx.GTID == "" {
			t.Errorf("no gtid: %s", l)
		}
		switch {
		case tx.DDL != nil:
			kinds = append(kinds, "ddl")
		default:
			var ops []string
			for _, c := range tx.Changes {
				ops = append(ops, c.Type)
			}
			kinds = append(kinds, strings.Join(ops, "+"))
		}
	}
	want := "ddl ddl insert+insert+update ddl insert" // shop.tmp_x excluded, its CREATE too
	if strings.Join(kinds, " ") != want {
		t.Fatalf("transactions %q, want %q:\n%s", strings.Join(kinds, " "), want, out)
	}
	if !strings.Contains(lines[len(lines)-1], `"after":{"id":4,"status":"new","amount":"40.00","note":"d"}`) {
		t.Errorf("last line lacks the new column: %s", lines[len(lines)-1])
	}

	// --limit stops early.
	out, _, code = run(t, "dump", "--source", m.DSN(), "--from-start", "--stop-at-end", "--limit", "2")
	if code != 0 || strings.Count(out, "\n") != 2 {
		t.Fatalf("--limit 2: exit %d, %d lines", code, strings.Count(out, "\n"))
	}
}

// TestDumpSQLReplays: the SQL output, applied to an empty server, rebuilds
// the same tables; the reverse output undoes a bad DELETE.
func TestDumpSQLReplays(t *testing.T) {
	servers := testenv.StartMariaDBs(t, 2)
	src, dst := servers[0], servers[1]
	src.Exec(t,
		"SET SESSION sql_mode = ''",
		"CREATE DATABASE app",
		"CREATE TABLE app.items (id INT PRIMARY KEY, name VARCHAR(50), price DECIMAL(12,4), tags SET('a','b','c'), "+
			"kind ENUM('x','y'), body TEXT, raw VARBINARY(20), at DATETIME(6), ts TIMESTAMP(3) NULL, doc JSON, f FLOAT, u BIGINT UNSIGNED, g POINT NULL)",
		"CREATE TABLE app.log (msg VARCHAR(100), n INT)", // no primary key
		"INSERT INTO app.items VALUES (1, 'it''s', 1.5, 'a,c', 'y', 'line1\\nline2', x'00ff10', '2024-01-01 10:00:00.123456', '2024-01-01 10:00:00.5', '{\"k\": [1, 2]}', 1.25, 18446744073709551615, ST_GeomFromText('POINT(1 2)'))",
		"INSERT INTO app.items (id, name) VALUES (2, 'two'), (3, 'three')",
		"UPDATE app.items SET price = 9.9999, name = 'back\\\\slash' WHERE id = 2",
		"INSERT INTO app.log VALUES ('hello', 1), ('hello', 1), ('bye', 2)",
		// DDL replays with the source's time and sql_mode (issue 14 items
		// 4 and 14).
		"SET TIMESTAMP = 1000000000.5",
		"ALTER TABLE app.log ADD c TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)",
		"SET TIMESTAMP = DEFAULT",
		"SET SESSION sql_mode = 'ANSI_QUOTES'",
		`ALTER TABLE "app"."log" ADD "q" VARCHAR(5) DEFAULT 'x'`,
		"SET SESSION sql_mode = ''",
		"DELETE FROM app.log WHERE msg = 'hello' LIMIT 1",
		"UPDATE app.log SET n = 3 WHERE msg = 'bye'",
	)
	out, errOut, code := run(t, "dump", "--source", src.DSN(), "--from-start", "--stop-at-end", "--include", "app.*", "--format", "sql")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if err := dst.ExecErr(out); err != nil {
		t.Fatalf("replaying the SQL dump: %v\n%s", err, out)
	}
	if a, b := src.Checksums(t, "app.items", "app.log"), dst.Checksums(t, "app.items", "app.log"); a != b {
		t.Fatalf("replayed tables differ: %s vs %s\n%s", a, b, out)
	}

	// Flashback: a DELETE without WHERE, then its reverse.
	before := src.Checksums(t, "app.items")
	gtid := src.QueryString(t, "SELECT @@gtid_binlog_pos")
	src.Exec(t, "DELETE FROM app.items")
	rev, errOut, code := run(t, "dump", "--source", src.DSN(), "--start-gtid", gtid, "--stop-at-end", "--format", "sql", "--reverse")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if err := src.ExecErr(rev); err != nil {
		t.Fatalf("applying the flashback SQL: %v\n%s", err, rev)
	}
	if after := src.Checksums(t, "app.items"); after != before {
		t.Fatalf("flashback did not restore the table: %s vs %s\n%s", after, before, rev)
	}
}

// TestDumpSQLSequences: a sequence's rows are printed as the applier runs
// them (SETVAL), so the SQL dump replays onto an empty server where an
// INSERT of the row is refused (a SETVAL below a cycling sequence's
// minimum); the reverse output says the rows cannot be undone.
func TestDumpSQLSequences(t *testing.T) {
	servers := testenv.StartMariaDBs(t, 2)
	src, dst := servers[0], servers[1]
	src.Exec(t,
		"CREATE DATABASE app",
		"CREATE SEQUENCE app.s START WITH 5 MINVALUE 5 MAXVALUE 10 CYCLE CACHE 0",
		"CREATE SEQUENCE app.d START WITH -1 MINVALUE -100 MAXVALUE -1 INCREMENT BY -3 CACHE 2",
		"DO NEXTVAL(app.s), NEXTVAL(app.s), NEXTVAL(app.d), NEXTVAL(app.d), NEXTVAL(app.d)",
		"DO SETVAL(app.s, 2, 0, 1)",
	)
	out, errOut, code := run(t, "dump", "--source", src.DSN(), "--from-start", "--stop-at-end", "--include", "app.*", "--format", "sql")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, "DO SETVAL(`app`.`s`,2,0,1);") {
		t.Errorf("the SETVAL row is not printed as SETVAL:\n%s", out)
	}
	if err := dst.ExecErr(out); err != nil {
		t.Fatalf("replaying the SQL dump: %v\n%s", err, out)
	}
	for _, s := range []string{"app.s", "app.d"} {
		q := "SELECT CONCAT_WS(',', next_not_cached_value, minimum_value, maximum_value, start_value, increment, cache_size, cycle_option, cycle_count) FROM " + s
		if a, b := src.QueryString(t, q), dst.QueryString(t, q); a != b {
			t.Errorf("%s: source %s, replayed %s\n%s", s, a, b, out)
		}
	}

	gtid := src.QueryString(t, "SELECT @@gtid_binlog_pos")
	src.Exec(t, "DO NEXTVAL(app.d), NEXTVAL(app.d)")
	rev, errOut, code := run(t, "dump", "--source", src.DSN(), "--start-gtid", gtid, "--stop-at-end", "--format", "sql", "--reverse")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(rev, "-- the row of sequence `app`.`d` cannot be reversed") {
		t.Errorf("the reverse of a sequence's row does not say it cannot be undone:\n%s", rev)
	}
	if err := src.ExecErr(rev); err != nil {
		t.Fatalf("applying the flashback SQL: %v\n%s", err, rev)
	}
}

func TestDumpErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"dump"}, "give --source"},
		{[]string{"dump", "--source", "mysql://u:pw@127.0.0.1:1", "x.bin"}, "either --source or binlog files"},
		{[]string{"dump", "--format", "xml", "x.bin"}, `--format "xml"`},
		{[]string{"dump", "--reverse", "x.bin"}, "--reverse needs --format sql"},
		{[]string{"dump", "--from-start", "x.bin"}, "apply to --source only"},
		{[]string{"dump", "--source", "root@localhost"}, "want mysql://USER:PASSWORD@HOST:PORT"},
		{[]string{"dump", "--source", "mysql://u:topsecret@127.0.0.1:1", "--stop-at-end"}, "cannot connect to 127.0.0.1:1"},
		{[]string{"dump", "/nonexistent/bin.000001"}, "no such file"},
		{[]string{"dump", "--include", "~(", "x.bin"}, "pattern"},
		{[]string{"dump", "--source", "mysql://u@127.0.0.1:1", "--start-gtid", "nonsense"}, "--start-gtid"},
	}
	for _, tt := range tests {
		_, errOut, code := run(t, tt.args...)
		if code != 2 || !strings.Contains(errOut, tt.want) || strings.Count(strings.TrimSpace(errOut), "\n") > 0 {
			t.Errorf("sluice %s: exit %d, stderr %q; want exit 2 and one line with %q", strings.Join(tt.args, " "), code, errOut, tt.want)
		}
		if strings.Contains(errOut, "topsecret") {
			t.Errorf("password in the error: %s", errOut)
		}
	}
}

// --include-query prints the statement the application ran, which MariaDB
// logs with the rows (binlog_annotate_row_events), and each change names
// it; without the flag it is not printed (issue 14 item 15).
func TestDumpIncludeQuery(t *testing.T) {
	m := testenv.StartMariaDB(t, testenv.MariaDBOptions{Args: []string{"--binlog-annotate-row-events=ON"}})
	m.Exec(t,
		"CREATE DATABASE shop",
		"CREATE TABLE shop.o (id INT PRIMARY KEY, v VARCHAR(10))",
		"BEGIN", "INSERT INTO shop.o VALUES (1, 'a'), (2, 'b') /* app */", "UPDATE shop.o SET v = 'c' WHERE id = 2", "COMMIT",
	)
	for _, sql := range []bool{false, true} {
		args := []string{"dump", "--source", m.DSN(), "--from-start", "--stop-at-end", "--include", "shop.*"}
		out, errOut, code := run(t, args...)
		if code != 0 || strings.Contains(out, "/* app */") {
			t.Fatalf("without --include-query: exit %d, %s\n%s", code, errOut, out)
		}
		if sql {
			args = append(args, "--format", "sql")
		}
		out, errOut, code = run(t, append(args, "--include-query")...)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		if sql {
			if !strings.Contains(out, "-- query: INSERT INTO shop.o VALUES (1, 'a'), (2, 'b') /* app */\n") || !strings.Contains(out, "-- query: UPDATE shop.o SET v = 'c' WHERE id = 2\n") {
				t.Fatalf("queries missing:\n%s", out)
			}
			continue
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		var tx struct {
			Queries []string `json:"queries"`
			Changes []struct {
				Query *int `json:"query"`
			}
		}
		if err := json.Unmarshal([]byte(lines[len(lines)-1]), &tx); err != nil {
			t.Fatal(err)
		}
		want := []string{"INSERT INTO shop.o VALUES (1, 'a'), (2, 'b') /* app */", "UPDATE shop.o SET v = 'c' WHERE id = 2"}
		if strings.Join(tx.Queries, "|") != strings.Join(want, "|") || len(tx.Changes) != 3 {
			t.Fatalf("got %s", lines[len(lines)-1])
		}
		for i, wantIx := range []int{0, 0, 1} {
			if tx.Changes[i].Query == nil || *tx.Changes[i].Query != wantIx {
				t.Fatalf("change %d names query %v, want %d: %s", i, tx.Changes[i].Query, wantIx, lines[len(lines)-1])
			}
		}
	}
}
