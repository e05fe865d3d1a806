package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	drv "github.com/go-sql-driver/mysql"

	"github.com/sluice-cdc/sluice/backoff"
	"github.com/sluice-cdc/sluice/binlog"
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
	// SnapshotSkipBinlog writes the initial snapshot's rows (and the
	// TRUNCATE before a table copied again) with sql_log_bin = 0, on
	// connections of their own (snapshotDB), as myloader does by default:
	// the target's binlog does not get a copy of the data, and neither do
	// its replicas. Streamed transactions are always logged.
	SnapshotSkipBinlog bool
	Logger             *slog.Logger
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

	// seeding: source + "\x00" + schema.table of the target tables an
	// incremental snapshot is seeding (incremental.go).
	seeding sync.Map

	// snapDB: the initial snapshot's connections when it skips the binlog
	// (Config.SnapshotSkipBinlog), opened at its first write; rowsPool:
	// the connections its rows are written with (rowsDB).
	snapMu   sync.Mutex
	snapDB   *sql.DB
	rowsPool *sql.DB
	// rowsBinary: rowsPool's sessions are binary (MariaDB), where a
	// chunk's rows go as parameters (insertBinary); rowsBulk: which of
	// its connections run the bulk command.
	rowsBinary atomic.Bool
	rowsBulk   *mysqlconn.Bulk
	// bulkRefused: the target refused the bulk command (insertBinary).
	bulkRefused atomic.Bool

	// snapshotColumns: sluice.snapshot has the resume columns (snapshot.go).
	snapshotColumns atomic.Bool
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

// targetSession is every target connection's session.
func targetSession(dc *drv.Config) {
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
}

// Open connects to the target and creates sluice's tables there.
func Open(ctx context.Context, cfg Config) (*Sink, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	db, err := mysqlconn.Open(ctx, cfg.DSN, targetSession)
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
	s.snapMu.Lock()
	if s.rowsPool != nil && s.rowsPool != s.db && s.rowsPool != s.snapDB {
		s.rowsPool.Close()
	}
	s.rowsPool = nil
	if s.snapDB != nil {
		s.snapDB.Close()
		s.snapDB = nil
	}
	s.snapMu.Unlock()
	return s.db.Close()
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
	// minItem replaces minItemTxns when set (tests).
	minItem int
	// items counts the items applied, timers where the workers' time went.
	items  atomic.Int64
	timers applyTimers

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
