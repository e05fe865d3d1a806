package mysql

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	drv "github.com/go-sql-driver/mysql"

	"github.com/sluice-cdc/sluice/backoff"
	"github.com/sluice-cdc/sluice/binlog"
	"github.com/sluice-cdc/sluice/checkpoint"
	"github.com/sluice-cdc/sluice/mysqlconn"
)

// Config configures a MySQL/MariaDB sink.
type Config struct {
	DSN      mysqlconn.DSN
	Pipeline string
	// DDL is what to do with source DDL: "apply", "skip" or "stop".
	DDL string
	// OnConflict is what to do when the target lacks a row to update or
	// delete, or already has a row with an inserted key: "stop",
	// "overwrite" or "skip".
	OnConflict string
	// DDLDone lists DDL (by GTID or file:pos) applied by hand: recorded
	// as done without running them.
	DDLDone []string
	// CheckBeforeImage makes updates and deletes match the whole before
	// image, not just the key, so that a row changed on the target since
	// (by its own writers: a bidirectional pair) is a conflict instead of
	// being silently overwritten.
	CheckBeforeImage bool
	// TrackWriters remembers which source last wrote each recently
	// written key, so that a conflict between sources names both
	// transactions (several sources feeding one target).
	TrackWriters bool
	Logger       *slog.Logger
}

// Sink applies each source transaction as one target transaction, and
// writes the source's checkpoint in that same transaction (as Vitess's
// vplayer does with _vt.vreplication): after a crash at any point the
// checkpoint and the data agree, so nothing is lost or applied twice.
//
// Each source has its own connection; a source's transactions are applied
// one at a time, in order.
type Sink struct {
	cfg      Config
	log      *slog.Logger
	db       *sql.DB
	maxBatch int
	writers  *writerLog // nil unless cfg.TrackWriters

	mu       sync.Mutex
	appliers map[string]*applier
}

const (
	// The checkpoint of each (pipeline, source), written in the same
	// transaction as the rows it covers.
	checkpointTable = "`" + binlog.MarkSchema + "`.`" + binlog.MarkTable + "`"
	// A DDL started and not yet recorded: DDL is not transactional, so a
	// crash between running it and writing the checkpoint leaves this row,
	// and the replay tolerates "already done" errors.
	pendingTable = "`sluice`.`ddl_pending`"
)

var setupStatements = []string{
	"CREATE DATABASE IF NOT EXISTS `sluice`",
	`CREATE TABLE IF NOT EXISTS ` + checkpointTable + ` (
		pipeline VARCHAR(190) NOT NULL,
		source VARCHAR(190) NOT NULL,
		gtid_set LONGTEXT NOT NULL,
		binlog_file VARCHAR(255) NOT NULL,
		binlog_pos BIGINT UNSIGNED NOT NULL,
		updated_at DATETIME(6) NOT NULL,
		PRIMARY KEY (pipeline, source)
	) ENGINE=InnoDB`,
	`CREATE TABLE IF NOT EXISTS ` + pendingTable + ` (
		pipeline VARCHAR(190) NOT NULL,
		source VARCHAR(190) NOT NULL,
		ddl_id VARCHAR(255) NOT NULL,
		PRIMARY KEY (pipeline, source)
	) ENGINE=InnoDB`,
}

// Open connects to the target and creates sluice's tables there.
func Open(ctx context.Context, cfg Config) (*Sink, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	db, err := mysqlconn.Open(ctx, cfg.DSN, func(dc *drv.Config) {
		// UPDATE counts the rows it matched, not the rows it changed, so an
		// update that writes the values a row already has is not a conflict.
		dc.ClientFoundRows = true
		dc.Params["sql_mode"] = "'NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION'"
		dc.Params["foreign_key_checks"] = "0"
	})
	if err != nil {
		return nil, err
	}
	// Only when missing: even CREATE ... IF NOT EXISTS is written to the
	// target's binlog, and a reverse pipeline would read it at every start.
	var have int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME IN (?, ?)",
		binlog.MarkSchema, binlog.MarkTable, "ddl_pending").Scan(&have); err != nil {
		db.Close()
		return nil, fmt.Errorf("%s: %w", cfg.DSN, err)
	}
	for i := 0; have < 2 && i < len(setupStatements); i++ {
		if _, err := db.ExecContext(ctx, setupStatements[i]); err != nil {
			db.Close()
			return nil, fmt.Errorf("%s: create sluice's checkpoint tables: %w", cfg.DSN, err)
		}
	}
	var maxPacket int
	if err := db.QueryRowContext(ctx, "SELECT @@max_allowed_packet").Scan(&maxPacket); err != nil {
		db.Close()
		return nil, fmt.Errorf("%s: %w", cfg.DSN, err)
	}
	s := &Sink{cfg: cfg, log: log.With("sink", cfg.DSN.Addr()), db: db, appliers: map[string]*applier{}}
	if cfg.TrackWriters {
		s.writers = newWriterLog()
	}
	// One round trip carries up to this much SQL; well under the packet
	// limit, and small enough to keep memory flat.
	s.maxBatch = min(max(maxPacket/4, 64<<10), 4<<20)
	return s, nil
}

