package nats_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/sluice-cdc/sluice/binlog"
	"github.com/sluice-cdc/sluice/checkpoint"
	"github.com/sluice-cdc/sluice/internal/testenv"
	natssink "github.com/sluice-cdc/sluice/sinks/nats"
)

// TestSnapshotTargetResume drives the sink as package snapshot does: a
// copy interrupted (the sink closed after a chunk), then the next run
// finding it begun, not done, copying it again after a TRUNCATE, and
// finishing. Read events never count as a checkpoint, the last row goes
// out last, and a stream whose subjects lack the progress subject is
// refused with what to add.
func TestSnapshotTargetResume(t *testing.T) {
	n := testenv.StartNATS(t)
	ctx := context.Background()
	format := "sluice"
	open := func(stream, prefix string, subjects ...string) *natssink.Sink {
		s, err := natssink.Open(ctx, natssink.Config{URL: n.URL(), Pipeline: "p", Stream: stream, CreateStream: true, StreamSubjects: subjects,
			Subject: prefix + ".{schema}.{table}", DDLSubject: prefix + "._ddl", Format: format, Mode: "row", Checkpoint: "stream",
			Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	tb := &binlog.Table{Schema: "shop", Name: "orders", NamesKnown: true, PK: []int{0},
		Columns: []binlog.Column{{Name: "id", Type: mysql.MYSQL_TYPE_LONG}, {Name: "v", Type: mysql.MYSQL_TYPE_VARCHAR}}}
	rows := func(lo, hi int) []*binlog.Change {
		var out []*binlog.Change
		for i := lo; i < hi; i++ {
			out = append(out, &binlog.Change{Table: tb, Op: binlog.Insert, After: []binlog.Value{int64(i), "x"}})
		}
		return out
	}
	at, _ := binlog.ParseGTIDSet("0-1-50")
	ts := checkpoint.TableSnapshot{Schema: "shop", Table: "orders", At: checkpoint.State{GTID: at, Pos: binlog.Position{File: "bin.000001", Pos: 400}}}

	s := open("SNAP", "cdc")
	if got, err := s.SnapshotTables(ctx, "primary"); err != nil || len(got) != 0 {
		t.Fatalf("progress of a new stream: %v, %v", got, err)
	}
	if err := s.BeginSnapshotTable(ctx, "primary", ts, tb, false); err != nil {
		t.Fatal(err)
	}
	if err := s.WriteSnapshotRows(ctx, "primary", ts, rows(1, 4), nil); err != nil {
		t.Fatal(err)
	}
	s.Close() // killed during the copy

	s = open("SNAP", "cdc")
	if _, found, err := s.Checkpoint(ctx, "primary"); err != nil || found {
		t.Fatalf("a checkpoint from the snapshot's messages: found %v, %v", found, err)
	}
	got, err := s.SnapshotTables(ctx, "primary")
	if err != nil || len(got) != 1 || got[0].Done || !got[0].At.GTID.Equal(at) {
		t.Fatalf("progress after the interrupted copy: %+v, %v", got, err)
	}
	if _, hasRows, _ := s.TargetTable(ctx, "shop", "orders"); !hasRows {
		t.Fatal("the interrupted table is not reported as holding rows (it would not be copied again with truncate)")
	}
	ts.At.GTID, _ = binlog.ParseGTIDSet("0-1-60")
	if err := s.BeginSnapshotTable(ctx, "primary", ts, tb, true); err != nil {
		t.Fatal(err)
	}
	for _, chunk := range [][2]int{{1, 3}, {3, 6}} {
		if err := s.WriteSnapshotRows(ctx, "primary", ts, rows(chunk[0], chunk[1]), nil); err != nil {
			t.Fatal(err)
		}
	}
	ts.Rows = 5
	if err := s.FinishSnapshotTable(ctx, "primary", ts); err != nil {
		t.Fatal(err)
	}
	if got, err := s.SnapshotTables(ctx, "primary"); err != nil || len(got) != 1 || !got[0].Done || got[0].Rows != 5 || !got[0].At.GTID.Equal(ts.At.GTID) {
		t.Fatalf("progress after the copy: %+v, %v", got, err)
	}
	if _, found, err := s.Checkpoint(ctx, "primary"); err != nil || found {
		t.Fatalf("a checkpoint from the snapshot's messages: found %v, %v", found, err)
	}

	var seen []string
	for _, m := range readStream(t, n.URL(), "SNAP") {
		switch h := m.header; {
		case h.Get(natssink.HdrOp) == "snapshot":
			seen = append(seen, h.Get(natssink.HdrSnapshot))
		case h.Get(natssink.HdrOp) == "ddl":
			seen = append(seen, h.Get(natssink.HdrSnapshot)+":"+m.data[strings.Index(m.data, "TRUNCATE"):strings.Index(m.data, "TRUNCATE")+8])
		default:
			if !strings.Contains(m.data, `"snapshot":true`) {
				t.Errorf("a read event without \"snapshot\": true: %s", m.data)
			}
			seen = append(seen, h.Get(natssink.HdrSnapshot)+":"+h.Get(natssink.HdrOp))
		}
	}
	// The first copy's last row (3) was held back when it was killed.
	want := "begin true:insert true:insert truncate:TRUNCATE begin true:insert true:insert true:insert true:insert last:insert done"
	if got := strings.Join(seen, " "); got != want {
		t.Fatalf("stream:\n%s\nwant\n%s", got, want)
	}

	// The other formats' TRUNCATE and read events.
	for _, f := range []string{"debezium", "canal"} {
		format = f
		s = open(strings.ToUpper(f), f)
		if err := s.BeginSnapshotTable(ctx, "primary", ts, tb, true); err != nil {
			t.Fatal(err)
		}
		if err := s.WriteSnapshotRows(ctx, "primary", ts, rows(1, 3), nil); err != nil {
			t.Fatal(err)
		}
		if err := s.FinishSnapshotTable(ctx, "primary", ts); err != nil {
			t.Fatal(err)
		}
		var ops []string
		for _, m := range readStream(t, n.URL(), strings.ToUpper(f)) {
			op := m.header.Get(natssink.HdrOp)
			switch {
			case op == "ddl" && strings.Contains(m.data, "TRUNCATE TABLE `shop`.`orders`"):
				op = "truncate"
			case f == "debezium" && strings.Contains(m.data, `"op":"r"`):
				op = "read " + map[bool]string{true: "last", false: "true"}[strings.Contains(m.data, `"snapshot":"last"`)]
			case f == "canal" && strings.Contains(m.data, `"isDdl":false`) && strings.Contains(m.data, `"type":"INSERT"`):
				op = "read"
			}
			ops = append(ops, op)
		}
		want := map[string]string{"debezium": "truncate snapshot read true read last snapshot", "canal": "truncate snapshot read read snapshot"}[f]
		if got := strings.Join(ops, " "); got != want {
			t.Errorf("%s: %s, want %s", f, got, want)
		}
	}
	format = "sluice"

	// A stream that does not take the progress subject.
	s = open("NARROW", "nar", "nar.shop.>", "nar._ddl")
	if got, err := s.SnapshotTables(ctx, "primary"); err != nil || got != nil {
		t.Fatalf("progress on a stream without its subject: %v, %v", got, err)
	}
	if err := s.BeginSnapshotTable(ctx, "primary", ts, tb, false); err == nil || !strings.Contains(err.Error(), "nar._snapshot.p.primary.> to the stream") {
		t.Fatalf("a snapshot into a stream without the progress subject: %v", err)
	}
}
