package mysql

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	drv "github.com/go-sql-driver/mysql"

	"github.com/sluice-cdc/sluice/backoff"
	"github.com/sluice-cdc/sluice/binlog"
	"github.com/sluice-cdc/sluice/binlog/schema"
	"github.com/sluice-cdc/sluice/checkpoint"
	"github.com/sluice-cdc/sluice/mysqlconn"
	"github.com/sluice-cdc/sluice/sqltext"
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
	// Skip lists transactions (by GTID or file:pos) to record as done
	// without applying them: the way past a transaction that cannot be
	// applied, decided by an operator.
	Skip []string
	// CheckBeforeImage makes updates and deletes match the whole before
	// image, not just the key, so that a row changed on the target since
	// (by its own writers: a bidirectional pair) is a conflict instead of
	// being silently overwritten.
	CheckBeforeImage bool
	// TrackWriters remembers which source last wrote each recently
	// written key, so that a conflict between sources names both
	// transactions (several sources feeding one target).
	TrackWriters bool
	// Workers is the number of target connections per source that apply
	// transactions touching different rows at the same time, committing
	// in source order (parallel.go); 0 or 1 applies one transaction at a
	// time on one connection.
	Workers int
	Logger  *slog.Logger
}

// Sink applies each source transaction as one target transaction, and
// writes the source's checkpoint in that same transaction (as Vitess's
// vplayer does with _vt.vreplication): after a crash at any point the
// checkpoint and the data agree, so nothing is lost or applied twice.
//
// Each source has its own connections: with Config.Workers above 1,
// transactions on different rows run at once and commit in source order
// (parallel.go); otherwise one at a time, in order.
type Sink struct {
	cfg      Config
	log      *slog.Logger
	db       *sql.DB
	maxBatch int
	writers  *writerLog // nil unless cfg.TrackWriters
	// epoch fences every checkpoint write while this sink holds the
	// pipeline's lease (lease.go); 0 writes unfenced.
	epoch    atomic.Uint64
	leaseMu  sync.Mutex
	lockConn *sql.Conn     // holds the pipeline's named lock
	ttl      time.Duration // of the lease held

	mu       sync.Mutex
	appliers map[string]*applier

	// The target's unique keys per table definition (parallel.go).
	seed   maphash.Seed
	keysMu sync.Mutex
	keys   map[*binlog.Table]tableKeysOf

	// The target's tables with foreign keys, either side (fk.go); nil
	// until read, fkAll when they could not be read.
	fkMu     sync.Mutex
	fkTables map[[2]string]bool
	fkAll    bool
}