// DB is the target's handle (for verification and status).
func (s *Sink) DB() *sql.DB { return s.db }

// Close closes the target connections.
func (s *Sink) Close() error {
	s.mu.Lock()
	for _, a := range s.appliers {
		if a.conn != nil {
			a.conn.Close()
		}
	}
	s.appliers = map[string]*applier{}
	s.mu.Unlock()
	return s.db.Close()
}

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

// applier is one source's connection and buffers.
type applier struct {
	s      *Sink
	source string
	conn   *sql.Conn
	buf    []byte
	expect []int64

	retries, conflicts atomic.Int64
	// failing is the error being retried, nil while applying succeeds.
	failing atomic.Pointer[error]
}

// Stats returns how many transactions of a source were retried and how
// many row conflicts it met.
func (s *Sink) Stats(source string) (retries, conflicts int64) {
	a := s.applierFor(source)
	return a.retries.Load(), a.conflicts.Load()
}

// Health returns the error the sink is retrying for a source, or nil when
// it is not retrying.
func (s *Sink) Health(source string) error {
	if p := s.applierFor(source).failing.Load(); p != nil {
		return *p
	}
	return nil
}

func (s *Sink) applierFor(source string) *applier {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.appliers[source]
	if a == nil {
		a = &applier{s: s, source: source}
		s.appliers[source] = a
	}
	return a
}

// Apply applies t exactly once: as one target transaction that also
// records the checkpoint. See ApplyBatch.
func (s *Sink) Apply(ctx context.Context, source string, t *binlog.Txn) error {
	_, err := s.ApplyBatch(ctx, source, []*binlog.Txn{t})
	return err
}

// ApplyBatch applies transactions of one source in order, each exactly
// once and as its own target transaction with its checkpoint, and returns
// how many are applied. Retryable failures (deadlock, lost connection,
// target restart) are retried with backoff until ctx ends; after any
// failure the checkpoint says which transactions committed, so none is
// lost or applied twice. A conflict sends its transaction down the
// careful path, where on_conflict decides.
func (s *Sink) ApplyBatch(ctx context.Context, source string, txns []*binlog.Txn) (int, error) {
	a := s.applierFor(source)
	defer func() { a.failing.Store(nil) }()
	done := 0
	wait := backoff.Policy{Initial: 100 * time.Millisecond, Max: 10 * time.Second}.Timer()
	for attempt := 1; done < len(txns); attempt++ {
		err := a.applyRun(ctx, txns[done:])
		if err == nil {
			return len(txns), nil
		}
		if retryable(err) {
			a.reset()
		}
		// Which of them committed? The checkpoint is written in the same
		// transaction as the rows, so it knows. Nothing is applied again
		// before it has answered: re-applying a committed transaction would
		// move the checkpoint backwards.
		for {
			st, ok, cerr := s.Checkpoint(context.WithoutCancel(ctx), source)
			if cerr == nil {
				for ok && done < len(txns) && st.Covers(txns[done]) {
					done++
				}
				break
			}
			if !retryable(cerr) && !retryable(err) {
				return done, err
			}
			a.retries.Add(1)
			a.failing.Store(&cerr)
			d := wait.Next()
			s.log.Warn("target unreachable, retrying", "source", source, "txn", txnID(txns[done]), "attempt", attempt, "error", cerr.Error(), "in", d)
			if err := backoff.Sleep(ctx, d); err != nil {
				return done, err
			}
			attempt++
		}
		switch {
		case done == len(txns):
			return done, nil
		case isConflict(err):
			a.rollback(ctx)
			if err := a.applyCareful(ctx, txns[done]); err != nil {
				if retryable(err) {
					continue
				}
				return done, err
			}
			done++
			continue
		case !retryable(err) || ctx.Err() != nil:
			return done, err
		}
		a.retries.Add(1)
		a.failing.Store(&err)
		d := wait.Next()
		s.log.Warn("retrying", "source", source, "txn", txnID(txns[done]), "attempt", attempt, "error", err.Error(), "in", d)
		if err := backoff.Sleep(ctx, d); err != nil {
			return done, err
		}
	}
	return done, nil
}

// txnID names a transaction: its GTID, or its end position.
func txnID(t *binlog.Txn) string {
	if !t.GTID.IsZero() {
		return t.GTID.String()
	}
	return t.Pos.String()
}

// reset drops the connection after a failure; the next attempt opens
// another.
func (a *applier) reset() {
	if a.conn != nil {
		_ = a.conn.Raw(func(any) error { return driver.ErrBadConn })
		a.conn.Close()
		a.conn = nil
	}
}

func (a *applier) ensureConn(ctx context.Context) error {
	if a.conn != nil {
		return nil
	}
	c, err := a.s.db.Conn(ctx)
	if err != nil {
		return err
	}
	a.conn = c
	return nil
}

