// Package snapshot copies a source's tables to a target from consistent
// snapshots, so that streaming can start from exactly the point the copy
// corresponds to (sluice run with snapshot: initial, and sluice snapshot).
//
// Each table is copied inside one consistent snapshot of the source
// (reader.go), at its own position P_T, in key-ordered chunks (copier.go)
// written on several target connections, each chunk one target
// transaction with the table's progress (Target, sinks/mysql), its end key
// included; a table's chunks commit in key order. Once every table is
// done, streaming starts at the earliest P_T, and a change to table T in a
// transaction P_T contains is dropped, as T's copy has it (Skip): each
// table then equals the source at every position after its own P_T, with
// no lock and no gap. A finished table is never read again. A table whose
// copy was interrupted resumes after its last committed chunk, in a new
// snapshot at a new position Q_T: its rows are then the source's at P_T
// (the part copied before) and at Q_T (the rest), and streaming applies
// T's changes between P_T and Q_T as upserts (Windows), which brings every
// row to Q_T, as Vitess's copy catch-up does. A MariaDB sequence is
// created from its definition and set to its row (sequence.go).
//
// A MySQL source reports no position for a consistent snapshot: there,
// the readers open their snapshots under a brief global read lock, all at
// one position P, and copy every table at P (lock.go); the rest is the
// same, with P_T = P for every table.
package snapshot

import (
	"cmp"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sluice-cdc/sluice/binlog"
	"github.com/sluice-cdc/sluice/binlog/schema"
	"github.com/sluice-cdc/sluice/checkpoint"
)

// Config is one source's snapshot.
type Config struct {
	Source     *sql.DB // the source server
	SourceName string
	Filter     *binlog.Filter
	// Tables, as schema.table, limits the copy to these tables (they
	// must pass Filter too); empty copies every table Filter passes.
	Tables []string
	// Route points a row at its target table (the pipeline's routes);
	// nil keeps the source's names.
	Route func(*binlog.Change) *binlog.Change
	// Merged reports whether a source table's target table is fed by
	// several tables or sources (a merging route): it is neither created
	// nor emptied by a snapshot.
	Merged  func(schema, table string) bool
	Target  Target
	Readers int // source connections copying tables at once (default 4)
	Writers int // target connections writing chunks at once (default 4)
	Logger  *slog.Logger
	// ReportEvery is the interval of progress log lines (default 10s);
	// Watch, when set, gets the same figures every 2 seconds.
	ReportEvery time.Duration
	Watch       func(Progress)
	// GlobalLock takes the global-lock path (lock.go), which a MySQL
	// source always takes, on a MariaDB source too: sluice's tests
	// exercise that path on MariaDB this way, as no MySQL server runs
	// there. Not a setting of the pipeline file.
	GlobalLock bool
}

// Result is where streaming starts after a snapshot.
type Result struct {
	// Start covers every copied table (the earliest of their positions).
	Start checkpoint.State
	// Complete: every table the filter passes is copied (not only some
	// of them, with Tables).
	Complete bool
	Tables   []checkpoint.TableSnapshot
	Copied   uint64 // rows copied by this run
}

// tableJob is one table to copy.
type tableJob struct {
	def      *schema.Table // the definition the target table was made from
	src      *binlog.Table // source definition
	dst      *binlog.Table // its target table (routed)
	truncate bool          // the target table holds rows of an interrupted copy
	// resume is the progress of an interrupted copy to resume after its
	// last chunk; nil copies the table from its first row.
	resume *checkpoint.TableSnapshot
	ts     checkpoint.TableSnapshot
	size   uint64 // estimated bytes, for ordering
	rows   uint64 // estimated rows, for progress

	pending sync.WaitGroup // chunks not yet written
	mu      sync.Mutex
	err     error
	next    uint64        // the chunk whose turn it is to commit
	changed chan struct{} // closed when next or err changes
}

func (j *tableJob) fail(err error) {
	j.mu.Lock()
	if j.err == nil {
		j.err = err
		j.wake()
	}
	j.mu.Unlock()
}

