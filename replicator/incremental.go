package replicator

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/sluice-cdc/sluice/binlog"
	"github.com/sluice-cdc/sluice/binlog/schema"
	"github.com/sluice-cdc/sluice/checkpoint"
	"github.com/sluice-cdc/sluice/config"
	"github.com/sluice-cdc/sluice/mysqlconn"
	"github.com/sluice-cdc/sluice/snapshot"
)

// The incremental snapshot: a table is copied while the pipeline streams,
// with no lock, as Netflix's DBLog (and Debezium, Flink CDC) do it.
//
// sluice snapshot --incremental records a request in the target's
// sluice.snapshot_incremental; the process running the pipeline polls it
// (every 2s) and copies one table at a time, chunk by chunk:
//
//  1. Open the window (the low watermark): from now on the stream's
//     reader notes the key of every change to the table it reads
//     (observe).
//  2. Read the chunk (the next rows in key order) with one SELECT in a
//     consistent snapshot of its own (snapshot.ChunkReader). MariaDB gives
//     the snapshot's exact binlog position S (binlog_snapshot_file/
//     position, as a GTID position): the rows hold every transaction up
//     to S and none after. S is after everything the reader had read when
//     the window opened, so every change after S is noted. S is the high
//     watermark. (A plain SELECT between two reads of gtid_binlog_pos
//     could miss a transaction already in the binlog but not yet
//     committed in InnoDB: the consistent snapshot has no such gap.)
//  3. The applier, between two runs of transactions, once it has applied
//     S (at once if it has already), closes the window and writes the
//     chunk's rows whose keys the window did not note (REPLACE of full
//     rows), with the table's progress, in one target transaction. A
//     noted key's row is left to the stream, whose change is newer than
//     the chunk's row: applied before the chunk, or after it in stream
//     order. Every other row is the same at S and at the point it is
//     written.
//
// While the table is seeded its changes may meet rows not copied yet (an
// update or delete of one) or written by a chunk: the sink applies them as
// upserts (SetSeeding), until the stream has applied everything it read
// when the last chunk was written (TolerateUntil, kept with the progress
// for a restart). A DDL on the table inside a window drops the chunk,
// which is read again with the new definition; rows are never read in a
// definition the target table does not have yet (the chunk waits for H,
// past any DDL the SELECT saw). A kill at any point resumes from the last
// chunk committed (its After key is in the same target transaction).

// incrementalTarget is implemented by sinks an incremental snapshot can
// write (sinks/mysql, sinks/nats: read events).
type incrementalTarget interface {
	snapshot.Target
	IncrementalSnapshots(ctx context.Context, source string) ([]checkpoint.IncrementalSnapshot, error)
	// WriteIncrementalChunk writes a chunk's rows of target table dst
	// (after clear: the DELETE of its key range, or of the whole table for
	// a table without a key; a sink without range clears, ClearsRanges
	// false, is given only the whole table's), with st, atomically.
	WriteIncrementalChunk(ctx context.Context, source string, st checkpoint.IncrementalSnapshot, dst *binlog.Table, clear []byte, rows []*binlog.Change) error
	SetSeeding(source, schema, table string, on bool)
}

const (
	incrementalPoll = 2 * time.Second
	// maxWindowKeys bounds the keys a chunk's window notes: past it the
	// chunk is dropped and read again (a table written faster than the
	// pipeline keeps up with).
	maxWindowKeys = 1 << 20
	// maxClearKeys bounds the keys a chunk's range DELETE spares (its
	// statement's size); past it the chunk is read again.
	maxClearKeys = 50000
)

// errChunkAgain: the chunk must be read again (a DDL on the table, or too
// many changes, in its window).
var errChunkAgain = errors.New("chunk to read again")

// errStreamEnds: writing the chunk failed in the applier, which ends the
// stream with the error (retried as any target error); the copy resumes
// with the next stream, it has not failed.
var errStreamEnds = errors.New("the stream ends")

