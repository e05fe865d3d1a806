package main

import (
	"context"
	"fmt"
	"io"
	"slices"

	"github.com/sluice-cdc/sluice/binlog"
	"github.com/sluice-cdc/sluice/config"
	"github.com/sluice-cdc/sluice/replicator"
)

const resetUsage = `usage: sluice reset -c FILE --pipeline NAME... [--source NAME]... --to oldest|current|GTID_SET

Rewrites the checkpoint of each named pipeline's sources (all by default) in its
MySQL/MariaDB target, so that the next 'sluice run' starts there: at the
oldest binlog the source still has, at its current end, or after a GTID
set. It refuses while a process runs the pipeline (holds its lease), and
drops the sources' schema history: the next run loads table definitions
from information_schema.

flags:
`

func runReset(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("reset", resetUsage, stderr)
	path := configFlag(fs)
	var pipelines listFlag
	fs.Var(&pipelines, "pipeline", "a pipeline whose checkpoint to rewrite; repeatable (required: a rewrite names what it rewrites)")
	var sources listFlag
	fs.Var(&sources, "source", "only this source; repeatable (with one --pipeline)")
	to := fs.String("to", "", "oldest, current, or a GTID set")
	logs := addLogFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if len(pipelines) == 0 || *to == "" {
		return usagef("give --pipeline NAME and --to oldest|current|GTID_SET")
	}
	if len(sources) > 0 && len(pipelines) > 1 {
		return usagef("--source names a source of one pipeline: give one --pipeline with it")
	}
	cfg, err := loadConfig(fs, *path)
	if err != nil {
		return err
	}
	if err := checkPipelines(cfg, pipelines); err != nil {
		return err
	}
	for _, name := range sources {
		p := cfg.Pipelines[slices.IndexFunc(cfg.Pipelines, func(p *config.Pipeline) bool { return p.Name == pipelines[0] })]
		if !slices.ContainsFunc(p.Sources, func(s *config.Source) bool { return s.Name == name }) {
			return usagef("pipeline %s has no source %q", p.Name, name)
		}
	}
	var start binlog.Start
	switch *to {
	case "oldest":
		start.Mode = binlog.StartOldest
	case "current":
		start.Mode = binlog.StartCurrent
	default:
		set, err := binlog.ParseGTIDSet(*to)
		if err != nil {
			return usagef("--to %q: want oldest, current or a GTID set", *to)
		}
		start = binlog.Start{Mode: binlog.StartGTID, GTID: set}
	}
	log, err := logs.logger(stderr, cfg)
	if err != nil {
		return err
	}
	for _, p := range cfg.Pipelines {
		if !slices.Contains(pipelines, p.Name) {
			continue
		}
		res, err := replicator.Reset(ctx, cfg, p, sources, start, log)
		for _, r := range res {
			before := "(none)"
			if r.HadBefore {
				before = describeState(r.Before.GTID.String(), r.Before.Pos.String())
			}
			fmt.Fprintf(stdout, "%s/%s: checkpoint %s -> %s\n", p.Name, r.Source, before, describeState(r.After.GTID.String(), r.After.Pos.String()))
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func describeState(gtid, pos string) string {
	if gtid != "" {
		return gtid
	}
	return pos
}
