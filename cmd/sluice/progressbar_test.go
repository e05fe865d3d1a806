package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/sluice-cdc/sluice/snapshot"
)

func TestRenderBars(t *testing.T) {
	tests := []struct {
		name string
		p    snapshot.Progress
		want string
	}{
		{"nothing yet", snapshot.Progress{Tables: 2}, "tables 0/2 [????????????????????????]      0 rows  0 rows/s  ETA -\n"},
		{"two tables", snapshot.Progress{Tables: 3, TablesDone: 1, Rows: 1500, RowsTotal: 3000, RowsPerSecond: 500, ETA: 3 * time.Second,
			PerTable: []snapshot.TableProgress{
				{Table: "app.orders", Rows: 1000, RowsTotal: 4000, RowsPerSecond: 250.7, ETA: 12 * time.Second},
				{Table: "app.t", Rows: 1234567, RowsTotal: 1000},
			}},
			"app.orders [######..................]  25% 1,000/~4,000 rows  250 rows/s  ETA 12s\n" +
				"app.t      [########################] 100% 1,234,567/~1,000 rows  0 rows/s  ETA -\n" +
				"tables 1/3 [############............]  50% 1,500/~3,000 rows  500 rows/s  ETA 3s\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := renderBars(tt.p); got != tt.want {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

// A log line written while bars are shown erases them, is written, and
// the bars are drawn again below it.
func TestBarsKeepLogLinesAbove(t *testing.T) {
	var out bytes.Buffer
	b := &bars{w: &out}
	b.show(snapshot.Progress{Tables: 1, PerTable: []snapshot.TableProgress{{Table: "a.b", Rows: 1, RowsTotal: 2}}})
	if _, err := b.Write([]byte("level=INFO msg=hello\n")); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	first := renderBars(snapshot.Progress{Tables: 1, PerTable: []snapshot.TableProgress{{Table: "a.b", Rows: 1, RowsTotal: 2}}})
	want := first + "\x1b[2A\x1b[J" + "level=INFO msg=hello\n" + first
	if got != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
	b.done()
	out.Reset()
	b.Write([]byte("after\n"))
	if out.String() != "after\n" {
		t.Errorf("after done: got %q", out.String())
	}
}

func TestNoBarsOffTerminal(t *testing.T) {
	if newBars(&bytes.Buffer{}) != nil {
		t.Error("bars on a buffer")
	}
	if strings.Contains(count(1234567), ".") || count(1234567) != "1,234,567" || count(12) != "12" {
		t.Errorf("count: %s %s", count(1234567), count(12))
	}
}
