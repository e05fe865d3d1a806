package replicator_test

import (
	"bytes"
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

// TestNATSSnapshotFormats publishes tables of every column type and kind
// of key by snapshot: initial to NATS in the three formats, then changes
// streamed after it. Each format's read events (Debezium op "r" with
// source.snapshot "true", "last" on each table's last row; Canal INSERT
// with isDdl false; sluice's "snapshot": true) carry the same row images
// as the same rows inserted through the binlog (a pipeline streaming the
// source from its oldest binlog), a sequence's row one read event; then
// exactly the changes made after the snapshot follow, none of them a read
// event.
func TestNATSSnapshotFormats(t *testing.T) {
	src := testenv.StartMariaDB(t, testenv.MariaDBOptions{})
	n := testenv.StartNATS(t)
	src.Exec(t, snapshotSchema("app", 60)...)
	// A sequence is published as a table of one row.
	src.Exec(t, "CREATE SEQUENCE app.seq CACHE 0", "DO NEXTVAL(app.seq), NEXTVAL(app.seq)")
	want := map[string]int{"app.wide": 60, "app.scalars": 60, "app.ukey": 30, "app.nokey": 30, "app.empty": 0, "app.ñandú": 6, "app.seq": 1}

	formats := []struct{ name, format, mode string }{
		{"sluicerow", "sluice", "row"}, {"sluicetxn", "sluice", "transaction"}, {"debezium", "debezium", "row"}, {"canal", "canal", "row"},
	}
	yaml := func(stream, format, mode string, snapshot bool) string {
		y := fmt.Sprintf(`
http: {listen: "off"}
pipelines:
  - name: %s
    sources:
      - {name: primary, dsn: "%s", start: oldest, include: ["app.*"]}
    sink:
      type: nats
      url: %s
      stream: {name: %s, create: true}
      subject: "%[5]s.{schema}.{table}"
      ddl_subject: "%[5]s._ddl"
      format: %[6]s
      mode: %[7]s
`, strings.ToLower(stream), src.DSN(), n.URL(), stream, strings.ToLower(stream), format, mode)
		if snapshot {
			y += "    snapshot: initial\n"
		}
		return y
	}
	for _, f := range formats {
		// The snapshot, and the same rows through the binlog.
		for _, snap := range []bool{true, false} {
			name := strings.ToUpper(f.name) + map[bool]string{true: "S", false: "B"}[snap]
			if err := testenv.RunToEnd(t, testenv.LoadConfig(t, yaml(name, f.format, f.mode, snap))); err != nil {
				t.Fatal(err)
			}
		}
	}
	src.Exec(t, "INSERT INTO app.wide (a, b, i64, js) VALUES (100, 'new', 5, '[1]')",
		"UPDATE app.ukey SET n = n + 1000 WHERE code = 'c7'",
		"DELETE FROM app.wide WHERE a = 1 AND b = 'k1'")
	for _, f := range formats {
		if err := testenv.RunToEnd(t, testenv.LoadConfig(t, yaml(strings.ToUpper(f.name)+"S", f.format, f.mode, true))); err != nil {
			t.Fatal(err)
		}
	}

	for _, f := range formats {
		t.Run(f.name, func(t *testing.T) {
			snap := readEvents(t, n.URL(), strings.ToUpper(f.name)+"S", f.format)
			binlogRows := map[string]string{} // table key -> image, the binlog's final one
			for _, e := range readEvents(t, n.URL(), strings.ToUpper(f.name)+"B", f.format) {
				if e.op == "delete" {
					delete(binlogRows, e.table+" "+e.key)
				} else if e.key != "" {
					binlogRows[e.table+" "+e.key] = e.after
				}
			}
			reads := map[string]int{}
			lastRead := map[string]int{}
			for i, e := range snap {
				if e.snapshot != "" {
					lastRead[e.table] = i
				}
			}
			var streamed []string
			readsDone, compared := false, 0
			for i, e := range snap {
				if e.snapshot == "" {
					readsDone = true
					streamed = append(streamed, e.table+" "+e.op)
					continue
				}
				if readsDone {
					t.Fatalf("event %d: a read event of %s after streamed changes", i, e.table)
				}
				if e.op != "read" {
					t.Fatalf("event %d of %s: op %s in a snapshot", i, e.table, e.op)
				}
				reads[e.table]++
				last := lastRead[e.table] == i
				if f.format == "debezium" && (e.snapshot == "last") != last {
					t.Errorf("event %d of %s: source.snapshot %q, last of its table %v", i, e.table, e.snapshot, last)
				}
				if e.key == "" {
					if tablePK[e.table] != nil {
						t.Fatalf("event %d of %s: no key", i, e.table)
					}
					continue // no key to match the binlog's row by
				}
				compared++
				if b, ok := binlogRows[e.table+" "+e.key]; !ok {
					t.Errorf("%s row %s: read, not in the binlog's rows", e.table, e.key)
				} else if b != e.after {
					t.Errorf("%s row %s: read event\n%s\nbinlog\n%s", e.table, e.key, e.after, b)
				}
			}
			if keyed := want["app.wide"] + want["app.scalars"] + want["app.ukey"] + want["app.ñandú"]; compared != keyed {
				t.Errorf("%d read events compared with the binlog's rows, want %d", compared, keyed)
			}
			for tb, n := range want {
				if reads[tb] != n {
					t.Errorf("%s: %d read events, want %d", tb, reads[tb], n)
				}
			}
			if got := strings.Join(streamed, ", "); got != "app.wide insert, app.ukey update, app.wide delete" {
				t.Errorf("after the snapshot: %s", got)
			}
		})
	}
}

// event is one row of a message in any format.
type event struct {
	table, op, key string
	after          string // the row image as the format writes it
	snapshot       string // "" outside the snapshot, else true or last
}

// eachMessage calls fn with every message of a stream, in order.
func eachMessage(t *testing.T, url, stream string, fn func(jetstream.Msg)) {
	t.Helper()
	nc, err := natsgo.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	st, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info, _ := st.Info(ctx)
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for got := uint64(0); got < info.State.Msgs; {
		batch, err := cons.Fetch(int(min(500, info.State.Msgs-got)), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		k := 0
		for m := range batch.Messages() {
			got++
			k++
			fn(m)
		}
		if k == 0 {
			t.Fatalf("%s: read %d of %d messages", stream, got, info.State.Msgs)
		}
	}
}

// readEvents reads every row event of a stream, in order.
func readEvents(t *testing.T, url, stream, format string) []event {
	t.Helper()
	var out []event
	eachMessage(t, url, stream, func(m jetstream.Msg) {
		switch m.Headers().Get("Sluice-Op") {
		case "lease", "position", "snapshot", "ddl", "key":
			return
		}
		hdr := m.Headers().Get("Sluice-Snapshot")
		evs := decodeEvents(t, format, m.Data())
		for i := range evs {
			if format == "canal" && hdr != "" {
				// Canal's FlatMessage has no snapshot field: a read
				// event is an INSERT, told apart by the header.
				if evs[i].op != "insert" {
					t.Fatalf("canal snapshot row of type %s", evs[i].op)
				}
				evs[i].op, evs[i].snapshot = "read", hdr
			}
			if (evs[i].snapshot != "") != (hdr != "") {
				t.Fatalf("%s message %s: Sluice-Snapshot %q, the body says %q", stream, m.Subject(), hdr, evs[i].snapshot)
			}
		}
		out = append(out, evs...)
	})
	return out
}

func decodeEvents(t *testing.T, format string, data []byte) []event {
	t.Helper()
	var out []event
	switch format {
	case "sluice":
		var body struct {
			Snapshot bool              `json:"snapshot"`
			Changes  []json.RawMessage `json:"changes"`
			Schema   string            `json:"schema"`
		}
		if err := json.Unmarshal(data, &body); err != nil {
			t.Fatal(err)
		}
		changes := body.Changes
		if body.Schema != "" {
			changes = []json.RawMessage{data} // mode row: the change is the body
		}
		for _, raw := range changes {
			var c struct {
				Schema, Table, Type string
				PK                  []string
				Before, After       json.RawMessage
			}
			if err := json.Unmarshal(raw, &c); err != nil {
				t.Fatal(err)
			}
			e := event{table: c.Schema + "." + c.Table, op: c.Type, after: string(c.After)}
			if body.Snapshot {
				e.snapshot, e.op = "true", "read"
				if c.Type != "insert" {
					t.Fatalf("a snapshot row of type %s", c.Type)
				}
			}
			img := c.After
			if c.Type == "delete" {
				img = c.Before
			}
			e.key = keyOf(t, c.PK, img)
			out = append(out, e)
		}
	case "debezium":
		var env struct {
			Payload json.RawMessage `json:"payload"`
		}
		json.Unmarshal(data, &env)
		if env.Payload != nil {
			data = env.Payload
		}
		var p struct {
			Before, After json.RawMessage
			Op            string
			Source        struct{ Snapshot, Db, Table string }
		}
		if err := json.Unmarshal(data, &p); err != nil {
			t.Fatal(err)
		}
		e := event{table: p.Source.Db + "." + p.Source.Table, op: map[string]string{"r": "read", "c": "insert", "u": "update", "d": "delete"}[p.Op], after: string(p.After)}
		if p.Source.Snapshot != "false" {
			e.snapshot = p.Source.Snapshot
		}
		img := p.After
		if p.Op == "d" {
			img = p.Before
		}
		e.key = keyOf(t, tablePK[e.table], img)
		out = append(out, e)
	case "canal":
		var m struct {
			Database, Table, Type string
			IsDdl                 bool
			PkNames               []string
			Data                  []json.RawMessage
		}
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatal(err)
		}
		if m.IsDdl {
			t.Fatalf("a canal DDL among row messages: %s", data)
		}
		for _, row := range m.Data {
			e := event{table: m.Database + "." + m.Table, op: strings.ToLower(m.Type), after: string(row), key: keyOf(t, m.PkNames, row)}
			out = append(out, e)
		}
	}
	return out
}

// tablePK are the snapshot schema's keys (Debezium's value has none).
var tablePK = map[string][]string{"app.wide": {"a", "b"}, "app.scalars": {"id"}, "app.ukey": {"code"}, "app.ñandú": {"clé"}}

func keyOf(t *testing.T, pk []string, raw json.RawMessage) string {
	var img map[string]json.RawMessage
	if len(pk) == 0 || len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	if err := json.Unmarshal(raw, &img); err != nil {
		t.Fatalf("row image %s: %v", raw, err)
	}
	var b bytes.Buffer
	for _, k := range pk {
		v, ok := img[k]
		if !ok {
			t.Fatalf("row image without its key column %s: %s", k, raw)
		}
		b.Write(v)
		b.WriteByte('|')
	}
	return b.String()
}
