package main

import (
	"context"
	"fmt"
	"io"

	"github.com/sluice-cdc/sluice/checkpoint"
	"github.com/sluice-cdc/sluice/replicator"
	"github.com/sluice-cdc/sluice/snapshot"
)

const snapshotUsage = `usage: sluice snapshot -c FILE [--pipeline NAME]... [--table SCHEMA.TABLE]... [--readers N] [--writers N]
       sluice snapshot --incremental -c FILE --pipeline NAME --table SCHEMA.TABLE... [--wait]

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

With --incremental it copies tables while sluice run streams the
pipeline, with no lock (DBLog watermark chunks): it records a request in
the target's sluice.snapshot_incremental (a NATS sink: a record in the
stream, on <subject prefix>_snapshot.<pipeline>.<source>.<hash>.incremental),
which the running process picks up within 2 seconds, and returns (--wait: once the tables are copied,
printing their progress). For a table newly added to include, request
first, then reload sluice run (kill -HUP). Interrupted, the running
process resumes from the last chunk committed.

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
	incremental := fs.Bool("incremental", false, "copy the tables while sluice run streams the pipeline (needs --pipeline and --table)")
	wait := fs.Bool("wait", false, "with --incremental: wait until the tables are copied")
	logs := addLogFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *readers < 1 || *writers < 1 {
		return usagef("--readers and --writers must be at least 1")
	}
	tuneGC(200)
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
	if *incremental {
		if len(pipelines) != 1 || len(tables) == 0 {
			return usagef("--incremental needs one --pipeline and at least one --table")
		}
		return replicator.RequestIncremental(ctx, cfg, replicator.RequestOptions{Pipeline: pipelines[0], Tables: tables, Logger: log, Wait: *wait,
			Watch: func(source string, st checkpoint.IncrementalSnapshot) {
				fmt.Fprintf(stdout, "%s %s: %s, %d chunks, %d rows read, %d written\n", source, st.Name(), st.State, st.Chunks, st.RowsRead, st.RowsWritten)
			}})
	}
	if *wait {
		return usagef("--wait goes with --incremental")
	}
	return replicator.Snapshot(ctx, cfg, replicator.SnapshotOptions{Pipelines: pipelines, Tables: tables,
		Readers: *readers, Writers: *writers, Logger: log, Watch: watch})
}
