package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"

	"github.com/sluice-cdc/sluice/binlog"
	"github.com/sluice-cdc/sluice/checkpoint"
	"github.com/sluice-cdc/sluice/sqltext"
)

// An incremental snapshot (replicator/incremental.go) copies one table
// while its pipeline streams. Its request and progress are one row per
// source table in sluice.snapshot_incremental: sluice snapshot
// --incremental records a request there, the process running the
// pipeline picks it up, and each chunk of rows is written (REPLACE, full
// rows) in one target transaction with the row's new progress, fenced by
// the lease epoch like the checkpoint. While a table is being seeded its
// streamed changes may meet rows not copied yet: they are applied as
// upserts (SetSeeding), whatever on_conflict says.

const incrementalName = "snapshot_incremental"

const incrementalTable = "`" + markSchema + "`.`" + incrementalName + "`"

const createIncrementalTable = `CREATE TABLE IF NOT EXISTS ` + incrementalTable + ` (
	pipeline VARCHAR(190) NOT NULL,
	source VARCHAR(190) NOT NULL,
	table_schema VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
	table_name VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
	state VARCHAR(16) NOT NULL,
	after_key LONGBLOB NULL,
	chunks BIGINT UNSIGNED NOT NULL,
	rows_read BIGINT UNSIGNED NOT NULL,
	rows_written BIGINT UNSIGNED NOT NULL,
	tolerate_until LONGTEXT NOT NULL,
	message TEXT NOT NULL,
	updated_at DATETIME(6) NOT NULL,
	PRIMARY KEY (pipeline, source, table_schema, table_name)
) ENGINE=InnoDB`

// ensureIncrementalTable creates sluice.snapshot_incremental when missing
// (only then: even CREATE ... IF NOT EXISTS is written to the binlog).
func (s *Sink) ensureIncrementalTable(ctx context.Context) (bool, error) {
	var have int
	if err := s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
		markSchema, incrementalName).Scan(&have); err != nil {
		return false, fmt.Errorf("%s: %w", s.cfg.DSN, err)
	}
	return have > 0, nil
}

// RequestIncrementalSnapshot records a request to copy a source table
// incrementally, for the process running the pipeline to pick up. It
// returns the state the table's snapshot had ("" for none); a requested
// or running one is left as it is.
func (s *Sink) RequestIncrementalSnapshot(ctx context.Context, source, schemaName, table string) (string, error) {
	if have, err := s.ensureIncrementalTable(ctx); err != nil {
		return "", err
	} else if !have {
		if _, err := s.db.ExecContext(ctx, createIncrementalTable); err != nil {
			return "", fmt.Errorf("%s: create sluice's incremental snapshot table: %w", s.cfg.DSN, err)
		}
	}
	var prev string
	err := s.db.QueryRowContext(ctx, "SELECT state FROM "+incrementalTable+" WHERE pipeline = ? AND source = ? AND table_schema = ? AND table_name = ?",
		s.cfg.Pipeline, source, schemaName, table).Scan(&prev)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("%s: read the incremental snapshot of %s.%s: %w", s.cfg.DSN, schemaName, table, err)
	}
	if prev == checkpoint.IncrementalRequested || prev == checkpoint.IncrementalRunning {
		return prev, nil
	}
	_, err = s.db.ExecContext(ctx, "INSERT INTO "+incrementalTable+" (pipeline, source, table_schema, table_name, state, after_key, chunks, rows_read, rows_written, tolerate_until, message, updated_at) "+
		"VALUES (?, ?, ?, ?, ?, NULL, 0, 0, 0, '', '', UTC_TIMESTAMP(6)) ON DUPLICATE KEY UPDATE state = VALUES(state), after_key = NULL, chunks = 0, rows_read = 0, rows_written = 0, "+
		"tolerate_until = '', message = '', updated_at = VALUES(updated_at)",
		s.cfg.Pipeline, source, schemaName, table, checkpoint.IncrementalRequested)
	if err != nil {
		return "", fmt.Errorf("%s: record the incremental snapshot of %s.%s: %w", s.cfg.DSN, schemaName, table, err)
	}
	return prev, nil
}

