package replicator

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

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
		// being waited for (down, restarting, unreachable) is not. A
		// standby waiting for another process's lease is healthy.
		if msg := unhealthy(r.Status(), r.opts.StopAtEnd, r.cfg.HTTP.MaxLag.Duration); msg != "" {
			http.Error(w, msg, http.StatusServiceUnavailable)
			return
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

// unhealthy says why /healthz fails, or "" when it passes: a source that
// is not streaming (a standby is healthy; so is a source stopped by
// --stop-at-end), or one lagging more than maxLag when maxLag is set.
func unhealthy(sources []SourceStatus, stopAtEnd bool, maxLag time.Duration) string {
	for _, s := range sources {
		if s.State != "streaming" && s.State != "standby" && !(s.State == "stopped" && stopAtEnd) {
			msg := s.Pipeline + "/" + s.Source + ": " + s.State
			if s.Error != "" {
				msg += ": " + s.Error
			}
			return msg
		}
		if maxLag > 0 && s.State == "streaming" && s.LagSeconds > maxLag.Seconds() {
			return fmt.Sprintf("%s/%s: lagging %.1fs behind the source (http.healthz_max_lag is %s)", s.Pipeline, s.Source, s.LagSeconds, maxLag)
		}
	}
	return ""
}
