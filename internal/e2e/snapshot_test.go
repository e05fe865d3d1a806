package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-cdc/sluice/internal/testenv"
)

// TestSnapshotKillResume kills `sluice snapshot` with SIGKILL while it
// copies, once a big table is finished and some chunks of the other are
// committed, under a write load on every table, the big ones included
// (updates, deletes, inserts, key moves, transactions on both). The second
// run keeps the finished table (its progress row, position and time
// untouched) and resumes the other after its last committed chunk, in a
// new snapshot: the source's general log shows that the second run read
// no chunk the first had committed (its first SELECT of that table starts
// exactly after the committed key, each later one after the previous
// chunk) and never read the finished table. sluice run (without snapshot:
// initial: the pipeline file need not say it) then streams, applying the
// resumed table's changes between its two positions as upserts, and every
// table ends equal (CHECKSUM TABLE and sluice verify), with no transfer
// lost or applied twice (the ledger's unique ids).
func TestSnapshotKillResume(t *testing.T) {
	servers := testenv.StartMariaDBs(t, 2)
	src, dst := servers[0], servers[1]
	sizes := map[string]int{"big1": 300000, "big2": 200000} // big1 is copied first: the largest goes first
	bigBank(t, src, sizes)
	load := testenv.StartLoad(t, src, "bank", 3)
	big := startBigLoad(t, src, sizes)
	// Every query the source runs, to count the chunks each run reads.
	src.Exec(t, "SET GLOBAL log_output = 'TABLE'", "SET GLOBAL general_log = 1")

	cfgPath := bankConfig(t, src, dst, "")

	d := startCommand(t, "snapshot", cfgPath, "--readers", "1", "--writers", "2")
	deadline := time.Now().Add(2 * time.Minute)
	var done1, finished, resumed string
	for {
		if time.Now().After(deadline) {
			t.Fatalf("no big table finished while the other was half copied:\n%s", logTail(t, cfgPath, 20))
		}
		if dst.QueryString(t, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'sluice' AND TABLE_NAME = 'snapshot'") == "0" {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		state := dst.QueryString(t, "SELECT IFNULL(GROUP_CONCAT(table_name, ':', done, ':', chunks ORDER BY table_name), '') FROM sluice.snapshot")
		progress := map[string]string{} // table -> done:chunks
		for _, e := range strings.Split(state, ",") {
			if name, rest, ok := strings.Cut(e, ":"); ok {
				progress[name] = rest
			}
		}
		for _, pair := range [][2]string{{"big1", "big2"}, {"big2", "big1"}} {
			done, copying := progress[pair[0]], progress[pair[1]]
			// Several chunks committed (the first is 10 rows, then about
			// 1 MiB each).
			if n, err := strconv.Atoi(strings.TrimPrefix(copying, "0:")); strings.HasPrefix(done, "1:") && strings.HasPrefix(copying, "0:") && err == nil && n >= 3 {
				d.kill()
				finished, resumed = pair[0], pair[1]
				done1 = dst.QueryString(t, "SELECT CONCAT(gtid_set, ' ', updated_at) FROM sluice.snapshot WHERE table_name = ?", finished)
				t.Logf("killed with %s", state)
				break
			}
		}
		if finished != "" {
			break
		}
		if d.cmd.ProcessState != nil {
			t.Fatalf("sluice snapshot ended before the kill:\n%s", logTail(t, cfgPath, 20))
		}
		time.Sleep(20 * time.Millisecond)
	}
	// What the first run committed of the table it was copying.
	var after string
	var chunks1 int
	row := dst.DB(t).QueryRow("SELECT after_key, chunks, gtid_set FROM sluice.snapshot WHERE table_name = ?", resumed)
	var at1 string
	if err := row.Scan(&after, &chunks1, &at1); err != nil {
		t.Fatal(err)
	}
	lastKey := afterKey(t, after)
	// The general log from here on is the second run's.
	src.Exec(t, "SET GLOBAL general_log = 0", "TRUNCATE TABLE mysql.general_log", "SET GLOBAL general_log = 1")
	time.Sleep(200 * time.Millisecond) // the big tables change between the two positions

	if out, code := sluice(t, "snapshot", "-c", cfgPath); code != 0 {
		t.Fatalf("sluice snapshot after the kill exited %d:\n%s", code, out)
	}
	src.Exec(t, "SET GLOBAL general_log = 0")
	if again := dst.QueryString(t, "SELECT CONCAT(gtid_set, ' ', updated_at) FROM sluice.snapshot WHERE table_name = ?", finished); again != done1 {
		t.Fatalf("%s was copied again after the kill: its progress went from %q to %q", finished, done1, again)
	}
	var chunks2 int
	var from2, at2 string
	if err := dst.DB(t).QueryRow("SELECT chunks, from_gtid_set, gtid_set FROM sluice.snapshot WHERE table_name = ?", resumed).Scan(&chunks2, &from2, &at2); err != nil {
		t.Fatal(err)
	}
	if from2 != at1 || at2 == at1 {
		t.Fatalf("%s resumed: its first part's position is %q (want the first run's %q), its last part's %q", resumed, from2, at1, at2)
	}
	// Every chunk SELECT of the second run, in order.
	reads := testenv.Rows(t, src.DB(t), "SELECT argument FROM mysql.general_log WHERE command_type = 'Query' AND argument LIKE 'SELECT %FROM `bank`.`big%' ORDER BY event_time", func(b []byte) string { return string(b) })
	var keys []int
	for _, q := range reads {
		switch {
		case strings.Contains(q, "`bank`.`"+finished+"`"):
			t.Fatalf("the second run read the finished table %s: %s", finished, q)
		case !strings.Contains(q, " WHERE "):
			t.Fatalf("the second run read %s from its first row: %s", resumed, q)
		}
		keys = append(keys, afterKey(t, q))
	}
	if len(keys) == 0 || keys[0] != lastKey {
		t.Fatalf("the second run's reads of %s start after %v, want after %d (the last chunk committed)", resumed, keys, lastKey)
	}
	for i := 1; i < len(keys); i++ {
		if keys[i] <= keys[i-1] {
			t.Fatalf("the second run read %s after key %d, then after %d", resumed, keys[i-1], keys[i])
		}
	}
	// One SELECT per chunk, and perhaps one more finding no row.
	if n := chunks2 - chunks1; len(keys) != n && len(keys) != n+1 {
		t.Fatalf("the second run read %s %d times for %d chunks", resumed, len(keys), n)
	}
	t.Logf("%s: %d chunks committed before the kill (up to id %d), %d after it in %d reads", resumed, chunks1, lastKey, chunks2-chunks1, len(keys))

	if out, code := sluice(t, "snapshot", "-c", cfgPath); code != 1 || !strings.Contains(out, "already streams") {
		t.Fatalf("a second snapshot of a source with a checkpoint: exit %d, want 1 and a message:\n%s", code, out)
	}
	catchUp(t, cfgPath)
	big.stop()
	load.Stop()
	catchUp(t, cfgPath)
	tables := append(testenv.LoadTables("bank"), "bank.big1", "bank.big2")
	if a, b := src.Checksums(t, tables...), dst.Checksums(t, tables...); a != b {
		t.Fatalf("checksums differ:\nsource %s\ntarget %s", a, b)
	}
	if out, code := sluice(t, "verify", "-c", cfgPath, "-q"); code != 0 {
		t.Fatalf("sluice verify exited %d:\n%s", code, out)
	}
	t.Logf("load: %d transfers, %d writes to the big tables", load.Transfers.Load(), big.writes.Load())
}

// bankConfig writes a pipeline file replicating bank from src to dst,
// the pipeline's entry ending with extra.
func bankConfig(t *testing.T, src, dst *testenv.MariaDB, extra string) string {
	return writeConfig(t, fmt.Sprintf(`
http: {listen: "off"}
pipelines:
  - name: bank
    sources:
      - {name: primary, dsn: "%s", include: ["bank.*"]}
    sink: {type: mysql, dsn: "%s"}
`, src.DSN(), dst.DSN())+extra)
}

// bigBank fills src with the bank schema and big tables of sizes rows,
// then purges the binlogs that hold their creation and first rows.
func bigBank(t *testing.T, src *testenv.MariaDB, sizes map[string]int) {
	src.Exec(t, testenv.LoadSchema("bank", 50)...)
	for tb, n := range sizes {
		src.Exec(t, "CREATE TABLE bank."+tb+" (id INT PRIMARY KEY, a VARCHAR(40), b DOUBLE, c DATETIME(6))",
			fmt.Sprintf("INSERT INTO bank.%s SELECT seq, CONCAT('row ', seq), seq / 7, '2024-01-01' + INTERVAL seq SECOND FROM bank.seq_1_to_%d", tb, n))
	}
	src.Exec(t, "FLUSH BINARY LOGS")
	files := src.BinlogFiles(t)
	src.PurgeBinlogsTo(t, files[len(files)-1])
}

var afterRE = regexp.MustCompile("\\(`id`>([0-9]+)\\)")

// afterKey is the key in a chunk condition "(`id`>N)".
func afterKey(t *testing.T, s string) int {
	t.Helper()
	m := afterRE.FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("no (`id`>N) in %q", s)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// bigLoad writes to the big tables until stopped: updates, deletes and
// inserts of rows anywhere in the key range, rows moved to another key,
// and transactions changing both tables.
type bigLoad struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	writes atomic.Int64
}

func startBigLoad(t *testing.T, m *testenv.MariaDB, sizes map[string]int) *bigLoad {
	ctx, cancel := context.WithCancel(context.Background())
	l := &bigLoad{cancel: cancel}
	db := m.DB(t)
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
		next := 1000000
		for ctx.Err() == nil {
			tb := "big1"
			if r.IntN(2) == 0 {
				tb = "big2"
			}
			id := 1 + r.IntN(sizes[tb])
			var err error
			switch p := r.IntN(100); {
			case p < 45:
				_, err = db.ExecContext(ctx, "UPDATE bank."+tb+" SET a = CONCAT('upd ', ?), b = b + 1 WHERE id = ?", r.Int64(), id)
			case p < 60:
				_, err = db.ExecContext(ctx, "DELETE FROM bank."+tb+" WHERE id = ?", id)
			case p < 75:
				_, err = db.ExecContext(ctx, "INSERT IGNORE INTO bank."+tb+" VALUES (?, 'back', 1.5, NOW(6))", id)
			case p < 82:
				next++
				_, err = db.ExecContext(ctx, "INSERT INTO bank."+tb+" VALUES (?, 'new', 2.5, NOW(6))", next)
			case p < 90:
				_, err = db.ExecContext(ctx, "UPDATE IGNORE bank."+tb+" SET id = ? WHERE id = ?", 1+r.IntN(sizes[tb]), id)
			default:
				err = bigTxn(ctx, db, id, 1+r.IntN(sizes["big2"]))
			}
			if err == nil {
				l.writes.Add(1)
			}
			time.Sleep(time.Millisecond)
		}
	}()
	t.Cleanup(l.stop)
	return l
}

