package replicator_test

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-cdc/sluice/internal/testenv"
	"github.com/sluice-cdc/sluice/replicator"
)

// tableMaps counts the row events on table (schema.table) in a server's
// binlogs, from its Table_map events.
func tableMaps(t *testing.T, m *testenv.MariaDB, table string) int {
	return binlogEvents(t, m, "Table_map", "("+table+")")
}

// binlogEvents counts the events of a type whose info contains text in a
// server's binlogs.
func binlogEvents(t *testing.T, m *testenv.MariaDB, typ, text string) int {
	t.Helper()
	db := m.DB(t)
	n := 0
	for _, f := range m.BinlogFiles(t) {
		rows, err := db.Query("SHOW BINLOG EVENTS IN '" + f + "'")
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]sql.RawBytes, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			if string(vals[2]) == typ && strings.Contains(string(vals[5]), text) {
				n++
			}
		}
		rows.Close()
	}
	return n
}

// TestSnapshotLoopMarks runs a master-master pair from one file: a-to-b
// seeds b by snapshot: initial (creating the database and tables there),
// then an incremental snapshot re-seeds a table of it. b-to-a, reading b,
// must send none of it back: the snapshot's DDL carry the sink's DDL mark,
// and its chunk transactions the progress row the router recognises. So a
// receives no row of the tables and no DDL, and b-to-a stops on no
// conflict.
func TestSnapshotLoopMarks(t *testing.T) {
	servers := testenv.StartMariaDBs(t, 2)
	a, b := servers[0], servers[1]
	a.Exec(t, "CREATE DATABASE app", "CREATE TABLE app.t (id INT PRIMARY KEY, v VARCHAR(20))",
		"INSERT INTO app.t SELECT seq, CONCAT('v', seq) FROM app.seq_1_to_3000",
		"CREATE TABLE app.nk (x INT, y INT)", "INSERT INTO app.nk SELECT seq % 10, seq FROM app.seq_1_to_500")
	before := tableMaps(t, a, "app.t") + tableMaps(t, a, "app.nk")
	cfg := testenv.LoadConfig(t, fmt.Sprintf(`
http: {listen: "off"}
pipelines:
  - name: a-to-b
    snapshot: initial
    sources: [{name: a, dsn: "%s", include: ["app.*"]}]
    sink: {type: mysql, dsn: "%s"}
  - name: b-to-a
    sources: [{name: b, dsn: "%s", start: oldest, include: ["app.*"]}]
    sink: {type: mysql, dsn: "%s"}
`, a.DSN(), b.DSN(), b.DSN(), a.DSN()))
	// No DDL reaches a: the snapshot's CREATE statements, sent back, would
	// be found in effect there (and a TRUNCATE of a copy started again
	// would empty a's table).
	var ddls atomic.Int64
	log := slog.New(countHandler{countHandler{testenv.Logger().Handler(), "DDL applied", &ddls}, "DDL already in effect on the target", &ddls})
	r, err := replicator.New(cfg, replicator.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runErr := startStreaming(t, ctx, r, 2)
	if err := replicator.RequestIncremental(ctx, cfg, replicator.RequestOptions{Pipeline: "a-to-b", Tables: []string{"app.t", "app.nk"}, Logger: testenv.Logger()}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(2 * time.Minute); strings.Count(incrementalState(t, b), ":done:") < 2; time.Sleep(100 * time.Millisecond) {
		if st := incrementalState(t, b); strings.Contains(st, ":failed:") || time.Now().After(deadline) {
			t.Fatalf("incremental snapshots: %s", st)
		}
		select {
		case err := <-runErr:
			t.Fatalf("sluice run ended: %v", err)
		default:
		}
	}
	cancel()
	if err := <-runErr; err != nil {
		t.Fatal(err)
	}
	if err := testenv.RunToEnd(t, cfg); err != nil {
		t.Fatal(err)
	}
	if n := ddls.Load(); n != 0 {
		t.Errorf("b-to-a applied %d DDL statements of the snapshot's back to a", n)
	}
	if n := tableMaps(t, a, "app.t") + tableMaps(t, a, "app.nk") - before; n != 0 {
		t.Errorf("b-to-a wrote %d row events of the snapshot's tables back into a", n)
	}
	// The snapshot's CREATE TABLE (SHOW CREATE TABLE's, with backquotes).
	if n := binlogEvents(t, b, "Query", "CREATE TABLE `app`."); n != 2 {
		t.Errorf("%d CREATE TABLE of the snapshot in b's binlog, want 2", n)
	}
	if n := binlogEvents(t, a, "Query", "CREATE TABLE `app`."); n != 0 {
		t.Errorf("b-to-a sent %d CREATE TABLE of the snapshot back into a", n)
	}
	tables := []string{"app.t", "app.nk"}
	if x, y := a.Checksums(t, tables...), b.Checksums(t, tables...); x != y {
		t.Fatalf("checksums differ:\na %s\nb %s", x, y)
	}
}
