package mysql

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/sluice-cdc/sluice/checkpoint"
	"github.com/sluice-cdc/sluice/sqltext"
)

// A pipeline's lease lives in the target it writes (Kleppmann's fencing
// tokens), in two parts:
//
//   - Liveness: the active process holds the named lock GET_LOCK(
//     'sluice:<pipeline hash>') on a connection of its own whose
//     wait_timeout is the lease TTL, and renews it by querying that
//     connection. A process that dies, or freezes (GC pause, SIGSTOP, VM
//     migration), stops querying; the server closes its connection after the
//     TTL and the lock is free. Renewals write nothing, so they add nothing
//     to the target's binlog (a master-master pair's binlogs still go quiet).
//   - Fencing: one row per pipeline in sluice.lease holds an epoch that every
//     takeover increments, and the holder's name. Every checkpoint row is
//     written by INSERT … SELECT … FROM sluice.lease WHERE epoch = <ours>, in
//     the same target transaction as the rows it covers. That read locks the
//     lease row in share mode (the appliers run REPEATABLE READ), so a
//     takeover's epoch bump waits for the transactions in flight, and every
//     transaction after it inserts no checkpoint row: the applier sees 0
//     rows, rolls back and stands down with ErrFenced. A frozen process that
//     resumes therefore commits nothing, and the checkpoint never goes
//     backwards. Its appliers' sessions have the same wait_timeout, so a
//     transaction it left open cannot hold the lease row for longer than the
//     TTL either.
const leaseTable = "`" + markSchema + "`.`" + leaseName + "`"

const createLeaseTable = `CREATE TABLE IF NOT EXISTS ` + leaseTable + ` (
	pipeline VARCHAR(190) NOT NULL,
	holder VARCHAR(255) NOT NULL,
	epoch BIGINT UNSIGNED NOT NULL,
	acquired_at DATETIME(6) NOT NULL,
	PRIMARY KEY (pipeline)
) ENGINE=InnoDB`

// ErrFenced means another process holds the pipeline's lease: this one must
// not write anything more, and should wait as a standby.
var ErrFenced = fmt.Errorf("%w (it took over, or this process lost its lease connection or was paused past the lease TTL)", checkpoint.ErrFenced)

// lockName is the pipeline's named lock (at most 64 characters).
func (s *Sink) lockName() string {
	h := sha256.Sum256([]byte(s.cfg.Pipeline))
	return "sluice:" + hex.EncodeToString(h[:20])
}

// ttlSeconds is the TTL as a wait_timeout: whole seconds, at least 1.
func ttlSeconds(ttl time.Duration) int64 { return max(1, int64((ttl+time.Second-1)/time.Second)) }

// TryAcquire takes the pipeline's lease for holder when no live process
// holds it, with a new epoch; from then on every transaction this sink
// applies is fenced by that epoch. It returns the lease as it stands, with
// Mine set when holder now has it.
func (s *Sink) TryAcquire(ctx context.Context, holder string, ttl time.Duration) (checkpoint.Lease, error) {
	s.leaseMu.Lock()
	defer s.leaseMu.Unlock()
	if s.lockConn != nil {
		l, _, err := s.leaseHolder(ctx)
		return l, err
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return checkpoint.Lease{}, s.leaseErr(err)
	}
	var got sql.NullInt64
	if _, err = conn.ExecContext(ctx, "SET SESSION wait_timeout = "+strconv.FormatInt(ttlSeconds(ttl), 10)); err == nil {
		err = conn.QueryRowContext(ctx, "SELECT GET_LOCK(?, 0)", s.lockName()).Scan(&got)
	}
	if err != nil || got.Int64 != 1 {
		conn.Close()
		if err != nil {
			return checkpoint.Lease{}, s.leaseErr(err)
		}
		l, _, err := s.leaseHolder(ctx)
		return l, err
	}
	// The lock is ours: no other process is live. Bump the epoch, which
	// waits for any transaction a previous holder still has in flight.
	if _, err := conn.ExecContext(ctx, "INSERT IGNORE INTO "+leaseTable+" (pipeline, holder, epoch, acquired_at) VALUES (?, '', 0, UTC_TIMESTAMP(6))", s.cfg.Pipeline); err != nil {
		conn.Close()
		return checkpoint.Lease{}, s.leaseErr(err)
	}
	// LAST_INSERT_ID(expr) hands the new epoch back to this session alone.
	res, err := conn.ExecContext(ctx, "UPDATE "+leaseTable+" SET holder = ?, epoch = LAST_INSERT_ID(epoch + 1), acquired_at = UTC_TIMESTAMP(6) WHERE pipeline = ?",
		holder, s.cfg.Pipeline)
	if err != nil {
		conn.Close()
		return checkpoint.Lease{}, s.leaseErr(err)
	}
	epoch, err := res.LastInsertId()
	if err != nil {
		conn.Close()
		return checkpoint.Lease{}, s.leaseErr(err)
	}
	s.lockConn, s.ttl = conn, ttl
	s.epoch.Store(uint64(epoch))
	// Connections opened under another epoch (or none) lack the lease's
	// session settings.
	s.mu.Lock()
	for _, a := range s.appliers {
		for _, w := range a.all() {
			w.reset()
		}
	}
	s.mu.Unlock()
	l, _, err := s.leaseHolder(ctx)
	return l, err
}

