package e2e

import (
	"context"
	"encoding/json"
	"fmt"
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
	nc, err := natsgo.Connect(n.URL())
	if err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(nc)
	if _, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: "CDC", Subjects: []string{"cdc.>"}, Duplicates: 100 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	nc.Close()
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
