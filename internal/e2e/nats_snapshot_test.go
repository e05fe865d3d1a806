package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluice-cdc/sluice/internal/testenv"
)

// TestNATSSnapshotKillResume runs snapshot: initial into NATS (sluice
// format, one message per row) under a write load, and kills sluice with
// SIGKILL once one big table's copy is done and less than 90% of the
// other's read events are published. The restart keeps the finished table
// (one begin record, its read events once) and copies the other again
// after a TRUNCATE of it; sluice then streams. The stream's
// de-duplication window is 100ms: nothing rests on it. A consumer
// applying the stream in order (read events and inserts add a row,
// updates and deletes need it, a TRUNCATE empties the table) never sees a
// row twice or a change to a row it lacks, and ends with the source's
// rows.
func TestNATSSnapshotKillResume(t *testing.T) {
	src := testenv.StartMariaDB(t, testenv.MariaDBOptions{})
	n := testenv.StartNATSBinary(t, "")
	ctx := context.Background()
	stream := cdcStream(t, n.URL())
	src.Exec(t, testenv.LoadSchema("bank", 50)...)
	sizes := map[string]int{"big1": 160000, "big2": 30000}
	for tb, rows := range sizes {
		src.Exec(t, "CREATE TABLE bank."+tb+" (id INT PRIMARY KEY, a VARCHAR(40), b DOUBLE)",
			fmt.Sprintf("INSERT INTO bank.%s SELECT seq, CONCAT('row ', seq), seq / 7 FROM bank.seq_1_to_%d", tb, rows))
	}
	src.Exec(t, "FLUSH BINARY LOGS")
	files := src.BinlogFiles(t)
	src.PurgeBinlogsTo(t, files[len(files)-1])
	load := testenv.StartLoad(t, src, "bank", 3)

	cfgPath := writeConfig(t, fmt.Sprintf(`
http: {listen: "off"}
pipelines:
  - name: events
    snapshot: initial
    sources:
      - {name: primary, dsn: "%s", include: ["bank.*"]}
    sink:
      type: nats
      url: %s
      stream: {name: CDC, create: false}
      subject: "cdc.{schema}.{table}"
      mode: row
`, src.DSN(), n.URL()))

	// progress is each table's last progress record.
	progress := func() map[string]string {
		info, err := stream.Info(ctx, jetstream.WithSubjectFilter("cdc._snapshot.>"))
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for subj := range info.State.Subjects {
			m, err := stream.GetLastMsgForSubject(ctx, subj)
			if err != nil {
				t.Fatal(err)
			}
			var rec struct {
				Table string `json:"table"`
				Done  bool   `json:"done"`
			}
			json.Unmarshal(m.Data, &rec)
			out[rec.Table] = map[bool]string{true: "done", false: "begun"}[rec.Done]
		}
		return out
	}
	// published is the messages on a subject: read events, one per row.
	published := func(subject string) uint64 {
		info, err := stream.Info(ctx, jetstream.WithSubjectFilter(subject))
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Subjects[subject]
	}
	d := startDaemon(t, cfgPath)
	var finished, interrupted string
	for deadline := time.Now().Add(3 * time.Minute); finished == ""; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no big table finished while the other was being copied: %v\n%s", progress(), logTail(t, cfgPath, 20))
		}
		if d.cmd.ProcessState != nil {
			t.Fatalf("sluice exited before the kill:\n%s", logTail(t, cfgPath, 20))
		}
		p := progress()
		for _, pair := range [][2]string{{"big1", "big2"}, {"big2", "big1"}} {
			if p[pair[0]] == "done" && p[pair[1]] == "begun" && published("cdc.bank."+pair[1]) < uint64(sizes[pair[1]])*9/10 {
				d.kill()
				finished, interrupted = pair[0], pair[1]
				t.Logf("killed with %v, %d read events of %s published", p, published("cdc.bank."+interrupted), interrupted)
				break
			}
		}
	}

	// The restart copies the interrupted table again and streams.
	d = startDaemon(t, cfgPath)
	for deadline := time.Now().Add(3 * time.Minute); progress()[interrupted] != "done"; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) || d.cmd.ProcessState != nil {
			t.Fatalf("the interrupted table was not copied after the restart: %v\n%s", progress(), logTail(t, cfgPath, 30))
		}
	}
	time.Sleep(time.Second)
	d.kill()
	load.Stop()
	catchUp(t, cfgPath)

	c := newStreamModel()
	c.read(t, ctx, stream)
	if c.begins[finished] != 1 || c.truncates[finished] != 0 || c.reads[finished] != sizes[finished] {
		t.Errorf("%s, copied before the kill: %d begin records, %d truncates, %d read events; want 1, 0, %d",
			finished, c.begins[finished], c.truncates[finished], c.reads[finished], sizes[finished])
	}
	if c.begins[interrupted] != 2 || c.truncates[interrupted] != 1 || c.readsSinceTruncate[interrupted] != sizes[interrupted] {
		t.Errorf("%s, interrupted: %d begin records, %d truncates, %d read events after the truncate; want 2, 1, %d",
			interrupted, c.begins[interrupted], c.truncates[interrupted], c.readsSinceTruncate[interrupted], sizes[interrupted])
	}
	c.equalSource(t, src, "bank", "accounts", "ledger", "items", "big1", "big2")
	t.Logf("load: %d transactions; %d read events before the kill of %s, %d after", load.Txns.Load(),
		c.reads[interrupted]-c.readsSinceTruncate[interrupted], interrupted, c.readsSinceTruncate[interrupted])
}

