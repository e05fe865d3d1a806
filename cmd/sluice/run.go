package main

import (
	"context"
	"io"

	"github.com/sluice-cdc/sluice/replicator"
)

const runUsage = `usage: sluice run -c FILE [--pipeline NAME] [--stop-at-end]

Runs the pipelines of FILE until SIGTERM or SIGINT, which let each source
finish the transaction in flight and write its checkpoint before exiting 0.
/metrics and /status are served on http.listen (default 127.0.0.1:9180).

flags:
`

func runRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("run", runUsage, stderr)
	path := configFlag(fs)
	var pipelines listFlag
	fs.Var(&pipelines, "pipeline", "run only this pipeline; repeatable")
	stopAtEnd := fs.Bool("stop-at-end", false, "exit 0 once everything each source had at start is applied and checkpointed")
	logLevel := fs.String("log-level", "", "override log.level")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(fs, *path)
	if err != nil {
		return err
	}
	level := cfg.Log.Level
	if *logLevel != "" {
		level = *logLevel
	}
	log, err := newLogger(stderr, level, cfg.Log.Format)
	if err != nil {
		return err
	}
	r, err := replicator.New(cfg, replicator.Options{Pipelines: pipelines, StopAtEnd: *stopAtEnd, Logger: log})
	if err != nil {
		return usagef("%v", err)
	}
	log.Info("sluice starting", "config", *path, "version", version)
	err = r.Run(ctx)
	if err == nil {
		log.Info("sluice stopped")
	}
	return err
}
