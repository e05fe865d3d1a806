package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/sluice-cdc/sluice/binlog"
	"github.com/sluice-cdc/sluice/binlog/schema"
	"github.com/sluice-cdc/sluice/sqltext"
)

// Applying a transaction takes two round trips in the common case: one that
// sends START TRANSACTION, every change and the checkpoint as one
// multi-statement batch (larger transactions take several batches), and one
// that sends COMMIT once every statement's affected-row count is as
// expected. Consecutive inserts into a table become one multi-row INSERT;
// consecutive deletes by a one-column key one DELETE ... IN (...).
//
// A count that differs (the target lacks a row, or has one already) means a
// conflict: the transaction is rolled back and applied again statement by
// statement, where the conflict policy decides (applyCareful).

// errConflict asks for the careful path.
var errConflict = errors.New("conflict")

const (
	maxInsertRows = 500
	maxDeleteKeys = 500
)

// isConflict: an affected-row count that differs, or a duplicate key.
func isConflict(err error) bool { return errors.Is(err, errConflict) || errorNumber(err) == 1062 }

// applyRun applies transactions in order, each as its own target
// transaction. Under a backlog the COMMIT of one rides in the first round
// trip of the next, so a transaction costs one round trip, not two. On an
// error the caller learns from the checkpoint which ones committed.
func (a *applier) applyRun(ctx context.Context, txns []*binlog.Txn) error {
	commitPrev := false
	for i, t := range txns {
		if len(t.Statements) > 0 {
			return fmt.Errorf("transaction %s holds DML logged as statements (a session with binlog_format=STATEMENT on the source?): sluice applies row events only", t.ID())
		}
		if id := t.ID(); slices.Contains(a.s.cfg.Skip, id) {
			if commitPrev {
				if _, err := a.exec(ctx, "COMMIT"); err != nil {
					return err
				}
				commitPrev = false
			}
			a.s.log.Warn("SKIPPING a transaction without applying it (sink.skip)", "source", a.source, "txn", id,
				"rows", t.Len(), "ddl", t.DDL != nil)
			if err := a.recordOnly(ctx, t); err != nil {
				return err
			}
			continue
		}
		if t.DDL != nil {
			if commitPrev {
				if _, err := a.exec(ctx, "COMMIT"); err != nil {
					return err
				}
				commitPrev = false
			}
			if err := a.applyDDL(ctx, t); err != nil {
				return err
			}
			continue
		}
		leaveOpen := i < len(txns)-1
		if err := a.applyFast(ctx, t, commitPrev, leaveOpen); err != nil {
			a.rollback(ctx)
			return err
		}
		commitPrev = leaveOpen
	}
	return nil
}

// applyFast sends t as batches of statements and checks every affected-row
// count. With commitPrev its first round trip first commits the previous
// transaction; with leaveOpen t stays open for the next one to commit.
func (a *applier) applyFast(ctx context.Context, t *binlog.Txn, commitPrev, leaveOpen bool) error {
	return a.sendRows(ctx, []*binlog.Txn{t}, sendOpts{commitPrev: commitPrev, checkpoint: t, leaveOpen: leaveOpen})
}

// sendOpts say how sendRows frames the rows it sends.
type sendOpts struct {
	// commitPrev: the first round trip first commits the transaction
	// left open before.
	commitPrev bool
	// cont: the rows join the target transaction left open before (no
	// START TRANSACTION).
	cont bool
	// checkpoint, when set, is recorded as applied in the last round
	// trip. Without it (the parallel applier writes the checkpoint once
	// the items before have written theirs) leaveOpen must be set.
	checkpoint *binlog.Txn
	// leaveOpen: no COMMIT.
	leaveOpen bool
}

