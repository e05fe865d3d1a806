package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/sluice-cdc/sluice/config"
	"github.com/sluice-cdc/sluice/replicator"
)

const runUsage = `usage: sluice run -c FILE [--pipeline NAME]... [--stop-at-end]

Runs the pipelines of FILE until SIGTERM or SIGINT, which let each source
finish the transaction in flight and write its checkpoint before exiting 0.
SIGHUP re-reads FILE: unchanged pipelines keep running, changed ones restart
from their checkpoint, added ones start, removed ones stop; a file with
errors is rejected (logged) and the running configuration kept.
/metrics and /status are served on http.listen (default 127.0.0.1:9180).

flags:
`

func runRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("run", runUsage, stderr)
	path := configFlag(fs)
	var pipelines listFlag
	fs.Var(&pipelines, "pipeline", "run only this pipeline; repeatable")
	stopAtEnd := fs.Bool("stop-at-end", false, "exit 0 once everything each source had at start is applied and checkpointed")
	logs := addLogFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(fs, *path)
	if err != nil {
		return err
	}
	tuneGC(200)
	log, err := logs.logger(stderr, cfg)
	if err != nil {
		return err
	}
	r, err := replicator.New(cfg, replicator.Options{Pipelines: pipelines, StopAtEnd: *stopAtEnd, Logger: log})
	if err != nil {
		return usagef("%v", err)
	}
	log.Info("sluice starting", "config", cfg.Path, "version", version)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
			}
			next, err := config.Load(cfg.Path)
			if err != nil {
				log.Error("reload (SIGHUP): the pipeline file has errors; keeping the running configuration", "file", cfg.Path, "errors", oneLine(err.Error()))
				continue
			}
			log.Info("reload (SIGHUP)", "file", cfg.Path)
			r.Reload(next)
		}
	}()
	err = r.Run(ctx)
	if err == nil {
		log.Info("sluice stopped")
	}
	return err
}