// incremental is a source runner's incremental snapshots, for one stream.
type incremental struct {
	r      *sourceRunner
	target incrementalTarget
	log    *slog.Logger
	wake   chan struct{}

	mu      sync.Mutex
	windows map[string]*window // source table -> its open chunk's window
	readPos binlog.GTIDSet     // Executed of the last transaction read (while a window is open)
	ready   *pendingChunk      // a chunk waiting for the applier
	// tolerate: finished tables still seeded until the stream applied until.
	tolerate []tolerance
	waiting  map[string]bool // requests logged as waiting for the filter (run's goroutine)
	db       *sql.DB         // the source (prepare, then run's goroutine)
}

type window struct {
	table  *binlog.Table // the source table as the chunk reads it
	keys   map[string]struct{}
	again  bool // DDL on the table, or too many keys
	reason string
}

type tolerance struct {
	schema, table string // the target table
	until         binlog.GTIDSet
}

type pendingChunk struct {
	name  string // source table
	st    checkpoint.IncrementalSnapshot
	ch    snapshot.Chunk
	dst   *binlog.Table
	route func(*binlog.Change) *binlog.Change
	clear bool // delete the target rows of the chunk's key range first
	done  chan error
}

// newIncremental is nil for sinks that cannot take an incremental
// snapshot.
func newIncremental(r *sourceRunner) *incremental {
	t, ok := r.sink.(incrementalTarget)
	if !ok {
		return nil
	}
	return &incremental{r: r, target: t, log: r.log, wake: make(chan struct{}, 1), windows: map[string]*window{}, waiting: map[string]bool{}}
}

// wakeC is signalled when a chunk waits for the applier.
func (in *incremental) wakeC() <-chan struct{} {
	if in == nil {
		return nil
	}
	return in.wake
}

// prepare, before streaming from the checkpoint, marks the tables being
// seeded (or whose last chunk's window the stream has not applied yet), so
// that their changes are applied as upserts from the first one.
func (in *incremental) prepare(ctx context.Context, from checkpoint.State) error {
	if in == nil {
		return nil
	}
	list, err := in.target.IncrementalSnapshots(ctx, in.r.cfg.Name)
	if err != nil {
		return err
	}
	rt := newRouter(in.r.pipeline, in.r.cfg, nil, in.log)
	for _, st := range list {
		if !in.r.cfg.Filter.Match(st.Schema, st.Table) {
			continue
		}
		switch {
		case st.State == checkpoint.IncrementalRequested || st.State == checkpoint.IncrementalRunning:
			// Before the stream applies a change to it: a newly included
			// table's target table is created here.
			if err := in.prepareTable(ctx, rt, st); err != nil {
				if ctx.Err() != nil || sinkRetryable(err) {
					return err // a server down: the stream is retried
				}
				in.fail(ctx, st, err)
			}
		case st.State == checkpoint.IncrementalDone && !st.TolerateUntil.IsEmpty() && !from.GTID.ContainsSet(st.TolerateUntil):
			dst := targetTableOf(rt, &binlog.Table{Schema: st.Schema, Name: st.Table})
			in.target.SetSeeding(in.r.cfg.Name, dst.Schema, dst.Name, true)
			in.tolerate = append(in.tolerate, tolerance{dst.Schema, dst.Name, st.TolerateUntil})
		}
	}
	return nil
}

// snapshotWindows marks the target tables of initial snapshots resumed in
// a new snapshot (snapshot.Windows) as seeded until the stream has applied
// their last part's position: their changes since the first part's are
// applied as upserts, which brings every row to that position.
func (in *incremental) snapshotWindows(windows []checkpoint.TableSnapshot) error {
	if len(windows) == 0 {
		return nil
	}
	if in == nil {
		return fmt.Errorf("table %s was copied in two parts (a resumed snapshot), which only a MySQL/MariaDB sink can catch up", windows[0].Name())
	}
	rt := newRouter(in.r.pipeline, in.r.cfg, nil, in.log)
	for _, t := range windows {
		dst := targetTableOf(rt, &binlog.Table{Schema: t.Schema, Name: t.Table})
		in.target.SetSeeding(in.r.cfg.Name, dst.Schema, dst.Name, true)
		in.tolerate = append(in.tolerate, tolerance{dst.Schema, dst.Name, t.At.GTID})
		in.log.Info("the snapshot of this table resumed at a later position: its changes until then are applied as upserts",
			"table", t.Name(), "from", t.Start().GTID.String(), "until", t.At.GTID.String())
	}
	return nil
}