// streamModel applies a stream of sluice-format messages to tables of
// rows keyed by their primary key, and fails on a row added twice or a
// change to a row it lacks.
type streamModel struct {
	rows                     map[string]map[string]map[string]json.RawMessage // table -> key -> row
	begins, truncates, reads map[string]int
	readsSinceTruncate       map[string]int
	// upsert are tables seeded by an incremental snapshot while they
	// stream: a read event or insert may meet a row the model has, an
	// update or delete one it lacks (a row not read yet).
	upsert map[string]bool
	// origin is, per table and key, the message that last added the row
	// (its stream sequence and GTID), which a fault names beside the
	// message that found it.
	origin map[string]map[string]string
	errs   []string
}

func newStreamModel() *streamModel {
	return &streamModel{rows: map[string]map[string]map[string]json.RawMessage{}, begins: map[string]int{}, truncates: map[string]int{},
		reads: map[string]int{}, readsSinceTruncate: map[string]int{}, origin: map[string]map[string]string{}}
}

var truncateSQL = regexp.MustCompile("^TRUNCATE TABLE `([^`]+)`\\.`([^`]+)`$")

type modelChange struct {
	Schema string                     `json:"schema"`
	Table  string                     `json:"table"`
	Type   string                     `json:"type"`
	PK     []string                   `json:"pk"`
	Before map[string]json.RawMessage `json:"before"`
	After  map[string]json.RawMessage `json:"after"`
}

