package main

import (
	"context"
	"io"

	"github.com/sluice-cdc/sluice/replicator"
	"github.com/sluice-cdc/sluice/snapshot"
)

const snapshotUsage = `usage: sluice snapshot -c FILE [--pipeline NAME]... [--table SCHEMA.TABLE]... [--readers N] [--writers N]

Copies the included tables of each source without a checkpoint to the
pipeline's MySQL/MariaDB target, each table from a consistent snapshot of
the source (MariaDB; no global lock), creating missing target tables from
the source's SHOW CREATE TABLE through the routes. Once every table of a
source is copied, the source's checkpoint is set to where streaming must
start, and sluice run streams from there with no gap and no duplicate.
Interrupted (even by kill -9), it resumes: finished tables are kept, an
unfinished one is copied again. It holds the pipeline's lease meanwhile
and refuses to run while sluice run holds it. (snapshot: initial in the
pipeline file makes sluice run do the same by itself.)

flags:
`

func runSnapshotCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("snapshot", snapshotUsage, stderr)
	path := configFlag(fs)
	var pipelines, tables listFlag
	fs.Var(&pipelines, "pipeline", "snapshot only this pipeline; repeatable")
	fs.Var(&tables, "table", "copy only this source table (schema.table); repeatable")
	readers := fs.Int("readers", 4, "source connections copying tables at once")
	writers := fs.Int("writers", 4, "target connections writing rows at once")
	logs := addLogFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *readers < 1 || *writers < 1 {
		return usagef("--readers and --writers must be at least 1")
	}
	cfg, err := loadConfig(fs, *path)
	if err != nil {
		return err
	}
	if err := checkPipelines(cfg, pipelines); err != nil {
		return err
	}
	// On a terminal, progress bars (log lines go above them); otherwise
	// the periodic progress log lines.
	var watch func(snapshot.Progress)
	logTo := stderr
	if b := newBars(stderr); b != nil {
		defer b.done()
		watch, logTo = b.show, b
	}
	log, err := logs.logger(logTo, cfg)
	if err != nil {
		return err
	}
	return replicator.Snapshot(ctx, cfg, replicator.SnapshotOptions{Pipelines: pipelines, Tables: tables,
		Readers: *readers, Writers: *writers, Logger: log, Watch: watch})
}
