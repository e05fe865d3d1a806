// Package replicator runs pipelines: each source is read as a replica and
// its committed transactions are applied to the pipeline's sink, exactly
// once, with the checkpoint kept by the sink.
package replicator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/sluice-cdc/sluice/backoff"
	"github.com/sluice-cdc/sluice/config"
)

// Options configure a run.
type Options struct {
	// Pipelines selects pipelines by name; empty runs them all.
	Pipelines []string
	// StopAtEnd stops each source once everything its server had when the
	// source connected is applied and checkpointed.
	StopAtEnd bool
	Logger    *slog.Logger
}

// Replicator runs a configuration's pipelines.
type Replicator struct {
	cfg     *config.File
	opts    Options
	log     *slog.Logger
	metrics *Metrics

	mu   sync.Mutex
	ctx  context.Context // of Run
	runs []*pipelineRun
	topo *topology
	errs []error
	// live counts the running pipelines (and a reload in progress); Run
	// returns once it drops to 0, which closes finished.
	live     int
	finished chan struct{}
	started  time.Time
	// holder names this process in pipelines' leases.
	holder string
}

// New prepares a run; Run starts it.
func New(cfg *config.File, opts Options) (*Replicator, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	for _, name := range opts.Pipelines {
		if !slices.ContainsFunc(cfg.Pipelines, func(p *config.Pipeline) bool { return p.Name == name }) {
			var names []string
			for _, p := range cfg.Pipelines {
				names = append(names, p.Name)
			}
			return nil, fmt.Errorf("no pipeline named %q in %s (it has: %v)", name, cfg.Path, names)
		}
	}
	return &Replicator{cfg: cfg, opts: opts, log: opts.Logger, metrics: NewMetrics(), started: time.Now(), holder: holderName()}, nil
}

// Run runs the selected pipelines until ctx ends (SIGTERM: each source
// finishes its transaction in flight, the checkpoint is written, and Run
// returns nil) or, with StopAtEnd, until every source has caught up. A
// source that fails stops with an error while the others go on; Run then
// returns the errors once every source has stopped.
func (r *Replicator) Run(ctx context.Context) error {
	httpCtx, stopHTTP := context.WithCancel(ctx)
	defer stopHTTP()
	httpDone, err := r.serveHTTP(httpCtx)
	if err != nil {
		return err
	}
	defer func() { stopHTTP(); <-httpDone }()

	r.mu.Lock()
	r.ctx = ctx
	r.finished = make(chan struct{})
	var run []*config.Pipeline
	for _, p := range r.cfg.Pipelines {
		if r.selected(p.Name) {
			run = append(run, p)
		}
	}
	r.topo = resolveTopology(ctx, r.cfg, run, r.log)
	r.live++ // until every pipeline is started
	for _, p := range run {
		r.start(p)
	}
	r.release()
	r.mu.Unlock()
	<-r.finished
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.errs) > 0 {
		return errors.Join(r.errs...)
	}
	return nil
}

// release drops one from live (r.mu held).
func (r *Replicator) release() {
	if r.live--; r.live == 0 {
		close(r.finished)
	}
}

func (r *Replicator) selected(name string) bool {
	return len(r.opts.Pipelines) == 0 || slices.Contains(r.opts.Pipelines, name)
}

// pipelineRun is one running pipeline.
type pipelineRun struct {
	p       *config.Pipeline
	cancel  context.CancelFunc
	done    chan struct{}
	runners []*sourceRunner
}

// start starts a pipeline (r.mu held).
func (r *Replicator) start(p *config.Pipeline) {
	ctx, cancel := context.WithCancel(r.ctx)
	pr := &pipelineRun{p: p, cancel: cancel, done: make(chan struct{})}
	log := r.log.With("pipeline", p.Name)
	loop := r.topo.loop[p.Name]
	for _, s := range p.Sources {
		srcLog := log.With("source", s.Name)
		sr := &sourceRunner{pipeline: p, cfg: s, stateDir: r.cfg.StateDir, stopAtEnd: r.opts.StopAtEnd,
			log: srcLog, metrics: r.metrics, router: newRouter(p, s, loop, srcLog)}
		sr.status = SourceStatus{Pipeline: p.Name, Source: s.Name, State: "starting"}
		r.metrics.init(p.Name, s.Name)
		pr.runners = append(pr.runners, sr)
	}
	r.runs = append(r.runs, pr)
	r.live++
	go func() {
		defer close(pr.done)
		errs := r.runPipeline(ctx, pr, log, len(loop) > 0)
		r.mu.Lock()
		r.errs = append(r.errs, errs...)
		r.release()
		r.mu.Unlock()
	}()
}

