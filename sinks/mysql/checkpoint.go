package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/sluice-cdc/sluice/binlog"
	"github.com/sluice-cdc/sluice/checkpoint"
	"github.com/sluice-cdc/sluice/sqltext"
)

// Checkpoint returns the source's checkpoint as the target has it.
func (s *Sink) Checkpoint(ctx context.Context, source string) (checkpoint.State, bool, error) {
	var st checkpoint.State
	var gtid, file string
	var pos uint64
	err := s.db.QueryRowContext(ctx, "SELECT gtid_set, binlog_file, binlog_pos, updated_at FROM "+checkpointTable+" WHERE pipeline = ? AND source = ?",
		s.cfg.Pipeline, source).Scan(&gtid, &file, &pos, (*timeScanner)(&st.Updated))
	if errors.Is(err, sql.ErrNoRows) {
		return st, false, nil
	}
	if err != nil {
		return st, false, fmt.Errorf("%s: read checkpoint: %w", s.cfg.DSN, err)
	}
	if st.GTID, err = binlog.ParseGTIDSet(gtid); err != nil {
		return st, false, fmt.Errorf("%s: checkpoint of %s/%s: %w", s.cfg.DSN, s.cfg.Pipeline, source, err)
	}
	st.Pos = binlog.Position{File: file, Pos: pos}
	return st, true, nil
}

// timeScanner reads DATETIME(6) text (the DSN does not parse times).
type timeScanner time.Time

func (t *timeScanner) Scan(v any) error {
	var s string
	switch x := v.(type) {
	case []byte:
		s = string(x)
	case string:
		s = x
	case time.Time:
		*t = timeScanner(x)
		return nil
	default:
		return nil
	}
	p, err := time.Parse("2006-01-02 15:04:05.999999", s)
	if err != nil {
		return err
	}
	*t = timeScanner(p)
	return nil
}

// appendCheckpoint appends the statement recording t as applied. While
// the sink holds the pipeline's lease the row is selected from the lease
// row with our epoch, so that the statement inserts nothing once another
// process has taken over (lease.go); its count is then checked with
// checkFence.
func (a *applier) appendCheckpoint(dst []byte, t *binlog.Txn) []byte {
	epoch := a.s.epoch.Load()
	dst = append(dst, "INSERT INTO "+checkpointTable+" (pipeline, source, gtid_set, binlog_file, binlog_pos, updated_at) "...)
	if epoch > 0 {
		dst = append(dst, "SELECT "...)
	} else {
		dst = append(dst, "VALUES ("...)
	}
	dst = sqltext.AppendString(dst, a.s.cfg.Pipeline)
	dst = append(dst, ',')
	dst = sqltext.AppendString(dst, a.source)
	dst = append(dst, ',')
	dst = sqltext.AppendString(dst, t.Executed.String())
	dst = append(dst, ',')
	dst = sqltext.AppendString(dst, t.Pos.File)
	dst = append(dst, ',')
	dst = strconv.AppendUint(dst, uint64(t.Pos.Pos), 10)
	dst = append(dst, ",UTC_TIMESTAMP(6)"...)
	if epoch > 0 {
		dst = a.appendFence(dst, epoch)
	} else {
		dst = append(dst, ')')
	}
	dst = append(dst, " ON DUPLICATE KEY UPDATE gtid_set=VALUES(gtid_set), binlog_file=VALUES(binlog_file), "+
		"binlog_pos=VALUES(binlog_pos), updated_at=VALUES(updated_at)"...)
	return dst
}

// expectFence marks the checkpoint statement in a list of expected
// affected-row counts: any count but 0, which means fenced.
const expectFence = -2

// checkFence returns ErrFenced when the checkpoint statement wrote
// nothing.
func checkFence(affected int64) error {
	if affected == 0 {
		return ErrFenced
	}
	return nil
}

// recordOnly records t as applied without applying it (a DDL that ran, or
// was done by hand or skipped; a transaction listed in skip), and clears
// the DDL-in-progress mark.
func (a *applier) recordOnly(ctx context.Context, t *binlog.Txn) error {
	q := a.appendCheckpoint([]byte("START TRANSACTION;"), t)
	q = fmt.Appendf(q, ";DELETE FROM %s WHERE pipeline = ", pendingTable)
	q = sqltext.AppendString(q, a.s.cfg.Pipeline)
	q = append(q, " AND source = "...)
	q = sqltext.AppendString(q, a.source)
	affected, err := a.exec(ctx, string(q))
	if err == nil && len(affected) > 1 {
		err = checkFence(affected[1])
	}
	if err == nil {
		_, err = a.exec(ctx, "COMMIT")
	}
	if err != nil {
		a.rollback(ctx)
	}
	return err
}
