package replicator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-cdc/sluice/binlog"
	"github.com/sluice-cdc/sluice/binlog/schema"
	"github.com/sluice-cdc/sluice/checkpoint"
	"github.com/sluice-cdc/sluice/config"
	"github.com/sluice-cdc/sluice/mysqlconn"
	"github.com/sluice-cdc/sluice/snapshot"
)

// snapshotTarget is implemented by sinks a snapshot can write
// (sinks/mysql: rows; sinks/nats: read events).
type snapshotTarget interface {
	snapshot.Target
}

// SnapshotOptions configure sluice snapshot.
type SnapshotOptions struct {
	Pipelines []string
	// Tables (schema.table) limits the copy to these source tables.
	Tables           []string
	Readers, Writers int
	Logger           *slog.Logger
	// Watch gets the progress every few seconds.
	Watch func(snapshot.Progress)
}

// snapshotGlobalLock makes every snapshot take the global-lock path of a
// MySQL source on MariaDB too (snapshot.Config.GlobalLock): set by tests,
// which run on MariaDB only.
var snapshotGlobalLock bool

// runSnapshot copies the source's tables not yet copied (package
// snapshot) and returns where streaming starts, and whether every table
// is copied.
func runSnapshot(ctx context.Context, p *config.Pipeline, s *config.Source, sink Sink, rt *router, o SnapshotOptions, log *slog.Logger) (snapshot.Result, error) {
	target, ok := sink.(snapshotTarget)
	if !ok {
		return snapshot.Result{}, fmt.Errorf("pipeline %s: its sink cannot take a snapshot (MySQL/MariaDB and NATS sinks can)", p.Name)
	}
	db, err := mysqlconn.Open(ctx, s.Conn, nil)
	if err != nil {
		return snapshot.Result{}, err
	}
	defer db.Close()
	var route func(*binlog.Change) *binlog.Change
	if len(p.Routes) > 0 {
		var mu sync.Mutex // the router's cache is not shared-safe
		route = func(c *binlog.Change) *binlog.Change {
			mu.Lock()
			defer mu.Unlock()
			return rt.rename(c)
		}
	}
	return snapshot.Run(ctx, snapshot.Config{Source: db, SourceName: s.Name, Filter: s.Filter, Tables: o.Tables, Route: route,
		Merged: func(schemaName, table string) bool {
			r := p.Route(schemaName, table)
			return r != nil && r.Merging(p)
		},
		Target: target, Readers: o.Readers, Writers: o.Writers, Logger: log, Watch: o.Watch, GlobalLock: snapshotGlobalLock})
}

// snapshotStart is the binlog start of a snapshot's result.
func snapshotStart(res snapshot.Result) binlog.Start {
	if res.Start.GTID.IsEmpty() {
		return binlog.Start{Mode: binlog.StartPosition, Pos: res.Start.Pos}
	}
	return binlog.Start{Mode: binlog.StartGTID, GTID: res.Start.GTID}
}

// initialSnapshot runs snapshot: initial for a source without a
// checkpoint, and returns where it streams from.
func (r *sourceRunner) initialSnapshot(ctx context.Context) (binlog.Start, error) {
	r.setState("snapshot", nil)
	var counted uint64
	watch := func(p snapshot.Progress) {
		r.mu.Lock()
		r.status.Snapshot = &p
		r.mu.Unlock()
		r.metrics.snapshot.update(r.pipeline.Name, r.cfg.Name, p, &counted)
	}
	defer func() {
		r.mu.Lock()
		r.status.Snapshot = nil
		r.mu.Unlock()
	}()
	res, err := runSnapshot(ctx, r.pipeline, r.cfg, r.sink, r.router, SnapshotOptions{Watch: watch}, r.log)
	if err != nil {
		return binlog.Start{}, fmt.Errorf("snapshot: %w", err)
	}
	return snapshotStart(res), nil
}

// snapshotSkip is what streaming from from must drop because the tables'
// copies have it (nil when the sink keeps no snapshot), and the tables
// copied in parts whose changes between their parts' positions streaming
// applies as upserts (snapshot.Windows). It does not depend on snapshot:
// initial: sluice snapshot may have seeded the target.
func (r *sourceRunner) snapshotSkip(ctx context.Context, from binlog.GTIDSet) (snapshot.Skip, []checkpoint.TableSnapshot, error) {
	target, ok := r.sink.(snapshotTarget)
	if !ok {
		return nil, nil, nil
	}
	tables, err := target.SnapshotTables(ctx, r.cfg.Name)
	if err != nil {
		return nil, nil, err
	}
	return snapshot.NewSkip(tables, from), snapshot.Windows(tables, from), nil
}

// Snapshot runs the initial snapshot of the selected pipelines' sources
// that have no checkpoint (sluice snapshot), holding each pipeline's lease
// meanwhile. A source whose every table is then copied gets its checkpoint
// and schema history, so that sluice run streams from there.
func Snapshot(ctx context.Context, cfg *config.File, o SnapshotOptions) error {
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	ran := 0
	for _, p := range cfg.Pipelines {
		if len(o.Pipelines) > 0 && !slices.Contains(o.Pipelines, p.Name) {
			continue
		}
		if p.Sink.Type != "mysql" {
			if len(o.Pipelines) > 0 {
				return fmt.Errorf("pipeline %s: snapshots are written to MySQL/MariaDB sinks only, not %s", p.Name, p.Sink.Type)
			}
			continue
		}
		ran++
		if err := snapshotPipeline(ctx, cfg, p, o, log.With("pipeline", p.Name)); err != nil {
			return err
		}
	}
	if ran == 0 {
		return errors.New("no pipeline with a MySQL/MariaDB sink to snapshot")
	}
	return nil
}