// runPipeline opens the pipeline's sink and runs its sources until they stop.
func (r *Replicator) runPipeline(ctx context.Context, pr *pipelineRun, log *slog.Logger, bidirectional bool) []error {
	p := pr.p
	sink, err := r.openSink(ctx, p, pr.runners, SinkOptions{Logger: log, Bidirectional: bidirectional})
	if err != nil {
		if ctx.Err() != nil {
			for _, sr := range pr.runners {
				sr.setState("stopped", nil)
			}
			return nil
		}
		for _, sr := range pr.runners {
			sr.setState("error", err)
		}
		log.Error("sink stopped", "error", err.Error())
		return []error{fmt.Errorf("pipeline %s: sink: %w", p.Name, err)}
	}
	defer sink.Close()
	for _, sr := range pr.runners {
		sr.setSink(sink)
	}
	if l, ok := sinkLeaser(sink, log); ok {
		return r.superviseLeased(ctx, l, p.LeaseTTL.Duration, pr.runners, log)
	}
	return runSources(ctx, pr.runners, nil)
}

// Reload applies a new configuration to a running Run: pipelines whose
// definition is unchanged keep running, changed ones restart from their
// checkpoint, added ones start and removed ones stop. Settings outside the
// pipelines (state_dir, http, log) need a restart.
func (r *Replicator) Reload(cfg *config.File) {
	r.mu.Lock()
	if r.ctx == nil || r.ctx.Err() != nil || r.live == 0 {
		r.mu.Unlock()
		return
	}
	r.live++ // Run does not return while pipelines are swapped
	defer func() {
		r.mu.Lock()
		r.release()
		r.mu.Unlock()
	}()
	next := map[string]*config.Pipeline{}
	for _, p := range cfg.Pipelines {
		if r.selected(p.Name) {
			next[p.Name] = p
		}
	}
	var stop, keep []*pipelineRun
	for _, pr := range r.runs {
		if np := next[pr.p.Name]; np != nil && np.Fingerprint() == pr.p.Fingerprint() {
			keep = append(keep, pr)
			delete(next, pr.p.Name)
		} else {
			stop = append(stop, pr)
		}
	}
	if cfg.StateDir != r.cfg.StateDir || cfg.HTTP != r.cfg.HTTP {
		r.log.Warn("reload: state_dir and http change only with a restart; keeping the running ones")
	}
	r.mu.Unlock()
	// Stopped outside the lock: each finishes its transaction in flight.
	for _, pr := range stop {
		r.log.Info("reload: stopping pipeline", "pipeline", pr.p.Name)
		pr.cancel()
		<-pr.done
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.runs = keep
	var added []*config.Pipeline
	for _, p := range cfg.Pipelines {
		if next[p.Name] != nil {
			added = append(added, p)
		}
	}
	if len(added) > 0 {
		all := slices.Clone(added)
		for _, pr := range keep {
			all = append(all, pr.p)
		}
		r.topo = resolveTopology(r.ctx, cfg, all, r.log)
	}
	for _, p := range added {
		r.log.Info("reload: starting pipeline", "pipeline", p.Name)
		r.start(p)
	}
	r.log.Info("reload: done", "running", len(r.runs), "restarted_or_added", len(added), "stopped_or_restarted", len(stop))
}

// openSink opens a pipeline's sink, waiting with backoff for a target
// that is down or unreachable as a source runner waits for its server
// (its sources show "reconnecting" meanwhile). Other errors, and any
// error under StopAtEnd, are returned.
func (r *Replicator) openSink(ctx context.Context, p *config.Pipeline, runners []*sourceRunner, o SinkOptions) (Sink, error) {
	var sink Sink
	err := backoff.Retry(ctx, backoff.Policy{Initial: time.Second, Max: 30 * time.Second}, func(attempt int) (bool, error) {
		var err error
		sink, err = OpenSink(ctx, p, o)
		if err == nil {
			return false, nil
		}
		if r.opts.StopAtEnd || !sinkRetryable(err) {
			return false, err
		}
		for _, sr := range runners {
			sr.setState("reconnecting", fmt.Errorf("sink: %w", err))
		}
		o.Logger.Warn("sink unreachable, retrying", "error", err.Error(), "attempt", attempt)
		return true, err
	})
	return sink, err
}

// Status returns every source's status.
func (r *Replicator) Status() []SourceStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []SourceStatus
	for _, pr := range r.runs {
		for _, sr := range pr.runners {
			out = append(out, sr.Status())
		}
	}
	return out
}
