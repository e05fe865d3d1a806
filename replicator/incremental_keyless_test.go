package replicator_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluice-cdc/sluice/internal/testenv"
	"github.com/sluice-cdc/sluice/replicator"
	"github.com/sluice-cdc/sluice/snapshot"
)

// countHandler counts the log records with a message, passing every
// record on.
type countHandler struct {
	slog.Handler
	msg string
	n   *atomic.Int64
}

func (h countHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.n.Add(1)
	}
	return h.Handler.Handle(ctx, r)
}

func (h countHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h countHandler) WithAttrs(a []slog.Attr) slog.Handler {
	return countHandler{h.Handler.WithAttrs(a), h.msg, h.n}
}

func (h countHandler) WithGroup(g string) slog.Handler {
	return countHandler{h.Handler.WithGroup(g), h.msg, h.n}
}

// TestIncrementalSnapshotKeyless adds tables without a primary key or
// unique NOT NULL key to a running pipeline into MySQL and one into NATS
// (sluice format). Such a table is copied whole, as one chunk written
// only if nothing changed the table while it was read: writes to it
// (duplicate rows included) go on until a chunk has been dropped for
// them, then stop, and the copy lands. The MySQL target's table ends
// equal to the source's; a consumer of the stream (a TRUNCATE before the
// read events, then the changes, rows matched by their whole image) ends
// with the source's rows. A keyless table over the size limit fails with
// a message naming it.
func TestIncrementalSnapshotKeyless(t *testing.T) {
	servers := testenv.StartMariaDBs(t, 2)
	src, dst := servers[0], servers[1]
	n := testenv.StartNATS(t)
	old := snapshot.MaxKeylessBytes
	snapshot.MaxKeylessBytes = 4 << 20
	t.Cleanup(func() { snapshot.MaxKeylessBytes = old })
	src.Exec(t, testenv.LoadSchema("app", 20)...)
	src.Exec(t, "CREATE TABLE app.nokey (kind VARCHAR(10), n INT)",
		"INSERT INTO app.nokey SELECT IF(seq % 3 = 0, 'dup', CONCAT('k', seq)), seq % 50 FROM app.seq_1_to_20000",
		"CREATE TABLE app.huge (kind VARCHAR(100), n INT)",
		"INSERT INTO app.huge SELECT REPEAT('x', 90), seq FROM app.seq_1_to_60000")
	natsPipeline := fmt.Sprintf(`
  - name: n
    sources:
      - {name: primary, dsn: "%s", start: current, include: ["app.*"], exclude: ["app.huge"%%s]}
    sink:
      type: nats
      url: %s
      stream: {name: KEYLESS, create: true}
      subject: "keyless.{schema}.{table}"
      mode: row
`, src.DSN(), n.URL())
	base := strings.Replace(pipelineYAML(src, dst, "", ""), "start: oldest", "start: current", 1)
	before := testenv.LoadConfig(t, strings.Replace(base, `include: ["app.*"]`, `include: ["app.*"]
        exclude: ["app.nokey", "app.huge"]`, 1)+fmt.Sprintf(natsPipeline, `, "app.nokey"`))
	after := testenv.LoadConfig(t, base+fmt.Sprintf(natsPipeline, ""))

	var drops atomic.Int64
	log := slog.New(countHandler{testenv.Logger().Handler(), "incremental snapshot: reading the chunk again", &drops})
	r, err := replicator.New(before, replicator.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runErr := startStreaming(t, ctx, r, 2)

	// Writes to the keyless table: duplicates inserted, one of several
	// equal rows deleted or updated.
	wctx, stopWrites := context.WithCancel(ctx)
	defer stopWrites()
	wrote := make(chan int, 1)
	go func() {
		db := src.DB(t)
		rnd := rand.New(rand.NewPCG(1, uint64(time.Now().UnixNano())))
		k := 0
		for wctx.Err() == nil {
			var q string
			switch rnd.IntN(4) {
			case 0:
				q = fmt.Sprintf("INSERT INTO app.nokey VALUES ('dup', %d)", rnd.IntN(50))
			case 1:
				q = fmt.Sprintf("DELETE FROM app.nokey WHERE kind = 'dup' AND n = %d LIMIT 1", rnd.IntN(50))
			case 2:
				q = fmt.Sprintf("UPDATE app.nokey SET n = n + 100 WHERE kind = 'dup' AND n = %d LIMIT 1", rnd.IntN(50))
			case 3:
				q = fmt.Sprintf("UPDATE app.nokey SET kind = 'dup' WHERE kind = 'k%d'", 1+rnd.IntN(20000))
			}
			if _, err := db.ExecContext(wctx, q); err == nil {
				k++
			}
			time.Sleep(3 * time.Millisecond)
		}
		wrote <- k
	}()
	time.Sleep(300 * time.Millisecond)
	for _, p := range []string{"p", "n"} {
		tables := []string{"app.nokey"}
		if p == "p" {
			tables = append(tables, "app.huge")
		}
		if err := replicator.RequestIncremental(ctx, after, replicator.RequestOptions{Pipeline: p, Tables: tables, Logger: testenv.Logger()}); err != nil {
			t.Fatal(err)
		}
	}
	r.Reload(after)
	for deadline := time.Now().Add(2 * time.Minute); drops.Load() < 2; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no chunk of the keyless table was dropped for the writes to it: %s", incrementalState(t, dst))
		}
	}
	stopWrites()
	t.Logf("%d writes to app.nokey, %d chunks dropped for them", <-wrote, drops.Load())

	// MySQL: app.nokey done, app.huge failed and named.
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
		st := incrementalState(t, dst)
		if strings.Contains(st, "nokey:done:") && strings.Contains(st, "huge:failed:") {
			if !strings.Contains(st, "table app.huge has no primary key or unique NOT NULL key and is too large for one chunk (more than 4 MiB)") {
				t.Errorf("app.huge's failure: %s", st)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("incremental snapshots: %s", st)
		}
	}
	// NATS: app.nokey done.
	waitNATSIncremental(t, ctx, after.Pipelines[1])
	cancel()
	if err := <-runErr; err != nil {
		t.Fatal(err)
	}
	if err := testenv.RunToEnd(t, after); err != nil {
		t.Fatal(err)
	}
	if a, b := src.Checksums(t, "app.nokey"), dst.Checksums(t, "app.nokey"); a != b {
		t.Fatalf("checksums differ:\nsource %s\ntarget %s", a, b)
	}
	want := testenv.Rows(t, src.DB(t), "SELECT kind, n FROM app.nokey", func(b []byte) string { return string(b) })
	got := keylessModel(t, n.URL(), "KEYLESS", "app.nokey")
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(want, got) {
		t.Fatalf("the stream's consumer has %d rows of app.nokey, the source %d, or they differ", len(got), len(want))
	}
}