// IncrementalSnapshots returns a source's incremental snapshots (none
// when none was ever requested on the target).
func (s *Sink) IncrementalSnapshots(ctx context.Context, source string) ([]checkpoint.IncrementalSnapshot, error) {
	if have, err := s.ensureIncrementalTable(ctx); err != nil || !have {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, "SELECT table_schema, table_name, state, after_key, chunks, rows_read, rows_written, tolerate_until, message, updated_at FROM "+
		incrementalTable+" WHERE pipeline = ? AND source = ? ORDER BY table_schema, table_name", s.cfg.Pipeline, source)
	if err != nil {
		return nil, fmt.Errorf("%s: read incremental snapshots: %w", s.cfg.DSN, err)
	}
	defer rows.Close()
	var out []checkpoint.IncrementalSnapshot
	for rows.Next() {
		var t checkpoint.IncrementalSnapshot
		var tolerate string
		if err := rows.Scan(&t.Schema, &t.Table, &t.State, &t.After, &t.Chunks, &t.RowsRead, &t.RowsWritten, &tolerate, &t.Message, (*timeScanner)(&t.Updated)); err != nil {
			return nil, fmt.Errorf("%s: read incremental snapshots: %w", s.cfg.DSN, err)
		}
		if t.TolerateUntil, err = binlog.ParseGTIDSet(tolerate); err != nil {
			return nil, fmt.Errorf("%s: incremental snapshot of %s: %w", s.cfg.DSN, t.Name(), err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// WriteIncrementalChunk runs clear (a DELETE of the chunk's key range,
// when given), writes rows (full rows of one target table, as REPLACE: the
// stream may have written some of them) and the table's progress st, in
// one target transaction fenced by the lease. With no rows and no clear it
// records st alone.
func (s *Sink) WriteIncrementalChunk(ctx context.Context, source string, st checkpoint.IncrementalSnapshot, _ *binlog.Table, clear []byte, rows []*binlog.Change) error {
	a, done, err := s.snapshotApplier(ctx, source)
	if err != nil {
		return err
	}
	defer done()
	buf := []byte("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ;START TRANSACTION")
	n := 2
	if clear != nil {
		buf = append(append(buf, ';'), clear...)
		n++
	}
	for start := 0; start < len(rows); {
		end := min(start+maxInsertRows, len(rows))
		buf = append(buf, ';')
		mark := len(buf)
		buf = sqltext.AppendInsert(buf, "REPLACE", rows[start:end])
		for len(buf)-mark > s.maxBatch && end-start > 1 {
			end = start + (end-start)/2
			buf = sqltext.AppendInsert(buf[:mark], "REPLACE", rows[start:end])
		}
		n++
		start = end
		if len(buf) >= s.maxBatch {
			if _, err := a.exec(ctx, string(buf)); err != nil {
				a.rollback(ctx)
				return fmt.Errorf("write a chunk of %s: %w", rows[0].Table.QualifiedName(), err)
			}
			buf, n = buf[:0], 0
		}
	}
	if len(buf) > 0 {
		buf = append(buf, ';')
	}
	buf = a.appendIncremental(buf, st)
	affected, err := a.exec(ctx, string(buf))
	if err == nil && len(affected) != n+1 {
		err = fmt.Errorf("target answered %d results for %d statements", len(affected), n+1)
	}
	if err == nil {
		err = checkFence(affected[n])
	}
	if err == nil {
		_, err = a.exec(ctx, "COMMIT")
	}
	if err != nil {
		a.rollback(ctx)
		if len(rows) > 0 {
			return fmt.Errorf("write a chunk of %s: %w", rows[0].Table.QualifiedName(), err)
		}
		return err
	}
	return nil
}

// appendIncremental appends the statement writing a table's incremental
// snapshot row, fenced by the lease as appendProgress is.
func (a *applier) appendIncremental(dst []byte, st checkpoint.IncrementalSnapshot) []byte {
	epoch := a.s.epoch.Load()
	dst = append(dst, "INSERT INTO "+incrementalTable+" (pipeline, source, table_schema, table_name, state, after_key, chunks, rows_read, rows_written, tolerate_until, message, updated_at) "...)
	if epoch > 0 {
		dst = append(dst, "SELECT "...)
	} else {
		dst = append(dst, "VALUES ("...)
	}
	for _, s := range []string{a.s.cfg.Pipeline, a.source, st.Schema, st.Table, st.State} {
		dst = sqltext.AppendString(dst, s)
		dst = append(dst, ',')
	}
	if st.After == nil {
		dst = append(dst, "NULL"...)
	} else {
		dst = sqltext.AppendCharsetBytes(dst, "binary", st.After)
	}
	for _, n := range []uint64{st.Chunks, st.RowsRead, st.RowsWritten} {
		dst = append(dst, ',')
		dst = strconv.AppendUint(dst, n, 10)
	}
	for _, s := range []string{st.TolerateUntil.String(), st.Message} {
		dst = append(dst, ',')
		dst = sqltext.AppendString(dst, s)
	}
	dst = append(dst, ",UTC_TIMESTAMP(6)"...)
	if epoch > 0 {
		dst = a.appendFence(dst, epoch)
	} else {
		dst = append(dst, ')')
	}
	return append(dst, " ON DUPLICATE KEY UPDATE state=VALUES(state), after_key=VALUES(after_key), chunks=VALUES(chunks), rows_read=VALUES(rows_read), "+
		"rows_written=VALUES(rows_written), tolerate_until=VALUES(tolerate_until), message=VALUES(message), updated_at=VALUES(updated_at)"...)
}

// SetSeeding marks a target table as being seeded by an incremental
// snapshot of source (on), or no longer (off). Meanwhile that source's
// changes to it are applied as upserts: an update or delete of a row not
// copied yet, or an insert of a row a chunk wrote, is not a conflict.
func (s *Sink) SetSeeding(source, schemaName, table string, on bool) {
	key := source + "\x00" + schemaName + "." + table
	if on {
		s.seeding.Store(key, true)
	} else {
		s.seeding.Delete(key)
	}
}

// isSeeding reports whether source's changes to t are applied as upserts.
func (s *Sink) isSeeding(source string, t *binlog.Table) bool {
	_, ok := s.seeding.Load(source + "\x00" + t.Schema + "." + t.Name)
	return ok
}