// wake tells the chunks waiting for their turn that it may have come
// (j.mu held).
func (j *tableJob) wake() {
	if j.changed != nil {
		close(j.changed)
	}
	j.changed = make(chan struct{})
}

// turn returns once the chunks before seq are committed (or the copy
// failed): a table's chunks commit in key order, so that its progress's
// After is always the end of everything committed.
func (j *tableJob) turn(seq uint64) func(context.Context) error {
	return func(ctx context.Context) error {
		for {
			j.mu.Lock()
			if j.err != nil {
				j.mu.Unlock()
				return j.err
			}
			if j.next == seq {
				j.mu.Unlock()
				return nil
			}
			if j.changed == nil {
				j.changed = make(chan struct{})
			}
			c := j.changed
			j.mu.Unlock()
			select {
			case <-c:
			case <-ctx.Done():
				return context.Cause(ctx)
			}
		}
	}
}

// committed records that chunk seq is committed.
func (j *tableJob) committed(seq uint64) {
	j.mu.Lock()
	j.next = seq + 1
	j.wake()
	j.mu.Unlock()
}

func (j *tableJob) failed() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.err
}

// Run copies every table not yet copied and returns where streaming
// starts. It can be run again after any failure or kill: finished tables
// are kept, an interrupted one is copied again.
func Run(ctx context.Context, cfg Config) (Result, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	if cfg.Readers <= 0 {
		cfg.Readers = 4
	}
	if cfg.Writers <= 0 {
		cfg.Writers = 4
	}
	if cfg.ReportEvery <= 0 {
		cfg.ReportEvery = 10 * time.Second
	}
	if cfg.Merged == nil {
		cfg.Merged = func(string, string) bool { return false }
	}
	srv, err := detectServer(ctx, cfg.Source)
	if err != nil {
		return Result{}, err
	}
	// MariaDB reports the position of each consistent snapshot; MySQL
	// needs the global read lock for it (lock.go).
	global := !srv.mariadb || cfg.GlobalLock
	gtids := &gtidCache{}
	open := func() (*reader, error) {
		if global {
			return newGlobalReader(ctx, cfg.Source, srv)
		}
		r, err := newReader(ctx, cfg.Source)
		if r != nil {
			r.gtids = gtids
		}
		return r, err
	}
	tables, estimates, sequences, others, err := listTables(ctx, cfg.Source, cfg.Filter)
	if err != nil {
		return Result{}, err
	}
	for _, o := range others {
		log.Warn("not copied by the snapshot (only base tables and sequences are): create and fill it on the target by hand", "table", o)
	}
	all := slices.Concat(tables, sequences)
	selected, selectedSeqs := tables, sequences
	if len(cfg.Tables) > 0 {
		selected, selectedSeqs = nil, nil
		for _, name := range cfg.Tables {
			switch {
			case slices.Contains(tables, name):
				selected = append(selected, name)
			case slices.Contains(sequences, name):
				selectedSeqs = append(selectedSeqs, name)
			default:
				return Result{}, fmt.Errorf("table %s: no such base table or sequence on the source, or the pipeline's include/exclude leave it out", name)
			}
		}
	}
	have, err := cfg.Target.SnapshotTables(ctx, cfg.SourceName)
	if err != nil {
		return Result{}, err
	}
	progressOf := map[string]checkpoint.TableSnapshot{}
	for _, t := range have {
		progressOf[t.Name()] = t
	}

	// Sequences first, one at a time: each is one row.
	var seqReader *reader
	defer func() {
		if seqReader != nil {
			seqReader.close()
		}
	}()
	for _, name := range selectedSeqs {
		p, ok := progressOf[name]
		if ok && p.Done {
			continue
		}
		if seqReader == nil {
			if seqReader, err = open(); err != nil {
				return Result{}, err
			}
		}
		if err := copySequence(ctx, cfg, seqReader, name, ok, log); err != nil {
			return Result{}, err
		}
	}

	// The tables to copy, their target tables created (one at a time,
	// before any copy: DDL on the target).
	var jobs []*tableJob
	var estimate uint64
	for _, name := range selected {
		p, ok := progressOf[name]
		if ok && p.Done {
			continue
		}
		schemaName, tableName := splitName(name)
		def, err := schema.LoadTable(ctx, cfg.Source, schemaName, tableName)
		if err != nil {
			return Result{}, fmt.Errorf("read the definition of %s: %w", name, err)
		}
		if def == nil {
			return Result{}, fmt.Errorf("table %s disappeared from the source", name)
		}
		j := &tableJob{def: def, src: binlog.TableFromSchema(def), size: estimates[name].bytes, rows: estimates[name].rows}
		j.dst = j.src
		if cfg.Route != nil {
			j.dst = cfg.Route(&binlog.Change{Table: j.src, Op: binlog.Insert, After: make([]binlog.Value, len(j.src.Columns))}).Table
		}
		var interrupted *checkpoint.TableSnapshot
		if ok {
			interrupted = &p
		}
		if err := prepareTarget(ctx, cfg, j, interrupted, log); err != nil {
			return Result{}, err
		}
		if len(j.src.PK) == 0 {
			log.Warn("table without a primary key or unique NOT NULL key: copied as one stream, not split into ranges", "table", name)
		}
		estimate += estimates[name].rows
		jobs = append(jobs, j)
	}
	// The largest first, so that the last tables to finish are small.
	slices.SortStableFunc(jobs, func(a, b *tableJob) int { return cmp.Compare(b.size, a.size) })

	prog := newProgress(log, len(jobs), estimate)
	if len(jobs) > 0 {
		log.Info("snapshot starting", "tables", len(jobs), "tables_done_before", len(selected)-len(jobs), "sequences", len(selectedSeqs), "rows_estimate", estimate,
			"readers", cfg.Readers, "writers", cfg.Writers)
		var held []*reader
		if global {
			// Every table at one position, under one brief lock.
			if held, err = openLocked(ctx, cfg.Source, srv, min(cfg.Readers, len(jobs)), log); err != nil {
				return Result{}, err
			}
		}
		if err := copyAll(ctx, cfg, jobs, held, open, prog, log); err != nil {
			return Result{}, err
		}
	}

	have, err = cfg.Target.SnapshotTables(ctx, cfg.SourceName)
	if err != nil {
		return Result{}, err
	}
	res := Result{Tables: have, Complete: true, Copied: prog.get().Rows}
	done := map[string]bool{}
	for _, t := range have {
		done[t.Name()] = t.Done
	}
	for _, name := range all {
		if !done[name] {
			res.Complete = false
		}
	}
	var copied []checkpoint.TableSnapshot
	for _, t := range have {
		if t.Done {
			copied = append(copied, t)
		}
	}
	start, ok := checkpoint.Earliest(copied)
	if !ok {
		// Nothing to copy: streaming starts now.
		r, err := open()
		if err != nil {
			return Result{}, err
		}
		start, err = r.begin(ctx)
		_ = r.end(ctx)
		r.close()
		if err != nil {
			return Result{}, err
		}
	}
	res.Start = start
	if len(jobs) > 0 {
		g := prog.get()
		log.Info("snapshot done", "tables", len(jobs), "rows", g.Rows, "seconds", float64(time.Since(prog.started).Milliseconds())/1000,
			"rows_per_second", int64(g.RowsPerSecond), "stream_from", start.GTID.String())
	}
	return res, nil
}

