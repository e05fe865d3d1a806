package snapshot

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-cdc/sluice/backoff"
	"github.com/sluice-cdc/sluice/binlog"
	"github.com/sluice-cdc/sluice/binlog/schema"
	"github.com/sluice-cdc/sluice/checkpoint"
	"github.com/sluice-cdc/sluice/mysqlconn"
)

// The global-lock path (MySQL sources). MySQL does not report the binlog
// position of a consistent snapshot (MariaDB's binlog_snapshot_file), so
// the position is taken as mydumper takes it: FLUSH TABLES WITH READ LOCK
// on a connection of its own stops every commit; under it, each reader
// connection opens its consistent snapshot and the position is read (SHOW
// MASTER STATUS, or SHOW BINARY LOG STATUS from MySQL 8.2, and
// @@GLOBAL.gtid_executed); UNLOCK TABLES follows at once. Nothing commits
// while the lock is held, so every reader's read view holds exactly the
// transactions up to that one position. The lock is held for the time of
// a few statements (milliseconds); the readers then copy every table at
// that position, one table after another on each reader, each between a
// SAVEPOINT and a ROLLBACK TO SAVEPOINT, which on MySQL releases the
// table's metadata lock when its copy ends (as mysqldump
// --single-transaction relies on; MariaDB with the binlog on keeps it
// until the transaction ends).
//
// LOCK INSTANCE FOR BACKUP (MySQL 8.0) is not used: it blocks DDL but not
// commits, so it cannot pin a position by itself; mydumper takes it
// beside FLUSH TABLES WITH READ LOCK and holds it for the whole dump to
// keep DDL out, which would block every DDL on the server for hours. A
// DDL on a table before its copy instead stops that copy (the definition
// check in copyTable), as on MariaDB.
//
// FLUSH TABLES WITH READ LOCK waits for every running statement to end,
// and every writer waits behind it meanwhile: a 10-minute SELECT would
// stall the server's writes for 10 minutes. So the lock is only asked for
// when no statement has run for longLock or more (the processlist guard),
// with lock_wait_timeout = 5 so that a wait never lasts longer, and is
// retried with a backoff for lockBudget before giving up.

// Variables for tests.
var (
	// longStatement: a statement running this long defers the lock.
	longStatement = 2 * time.Second
	// lockBudget is how long the lock is retried before the snapshot
	// gives up.
	lockBudget = 10 * time.Minute
	// lockWaitTimeout bounds one FLUSH TABLES WITH READ LOCK, in
	// seconds (lock_wait_timeout), so that writers queue behind it no
	// longer.
	lockWaitTimeout = 5
)

// server is what the snapshot needs to know of the source's server.
type server struct {
	version      string
	mariadb      bool
	major, minor int
}

func detectServer(ctx context.Context, q queryer) (server, error) {
	var v string
	if err := q.QueryRowContext(ctx, "SELECT VERSION()").Scan(&v); err != nil {
		return server{}, fmt.Errorf("read the source's version: %w", err)
	}
	return parseVersion(v), nil
}

// parseVersion reads VERSION(): "8.4.3", "8.0.36-28" (Percona),
// "10.11.6-MariaDB-log".
func parseVersion(v string) server {
	s := server{version: v, mariadb: strings.Contains(strings.ToLower(v), "mariadb")}
	num, _, _ := strings.Cut(v, "-")
	parts := strings.Split(num, ".")
	if len(parts) >= 2 {
		s.major, _ = strconv.Atoi(parts[0])
		s.minor, _ = strconv.Atoi(parts[1])
	}
	return s
}

func (s server) atLeast(major, minor int) bool {
	return s.major > major || s.major == major && s.minor >= minor
}

// statusStatement shows the binlog's current file and position: MySQL
// 8.2 renamed SHOW MASTER STATUS, and 8.4 removed the old name.
func (s server) statusStatement() string {
	if !s.mariadb && s.atLeast(8, 2) {
		return "SHOW BINARY LOG STATUS"
	}
	return "SHOW MASTER STATUS"
}

// parseStatus reads a row of SHOW MASTER STATUS (SHOW BINARY LOG STATUS):
// File, Position and, from MySQL, Executed_Gtid_Set (hasGTID).
func parseStatus(cols []string, row []sql.NullString) (pos binlog.Position, executed string, hasGTID bool, err error) {
	var offset string
	for i, c := range cols {
		switch strings.ToLower(c) {
		case "file":
			pos.File = row[i].String
		case "position":
			offset = row[i].String
		case "executed_gtid_set":
			executed, hasGTID = row[i].String, true
		}
	}
	if pos.File == "" {
		return pos, "", false, errors.New("binlog status: no file: the source needs log_bin")
	}
	if pos.Pos, err = strconv.ParseUint(offset, 10, 64); err != nil {
		return pos, "", false, fmt.Errorf("binlog status: position %q: %w", offset, err)
	}
	return pos, executed, hasGTID, nil
}

