package replicator_test

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-cdc/sluice/internal/testenv"
	"github.com/sluice-cdc/sluice/replicator"
)

// shardSchema is one shard: two order tables whose ids overlap with the
// other shard's.
var shardSchema = []string{
	"CREATE DATABASE shop",
	"CREATE TABLE shop.orders_1 (id INT PRIMARY KEY, item VARCHAR(20) NOT NULL, qty INT NOT NULL)",
	"CREATE TABLE shop.orders_2 (id INT PRIMARY KEY, item VARCHAR(20) NOT NULL, qty INT NOT NULL)",
}

// mergedTable is the target of the shards' order tables.
func mergedTable(db string) []string {
	return []string{
		"CREATE DATABASE IF NOT EXISTS " + db,
		"CREATE TABLE " + db + ".orders (src VARCHAR(20) NOT NULL, tbl VARCHAR(64) NOT NULL, id INT NOT NULL, " +
			"item VARCHAR(20) NOT NULL, qty INT NOT NULL, PRIMARY KEY (src, tbl, id))",
	}
}

func shardPipelines(shards []*testenv.MariaDB, target *testenv.MariaDB, names ...string) string {
	var srcs strings.Builder
	for i, s := range shards {
		fmt.Fprintf(&srcs, "      - {name: %s, dsn: %q, start: oldest}\n", names[i], s.DSN())
	}
	return fmt.Sprintf(`
http: {listen: "off"}
pipelines:
  - name: agg
    sources:
%s    include: ["shop.*"]
    routes:
      - {match: "shop.orders_*", to: agg.orders, source_column: src, table_column: tbl}
    sink: {type: mysql, dsn: %q}
  - name: archive
    sources:
%s    include: ["shop.*"]
    operations: [insert, update]
    routes:
      - {match: "shop.orders_*", to: archive.orders, source_column: src, table_column: tbl}
    # Deletes are dropped, so an id deleted and inserted again is still here.
    sink: {type: mysql, dsn: %q, on_conflict: overwrite}
`, srcs.String(), target.DSN(), srcs.String(), target.DSN())
}

// shardWriter writes random orders to one shard until stopped, and keeps
// going (skipping failed statements) while the shard is down.
type shardWriter struct {
	m        *testenv.MariaDB
	inserted sync.Map // "table/id" of every row ever inserted
	ok       atomic.Int64
	stop     chan struct{}
	done     sync.WaitGroup
}

func startShardWriter(t *testing.T, m *testenv.MariaDB, seed uint64) *shardWriter {
	w := &shardWriter{m: m, stop: make(chan struct{})}
	db, err := sql.Open("mysql", m.DriverDSN(""))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	w.done.Add(1)
	go func() {
		defer w.done.Done()
		r := rand.New(rand.NewPCG(seed, 7))
		for {
			select {
			case <-w.stop:
				return
			default:
			}
			table := fmt.Sprintf("shop.orders_%d", 1+r.IntN(2))
			id := 1 + r.IntN(300)
			var err error
			switch r.IntN(4) {
			case 0, 1:
				_, err = db.Exec("INSERT INTO "+table+" (id, item, qty) VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE qty = qty + 1",
					id, fmt.Sprintf("item-%d", r.IntN(50)), r.IntN(10))
				if err == nil {
					w.inserted.Store(fmt.Sprintf("%s/%d", table, id), true)
				}
			case 2:
				_, err = db.Exec("UPDATE "+table+" SET qty = qty + 1, item = ? WHERE id = ?", fmt.Sprintf("upd-%d", r.IntN(50)), id)
			case 3:
				_, err = db.Exec("DELETE FROM "+table+" WHERE id = ?", id)
			}
			if err == nil {
				w.ok.Add(1)
			} else {
				time.Sleep(50 * time.Millisecond) // the shard is down
			}
		}
	}()
	return w
}

func (w *shardWriter) Stop() {
	close(w.stop)
	w.done.Wait()
}

// digest is a checksum of the rows a query returns, in order.
func digest(t *testing.T, db *sql.DB, q string, args ...any) string {
	t.Helper()
	var n int64
	var sum sql.NullString
	err := db.QueryRow("SELECT COUNT(*), SHA1(GROUP_CONCAT(CONCAT_WS('|', id, item, qty) ORDER BY id SEPARATOR ',')) FROM ("+q+") x", args...).Scan(&n, &sum)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return fmt.Sprintf("%d rows %s", n, sum.String)
}

// shardsMatch compares every shard table with its rows in agg.orders.
func shardsMatch(t *testing.T, shards []*testenv.MariaDB, names []string, target *testenv.MariaDB) (bool, string) {
	t.Helper()
	tdb := target.DB(t)
	for i, s := range shards {
		sdb := s.DB(t)
		for _, tbl := range []string{"orders_1", "orders_2"} {
			a := digest(t, sdb, "SELECT id, item, qty FROM shop."+tbl)
			b := digest(t, tdb, "SELECT id, item, qty FROM agg.orders WHERE src = ? AND tbl = ?", names[i], tbl)
			if a != b {
				return false, fmt.Sprintf("%s shop.%s: source %s, target %s", names[i], tbl, a, b)
			}
		}
	}
	return true, ""
}

