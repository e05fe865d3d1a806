package e2e

import (
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-cdc/sluice/internal/testenv"
)

// waitStreaming waits until n sources of the daemon are streaming.
func waitStreaming(t *testing.T, cfgPath string, n int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		out, _ := sluice(t, "status", "-c", cfgPath)
		if strings.Count(out, " streaming ") >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("sources not streaming:\n%s\n%s", out, logTail(t, cfgPath, 20))
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// sideLoad writes transactions on one side of a master-master pair: each
// inserts a row it owns, updates or deletes one of its own rows (by key, as
// an application that owns its rows does), and inserts a ledger row with a
// unique (side, seq): applied twice anywhere, it would collide and stop the
// pipeline.
func sideLoad(t *testing.T, m *testenv.MariaDB, side string, txns, workers int, committed *atomic.Int64) *sync.WaitGroup {
	db, err := sql.Open("mysql", m.DriverDSN("app"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), uint64(side[0])))
			var mine []int64 // ids of the rows this worker inserted and has not deleted
			for k := range txns / workers {
				seq := w*(txns/workers) + k + 1
				for attempt := 0; ; attempt++ {
					ids, err := sideTxn(db, r, side, seq, mine)
					if err == nil {
						mine = ids
						committed.Add(1)
						break
					}
					if attempt == 100 {
						t.Errorf("side %s: %v", side, err)
						return
					}
				}
			}
		})
	}
	return &wg
}

func sideTxn(db *sql.DB, r *rand.Rand, side string, seq int, mine []int64) ([]int64, error) {
	tx, err := db.Begin()
	if err != nil {
		return mine, err
	}
	defer tx.Rollback()
	res, err := tx.Exec("INSERT INTO items (owner, v, note) VALUES (?, ?, ?)", side, r.IntN(1000), fmt.Sprintf("%s-%d", side, seq))
	if err != nil {
		return mine, err
	}
	id, _ := res.LastInsertId()
	next := append(mine[:len(mine):len(mine)], id)
	if len(mine) > 0 {
		i := r.IntN(len(mine))
		if r.IntN(5) == 0 {
			_, err = tx.Exec("DELETE FROM items WHERE id = ?", mine[i])
			next = append(append(next[:0:0], mine[:i]...), append(mine[i+1:], id)...)
		} else {
			_, err = tx.Exec("UPDATE items SET v = v + 1 WHERE id = ?", mine[i])
		}
		if err != nil {
			return mine, err
		}
	}
	if _, err := tx.Exec("INSERT INTO ledger (side, seq) VALUES (?, ?)", side, seq); err != nil {
		return mine, err
	}
	return next, tx.Commit()
}

