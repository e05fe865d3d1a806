package replicator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-cdc/sluice/backoff"
	"github.com/sluice-cdc/sluice/binlog"
	"github.com/sluice-cdc/sluice/checkpoint"
	"github.com/sluice-cdc/sluice/config"
	mysqlsink "github.com/sluice-cdc/sluice/sinks/mysql"
	"github.com/sluice-cdc/sluice/snapshot"
)

// Sink is what a pipeline delivers to. It keeps each source's checkpoint
// with its data (sinks/mysql in the target's sluice.checkpoint table).
type Sink interface {
	// Checkpoint returns the source's last applied position.
	Checkpoint(ctx context.Context, source string) (checkpoint.State, bool, error)
	// Apply applies t exactly once, atomically with the checkpoint after it.
	// It retries what can be retried and returns other errors.
	Apply(ctx context.Context, source string, t *binlog.Txn) error
	Close() error
}

// sinkHealth is implemented by sinks that retry internally: the error
// being retried for a source, or nil.
type sinkHealth interface {
	Health(source string) error
}

// sinkStats is implemented by sinks that count retries and conflicts per
// source.
type sinkStats interface {
	Stats(source string) (retries, conflicts int64)
}

// SourceStatus is one source's state, for /status and sluice status.
type SourceStatus struct {
	Pipeline string `json:"pipeline"`
	Source   string `json:"source"`
	State    string `json:"state"` // starting, snapshot, streaming, reconnecting, standby, stopped, error
	Error    string `json:"error,omitempty"`
	// Role is active or standby when the sink holds a lease (sinks/mysql):
	// the process holding the pipeline's lease, and its epoch.
	Role            string    `json:"role,omitempty"`
	LeaseHolder     string    `json:"lease_holder,omitempty"`
	LeaseEpoch      uint64    `json:"lease_epoch,omitempty"`
	CheckpointGTID  string    `json:"checkpoint_gtid"`
	CheckpointPos   string    `json:"checkpoint_pos"`
	CheckpointAt    time.Time `json:"checkpoint_at"`
	SourceGTID      string    `json:"source_gtid,omitempty"`
	SourcePos       string    `json:"source_pos,omitempty"`
	LagSeconds      float64   `json:"lag_seconds"`
	LagTransactions uint64    `json:"lag_transactions"`
	Applied         uint64    `json:"transactions_applied"`
	Rows            uint64    `json:"rows_applied"`
	Retries         int64     `json:"retries"`
	Conflicts       int64     `json:"conflicts"`
	// Snapshot is the initial snapshot's progress while it runs (state
	// snapshot).
	Snapshot *snapshot.Progress `json:"snapshot,omitempty"`
}

// sourceRunner reads one source and applies its transactions to the sink:
// a reader goroutine fills a bounded queue (backpressure: a slow sink
// slows reading, never the memory), and the applier drains it in order.
type sourceRunner struct {
	pipeline  *config.Pipeline
	cfg       *config.Source
	sink      Sink
	stateDir  string
	stopAtEnd bool
	log       *slog.Logger
	metrics   *Metrics
	router    *router
	// lastQuiet is the last transaction the router found to hold only a
	// reverse pipeline's checkpoint: not delivered, not checkpointed, only
	// counted as handled once everything read before it is applied.
	lastQuiet atomic.Pointer[binlog.Txn]

	mu        sync.Mutex
	status    SourceStatus
	applied   checkpoint.State
	lastTxnTS time.Time

	seenRetries, seenConflicts int64 // sink counts already added to the metrics
}

func (r *sourceRunner) setState(state string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status.State = state
	r.status.Error = ""
	if err != nil {
		r.status.Error = err.Error()
	}
	up := 0.0
	if state == "streaming" {
		up = 1
	}
	standby := 0.0
	if state == "standby" {
		standby = 1
	}
	r.metrics.up.WithLabelValues(r.pipeline.Name, r.cfg.Name).Set(up)
	r.metrics.standby.WithLabelValues(r.pipeline.Name, r.cfg.Name).Set(standby)
}

