package replicator

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/sluice-cdc/sluice/binlog"
	"github.com/sluice-cdc/sluice/checkpoint"
	"github.com/sluice-cdc/sluice/config"
)

// ResetResult is one source's checkpoint before and after a reset.
type ResetResult struct {
	Source        string
	Before, After checkpoint.State
	HadBefore     bool
	// SnapshotRows is how many of the source's sluice.snapshot rows the
	// reset deleted.
	SnapshotRows int64
}

// checkpointResetter is a sink that writes a reset's checkpoint together
// with forgetting the snapshot progress streaming would otherwise skip by
// (sinks/mysql).
type checkpointResetter interface {
	ResetCheckpoint(ctx context.Context, source string, t *binlog.Txn) (int64, error)
}

// Reset rewrites the checkpoint of a pipeline's sources (all when sources
// is empty) to the oldest binlog, the current end or a GTID set (start),
// deliberately: the next
// run starts there. It holds the pipeline's lease while it writes, so it
// refuses while another process is active, and its new epoch fences any
// process that still thinks it is. The sources' schema histories are
// dropped: the next run loads the table definitions from
// information_schema, which is right for "current" and, for an earlier
// point, only if no DDL ran since. So are the sources' snapshot progress
// rows, in the checkpoint's transaction: streaming from the new checkpoint
// must not drop the changes an earlier copy of a table held.
func Reset(ctx context.Context, cfg *config.File, p *config.Pipeline, sources []string, start binlog.Start, log *slog.Logger) ([]ResetResult, error) {
	if log == nil {
		log = slog.Default()
	}
	for _, name := range sources {
		if !slices.ContainsFunc(p.Sources, func(s *config.Source) bool { return s.Name == name }) {
			return nil, fmt.Errorf("pipeline %s has no source %q", p.Name, name)
		}
	}
	sink, err := OpenSink(ctx, p, SinkOptions{Logger: log})
	if err != nil {
		return nil, err
	}
	defer sink.Close()
	l, ok := sink.(leaser)
	if !ok {
		return nil, fmt.Errorf("pipeline %s: reset rewrites checkpoints held by MySQL/MariaDB sinks; a NATS sink's checkpoint is the stream's last message or its KV key", p.Name)
	}
	lease, err := l.TryAcquire(ctx, "sluice reset "+holderName(), time.Minute)
	if err != nil {
		return nil, err
	}
	if !lease.Mine {
		return nil, fmt.Errorf("pipeline %s is running: %s holds its lease (epoch %d); stop that process first (standbys may keep running: they resume from the new checkpoint)",
			p.Name, lease.Holder, lease.Epoch)
	}
	defer l.Release(context.WithoutCancel(ctx))
	var out []ResetResult
	for _, s := range p.Sources {
		if len(sources) > 0 && !slices.Contains(sources, s.Name) {
			continue
		}
		r := ResetResult{Source: s.Name}
		if r.Before, r.HadBefore, err = sink.Checkpoint(ctx, s.Name); err != nil {
			return out, err
		}
		var point *binlog.Txn
		if start.Mode == binlog.StartGTID {
			point = &binlog.Txn{Executed: start.GTID}
		} else {
			src, err := binlog.Connect(ctx, binlog.LiveConfig{DSN: s.Conn, ServerID: s.ServerID, Start: start,
				Decode: binlog.DecodeOptions{Filter: s.Filter, Logger: log}, Logger: log})
			if err != nil {
				return out, fmt.Errorf("source %s: %w", s.Name, err)
			}
			point = src.StartPoint()
			src.Close()
		}
		if rs, ok := sink.(checkpointResetter); ok {
			if r.SnapshotRows, err = rs.ResetCheckpoint(ctx, s.Name, point); err != nil {
				return out, fmt.Errorf("source %s: %w", s.Name, err)
			}
			if r.SnapshotRows > 0 {
				log.Info("snapshot progress cleared: streaming from the new checkpoint applies every change", "pipeline", p.Name, "source", s.Name, "tables", r.SnapshotRows)
			}
		} else if err := sink.Apply(ctx, s.Name, point); err != nil {
			return out, fmt.Errorf("source %s: write the checkpoint: %w", s.Name, err)
		}
		if err := checkpoint.RemoveSchemaHistory(cfg.StateDir, p.Name, s.Name); err != nil {
			return out, fmt.Errorf("source %s: %w", s.Name, err)
		}
		if r.After, _, err = sink.Checkpoint(ctx, s.Name); err != nil {
			return out, err
		}
		out = append(out, r)
	}
	return out, nil
}
