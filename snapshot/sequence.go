package snapshot

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/sluice-cdc/sluice/binlog"
	"github.com/sluice-cdc/sluice/binlog/schema"
	"github.com/sluice-cdc/sluice/checkpoint"
)

// A MariaDB sequence is copied as its definition (SHOW CREATE SEQUENCE)
// and its one row, which the target sequence is then moved to as the
// applier moves it for a row of the stream (SETVAL, sinks/mysql). The
// sequence's row is not versioned: a read inside the consistent snapshot
// sees its latest state, not the one at the snapshot's position P. It is
// read after P is taken, so it holds every change up to P and maybe some
// after; streaming replays the rows after P over it, and each only moves
// the sequence forward (a SETVAL behind the current value is ignored) or
// sets it whole (ALTER SEQUENCE, an INSERT of the row), so the target ends
// where the source is.

// copySequence copies the sequence name (schema.sequence) with r; an
// earlier copy of it was interrupted when inProgress.
func copySequence(ctx context.Context, cfg Config, r *reader, name string, inProgress bool, log *slog.Logger) error {
	schemaName, seqName := splitName(name)
	if cfg.Merged(schemaName, seqName) {
		return fmt.Errorf("sequence %s is routed into a table other sources or tables share: a sequence cannot be merged (leave it out with exclude)", name)
	}
	at, err := r.begin(ctx)
	if err != nil {
		return fmt.Errorf("copy %s: %w", name, err)
	}
	defer func() { _ = r.end(ctx) }()
	def, err := schema.LoadTable(ctx, cfg.Source, schemaName, seqName)
	if err != nil {
		return fmt.Errorf("read the definition of %s: %w", name, err)
	}
	if def == nil || !def.Sequence {
		return fmt.Errorf("sequence %s disappeared from the source", name)
	}
	src := binlog.TableFromSchema(def)
	var rows []*binlog.Change
	if _, err := newCopier(r.conn, src, cfg.Route).copy(ctx, nil, func(c []*binlog.Change, _ []byte) error {
		rows = append(rows, c...)
		return nil
	}); err != nil {
		return fmt.Errorf("copy %s: %w", name, err)
	}
	if len(rows) != 1 {
		return fmt.Errorf("copy %s: the sequence has %d rows", name, len(rows))
	}
	row := rows[0]
	dst := row.Table
	if len(dst.Columns) != len(src.Columns) {
		return fmt.Errorf("sequence %s is routed to %s with added columns, which a sequence cannot have (leave it out with exclude)", name, dst.QualifiedName())
	}
	createDB, createSeq, err := createStatementsOf(ctx, r.conn, "SEQUENCE", src, dst)
	if err != nil {
		return fmt.Errorf("copy %s: %w", name, err)
	}
	if err := r.end(ctx); err != nil {
		return fmt.Errorf("copy %s: %w", name, err)
	}
	ts := checkpoint.TableSnapshot{Schema: src.Schema, Table: src.Name, At: at}
	if err := cfg.Target.SeedSequence(ctx, cfg.SourceName, ts, createDB, createSeq, inProgress, row); err != nil {
		return fmt.Errorf("copy %s: %w", name, err)
	}
	log.Info("sequence copied", "sequence", name, "target", dst.QualifiedName(), "at", at.GTID.String())
	return nil
}
