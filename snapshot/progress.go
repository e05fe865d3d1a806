package snapshot

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
)

// Progress is a snapshot's advance, for logs and status.
type Progress struct {
	Tables, TablesDone int
	Rows               uint64  // copied so far, in this run
	RowsTotal          uint64  // the source's estimate (information_schema.TABLES.TABLE_ROWS)
	RowsPerSecond      float64 // since the start of this run
	ETA                time.Duration
	Copying            []string // tables being copied
	// Each table being copied, by name.
	PerTable []TableProgress
}

// TableProgress is one table's copy.
type TableProgress struct {
	Table         string
	Rows          uint64 // copied so far
	RowsTotal     uint64 // the source's estimate (0: none)
	RowsPerSecond float64
	ETA           time.Duration // 0 when unknown
}

// tableProgress is what progress keeps of a table being copied.
type tableProgress struct {
	rows, estimate uint64
	started        time.Time
}

// progress counts what a run copied and logs it periodically.
type progress struct {
	log     *slog.Logger
	started time.Time

	mu      sync.Mutex
	p       Progress
	copying map[string]*tableProgress
}

func newProgress(log *slog.Logger, tables int, estimate uint64) *progress {
	return &progress{log: log, started: time.Now(), p: Progress{Tables: tables, RowsTotal: estimate}, copying: map[string]*tableProgress{}}
}

// start counts table as being copied, with the source's row estimate.
func (p *progress) start(table string, estimate uint64) {
	p.mu.Lock()
	p.copying[table] = &tableProgress{estimate: estimate, started: time.Now()}
	p.mu.Unlock()
}

func (p *progress) add(table string, rows int) {
	p.mu.Lock()
	p.p.Rows += uint64(rows)
	if t := p.copying[table]; t != nil {
		t.rows += uint64(rows)
	}
	p.mu.Unlock()
}

func (p *progress) done(table string) {
	p.mu.Lock()
	delete(p.copying, table)
	p.p.TablesDone++
	p.mu.Unlock()
}

// get returns the figures now.
func (p *progress) get() Progress {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.p
	if s := time.Since(p.started).Seconds(); s > 0 {
		out.RowsPerSecond = float64(out.Rows) / s
	}
	out.ETA = eta(out.Rows, out.RowsTotal, out.RowsPerSecond)
	for name, t := range p.copying {
		out.Copying = append(out.Copying, name)
		tp := TableProgress{Table: name, Rows: t.rows, RowsTotal: t.estimate}
		if s := time.Since(t.started).Seconds(); s > 0 {
			tp.RowsPerSecond = float64(t.rows) / s
		}
		tp.ETA = eta(t.rows, t.estimate, tp.RowsPerSecond)
		out.PerTable = append(out.PerTable, tp)
	}
	slices.Sort(out.Copying)
	slices.SortFunc(out.PerTable, func(a, b TableProgress) int { return strings.Compare(a.Table, b.Table) })
	return out
}

// eta is the time left to copy total rows at rate, rounded to the second;
// 0 when unknown.
func eta(rows, total uint64, rate float64) time.Duration {
	if rate <= 0 || total <= rows {
		return 0
	}
	return time.Duration(float64(total-rows) / rate * float64(time.Second)).Round(time.Second)
}

// report logs the progress every interval until ctx ends, and hands it
// to watch every 2 seconds.
func (p *progress) report(ctx context.Context, interval time.Duration, watch func(Progress)) {
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	logged := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		g := p.get()
		if watch != nil {
			watch(g)
		}
		if time.Since(logged) < interval {
			continue
		}
		logged = time.Now()
		p.log.Info("snapshot progress", "tables_done", g.TablesDone, "tables", g.Tables, "rows", g.Rows, "rows_estimate", g.RowsTotal,
			"rows_per_second", int64(g.RowsPerSecond), "eta", g.ETA.String(), "copying", g.Copying)
	}
}
