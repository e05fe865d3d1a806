package replicator_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/sluice-cdc/sluice/internal/testenv"
)

// MariaDB sequences replicate: their DDL is tracked and applied, and the
// row each NEXTVAL or SETVAL logs is applied as an INSERT, which replaces
// the sequence's row (as MariaDB's replica applies it), through a route
// too. After catch-up the target's sequences hold the source's rows, and
// NEXTVAL of an uncached sequence gives the same value on both.
func TestSequences(t *testing.T) {
	servers := testenv.StartMariaDBs(t, 2)
	src, dst := servers[0], servers[1]
	src.Exec(t,
		"CREATE DATABASE app",
		"USE app",
		"CREATE SEQUENCE s",
		"SELECT NEXTVAL(s)", "SELECT NEXTVAL(s)",
		"CREATE SEQUENCE n START WITH 10 INCREMENT BY 3 NOCACHE",
		"SELECT NEXTVAL(n)", "SELECT NEXTVAL(n)",
		"CREATE TABLE t (id INT PRIMARY KEY DEFAULT NEXTVAL(n), v INT)",
		"INSERT INTO t (v) VALUES (1), (2)",
		"INSERT INTO t VALUES (NEXTVAL(n), 3)",
		"SELECT SETVAL(n, 100)",
		"CREATE SEQUENCE app.r MINVALUE 1 MAXVALUE 5 CYCLE CACHE 2",
		"SELECT NEXTVAL(r)", "SELECT NEXTVAL(r)", "SELECT NEXTVAL(r)",
		// A sequence made as a table, and one made like another.
		"CREATE TABLE ts (next_not_cached_value bigint(21) NOT NULL, minimum_value bigint(21) NOT NULL, maximum_value bigint(21) NOT NULL, start_value bigint(21) NOT NULL, increment bigint(21) NOT NULL, cache_size bigint(21) unsigned NOT NULL, cycle_option tinyint(1) unsigned NOT NULL, cycle_count bigint(21) NOT NULL) SEQUENCE=1",
		"SELECT NEXTVAL(ts)",
		"CREATE TABLE l LIKE n",
		"SELECT NEXTVAL(l)",
		"CREATE SEQUENCE gone", "SELECT NEXTVAL(gone)", "DROP SEQUENCE gone",
		"CREATE OR REPLACE SEQUENCE s2 START WITH 7 NOCACHE",
		"SELECT NEXTVAL(s2)",
		// The row written whole (a transaction MariaDB flags DDL): every
		// column changes.
		"INSERT INTO s2 VALUES (40, 1, 100, 1, 2, 0, 0, 0)",
		"SELECT NEXTVAL(s2)",
		// SETVAL below the minimum of a cycling sequence, in a later round:
		// its row is no valid definition, which an INSERT would refuse
		// (the random differential test, seed 302043181).
		"CREATE SEQUENCE c MINVALUE 1 MAXVALUE 6 CYCLE CACHE 1",
		"SELECT NEXTVAL(c)", "SELECT NEXTVAL(c)",
		"SELECT SETVAL(c, -47, 1, 1)",
		"SELECT NEXTVAL(c)",
	)
	yml := pipelineYAML(src, dst, "", "")
	yml = strings.Replace(yml, "    sink:", "    routes:\n      - {match: app.r, to: app.routed}\n    sink:", 1)
	cfg := testenv.LoadConfig(t, yml)
	runToEnd(t, cfg)

	// A second run, resuming from the checkpoint.
	src.Exec(t,
		"USE app",
		"ALTER SEQUENCE s INCREMENT BY 5",
		"SELECT NEXTVAL(s)",
		"ALTER SEQUENCE n RESTART WITH 500",
		"SELECT NEXTVAL(n)", "SELECT NEXTVAL(n)",
		"SELECT SETVAL(s2, 50, 0)",
		"SELECT NEXTVAL(r)", "SELECT NEXTVAL(r)", "SELECT NEXTVAL(r)", "SELECT NEXTVAL(r)",
		"RENAME TABLE l TO l2",
		"SELECT NEXTVAL(l2)",
	)
	runToEnd(t, cfg)

	for _, pair := range [][2]string{{"app.s", "app.s"}, {"app.n", "app.n"}, {"app.ts", "app.ts"}, {"app.l2", "app.l2"},
		{"app.s2", "app.s2"}, {"app.c", "app.c"}, {"app.r", "app.routed"}} {
		if a, b := orderedRows(t, src, pair[0]), orderedRows(t, dst, pair[1]); a != b {
			t.Errorf("%s differs:\nsource %s\ntarget %s (%s)", pair[0], a, b, pair[1])
		}
	}
	sameTables(t, src, dst, "app.t")
	if n := dst.QueryString(t, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'app' AND TABLE_NAME IN ('gone', 'r', 'l')"); n != "0" {
		t.Errorf("%s dropped, renamed or routed sequences are on the target", n)
	}
	// Uncached sequences hand out the same next value on both.
	for _, seq := range []string{"app.n", "app.s2", "app.c"} {
		if a, b := src.QueryString(t, "SELECT NEXTVAL("+seq+")"), dst.QueryString(t, "SELECT NEXTVAL("+seq+")"); a != b {
			t.Errorf("NEXTVAL(%s): source %s, target %s", seq, a, b)
		}
	}
	// A pipeline that starts after a sequence was made finds it in
	// information_schema (it was made in an earlier binlog file).
	src.Exec(t, "CREATE DATABASE late", "CREATE SEQUENCE late.pre START WITH 3 NOCACHE", "SELECT NEXTVAL(late.pre)", "FLUSH BINARY LOGS")
	dst.Exec(t, "CREATE DATABASE late", "CREATE SEQUENCE late.pre START WITH 3 NOCACHE")
	var file, pos string
	if err := src.DB(t).QueryRow("SHOW MASTER STATUS").Scan(&file, &pos, new(any), new(any)); err != nil {
		t.Fatal(err)
	}
	src.Exec(t, "SELECT NEXTVAL(late.pre)", "SELECT NEXTVAL(late.pre)")
	late := strings.Replace(pipelineYAML(src, dst, "", ""), "start: oldest", fmt.Sprintf("start: {file: %s, pos: %s}", file, pos), 1)
	late = strings.Replace(strings.Replace(late, `include: ["app.*"]`, `include: ["late.*"]`, 1), "name: p\n", "name: late\n", 1)
	runToEnd(t, testenv.LoadConfig(t, late))
	if a, b := src.QueryString(t, "SELECT NEXTVAL(late.pre)"), dst.QueryString(t, "SELECT NEXTVAL(late.pre)"); a != b {
		t.Errorf("NEXTVAL(late.pre): source %s, target %s", a, b)
	}
	if typ := dst.QueryString(t, "SELECT TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'app' AND TABLE_NAME = 'routed'"); typ != "SEQUENCE" {
		t.Errorf("app.routed on the target is a %q, want a SEQUENCE", typ)
	}
}