// binlogStatus reads the source's binlog position now: on MySQL its
// GTID set is @@GLOBAL.gtid_executed (empty with gtid_mode OFF: streaming
// then starts at the file position), on MariaDB the GTID position of the
// file position (BINLOG_GTID_POS).
func binlogStatus(ctx context.Context, conn *sql.Conn, srv server) (checkpoint.State, error) {
	var at checkpoint.State
	rows, err := conn.QueryContext(ctx, srv.statusStatement())
	if err != nil {
		return at, fmt.Errorf("%s: %w", srv.statusStatement(), err)
	}
	cols, err := rows.Columns()
	if err != nil {
		rows.Close()
		return at, err
	}
	row, ptrs := stringRow(len(cols))
	if !rows.Next() {
		rows.Close()
		if err := rows.Err(); err != nil {
			return at, fmt.Errorf("%s: %w", srv.statusStatement(), err)
		}
		return at, fmt.Errorf("%s returned nothing: the source needs log_bin", srv.statusStatement())
	}
	err = rows.Scan(ptrs...)
	rows.Close()
	if err != nil {
		return at, fmt.Errorf("%s: %w", srv.statusStatement(), err)
	}
	pos, executed, hasGTID, err := parseStatus(cols, row)
	if err != nil {
		return at, err
	}
	at.Pos = pos
	var gtid sql.NullString
	switch {
	case srv.mariadb:
		err = conn.QueryRowContext(ctx, "SELECT BINLOG_GTID_POS(?, ?)", pos.File, pos.Pos).Scan(&gtid)
	case hasGTID:
		gtid.String = executed
	default:
		err = conn.QueryRowContext(ctx, "SELECT @@GLOBAL.gtid_executed").Scan(&gtid)
	}
	if err != nil {
		return at, fmt.Errorf("the GTID set at %s: %w", pos, err)
	}
	if at.GTID, err = binlog.ParseGTIDSet(gtid.String); err != nil {
		return at, fmt.Errorf("the GTID set at %s: %w", pos, err)
	}
	return at, nil
}

// stringRow is a row of n columns read as text, and the pointers
// rows.Scan takes for it.
func stringRow(n int) ([]sql.NullString, []any) {
	row := make([]sql.NullString, n)
	ptrs := make([]any, n)
	for i := range row {
		ptrs[i] = &row[i]
	}
	return row, ptrs
}

// longRunning is a statement that would hold the global read lock up.
type longRunning struct {
	id   uint64
	user string
	secs int64
	info string
}

