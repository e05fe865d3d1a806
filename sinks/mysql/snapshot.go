package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	drv "github.com/go-sql-driver/mysql"

	"github.com/sluice-cdc/sluice/binlog"
	"github.com/sluice-cdc/sluice/binlog/schema"
	"github.com/sluice-cdc/sluice/checkpoint"
	"github.com/sluice-cdc/sluice/mysqlconn"
	"github.com/sluice-cdc/sluice/sqltext"
)

// A snapshot (package snapshot) writes the rows it copies here, in chunks.
// Each chunk is one target transaction that also adds its rows to the
// source table's row in sluice.snapshot, with the chunk's end (after_key),
// fenced by the pipeline's lease epoch like the checkpoint row: a process
// that lost the lease commits no chunk. A table's chunks commit in key
// order, so after_key is where an interrupted copy resumes. The row
// records the positions of the table's consistent snapshots (from_*: the
// first part's, gtid_set/binlog_*: the last part's) and, once every chunk
// is committed, that the table is done; it stays after the snapshot, so
// that streaming (which starts at the earliest table's position) can drop
// the changes each table's copy already has.

const snapshotName = "snapshot"

const snapshotTable = "`" + markSchema + "`.`" + snapshotName + "`"

const createSnapshotTable = `CREATE TABLE IF NOT EXISTS ` + snapshotTable + ` (
	pipeline VARCHAR(190) NOT NULL,
	source VARCHAR(190) NOT NULL,
	table_schema VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
	table_name VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
	gtid_set LONGTEXT NOT NULL,
	binlog_file VARCHAR(255) NOT NULL,
	binlog_pos BIGINT UNSIGNED NOT NULL,
	rows_copied BIGINT UNSIGNED NOT NULL,
	done TINYINT NOT NULL,
	updated_at DATETIME(6) NOT NULL,
	` + snapshotResumeColumns + `,
	PRIMARY KEY (pipeline, source, table_schema, table_name)
) ENGINE=InnoDB`

// snapshotResumeColumns are the columns of a chunk-level resume, added to
// a sluice.snapshot made before them.
const snapshotResumeColumns = `from_gtid_set LONGTEXT NULL,
	from_binlog_file VARCHAR(255) NULL,
	from_binlog_pos BIGINT UNSIGNED NULL,
	after_key LONGBLOB NULL,
	chunks BIGINT UNSIGNED NOT NULL DEFAULT 0,
	definition VARCHAR(64) NOT NULL DEFAULT ''`

// haveSnapshotTable reports whether the target has sluice.snapshot.
func (s *Sink) haveSnapshotTable(ctx context.Context) (bool, error) {
	var have int
	if err := s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
		markSchema, snapshotName).Scan(&have); err != nil {
		return false, fmt.Errorf("%s: %w", s.cfg.DSN, err)
	}
	return have > 0, nil
}

// ensureSnapshotTable creates sluice.snapshot when missing (only then:
// even CREATE ... IF NOT EXISTS is written to the target's binlog).
func (s *Sink) ensureSnapshotTable(ctx context.Context) error {
	if have, err := s.haveSnapshotTable(ctx); err != nil {
		return err
	} else if have {
		return s.ensureSnapshotColumns(ctx)
	}
	if _, err := s.db.ExecContext(ctx, createSnapshotTable); err != nil {
		return fmt.Errorf("%s: create sluice's snapshot table: %w", s.cfg.DSN, err)
	}
	s.snapshotColumns.Store(true)
	return nil
}

// ensureSnapshotColumns adds the resume columns to a sluice.snapshot made
// before them.
func (s *Sink) ensureSnapshotColumns(ctx context.Context) error {
	if s.snapshotColumns.Load() {
		return nil
	}
	var n int
	if err := s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND COLUMN_NAME = 'after_key'",
		markSchema, snapshotName).Scan(&n); err != nil {
		return fmt.Errorf("%s: %w", s.cfg.DSN, err)
	}
	if n == 0 {
		q := "ALTER TABLE " + snapshotTable + " ADD COLUMN " + strings.ReplaceAll(snapshotResumeColumns, ",\n\t", ", ADD COLUMN ")
		if _, err := s.db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%s: add the resume columns to sluice's snapshot table: %w", s.cfg.DSN, err)
		}
	}
	s.snapshotColumns.Store(true)
	return nil
}