func snapshotPipeline(ctx context.Context, cfg *config.File, p *config.Pipeline, o SnapshotOptions, log *slog.Logger) error {
	sink, err := OpenSink(ctx, p, SinkOptions{Logger: log})
	if err != nil {
		return err
	}
	defer sink.Close()
	if l, ok := sink.(leaser); ok {
		lease, err := l.TryAcquire(ctx, holderName(), p.LeaseTTL.Duration)
		if err != nil {
			return err
		}
		if !lease.Mine {
			return fmt.Errorf("pipeline %s is held by %s (epoch %d): stop it before taking a snapshot, or let sluice run take it (snapshot: initial)",
				p.Name, lease.Holder, lease.Epoch)
		}
		lctx, lose := context.WithCancelCause(ctx)
		defer lose(nil)
		go keepLease(lctx, l, p.LeaseTTL.Duration, lose, log)
		defer func() {
			rel, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			_ = l.Release(rel)
			cancel()
		}()
		ctx = lctx
	}
	for _, s := range p.Sources {
		slog := log.With("source", s.Name)
		if st, ok, err := sink.Checkpoint(ctx, s.Name); err != nil {
			return err
		} else if ok {
			return fmt.Errorf("pipeline %s source %s already streams (checkpoint %s): an initial snapshot is for a source without a checkpoint (sluice reset drops it)",
				p.Name, s.Name, st.GTID.String())
		}
		var tables []string
		for _, t := range o.Tables {
			sch, tbl, _ := strings.Cut(t, ".")
			if s.Filter.Match(sch, tbl) {
				tables = append(tables, t)
			}
		}
		if len(o.Tables) > 0 && len(tables) == 0 {
			slog.Info("no --table of this source")
			continue
		}
		res, err := runSnapshot(ctx, p, s, sink, newRouter(p, s, nil, slog), SnapshotOptions{Tables: tables, Readers: o.Readers, Writers: o.Writers, Watch: o.Watch}, slog)
		if err != nil {
			if cause := context.Cause(ctx); cause != nil && ctx.Err() != nil {
				return cause
			}
			return fmt.Errorf("pipeline %s source %s: %w", p.Name, s.Name, err)
		}
		if !res.Complete {
			slog.Info("the tables given are copied; the source gets its checkpoint once every table it includes is copied")
			continue
		}
		if err := startCheckpoint(ctx, cfg, p, s, sink, res); err != nil {
			return err
		}
		slog.Info("snapshot complete: sluice run streams from here", "gtid", res.Start.GTID.String(), "pos", res.Start.Pos.String())
	}
	return nil
}

// startCheckpoint records a finished snapshot's start as the source's
// checkpoint, with the schema it starts with.
func startCheckpoint(ctx context.Context, cfg *config.File, p *config.Pipeline, s *config.Source, sink Sink, res snapshot.Result) error {
	db, err := mysqlconn.Open(ctx, s.Conn, nil)
	if err != nil {
		return err
	}
	cat, err := schema.Load(ctx, db)
	db.Close()
	if err != nil {
		return fmt.Errorf("%s: %w", s.Conn, err)
	}
	history, err := checkpoint.OpenSchemaHistory(cfg.StateDir, p.Name, s.Name)
	if err != nil {
		return err
	}
	if err := history.Reset(checkpoint.SchemaVersion{GTID: res.Start.GTID, Pos: res.Start.Pos, Catalog: cat}); err != nil {
		return err
	}
	return sink.Apply(ctx, s.Name, &binlog.Txn{Executed: res.Start.GTID, Pos: res.Start.Pos})
}

// snapshotMetrics are the initial snapshot's series.
type snapshotMetrics struct {
	rows   *prometheus.CounterVec
	tables *prometheus.GaugeVec
}

func newSnapshotMetrics(reg *prometheus.Registry, labels []string) snapshotMetrics {
	m := snapshotMetrics{
		rows: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_snapshot_rows_copied_total",
			Help: "Rows copied to the sink by the initial snapshot."}, labels),
		tables: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sluice_snapshot_tables_remaining",
			Help: "Tables the running initial snapshot has still to copy; 0 when none runs."}, labels),
	}
	reg.MustRegister(m.rows, m.tables)
	return m
}

func (m snapshotMetrics) init(pipeline, source string) {
	m.rows.WithLabelValues(pipeline, source)
	m.tables.WithLabelValues(pipeline, source)
}

// update records p; counted is the rows already added to the counter.
func (m snapshotMetrics) update(pipeline, source string, p snapshot.Progress, counted *uint64) {
	if p.Rows > *counted {
		m.rows.WithLabelValues(pipeline, source).Add(float64(p.Rows - *counted))
		*counted = p.Rows
	}
	m.tables.WithLabelValues(pipeline, source).Set(float64(p.Tables - p.TablesDone))
}
