package binlog

import (
	"encoding/json"
	"slices"
	"testing"
	"time"
)

// MemChanges gives the changes Changes yields when they are all in memory,
// and declines otherwise.
func TestMemChanges(t *testing.T) {
	tb := &Table{Schema: "s", Name: "t", NamesKnown: true, Columns: []Column{{Name: "id"}}}
	mk := func(n int) []*Change {
		var cs []*Change
		for i := range n {
			cs = append(cs, &Change{Table: tb, Op: Insert, After: []Value{int64(i)}})
		}
		return cs
	}
	spilled := &Txn{changes: newChangeBuffer(1, t.TempDir())}
	for _, c := range mk(3) {
		if err := spilled.changes.add(c); err != nil {
			t.Fatal(err)
		}
	}
	defer spilled.Close()
	view, err := NewTxn(mk(4)).Map(func(c *Change) bool { return c.After[0].(int64)%2 == 0 }, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		txn    *Txn
		wantOK bool
	}{
		{"in memory", NewTxn(mk(3)), true},
		{"empty", &Txn{}, true},
		{"spilled", spilled, false},
		{"filtered view", view, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, ok := c.txn.MemChanges()
			if ok != c.wantOK {
				t.Fatalf("ok %v, want %v", ok, c.wantOK)
			}
			var all []*Change
			for ch, err := range c.txn.Changes() {
				if err != nil {
					t.Fatal(err)
				}
				all = append(all, ch)
			}
			if ok && !slices.Equal(got, all) {
				t.Fatalf("MemChanges %d changes, Changes %d", len(got), len(all))
			}
			if !ok && got != nil {
				t.Fatalf("declined with %d changes", len(got))
			}
		})
	}
}

// The encoder's AppendTxnHeader and AppendChange write what the free
// functions write, whether or not the commit time or table repeats.
func TestJSONEncoderAppendsAsFunctions(t *testing.T) {
	tb := &Table{Schema: "s", Name: "t\"q", NamesKnown: true, PK: []int{0}, Columns: []Column{{Name: "id"}, {Name: "n\u00e9"}}}
	other := &Table{Schema: "s2", Name: "u", Columns: []Column{{Name: "a"}}}
	base := time.Date(2024, 3, 1, 10, 20, 30, 0, time.UTC)
	var enc JSONEncoder
	for i, c := range []struct {
		ts   time.Time
		gtid GTID
		ch   *Change
	}{
		{base, GTID{MariaDB: true, Server: 1, Seq: 1}, &Change{Table: tb, Op: Insert, After: []Value{int64(1), "x"}}},
		{base, GTID{MariaDB: true, Server: 1, Seq: 2}, &Change{Table: tb, Op: Update, Before: []Value{int64(1), "x"}, After: []Value{int64(1), nil}}},
		{base.Add(time.Second).In(time.FixedZone("x", 3600)), GTID{UUID: "3e11fa47-71ca-11e1-9e33-c80aa9429562", Seq: 3}, &Change{Table: other, Op: Delete, Before: []Value{"a"}}},
		{base.Add(1500 * time.Millisecond), GTID{}, &Change{Table: tb, Op: Insert, After: []Value{int64(2), AbsentValue{}}}},
		{base, GTID{UUID: "bad\"uuid", Seq: 4}, &Change{Table: tb, Op: Insert, After: []Value{int64(3), "y"}}},
	} {
		txn := NewTxn([]*Change{c.ch})
		txn.Timestamp, txn.GTID = c.ts, c.gtid
		txn.Pos = Position{File: "bin.000001", Pos: uint64(100 * i)}
		if got, want := string(enc.AppendTxnHeader(nil, txn)), string(AppendTxnHeader(nil, txn)); got != want {
			t.Errorf("%d: header\n got %s\nwant %s", i, got, want)
		}
		// Both write the GTID as its text in a JSON string.
		var head struct {
			GTID string `json:"gtid"`
		}
		if err := json.Unmarshal(append(AppendTxnHeader(nil, txn), '}'), &head); err != nil || head.GTID != c.gtid.String() {
			t.Errorf("%d: gtid %q (%v), want %q", i, head.GTID, err, c.gtid.String())
		}
		if got, want := string(enc.AppendChange(nil, c.ch)), string(AppendChangeJSON(nil, c.ch)); got != want {
			t.Errorf("%d: change\n got %s\nwant %s", i, got, want)
		}
	}
}
