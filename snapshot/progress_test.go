package snapshot

import (
	"log/slog"
	"testing"
)

func TestProgressPerTable(t *testing.T) {
	p := newProgress(slog.Default(), 3, 300)
	p.start("b.t", 200)
	p.start("a.t", 0)
	p.add("b.t", 50)
	p.add("a.t", 7)
	p.add("b.t", 50)
	g := p.get()
	if g.Rows != 107 || len(g.PerTable) != 2 || len(g.Copying) != 2 {
		t.Fatalf("got %+v", g)
	}
	a, b := g.PerTable[0], g.PerTable[1]
	if a.Table != "a.t" || a.Rows != 7 || a.RowsTotal != 0 || a.ETA != 0 {
		t.Errorf("a.t: %+v", a)
	}
	if b.Table != "b.t" || b.Rows != 100 || b.RowsTotal != 200 || b.RowsPerSecond <= 0 || b.ETA < 0 {
		t.Errorf("b.t: %+v", b)
	}
	p.done("b.t")
	if g := p.get(); g.TablesDone != 1 || len(g.PerTable) != 1 || g.PerTable[0].Table != "a.t" || g.Rows != 107 {
		t.Errorf("after b.t done: %+v", g)
	}
}