// targetTableOf is t's target table.
func targetTableOf(rt *router, t *binlog.Table) *binlog.Table {
	return rt.rename(&binlog.Change{Table: t, Op: binlog.Insert, After: make([]binlog.Value, len(t.Columns))}).Table
}

func (in *incremental) prepareTable(ctx context.Context, rt *router, st checkpoint.IncrementalSnapshot) error {
	db, err := in.sourceDB(ctx)
	if err != nil {
		return err
	}
	cr, err := snapshot.NewChunkReader(ctx, db, st.Schema, st.Table)
	if err != nil {
		return err
	}
	defer cr.Close()
	_, err = in.begin(ctx, cr, rt, st)
	return err
}

// begin creates a seeded table's target table when missing and marks it
// seeded; it returns the target table.
func (in *incremental) begin(ctx context.Context, cr *snapshot.ChunkReader, rt *router, st checkpoint.IncrementalSnapshot) (*binlog.Table, error) {
	src := cr.Table()
	dst := targetTableOf(rt, src)
	created, err := snapshot.PrepareTarget(ctx, in.db, in.target, src, dst)
	if err != nil {
		return nil, err
	}
	if created {
		in.log.Info("incremental snapshot: created the target table from the source's definition", "table", st.Name(), "target", dst.QualifiedName())
	}
	in.target.SetSeeding(in.r.cfg.Name, dst.Schema, dst.Name, true)
	return dst, nil
}

// fail records a table's snapshot as failed, with the reason.
func (in *incremental) fail(ctx context.Context, st checkpoint.IncrementalSnapshot, err error) {
	in.log.Error("incremental snapshot failed", "table", st.Name(), "error", err.Error())
	st.State, st.Message = checkpoint.IncrementalFailed, err.Error()
	if werr := in.target.WriteIncrementalChunk(ctx, in.r.cfg.Name, st, nil, nil, nil); werr != nil && ctx.Err() == nil {
		in.log.Error("incremental snapshot: recording the failure", "table", st.Name(), "error", werr.Error())
	}
}

func (in *incremental) sourceDB(ctx context.Context) (*sql.DB, error) {
	if in.db != nil {
		return in.db, nil
	}
	db, err := mysqlconn.Open(ctx, in.r.cfg.Conn, nil)
	if err != nil {
		return nil, err
	}
	in.db = db
	return db, nil
}

