package mysql

import (
	"context"
	"fmt"

	"github.com/sluice-cdc/sluice/binlog"
	"github.com/sluice-cdc/sluice/sqltext"
)

// ResetCheckpoint is sluice reset's write: source's checkpoint becomes t's
// position and source's rows of sluice.snapshot are deleted, in one target
// transaction fenced by the pipeline's lease. Those rows say which changes
// the tables' copies already hold, and streaming drops those changes; after
// a reset the target is no longer the continuation of those copies (it was
// emptied to replay from an earlier point, or moved past them), so the
// rows would drop changes nothing else applies. It returns how many rows
// it deleted.
func (s *Sink) ResetCheckpoint(ctx context.Context, source string, t *binlog.Txn) (int64, error) {
	have, err := s.haveSnapshotTable(ctx)
	if err != nil {
		return 0, err
	}
	a, done, err := s.snapshotApplier(ctx, source)
	if err != nil {
		return 0, err
	}
	defer done()
	q := a.appendCheckpoint([]byte("START TRANSACTION;"), t)
	if have {
		q = fmt.Appendf(q, ";DELETE FROM %s WHERE pipeline = ", snapshotTable)
		q = sqltext.AppendString(q, s.cfg.Pipeline)
		q = append(q, " AND source = "...)
		q = sqltext.AppendString(q, source)
	}
	affected, err := a.exec(ctx, string(q))
	if err == nil {
		err = checkFence(affected[1])
	}
	var cleared int64
	if err == nil && have {
		cleared = affected[2]
	}
	if err == nil {
		_, err = a.exec(ctx, "COMMIT")
	}
	if err != nil {
		a.rollback(ctx)
		return 0, fmt.Errorf("%s: reset the checkpoint of source %s: %w", s.cfg.DSN, source, err)
	}
	return cleared, nil
}
