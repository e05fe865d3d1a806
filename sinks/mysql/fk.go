package mysql

import (
	"context"

	"github.com/sluice-cdc/sluice/binlog"
)

// Foreign keys. MariaDB, and MySQL with InnoDB's foreign keys, log only
// the row a statement changed, not the rows its foreign keys' ON DELETE/
// ON UPDATE actions (CASCADE, SET NULL) changed: a replica runs those
// actions itself. So a change to a table that has foreign keys on the
// target, or that one references, is applied with foreign_key_checks on,
// unless the source ran it with the checks off (Change.NoFKChecks), as
// MariaDB's replica does. The sink's connections start with the checks
// off (Open), which is right for every other table and for a snapshot's
// copy, whose tables arrive in no particular order.
//
// Such changes keep the source's order: they are not regrouped across
// transactions, their deletes not batched into one DELETE … IN, and an
// item holding one waits for every earlier item (parallel.go), so that a
// child row never arrives before its parent's.

// hasFK reports whether t has foreign keys on the target or is referenced
// by one, as information_schema said when last asked (forgetKeys clears it after
// every DDL).
func (s *Sink) hasFK(ctx context.Context, t *binlog.Table) bool {
	s.fkMu.Lock()
	defer s.fkMu.Unlock()
	if s.fkTables == nil {
		s.fkTables = map[[2]string]bool{}
		rows, err := s.db.QueryContext(ctx, "SELECT CONSTRAINT_SCHEMA, TABLE_NAME, UNIQUE_CONSTRAINT_SCHEMA, REFERENCED_TABLE_NAME "+
			"FROM information_schema.REFERENTIAL_CONSTRAINTS")
		if err != nil {
			// Every table then counts as having them: slower, never
			// wrong.
			s.log.Warn("cannot read the target's foreign keys: applying every change with the source's foreign_key_checks, in order", "error", err.Error())
			s.fkAll = true
		} else {
			defer rows.Close()
			for rows.Next() {
				var cs, ct, rs, rt string
				if err := rows.Scan(&cs, &ct, &rs, &rt); err != nil {
					s.fkAll = true
					break
				}
				s.fkTables[[2]string{cs, ct}] = true
				s.fkTables[[2]string{rs, rt}] = true
			}
			if rows.Err() != nil {
				s.fkAll = true
			}
		}
	}
	return s.fkAll || s.fkTables[[2]string{t.Schema, t.Name}]
}

// wantFK is the foreign_key_checks c is applied with.
func (a *applier) wantFK(ctx context.Context, c *binlog.Change) bool {
	return !a.snapshot && !c.NoFKChecks && a.s.hasFK(ctx, c.Table)
}

// fkStatement is the statement that sets the connection's checks to on,
// or "" when they are known to be so already; it notes them as set.
func (a *applier) fkStatement(on bool) string {
	if a.fkKnown && a.fkOn == on {
		return ""
	}
	a.fkOn, a.fkKnown = on, true
	if on {
		return "SET SESSION foreign_key_checks = 1"
	}
	return "SET SESSION foreign_key_checks = 0"
}

// syncFK sets the connection's checks for c at once (the careful path,
// one statement at a time).
func (a *applier) syncFK(ctx context.Context, c *binlog.Change) error {
	q := a.fkStatement(a.wantFK(ctx, c))
	if q == "" {
		return nil
	}
	if _, err := a.exec(ctx, q); err != nil {
		a.fkKnown = false
		return err
	}
	return nil
}