// prepareTarget creates a missing target table, and decides whether an
// interrupted copy (p, nil when none began) resumes after its last chunk,
// or an existing target table must be emptied (an interrupted copy that
// cannot resume) or refused (rows the snapshot did not write).
func prepareTarget(ctx context.Context, cfg Config, j *tableJob, p *checkpoint.TableSnapshot, log *slog.Logger) error {
	name := j.src.QualifiedName()
	merged := cfg.Merged(j.src.Schema, j.src.Name)
	exists, hasRows, err := cfg.Target.TargetTable(ctx, j.dst.Schema, j.dst.Name)
	if err != nil {
		return err
	}
	inProgress := p != nil
	if inProgress && exists && p.Definition != "" && p.Definition != fingerprint(j.def) {
		return fmt.Errorf("table %s changed on the source (DDL) since its interrupted copy into %s began: drop the target table (or, merged by a route, delete "+
			"the rows this source and table copied there), then run again", name, j.dst.QualifiedName())
	}
	if inProgress && exists && hasRows && p.After != nil && len(j.src.PK) > 0 {
		j.resume = p
		log.Info("resuming the interrupted copy after its last chunk", "table", name, "chunks_done", p.Chunks, "rows_done", p.Rows)
		return nil
	}
	switch {
	case !exists && len(j.dst.Columns) != len(j.src.Columns):
		return fmt.Errorf("table %s is routed to %s with added columns, which does not exist on the target: create it with the route's columns in its key, then run again", name, j.dst.QualifiedName())
	case !exists:
		createDB, createTable, err := createStatements(ctx, cfg.Source, j.src, j.dst)
		if err != nil {
			return err
		}
		if err := cfg.Target.CreateTable(ctx, j.dst.Schema, createDB, createTable); err != nil {
			return err
		}
		log.Info("created the target table from the source's definition", "table", name, "target", j.dst.QualifiedName())
	case merged && inProgress && p.Rows == 0:
		// No chunk committed: none of the rows there are this copy's.
	case merged && inProgress:
		return fmt.Errorf("the copy of %s into %s, a table merged by a route, was interrupted: delete the rows it copied there (those of this source and table), "+
			"then run again", name, j.dst.QualifiedName())
	case merged:
	case hasRows && inProgress:
		j.truncate = true
	case hasRows:
		return fmt.Errorf("target table %s already has rows: a snapshot copies only into missing or empty tables (empty it, or leave %s out with exclude)",
			j.dst.QualifiedName(), name)
	}
	return nil
}

