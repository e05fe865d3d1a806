// Package replicator runs pipelines: each source is read as a replica and
// its committed transactions are applied to the pipeline's sink, exactly
// once, with the checkpoint kept by the sink.
package replicator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

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

	mu      sync.Mutex
	runners []*sourceRunner
	started time.Time
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
	return &Replicator{cfg: cfg, opts: opts, log: opts.Logger, metrics: NewMetrics(), started: time.Now()}, nil
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

	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	var run []*config.Pipeline
	for _, p := range r.cfg.Pipelines {
		if len(r.opts.Pipelines) == 0 || slices.Contains(r.opts.Pipelines, p.Name) {
			run = append(run, p)
		}
	}
	topo := resolveTopology(ctx, r.cfg, run, r.log)
	for _, p := range run {
		log := r.log.With("pipeline", p.Name)
		var runners []*sourceRunner
		for _, s := range p.Sources {
			srcLog := log.With("source", s.Name)
			sr := &sourceRunner{pipeline: p, cfg: s, stateDir: r.cfg.StateDir, stopAtEnd: r.opts.StopAtEnd,
				log: srcLog, metrics: r.metrics, router: newRouter(p, s, topo.loop[p.Name], srcLog)}
			sr.status = SourceStatus{Pipeline: p.Name, Source: s.Name, State: "starting"}
			runners = append(runners, sr)
		}
		r.mu.Lock()
		r.runners = append(r.runners, runners...)
		r.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			fail := func(err error) {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
			sink, err := r.openSink(ctx, p, runners, SinkOptions{Logger: log, Bidirectional: len(topo.loop[p.Name]) > 0})
			if err != nil {
				if ctx.Err() != nil {
					for _, sr := range runners {
						sr.setState("stopped", nil)
					}
					return
				}
				for _, sr := range runners {
					sr.setState("error", err)
				}
				log.Error("sink stopped", "error", err.Error())
				fail(fmt.Errorf("pipeline %s: sink: %w", p.Name, err))
				return
			}
			defer sink.Close()
			var pwg sync.WaitGroup
			for _, sr := range runners {
				sr.setSink(sink)
				pwg.Go(func() {
					if err := sr.run(ctx); err != nil {
						sr.log.Error("source stopped", "error", err.Error())
						fail(err)
					}
				})
			}
			pwg.Wait()
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	return nil
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
	out := make([]SourceStatus, len(r.runners))
	for i, sr := range r.runners {
		out[i] = sr.Status()
	}
	return out
}

// StatusReport is the JSON document of /status.
type StatusReport struct {
	Started time.Time      `json:"started"`
	Sources []SourceStatus `json:"sources"`
}

// serveHTTP serves /metrics, /status and /healthz until ctx ends.
func (r *Replicator) serveHTTP(ctx context.Context) (<-chan struct{}, error) {
	done := make(chan struct{})
	addr := r.cfg.HTTP.Listen
	if addr == "off" || addr == "" {
		close(done)
		return done, nil
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(r.metrics.Registry(), promhttp.HandlerOpts{}))
	mux.HandleFunc("/status", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(StatusReport{Started: r.started, Sources: r.Status()})
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		// Healthy only while every source and its sink stream: a server
		// being waited for (down, restarting, unreachable) is not.
		for _, s := range r.Status() {
			if s.State != "streaming" && !(s.State == "stopped" && r.opts.StopAtEnd) {
				msg := s.Pipeline + "/" + s.Source + ": " + s.State
				if s.Error != "" {
					msg += ": " + s.Error
				}
				http.Error(w, msg, http.StatusServiceUnavailable)
				return
			}
		}
		fmt.Fprintln(w, "ok")
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("http.listen %s: %w (another sluice running? set http.listen in %s)", addr, err, r.cfg.Path)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(shut)
	}()
	r.log.Info("serving /metrics and /status", "addr", ln.Addr().String())
	return done, nil
}
