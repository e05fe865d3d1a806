package nats_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sluice-cdc/sluice/internal/testenv"
)

// TestTwoSourcesNATSRestart: two sources publish through one NATS sink
// concurrently while the NATS server is killed and restarted. Each
// source's transactions arrive once, whole and in order: one source's
// retry never clears another's failed publish (each has its own spool and
// failure state), and the {source} subject placeholder names the source.
// Run with -race (make test does).
func TestTwoSourcesNATSRestart(t *testing.T) {
	srcs := testenv.StartMariaDBs(t, 2)
	for _, src := range srcs {
		src.Exec(t, testenv.LoadSchema("bank", 20)...)
	}
	var loads []*testenv.Load
	for _, src := range srcs {
		loads = append(loads, testenv.StartLoad(t, src, "bank", 2))
	}
	time.Sleep(3 * time.Second)
	for _, l := range loads {
		l.Stop()
	}
	want := []map[string]int{testenv.SourceRowCounts(t, srcs[0], "bank"), testenv.SourceRowCounts(t, srcs[1], "bank")}
	n := testenv.StartNATSBinary(t, "")
	cfg := testenv.LoadConfig(t, fmt.Sprintf(`
http: {listen: "off"}
pipelines:
  - name: p
    sources:
      - {name: east, dsn: "%s", start: oldest, include: ["bank.*"]}
      - {name: west, dsn: "%s", start: oldest, include: ["bank.*"]}
    sink:
      type: nats
      url: %s
      mode: row
      stream: {name: M}
      subject: "m.{source}.{schema}.{table}"
      ddl_subject: "m.{source}._ddl"
`, srcs[0].DSN(), srcs[1].DSN(), n.URL()))
	go func() {
		time.Sleep(700 * time.Millisecond)
		n.Kill()
		time.Sleep(time.Second)
		if err := n.Start(); err != nil {
			panic(err)
		}
	}()
	runToEnd(t, cfg)
	msgs := readStream(t, n.URL(), "M")
	for i, name := range []string{"east", "west"} {
		var mine []stored
		for _, m := range msgs {
			if m.header.Get("Sluice-Source") != name {
				continue
			}
			if !strings.HasPrefix(m.subject, "m."+name+".") {
				t.Fatalf("message of %s on subject %s: {source} not filled", name, m.subject)
			}
			mine = append(mine, m)
		}
		t.Logf("%s: %d messages", name, len(mine))
		checkDelivery(t, want[i], assemble(t, mine, "row"))
	}
}