// Renew proves to the server that this process is alive, which keeps its
// lease. It returns ErrFenced when the lease is gone (the lease connection
// was closed, or another process has taken over); this sink then applies
// nothing more, and TryAcquire may be called again.
func (s *Sink) Renew(ctx context.Context) error {
	s.leaseMu.Lock()
	defer s.leaseMu.Unlock()
	if s.lockConn == nil {
		return ErrFenced
	}
	var mine sql.NullInt64
	err := s.lockConn.QueryRowContext(ctx, "SELECT IS_USED_LOCK(?) = CONNECTION_ID()", s.lockName()).Scan(&mine)
	if err == nil && mine.Int64 == 1 {
		return nil
	}
	s.dropLease()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrFenced, s.leaseErr(err))
	}
	return ErrFenced
}

// Release gives the lease up at once (a clean shutdown), so that a standby
// takes over without waiting for the TTL.
func (s *Sink) Release(ctx context.Context) error {
	s.leaseMu.Lock()
	defer s.leaseMu.Unlock()
	if s.lockConn == nil {
		return nil
	}
	_, err := s.lockConn.ExecContext(ctx, "DO RELEASE_LOCK(?)", s.lockName())
	s.dropLease()
	return s.leaseErr(err)
}

// dropLease lets the named lock go. The epoch stays: a sink that held a
// lease never writes unfenced again, so whatever its appliers still send
// is refused once another process has bumped the epoch.
func (s *Sink) dropLease() {
	if s.lockConn != nil {
		s.lockConn.Close()
		s.lockConn = nil
	}
}

// LeaseHolder returns the pipeline's lease as the target has it; ok is
// false when no process has ever held it.
func (s *Sink) LeaseHolder(ctx context.Context) (checkpoint.Lease, bool, error) {
	s.leaseMu.Lock()
	defer s.leaseMu.Unlock()
	return s.leaseHolder(ctx)
}

func (s *Sink) leaseHolder(ctx context.Context) (checkpoint.Lease, bool, error) {
	l, ok, err := readLease(ctx, s.db, s.cfg.Pipeline)
	epoch := s.epoch.Load()
	l.Mine = ok && epoch != 0 && l.Epoch == epoch && s.lockConn != nil
	return l, ok, s.leaseErr(err)
}

// Epoch is the epoch this sink's writes are fenced with: that of the last
// lease it held, 0 when it never held one (and writes unfenced).
func (s *Sink) Epoch() uint64 { return s.epoch.Load() }

func (s *Sink) leaseErr(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: pipeline %s: lease: %w", s.cfg.DSN, s.cfg.Pipeline, err)
}

type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func readLease(ctx context.Context, q queryer, pipeline string) (checkpoint.Lease, bool, error) {
	var l checkpoint.Lease
	err := q.QueryRowContext(ctx, "SELECT holder, epoch, acquired_at FROM "+leaseTable+" WHERE pipeline = ?", pipeline).
		Scan(&l.Holder, &l.Epoch, (*timeScanner)(&l.Acquired))
	if errors.Is(err, sql.ErrNoRows) {
		return l, false, nil
	}
	return l, err == nil, err
}

// appendFence appends the FROM … WHERE part of the checkpoint's INSERT …
// SELECT: it yields the one row to insert while the epoch is ours, and none
// once another process has taken the lease.
func (a *applier) appendFence(dst []byte, epoch uint64) []byte {
	dst = append(dst, " FROM "+leaseTable+" WHERE pipeline = "...)
	dst = sqltext.AppendString(dst, a.s.cfg.Pipeline)
	dst = append(dst, " AND epoch = "...)
	return strconv.AppendUint(dst, epoch, 10)
}

// checkLease returns ErrFenced when the sink holds a lease whose epoch is no
// longer the pipeline's. DDL, which no transaction can take back, runs only
// after it; a process frozen between this check and its DDL can still run
// that one statement (README: Standby and fencing).
func (a *applier) checkLease(ctx context.Context) error {
	epoch := a.s.epoch.Load()
	if epoch == 0 {
		return nil
	}
	l, _, err := readLease(ctx, a.conn, a.s.cfg.Pipeline)
	if err != nil {
		return err
	}
	if l.Epoch != epoch {
		return ErrFenced
	}
	return nil
}

// fenced reports whether the sink held a lease that another process has
// taken since (or whose state it cannot read).
func (a *applier) fenced(ctx context.Context) bool {
	if a.s.epoch.Load() == 0 {
		return false
	}
	if err := a.ensureConn(ctx); err != nil {
		return false
	}
	return errors.Is(a.checkLease(ctx), ErrFenced)
}