// copyAll copies the tables with cfg.Readers source connections and
// cfg.Writers target writers. held, when not nil, are the readers of the
// global-lock path, opened at one position (openLocked), one per reader
// goroutine, which copyAll closes; otherwise each reader goroutine opens
// its connection and a snapshot per table.
func copyAll(ctx context.Context, cfg Config, jobs []*tableJob, held []*reader, open func() (*reader, error), prog *progress, log *slog.Logger) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	reportCtx, stopReport := context.WithCancel(ctx)
	reported := make(chan struct{})
	go func() {
		defer close(reported)
		prog.report(reportCtx, cfg.ReportEvery, cfg.Watch)
	}()

	queue := make(chan *tableJob, len(jobs))
	for _, j := range jobs {
		queue <- j
	}
	close(queue)
	chunks := make(chan chunk, cfg.Writers)

	var writers sync.WaitGroup
	for range cfg.Writers {
		writers.Add(1)
		go func() {
			defer writers.Done()
			for ch := range chunks {
				if ch.job.failed() == nil && ctx.Err() == nil {
					ts := ch.job.ts
					ts.After = ch.after
					if err := cfg.Target.WriteSnapshotRows(ctx, cfg.SourceName, ts, ch.rows, ch.job.turn(ch.seq)); err != nil {
						ch.job.fail(fmt.Errorf("write %s: %w", ch.job.src.QualifiedName(), err))
						cancel(ch.job.failed())
					} else {
						ch.job.committed(ch.seq)
						prog.add(ch.job.src.QualifiedName(), len(ch.rows))
					}
				}
				ch.job.pending.Done()
			}
		}()
	}

	var readers sync.WaitGroup
	for i := range min(cfg.Readers, len(jobs)) {
		readers.Add(1)
		go func() {
			defer readers.Done()
			var r *reader
			if held != nil {
				r = held[i]
			} else {
				var err error
				if r, err = open(); err != nil {
					cancel(err)
					return
				}
			}
			defer r.close()
			for j := range queue {
				if ctx.Err() != nil {
					return
				}
				if err := copyTable(ctx, cfg, r, j, chunks, prog, log); err != nil {
					cancel(err)
					return
				}
			}
		}()
	}
	readers.Wait()
	close(chunks)
	writers.Wait()
	stopReport()
	<-reported
	if cfg.Watch != nil {
		cfg.Watch(prog.get()) // the final figures
	}
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return ctx.Err()
}