// SnapshotTables returns the snapshot progress of a source's tables
// (none when no snapshot ever ran on the target).
func (s *Sink) SnapshotTables(ctx context.Context, source string) ([]checkpoint.TableSnapshot, error) {
	if have, err := s.haveSnapshotTable(ctx); err != nil || !have {
		return nil, err
	}
	if err := s.ensureSnapshotColumns(ctx); err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, "SELECT table_schema, table_name, gtid_set, binlog_file, binlog_pos, rows_copied, done, updated_at, "+
		"COALESCE(from_gtid_set, ''), COALESCE(from_binlog_file, ''), COALESCE(from_binlog_pos, 0), after_key, chunks, definition FROM "+
		snapshotTable+" WHERE pipeline = ? AND source = ? ORDER BY table_schema, table_name", s.cfg.Pipeline, source)
	if err != nil {
		return nil, fmt.Errorf("%s: read snapshot progress: %w", s.cfg.DSN, err)
	}
	defer rows.Close()
	var out []checkpoint.TableSnapshot
	for rows.Next() {
		var t checkpoint.TableSnapshot
		var gtid, from string
		if err := rows.Scan(&t.Schema, &t.Table, &gtid, &t.At.Pos.File, &t.At.Pos.Pos, &t.Rows, &t.Done, (*timeScanner)(&t.At.Updated),
			&from, &t.From.Pos.File, &t.From.Pos.Pos, &t.After, &t.Chunks, &t.Definition); err != nil {
			return nil, fmt.Errorf("%s: read snapshot progress: %w", s.cfg.DSN, err)
		}
		if t.At.GTID, err = binlog.ParseGTIDSet(gtid); err != nil {
			return nil, fmt.Errorf("%s: snapshot progress of %s/%s %s: %w", s.cfg.DSN, s.cfg.Pipeline, source, t.Name(), err)
		}
		if t.From.GTID, err = binlog.ParseGTIDSet(from); err != nil {
			return nil, fmt.Errorf("%s: snapshot progress of %s/%s %s: %w", s.cfg.DSN, s.cfg.Pipeline, source, t.Name(), err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// TargetTable reports whether the target has the table, and whether it
// holds any row.
func (s *Sink) TargetTable(ctx context.Context, db, table string) (exists, hasRows bool, err error) {
	var n int
	if err := s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?", db, table).Scan(&n); err != nil {
		return false, false, fmt.Errorf("%s: %w", s.cfg.DSN, err)
	}
	if n == 0 {
		return false, false, nil
	}
	err = s.db.QueryRowContext(ctx, "SELECT 1 FROM "+sqltext.QualifiedName(db, table)+" LIMIT 1").Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return true, false, nil
	}
	if err != nil {
		return true, false, fmt.Errorf("%s: %s.%s: %w", s.cfg.DSN, db, table, err)
	}
	return true, true, nil
}

// CreateTable runs createTable (a CREATE TABLE naming its database), first
// creating the database with createDatabase when the target lacks it.
func (s *Sink) CreateTable(ctx context.Context, db, createDatabase, createTable string) error {
	a, done, err := s.snapshotApplier(ctx, "")
	if err != nil {
		return err
	}
	defer done()
	if err := a.checkLease(ctx); err != nil {
		return err
	}
	var n int
	if err := a.conn.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", db).Scan(&n); err != nil {
		return err
	}
	// Marked, as every DDL the sink runs (marks.go).
	if n == 0 {
		if _, err := a.exec(ctx, ddlMarkStatement(s.cfg.Pipeline, a.source)); err != nil {
			return err
		}
		if _, err := a.exec(ctx, createDatabase); err != nil {
			return fmt.Errorf("create database %s on the target: %w", db, err)
		}
	}
	if _, err := a.exec(ctx, ddlMarkStatement(s.cfg.Pipeline, a.source)); err != nil {
		return err
	}
	if _, err := a.exec(ctx, createTable); err != nil {
		return fmt.Errorf("create table on the target: %w; statement %q", err, schema.Shorten(createTable, 300))
	}
	return nil
}

