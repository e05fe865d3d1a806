package replicator

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"testing"

	"github.com/sluice-cdc/sluice/binlog"
	"github.com/sluice-cdc/sluice/checkpoint"
	"github.com/sluice-cdc/sluice/config"
	"github.com/sluice-cdc/sluice/snapshot"
)

// fakeIncrementalTarget records the chunks written.
type fakeIncrementalTarget struct {
	snapshot.Target
	written [][]int64 // ids of each chunk's rows
	states  []checkpoint.IncrementalSnapshot
	seeding map[string]bool
}

func (f *fakeIncrementalTarget) IncrementalSnapshots(context.Context, string) ([]checkpoint.IncrementalSnapshot, error) {
	return nil, nil
}

func (f *fakeIncrementalTarget) WriteIncrementalChunk(_ context.Context, _ string, st checkpoint.IncrementalSnapshot, _ *binlog.Table, _ []byte, rows []*binlog.Change) error {
	var ids []int64
	for _, r := range rows {
		ids = append(ids, r.After[0].(int64))
	}
	f.written = append(f.written, ids)
	f.states = append(f.states, st)
	return nil
}

func (f *fakeIncrementalTarget) SetSeeding(_, schema, table string, on bool) {
	f.seeding[schema+"."+table] = on
}

// TestIncrementalWindow: a chunk is written once the stream has applied
// its snapshot's position, without the rows whose keys the stream changed
// in its window (before and after images); a DDL on the table in the window
// sends the chunk back to be read again; the last chunk keeps the table
// seeded until the stream has applied what it had read.
func TestIncrementalWindow(t *testing.T) {
	tb := &binlog.Table{Schema: "app", Name: "t", Columns: []binlog.Column{{Name: "id"}, {Name: "v"}}, PK: []int{0}}
	other := &binlog.Table{Schema: "app", Name: "u", Columns: tb.Columns, PK: []int{0}}
	row := func(tb *binlog.Table, op binlog.Op, before, after int64) *binlog.Change {
		c := &binlog.Change{Table: tb, Op: op}
		if op != binlog.Insert {
			c.Before = []binlog.Value{before, "b"}
		}
		if op != binlog.Delete {
			c.After = []binlog.Value{after, "a"}
		}
		return c
	}
	gtids := func(s string) binlog.GTIDSet {
		g, err := binlog.ParseGTIDSet(s)
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	txn := func(seq string, changes ...*binlog.Change) *binlog.Txn {
		x := binlog.NewTxn(changes)
		x.Executed = gtids("0-1-" + seq)
		return x
	}
	chunkRows := func(ids ...int64) []*binlog.Change {
		var out []*binlog.Change
		for _, id := range ids {
			out = append(out, row(tb, binlog.Insert, 0, id))
		}
		return out
	}
	for _, c := range []struct {
		name    string
		txns    []*binlog.Txn
		at      string // the chunk's snapshot position
		applied string
		last    bool
		want    []int64 // rows written; nil: not written yet
		again   bool
	}{
		{name: "no writes", at: "0-1-10", applied: "0-1-10", want: []int64{1, 2, 3, 4}},
		{name: "waits for the stream", at: "0-1-12", applied: "0-1-11"},
		{name: "waits for every domain", at: "0-1-10,1-2-5", applied: "0-1-12,1-2-4"},
		{name: "every domain applied", at: "0-1-10,1-2-5", applied: "0-1-12,1-3-5,2-1-1", want: []int64{1, 2, 3, 4}},
		{name: "changed keys dropped", at: "0-1-10", applied: "0-1-14", txns: []*binlog.Txn{
			txn("11", row(tb, binlog.Update, 2, 2)),
			txn("12", row(tb, binlog.Delete, 3, 0), row(other, binlog.Delete, 1, 0)),
			txn("13", row(tb, binlog.Update, 9, 4)), // a key moved onto 4
			txn("14", row(tb, binlog.Insert, 0, 7)),
		}, want: []int64{1}},
		{name: "other tables' changes kept", at: "0-1-10", applied: "0-1-11", txns: []*binlog.Txn{
			txn("11", row(other, binlog.Update, 2, 2)),
		}, want: []int64{1, 2, 3, 4}},
		{name: "DDL on the table", at: "0-1-10", applied: "0-1-11", again: true, txns: []*binlog.Txn{
			{Executed: gtids("0-1-11"), DDL: &binlog.DDL{Schema: "app", SQL: "ALTER TABLE t ADD COLUMN w INT"}},
		}},
		{name: "DDL on another table", at: "0-1-10", applied: "0-1-11", txns: []*binlog.Txn{
			{Executed: gtids("0-1-11"), DDL: &binlog.DDL{Schema: "app", SQL: "ALTER TABLE u ADD COLUMN w INT"}},
		}, want: []int64{1, 2, 3, 4}},
		{name: "rows of another definition", at: "0-1-10", applied: "0-1-11", again: true, txns: []*binlog.Txn{
			txn("11", &binlog.Change{Table: &binlog.Table{Schema: "app", Name: "t", Columns: tb.Columns[:1], PK: []int{0}}, Op: binlog.Insert, After: []binlog.Value{int64(5)}}),
		}},
		{name: "last chunk", at: "0-1-10", applied: "0-1-10", last: true, txns: []*binlog.Txn{
			txn("11", row(tb, binlog.Update, 2, 2)),
		}, want: []int64{1, 3, 4}},
	} {
		t.Run(c.name, func(t *testing.T) {
			target := &fakeIncrementalTarget{seeding: map[string]bool{}}
			r := &sourceRunner{cfg: &config.Source{Name: "s"}}
			r.applied.GTID = gtids(c.applied)
			in := &incremental{r: r, target: target, log: slog.Default(), wake: make(chan struct{}, 1), windows: map[string]*window{}}
			in.open("app.t", tb)
			for _, x := range c.txns {
				if err := in.observe(x); err != nil {
					t.Fatal(err)
				}
			}
			p := &pendingChunk{name: "app.t", st: checkpoint.IncrementalSnapshot{Schema: "app", Table: "t", State: checkpoint.IncrementalRunning},
				ch:  snapshot.Chunk{Rows: chunkRows(1, 2, 3, 4), At: checkpoint.State{GTID: gtids(c.at)}, After: []byte("`id`>4"), Last: c.last},
				dst: tb, done: make(chan error, 1)}
			in.ready = p
			if err := in.emit(context.Background()); err != nil {
				t.Fatal(err)
			}
			var err error
			select {
			case err = <-p.done:
			default:
				if c.want != nil || c.again {
					t.Fatal("the chunk was not handled")
				}
				if len(target.written) > 0 || in.ready != p {
					t.Fatal("the chunk was written before the stream applied its position")
				}
				return
			}
			if c.again {
				if !errors.Is(err, errChunkAgain) || len(target.written) > 0 {
					t.Fatalf("want the chunk read again, got %v and %d writes", err, len(target.written))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(target.written) != 1 || !slices.Equal(target.written[0], c.want) {
				t.Fatalf("written %v, want %v", target.written, c.want)
			}
			st := target.states[0]
			if st.Chunks != 1 || st.RowsRead != 4 || st.RowsWritten != uint64(len(c.want)) || string(st.After) != "`id`>4" {
				t.Fatalf("progress %+v", st)
			}
			if c.last {
				if st.State != checkpoint.IncrementalDone || !st.TolerateUntil.Equal(gtids("0-1-11")) {
					t.Fatalf("last chunk: state %s, tolerate until %s, want done and 0-1-11", st.State, st.TolerateUntil.String())
				}
				// Seeding ends once the stream has applied what it read.
				r.applied.GTID = gtids("0-1-11")
				if err := in.emit(context.Background()); err != nil {
					t.Fatal(err)
				}
				if on, ok := target.seeding["app.t"]; !ok || on {
					t.Fatalf("still seeded after the stream applied the last window: %v", target.seeding)
				}
			}
		})
	}
}
