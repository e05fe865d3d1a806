package snapshot

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"

	"github.com/sluice-cdc/sluice/binlog"
	"github.com/sluice-cdc/sluice/checkpoint"
)

// reader is one source connection that copies tables, each inside a
// consistent snapshot of its own.
//
// MariaDB: START TRANSACTION WITH CONSISTENT SNAPSHOT gives the session an
// InnoDB read view and, at the same instant, the binlog position it
// corresponds to (binlog_snapshot_file/position in the session's status):
// the server takes both under its commit-ordering lock, so every
// transaction committed before the position is in the view and none after.
// BINLOG_GTID_POS turns that position into the GTID position streaming
// resumes from. No global lock is taken (no FLUSH TABLES WITH READ LOCK);
// the copy holds a shared metadata lock on the table it reads until its
// snapshot ends, so a DDL on that table waits for the table's copy.
// Tables of other engines than InnoDB (MyISAM) are not versioned: their
// copy is not consistent with the position under concurrent writes.
//
// MySQL (the global-lock path, lock.go): the snapshot's position is read
// from the binlog's status (global), and the readers copying tables open
// their snapshots under a brief global read lock, all at one position
// (held), which each keeps for the whole run.
type reader struct {
	conn *sql.Conn
	open bool // a snapshot transaction is open
	// global: begin reads the binlog's status (SHOW MASTER STATUS) after
	// its snapshot starts, a position at or after the snapshot's, which
	// serves only what is not versioned (a sequence's row), or when
	// nothing is copied.
	global bool
	srv    server
	// held is the position of the snapshot opened under the global read
	// lock (openLocked): begin and end then only set a savepoint and roll
	// back to it, which releases the metadata locks of what was read
	// since; table: inside such a savepoint.
	held  *checkpoint.State
	table bool
	// gtids, when set, remembers BINLOG_GTID_POS's answers, shared by a
	// run's readers (gtidCache).
	gtids *gtidCache
}

// gtidCache holds BINLOG_GTID_POS's answer per binlog position. The
// function reads the binlog file from its start up to the position (45 ms
// of the source's CPU for a 190 MB file), and its answer for a position
// never changes; the tables of a snapshot taken while nothing commits all
// have one position. Readers asking for a position another is already
// asking for wait for its answer.
type gtidCache struct {
	mu sync.Mutex
	m  map[binlog.Position]*gtidAnswer
}

type gtidAnswer struct {
	done chan struct{}
	gtid string
	err  error
}

// get is BINLOG_GTID_POS(p) on conn, asked once per position (a failed
// answer is not kept).
func (c *gtidCache) get(ctx context.Context, conn *sql.Conn, p binlog.Position) (string, error) {
	ask := func() (string, error) {
		var g sql.NullString
		if err := conn.QueryRowContext(ctx, "SELECT BINLOG_GTID_POS(?, ?)", p.File, p.Pos).Scan(&g); err != nil {
			return "", fmt.Errorf("turn the snapshot's position %s into a GTID: %w", p, err)
		}
		return g.String, nil
	}
	if c == nil {
		return ask()
	}
	c.mu.Lock()
	if a, ok := c.m[p]; ok {
		c.mu.Unlock()
		select {
		case <-a.done:
		case <-ctx.Done():
			return "", ctx.Err()
		}
		if a.err == nil {
			return a.gtid, nil
		}
		return ask()
	}
	if c.m == nil {
		c.m = map[binlog.Position]*gtidAnswer{}
	}
	a := &gtidAnswer{done: make(chan struct{})}
	c.m[p] = a
	c.mu.Unlock()
	a.gtid, a.err = ask()
	if a.err != nil {
		c.mu.Lock()
		delete(c.m, p)
		c.mu.Unlock()
	}
	close(a.done)
	return a.gtid, a.err
}

func newReader(ctx context.Context, db *sql.DB) (*reader, error) {
	c, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	// Text as the bytes the column stores (binlog.CellValue), TIMESTAMP in
	// UTC as the binlog has it.
	for _, q := range []string{
		"SET SESSION character_set_results = binary, time_zone = '+00:00'",
		"SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ",
	} {
		if _, err := c.ExecContext(ctx, q); err != nil {
			c.Close()
			return nil, err
		}
	}
	return &reader{conn: c}, nil
}

// newGlobalReader is a reader of the global-lock path.
func newGlobalReader(ctx context.Context, db *sql.DB, srv server) (*reader, error) {
	r, err := newReader(ctx, db)
	if err != nil {
		return nil, err
	}
	r.global, r.srv = true, srv
	return r, nil
}

// startSnapshot opens the snapshot transaction.
func (r *reader) startSnapshot(ctx context.Context) error {
	if _, err := r.conn.ExecContext(ctx, "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY"); err != nil {
		return fmt.Errorf("start a consistent snapshot: %w", err)
	}
	r.open = true
	return nil
}

// begin ends the previous snapshot and opens a new one, returning the
// position it corresponds to (held: a savepoint in the held snapshot).
func (r *reader) begin(ctx context.Context) (checkpoint.State, error) {
	var at checkpoint.State
	if err := r.end(ctx); err != nil {
		return at, err
	}
	if r.held != nil {
		if _, err := r.conn.ExecContext(ctx, "SAVEPOINT sluice_table"); err != nil {
			return at, fmt.Errorf("savepoint in the snapshot: %w", err)
		}
		r.table = true
		return *r.held, nil
	}
	if err := r.startSnapshot(ctx); err != nil {
		return at, err
	}
	if r.global {
		return binlogStatus(ctx, r.conn, r.srv)
	}
	rows, err := r.conn.QueryContext(ctx, "SHOW STATUS LIKE 'binlog_snapshot_%'")
	if err != nil {
		return at, fmt.Errorf("read the snapshot's binlog position: %w", err)
	}
	for rows.Next() {
		var name, value string
		if err := rows.Scan(&name, &value); err != nil {
			rows.Close()
			return at, err
		}
		switch strings.ToLower(name) {
		case "binlog_snapshot_file":
			at.Pos.File = value
		case "binlog_snapshot_position":
			fmt.Sscan(value, &at.Pos.Pos)
		}
	}
	rows.Close()
	if at.Pos.File == "" {
		return at, fmt.Errorf("the source reports no binlog_snapshot_file: it needs log_bin (and MariaDB, whose consistent snapshots carry their binlog position)")
	}
	gtid, err := r.gtids.get(ctx, r.conn, at.Pos)
	if err != nil {
		return at, err
	}
	if at.GTID, err = binlog.ParseGTIDSet(gtid); err != nil {
		return at, fmt.Errorf("the snapshot's GTID position: %w", err)
	}
	return at, nil
}

// end closes the snapshot (or, held, the table's savepoint), releasing
// the metadata locks of what it read.
func (r *reader) end(ctx context.Context) error {
	if r.held != nil {
		// The snapshot stays, for the next table.
		if !r.table {
			return nil
		}
		r.table = false
		if _, err := r.conn.ExecContext(ctx, "ROLLBACK TO SAVEPOINT sluice_table"); err != nil {
			return fmt.Errorf("roll back to the savepoint in the snapshot: %w", err)
		}
		return nil
	}
	if !r.open {
		return nil
	}
	r.open = false
	_, err := r.conn.ExecContext(ctx, "COMMIT")
	return err
}

func (r *reader) close() { r.conn.Close() }
