package replicator_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/sluice-cdc/sluice/binlog"
	"github.com/sluice-cdc/sluice/config"
	"github.com/sluice-cdc/sluice/internal/testenv"
)

// TestMergeConflicts: two shards writing the same key of a merged table is
// a conflict naming both transactions; shards adding one column with
// different types, or one shard dropping a column of a merged table, stop
// the pipeline with a message saying what to do.
func TestMergeConflicts(t *testing.T) {
	servers := testenv.StartMariaDBs(t, 3)
	shards, target := servers[:2], servers[2]
	for _, s := range shards {
		s.Exec(t, shardSchema...)
	}
	target.Exec(t,
		"CREATE DATABASE agg",
		"CREATE TABLE agg.o1 (id INT PRIMARY KEY, item VARCHAR(20) NOT NULL, qty INT NOT NULL)",
		"CREATE TABLE agg.o2 (src VARCHAR(20) NOT NULL, id INT NOT NULL, item VARCHAR(20) NOT NULL, qty INT NOT NULL, PRIMARY KEY (src, id))",
		"CREATE TABLE agg.o3 (id INT PRIMARY KEY, item VARCHAR(20) NOT NULL, qty INT NOT NULL)",
	)
	pipeline := func(name, table, route string, srcs ...int) *config.File {
		var b strings.Builder
		fmt.Fprintf(&b, "http: {listen: \"off\"}\npipelines:\n  - name: %s\n    sources:\n", name)
		for _, i := range srcs {
			fmt.Fprintf(&b, "      - {name: shard%d, dsn: %q, start: oldest}\n", i+1, shards[i].DSN())
		}
		fmt.Fprintf(&b, "    include: [%q]\n    routes:\n      - %s\n    sink: {type: mysql, dsn: %q}\n", "shop."+table, route, target.DSN())
		return testenv.LoadConfig(t, b.String())
	}

	// The same key from both shards, with no column to tell them apart.
	shards[0].Exec(t, "INSERT INTO shop.orders_1 VALUES (1, 'from shard1', 1)")
	shards[1].Exec(t, "INSERT INTO shop.orders_1 VALUES (1, 'from shard2', 2)")
	err := testenv.RunToEnd(t, pipeline("p1", "orders_1", "{match: shop.orders_1, to: agg.o1}", 0, 1))
	if err == nil || !strings.Contains(err.Error(), "duplicate key on the target") ||
		!strings.Contains(err.Error(), "(last written by source shard") {
		t.Fatalf("want a conflict naming the other shard's transaction, got %v", err)
	}
	t.Log(err)

	// One column, two types.
	shards[0].Exec(t, "ALTER TABLE shop.orders_2 ADD COLUMN y INT")
	shards[1].Exec(t, "ALTER TABLE shop.orders_2 ADD COLUMN y VARCHAR(5)")
	err = testenv.RunToEnd(t, pipeline("p2", "orders_2", "{match: shop.orders_2, to: agg.o2, source_column: src}", 0, 1))
	if err == nil || !strings.Contains(err.Error(), "the sources disagree") || !strings.Contains(err.Error(), "sink.ddl_done") {
		t.Fatalf("want the shards' disagreement, got %v", err)
	}
	t.Log(err)

	// A column dropped from a table a glob merges.
	shards[0].Exec(t, "ALTER TABLE shop.orders_2 DROP COLUMN qty")
	err = testenv.RunToEnd(t, pipeline("p3", "orders_2", "{match: \"shop.orders_*\", to: agg.o3}", 0))
	if err == nil || !strings.Contains(err.Error(), "which several source tables feed, and it changes or removes what exists (DROP COLUMN)") {
		t.Fatalf("want a stop at the DROP COLUMN, got %v", err)
	}
	t.Log(err)
	if n := countRows(t, target, "SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'agg' AND TABLE_NAME = 'o3' AND COLUMN_NAME IN ('y', 'qty')"); n != 2 {
		t.Fatalf("agg.o3 should have gained y and kept qty: %d of them", n)
	}
}