// TestBidirectional runs master-master between two MariaDB servers from one
// sluice process with the two pipelines of one file: the schema created on
// one side reaches the other, both sides write their own rows at once
// (6,000 transactions each: ten minutes of a side writing 10 per second), a
// column is added on the other side mid-load, and the daemon is killed
// once. Both sides converge, nothing is applied twice, nothing loops (both
// binlogs stop growing when writes stop), and sluice verify agrees.
func TestBidirectional(t *testing.T) {
	var a, b *testenv.MariaDB
	var wg sync.WaitGroup
	wg.Go(func() {
		a = testenv.StartMariaDB(t, testenv.MariaDBOptions{Args: []string{"--auto-increment-increment=2", "--auto-increment-offset=1"}})
	})
	wg.Go(func() {
		b = testenv.StartMariaDB(t, testenv.MariaDBOptions{Args: []string{"--auto-increment-increment=2", "--auto-increment-offset=2"}})
	})
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	httpPort := testenv.FreePort(t)
	cfgPath := writeConfig(t, fmt.Sprintf(`
http: {listen: "127.0.0.1:%d"}
pipelines:
  - name: a-to-b
    sources: [{name: a, dsn: "%s", include: ["app.*"]}]
    sink: {type: mysql, dsn: "%s"}
  - name: b-to-a
    sources: [{name: b, dsn: "%s", include: ["app.*"]}]
    sink: {type: mysql, dsn: "%s"}
`, httpPort, a.DSN(), b.DSN(), b.DSN(), a.DSN()))
	d := startDaemon(t, cfgPath)
	waitStreaming(t, cfgPath, 2)

	a.Exec(t, "CREATE DATABASE app",
		"CREATE TABLE app.items (id BIGINT AUTO_INCREMENT PRIMARY KEY, owner CHAR(1) NOT NULL, v INT NOT NULL, note VARCHAR(40), KEY (owner))",
		"CREATE TABLE app.ledger (side CHAR(1) NOT NULL, seq INT NOT NULL, PRIMARY KEY (side, seq))")
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
		var n int
		b.DB(t).QueryRow("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'app'").Scan(&n)
		if n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the schema did not reach b:\n%s", logTail(t, cfgPath, 20))
		}
	}

	const perSide = 6000
	var committedA, committedB atomic.Int64
	la := sideLoad(t, a, "a", perSide, 2, &committedA)
	lb := sideLoad(t, b, "b", perSide, 2, &committedB)
	waitCommitted := func(n int64) {
		for deadline := time.Now().Add(2 * time.Minute); committedA.Load()+committedB.Load() < n; time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("the load is stuck at %d+%d transactions:\na: %s\nb: %s\n%s", committedA.Load(), committedB.Load(),
					processList(t, a), processList(t, b), logTail(t, cfgPath, 30))
			}
		}
	}
	waitCommitted(perSide / 2)
	b.Exec(t, "ALTER TABLE app.items ADD COLUMN extra INT NOT NULL DEFAULT 7")
	waitCommitted(perSide)
	d.kill()
	d = startDaemon(t, cfgPath)
	waitCommitted(2 * perSide)
	la.Wait()
	lb.Wait()
	if t.Failed() {
		t.FailNow()
	}

	tables := []string{"app.items", "app.ledger"}
	converged := false
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		if a.Checksums(t, tables...) == b.Checksums(t, tables...) {
			converged = true
			break
		}
		if d.cmd.ProcessState != nil {
			t.Fatalf("sluice exited:\n%s", logTail(t, cfgPath, 30))
		}
	}
	if !converged {
		t.Fatalf("a %s\nb %s\n%s", a.Checksums(t, tables...), b.Checksums(t, tables...), logTail(t, cfgPath, 30))
	}
	for _, m := range []*testenv.MariaDB{a, b} {
		if n := m.QueryString(t, "SELECT COUNT(*) FROM app.ledger"); n != fmt.Sprint(2*perSide) {
			t.Fatalf("ledger has %s rows, want %d", n, 2*perSide)
		}
	}
	// No loop: once the last checkpoints are written, nothing more. The
	// binlogs must come to rest (unchanged for 5s) within a minute, however
	// long the last checkpoints take on a loaded machine; a loop never rests.
	pa, pb := a.BinlogPos(t), b.BinlogPos(t)
	for deadline := time.Now().Add(time.Minute); ; pa, pb = a.BinlogPos(t), b.BinlogPos(t) {
		time.Sleep(5 * time.Second)
		qa, qb := a.BinlogPos(t), b.BinlogPos(t)
		if qa == pa && qb == pb {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the binlogs keep growing without writes: a %s -> %s, b %s -> %s", pa, qa, pb, qb)
		}
	}
	log, _ := os.ReadFile(filepath.Join(filepath.Dir(cfgPath), "sluice.log"))
	if strings.Contains(string(log), "msg=conflict") {
		t.Fatalf("a conflict was logged:\n%s", logTail(t, cfgPath, 40))
	}
	if strings.Contains(string(log), "DDL already in effect") {
		t.Fatalf("a DDL came back to the server it came from:\n%s", logTail(t, cfgPath, 40))
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	if code := d.wait(30 * time.Second); code != 0 {
		t.Fatalf("sluice exited %d on SIGTERM:\n%s", code, logTail(t, cfgPath, 20))
	}
	out, code := sluice(t, "verify", "-c", cfgPath)
	if code != 0 || strings.Count(out, "MATCH ") != 4 {
		t.Fatalf("sluice verify exit %d:\n%s", code, out)
	}
	t.Logf("a %d and b %d transactions, converged; binlogs at a %s, b %s", committedA.Load(), committedB.Load(), pa, pb)
}

