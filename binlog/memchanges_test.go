package binlog

import (
	"slices"
	"testing"
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
