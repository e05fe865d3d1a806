package snapshot

import (
	"context"
	"log/slog"
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
}

// progress counts what a run copied and logs it periodically.
type progress struct {
	log     *slog.Logger
	started time.Time

	mu      sync.Mutex
	p       Progress
	copying map[string]bool
}

func newProgress(log *slog.Logger, tables int, estimate uint64) *progress {
	return &progress{log: log, started: time.Now(), p: Progress{Tables: tables, RowsTotal: estimate}, copying: map[string]bool{}}
}

func (p *progress) start(table string) {
	p.mu.Lock()
	p.copying[table] = true
	p.mu.Unlock()
}

func (p *progress) add(rows int) {
	p.mu.Lock()
	p.p.Rows += uint64(rows)
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
	if out.RowsPerSecond > 0 && out.RowsTotal > out.Rows {
		out.ETA = time.Duration(float64(out.RowsTotal-out.Rows) / out.RowsPerSecond * float64(time.Second)).Round(time.Second)
	}
	for t := range p.copying {
		out.Copying = append(out.Copying, t)
	}
	return out
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