// copyTable copies one table inside a snapshot of its own.
func copyTable(ctx context.Context, cfg Config, r *reader, j *tableJob, chunks chan<- chunk, prog *progress, log *slog.Logger) error {
	name := j.src.QualifiedName()
	at, err := r.begin(ctx)
	if err != nil {
		return fmt.Errorf("copy %s: %w", name, err)
	}
	// The rows are read with the columns the target table was made with:
	// a DDL since then would have them read wrong.
	now, err := schema.LoadTable(ctx, cfg.Source, j.src.Schema, j.src.Name)
	if err != nil {
		return fmt.Errorf("copy %s: %w", name, err)
	}
	if now == nil || !reflect.DeepEqual(now, j.def) {
		return fmt.Errorf("copy %s: the table's definition changed on the source (DDL) after the snapshot read it: drop the target table and run again", name)
	}
	j.ts = checkpoint.TableSnapshot{Schema: j.src.Schema, Table: j.src.Name, At: at, From: at, Definition: fingerprint(j.def)}
	if j.resume != nil {
		// The rows after the last chunk committed are read at a new
		// position; those before stay the source's at From.
		j.ts.From, j.ts.After, j.ts.Chunks, j.ts.Rows = j.resume.Start(), j.resume.After, j.resume.Chunks, j.resume.Rows
	}
	if err := cfg.Target.BeginSnapshotTable(ctx, cfg.SourceName, j.ts, j.dst, j.truncate); err != nil {
		return fmt.Errorf("copy %s: %w", name, err)
	}
	prog.start(name, j.rows)
	started := time.Now()
	log.Debug("copying", "table", name, "at", at.GTID.String(), "pos", at.Pos.String(), "resumed", j.resume != nil)
	var seq uint64
	rows, err := newCopier(r.conn, j.src, cfg.Route).copy(ctx, j.ts.After, func(rows []*binlog.Change, after []byte) error {
		if err := j.failed(); err != nil {
			return err
		}
		j.pending.Add(1)
		select {
		case chunks <- chunk{job: j, seq: seq, rows: rows, after: after}:
			seq++
			return nil
		case <-ctx.Done():
			j.pending.Done()
			return context.Cause(ctx)
		}
	})
	j.pending.Wait()
	if err == nil {
		err = j.failed()
	}
	if err != nil {
		return err
	}
	if err := r.end(ctx); err != nil {
		return fmt.Errorf("copy %s: %w", name, err)
	}
	j.ts.Rows += rows
	if err := cfg.Target.FinishSnapshotTable(ctx, cfg.SourceName, j.ts); err != nil {
		return fmt.Errorf("copy %s: %w", name, err)
	}
	prog.done(name)
	log.Info("table copied", "table", name, "rows", rows, "seconds", float64(time.Since(started).Milliseconds())/1000, "at", at.GTID.String())
	return nil
}

type estimate struct{ rows, bytes uint64 }

// listTables lists the source's base tables the filter passes, as
// schema.table, with their size estimates, its sequences, and the other
// tables it passes that a snapshot does not copy (system-versioned
// tables), as "schema.table (type)". Views hold no rows of their own.
func listTables(ctx context.Context, db *sql.DB, f *binlog.Filter) (names []string, est map[string]estimate, sequences, others []string, err error) {
	rows, err := db.QueryContext(ctx, "SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE, COALESCE(TABLE_ROWS, 0), COALESCE(DATA_LENGTH, 0) FROM information_schema.TABLES "+
		"WHERE TABLE_TYPE <> 'VIEW' ORDER BY TABLE_SCHEMA, TABLE_NAME")
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("list the source's tables: %w", err)
	}
	defer rows.Close()
	est = map[string]estimate{}
	for rows.Next() {
		var s, t, typ string
		var e estimate
		if err := rows.Scan(&s, &t, &typ, &e.rows, &e.bytes); err != nil {
			return nil, nil, nil, nil, err
		}
		switch {
		case schema.IsSystemSchema(s) || !f.Match(s, t):
		case typ == "SEQUENCE":
			sequences = append(sequences, s+"."+t)
		case typ != "BASE TABLE":
			others = append(others, s+"."+t+" ("+strings.ToLower(typ)+")")
		default:
			names = append(names, s+"."+t)
			est[s+"."+t] = e
		}
	}
	return names, est, sequences, others, rows.Err()
}

