package replicator_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sluice-cdc/sluice/config"
	"github.com/sluice-cdc/sluice/internal/testenv"
	"github.com/sluice-cdc/sluice/replicator"
)

// pipelineYAML is a one-source MySQL pipeline between two servers.
func pipelineYAML(src, dst *testenv.MariaDB, extraSource, extraSink string) string {
	return fmt.Sprintf(`
http: {listen: "off"}
pipelines:
  - name: p
    sources:
      - name: primary
        dsn: %s
        start: oldest
        include: ["app.*"]
%s
    sink:
      type: mysql
      dsn: %s
%s`, src.DSN(), indent(extraSource, 8), dst.DSN(), indent(extraSink, 6))
}

func indent(s string, n int) string {
	if s == "" {
		return ""
	}
	pad := strings.Repeat(" ", n)
	return pad + strings.ReplaceAll(strings.TrimSpace(s), "\n", "\n"+pad)
}

// runToEnd runs the pipelines until every source caught up.
func runToEnd(t *testing.T, cfg *config.File) {
	t.Helper()
	if err := testenv.RunToEnd(t, cfg); err != nil {
		t.Fatal(err)
	}
}

func TestReplicateBasic(t *testing.T) {
	servers := testenv.StartMariaDBs(t, 2)
	src, dst := servers[0], servers[1]
	src.Exec(t,
		"CREATE DATABASE app",
		"CREATE TABLE app.a (id INT PRIMARY KEY, v VARCHAR(20), d DECIMAL(10,2), u BIGINT UNSIGNED, ts TIMESTAMP(3) NULL, j JSON)",
		"CREATE TABLE app.nopk (x INT, y VARCHAR(10))",
		"CREATE DATABASE other", "CREATE TABLE other.ignored (z INT)", "INSERT INTO other.ignored VALUES (1)",
		"INSERT INTO app.a VALUES (1, 'one', 1.5, 18446744073709551615, '2024-01-01 00:00:00.123', '{\"k\": 1}'), (2, 'two', NULL, 0, NULL, NULL)",
		"INSERT INTO app.nopk VALUES (1, 'a'), (1, 'a'), (2, 'b')",
		"UPDATE app.a SET v = 'uno' WHERE id = 1",
		"DELETE FROM app.nopk WHERE x = 1 LIMIT 1",
		"ALTER TABLE app.a ADD COLUMN extra INT DEFAULT 7",
		"INSERT INTO app.a (id, v) VALUES (3, 'three')",
		"DELETE FROM app.a WHERE id = 2",
	)
	cfg := testenv.LoadConfig(t, pipelineYAML(src, dst, "", ""))
	runToEnd(t, cfg)
	tables := []string{"app.a", "app.nopk"}
	if a, b := src.Checksums(t, tables...), dst.Checksums(t, tables...); a != b {
		t.Fatalf("source %s, target %s", a, b)
	}
	// A second run has nothing to do and changes nothing.
	src.Exec(t, "INSERT INTO app.a (id, v) VALUES (4, 'four')")
	runToEnd(t, cfg)
	if a, b := src.Checksums(t, tables...), dst.Checksums(t, tables...); a != b {
		t.Fatalf("after a second run: source %s, target %s", a, b)
	}
	if n := dst.QueryString(t, "SELECT COUNT(*) FROM sluice.checkpoint"); n != "1" {
		t.Fatalf("%s checkpoint rows", n)
	}
}

// startRun runs the replicator in the background until stop is called;
// stop waits for it to end and returns its error.
func startRun(t *testing.T, cfg *config.File, stopAtEnd bool) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r, err := replicator.New(cfg, replicator.Options{StopAtEnd: stopAtEnd, Logger: testenv.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	return func() error {
		cancel()
		return <-done
	}
}

func loadPipeline(src, dst *testenv.MariaDB) string {
	return fmt.Sprintf(`
http: {listen: "off"}
pipelines:
  - name: load
    sources:
      - {name: primary, dsn: "%s", start: oldest, include: ["bank.*"]}
    sink: {type: mysql, dsn: "%s"}
`, src.DSN(), dst.DSN())
}

// TestConvergence: a random mixed write load over tables with and without
// keys and with most column types replicates to an identical target.
func TestConvergence(t *testing.T) {
	servers := testenv.StartMariaDBs(t, 2)
	src, dst := servers[0], servers[1]
	src.Exec(t, testenv.LoadSchema("bank", 50)...)
	cfg := testenv.LoadConfig(t, loadPipeline(src, dst))
	stop := startRun(t, cfg, false)
	load := testenv.StartLoad(t, src, "bank", 4)
	// At least 5s and 100 transactions of load while the pipeline runs: on a
	// loaded machine 5s alone may write fewer.
	time.Sleep(5 * time.Second)
	for deadline := time.Now().Add(2 * time.Minute); load.Txns.Load() < 100 && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
	}
	load.Stop()
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	runToEnd(t, cfg) // catch up with what the load wrote last
	tables := testenv.LoadTables("bank")
	if a, b := src.Checksums(t, tables...), dst.Checksums(t, tables...); a != b {
		t.Fatalf("source %s\ntarget %s", a, b)
	}
	t.Logf("%d transactions (%d transfers) replicated", load.Txns.Load(), load.Transfers.Load())
	if load.Txns.Load() < 100 {
		t.Fatalf("only %d transactions written", load.Txns.Load())
	}
}

// TestAtomicity: a reader on the target never sees half a transfer; the
// sum of balances is the same at every read.
func TestAtomicity(t *testing.T) {
	servers := testenv.StartMariaDBs(t, 2)
	src, dst := servers[0], servers[1]
	src.Exec(t, testenv.LoadSchema("bank", 20)...)
	cfg := testenv.LoadConfig(t, loadPipeline(src, dst))
	runToEnd(t, cfg)
	stop := startRun(t, cfg, false)
	load := testenv.StartLoad(t, src, "bank", 3)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	reads, distinct := 0, map[int64]bool{}
	db := dst.DB(t)
	for ctx.Err() == nil {
		var sum int64
		var n int
		if err := db.QueryRow("SELECT COALESCE(SUM(balance), 0), COUNT(*) FROM bank.accounts").Scan(&sum, &n); err != nil {
			t.Fatal(err)
		}
		if sum != 20*1000 || n != 20 {
			t.Fatalf("read %d: sum of balances %d over %d accounts, want 20000 over 20: a transaction was applied in parts", reads, sum, n)
		}
		var ledger int64
		if err := db.QueryRow("SELECT COUNT(*) FROM bank.ledger").Scan(&ledger); err != nil {
			t.Fatal(err)
		}
		distinct[ledger] = true
		reads++
	}
	load.Stop()
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if len(distinct) < 5 {
		t.Fatalf("the target moved through only %d states in %d reads: is replication running?", len(distinct), reads)
	}
	t.Logf("%d reads over %d target states, sum constant", reads, len(distinct))
}
