package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluice-cdc/sluice/internal/testenv"
)

// TestNATSIncrementalSnapshotKillResume adds a 200,000-row table to a
// running NATS pipeline (sluice format, one message per row) with sluice
// snapshot --incremental, whose request is a record in the stream (no
// MySQL target), and kill -HUP, under a write load on the other tables and
// updates, deletes and inserts on the table being copied. It kills the
// process with SIGKILL once several chunks are recorded and starts it
// again: the copy resumes after the last recorded chunk (the source's own
// count of rows read from the table, TABLE_STATISTICS, shows that the
// resumed run read only the rows after it, and the recorded chunks counted
// every row once, give or take the rows deleted and inserted meanwhile). A consumer applying the stream in order (read events
// and the table's changes as upserts, deletes by key) ends with the
// source's rows, values included. The stream's duplicate window is 100ms:
// nothing rests on it.
func TestNATSIncrementalSnapshotKillResume(t *testing.T) {
	src := testenv.StartMariaDB(t, testenv.MariaDBOptions{})
	n := testenv.StartNATSBinary(t, "")
	ctx := context.Background()
	stream := cdcStream(t, n.URL())
	const rows = 200000
	src.Exec(t, testenv.LoadSchema("bank", 50)...)
	src.Exec(t, "CREATE TABLE bank.big (id INT PRIMARY KEY, a VARCHAR(40), b DOUBLE)",
		fmt.Sprintf("INSERT INTO bank.big SELECT seq, CONCAT('row ', seq), seq / 7 FROM bank.seq_1_to_%d", rows),
		"SET GLOBAL userstat = 1")
	body := fmt.Sprintf(`
http: {listen: "off"}
pipelines:
  - name: events
    snapshot: initial
    sources:
      - {name: primary, dsn: "%s", include: ["bank.*"]%%s}
    sink:
      type: nats
      url: %s
      stream: {name: CDC, create: false}
      subject: "cdc.{schema}.{table}"
      mode: row
`, src.DSN(), n.URL())
	cfgPath := writeConfig(t, fmt.Sprintf(body, `, exclude: ["bank.big"]`))
	d := startDaemon(t, cfgPath)
	load := testenv.StartLoad(t, src, "bank", 2)
	// Streaming: a change of the load is in the stream.
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
		info, err := stream.Info(ctx, jetstream.WithSubjectFilter("cdc.bank.ledger"))
		if err != nil {
			t.Fatal(err)
		}
		if info.State.Msgs > 0 {
			if m, err := stream.GetLastMsgForSubject(ctx, "cdc.bank.ledger"); err == nil && m.Header.Get("Sluice-Snapshot") == "" {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the pipeline did not start streaming:\n%s", logTail(t, cfgPath, 20))
		}
	}

	// Writes to the table being copied, all along: updates, deletes and
	// inserts (of keys past the end too).
	wctx, stopWrites := context.WithCancel(context.Background())
	defer stopWrites()
	writes := make(chan int, 1)
	var bigReads atomic.Int64 // rows of bank.big the writes read (by key)
	go func() {
		db := src.DB(t)
		n := 0
		for i := 0; wctx.Err() == nil; i++ {
			id := 1 + (i*7919)%(rows+rows/10)
			var q string
			switch i % 5 {
			case 0, 1, 2:
				q = fmt.Sprintf("UPDATE bank.big SET a = CONCAT('changed ', %d), b = b + 1 WHERE id = %d", i, id)
			case 3:
				q = fmt.Sprintf("DELETE FROM bank.big WHERE id = %d", id)
			case 4:
				q = fmt.Sprintf("REPLACE INTO bank.big VALUES (%d, CONCAT('new ', %d), %d)", id, i, i)
			}
			if _, err := db.ExecContext(wctx, q); err == nil {
				n++
			}
			bigReads.Add(2) // a REPLACE reads the row and the key lookup may read one more; an upper bound
			time.Sleep(5 * time.Millisecond)
		}
		writes <- n
	}()

	readStat := func() int { return rowsRead(t, src, "bank", "big") }
	// record is bank.big's last incremental snapshot record.
	type record struct {
		State    string `json:"state"`
		Chunks   int    `json:"chunks"`
		RowsRead int    `json:"rows_read"`
		Message  string `json:"message"`
	}
	state := func() record {
		var rec record
		info, err := stream.Info(ctx, jetstream.WithSubjectFilter("cdc._snapshot.*.*.*.incremental"))
		if err != nil {
			t.Fatal(err)
		}
		for subj := range info.State.Subjects {
			m, err := stream.GetLastMsgForSubject(ctx, subj)
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(m.Data, &rec); err != nil {
				t.Fatal(err)
			}
		}
		return rec
	}

	if err := os.WriteFile(cfgPath, []byte(fmt.Sprintf(body, "")), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, code := sluice(t, "snapshot", "--incremental", "-c", cfgPath, "--pipeline", "events", "--table", "bank.big"); code != 0 {
		t.Fatalf("sluice snapshot --incremental exited %d:\n%s", code, out)
	}
	if st := state(); st.State != "requested" {
		t.Fatalf("after the request the table's record is %+v", st)
	}
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	var killedAt int
	for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the incremental snapshot did not get to 4 chunks: %+v\n%s", state(), logTail(t, cfgPath, 20))
		}
		st := state()
		if st.State == "done" || st.State == "failed" {
			t.Fatalf("the incremental snapshot ended before the kill: %+v", st)
		}
		if st.Chunks >= 4 {
			d.kill()
			killedAt = state().RowsRead
			t.Logf("killed with %d chunks (%d rows) recorded", st.Chunks, killedAt)
			break
		}
	}
	chunkReadsGone(t, src, "bank", "big")
	readBeforeResume, writesBeforeResume := readStat(), bigReads.Load()

	d = startDaemon(t, cfgPath)
	for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
		st := state()
		if st.State == "done" {
			break
		}
		if st.State == "failed" {
			t.Fatalf("the incremental snapshot failed: %s", st.Message)
		}
		if time.Now().After(deadline) || d.cmd.ProcessState != nil {
			t.Fatalf("the resumed incremental snapshot did not finish: %+v\n%s", st, logTail(t, cfgPath, 20))
		}
	}
	resumedRead := readStat() - readBeforeResume - int(bigReads.Load()-writesBeforeResume)
	st := state()
	t.Logf("%s: %d chunks, %d rows read in recorded chunks; the source read %d rows of the table after the kill (less the writes' reads)",
		st.State, st.Chunks, st.RowsRead, resumedRead)
	// Rows deleted and inserted during the copy make the count differ
	// from the table's size by at most the writes; a chunk counted twice
	// adds 20,000.
	if d := st.RowsRead - rows; d > int(bigReads.Load()/2) || -d > int(bigReads.Load()/2) {
		t.Errorf("the recorded chunks read %d rows, the table had %d and %d writes: a chunk was counted twice or rows missed", st.RowsRead, rows, bigReads.Load()/2)
	}
	// The resumed run reads the rows after the last recorded chunk, plus
	// at most one row per query past a LIMIT; reading a finished chunk
	// again would add at least its 20,000 rows.
	if limit := rows - killedAt + 100; resumedRead > limit {
		t.Errorf("after the kill the source read %d rows of the table, more than the %d not yet recorded (+100): finished chunks were read again", resumedRead, rows-killedAt)
	}
	if killedAt < 40000 {
		t.Errorf("killed with only %d rows recorded: the count above proves little", killedAt)
	}
	if !strings.Contains(logTail(t, cfgPath, 400), "resumed=true") {
		t.Errorf("no resumed incremental snapshot in the log:\n%s", logTail(t, cfgPath, 30))
	}

	stopWrites()
	t.Logf("%d writes to bank.big during the test", <-writes)
	load.Stop()
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	if code := d.wait(time.Minute); code != 0 {
		t.Fatalf("sluice run exited %d:\n%s", code, logTail(t, cfgPath, 20))
	}
	catchUp(t, cfgPath)

	c := newStreamModel()
	c.upsert = map[string]bool{"bank.big": true}
	c.read(t, ctx, stream)
	c.equalSource(t, src, "bank", "accounts", "ledger", "items", "big")
	// Every row of bank.big, values included.
	want := map[string]string{}
	for _, r := range testenv.Rows(t, src.DB(t), "SELECT id, a FROM bank.big", func(b []byte) string { return string(b) }) {
		id, a, _ := strings.Cut(r, ",")
		want[id] = a
	}
	bad := 0
	for _, r := range c.rows["bank.big"] {
		var id int
		var a string
		json.Unmarshal(r["id"], &id)
		json.Unmarshal(r["a"], &a)
		if w, ok := want[strconv.Itoa(id)]; !ok || w != a {
			if bad++; bad <= 5 {
				t.Errorf("bank.big id %d: %q from the stream, %q on the source (there: %v)", id, a, w, ok)
			}
		}
	}
	t.Logf("%d read events of bank.big; load: %d transactions", c.reads["big"], load.Txns.Load())
}