// TestShardsMerge merges two shards whose order tables overlap in name and
// key into one target table, with a column naming the shard and one naming
// the original table; a second pipeline in the same file keeps an archive
// that drops deletes. A shard is added to a running setup, one shard is
// killed and restarted while the other keeps flowing, and both shards add
// the same column: it is applied once.
func TestShardsMerge(t *testing.T) {
	servers := testenv.StartMariaDBs(t, 3)
	shards, target := servers[:2], servers[2]
	names := []string{"shard1", "shard2"}
	for _, s := range shards {
		s.Exec(t, shardSchema...)
	}
	target.Exec(t, mergedTable("agg")...)
	target.Exec(t, mergedTable("archive")...)
	shards[0].Exec(t, "INSERT INTO shop.orders_1 VALUES (1, 'first', 1), (2, 'second', 2)")
	shards[1].Exec(t, "INSERT INTO shop.orders_1 VALUES (1, 'other first', 10)")

	// shard1 alone first; adding shard2 later keeps shard1's position (a
	// replayed insert would collide on the key and stop the pipeline).
	runToEnd(t, testenv.LoadConfig(t, shardPipelines(shards[:1], target, names[0])))
	cfg := testenv.LoadConfig(t, shardPipelines(shards, target, names...))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r, err := replicator.New(cfg, replicator.Options{Logger: testenv.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	w1, w2 := startShardWriter(t, shards[0], 1), startShardWriter(t, shards[1], 2)
	time.Sleep(2 * time.Second)

	// Both shards add the same column: the first copy applies, the second
	// finds it in effect.
	shards[0].Exec(t, "ALTER TABLE shop.orders_1 ADD COLUMN note VARCHAR(20) DEFAULT 'n'")
	shards[1].Exec(t, "ALTER TABLE shop.orders_1 ADD COLUMN note VARCHAR(20) DEFAULT 'n'")
	time.Sleep(time.Second)

	// shard2 dies; shard1 keeps flowing, and shard2's status says so.
	if err := shards[1].Kill(); err != nil {
		t.Fatal(err)
	}
	start := w1.ok.Load()
	deadline := time.Now().Add(2 * time.Minute)
	var state string
	for time.Now().Before(deadline) {
		for _, st := range r.Status() {
			if st.Pipeline == "agg" && st.Source == "shard2" {
				state = st.State
			}
		}
		if state == "reconnecting" && w1.ok.Load() > start+50 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if state != "reconnecting" {
		t.Fatalf("shard2 is down but its state is %q", state)
	}
	// shard1 goes on applying while shard2 is down: waited for, not given
	// a fixed window (on a loaded machine under -race 2s can pass with
	// nothing applied).
	applied1 := appliedOf(r, "agg", "shard1")
	for deadline := time.Now().Add(2 * time.Minute); appliedOf(r, "agg", "shard1") <= applied1; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("shard1 stopped flowing while shard2 was down (%d transactions applied, then none for 2 minutes)", applied1)
		}
	}
	if state := stateOf(r, "agg", "shard2"); state != "reconnecting" {
		t.Fatalf("shard1 applied while shard2 was down, but shard2's state is %q", state)
	}
	if err := shards[1].Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	w1.Stop()
	w2.Stop()
	// A row that existed is deleted on each shard, whatever the writers
	// managed to do (under load they may have deleted nothing that stayed
	// deleted): the archive, which drops deletes, must keep it.
	for _, s := range shards {
		s.Exec(t, "DELETE FROM shop.orders_1 WHERE id = 1")
	}

	var why string
	ok := false
	for deadline := time.Now().Add(3 * time.Minute); time.Now().Before(deadline) && !ok; time.Sleep(500 * time.Millisecond) {
		ok, why = shardsMatch(t, shards, names, target)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !ok {
		t.Fatal(why)
	}
	runToEnd(t, cfg) // the archive pipeline catches up too
	if n := countRows(t, target, "SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'agg' AND TABLE_NAME = 'orders' AND COLUMN_NAME = 'note'"); n != 1 {
		t.Fatalf("agg.orders has %d note columns", n)
	}
	// The archive dropped the deletes: every row that ever existed is
	// there, so it has more rows than the merged table.
	for i, w := range []*shardWriter{w1, w2} {
		want := map[string]bool{"shop.orders_1/1": true}
		if i == 0 {
			want["shop.orders_1/2"] = true
		}
		w.inserted.Range(func(k, _ any) bool { want[k.(string)] = true; return true })
		got := countRows(t, target, "SELECT COUNT(*) FROM archive.orders WHERE src = ?", names[i])
		merged := countRows(t, target, "SELECT COUNT(*) FROM agg.orders WHERE src = ?", names[i])
		if got < len(want) || got <= merged {
			t.Fatalf("archive has %d rows of %s, which inserted %d distinct rows (%d remain)", got, names[i], len(want), merged)
		}
	}
	t.Logf("shard1 %d and shard2 %d statements merged", w1.ok.Load(), w2.ok.Load())

	// Removing a source keeps the other's position.
	shards[1].Exec(t, "INSERT INTO shop.orders_2 VALUES (9999, 'late', 1)")
	runToEnd(t, testenv.LoadConfig(t, shardPipelines(shards[1:], target, names[1])))
	if ok, why := shardsMatch(t, shards, names, target); !ok {
		t.Fatal(why)
	}
}

func stateOf(r *replicator.Replicator, pipeline, source string) string {
	for _, st := range r.Status() {
		if st.Pipeline == pipeline && st.Source == source {
			return st.State
		}
	}
	return ""
}

func appliedOf(r *replicator.Replicator, pipeline, source string) uint64 {
	for _, st := range r.Status() {
		if st.Pipeline == pipeline && st.Source == source {
			return st.Applied
		}
	}
	return 0
}

func countRows(t *testing.T, m *testenv.MariaDB, q string, args ...any) int {
	t.Helper()
	var n int
	if err := m.DB(t).QueryRow(q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}
