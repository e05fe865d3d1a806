package e2e

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-cdc/sluice/internal/testenv"
)

// TestIncrementalSnapshotKillResume adds a 200,000-row table to a running
// sluice run (sluice snapshot --incremental, then kill -HUP), kills the
// process with SIGKILL once several chunks are committed, and starts it
// again: the copy resumes after the last committed chunk. The source's
// own count of rows read from the table (TABLE_STATISTICS) shows that the
// resumed run read only the rows after it, and the committed chunks
// counted every row once (less the source's row reads of the updates to
// the table, which go on all along, as do writes to other tables). Every
// table ends equal (CHECKSUM TABLE and sluice verify).
func TestIncrementalSnapshotKillResume(t *testing.T) {
	servers := testenv.StartMariaDBs(t, 2)
	src, dst := servers[0], servers[1]
	const rows = 200000
	src.Exec(t, testenv.LoadSchema("bank", 50)...)
	src.Exec(t, "CREATE TABLE bank.big (id INT PRIMARY KEY, a VARCHAR(40), b DOUBLE, c DATETIME(6))",
		fmt.Sprintf("INSERT INTO bank.big SELECT seq, CONCAT('row ', seq), seq / 7, '2024-01-01' + INTERVAL seq SECOND FROM bank.seq_1_to_%d", rows),
		"SET GLOBAL userstat = 1")
	body := fmt.Sprintf(`
http: {listen: "off"}
pipelines:
  - name: bank
    snapshot: initial
    sources:
      - {name: primary, dsn: "%s", include: ["bank.*"]%%s}
    sink: {type: mysql, dsn: "%s"}
`, src.DSN(), dst.DSN())
	cfgPath := writeConfig(t, fmt.Sprintf(body, `, exclude: ["bank.big"]`))
	d := startDaemon(t, cfgPath)
	for deadline := time.Now().Add(2 * time.Minute); dst.QueryString(t, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'sluice' AND TABLE_NAME = 'checkpoint'") == "0" ||
		dst.QueryString(t, "SELECT COUNT(*) FROM sluice.checkpoint") == "0"; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the pipeline did not start streaming:\n%s", logTail(t, cfgPath, 20))
		}
	}

	// Writes to the other tables and to the one being copied, all along.
	ctx, stopWrites := context.WithCancel(context.Background())
	defer stopWrites()
	writes := make(chan int, 1)
	var bigWrites atomic.Int64 // each reads one row of bank.big (by its key)
	go func() {
		db := src.DB(t)
		n := 0
		for i := 0; ctx.Err() == nil; i++ {
			q := fmt.Sprintf("UPDATE bank.accounts SET balance = balance + 1 WHERE id = %d", 1+i%50)
			if i%2 == 1 {
				q = fmt.Sprintf("UPDATE bank.big SET a = CONCAT('changed ', %d), b = b + 1 WHERE id = %d", i, 1+(i*7919)%rows)
			}
			if _, err := db.ExecContext(ctx, q); err == nil {
				n++
			}
			if i%2 == 1 {
				bigWrites.Add(1)
			}
			time.Sleep(10 * time.Millisecond)
		}
		writes <- n
	}()

	readStat := func() int { return rowsRead(t, src, "bank", "big") }
	before := readStat()

	if err := os.WriteFile(cfgPath, []byte(fmt.Sprintf(body, "")), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, code := sluice(t, "snapshot", "--incremental", "-c", cfgPath, "--pipeline", "bank", "--table", "bank.big"); code != 0 {
		t.Fatalf("sluice snapshot --incremental exited %d:\n%s", code, out)
	}
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	state := func() (string, int, int) {
		var st string
		var chunks, read int
		row := dst.QueryString(t, "SELECT IFNULL((SELECT CONCAT(state, ' ', chunks, ' ', rows_read) FROM sluice.snapshot_incremental WHERE table_name = 'big'), 'none 0 0')")
		fmt.Sscan(row, &st, &chunks, &read)
		return st, chunks, read
	}
	var killedAt int
	for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the incremental snapshot did not get to 4 chunks:\n%s", logTail(t, cfgPath, 20))
		}
		if dst.QueryString(t, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'sluice' AND TABLE_NAME = 'snapshot_incremental'") == "0" {
			continue
		}
		st, chunks, read := state()
		if st == "done" {
			t.Fatal("the incremental snapshot finished before the kill")
		}
		if chunks >= 4 {
			d.kill()
			_, _, killedAt = state()
			t.Logf("killed with %d chunks (%d rows) committed", chunks, killedAt)
			break
		}
		_ = read
	}
	chunkReadsGone(t, src, "bank", "big")
	readBeforeResume, writesBeforeResume := readStat(), bigWrites.Load()

	d = startDaemon(t, cfgPath)
	for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the resumed incremental snapshot did not finish:\n%s", logTail(t, cfgPath, 20))
		}
		if st, _, _ := state(); st == "done" {
			break
		}
		if st, _, _ := state(); st == "failed" {
			t.Fatalf("the incremental snapshot failed:\n%s", logTail(t, cfgPath, 20))
		}
	}
	resumedRead := readStat() - readBeforeResume - int(bigWrites.Load()-writesBeforeResume)
	st, chunks, read := state()
	t.Logf("%s: %d chunks, %d rows read in committed chunks; the source read %d rows of the table before the kill, %d after",
		st, chunks, read, readBeforeResume-before, resumedRead)
	if read != rows {
		t.Errorf("the committed chunks read %d rows, want %d: a chunk was counted twice or a row missed", read, rows)
	}
	// The resumed run reads the rows after the last committed chunk, plus
	// at most one row per query past a LIMIT; reading a finished chunk
	// again would add at least its 20,000 rows.
	if limit := rows - killedAt + 100; resumedRead > limit {
		t.Errorf("after the kill the source read %d rows of the table, more than the %d not yet committed (+100): finished chunks were read again", resumedRead, rows-killedAt)
	}
	if killedAt < 40000 {
		t.Errorf("killed with only %d rows committed: the count above proves little", killedAt)
	}
	if !strings.Contains(logTail(t, cfgPath, 400), "resumed=true") {
		t.Errorf("no resumed incremental snapshot in the log:\n%s", logTail(t, cfgPath, 30))
	}

	stopWrites()
	t.Logf("%d writes during the test", <-writes)
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	if code := d.wait(time.Minute); code != 0 {
		t.Fatalf("sluice run exited %d:\n%s", code, logTail(t, cfgPath, 20))
	}
	catchUp(t, cfgPath)
	tables := append(testenv.LoadTables("bank"), "bank.big")
	if a, b := src.Checksums(t, tables...), dst.Checksums(t, tables...); a != b {
		t.Fatalf("checksums differ:\nsource %s\ntarget %s", a, b)
	}
	if out, code := sluice(t, "verify", "-c", cfgPath, "-q"); code != 0 {
		t.Fatalf("sluice verify exited %d:\n%s", code, out)
	}
}

// chunkReadsGone waits until no SELECT from db.table runs on the source: a
// killed sluice's chunk query runs on until the server notices its client
// is gone, and the rows it reads would count as read after the kill.
func chunkReadsGone(t *testing.T, src *testenv.MariaDB, db, table string) {
	t.Helper()
	q := "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() AND INFO LIKE 'SELECT %FROM `" + db + "`.`" + table + "`%'"
	for deadline := time.Now().Add(30 * time.Second); src.QueryString(t, q) != "0"; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("a SELECT from %s.%s still runs on the source 30s after the kill", db, table)
		}
	}
}

// rowsRead is the rows the source read from a table, by its own count
// (TABLE_STATISTICS, with userstat on).
func rowsRead(t *testing.T, src *testenv.MariaDB, db, table string) int {
	t.Helper()
	s := src.QueryString(t, "SELECT IFNULL(SUM(ROWS_READ), 0) FROM information_schema.TABLE_STATISTICS WHERE TABLE_SCHEMA = '"+db+"' AND TABLE_NAME = '"+table+"'")
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