// setRole records the pipeline's lease as this process sees it.
func (r *sourceRunner) setRole(role, holder string, epoch uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status.Role, r.status.LeaseHolder, r.status.LeaseEpoch = role, holder, epoch
}

// Status returns a snapshot.
func (r *sourceRunner) Status() SourceStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.status
	s.CheckpointGTID = r.applied.GTID.String()
	s.CheckpointPos = r.applied.Pos.String()
	s.CheckpointAt = r.applied.Updated
	if st, ok := r.sink.(sinkStats); ok {
		s.Retries, s.Conflicts = st.Stats(r.cfg.Name)
	}
	if h, ok := r.sink.(sinkHealth); ok && s.State == "streaming" {
		if err := h.Health(r.cfg.Name); err != nil {
			s.State, s.Error = "reconnecting", "sink: "+err.Error()
		}
	}
	return s
}

// setSink gives the runner its pipeline's sink, once opened.
func (r *sourceRunner) setSink(s Sink) {
	r.mu.Lock()
	r.sink = s
	r.mu.Unlock()
	r.metrics.sinkUp.WithLabelValues(r.pipeline.Name, r.cfg.Name).Set(1)
}

// run streams until ctx ends, the source ends (stop-at-end) or an error
// that retrying cannot fix. On ctx's end it finishes the transaction being
// applied and returns nil.
func (r *sourceRunner) run(ctx context.Context) error {
	err := r.stream(ctx)
	wait := backoff.Policy{Initial: time.Second, Max: 30 * time.Second}.Timer()
retry:
	for ctx.Err() == nil {
		switch {
		case isFenced(err):
			break retry
		case errors.Is(err, checkpoint.ErrBehind):
			r.log.Warn("the sink lost transactions it had acknowledged: reading the source again from the sink's checkpoint", "error", err.Error())
		case !r.stopAtEnd && sinkRetryable(err):
			// A source (or target) that is down does not stop the other
			// sources; this one waits for its server and resumes from its
			// checkpoint. Wrong credentials or settings are not retried.
			r.setState("reconnecting", err)
			d := wait.Next()
			r.log.Warn("server unreachable, retrying", "error", err.Error(), "in", d)
			if backoff.Sleep(ctx, d) != nil {
				continue
			}
		default:
			break retry
		}
		err = r.stream(ctx)
	}
	switch {
	case isFenced(err):
		// Not an error of this source: the pipeline stands by.
		r.setState("standby", nil)
		return err
	case err == nil || errors.Is(err, context.Canceled) || ctx.Err() != nil:
		r.setState("stopped", nil)
		return nil
	default:
		r.setState("error", err)
		r.metrics.errors.WithLabelValues(r.pipeline.Name, r.cfg.Name).Inc()
		return fmt.Errorf("pipeline %s source %s: %w", r.pipeline.Name, r.cfg.Name, err)
	}
}