// A NEXTVAL that fails on a sequence that has run out logs nothing, yet a
// later ALTER SEQUENCE without RESTART writes the source's memory of it
// (next_not_cached_value = the old maximum + 1). No binlog reader can know
// that happened (MariaDB's own replica keeps the last logged value), so
// the sink warns before such an ALTER runs against a run-out sequence, and
// stays silent when the sequence has values left or the ALTER restarts it
// (the random differential test, seed 573574520).
func TestSequenceRunOutWarning(t *testing.T) {
	servers := testenv.StartMariaDBs(t, 2)
	src, dst := servers[0], servers[1]
	src.Exec(t,
		"CREATE DATABASE app",
		"USE app",
		"CREATE SEQUENCE s INCREMENT BY 100",
		"SELECT NEXTVAL(s)",
		"ALTER SEQUENCE s MAXVALUE 126 INCREMENT BY 5", // has values left: no warning
		"CREATE SEQUENCE ok",
		"SELECT NEXTVAL(ok)",
		"ALTER SEQUENCE ok INCREMENT BY 2",
	)
	if _, err := src.DB(t).Exec("SELECT NEXTVAL(app.s)"); err == nil || !strings.Contains(err.Error(), "4084") {
		t.Fatalf("NEXTVAL of a run-out sequence: %v, want error 4084", err)
	}
	src.Exec(t,
		"ALTER SEQUENCE app.s INCREMENT BY 1",          // warned
		"ALTER SEQUENCE app.s RESTART WITH 7 CACHE 10", // restarts: no warning
		"SELECT NEXTVAL(app.s)",
	)
	var logs logBuffer
	if err := runCaptured(t, testenv.LoadConfig(t, pipelineYAML(src, dst, "", "")), &logs); err != nil {
		t.Fatalf("%v\n%s", err, logs.String())
	}
	if n := strings.Count(logs.String(), "ALTER SEQUENCE without RESTART on a sequence that has run out"); n != 1 {
		t.Errorf("%d run-out warnings, want 1 (for app.s's ALTER … INCREMENT BY 1):\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "sequence=app.s ") {
		t.Errorf("the warning does not name app.s:\n%s", logs.String())
	}
	// After the RESTART both agree again.
	for _, seq := range []string{"app.s", "app.ok"} {
		if a, b := orderedRows(t, src, seq), orderedRows(t, dst, seq); a != b {
			t.Errorf("%s differs:\nsource %s\ntarget %s", seq, a, b)
		}
	}
}
