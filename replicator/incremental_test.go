package replicator_test

import (
	"context"
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

// churn writes to the seeded tables while they are copied: updates,
// deletes and inserts of random keys (rows copied, not copied yet, and in
// the chunk being copied), each in its own transaction.
type churn struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	n      atomic.Int64
}

func startChurn(t *testing.T, src *testenv.MariaDB, rows int) *churn {
	db := src.DB(t)
	ctx, cancel := context.WithCancel(context.Background())
	c := &churn{cancel: cancel}
	stmts := []func(r *rand.Rand) string{
		func(r *rand.Rand) string {
			n := 1 + r.IntN(rows)
			return fmt.Sprintf("UPDATE app.wide SET i64 = i64 + 1, tx = CONCAT('upd', %d), ts = NOW(6), js = JSON_OBJECT('u', %d) WHERE a = %d AND b = 'k%d'", n, n, n%7, n)
		},
		func(r *rand.Rand) string {
			n := 1 + r.IntN(rows)
			return fmt.Sprintf("DELETE FROM app.wide WHERE a = %d AND b = 'k%d'", n%7, n)
		},
		func(r *rand.Rand) string {
			n := 1 + r.IntN(rows*2)
			return fmt.Sprintf("REPLACE INTO app.wide (a, b, i64, tx, e, s, uu, d) VALUES (%d, 'k%d', %d, 'new', 'y', 'p,r', UUID(), -%d.25)", n%7, n, n, n)
		},
		func(r *rand.Rand) string {
			n := 1 + r.IntN(rows)
			return fmt.Sprintf("UPDATE app.ukey SET n = n + 1, code = IF(n %% 5 = 0, CONCAT(code, 'x'), code) WHERE code = 'c%d'", n)
		},
		func(r *rand.Rand) string {
			n := 1 + r.IntN(rows)
			return fmt.Sprintf("DELETE FROM app.ukey WHERE code = 'c%d'", n)
		},
		func(r *rand.Rand) string {
			n := rows + r.IntN(rows)
			return fmt.Sprintf("INSERT IGNORE INTO app.ukey VALUES ('c%d', %d)", n, n)
		},
		func(r *rand.Rand) string { // a table already replicated
			return fmt.Sprintf("UPDATE app.accounts SET balance = balance + 1 WHERE id = %d", 1+r.IntN(40))
		},
	}
	for w := range 3 {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
			for ctx.Err() == nil {
				if _, err := db.ExecContext(ctx, stmts[r.IntN(len(stmts))](r)); err == nil {
					c.n.Add(1)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}
	return c
}

func (c *churn) stop() { c.cancel(); c.wg.Wait() }

// incrementalState is the tables' incremental snapshot rows on the target.
func incrementalState(t *testing.T, dst *testenv.MariaDB) string {
	if dst.QueryString(t, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'sluice' AND TABLE_NAME = 'snapshot_incremental'") == "0" {
		return ""
	}
	return dst.QueryString(t, "SELECT IFNULL(GROUP_CONCAT(table_name, ':', state, ':', chunks, ':', rows_read, ':', rows_written, ':', message ORDER BY table_name SEPARATOR ' '), '') FROM sluice.snapshot_incremental")
}

func waitIncremental(t *testing.T, r *replicator.Replicator, dst *testenv.MariaDB, want string, runErr <-chan error) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for {
		st := incrementalState(t, dst)
		if strings.Contains(st, ":failed:") {
			t.Fatalf("incremental snapshot failed: %s", st)
		}
		if st != "" && strings.Count(st, ":done:") == strings.Count(want, " ")+1 {
			t.Logf("incremental snapshots: %s", st)
			return
		}
		select {
		case err := <-runErr:
			t.Fatalf("sluice run ended: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("incremental snapshots not done: %s; status %+v", st, r.Status())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestIncrementalSnapshot adds two tables (a composite key with most
// column types, and a unique NOT NULL key without a primary key) to a
// running pipeline, under writes to those tables and a load on the
// others, with an incremental snapshot requested as sluice snapshot
// --incremental does and a reload; then re-seeds one of them (already
// included, with rows on the target the source lacks)
// without a reload, with a DDL on it midway. Every table ends equal.
func TestIncrementalSnapshot(t *testing.T) {
	servers := testenv.StartMariaDBs(t, 2)
	src, dst := servers[0], servers[1]
	const rows = 20000
	src.Exec(t, testenv.LoadSchema("app", 40)...)
	src.Exec(t, snapshotSchema("app", rows)...)
	base := pipelineYAML(src, dst, "", "") + "    snapshot: initial\n"
	before := testenv.LoadConfig(t, strings.Replace(base, `include: ["app.*"]`, `include: ["app.*"]
        exclude: ["app.wide", "app.ukey"]`, 1))
	after := testenv.LoadConfig(t, base)

	r, err := replicator.New(before, replicator.Options{Logger: testenv.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runErr := make(chan error, 1)
	go func() { runErr <- r.Run(ctx) }()
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
		if st := r.Status(); len(st) == 1 && st[0].State == "streaming" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not streaming: %+v", r.Status())
		}
	}
	if n := dst.QueryString(t, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'app' AND TABLE_NAME IN ('wide', 'ukey')"); n != "0" {
		t.Fatalf("the excluded tables are on the target (%s)", n)
	}
	ch := startChurn(t, src, rows)
	defer ch.stop()

	// A newly included table: request, then reload.
	if err := replicator.RequestIncremental(ctx, after, replicator.RequestOptions{Pipeline: "p", Tables: []string{"app.wide", "app.ukey"}, Logger: testenv.Logger()}); err != nil {
		t.Fatal(err)
	}
	r.Reload(after)
	waitIncremental(t, r, dst, "wide ukey", runErr)

	// A re-seed of an included table, picked up by the running process:
	// target rows the source does not have, in the middle of the key
	// order and after its end, are removed.
	dst.Exec(t, "INSERT INTO app.wide (a, b, tx) VALUES (3, 'k15000x', 'stale'), (99, 'stale', 'stale')")
	if err := replicator.RequestIncremental(ctx, after, replicator.RequestOptions{Pipeline: "p", Tables: []string{"app.wide"}, Logger: testenv.Logger()}); err != nil {
		t.Fatal(err)
	}
	// A DDL on the table while it is copied: the chunk in flight is read
	// again with the new definition.
	for deadline := time.Now().Add(time.Minute); !strings.Contains(incrementalState(t, dst), "wide:running:3:"); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the re-seed did not get to its third chunk: %s", incrementalState(t, dst))
		}
	}
	src.Exec(t, "ALTER TABLE app.wide ADD COLUMN extra INT DEFAULT 7")
	waitIncremental(t, r, dst, "wide ukey", runErr)

	ch.stop()
	cancel()
	if err := <-runErr; err != nil {
		t.Fatal(err)
	}
	if err := testenv.RunToEnd(t, after); err != nil {
		t.Fatal(err)
	}
	tables := snapshotTables("app")
	if a, b := src.Checksums(t, tables...), dst.Checksums(t, tables...); a != b {
		t.Fatalf("checksums differ:\nsource %s\ntarget %s", a, b)
	}
	cell := func(b []byte) string { return string(b) }
	for _, q := range []string{"SELECT a, b, HEX(tx), i64 FROM app.wide ORDER BY a, b", "SELECT code, n FROM app.ukey ORDER BY code"} {
		a, b := testenv.Rows(t, src.DB(t), q, cell), testenv.Rows(t, dst.DB(t), q, cell)
		if strings.Join(a, "\n") != strings.Join(b, "\n") {
			t.Errorf("%s: %d rows on the source, %d on the target, or they differ", q, len(a), len(b))
		}
	}
	t.Logf("churn: %d statements", ch.n.Load())
}

// BenchmarkIncrementalSnapshot copies the same 200,000-row table by
// snapshot: initial and by an incremental snapshot of a running pipeline
// (idle source), and reports both rates and their ratio.
func BenchmarkIncrementalSnapshot(b *testing.B) {
	servers := testenv.StartMariaDBs(b, 3)
	src, dst1, dst2 := servers[0], servers[1], servers[2]
	const rows = 200000
	src.Exec(b, "CREATE DATABASE app", "CREATE TABLE app.big (id INT PRIMARY KEY, a VARCHAR(40), b DOUBLE, c DATETIME(6))",
		fmt.Sprintf("INSERT INTO app.big SELECT seq, CONCAT('row ', seq), seq / 7, '2024-01-01' + INTERVAL seq SECOND FROM app.seq_1_to_%d", rows))
	quiet := testenv.Logger()
	for range b.N {
		start := time.Now()
		if err := testenv.RunToEnd(b, testenv.LoadConfig(b, pipelineYAML(src, dst1, "", "")+"    snapshot: initial\n")); err != nil {
			b.Fatal(err)
		}
		initial := time.Since(start)

		cfg := testenv.LoadConfig(b, strings.Replace(pipelineYAML(src, dst2, "", ""), "start: oldest", "start: current", 1))
		r, err := replicator.New(cfg, replicator.Options{Logger: quiet})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		runErr := make(chan error, 1)
		go func() { runErr <- r.Run(ctx) }()
		start = time.Now()
		if err := replicator.RequestIncremental(ctx, cfg, replicator.RequestOptions{Pipeline: "p", Tables: []string{"app.big"}, Logger: quiet, Wait: true}); err != nil {
			b.Fatal(err)
		}
		incr := time.Since(start)
		cancel()
		if err := <-runErr; err != nil {
			b.Fatal(err)
		}
		if a, c := src.Checksums(b, "app.big"), dst2.Checksums(b, "app.big"); a != c {
			b.Fatalf("checksums differ: %s %s", a, c)
		}
		b.ReportMetric(rows/initial.Seconds(), "initial_rows/s")
		b.ReportMetric(rows/incr.Seconds(), "incremental_rows/s")
		b.ReportMetric(initial.Seconds()/incr.Seconds(), "incremental/initial")
	}
}