// longStatements lists the statements running for longStatement or
// more, other than self's (SHOW PROCESSLIST: without the PROCESS
// privilege, it only shows the account's own).
func longStatements(ctx context.Context, conn *sql.Conn, self uint64) ([]longRunning, error) {
	rows, err := conn.QueryContext(ctx, "SHOW FULL PROCESSLIST")
	if err != nil {
		return nil, fmt.Errorf("SHOW FULL PROCESSLIST: %w", err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	row, ptrs := stringRow(len(cols))
	idx := map[string]int{}
	for i, c := range cols {
		idx[strings.ToLower(c)] = i
	}
	cell := func(name string) string {
		if i, ok := idx[name]; ok {
			return row[i].String
		}
		return ""
	}
	var out []longRunning
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		// Only client statements: not idle connections, replication
		// threads (Binlog Dump, system user) or daemons.
		if cell("command") != "Query" || cell("user") == "system user" {
			continue
		}
		id, _ := strconv.ParseUint(cell("id"), 10, 64)
		secs, _ := strconv.ParseFloat(cell("time"), 64)
		if id == self || time.Duration(secs*float64(time.Second)) < longStatement {
			continue
		}
		out = append(out, longRunning{id: id, user: cell("user"), secs: int64(secs), info: schema.Shorten(cell("info"), 200)})
	}
	return out, rows.Err()
}

// openLocked opens n readers, each in a consistent snapshot, all at one
// position (each reader's held), under a brief FLUSH TABLES WITH READ
// LOCK.
func openLocked(ctx context.Context, db *sql.DB, srv server, n int, log *slog.Logger) ([]*reader, error) {
	// The connections are made before the lock: a connect under it
	// would hold it longer.
	readers := make([]*reader, 0, n)
	fail := func(err error) ([]*reader, error) {
		for _, r := range readers {
			r.close()
		}
		return nil, err
	}
	for range n {
		r, err := newGlobalReader(ctx, db, srv)
		if err != nil {
			return fail(err)
		}
		readers = append(readers, r)
	}
	lock, err := db.Conn(ctx)
	if err != nil {
		return fail(err)
	}
	defer func() {
		// The connection goes back to the pool: without the short
		// lock_wait_timeout.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		_, _ = lock.ExecContext(rctx, "SET SESSION lock_wait_timeout = DEFAULT")
		cancel()
		lock.Close()
	}()
	var self uint64
	if err := lock.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&self); err != nil {
		return fail(err)
	}
	if _, err := lock.ExecContext(ctx, "SET SESSION lock_wait_timeout = "+strconv.Itoa(lockWaitTimeout)); err != nil {
		return fail(err)
	}

	deadline := time.Now().Add(lockBudget)
	retry := backoff.Policy{Initial: time.Second, Max: 30 * time.Second}.Timer()
	for attempt := 1; ; attempt++ {
		why, err := tryLock(ctx, lock, self, log)
		if err != nil {
			return fail(err)
		}
		if why == "" {
			break
		}
		wait := retry.Next()
		if time.Now().Add(wait).After(deadline) {
			return fail(fmt.Errorf("no global read lock (FLUSH TABLES WITH READ LOCK) in %s: %s; take the snapshot when no long statement runs on the source", lockBudget, why))
		}
		log.Info("the global read lock waits: retrying", "reason", why, "attempt", attempt, "retry_in", wait.String())
		if err := backoff.Sleep(ctx, wait); err != nil {
			return fail(context.Cause(ctx))
		}
	}
	locked := time.Now()
	unlocked := false
	unlock := func() error {
		if unlocked {
			return nil
		}
		unlocked = true
		// Not ctx: the lock must go even when the run is cancelled.
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_, err := lock.ExecContext(uctx, "UNLOCK TABLES")
		return err
	}
	defer unlock()
	for _, r := range readers {
		if err := r.startSnapshot(ctx); err != nil {
			return fail(err)
		}
	}
	at, err := binlogStatus(ctx, lock, srv)
	if err != nil {
		return fail(err)
	}
	if err := unlock(); err != nil {
		return fail(fmt.Errorf("UNLOCK TABLES: %w", err))
	}
	held := time.Since(locked)
	for _, r := range readers {
		r.held = &at
	}
	log.Info("global read lock held while the snapshot connections opened", "held_ms", float64(held.Microseconds())/1000, "readers", n,
		"pos", at.Pos.String(), "gtid", at.GTID.String())
	return readers, nil
}

// tryLock takes FLUSH TABLES WITH READ LOCK on lock, unless a long
// statement runs; it returns why it did not ("" when it did).
func tryLock(ctx context.Context, lock *sql.Conn, self uint64, log *slog.Logger) (string, error) {
	long, err := longStatements(ctx, lock, self)
	if err != nil {
		return "", err
	}
	if len(long) > 0 {
		for _, s := range long {
			log.Warn("a long statement runs on the source: FLUSH TABLES WITH READ LOCK would wait for it, with every writer behind, so the snapshot waits",
				"statement_id", s.id, "user", s.user, "seconds", s.secs, "statement", s.info)
		}
		s := long[0]
		return fmt.Sprintf("statement %d of %s has run for %ds (%s)", s.id, s.user, s.secs, s.info), nil
	}
	_, err = lock.ExecContext(ctx, "FLUSH TABLES WITH READ LOCK")
	switch n := mysqlconn.ErrorNumber(err); {
	case err == nil:
		return "", nil
	case n == 1205: // ER_LOCK_WAIT_TIMEOUT
		return fmt.Sprintf("FLUSH TABLES WITH READ LOCK waited %ds (lock_wait_timeout) for running statements", lockWaitTimeout), nil
	case n == 1227 || n == 1044 || n == 1045: // no privilege
		return "", fmt.Errorf("FLUSH TABLES WITH READ LOCK: %w (the source's user needs RELOAD for the snapshot of a MySQL source)", err)
	default:
		return "", fmt.Errorf("FLUSH TABLES WITH READ LOCK: %w", err)
	}
}