// Skip is, per source table, the position its snapshot was taken at (of
// its first part, for a copy resumed in a new snapshot): streaming drops a
// change to the table in a transaction that position contains, because
// every part of the table's copy has it.
type Skip map[string]binlog.GTIDSet

// NewSkip is the Skip of the finished tables whose position from is
// not past (from: where streaming resumes).
func NewSkip(tables []checkpoint.TableSnapshot, from binlog.GTIDSet) Skip {
	s := Skip{}
	for _, t := range tables {
		if at := t.Start().GTID; t.Done && !at.IsEmpty() && !from.ContainsSet(at) {
			s[t.Name()] = at
		}
	}
	return s
}

// Windows are the finished tables copied in parts at several positions
// (resumed after an interruption) whose last part's position (At) from is
// not past. Streaming applies their changes between the first part's
// position and At as upserts: a change there is in some of the table's
// rows already (those copied after it), not in others, and applying each
// change as "the row is now this image" (or "gone") brings every row to
// its state at At, whatever it started from.
func Windows(tables []checkpoint.TableSnapshot, from binlog.GTIDSet) []checkpoint.TableSnapshot {
	var out []checkpoint.TableSnapshot
	for _, t := range tables {
		if t.Done && !t.At.GTID.IsEmpty() && !t.Start().GTID.ContainsSet(t.At.GTID) && !from.ContainsSet(t.At.GTID) {
			out = append(out, t)
		}
	}
	return out
}

// fingerprint identifies a table's definition, so that a copy resumes
// only into a target table made from the same one.
func fingerprint(def *schema.Table) string {
	b, err := json.Marshal(def)
	if err != nil {
		return ""
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:16])
}

// Filter returns t without the changes its tables' copies already have
// (t itself when there are none). A DDL is dropped when every table it
// names has a copy that contains it: the copy's target table was created
// from the definition at that copy's position, DDL included.
func (s Skip) Filter(t *binlog.Txn) (*binlog.Txn, error) {
	if len(s) == 0 || t.GTID.IsZero() {
		return t, nil
	}
	if t.DDL != nil && s.hasDDL(t) {
		t.DDL = nil // (CREATE ... SELECT's rows are the table's, dropped below)
	}
	if t.Len() == 0 {
		return t, nil
	}
	drop := false
	for c, err := range t.Changes() {
		if err != nil {
			return nil, err
		}
		if at, ok := s[c.Table.QualifiedName()]; ok && at.Contains(t.GTID) {
			drop = true
			break
		}
	}
	if !drop {
		return t, nil
	}
	return t.Map(func(c *binlog.Change) bool {
		at, ok := s[c.Table.QualifiedName()]
		return !ok || !at.Contains(t.GTID)
	}, nil)
}

// hasDDL reports whether every table t's DDL names has a copy
// containing t.
func (s Skip) hasDDL(t *binlog.Txn) bool {
	var mode schema.SQLMode
	if t.DDL.Session != nil {
		mode = schema.SQLMode(t.DDL.Session.SQLMode)
	}
	st := schema.Classify(t.DDL.Schema, t.DDL.SQL, mode)
	if st.Kind != schema.TableStatement || len(st.Tables) == 0 {
		return false
	}
	for _, tr := range st.Tables {
		at, ok := s[tr.Schema+"."+tr.Name]
		if !ok || !at.Contains(t.GTID) {
			return false
		}
	}
	return true
}

func splitName(name string) (string, string) {
	s, t, _ := strings.Cut(name, ".")
	return s, t
}

type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}