// BeginSnapshotTable records that a source table is being copied from a
// snapshot at ts.At into the target table target, which an earlier attempt
// may have filled in part: with truncate it is emptied first. ts is
// recorded as it is (a resumed copy keeps its From, After, Chunks and
// Rows).
func (s *Sink) BeginSnapshotTable(ctx context.Context, source string, ts checkpoint.TableSnapshot, target *binlog.Table, truncate bool) error {
	if err := s.ensureSnapshotTable(ctx); err != nil {
		return err
	}
	a, done, err := s.snapshotApplier(ctx, source)
	if err != nil {
		return err
	}
	defer done()
	if truncate {
		if err := a.checkLease(ctx); err != nil {
			return err
		}
		if _, err := a.exec(ctx, ddlMarkStatement(s.cfg.Pipeline, a.source)); err != nil {
			return err
		}
		if _, err := a.exec(ctx, "TRUNCATE TABLE "+sqltext.QualifiedName(target.Schema, target.Name)); err != nil {
			return fmt.Errorf("empty %s on the target before copying it again: %w", target.QualifiedName(), err)
		}
	}
	ts.Done = false
	return a.commitSnapshot(ctx, a.appendProgress(nil, ts, true))
}

// WriteSnapshotRows inserts rows (inserts into one target table, every
// column present) and adds them to the source table's progress (ts.After:
// the chunk's end), as one target transaction fenced by the lease. Before
// the progress is written it waits for turn (the table's earlier chunks
// committed), so that chunks commit in order. A duplicate key is an error:
// the target table had rows the snapshot did not write. The rows go as
// parameters on a MariaDB target (insertBinary: the bulk command, or
// prepared INSERTs), as literal INSERTs otherwise and for what those
// leave.
func (s *Sink) WriteSnapshotRows(ctx context.Context, source string, ts checkpoint.TableSnapshot, rows []*binlog.Change, turn func(context.Context) error) error {
	a, done, err := s.rowsApplier(ctx, source)
	if err != nil {
		return err
	}
	defer done()
	bp := snapshotBufs.Get().(*[]byte)
	defer func() { snapshotBufs.Put(bp) }()
	buf := (*bp)[:0]
	defer func() { *bp = buf[:0] }()
	var expect []int64
	var table *binlog.Table // for messages
	if len(rows) > 0 {
		table = rows[0].Table
	}
	send := func() error {
		affected, err := a.exec(ctx, string(buf))
		if err != nil {
			return err
		}
		if len(affected) != len(expect) {
			return fmt.Errorf("target answered %d results for %d statements", len(affected), len(expect))
		}
		for i, want := range expect {
			if want == expectFence {
				if err := checkFence(affected[i]); err != nil {
					return err
				}
			} else if want >= 0 && affected[i] != want {
				return unwritten(table, affected[i], want)
			}
		}
		buf, expect = buf[:0], expect[:0]
		return nil
	}
	buf = append(buf, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ;START TRANSACTION"...)
	expect = append(expect, -1, -1)
	ts.Rows = uint64(len(rows))
	if s.rowsBinary.Load() && len(rows) > 0 {
		n, err := s.insertBinary(ctx, a, rows, send)
		if err != nil {
			a.rollback(ctx)
			return err
		}
		rows = rows[n:]
	}
	for start := 0; start < len(rows); {
		end := min(start+maxInsertRows, len(rows))
		if len(buf) > 0 {
			buf = append(buf, ';')
		}
		mark := len(buf)
		buf = sqltext.AppendInsert(buf, "INSERT", rows[start:end])
		for len(buf)-mark > s.maxBatch && end-start > 1 {
			// Wide rows: fewer per statement, so that one stays well
			// under max_allowed_packet.
			end = start + (end-start)/2
			buf = sqltext.AppendInsert(buf[:mark], "INSERT", rows[start:end])
		}
		expect = append(expect, int64(end-start))
		start = end
		if len(buf) >= s.maxBatch {
			if err := send(); err != nil {
				a.rollback(ctx)
				return err
			}
		}
	}
	if turn != nil {
		if len(buf) > 0 {
			if err := send(); err != nil {
				a.rollback(ctx)
				return err
			}
		}
		if err := turn(ctx); err != nil {
			a.rollback(ctx)
			return err
		}
	}
	if len(buf) > 0 {
		buf = append(buf, ';')
	}
	buf = a.appendProgress(buf, ts, false)
	expect = append(expect, expectFence)
	if err := send(); err != nil {
		a.rollback(ctx)
		return err
	}
	_, err = a.exec(ctx, "COMMIT")
	return err
}

// snapshotBufs are the statement buffers of WriteSnapshotRows, reused:
// each grows to about maxBatch.
var snapshotBufs = sync.Pool{New: func() any { return new([]byte) }}

// FinishSnapshotTable records that every row of the source table is copied.
func (s *Sink) FinishSnapshotTable(ctx context.Context, source string, ts checkpoint.TableSnapshot) error {
	a, done, err := s.snapshotApplier(ctx, source)
	if err != nil {
		return err
	}
	defer done()
	ts.Rows, ts.Done = 0, true
	return a.commitSnapshot(ctx, a.appendProgress(nil, ts, false))
}

// unwritten is the error for a snapshot INSERT of want rows into t that
// wrote only wrote: the target table has rows the snapshot did not write
// (a duplicate key).
func unwritten(t *binlog.Table, wrote, want int64) error {
	return fmt.Errorf("%s: the target table wrote %d of %d rows: it has rows the snapshot did not write", t.QualifiedName(), wrote, want)
}

// snapshotApplier is a connection of the snapshot's pool (snapshotDB)
// dressed as an applier, so that a snapshot's transactions are fenced and
// sent as the streamed ones are; done returns it to the pool.
func (s *Sink) snapshotApplier(ctx context.Context, source string) (*applier, func(), error) {
	db, err := s.snapshotDB(ctx)
	if err != nil {
		return nil, nil, err
	}
	return s.applierOn(ctx, db, source)
}

// rowsApplier is snapshotApplier on the pool of the snapshot's rows
// (rowsDB).
func (s *Sink) rowsApplier(ctx context.Context, source string) (*applier, func(), error) {
	db, err := s.rowsDB(ctx)
	if err != nil {
		return nil, nil, err
	}
	return s.applierOn(ctx, db, source)
}

// applierOn is a connection of db dressed as a snapshot's applier.
func (s *Sink) applierOn(ctx context.Context, db *sql.DB, source string) (*applier, func(), error) {
	c, err := db.Conn(ctx)
	if err != nil {
		return nil, nil, err
	}
	a := &applier{s: s, source: source, conn: c, snapshot: true}
	return a, func() {
		if a.conn != nil {
			a.conn.Close()
		}
	}, nil
}

// snapshotDB is the pool the initial snapshot writes with: the sink's,
// or with Config.SnapshotSkipBinlog one of its own whose sessions have
// sql_log_bin = 0 (kept apart, so that no streamed transaction ever runs
// on such a connection).
func (s *Sink) snapshotDB(ctx context.Context) (*sql.DB, error) {
	s.snapMu.Lock()
	defer s.snapMu.Unlock()
	return s.snapshotDBLocked(ctx)
}

// snapshotDBLocked is snapshotDB with snapMu held.
func (s *Sink) snapshotDBLocked(ctx context.Context) (*sql.DB, error) {
	if !s.cfg.SnapshotSkipBinlog {
		return s.db, nil
	}
	if s.snapDB == nil {
		db, _, err := s.openSnapshotPool(ctx, false, false)
		if err != nil {
			return nil, err
		}
		s.snapDB = db
	}
	return s.snapDB, nil
}

// rowsDB is the pool the initial snapshot's rows (WriteSnapshotRows) are
// written with. On a MariaDB target its sessions' character set is binary,
// as mydumper's files set it: the server then neither converts the text
// of a chunk's INSERTs to the columns' character sets nor scans it as
// multi-byte text, which takes a quarter off the target's CPU for a
// snapshot of latin1 rows, and the lexer's per-character work for
// utf8mb4. The rows stored are the same, because the literal writer never
// leaves text to the connection's character set: it writes text as plain
// printable ASCII only for an ASCII-compatible column (the same bytes in
// any of them), and otherwise with its character set (_utf8mb4'…',
// _cs X'…'). Nothing else runs there: a CREATE TABLE's text (defaults,
// ENUM members) is utf8mb4 and must be read as such. A MySQL target keeps
// snapshotDB: MySQL refuses a JSON value given as a binary string.
func (s *Sink) rowsDB(ctx context.Context) (*sql.DB, error) {
	s.snapMu.Lock()
	defer s.snapMu.Unlock()
	if s.rowsPool != nil {
		return s.rowsPool, nil
	}
	var version string
	if err := s.db.QueryRowContext(ctx, "SELECT VERSION()").Scan(&version); err != nil {
		return nil, err
	}
	var db *sql.DB
	var err error
	if strings.Contains(version, "MariaDB") {
		var bulk *mysqlconn.Bulk
		db, bulk, err = s.openSnapshotPool(ctx, true, false)
		if err == nil && !s.cfg.SnapshotSkipBinlog {
			db, bulk, err = s.unannotated(ctx, db, bulk)
		}
		s.rowsBinary.Store(err == nil)
		s.rowsBulk = bulk
	} else {
		db, err = s.snapshotDBLocked(ctx)
	}
	if err != nil {
		return nil, err
	}
	s.rowsPool = db
	return db, nil
}

// unannotated returns a pool like db whose sessions log the rows of a
// chunk's INSERTs without the statements' text (an Annotate_rows event
// before each, by default on MariaDB), when the target lets the user set
// binlog_annotate_row_events (SUPER or BINLOG ADMIN), and db otherwise.
// The text of a snapshot's 1 MiB INSERTs is of no use to a reader of the
// target's binlog, and writing it (through the binlog cache's temporary
// file, then the binlog) cost the target about a sixth of its CPU.
func (s *Sink) unannotated(ctx context.Context, db *sql.DB, bulk *mysqlconn.Bulk) (*sql.DB, *mysqlconn.Bulk, error) {
	_, err := db.ExecContext(ctx, "SET SESSION binlog_annotate_row_events = 0")
	var me *drv.MySQLError
	if errors.As(err, &me) && (me.Number == 1227 || me.Number == 1044) {
		s.log.Info("the snapshot's rows are logged in the target's binlog with their INSERT statements (binlog_annotate_row_events): skipping them needs SUPER or BINLOG ADMIN", "error", me.Message)
		return db, bulk, nil
	}
	db.Close()
	if err != nil {
		return nil, nil, fmt.Errorf("snapshot session: %w", err)
	}
	return s.openSnapshotPool(ctx, true, true)
}

// openSnapshotPool opens a pool for snapshot writes: its sessions skip
// the binlog with Config.SnapshotSkipBinlog, use the binary character set
// when binary is set (a MariaDB target's rows pool, whose connections may
// then run the bulk command: Bulk), and write rows events without their
// statement (binlog_annotate_row_events = 0) when unannotated is.
func (s *Sink) openSnapshotPool(ctx context.Context, binary, unannotated bool) (*sql.DB, *mysqlconn.Bulk, error) {
	skip := s.cfg.SnapshotSkipBinlog
	tweak := func(dc *drv.Config) {
		targetSession(dc)
		if skip {
			dc.Params["sql_log_bin"] = "0"
		}
		if binary {
			dc.Collation = "binary"
		}
		if unannotated {
			dc.Params["binlog_annotate_row_events"] = "0"
		}
	}
	var db *sql.DB
	var bulk *mysqlconn.Bulk
	var err error
	if binary {
		db, bulk, err = mysqlconn.OpenBulk(ctx, s.cfg.DSN, tweak)
	} else {
		db, err = mysqlconn.Open(ctx, s.cfg.DSN, tweak)
	}
	if err != nil {
		if skip {
			return nil, nil, fmt.Errorf("snapshot_binlog: skip: a session without the binlog (SET sql_log_bin = 0 needs SUPER or BINLOG ADMIN on MariaDB, SYSTEM_VARIABLES_ADMIN on MySQL 8; or leave snapshot_binlog at write): %w", err)
		}
		return nil, nil, err
	}
	// Writers hold a connection each and give it back after every
	// chunk: idle ones are kept, not closed and opened again.
	db.SetMaxIdleConns(16)
	var logBin int
	var charset string
	if err := db.QueryRowContext(ctx, "SELECT @@SESSION.sql_log_bin, @@SESSION.character_set_client").Scan(&logBin, &charset); err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("snapshot session: %w", err)
	}
	switch {
	case skip && logBin != 0:
		db.Close()
		return nil, nil, errors.New("snapshot_binlog: skip: the session still writes the binlog")
	case binary && charset != "binary":
		db.Close()
		return nil, nil, fmt.Errorf("snapshot session: character set %s, not binary", charset)
	}
	if unannotated {
		var annotate int
		if err := db.QueryRowContext(ctx, "SELECT @@SESSION.binlog_annotate_row_events").Scan(&annotate); err != nil || annotate != 0 {
			db.Close()
			if err == nil {
				err = errors.New("binlog_annotate_row_events is still on")
			}
			return nil, nil, fmt.Errorf("snapshot session: %w", err)
		}
	}
	return db, bulk, nil
}