// exec runs one or more statements in one round trip and returns each
// statement's affected-row count.
func (a *applier) exec(ctx context.Context, query string) ([]int64, error) {
	if err := a.ensureConn(ctx); err != nil {
		return nil, err
	}
	var affected []int64
	err := a.conn.Raw(func(dc any) error {
		res, err := dc.(driver.ExecerContext).ExecContext(ctx, query, nil)
		if err != nil {
			return err
		}
		affected = res.(drv.Result).AllRowsAffected()
		return nil
	})
	return affected, err
}

func (a *applier) rollback(ctx context.Context) {
	if a.conn != nil {
		if _, err := a.exec(context.WithoutCancel(ctx), "ROLLBACK"); err != nil {
			a.reset()
		}
	}
}

// appendCheckpoint appends the statement recording t as applied.
func (a *applier) appendCheckpoint(dst []byte, t *binlog.Txn) []byte {
	dst = append(dst, "INSERT INTO "+checkpointTable+" (pipeline, source, gtid_set, binlog_file, binlog_pos, updated_at) VALUES ("...)
	dst = AppendLiteral(dst, a.s.cfg.Pipeline)
	dst = append(dst, ',')
	dst = AppendLiteral(dst, a.source)
	dst = append(dst, ',')
	dst = AppendLiteral(dst, t.Executed.String())
	dst = append(dst, ',')
	dst = AppendLiteral(dst, t.Pos.File)
	dst = append(dst, ',')
	dst = strconv.AppendUint(dst, uint64(t.Pos.Pos), 10)
	dst = append(dst, ",UTC_TIMESTAMP(6)) ON DUPLICATE KEY UPDATE gtid_set=VALUES(gtid_set), binlog_file=VALUES(binlog_file), "+
		"binlog_pos=VALUES(binlog_pos), updated_at=VALUES(updated_at)"...)
	return dst
}

// applyDDL runs a statement transaction on the target under the ddl policy.
func (a *applier) applyDDL(ctx context.Context, t *binlog.Txn) error {
	s := a.s
	id := txnID(t)
	record := func() error {
		q := a.appendCheckpoint([]byte("START TRANSACTION;"), t)
		q = fmt.Appendf(q, ";DELETE FROM %s WHERE pipeline = ", pendingTable)
		q = AppendLiteral(q, s.cfg.Pipeline)
		q = append(q, " AND source = "...)
		q = AppendLiteral(q, a.source)
		q = append(q, ";COMMIT"...)
		_, err := a.exec(ctx, string(q))
		if err != nil {
			a.rollback(ctx)
		}
		return err
	}
	switch {
	case slices.Contains(s.cfg.DDLDone, id):
		s.log.Info("DDL marked as done by hand", "source", a.source, "ddl", id)
		return record()
	case s.cfg.DDL == "skip":
		s.log.Info("DDL skipped (ddl: skip)", "source", a.source, "ddl", id, "schema", t.DDL.Schema)
		return record()
	case s.cfg.DDL == "stop":
		return &DDLStopError{ID: id, Schema: t.DDL.Schema, SQL: t.DDL.SQL}
	}

	if t.DDL.Merged {
		if err := a.checkMerged(ctx, t); err != nil {
			return err
		}
	}

	// Was this DDL started before a crash?
	var pending string
	if err := a.ensureConn(ctx); err != nil {
		return err
	}
	err := a.conn.QueryRowContext(ctx, "SELECT ddl_id FROM "+pendingTable+" WHERE pipeline = ? AND source = ?", s.cfg.Pipeline, a.source).Scan(&pending)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	replay := pending == id
	if !replay {
		q := fmt.Appendf(nil, "REPLACE INTO %s (pipeline, source, ddl_id) VALUES (", pendingTable)
		q = AppendLiteral(q, s.cfg.Pipeline)
		q = append(q, ',')
		q = AppendLiteral(q, a.source)
		q = append(q, ',')
		q = AppendLiteral(q, id)
		q = append(q, ')')
		if _, err := a.exec(ctx, string(q)); err != nil {
			return err
		}
	}
	// So that a pipeline reading the target does not send the DDL back.
	if _, err := a.exec(ctx, binlog.DDLMarkStatement(s.cfg.Pipeline, a.source)); err != nil {
		return err
	}
	if db := DDLDatabase(t.DDL); db != "" {
		if _, err := a.exec(ctx, "USE "+QuoteIdent(db)); err != nil && errorNumber(err) != 1049 {
			return err
		}
	}
	if _, err := a.exec(ctx, t.DDL.SQL); err != nil {
		if retryable(err) {
			return err
		}
		why, ierr := a.whyInEffect(ctx, t, err, replay)
		if ierr != nil {
			return ierr
		}
		if why == "" {
			return fmt.Errorf("DDL %s failed on the target: %w; statement %q in database %q. Fix the target (e.g. apply an equivalent statement by hand) "+
				"and add %q to sink.ddl_done, or set ddl: skip", id, err, truncate(t.DDL.SQL, 200), t.DDL.Schema, id)
		}
		s.log.Info("DDL already in effect on the target", "why", why, "source", a.source, "ddl", id, "error", err.Error())
		return record()
	}
	s.log.Info("DDL applied", "source", a.source, "ddl", id, "schema", t.DDL.Schema)
	return record()
}
