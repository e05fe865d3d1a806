package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/sluice-cdc/sluice/binlog"
	"github.com/sluice-cdc/sluice/binlog/schema"
	"github.com/sluice-cdc/sluice/sqltext"
)

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
	kind := schema.ProgramKind(t.DDL.SQL) // trigger or event
	switch {
	case slices.Contains(s.cfg.DDLDone, id):
		s.log.Info("DDL marked as done by hand", "source", a.source, "ddl", id)
		return record()
	case s.cfg.DDL == "skip":
		s.log.Info("DDL skipped (ddl: skip)", "source", a.source, "ddl", id, "schema", t.DDL.Schema)
		return record()
	case kind != "":
		// As a replica does not run them for the rows it applies: the rows
		// a trigger or an event writes on the source arrive as rows, so on
		// the target they would be written twice.
		s.log.Warn("not applying a "+kind+" statement: the rows it writes on the source arrive as rows, and on the target it would write them again; create the "+kind+" on the target when it becomes a primary",
			"source", a.source, "ddl", id, "schema", t.DDL.Schema, "statement", schema.Shorten(schema.Redact(t.DDL.SQL), 200))
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
					id, t.DDL.Schema, err, schema.Shorten(schema.Redact(t.DDL.SQL), 200), id)
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
	a.warnRunOutSequence(ctx, ddl)
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
				"and add %q to sink.ddl_done, or set ddl: skip", id, redactedError{err, t.DDL.SQL}, schema.Shorten(schema.Redact(t.DDL.SQL), 200), t.DDL.Schema, id)
		}
		s.log.Info("DDL already in effect on the target", "why", why, "source", a.source, "ddl", id, "error", schema.RedactError(err.Error(), t.DDL.SQL))
		return record()
	}
	s.log.Info("DDL applied", "source", a.source, "ddl", id, "schema", t.DDL.Schema)
	// Its session settings were put back: foreign_key_checks included
	// (fk.go).
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