func bigTxn(ctx context.Context, db *sql.DB, id1, id2 int) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, "UPDATE bank.big1 SET a = 'txn', b = b - 1 WHERE id = ?", id1); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, "UPDATE bank.big2 SET a = 'txn', b = b + 1 WHERE id = ?", id2); err != nil {
		return err
	}
	return tx.Commit()
}

func (l *bigLoad) stop() {
	l.cancel()
	l.wg.Wait()
}

// TestSnapshotDoneWhen is issue 12's "done when", as a user would try it:
// a source with 1,000,000 rows under a live write load (transfers, and
// updates, deletes, inserts and key moves in the big tables), its early
// binlogs purged; one `sluice run` with snapshot: initial copies it and
// goes on streaming (a row written after the copy arrives while it runs),
// with a peak RSS under 300 MiB, and once the load stops the target is
// equal (CHECKSUM TABLE and sluice verify).
func TestSnapshotDoneWhen(t *testing.T) {
	opts := testenv.MariaDBOptions{Args: []string{"--innodb-log-file-size=256M", "--innodb-buffer-pool-size=256M"}}
	src, dst := testenv.StartMariaDB(t, opts), testenv.StartMariaDB(t, opts)
	sizes := map[string]int{"big1": 600000, "big2": 400000}
	bigBank(t, src, sizes)
	load := testenv.StartLoad(t, src, "bank", 3)
	big := startBigLoad(t, src, sizes)
	cfgPath := bankConfig(t, src, dst, "    snapshot: initial\n")
	src.Exec(t, "CREATE TABLE bank.marks (id INT PRIMARY KEY)")
	d := startDaemon(t, cfgPath)
	var peak int
	// wait polls until done, sampling the process's peak RSS.
	wait := func(what string, done func() bool) {
		for deadline := time.Now().Add(4 * time.Minute); !done(); time.Sleep(200 * time.Millisecond) {
			peak = max(peak, peakRSS(t, d))
			if d.cmd.ProcessState != nil {
				t.Fatalf("sluice run exited while waiting for %s:\n%s", what, logTail(t, cfgPath, 20))
			}
			if time.Now().After(deadline) {
				t.Fatalf("no %s within 4 minutes:\n%s", what, logTail(t, cfgPath, 20))
			}
		}
	}
	wait("copy of the big tables", func() bool {
		return dst.QueryString(t, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'sluice' AND TABLE_NAME = 'snapshot'") == "1" &&
			dst.QueryString(t, "SELECT COUNT(*) FROM sluice.snapshot WHERE table_name IN ('big1', 'big2') AND done = 1") == "2"
	})
	// Streaming goes on after the copy: a row written now arrives.
	src.Exec(t, "INSERT INTO bank.marks VALUES (1)")
	wait("streamed row", func() bool { return dst.QueryString(t, "SELECT COUNT(*) FROM bank.marks WHERE id = 1") == "1" })
	big.stop()
	load.Stop()
	src.Exec(t, "INSERT INTO bank.marks VALUES (2)")
	wait("catch-up after the load", func() bool { return dst.QueryString(t, "SELECT COUNT(*) FROM bank.marks WHERE id = 2") == "1" })
	peak = max(peak, peakRSS(t, d))
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	if code := d.wait(time.Minute); code != 0 {
		t.Fatalf("sluice run exited %d on SIGTERM:\n%s", code, logTail(t, cfgPath, 20))
	}
	if peak <= 0 || peak >= 300<<10 {
		t.Fatalf("sluice run's peak RSS %d KiB, want under 300 MiB", peak)
	}
	tables := append(testenv.LoadTables("bank"), "bank.big1", "bank.big2", "bank.marks")
	if a, b := src.Checksums(t, tables...), dst.Checksums(t, tables...); a != b {
		t.Fatalf("checksums differ:\nsource %s\ntarget %s", a, b)
	}
	if out, code := sluice(t, "verify", "-c", cfgPath, "-q"); code != 0 {
		t.Fatalf("sluice verify exited %d:\n%s", code, out)
	}
	t.Logf("peak RSS %d MiB; load: %d transfers, %d writes to the big tables", peak>>10, load.Transfers.Load(), big.writes.Load())
}

// peakRSS is the process's peak resident set so far (VmHWM), in KiB.
func peakRSS(t *testing.T, d *daemon) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", d.cmd.Process.Pid))
	if err != nil {
		return 0 // exited
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	t.Fatal("no VmHWM in /proc/PID/status")
	return 0
}