// commitSnapshot runs the progress statement in a transaction of its own.
func (a *applier) commitSnapshot(ctx context.Context, progress []byte) error {
	q := append([]byte("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ;START TRANSACTION;"), progress...)
	affected, err := a.exec(ctx, string(q))
	if err == nil {
		err = checkFence(affected[len(affected)-1])
	}
	if err == nil {
		_, err = a.exec(ctx, "COMMIT")
	}
	if err != nil {
		a.rollback(ctx)
	}
	return err
}

// appendProgress appends the statement writing a source table's progress:
// with begin ts as it is, otherwise ts.Rows more rows, one more chunk,
// ts.After and ts.Done. Under a lease it is an INSERT … SELECT from the
// lease row with our epoch (see appendCheckpoint).
func (a *applier) appendProgress(dst []byte, ts checkpoint.TableSnapshot, begin bool) []byte {
	epoch := a.s.epoch.Load()
	dst = append(dst, "INSERT INTO "+snapshotTable+" (pipeline, source, table_schema, table_name, gtid_set, binlog_file, binlog_pos, rows_copied, done, updated_at, "+
		"from_gtid_set, from_binlog_file, from_binlog_pos, after_key, chunks, definition) "...)
	if epoch > 0 {
		dst = append(dst, "SELECT "...)
	} else {
		dst = append(dst, "VALUES ("...)
	}
	for _, s := range []string{a.s.cfg.Pipeline, a.source, ts.Schema, ts.Table, ts.At.GTID.String(), ts.At.Pos.File} {
		dst = sqltext.AppendString(dst, s)
		dst = append(dst, ',')
	}
	dst = strconv.AppendUint(dst, ts.At.Pos.Pos, 10)
	dst = append(dst, ',')
	dst = strconv.AppendUint(dst, ts.Rows, 10)
	if ts.Done {
		dst = append(dst, ",1"...)
	} else {
		dst = append(dst, ",0"...)
	}
	dst = append(dst, ",UTC_TIMESTAMP(6)"...)
	from := ts.Start()
	for _, s := range []string{from.GTID.String(), from.Pos.File} {
		dst = append(dst, ',')
		dst = sqltext.AppendString(dst, s)
	}
	dst = append(dst, ',')
	dst = strconv.AppendUint(dst, from.Pos.Pos, 10)
	dst = append(dst, ',')
	if ts.After == nil {
		dst = append(dst, "NULL"...)
	} else {
		dst = sqltext.AppendCharsetBytes(dst, "binary", ts.After)
	}
	dst = append(dst, ',')
	dst = strconv.AppendUint(dst, ts.Chunks, 10)
	dst = append(dst, ',')
	dst = sqltext.AppendString(dst, ts.Definition)
	if epoch > 0 {
		dst = a.appendFence(dst, epoch)
	} else {
		dst = append(dst, ')')
	}
	if begin {
		return append(dst, " ON DUPLICATE KEY UPDATE gtid_set=VALUES(gtid_set), binlog_file=VALUES(binlog_file), binlog_pos=VALUES(binlog_pos), "+
			"rows_copied=VALUES(rows_copied), done=0, updated_at=VALUES(updated_at), from_gtid_set=VALUES(from_gtid_set), from_binlog_file=VALUES(from_binlog_file), "+
			"from_binlog_pos=VALUES(from_binlog_pos), after_key=VALUES(after_key), chunks=VALUES(chunks), definition=VALUES(definition)"...)
	}
	if ts.Done {
		return append(dst, " ON DUPLICATE KEY UPDATE done=1, updated_at=VALUES(updated_at)"...)
	}
	return append(dst, " ON DUPLICATE KEY UPDATE rows_copied=rows_copied+VALUES(rows_copied), chunks=chunks+1, after_key=VALUES(after_key), updated_at=VALUES(updated_at)"...)
}