var truncateRE = regexp.MustCompile("^TRUNCATE TABLE `([^`]+)`\\.`([^`]+)`$")

// keylessModel applies a stream's sluice-format messages (mode
// row) of one keyless table with columns kind and n to a multiset
// of rows, and returns its rows as "kind,n".
func keylessModel(t *testing.T, url, stream, table string) []string {
	t.Helper()
	rows := map[string]int{}
	img := func(raw json.RawMessage) string {
		var r struct {
			Kind string `json:"kind"`
			N    int    `json:"n"`
		}
		if err := json.Unmarshal(raw, &r); err != nil {
			t.Fatalf("row %s: %v", raw, err)
		}
		return fmt.Sprintf("%s,%d", r.Kind, r.N)
	}
	truncates, reads := 0, 0
	eachMessage(t, url, stream, func(m jetstream.Msg) {
		type change struct {
			Schema, Table, Type string
			Before, After       json.RawMessage
		}
		var body struct {
			DDL *struct {
				SQL string `json:"sql"`
			} `json:"ddl"`
			Changes []change `json:"changes"`
			change
		}
		if m.Headers().Get("Sluice-Op") == "snapshot" || m.Headers().Get("Sluice-Op") == "lease" || m.Headers().Get("Sluice-Op") == "position" || len(m.Data()) == 0 {
			return
		}
		if err := json.Unmarshal(m.Data(), &body); err != nil {
			t.Fatalf("message on %s: %v", m.Subject(), err)
		}
		if body.DDL != nil {
			if sm := truncateRE.FindStringSubmatch(body.DDL.SQL); sm != nil && sm[1]+"."+sm[2] == table {
				truncates++
				rows = map[string]int{}
			}
			return
		}
		if body.Schema != "" { // mode row: the body is one change
			body.Changes = []change{body.change}
		}
		for _, c := range body.Changes {
			if c.Schema+"."+c.Table != table {
				continue
			}
			if truncates == 0 {
				continue // before the copy: superseded by its TRUNCATE
			}
			if m.Headers().Get("Sluice-Snapshot") != "" {
				reads++
			}
			if len(c.Before) > 0 && string(c.Before) != "null" {
				k := img(c.Before)
				if rows[k] == 0 {
					t.Fatalf("%s: a change of a row the consumer lacks: %s", table, c.Before)
				}
				rows[k]--
			}
			if len(c.After) > 0 && string(c.After) != "null" {
				rows[img(c.After)]++
			}
		}
	})
	if truncates != 1 {
		t.Errorf("%s: %d TRUNCATEs in the stream, want 1 (before the copy's read events)", table, truncates)
	}
	t.Logf("%s: %d read events", table, reads)
	var out []string
	for k, c := range rows {
		for range c {
			out = append(out, k)
		}
	}
	return out
}
