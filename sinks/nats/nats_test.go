package nats_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluice-cdc/sluice/config"
	"github.com/sluice-cdc/sluice/internal/testenv"
	"github.com/sluice-cdc/sluice/replicator"
	natssink "github.com/sluice-cdc/sluice/sinks/nats"
)

// stored is a message as a consumer sees it.
type stored struct {
	seq     uint64
	subject string
	header  natsgo.Header
	data    string
}

// readStream returns every message of a stream, in order, but the
// pipelines' lease markers and positions (Sluice-Op: lease, position),
// which consumers skip.
func readStream(t *testing.T, url, stream string) []stored {
	t.Helper()
	var out []stored
	for _, m := range readStreamAll(t, url, stream) {
		if op := m.header.Get(natssink.HdrOp); op != "lease" && op != "position" {
			out = append(out, m)
		}
	}
	return out
}

// readStreamAll returns every message of a stream, in order.
func readStreamAll(t *testing.T, url, stream string) []stored {
	t.Helper()
	nc, err := natsgo.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info, _ := st.Info(ctx)
	var out []stored
	if info.State.Msgs == 0 {
		return nil
	}
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	// A fetch that returns nothing is tried again: under -race on a loaded
	// machine (the embedded server runs in this process) 5s can pass with
	// nothing delivered. Only a minute without progress fails.
	stalled := time.Now()
	for uint64(len(out)) < info.State.Msgs {
		batch, err := cons.Fetch(min(1000, int(info.State.Msgs)-len(out)), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			md, _ := m.Metadata()
			out = append(out, stored{seq: md.Sequence.Stream, subject: m.Subject(), header: m.Headers(), data: string(m.Data())})
			n++
		}
		if n > 0 {
			stalled = time.Now()
		} else if time.Since(stalled) > time.Minute {
			t.Fatalf("read %d of %d messages, then nothing for a minute (%v)", len(out), info.State.Msgs, batch.Error())
		}
	}
	return out
}

func natsPipeline(t *testing.T, src *testenv.MariaDB, url, sink string) *config.File {
	t.Helper()
	yml := fmt.Sprintf(`
http: {listen: "off"}
pipelines:
  - name: p
    sources:
      - {name: primary, dsn: "%s", start: oldest, include: ["app.*"]}
    sink:
      type: nats
      url: %s
%s
`, src.DSN(), url, "      "+strings.ReplaceAll(strings.TrimSpace(sink), "\n", "\n      "))
	return testenv.LoadConfig(t, yml)
}

func runToEnd(t *testing.T, cfg *config.File) {
	t.Helper()
	if err := testenv.RunToEnd(t, cfg); err != nil {
		t.Fatal(err)
	}
}

func runErr(ctx context.Context, cfg *config.File) error {
	r, err := replicator.New(cfg, replicator.Options{StopAtEnd: true, Logger: testenv.Logger()})
	if err != nil {
		return err
	}
	return r.Run(ctx)
}
