package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluice-cdc/sluice/internal/testenv"
)

// TestNATSCrashSafety kills sluice with SIGKILL again and again while it
// publishes a write load to NATS one message per row. The stream's
// de-duplication window is 100ms, so only sluice's own bookkeeping can
// prevent duplicates. A consumer (sluice tail) then sees every row of every
// transaction exactly once.
func TestNATSCrashSafety(t *testing.T) {
	src := testenv.StartMariaDB(t, testenv.MariaDBOptions{})
	n := testenv.StartNATSBinary(t, "")
	cdcStream(t, n.URL())
	src.Exec(t, testenv.LoadSchema("bank", 50)...)
	cfgPath := writeConfig(t, fmt.Sprintf(`
http: {listen: "127.0.0.1:%d"}
pipelines:
  - name: events
    sources:
      - {name: primary, dsn: "%s", start: oldest, include: ["bank.*"]}
    sink:
      type: nats
      url: %s
      stream: {name: CDC, create: false}
      subject: "cdc.{schema}.{table}.{pk}"
      mode: row
`, testenv.FreePort(t), src.DSN(), n.URL()))
	load := testenv.StartLoad(t, src, "bank", 4)
	for i := range 12 {
		d := startDaemon(t, cfgPath)
		time.Sleep(time.Duration(300+(i*337)%900) * time.Millisecond)
		if d.cmd.ProcessState != nil {
			t.Fatalf("sluice exited on its own:\n%s", logTail(t, cfgPath, 30))
		}
		d.kill()
	}
	load.Stop()
	catchUp(t, cfgPath)
	want := testenv.SourceRowCounts(t, src, "bank")

	// Count with sluice tail, as a consumer would.
	out, code := sluice(t, "tail", "-c", cfgPath, "--idle", "3s")
	if code != 0 {
		t.Fatalf("sluice tail exit %d:\n%s", code, out[:min(len(out), 2000)])
	}
	rows := map[string]int{}
	ids := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var m struct {
			Headers map[string]any `json:"headers"`
		}
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("tail line: %v: %s", err, line)
		}
		id, _ := m.Headers["Nats-Msg-Id"].(string)
		if ids[id] {
			t.Fatalf("message %s delivered twice", id)
		}
		ids[id] = true
		if m.Headers["Sluice-Op"] == "ddl" {
			continue
		}
		rows[m.Headers["Sluice-GTID"].(string)]++
	}
	bad := 0
	for g, n := range want {
		if rows[g] != n {
			bad++
			if bad < 4 {
				t.Errorf("transaction %s: %d rows in the stream, %d written", g, rows[g], n)
			}
		}
	}
	if bad > 0 || len(rows) != len(want) {
		t.Fatalf("%d of %d transactions wrong; %d in the stream", bad, len(want), len(rows))
	}
	t.Logf("12 kills; %d transactions, %d row messages, each exactly once", len(want), len(ids))
}

// TestNATSStandbyTakeover is TestStandbyTakeover with a NATS sink: three
// `sluice run` processes on one pipeline publish a transfer load, one at
// a time, while whichever is active is killed (SIGKILL) or frozen
// (SIGSTOP, SIGCONT after a standby took over). The stream's
// de-duplication window is 100ms, so only the lease's fence keeps a
// resumed process's publishes out. The position in the stream never goes
// back, and at the end JetStream holds every source transaction exactly
// once, in commit order, with all its rows. (The fence is pinned by
// sinks/nats TestLeaseFencing.)
func TestNATSStandbyTakeover(t *testing.T) {
	src := testenv.StartMariaDB(t, testenv.MariaDBOptions{})
	n := testenv.StartNATS(t)
	ctx := context.Background()
	stream := cdcStream(t, n.URL())
	src.Exec(t, testenv.LoadSchema("bank", 50)...)
	const ttl = 3 * time.Second
	stateDir, dir := t.TempDir(), t.TempDir()
	start := func(i int) *standbyProc {
		return startStandby(t, dir, i, func(port int) string {
			return fmt.Sprintf(`
state_dir: %s
http: {listen: "127.0.0.1:%d"}
pipelines:
  - name: events
    lease_ttl: %s
    sources:
      - {name: primary, dsn: "%s", start: oldest, include: ["bank.*"], server_id: 7001}
    sink:
      type: nats
      url: %s
      stream: {name: CDC, create: false}
      subject: "cdc.{schema}.{table}"
`, stateDir, port, ttl, src.DSN(), n.URL())
		})
	}
	// The stream's last transaction never goes back.
	var lastSeq uint64
	lastTxn := func() (seq uint64, checkpoint string) {
		m, err := stream.GetLastMsgForSubject(ctx, "cdc._txn")
		if err != nil {
			return 0, ""
		}
		g := m.Header.Get("Sluice-GTID")
		seq, _ = strconv.ParseUint(g[strings.LastIndex(g, "-")+1:], 10, 64)
		return seq, m.Header.Get("Sluice-Checkpoint")
	}
	sample := func() {
		seq, _ := lastTxn()
		if seq < lastSeq {
			t.Errorf("the stream's last transaction went back: %d -> %d", lastSeq, seq)
		}
		lastSeq = max(lastSeq, seq)
	}
	load := testenv.StartLoad(t, src, "bank", 4)
	_, cur := takeoverRounds(t, dir, ttl, start, sample)
	out, code := sluice(t, "status", "-c", cur.cfg)
	if code != 0 || !strings.Contains(out, "active (epoch ") {
		t.Fatalf("sluice status exit %d:\n%s", code, out)
	}
	load.Stop()
	want := src.QueryString(t, "SELECT @@gtid_binlog_pos")
	deadline := time.Now().Add(2 * time.Minute)
	for {
		sample()
		if _, ckpt := lastTxn(); ckpt == want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("did not catch up to %s:\n%s", want, logTail(t, cur.cfg, 30))
		}
		time.Sleep(200 * time.Millisecond)
	}

	// Consume the stream: each transaction once, in order, with its rows.
	rows := testenv.SourceRowCounts(t, src, "bank")
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{"cdc._txn"}})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var prev uint64
	for len(seen) < len(rows) {
		batch, err := cons.Fetch(1000, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for m := range batch.Messages() {
			got++
			g := m.Headers().Get("Sluice-GTID")
			if seen[g] {
				t.Fatalf("transaction %s published twice", g)
			}
			seen[g] = true
			seq, _ := strconv.ParseUint(g[strings.LastIndex(g, "-")+1:], 10, 64)
			if seq <= prev {
				t.Fatalf("transaction %s after %d: out of order", g, prev)
			}
			prev = seq
			var body struct {
				Changes []json.RawMessage `json:"changes"`
			}
			if err := json.Unmarshal(m.Data(), &body); err != nil {
				t.Fatalf("transaction %s: %v", g, err)
			}
			if len(body.Changes) != rows[g] {
				t.Fatalf("transaction %s: %d rows in the stream, %d on the source", g, len(body.Changes), rows[g])
			}
		}
		if got == 0 {
			break
		}
	}
	if len(seen) != len(rows) {
		t.Fatalf("%d transactions in the stream, %d on the source", len(seen), len(rows))
	}
	t.Logf("%d transactions published exactly once across 8 takeovers", len(seen))
}

// cdcStream makes the stream CDC (subjects cdc.>) on the NATS server at
// url, with a de-duplication window of 100ms, so that only sluice's own
// bookkeeping can prevent duplicates. Its connection closes with the test.
func cdcStream(t *testing.T, url string) jetstream.Stream {
	t.Helper()
	nc, err := natsgo.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: "CDC", Subjects: []string{"cdc.>"}, Duplicates: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return stream
}