// TestShardsVerify aggregates two shards whose table names and keys
// overlap into one reporting database, as the README recipe does, and
// sluice verify compares each shard table with its rows in the merged
// table; an archive pipeline that drops deletes is reported as not
// comparable.
func TestShardsVerify(t *testing.T) {
	servers := testenv.StartMariaDBs(t, 3)
	shards, report := servers[:2], servers[2]
	for i, s := range shards {
		s.Exec(t, "CREATE DATABASE shop",
			"CREATE TABLE shop.orders_1 (id INT PRIMARY KEY, item VARCHAR(20), qty INT)",
			"CREATE TABLE shop.orders_2 (id INT PRIMARY KEY, item VARCHAR(20), qty INT)")
		for id := 1; id <= 200; id++ {
			s.Exec(t, fmt.Sprintf("INSERT INTO shop.orders_%d VALUES (%d, 'item-%d', %d)", 1+id%2, id, id, id*(i+1)))
		}
		s.Exec(t, "DELETE FROM shop.orders_1 WHERE id < 20", "UPDATE shop.orders_2 SET qty = qty + 1 WHERE id > 150")
	}
	report.Exec(t, "CREATE DATABASE reporting",
		"CREATE TABLE reporting.orders (shard VARCHAR(20) NOT NULL, tbl VARCHAR(64) NOT NULL, id INT NOT NULL, item VARCHAR(20), qty INT, PRIMARY KEY (shard, tbl, id))",
		"CREATE TABLE reporting.orders_archive LIKE reporting.orders")
	cfgPath := writeConfig(t, fmt.Sprintf(`
http: {listen: "off"}
pipelines:
  - name: reporting
    sources:
      - {name: shard1, dsn: "%[1]s", start: oldest}
      - {name: shard2, dsn: "%[2]s", start: oldest}
    include: ["shop.*"]
    routes:
      - {match: "shop.orders_*", to: reporting.orders, source_column: shard, table_column: tbl}
    sink: {type: mysql, dsn: "%[3]s", ddl: skip}
  - name: archive
    sources:
      - {name: shard1, dsn: "%[1]s", start: oldest}
      - {name: shard2, dsn: "%[2]s", start: oldest}
    include: ["shop.*"]
    operations: [insert, update]
    routes:
      - {match: "~^shop\\.orders_[0-9]+$", to: reporting.orders_archive, source_column: shard, table_column: tbl}
    sink: {type: mysql, dsn: "%[3]s", ddl: skip, on_conflict: overwrite}
`, shards[0].DSN(), shards[1].DSN(), report.DSN()))
	catchUp(t, cfgPath)
	if n := report.QueryString(t, "SELECT COUNT(*) FROM reporting.orders"); n != "382" {
		t.Fatalf("reporting.orders has %s rows, want 2 x 191", n)
	}
	if n := report.QueryString(t, "SELECT COUNT(*) FROM reporting.orders_archive"); n != "400" {
		t.Fatalf("the archive has %s rows, want all 400 ever inserted", n)
	}
	out, code := sluice(t, "verify", "-c", cfgPath)
	if code != 0 || strings.Count(out, "MATCH     ") != 4 || strings.Count(out, "SKIPPED ") != 4 ||
		!strings.Contains(out, "MATCH     reporting/shard2 shop.orders_1 (91 rows") {
		t.Fatalf("sluice verify exit %d:\n%s", code, out)
	}
	report.Exec(t, "UPDATE reporting.orders SET qty = 0 WHERE shard = 'shard2' AND tbl = 'orders_2' AND id = 101")
	out, code = sluice(t, "verify", "-c", cfgPath, "--pipeline", "reporting")
	if code != 1 || !strings.Contains(out, "MISMATCH  reporting/shard2 shop.orders_2 -> reporting.orders: ") || strings.Count(out, "MATCH     ") != 3 {
		t.Fatalf("sluice verify after a target change: exit %d:\n%s", code, out)
	}
}

// processList shows what a server's sessions are doing.
func processList(t *testing.T, m *testenv.MariaDB) string {
	rows, err := m.DB(t).Query("SELECT ID, COMMAND, TIME, COALESCE(STATE, ''), COALESCE(LEFT(INFO, 120), '') FROM information_schema.PROCESSLIST WHERE COMMAND != 'Sleep'")
	if err != nil {
		return err.Error()
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var id, time int64
		var cmd, state, info string
		rows.Scan(&id, &cmd, &time, &state, &info)
		fmt.Fprintf(&b, "\n  %d %s %ds %s: %s", id, cmd, time, state, info)
	}
	return b.String()
}