const (
	// The checkpoint of each (pipeline, source), written in the same
	// transaction as the rows it covers.
	checkpointTable = "`" + markSchema + "`.`" + markTable + "`"
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
		// The session must store exactly what the source stored: no strict
		// mode (an invalid ENUM value, index 0, is written as 0), zero dates
		// allowed (no NO_ZERO_DATE), dates like 2020-02-31 that a source with
		// ALLOW_INVALID_DATES stored, and an explicit 0 in an AUTO_INCREMENT
		// column kept.
		dc.Params["sql_mode"] = "'NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION,ALLOW_INVALID_DATES'"
		dc.Params["foreign_key_checks"] = "0"
	})
	if err != nil {
		return nil, err
	}
	// Only when missing: even CREATE ... IF NOT EXISTS is written to the
	// target's binlog, and a reverse pipeline would read it at every start.
	var have int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME IN (?, ?)",
		markSchema, markTable, "ddl_pending").Scan(&have); err != nil {
		db.Close()
		return nil, fmt.Errorf("%s: %w", cfg.DSN, err)
	}
	for i := 0; have < 2 && i < len(setupStatements); i++ {
		if _, err := db.ExecContext(ctx, setupStatements[i]); err != nil {
			db.Close()
			return nil, fmt.Errorf("%s: create sluice's checkpoint tables: %w", cfg.DSN, err)
		}
	}
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?", markSchema, leaseName).Scan(&have); err != nil {
		db.Close()
		return nil, fmt.Errorf("%s: %w", cfg.DSN, err)
	}
	if have == 0 {
		if _, err := db.ExecContext(ctx, createLeaseTable); err != nil {
			db.Close()
			return nil, fmt.Errorf("%s: create sluice's lease table: %w", cfg.DSN, err)
		}
	}
	var maxPacket int
	if err := db.QueryRowContext(ctx, "SELECT @@max_allowed_packet").Scan(&maxPacket); err != nil {
		db.Close()
		return nil, fmt.Errorf("%s: %w", cfg.DSN, err)
	}
	s := &Sink{cfg: cfg, log: log.With("sink", cfg.DSN.Addr()), db: db, appliers: map[string]*applier{},
		seed: maphash.MakeSeed(), keys: map[*binlog.Table]tableKeysOf{}}
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
		for _, w := range a.all() {
			if w.conn != nil {
				w.conn.Close()
			}
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
	// lastUsed: when the connection last ran a statement.
	lastUsed time.Time

	retries, conflicts atomic.Int64
	// failing is the error being retried, nil while applying succeeds.
	failing atomic.Pointer[error]

	// pool holds the source's other worker connections (parallel.go).
	poolMu sync.Mutex
	pool   []*applier
	// itemNanos averages how long items take to execute; yields counts
	// items that gave their locks up to the item before (parallel.go).
	itemNanos, yields atomic.Int64

	// fkOn is the connection's foreign_key_checks when fkKnown (fk.go);
	// snapshot: the applier copies a snapshot, with the checks off.
	fkOn, fkKnown, snapshot bool
}

// all is the applier and its workers.
func (a *applier) all() []*applier {
	a.poolMu.Lock()
	defer a.poolMu.Unlock()
	return append([]*applier{a}, a.pool...)
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
	for _, w := range a.all() {
		if w.conn != nil && s.epoch.Load() > 0 && time.Since(w.lastUsed) > s.ttl/2 {
			// Under a lease the server closes sessions idle for the TTL; no
			// transaction is open between batches, so a new one loses nothing.
			w.reset()
		}
	}
	defer func() { a.failing.Store(nil) }()
	done := 0
	wait := backoff.Policy{Initial: 100 * time.Millisecond, Max: 10 * time.Second}.Timer()
	// The target is probed (its checkpoint read) at least every second
	// while it is down, so that applying resumes within about a second of
	// it answering again, whatever backoff the failures built up.
	probe := backoff.Policy{Initial: 100 * time.Millisecond, Max: time.Second}.Timer()
	// After a failure of the parallel applier the rest of the run goes
	// one transaction at a time.
	serial := false
	for attempt := 1; done < len(txns); attempt++ {
		probed, parallel := false, false
		var err error
		if !serial && a.parallelOK(txns[done:]) {
			parallel = true
			err = a.applyParallel(ctx, txns[done:])
			serial = err != nil
		} else {
			err = a.applyRun(ctx, txns[done:])
		}
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
			probed = true
			d := probe.Next()
			s.log.Warn("target unreachable, retrying", "source", source, "txn", txns[done].ID(), "attempt", attempt, "error", cerr.Error(), "in", d)
			if err := backoff.Sleep(ctx, d); err != nil {
				return done, err
			}
			attempt++
		}
		if !errors.Is(err, ErrFenced) && !retryable(err) && a.fenced(ctx) {
			// A process that lost its lease (frozen, then resumed) meets
			// the rows its successor wrote: not a conflict.
			err = ErrFenced
		}
		switch {
		case done == len(txns):
			return done, nil
		case errors.Is(err, ErrFenced):
			a.rollback(ctx)
			return done, err
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
		case probed:
			// The connection failed, and the target has answered since:
			// again at once.
			continue
		case parallel && lockError(err):
			// Workers waited for each other's locks: again at once, one
			// transaction at a time.
			continue
		}
		a.retries.Add(1)
		a.failing.Store(&err)
		d := wait.Next()
		s.log.Warn("retrying", "source", source, "txn", txns[done].ID(), "attempt", attempt, "error", err.Error(), "in", d)
		if err := backoff.Sleep(ctx, d); err != nil {
			return done, err
		}
	}
	return done, nil
}