func (r *sourceRunner) stream(ctx context.Context) error {
	p, s := r.pipeline.Name, r.cfg.Name
	r.setState("starting", nil)
	state, haveCkpt, err := r.sink.Checkpoint(ctx, s)
	if err != nil {
		return err
	}
	history, err := checkpoint.OpenSchemaHistory(r.stateDir, p, s)
	if err != nil {
		return err
	}
	start := r.cfg.Start.Start
	opts := binlog.DecodeOptions{Filter: r.cfg.Filter, StrictColumns: true, SkipDDL: r.cfg.SkipDDL, EmitEmpty: true, Logger: r.log,
		AccountStatements: r.pipeline.AccountStatements, IncludeQuery: r.pipeline.IncludeQuery,
		// Transactions a MySQL sink applied to this server carry its marks
		// (a pipeline replicating the other way drops them).
		Marker: mysqlsink.Marker{}}
	if haveCkpt {
		// The checkpoint wins over the configured start.
		if !state.GTID.IsEmpty() {
			start = binlog.Start{Mode: binlog.StartGTID, GTID: state.GTID}
		} else {
			start = binlog.Start{Mode: binlog.StartPosition, Pos: state.Pos}
		}
		opts.Catalog = history.At(state)
		if opts.Catalog == nil {
			r.log.Warn("no schema history for this checkpoint: loading table definitions from information_schema, which is right only if no DDL ran since the checkpoint",
				"checkpoint", state.GTID.String())
		}
		r.mu.Lock()
		r.applied = state
		r.mu.Unlock()
		r.log.Info("resuming from checkpoint", "gtid", state.GTID.String(), "pos", state.Pos.String())
	} else if r.pipeline.Snapshot == "initial" {
		if start, err = r.initialSnapshot(ctx); err != nil {
			return err
		}
		r.log.Info("no checkpoint: streaming from the snapshot", "start", describeStart(start))
	} else {
		r.log.Info("no checkpoint: starting from the configured start", "start", describeStart(start))
	}
	skip, windows, err := r.snapshotSkip(ctx, start.GTID)
	if err != nil {
		return err
	}
	incr := newIncremental(r) // incremental snapshots (incremental.go)
	if err := incr.prepare(ctx, state); err != nil {
		return err
	}
	if err := incr.snapshotWindows(windows); err != nil {
		return err
	}
	src, err := binlog.Connect(ctx, binlog.LiveConfig{DSN: r.cfg.Conn, ServerID: r.cfg.ServerID, Start: start, StopAtEnd: r.stopAtEnd,
		Decode: opts, Logger: r.log})
	if err != nil {
		return err
	}
	defer src.Close()
	if !haveCkpt || opts.Catalog == nil {
		// Persist the schema this stream starts with: information_schema
		// will have moved on by the next restart.
		first := checkpoint.SchemaVersion{GTID: start.GTID, Pos: start.Pos, Catalog: src.Catalog().Clone()}
		if haveCkpt {
			first.GTID, first.Pos = state.GTID, state.Pos
		}
		if err := history.Reset(first); err != nil {
			return err
		}
	}
	if !haveCkpt {
		// A restart before the first transaction must resume here.
		if err := r.applyBatch(ctx, []*binlog.Txn{src.StartPoint()}); err != nil {
			return err
		}
	}
	r.setState("streaming", nil)

	readCtx, stopReading := context.WithCancel(ctx)
	defer stopReading()
	queue := make(chan *binlog.Txn, queueSize)
	budget := newByteBudget(queueBytes)
	// weight is what a queued transaction holds of the budget, released
	// as the applier takes it (a run being applied adds at most
	// maxBatchBytes).
	weight := func(t *binlog.Txn) int64 { return t.HeapBytes() + 512 }
	take := func(t *binlog.Txn) *binlog.Txn {
		budget.release(weight(t))
		return t
	}
	readErr := make(chan error, 1)
	readerDone := make(chan struct{})
	// On every way out the reader is stopped and waited for before the
	// source is closed (deferred earlier, so run later): Close must never
	// run while Next does.
	defer func() {
		stopReading()
		<-readerDone
		for t := range queue {
			t.Close()
		}
	}()
	go func() {
		defer close(readerDone)
		defer close(queue)
		for {
			t, err := src.Next(readCtx)
			if err != nil {
				readErr <- err
				return
			}
			if t, err = skip.Filter(t); err != nil {
				readErr <- err
				return
			}
			if err := incr.observe(t); err != nil {
				readErr <- err
				return
			}
			t, quiet, err := r.router.route(t)
			if err != nil {
				readErr <- err
				return
			}
			if quiet {
				t.Close()
				r.lastQuiet.Store(t)
				continue
			}
			if err := budget.acquire(readCtx, weight(t)); err != nil {
				t.Close()
				readErr <- err
				return
			}
			select {
			case queue <- t:
			case <-readCtx.Done():
				t.Close()
				readErr <- readCtx.Err()
				return
			}
		}
	}()
	lagDone := r.pollLag(readCtx, src)
	defer func() { stopReading(); <-lagDone }()
	incrDone := make(chan struct{})
	go func() { defer close(incrDone); incr.run(readCtx) }()
	defer func() { stopReading(); <-incrDone }()

	// The applier is not stopped by ctx mid-transaction: a signal lets the
	// transaction in flight finish (bounded), then the loop ends.
	applyCtx, cancelApply := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelApply()
	go func() {
		<-ctx.Done()
		select {
		case <-time.After(30 * time.Second):
			cancelApply()
		case <-applyCtx.Done():
		}
	}()

	var pendingEmpty *binlog.Txn // filtered-out transactions: checkpointed lazily
	flushEmpty := func() error {
		if pendingEmpty == nil {
			return nil
		}
		t := pendingEmpty
		pendingEmpty = nil
		return r.applyBatch(applyCtx, []*binlog.Txn{t})
	}
	emit := func() error { // an incremental snapshot's chunk, between runs
		if incr.hasReady() {
			if err := flushEmpty(); err != nil {
				return err
			}
		}
		return incr.emit(applyCtx)
	}
	drain := func() {
		for t := range queue {
			t.Close()
		}
	}
	idle := time.NewTicker(time.Second)
	defer idle.Stop()
	for {
		select {
		case t, ok := <-queue:
			if ok {
				take(t)
			}
			if !ok {
				if err := flushEmpty(); err != nil {
					return err
				}
				err := <-readErr
				if errors.Is(err, io.EOF) {
					r.log.Info("caught up with the source's position at start (--stop-at-end)")
					return nil
				}
				return err
			}
			if ctx.Err() != nil {
				// Stopping: what is queued is read again after the restart.
				t.Close()
				drain()
				if err := flushEmpty(); err != nil {
					return err
				}
				return ctx.Err()
			}
			// Under a backlog, take what is queued too: the sink applies a
			// run of transactions in fewer round trips. A DDL ends a run,
			// so that the schema history is written before it is applied.
			batch := []*binlog.Txn{t}
			bytes := weight(t)
			for len(batch) < maxBatch && bytes < maxBatchBytes && !endsRun(batch[len(batch)-1]) {
				select {
				case next, ok := <-queue:
					if !ok {
						goto gathered
					}
					take(next)
					bytes += weight(next)
					if endsRun(next) && len(batch) > 0 {
						// Apply the run first, then the DDL alone.
						if err := r.applyRun(applyCtx, batch, &pendingEmpty); err != nil {
							next.Close()
							return err
						}
						batch, bytes = batch[:0], weight(next)
					}
					batch = append(batch, next)
				default:
					goto gathered
				}
			}
		gathered:
			if t := batch[len(batch)-1]; t.Catalog != nil {
				// Before the DDL reaches the sink, so the history is never
				// behind the checkpoint.
				if err := history.Add(checkpoint.SchemaVersion{GTID: t.Executed, Pos: t.Pos, Catalog: t.Catalog}); err != nil {
					closeAll(batch)
					return err
				}
			}
			if err := r.applyRun(applyCtx, batch, &pendingEmpty); err != nil {
				return err
			}
			if err := emit(); err != nil {
				return err
			}
		case <-incr.wakeC():
			if err := emit(); err != nil {
				return err
			}
		case <-idle.C:
			if err := flushEmpty(); err != nil {
				return err
			}
			if len(queue) == 0 {
				r.handledQuiet()
			}
			if err := emit(); err != nil {
				return err
			}
			r.updateGauges()
		case <-ctx.Done():
			// Wait for the reader to stop, then flush what is done.
			drain()
			if err := flushEmpty(); err != nil {
				return err
			}
			return ctx.Err()
		}
	}
}

func describeStart(s binlog.Start) string {
	switch s.Mode {
	case binlog.StartOldest:
		return "oldest"
	case binlog.StartGTID:
		return "gtid " + s.GTID.String()
	case binlog.StartPosition:
		return "position " + s.Pos.String()
	}
	return "current"
}