// bidiPipelines is a master-master pair: a→b and b→a in one file.
func bidiPipelines(a, b *testenv.MariaDB, abExtra, baExtra string) string {
	return fmt.Sprintf(`
http: {listen: "off"}
pipelines:
  - name: a-to-b
    sources: [{name: a, dsn: %q, start: current, include: ["app.*"]}]
    sink: {type: mysql, dsn: %q %s}
  - name: b-to-a
    sources: [{name: b, dsn: %q, start: current, include: ["app.*"]}]
    sink: {type: mysql, dsn: %q %s}
`, a.DSN(), b.DSN(), abExtra, b.DSN(), a.DSN(), baExtra)
}

// TestBidirectionalConflict: the same row changed on both sides while the
// pipelines are stopped is a conflict on each side, reported with the row
// the target has; "a wins" (overwrite one way, skip the other) converges.
func TestBidirectionalConflict(t *testing.T) {
	servers := testenv.StartMariaDBs(t, 2)
	a, b := servers[0], servers[1]
	for _, m := range servers {
		m.Exec(t, "CREATE DATABASE app", "CREATE TABLE app.kv (id INT PRIMARY KEY, v INT NOT NULL)")
	}
	cfg := testenv.LoadConfig(t, bidiPipelines(a, b, "", ""))
	runToEnd(t, cfg) // checkpoints at the current positions
	a.Exec(t, "INSERT INTO app.kv VALUES (1, 1), (2, 2)")
	b.Exec(t, "INSERT INTO app.kv VALUES (3, 3)")
	runToEnd(t, cfg)
	runToEnd(t, cfg) // nothing comes back
	if x, y := a.Checksums(t, "app.kv"), b.Checksums(t, "app.kv"); x != y {
		t.Fatalf("a %s, b %s", x, y)
	}
	pa, pb := a.BinlogPos(t), b.BinlogPos(t)
	runToEnd(t, cfg)
	// A run writes nothing but its takeover of the pipeline's lease (one
	// epoch bump per start, which the reverse pipeline does not echo).
	onlyLeaseWrites(t, a, pa, "b-to-a")
	onlyLeaseWrites(t, b, pb, "a-to-b")

	a.Exec(t, "UPDATE app.kv SET v = 100 WHERE id = 1")
	b.Exec(t, "UPDATE app.kv SET v = 200 WHERE id = 1")
	err := testenv.RunToEnd(t, cfg)
	if err == nil || !strings.Contains(err.Error(), "the row differs on the target, which changed it since: it has id=\"1\" v=\"200\"") ||
		!strings.Contains(err.Error(), "it has id=\"1\" v=\"100\"") {
		t.Fatalf("want a conflict on each side, got %v", err)
	}
	t.Log(err)

	// a wins.
	cfg = testenv.LoadConfig(t, bidiPipelines(a, b, ", on_conflict: overwrite", ", on_conflict: skip"))
	runToEnd(t, cfg)
	runToEnd(t, cfg)
	if x, y := a.QueryString(t, "SELECT v FROM app.kv WHERE id = 1"), b.QueryString(t, "SELECT v FROM app.kv WHERE id = 1"); x != "100" || y != "100" {
		t.Fatalf("a has %s, b has %s; want a's 100 on both", x, y)
	}
	if x, y := a.Checksums(t, "app.kv"), b.Checksums(t, "app.kv"); x != y {
		t.Fatalf("a %s, b %s", x, y)
	}
}

// onlyLeaseWrites requires every transaction m logged after pos to be
// pipeline's lease row alone: no data, no DDL, no checkpoint.
func onlyLeaseWrites(t *testing.T, m *testenv.MariaDB, pos, pipeline string) {
	t.Helper()
	file, off, _ := strings.Cut(pos, ":")
	n, _ := strconv.ParseUint(off, 10, 64)
	start := binlog.Start{Mode: binlog.StartPosition, Pos: binlog.Position{File: file, Pos: n}}
	leases := 0
	testenv.ReadSource(t, m, start, binlog.DecodeOptions{}, func(tx *binlog.Txn) {
		defer tx.Close()
		if tx.Len() > 0 || tx.DDL != nil || len(tx.Marks) != 1 || tx.Marks[0] != (binlog.Mark{Pipeline: pipeline}) {
			t.Errorf("port %d: after %s the binlog has more than %s's lease: %d rows, DDL %v, marks %v", m.Port, pos, pipeline, tx.Len(), tx.DDL, tx.Marks)
		}
		leases++
	})
	if leases > 1 {
		t.Errorf("port %d: %d transactions after %s, want at most the one lease takeover", m.Port, leases, pos)
	}
}