// reset drops the connection after a failure; the next attempt opens
// another.
func (a *applier) reset() {
	a.fkKnown = false
	if a.conn != nil {
		_ = a.conn.Raw(func(any) error { return driver.ErrBadConn })
		a.conn.Close()
		a.conn = nil
	}
}

func (a *applier) ensureConn(ctx context.Context) error {
	a.lastUsed = time.Now()
	if a.conn != nil {
		return nil
	}
	c, err := a.s.db.Conn(ctx)
	if err != nil {
		return err
	}
	// The fence (lease.go) relies on the checkpoint's INSERT … SELECT
	// locking the lease row it reads, which READ COMMITTED would not do.
	setup := []string{"SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ"}
	if a.s.epoch.Load() > 0 {
		// A frozen process's open transaction must not hold the lease row
		// past the TTL: the server closes an idle session after this.
		setup = append(setup, "SET SESSION wait_timeout = "+strconv.FormatInt(ttlSeconds(a.s.ttl), 10))
	}
	for _, q := range setup {
		if _, err := c.ExecContext(ctx, q); err != nil {
			c.Close()
			return err
		}
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

// applyDDL runs a statement transaction on the target under the ddl policy.
func (a *applier) applyDDL(ctx context.Context, t *binlog.Txn) error {
	s := a.s
	defer s.forgetKeys() // the DDL may change the target's unique keys
	id := t.ID()
	record := func() error { return a.recordOnly(ctx, t) }
	if t.Len() > 0 {
		// CREATE TABLE ... SELECT: the statement and its rows are one
		// source transaction. The rows and the checkpoint go in one target
		// transaction once the table exists; a crash in between replays
		// the statement (found in effect) and then the rows.
		record = func() error {
			if err := a.applyFast(ctx, t, false, false); err != nil {
				a.rollback(ctx)
				return err
			}
			return nil
		}
	}
	switch {
	case slices.Contains(s.cfg.DDLDone, id):
		s.log.Info("DDL marked as done by hand", "source", a.source, "ddl", id)
		return record()
	case s.cfg.DDL == "skip":
		s.log.Info("DDL skipped (ddl: skip)", "source", a.source, "ddl", id, "schema", t.DDL.Schema)
		return record()
	case schema.ProgramKind(t.DDL.SQL) != "":
		// As a replica does not run them for the rows it applies: the rows
		// a trigger or an event writes on the source arrive as rows, so on
		// the target they would be written twice.
		kind := schema.ProgramKind(t.DDL.SQL)
		s.log.Warn("not applying a "+kind+" statement: the rows it writes on the source arrive as rows, and on the target it would write them again; create the "+kind+" on the target when it becomes a primary",
			"source", a.source, "ddl", id, "schema", t.DDL.Schema, "statement", truncate(schema.Redact(t.DDL.SQL), 200))
		return record()
	case s.cfg.DDL == "stop":
		return &DDLStopError{ID: id, Schema: t.DDL.Schema, SQL: t.DDL.SQL}
	}

	ddl, derr := a.ddlForTarget(ctx, t) // lettercase.go
	if derr != nil {
		return derr
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
		q = sqltext.AppendString(q, s.cfg.Pipeline)
		q = append(q, ',')
		q = sqltext.AppendString(q, a.source)
		q = append(q, ',')
		q = sqltext.AppendString(q, id)
		q = append(q, ')')
		if _, err := a.exec(ctx, string(q)); err != nil {
			return err
		}
	}
	if err := a.checkLease(ctx); err != nil {
		return err
	}
	if db := DDLDatabase(ddl); db != "" {
		if _, err := a.exec(ctx, "USE "+sqltext.QuoteIdent(db)); err != nil {
			if errorNumber(err) != 1049 {
				return err
			}
			// The session's default database does not exist on the target
			// (the filter leaves it out). That is fine for a statement that
			// names its tables' databases, run without a default database;
			// anything else would run in the wrong database.
			if !qualifiedOnly(t.DDL) {
				return fmt.Errorf("DDL %s: its database %q does not exist on the target (%w), and the statement %q names a table without its database. "+
					"Create the database on the target, then restart; or add %q to sink.ddl_done, or set ddl: skip",
					id, t.DDL.Schema, err, truncate(schema.Redact(t.DDL.SQL), 200), id)
			}
			a.reset() // a new connection, with no default database
			if err := a.ensureConn(ctx); err != nil {
				return err
			}
		}
	}
	// So that a pipeline reading the target does not send the DDL back.
	// (After USE: the mark is known by the connection's thread id.)
	if _, err := a.exec(ctx, ddlMarkStatement(s.cfg.Pipeline, a.source)); err != nil {
		return err
	}
	restore, err := a.setSession(ctx, t.DDL.Session)
	if err != nil {
		return err
	}
	_, err = a.exec(ctx, ddl.SQL)
	if rerr := restore(); rerr != nil && err == nil {
		a.reset() // the session is not the sink's any more
		return rerr
	}
	if err != nil {
		if retryable(err) {
			return err
		}
		why, ierr := a.whyInEffect(ctx, t, err, replay)
		if ierr != nil {
			return ierr
		}
		if why == "" {
			return fmt.Errorf("DDL %s failed on the target: %w; statement %q in database %q. Fix the target (e.g. apply an equivalent statement by hand) "+
				"and add %q to sink.ddl_done, or set ddl: skip", id, redactedError{err, t.DDL.SQL}, truncate(schema.Redact(t.DDL.SQL), 200), t.DDL.Schema, id)
		}
		s.log.Info("DDL already in effect on the target", "why", why, "source", a.source, "ddl", id, "error", schema.RedactError(err.Error(), t.DDL.SQL))
		return record()
	}
	s.log.Info("DDL applied", "source", a.source, "ddl", id, "schema", t.DDL.Schema)
	// The DDL may have added or dropped foreign keys, and its session
	// settings were put back (fk.go).
	s.fkChanged()
	a.fkKnown = false
	return record()
}

// qualifiedOnly reports whether a statement names the database of every
// table it names.
func qualifiedOnly(d *binlog.DDL) bool {
	st := schema.Classify(d.Schema, d.SQL, ddlMode(d))
	if !st.Parsed || st.Kind != schema.TableStatement {
		return false
	}
	for _, t := range st.Tables {
		if !t.Qualified {
			return false
		}
	}
	return true
}

func ddlMode(d *binlog.DDL) schema.SQLMode {
	if d.Session == nil {
		return 0
	}
	return schema.SQLMode(d.Session.SQLMode)
}

// setSession gives the connection the source session's state that changes
// what a DDL does, as a replica does before it runs a statement: the
// statement's time (DEFAULT CURRENT_TIMESTAMP fills existing rows with
// it), sql_mode, time_zone, foreign_key_checks, the character set and
// collation variables and explicit_defaults_for_timestamp. The returned
// function puts the sink's own settings back.
func (a *applier) setSession(ctx context.Context, ss *binlog.Session) (func() error, error) {
	if ss == nil {
		return func() error { return nil }, nil
	}
	restore, err := a.trySession(ctx, ss, sessionVars(ss, false))
	switch errorNumber(err) {
	case 1193, // unknown system variable
		1231, // a value the variable does not take (a sql_mode of the other flavor)
		1273, // unknown collation
		1115: // unknown character set
		// The target's flavor or version lacks something the source has:
		// what both have (the sql_modes both know, no character set ids,
		// no explicit_defaults_for_timestamp).
		a.s.log.Warn("the target does not take every session setting of the source; running the DDL with those it takes",
			"source", a.source, "sql_mode", ss.SQLModeNames, "error", err.Error())
		restore, err = a.trySession(ctx, ss, sessionVars(ss, true))
	}
	if err != nil {
		return nil, fmt.Errorf("set the source session's variables for the DDL: %w", err)
	}
	return restore, nil
}

type sessionVar struct{ name, value string }

// sessionVars lists the variables to set for a DDL; portable keeps what
// MySQL and MariaDB both have.
func sessionVars(ss *binlog.Session, portable bool) []sessionVar {
	var vars []sessionVar
	if ss.HasSQLMode {
		modes := ss.SQLModeNames
		if portable {
			modes = binlog.PortableSQLModes(modes)
		}
		vars = append(vars, sessionVar{"sql_mode", string(sqltext.AppendString(nil, modes))})
	}
	if ss.TimeZone != "" {
		vars = append(vars, sessionVar{"time_zone", string(sqltext.AppendString(nil, ss.TimeZone))})
	}
	if ss.HasFlags {
		vars = append(vars, sessionVar{"foreign_key_checks", boolVar(ss.ForeignKeyChecks)})
	}
	if ss.HasCharset && !portable {
		vars = append(vars,
			sessionVar{"character_set_client", strconv.Itoa(int(ss.CharsetClient))},
			sessionVar{"collation_connection", strconv.Itoa(int(ss.CollationConnection))},
			sessionVar{"collation_server", strconv.Itoa(int(ss.CollationServer))})
	}
	if ss.HasExplicitDefaultsForTimestamp && !portable {
		vars = append(vars, sessionVar{"explicit_defaults_for_timestamp", boolVar(ss.ExplicitDefaultsForTimestamp)})
	}
	return vars
}

// trySession saves the connection's values of vars, sets the source's, and
// returns the function that puts the saved ones back.
func (a *applier) trySession(ctx context.Context, ss *binlog.Session, vars []sessionVar) (func() error, error) {
	saved := make([]sql.NullString, len(vars))
	if len(vars) > 0 {
		q := "SELECT "
		ptrs := make([]any, len(vars))
		for i, v := range vars {
			if i > 0 {
				q += ","
			}
			q += "@@SESSION." + v.name
			ptrs[i] = &saved[i]
		}
		if err := a.conn.QueryRowContext(ctx, q).Scan(ptrs...); err != nil {
			return nil, err
		}
	}
	q := "SET TIMESTAMP=" + strconv.FormatInt(ss.Timestamp.Unix(), 10)
	if us := ss.Timestamp.Nanosecond() / 1000; us > 0 {
		q += fmt.Sprintf(".%06d", us)
	}
	for _, v := range vars {
		q += ", @@SESSION." + v.name + "=" + v.value
	}
	if _, err := a.exec(ctx, q); err != nil {
		return nil, err
	}
	return func() error {
		q := "SET TIMESTAMP=DEFAULT"
		for i, v := range vars {
			q += ", @@SESSION." + v.name + "="
			switch {
			case saved[i].Valid && isDigits(saved[i].String):
				q += saved[i].String
			case saved[i].Valid:
				q += string(sqltext.AppendString(nil, saved[i].String))
			default:
				q += "DEFAULT"
			}
		}
		_, err := a.exec(context.WithoutCancel(ctx), q)
		return err
	}, nil
}

func boolVar(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

func isDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

// redactedError is a target's error about a statement, with the
// statement's passwords hidden from its text.
type redactedError struct {
	err error
	sql string
}

func (e redactedError) Error() string { return schema.RedactError(e.err.Error(), e.sql) }
func (e redactedError) Unwrap() error { return e.err }
