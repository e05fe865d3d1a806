package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/sluice-cdc/sluice/snapshot"
)

// bars draws a snapshot's progress on a terminal: a line per table being
// copied (a bar, rows, rate, ETA) and a total line, redrawn in place.
// Log lines written through it go above the bars, which are drawn again
// below them. (A character device test is all it needs to know a
// terminal, so no terminal library.)
type bars struct {
	mu    sync.Mutex
	w     io.Writer
	lines int    // lines of the bars now on screen
	last  string // the bars now on screen
}

// newBars returns bars on w when w is a terminal, else nil.
func newBars(w io.Writer) *bars {
	f, ok := w.(*os.File)
	if !ok || os.Getenv("TERM") == "dumb" {
		return nil
	}
	if st, err := f.Stat(); err != nil || st.Mode()&os.ModeCharDevice == 0 {
		return nil
	}
	return &bars{w: w}
}

// Write writes log lines above the bars.
func (b *bars) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.erase()
	n, err := b.w.Write(p)
	b.draw(b.last)
	return n, err
}

// show draws p in place of the previous figures.
func (b *bars) show(p snapshot.Progress) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.erase()
	b.draw(renderBars(p))
}

// done leaves the last figures on screen.
func (b *bars) done() {
	b.mu.Lock()
	b.lines, b.last = 0, ""
	b.mu.Unlock()
}

func (b *bars) erase() {
	if b.lines > 0 {
		fmt.Fprintf(b.w, "\x1b[%dA\x1b[J", b.lines) // up, then clear to the end of the screen
	}
	b.lines = 0
}

func (b *bars) draw(s string) {
	b.last = s
	if s == "" {
		return
	}
	io.WriteString(b.w, s)
	b.lines = strings.Count(s, "\n")
}

// renderBars is the text of the bars for p, each line ending in "\n".
func renderBars(p snapshot.Progress) string {
	var sb strings.Builder
	total := fmt.Sprintf("tables %d/%d", p.TablesDone, p.Tables)
	width := len(total)
	for _, t := range p.PerTable {
		width = max(width, len(t.Table))
	}
	for _, t := range p.PerTable {
		fmt.Fprintf(&sb, "%-*s %s %s rows  %s rows/s  ETA %s\n", width, t.Table, bar(t.Rows, t.RowsTotal, 24),
			figure(t.Rows, t.RowsTotal), count(uint64(t.RowsPerSecond)), etaText(t.ETA))
	}
	fmt.Fprintf(&sb, "%-*s %s %s rows  %s rows/s  ETA %s\n", width, total, bar(p.Rows, p.RowsTotal, 24),
		figure(p.Rows, p.RowsTotal), count(uint64(p.RowsPerSecond)), etaText(p.ETA))
	return sb.String()
}

// bar is a bar of width cells for done of total (an estimate: it may be
// passed, and then shows full).
func bar(done, total uint64, width int) string {
	if total == 0 {
		return "[" + strings.Repeat("?", width) + "]     "
	}
	f := min(float64(done)/float64(total), 1)
	n := int(f * float64(width))
	return fmt.Sprintf("[%s%s] %3d%%", strings.Repeat("#", n), strings.Repeat(".", width-n), int(f*100))
}

func figure(done, total uint64) string {
	if total == 0 {
		return count(done)
	}
	return count(done) + "/~" + count(total)
}

func etaText(d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	return d.String()
}

// count writes n with thousands separators.
func count(n uint64) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