// SeedSequence copies a sequence from a snapshot: it records ts as being
// copied, creates the target sequence with createSequence (first dropping
// the one an interrupted copy created; one it did not create is refused),
// moves it to row as
// the applier applies a sequence's row of the stream (SETVAL), and
// records the copy done. A fresh sequence stands at its start value in
// round 0, and SETVAL ignores a value behind it (the source restarted
// the sequence below its start): then it is restarted at the row's value
// first. A target row that still differs from row (the sequence's
// definition changed on the source while it was read) is an error.
func (s *Sink) SeedSequence(ctx context.Context, source string, ts checkpoint.TableSnapshot, createDatabase, createSequence string, interrupted bool, row *binlog.Change) error {
	t := row.Table
	name := sqltext.QualifiedName(t.Schema, t.Name)
	exists, _, err := s.TargetTable(ctx, t.Schema, t.Name)
	if err != nil {
		return err
	}
	if exists && !interrupted {
		return fmt.Errorf("sequence %s already exists on the target: a snapshot creates the sequences it copies (drop it, or leave %s.%s out with exclude, then run again)",
			t.QualifiedName(), ts.Schema, ts.Table)
	}
	if err := s.ensureSnapshotTable(ctx); err != nil {
		return err
	}
	a, done, err := s.snapshotApplier(ctx, source)
	if err != nil {
		return err
	}
	defer done()
	ts.Rows, ts.Done = 0, false
	if err := a.commitSnapshot(ctx, a.appendProgress(nil, ts, true)); err != nil {
		return err
	}
	if err := a.checkLease(ctx); err != nil {
		return err
	}
	if exists {
		if _, err := a.exec(ctx, "DROP SEQUENCE IF EXISTS "+name); err != nil {
			return fmt.Errorf("drop the sequence %s an interrupted copy created: %w", t.QualifiedName(), err)
		}
	}
	var n int
	if err := a.conn.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", t.Schema).Scan(&n); err != nil {
		return err
	}
	if n == 0 {
		if _, err := a.exec(ctx, createDatabase); err != nil {
			return fmt.Errorf("create database %s on the target: %w", t.Schema, err)
		}
	}
	if _, err := a.exec(ctx, createSequence); err != nil {
		return fmt.Errorf("create sequence on the target: %w; statement %q", err, schema.Shorten(createSequence, 300))
	}
	seed := string(AppendChangeSQL(nil, &binlog.Txn{}, row))
	same := "SELECT COUNT(*) FROM " + name + string(sqltext.AppendWhere(nil, t, row.After, true))
	for try := 0; ; try++ {
		if _, err := a.exec(ctx, seed); err != nil {
			return fmt.Errorf("set sequence %s to the source's row: %w", t.QualifiedName(), err)
		}
		if err := a.conn.QueryRowContext(ctx, same).Scan(&n); err != nil {
			return fmt.Errorf("read sequence %s back: %w", t.QualifiedName(), err)
		}
		if n == 1 {
			break
		}
		i := t.ColumnIndex("next_not_cached_value")
		if try > 0 || i < 0 {
			return fmt.Errorf("sequence %s does not equal the source's after the copy: its definition changed on the source while it was read (run again)", t.QualifiedName())
		}
		restart := append([]byte("ALTER SEQUENCE "+name+" RESTART WITH "), sqltext.AppendLiteral(nil, &t.Columns[i], row.After[i])...)
		if _, err := a.exec(ctx, string(restart)); err != nil {
			return fmt.Errorf("restart sequence %s at the source's value: %w", t.QualifiedName(), err)
		}
	}
	ts.Rows, ts.Done = 1, true
	return a.commitSnapshot(ctx, a.appendProgress(nil, ts, false))
}