func (c *streamModel) read(t *testing.T, ctx context.Context, stream jetstream.Stream) {
	t.Helper()
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for got := uint64(0); got < info.State.Msgs; {
		batch, err := cons.Fetch(int(min(500, info.State.Msgs-got)), jetstream.FetchMaxWait(10*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		k := 0
		for m := range batch.Messages() {
			got++
			k++
			c.apply(t, m)
		}
		if k == 0 {
			t.Fatalf("read %d of %d messages", got, info.State.Msgs)
		}
	}
	if len(c.errs) > 0 {
		t.Fatalf("%d faults, the first: %s", len(c.errs), strings.Join(c.errs[:min(len(c.errs), 5)], "; "))
	}
}

func (c *streamModel) fault(f string, a ...any) { c.errs = append(c.errs, fmt.Sprintf(f, a...)) }

func (c *streamModel) apply(t *testing.T, m jetstream.Msg) {
	h := m.Headers()
	snap := h.Get("Sluice-Snapshot")
	switch h.Get("Sluice-Op") {
	case "lease", "position":
		return
	case "snapshot":
		if snap == "begin" {
			var rec struct {
				Table string `json:"table"`
			}
			json.Unmarshal(m.Data(), &rec)
			c.begins[rec.Table]++
		}
		return
	case "ddl":
		var body struct {
			DDL struct{ SQL string } `json:"ddl"`
		}
		if err := json.Unmarshal(m.Data(), &body); err != nil {
			t.Fatal(err)
		}
		if sm := truncateSQL.FindStringSubmatch(body.DDL.SQL); sm != nil {
			if snap != "truncate" {
				c.fault("TRUNCATE %s without Sluice-Snapshot: truncate", sm[2])
			}
			c.truncates[sm[2]]++
			c.readsSinceTruncate[sm[2]] = 0
			delete(c.rows, sm[1]+"."+sm[2])
			delete(c.origin, sm[1]+"."+sm[2])
		}
		return
	}
	var body struct {
		Snapshot bool          `json:"snapshot"`
		Changes  []modelChange `json:"changes"`
		modelChange
	}
	if err := json.Unmarshal(m.Data(), &body); err != nil {
		t.Fatalf("message %s: %v", m.Subject(), err)
	}
	if body.Schema != "" { // mode row: the body is one change
		body.Changes = []modelChange{body.modelChange}
	}
	if body.Snapshot != (snap != "") {
		c.fault("message on %s: snapshot %v in the body, Sluice-Snapshot %q", m.Subject(), body.Snapshot, snap)
	}
	for _, ch := range body.Changes {
		name := ch.Schema + "." + ch.Table
		if len(ch.PK) == 0 {
			continue // no key to follow a row by
		}
		tbl := c.rows[name]
		if tbl == nil {
			tbl = map[string]map[string]json.RawMessage{}
			c.rows[name] = tbl
			c.origin[name] = map[string]string{}
		}
		here := describeMsg(m)
		key := func(img map[string]json.RawMessage) string {
			var parts []string
			for _, k := range ch.PK {
				parts = append(parts, string(img[k]))
			}
			return strings.Join(parts, ",")
		}
		if body.Snapshot {
			c.reads[ch.Table]++
			c.readsSinceTruncate[ch.Table]++
		}
		if c.upsert[name] {
			if ch.Before != nil {
				delete(tbl, key(ch.Before))
			}
			if ch.After != nil {
				tbl[key(ch.After)] = ch.After
			}
			continue
		}
		switch ch.Type {
		case "insert":
			k := key(ch.After)
			if _, ok := tbl[k]; ok {
				c.fault("%s key %s added twice (snapshot %v): by %s, then by %s", name, k, body.Snapshot, c.origin[name][k], here)
			}
			tbl[k] = ch.After
			c.origin[name][k] = here
		case "update":
			k := key(ch.Before)
			if _, ok := tbl[k]; !ok {
				c.fault("%s key %s updated, never added (%s)", name, k, here)
			}
			delete(tbl, k)
			tbl[key(ch.After)] = ch.After
			c.origin[name][key(ch.After)] = here
		case "delete":
			k := key(ch.Before)
			if _, ok := tbl[k]; !ok {
				c.fault("%s key %s deleted, never added (%s)", name, k, here)
			}
			delete(tbl, k)
		}
	}
}

// describeMsg names a message by its stream sequence, its transaction's
// GTID and whether it is a read event.
func describeMsg(m jetstream.Msg) string {
	seq := uint64(0)
	if md, err := m.Metadata(); err == nil {
		seq = md.Sequence.Stream
	}
	h := m.Headers()
	return fmt.Sprintf("message %d (GTID %q, snapshot %q, %s)", seq, h.Get("Sluice-GTID"), h.Get("Sluice-Snapshot"), h.Get("Sluice-Msg"))
}

// equalSource compares the model's tables with the source's: the same
// keys, and for accounts the same balances.
func (c *streamModel) equalSource(t *testing.T, src *testenv.MariaDB, db string, tables ...string) {
	t.Helper()
	for _, tb := range tables {
		want := src.QueryString(t, fmt.Sprintf("SELECT COUNT(*) FROM %s.%s", db, tb))
		if got := fmt.Sprint(len(c.rows[db+"."+tb])); got != want {
			t.Errorf("%s.%s: %s rows from the stream, %s on the source", db, tb, got, want)
		}
	}
	sum := func(table, col string) string {
		total := new(big.Int)
		for _, r := range c.rows[db+"."+table] {
			v, ok := new(big.Int).SetString(strings.Trim(string(r[col]), `"`), 10)
			if !ok {
				t.Fatalf("%s.%s: %s is not an integer", table, col, r[col])
			}
			total.Add(total, v)
		}
		return total.String()
	}
	if got, want := sum("accounts", "balance"), src.QueryString(t, "SELECT SUM(balance) FROM "+db+".accounts"); got != want {
		t.Errorf("balances: %s from the stream, %s on the source", got, want)
	}
	if got, want := sum("ledger", "id"), src.QueryString(t, "SELECT COALESCE(SUM(id), 0) FROM "+db+".ledger"); got != want {
		t.Errorf("ledger ids: sum %s from the stream, %s on the source", got, want)
	}
}