// run polls for requests and copies the requested tables one at a time,
// until ctx ends. A table that cannot be copied is recorded failed; an
// error writing the target ends the stream (returned by emit).
func (in *incremental) run(ctx context.Context) {
	if in == nil {
		return
	}
	defer func() {
		if in.db != nil {
			in.db.Close()
		}
	}()
	for {
		list, err := in.target.IncrementalSnapshots(ctx, in.r.cfg.Name)
		if err != nil && ctx.Err() == nil {
			in.log.Warn("incremental snapshot: reading requests", "error", err.Error())
		}
		for _, st := range list {
			if st.State != checkpoint.IncrementalRequested && st.State != checkpoint.IncrementalRunning {
				continue
			}
			if !in.r.cfg.Filter.Match(st.Schema, st.Table) {
				if !in.waiting[st.Name()] {
					in.waiting[st.Name()] = true
					in.log.Warn("incremental snapshot requested for a table this running pipeline does not include: add it to include and reload (kill -HUP)", "table", st.Name())
				}
				continue
			}
			if err := in.copyTable(ctx, st); err != nil {
				if ctx.Err() != nil || errors.Is(err, errStreamEnds) {
					return
				}
				if sinkRetryable(err) {
					// A lost connection: tried again at the next poll,
					// from the last chunk committed.
					in.log.Warn("incremental snapshot interrupted, resuming shortly", "table", st.Name(), "error", err.Error())
					continue
				}
				in.fail(ctx, st, err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(incrementalPoll):
		}
	}
}

// copyTable copies one table, from its last committed chunk.
func (in *incremental) copyTable(ctx context.Context, st checkpoint.IncrementalSnapshot) error {
	db, err := in.sourceDB(ctx)
	if err != nil {
		return err
	}
	var rowImage string
	if err := db.QueryRowContext(ctx, "SELECT @@GLOBAL.binlog_row_image").Scan(&rowImage); err != nil {
		return err
	}
	if !strings.EqualFold(rowImage, "FULL") {
		return fmt.Errorf("the source's binlog_row_image is %s: an incremental snapshot applies the table's changes as whole rows meanwhile, which needs FULL", rowImage)
	}
	cr, err := snapshot.NewChunkReader(ctx, db, st.Schema, st.Table)
	if err != nil {
		return err
	}
	defer func() { cr.Close() }()
	rt := newRouter(in.r.pipeline, in.r.cfg, nil, in.log)
	var mu sync.Mutex // the router is used by the applier's goroutine
	route := func(c *binlog.Change) *binlog.Change {
		mu.Lock()
		defer mu.Unlock()
		return rt.rename(c)
	}
	dst, err := in.begin(ctx, cr, rt, st)
	if err != nil {
		return err
	}
	// Each chunk first deletes the target rows of its key range (those the
	// source no longer has, on a re-seed), unless the target table is fed
	// by other tables or sources too (a merging route), or has other
	// columns.
	route0 := in.r.pipeline.Route(st.Schema, st.Table)
	clear := (route0 == nil || !route0.Merging(in.r.pipeline)) && len(dst.Columns) == len(cr.Table().Columns)
	keyless := len(cr.Table().PK) == 0
	switch c, ok := in.target.(interface{ ClearsRanges() bool }); {
	case keyless && !clear:
		return fmt.Errorf("table %s has no primary key or unique NOT NULL key: an incremental snapshot replaces such a table's target table whole, and %s is fed by other tables or sources, or has other columns; add a key to the source table and request it again", st.Name(), dst.QualifiedName())
	case keyless:
		// Whole: its rows cannot be told apart by a key, so the one
		// chunk is written only if no change to the table was read in
		// its window (observe), after a clear of the whole table.
		in.log.Warn("incremental snapshot of a table without a primary key or unique NOT NULL key: it is copied whole, as one chunk written only if nothing changes the table while it is read", "table", st.Name(), "max_bytes", snapshot.MaxKeylessBytes)
	case ok && !c.ClearsRanges():
		clear = false // a stream (sinks/nats): read events only
	}
	resumed := st.State == checkpoint.IncrementalRunning && st.After != nil
	if st.State == checkpoint.IncrementalRequested {
		st.State = checkpoint.IncrementalRunning
		if err := in.target.WriteIncrementalChunk(ctx, in.r.cfg.Name, st, nil, nil, nil); err != nil {
			return err
		}
	}
	var estimate uint64
	_ = db.QueryRowContext(ctx, "SELECT COALESCE(TABLE_ROWS, 0) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?", st.Schema, st.Table).Scan(&estimate)
	in.log.Info("incremental snapshot starting", "table", st.Name(), "target", dst.QualifiedName(), "resumed", resumed,
		"chunks_done", st.Chunks, "rows_done", st.RowsRead, "rows_estimate", estimate)
	started, firstRows := time.Now(), st.RowsRead
	counted := firstRows // rows of an earlier run are not counted again
	progress := func(st checkpoint.IncrementalSnapshot, done bool) {
		p := snapshot.Progress{Tables: 1, Rows: st.RowsRead, RowsTotal: max(estimate, st.RowsRead), Copying: []string{st.Name()}}
		if done {
			p.TablesDone = 1
		}
		if s := time.Since(started).Seconds(); s > 0 {
			p.RowsPerSecond = float64(st.RowsRead-firstRows) / s
		}
		if p.RowsPerSecond > 0 && p.RowsTotal > p.Rows {
			p.ETA = time.Duration(float64(p.RowsTotal-p.Rows) / p.RowsPerSecond * float64(time.Second)).Round(time.Second)
		}
		in.r.mu.Lock()
		in.r.status.Snapshot = &p
		in.r.mu.Unlock()
		in.r.metrics.snapshot.update(in.r.pipeline.Name, in.r.cfg.Name, p, &counted)
	}
	defer func() {
		in.r.mu.Lock()
		in.r.status.Snapshot = nil
		in.r.mu.Unlock()
	}()
	progress(st, false)
	again := 0
	for {
		if again > 0 {
			// A dropped chunk: let the stream catch up first, so that
			// the next window is short.
			if err := in.waitApplied(ctx, db); err != nil {
				return err
			}
		}
		in.open(st.Name(), cr.Table())
		ch, err := cr.Read(ctx, st.After)
		if errors.Is(err, snapshot.ErrKeylessTooLarge) {
			in.closeWindow(st.Name())
			return fmt.Errorf("table %s has no primary key or unique NOT NULL key and is too large for one chunk (more than %d MiB): an incremental snapshot copies such a table whole, in one chunk held in memory; add a primary key and request it again, or stop sluice run and copy it with sluice snapshot --table %s", st.Name(), snapshot.MaxKeylessBytes>>20, st.Name())
		}
		if errors.Is(err, snapshot.ErrDefinitionChanged) {
			in.closeWindow(st.Name())
			if cr, err = in.reread(ctx, cr, db, st, &again); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			in.closeWindow(st.Name())
			return err
		}
		p := &pendingChunk{name: st.Name(), st: st, ch: ch, dst: dst, route: route, clear: clear, done: make(chan error, 1)}
		in.mu.Lock()
		in.ready = p
		in.mu.Unlock()
		select {
		case in.wake <- struct{}{}:
		default:
		}
		select {
		case err = <-p.done:
		case <-ctx.Done():
			in.mu.Lock()
			if in.ready == p {
				in.ready = nil
			}
			delete(in.windows, st.Name())
			in.mu.Unlock()
			return ctx.Err()
		}
		if errors.Is(err, errChunkAgain) {
			if cr, err = in.reread(ctx, cr, db, st, &again); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		again = 0
		st = p.st
		progress(st, st.State == checkpoint.IncrementalDone)
		if st.State == checkpoint.IncrementalDone {
			in.log.Info("incremental snapshot done", "table", st.Name(), "chunks", st.Chunks, "rows_read", st.RowsRead,
				"rows_written", st.RowsWritten, "seconds", time.Since(started).Round(time.Millisecond).Seconds())
			return nil
		}
		in.log.Debug("incremental snapshot chunk", "table", st.Name(), "chunk", st.Chunks, "rows", len(ch.Rows))
	}
}

// reread makes a new chunk reader after a DDL on the table (at most 10
// times in a row).
func (in *incremental) reread(ctx context.Context, cr *snapshot.ChunkReader, db *sql.DB, st checkpoint.IncrementalSnapshot, again *int) (*snapshot.ChunkReader, error) {
	cr.Close()
	if *again++; *again > 10 && len(cr.Table().PK) == 0 {
		return cr, errors.New("the table has no primary key or unique NOT NULL key, so its copy (the whole table, one chunk) is written only if nothing changed the table while it was read, and it changed (or its definition did) each of 10 times: request it again when the table is quieter, or add a primary key")
	} else if *again > 10 {
		return cr, fmt.Errorf("the chunk was dropped 10 times in a row (DDL on the table, or more than %d changes to it while a chunk waited): run sluice snapshot --incremental again when it is quieter", maxWindowKeys)
	}
	in.log.Info("incremental snapshot: reading the chunk again", "table", st.Name())
	n, err := snapshot.NewChunkReader(ctx, db, st.Schema, st.Table)
	if err != nil {
		return cr, fmt.Errorf("after a DDL: %w", err)
	}
	return n, nil
}

// waitApplied waits until the applier has applied the source's current
// position.
func (in *incremental) waitApplied(ctx context.Context, db *sql.DB) error {
	var s string
	if err := db.QueryRowContext(ctx, "SELECT @@GLOBAL.gtid_binlog_pos").Scan(&s); err != nil {
		return fmt.Errorf("read the source's gtid_binlog_pos: %w", err)
	}
	pos, err := binlog.ParseGTIDSet(s)
	if err != nil {
		return err
	}
	since, logged := time.Now(), false
	for !in.appliedSet().ContainsSet(pos) {
		if !logged && time.Since(since) > 10*time.Second {
			logged = true
			in.log.Info("incremental snapshot: waiting for the stream to apply the source's position before the next chunk", "gtid", pos.String(), "applied", in.appliedSet().String())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

func (in *incremental) appliedSet() binlog.GTIDSet {
	in.r.mu.Lock()
	defer in.r.mu.Unlock()
	return in.r.applied.GTID
}

// open opens a table's window: the reader notes its changed keys.
func (in *incremental) open(name string, t *binlog.Table) {
	in.mu.Lock()
	in.windows[name] = &window{table: t, keys: map[string]struct{}{}}
	in.mu.Unlock()
}

func (in *incremental) closeWindow(name string) {
	in.mu.Lock()
	delete(in.windows, name)
	in.mu.Unlock()
}

// observe is called by the stream's reader for each transaction read, in
// order, before routing: it notes the keys of the changes to tables with
// an open window, and DDL on them.
func (in *incremental) observe(t *binlog.Txn) error {
	if in == nil {
		return nil
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if len(in.windows) == 0 {
		return nil
	}
	in.readPos = t.Executed.Clone()
	if t.DDL != nil {
		var mode schema.SQLMode
		if t.DDL.Session != nil {
			mode = schema.SQLMode(t.DDL.Session.SQLMode)
		}
		st := schema.Classify(t.DDL.Schema, t.DDL.SQL, mode)
		for name, w := range in.windows {
			s, tb, _ := strings.Cut(name, ".")
			hit := st.Kind == schema.DatabaseStatement && strings.EqualFold(st.Database, s)
			for _, tr := range st.Tables {
				hit = hit || strings.EqualFold(tr.Schema, s) && strings.EqualFold(tr.Name, tb)
			}
			if hit {
				w.again, w.reason = true, "DDL"
			}
		}
	}
	if t.Len() == 0 {
		return nil
	}
	var buf []byte
	for c, err := range t.Changes() {
		if err != nil {
			return err
		}
		w := in.windows[c.Table.QualifiedName()]
		if w == nil || w.again {
			continue
		}
		if len(c.Table.Columns) != len(w.table.Columns) {
			// Rows of another definition than the chunk's.
			w.again, w.reason = true, "definition"
			continue
		}
		if len(w.table.PK) == 0 {
			// No key tells which of the chunk's rows the change met.
			w.again, w.reason, w.keys = true, "a change to a table without a key", nil
			continue
		}
		for _, img := range [][]binlog.Value{c.Before, c.After} {
			if img != nil {
				buf = snapshot.KeyOf(buf[:0], w.table, img)
				w.keys[string(buf)] = struct{}{}
			}
		}
		if len(w.keys) > maxWindowKeys {
			w.again, w.reason, w.keys = true, "too many changes", nil
		}
	}
	return nil
}

// hasReady reports whether a chunk waits for the applier.
func (in *incremental) hasReady() bool {
	if in == nil {
		return false
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.ready != nil
}

// emit, called by the applier between runs of transactions, writes the
// waiting chunk once the applier has applied its high watermark, and ends
// the seeding of finished tables whose last window the stream applied.
func (in *incremental) emit(ctx context.Context) error {
	if in == nil {
		return nil
	}
	applied := in.appliedSet()
	in.mu.Lock()
	if len(in.tolerate) > 0 {
		keep := in.tolerate[:0]
		for _, tl := range in.tolerate {
			if applied.ContainsSet(tl.until) {
				in.target.SetSeeding(in.r.cfg.Name, tl.schema, tl.table, false)
				continue
			}
			keep = append(keep, tl)
		}
		in.tolerate = keep
	}
	p := in.ready
	if p == nil || !applied.ContainsSet(p.ch.At.GTID) {
		in.mu.Unlock()
		return nil
	}
	in.ready = nil
	w := in.windows[p.name]
	delete(in.windows, p.name)
	readPos := in.readPos.Clone()
	in.mu.Unlock()
	if w == nil || w.again || p.clear && len(w.keys) > maxClearKeys {
		p.done <- errChunkAgain
		return nil
	}
	var rows []*binlog.Change
	var buf []byte
	for _, c := range p.ch.Rows {
		buf = snapshot.KeyOf(buf[:0], w.table, c.After)
		if _, changed := w.keys[string(buf)]; !changed {
			rows = append(rows, c)
		}
	}
	rows = snapshot.Routed(rows, p.route)
	var clear []byte
	if p.clear {
		keep := make([]string, 0, len(w.keys))
		for k := range w.keys {
			keep = append(keep, k)
		}
		hi := p.ch.After
		if p.ch.Last {
			hi = nil
		}
		clear = snapshot.AppendClear(nil, p.dst, p.st.After, hi, keep)
	}
	st := p.st
	st.Chunks++
	st.RowsRead += uint64(len(p.ch.Rows))
	st.RowsWritten += uint64(len(rows))
	if p.ch.After != nil {
		st.After = p.ch.After
	}
	if p.ch.Last {
		st.State = checkpoint.IncrementalDone
		// Until the stream has applied what it read so far, changes to
		// the table may meet the rows this window left to them.
		st.TolerateUntil = readPos
		if readPos.IsEmpty() {
			st.TolerateUntil = applied
		}
	}
	if err := in.target.WriteIncrementalChunk(ctx, in.r.cfg.Name, st, p.dst, clear, rows); err != nil {
		p.done <- fmt.Errorf("%w: %w", errStreamEnds, err)
		return err
	}
	if p.ch.Last {
		in.mu.Lock()
		in.tolerate = append(in.tolerate, tolerance{p.dst.Schema, p.dst.Name, st.TolerateUntil})
		in.mu.Unlock()
	}
	p.st = st
	p.done <- nil
	return nil
}

// RequestOptions configure sluice snapshot --incremental.
type RequestOptions struct {
	Pipeline string
	Tables   []string // schema.table
	Logger   *slog.Logger
	// Wait waits until every requested table is copied (or failed),
	// calling Watch with each table's progress every 2 seconds.
	Wait  bool
	Watch func(source string, st checkpoint.IncrementalSnapshot)
}

// RequestIncremental records an incremental snapshot of each table for
// every source of the pipeline that includes it, in the pipeline's
// target, for the process running the pipeline to pick up.
func RequestIncremental(ctx context.Context, cfg *config.File, o RequestOptions) error {
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	var p *config.Pipeline
	for _, q := range cfg.Pipelines {
		if q.Name == o.Pipeline {
			p = q
		}
	}
	if p == nil {
		return fmt.Errorf("no pipeline %s in the file", o.Pipeline)
	}
	sink, err := OpenSink(ctx, p, SinkOptions{Logger: log})
	if err != nil {
		return err
	}
	defer sink.Close()
	target, ok := sink.(interface {
		incrementalTarget
		RequestIncrementalSnapshot(ctx context.Context, source, schema, table string) (string, error)
	})
	if !ok {
		return fmt.Errorf("pipeline %s: its sink cannot take an incremental snapshot", p.Name)
	}
	type req struct{ source, table string }
	var reqs []req
	for _, name := range o.Tables {
		sch, tbl, ok := strings.Cut(name, ".")
		if !ok || sch == "" || tbl == "" {
			return fmt.Errorf("--table %s: give it as schema.table", name)
		}
		found := false
		for _, s := range p.Sources {
			if !s.Filter.Match(sch, tbl) {
				continue
			}
			found = true
			prev, err := target.RequestIncrementalSnapshot(ctx, s.Name, sch, tbl)
			if err != nil {
				return err
			}
			switch prev {
			case checkpoint.IncrementalRequested, checkpoint.IncrementalRunning:
				log.Warn("an incremental snapshot of this table is already "+prev+": it goes on", "source", s.Name, "table", name)
			default:
				log.Info("incremental snapshot requested: the process running the pipeline starts it within seconds", "source", s.Name, "table", name)
			}
			reqs = append(reqs, req{s.Name, name})
		}
		if !found {
			return fmt.Errorf("table %s: no source of pipeline %s includes it (add it to include, request the snapshot, then reload the running process with kill -HUP)", name, p.Name)
		}
	}
	if !o.Wait {
		return nil
	}
	for {
		pending := 0
		for _, rq := range reqs {
			list, err := target.IncrementalSnapshots(ctx, rq.source)
			if err != nil {
				return err
			}
			for _, st := range list {
				if st.Name() != rq.table {
					continue
				}
				if o.Watch != nil {
					o.Watch(rq.source, st)
				}
				switch st.State {
				case checkpoint.IncrementalFailed:
					return fmt.Errorf("the incremental snapshot of %s from source %s failed: %s", rq.table, rq.source, st.Message)
				case checkpoint.IncrementalDone:
				default:
					pending++
				}
			}
		}
		if pending == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(incrementalPoll):
		}
	}
}