// sendRows sends the rows of ts, in order, as one target transaction, and
// checks every affected-row count.
func (a *applier) sendRows(ctx context.Context, ts []*binlog.Txn, o sendOpts) error {
	t := ts[0] // the transaction being sent, for messages
	a.buf, a.expect = a.buf[:0], a.expect[:0]
	if o.commitPrev {
		a.buf = append(a.buf, "COMMIT;"...)
		a.expect = append(a.expect, -1)
	}
	if !o.cont {
		a.buf = append(a.buf, "START TRANSACTION"...)
		a.expect = append(a.expect, -1)
	}
	type sent struct {
		c *binlog.Change
		t *binlog.Txn
	}
	var group []*binlog.Change // consecutive changes batched into one statement
	var written []sent         // sent, to record in the writer log once they succeed
	var groupSig string        // of a group of updates (update.go)
	var groupBytes int64       // the group's images (binlog.Change.HeapBytes)
	groupKeys := map[string]struct{}{}
	sep := func() {
		if len(a.buf) > 0 {
			a.buf = append(a.buf, ';')
		}
	}
	flushGroup := func() {
		if len(group) == 0 {
			return
		}
		sep()
		switch {
		case group[0].Op == binlog.Insert:
			a.buf = sqltext.AppendInsert(a.buf, "INSERT", group)
		case group[0].Op == binlog.Delete:
			a.buf = sqltext.AppendDeleteIn(a.buf, group)
		case len(group) == 1: // an update
			a.buf = sqltext.AppendChange(a.buf, group[0], false, false)
			a.buf = a.buf[:len(a.buf)-1]
		default:
			a.buf = appendUpdates(a.buf, group, groupSig)
			a.expect = append(a.expect, 2*int64(len(group))) // update.go
			group, groupBytes = group[:0], 0
			clear(groupKeys)
			return
		}
		a.expect = append(a.expect, int64(len(group)))
		group, groupBytes = group[:0], 0
		clear(groupKeys)
	}
	send := func() error {
		affected, err := a.exec(ctx, string(a.buf))
		if err != nil {
			a.fkKnown = false // the batch may have stopped before or after a SET
			return a.explain(t, err)
		}
		if len(affected) != len(a.expect) {
			return fmt.Errorf("target answered %d results for %d statements", len(affected), len(a.expect))
		}
		for i, want := range a.expect {
			if want == expectFence {
				if err := checkFence(affected[i]); err != nil {
					return err
				}
			} else if want >= 0 && affected[i] != want {
				return errConflict
			}
		}
		a.buf, a.expect = a.buf[:0], a.expect[:0]
		for _, w := range written {
			a.s.writers.record(w.c, a.source, w.t)
		}
		written = written[:0]
		return nil
	}
	addChange := func(c *binlog.Change) error {
		{
			if !c.Table.NamesKnown {
				return fmt.Errorf("transaction %s: the columns of %s are unknown, so rows cannot be applied", t.ID(), c.Table.QualifiedName())
			}
			if a.s.writers != nil {
				written = append(written, sent{c, t})
			}
			fk := a.wantFK(ctx, c)
			if q := a.fkStatement(fk); q != "" {
				flushGroup()
				sep()
				a.buf = append(a.buf, q...)
				a.expect = append(a.expect, -1)
			}
			sig, upd, key := "", false, ""
			if c.Op == binlog.Update && !a.s.cfg.CheckBeforeImage {
				if sig, upd = a.s.batchableUpdate(ctx, c); upd {
					key = updateKey(c)
				}
			}
			if len(group) > 0 && !sameGroup(group, c) {
				flushGroup()
			} else if _, dup := groupKeys[key]; len(group) > 0 && upd && (groupSig != sig || dup) {
				flushGroup()
			}
			switch {
			case setvalRow(c, t):
				flushGroup()
				sep()
				a.buf = appendSetval(a.buf, c)
				a.expect = append(a.expect, -1)
			case upd:
				group = append(group, c)
				groupBytes += c.HeapBytes()
				groupSig = sig
				groupKeys[key] = struct{}{}
				if len(group) >= maxInsertRows {
					flushGroup()
				}
			case c.Op == binlog.Insert || (c.Op == binlog.Delete && !a.s.cfg.CheckBeforeImage && !fk && deleteBatchable(c)):
				group = append(group, c)
				groupBytes += c.HeapBytes()
				if len(group) >= maxInsertRows {
					flushGroup()
				}
			default:
				flushGroup()
				sep()
				a.buf = sqltext.AppendChange(a.buf, c, false, a.s.cfg.CheckBeforeImage)
				a.buf = a.buf[:len(a.buf)-1] // the statement's own ';'
				a.expect = append(a.expect, 1)
			}
			// The group is not in buf yet: count it as rendered (at most
			// about twice its images), so that buf stays under
			// max_allowed_packet.
			if len(a.buf)+2*int(groupBytes) >= a.s.maxBatch {
				flushGroup()
				if err := send(); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if order, ok := a.regroup(ctx, ts); ok {
		// Several transactions in one target transaction: their changes
		// in an order that makes fewer statements (regroup).
		for _, o := range order {
			t = o.t
			if err := addChange(o.c); err != nil {
				return err
			}
		}
	} else {
		for _, t = range ts {
			for c, err := range t.Changes() {
				if err != nil {
					return err
				}
				if c = versionedChange(c); c == nil {
					continue
				}
				if err := addChange(c); err != nil {
					return err
				}
			}
		}
	}
	flushGroup()
	if o.checkpoint != nil {
		sep()
		a.buf = a.appendCheckpoint(a.buf, o.checkpoint)
		a.expect = append(a.expect, expectFence)
	}
	if len(a.expect) > 0 {
		if err := send(); err != nil {
			return err
		}
	}
	if o.leaveOpen {
		return nil
	}
	if _, err := a.exec(ctx, "COMMIT"); err != nil {
		return a.explain(t, err)
	}
	return nil
}

// sameGroup reports whether c can join the batched statement of group.
func sameGroup(group []*binlog.Change, c *binlog.Change) bool {
	g := group[0]
	if g.Op != c.Op || g.Table != c.Table {
		return false
	}
	if c.Op == binlog.Insert {
		// The same columns present (MINIMAL row images vary).
		for i := range c.After {
			if binlog.IsAbsent(c.After[i]) != binlog.IsAbsent(g.After[i]) {
				return false
			}
		}
	}
	return true
}

// deleteBatchable: a delete by a one-column key that is present and not NULL.
func deleteBatchable(c *binlog.Change) bool {
	if len(c.Table.PK) != 1 {
		return false
	}
	k := c.Table.PK[0]
	return k < len(c.Before) && c.Before[k] != nil && !binlog.IsAbsent(c.Before[k])
}

// applyCareful applies t one statement at a time so that each conflict
// can be handled by the policy.
func (a *applier) applyCareful(ctx context.Context, t *binlog.Txn) error {
	if _, err := a.exec(ctx, "START TRANSACTION"); err != nil {
		return a.explain(t, err)
	}
	fail := func(err error) error {
		a.rollback(ctx)
		return err
	}
	for c, err := range t.Changes() {
		if err != nil {
			return fail(err)
		}
		if c = versionedChange(c); c == nil {
			continue
		}
		if err := a.applyChange(ctx, t, c); err != nil {
			return fail(err)
		}
	}
	q := a.appendCheckpoint(nil, t)
	affected, err := a.exec(ctx, string(q))
	if err != nil {
		return fail(a.explain(t, err))
	}
	if err := checkFence(affected[0]); err != nil {
		return fail(err)
	}
	if _, err := a.exec(ctx, "COMMIT"); err != nil {
		return a.explain(t, err)
	}
	return nil
}

func (a *applier) applyChange(ctx context.Context, t *binlog.Txn, c *binlog.Change) error {
	if err := a.syncFK(ctx, c); err != nil {
		return a.explain(t, err)
	}
	affected, err := a.exec(ctx, string(appendChangeSQL(nil, t, c, a.s.cfg.CheckBeforeImage)))
	if err == nil && setvalRow(c, t) {
		a.s.writers.record(c, a.source, t)
		return nil
	}
	switch {
	case err == nil && len(affected) == 1 && affected[0] == 1:
		a.s.writers.record(c, a.source, t)
		return nil
	case err != nil && errorNumber(err) != 1062:
		return a.explain(t, err)
	}
	reason := "the row does not exist on the target"
	switch {
	case err != nil:
		reason = "duplicate key on the target: " + err.Error()
	case c.Op == binlog.Insert:
		// An INSERT IGNORE (a row with an empty geometry) that wrote nothing.
		reason = "duplicate key on the target"
	case a.s.cfg.CheckBeforeImage:
		if row := a.targetRow(ctx, c); row != "" {
			reason = "the row differs on the target, which changed it since: it has " + row
		}
	}
	policy := a.s.cfg.OnConflict
	key := keyString(c)
	other := a.s.writers.last(c)
	if other.source == a.source {
		other = writer{}
	}
	if a.s.isSeeding(a.source, c.Table) {
		// An incremental snapshot has not copied this row yet, or has
		// written it (incremental.go): not a conflict.
		policy = "overwrite"
	} else {
		a.conflicts.Add(1)
		attrs := []any{"source", a.source, "txn", t.ID(), "table", c.Table.QualifiedName(), "op", c.Op.String(),
			"key", key, "reason", reason, "policy", policy}
		if other.source != "" {
			attrs = append(attrs, "other_source", other.source, "other_txn", other.txn)
		}
		a.s.log.Warn("conflict", attrs...)
	}
	switch policy {
	case "skip":
		return nil
	case "overwrite":
		if c.Op != binlog.Insert && (err != nil || a.s.cfg.CheckBeforeImage || c.Op == binlog.Delete) {
			// Remove the row the source changed, whatever the target has
			// in it, then write the source's row.
			del := sqltext.AppendChange(nil, &binlog.Change{Table: c.Table, Op: binlog.Delete, Before: c.Before}, false, false)
			if _, err := a.exec(ctx, string(del)); err != nil {
				return a.explain(t, err)
			}
		}
		if c.Op == binlog.Delete {
			return nil
		}
		rep := sqltext.AppendInsert(nil, "REPLACE", []*binlog.Change{{Table: c.Table, Op: binlog.Insert, After: c.After}})
		if _, err := a.exec(ctx, string(rep)); err != nil {
			return a.explain(t, err)
		}
		a.s.writers.record(c, a.source, t)
		return nil
	}
	ce := &ConflictError{GTID: t.ID(), Table: c.Table.QualifiedName(), Op: c.Op.String(), Key: key, Reason: reason}
	if other.source != "" {
		ce.Other = "source " + other.source + " transaction " + other.txn
	}
	return ce
}

// targetRow reads the row with c's key from the target, for a conflict
// report; empty if there is none.
func (a *applier) targetRow(ctx context.Context, c *binlog.Change) string {
	t := c.Table
	q := append([]byte("SELECT * FROM "), sqltext.QualifiedName(t.Schema, t.Name)...)
	q = sqltext.AppendWhere(q, t, c.Before, false)
	q = append(q, " LIMIT 1"...)
	rows, err := a.conn.QueryContext(ctx, string(q))
	if err != nil {
		return ""
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	if !rows.Next() {
		return ""
	}
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if rows.Scan(ptrs...) != nil {
		return ""
	}
	var parts []string
	for i, v := range vals {
		s := "NULL"
		if v.Valid {
			s = strconv.Quote(v.String)
		}
		parts = append(parts, cols[i]+"="+s)
	}
	return schema.Shorten(strings.Join(parts, " "), 500)
}

// keyString shows the row's key for logs: "id=42" or every column for
// tables without a key.
func keyString(c *binlog.Change) string {
	img := c.Before
	if c.Op == binlog.Insert {
		img = c.After
	}
	var parts []string
	for _, i := range sqltext.KeyColumns(c.Table, img) {
		parts = append(parts, c.Table.Columns[i].Name+"="+string(sqltext.AppendLiteral(nil, &c.Table.Columns[i], img[i])))
	}
	return schema.Shorten(strings.Join(parts, " "), 500)
}

// explain adds the transaction to an error from the target, unless it is
// retryable (the caller retries and logs it).
func (a *applier) explain(t *binlog.Txn, err error) error {
	if retryable(err) || errors.Is(err, context.Canceled) {
		return err
	}
	switch errorNumber(err) {
	case 1146, 1054, 1049:
		return fmt.Errorf("applying transaction %s: %w; the target's schema differs from the source's (create the table, or let sluice apply DDL with ddl: apply)", t.ID(), err)
	case 1153:
		return fmt.Errorf("applying transaction %s: %w; raise max_allowed_packet on the target", t.ID(), err)
	}
	return fmt.Errorf("applying transaction %s: %w", t.ID(), err)
}
