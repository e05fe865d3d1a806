package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/sluice-cdc/sluice/binlog"
	"github.com/sluice-cdc/sluice/binlog/schema"
)

// DDL for a merged table (several shards feed it, see binlog.DDL.Merged)
// arrives once per shard. Like TiDB DM's shard DDL handling, the first copy
// applies and later copies that are already in effect are skipped; unlike
// DM's optimistic mode, only additive DDL is applied automatically: a
// DROP or MODIFY from one shard would change rows the other shards still
// write in the old shape, which needs a person to decide.

// MergedDDLError stops a pipeline at DDL it will not apply to a merged
// table on its own.
type MergedDDLError struct {
	ID, Source, Table, SQL, Reason string
}

func (e *MergedDDLError) Error() string {
	return fmt.Sprintf("DDL %s from source %s changes %s, which several source tables feed, and %s: %q. "+
		"Change the target by hand once, then add %q to sink.ddl_done (and the ids of the same DDL from the other sources as they arrive)",
		e.ID, e.Source, e.Table, e.Reason, schema.Shorten(schema.Redact(e.SQL), 200), e.ID)
}

// checkMerged refuses a merged-table DDL that is not additive, and a CREATE
// TABLE that would create the table without the columns routing fills.
func (a *applier) checkMerged(ctx context.Context, t *binlog.Txn) error {
	d := t.DDL
	db, table, _ := ddlTable(d)
	fail := func(reason string) error {
		return &MergedDDLError{ID: t.ID(), Source: a.source, Table: db + "." + table, SQL: d.SQL, Reason: reason}
	}
	add, reason, err := schema.AdditiveDDLMode(d.SQL, ddlMode(d))
	if err != nil {
		return fail(err.Error())
	}
	if reason != "" {
		return fail(reason)
	}
	if len(d.RouteColumns) > 0 && add.CreatesTable {
		cols, err := a.targetColumns(ctx, db, table)
		if err != nil {
			return err
		}
		if len(cols) == 0 {
			return fail(fmt.Sprintf("routing fills column(s) %s, which the source's CREATE TABLE lacks: create the table on the target "+
				"with them (in its primary key, if rows of different sources can share a key)", strings.Join(d.RouteColumns, ", ")))
		}
	}
	return nil
}

// whyInEffect decides about a DDL that failed with err: it returns why
// what it does is already in effect, or "" if it is not. An additive
// statement is in effect when what it adds exists with the same types:
// another source's copy of it (a merged table), or another pipeline into
// the same target, applied it. Anything else is in effect only when
// replayed after a crash between running it and recording it.
func (a *applier) whyInEffect(ctx context.Context, t *binlog.Txn, err error, replay bool) (string, error) {
	if !alreadyInEffect(err) {
		return "", nil
	}
	add, reason, perr := schema.AdditiveDDLMode(t.DDL.SQL, ddlMode(t.DDL))
	if perr != nil || reason != "" {
		if replay {
			return "replayed after a restart", nil
		}
		return "", nil
	}
	if n := errorNumber(err); n == 1146 || n == 1049 {
		// The table (or database) it adds to is missing on the target:
		// what it adds cannot be in effect.
		return "", nil
	}
	d := t.DDL
	db, table, _ := ddlTable(d)
	if len(add.Columns) == 0 || table == "" {
		return "what it adds exists", nil
	}
	cols, err := a.targetColumns(ctx, db, table)
	if err != nil {
		return "", err
	}
	differs := func(reason string) error {
		if d.Merged {
			return &MergedDDLError{ID: t.ID(), Source: a.source, Table: db + "." + table, SQL: d.SQL, Reason: reason + ": the sources disagree"}
		}
		id := t.ID()
		return fmt.Errorf("DDL %s: %s: %s, so the target differs from the source. Fix the target, then add %q to sink.ddl_done, or set ddl: skip",
			id, schema.Shorten(schema.Redact(d.SQL), 200), reason, id)
	}
	if len(cols) == 0 {
		return "", nil // no table: the error is not about something in effect
	}
	for _, c := range add.Columns {
		have, ok := cols[strings.ToLower(c.Name)]
		switch {
		case !ok:
			return "", differs(fmt.Sprintf("the table exists on the target without its column %s", c.Name))
		case !schema.SameType(have, c.SQLType):
			return "", differs(fmt.Sprintf("column %s is %s on the target but %s in this DDL", c.Name, have, c.SQLType))
		}
	}
	return "what it adds exists, with the same types", nil
}

// targetColumns returns the target table's column types by lower-case
// name; empty when the table does not exist.
func (a *applier) targetColumns(ctx context.Context, db, table string) (map[string]string, error) {
	if err := a.ensureConn(ctx); err != nil {
		return nil, err
	}
	rows, err := a.conn.QueryContext(ctx, "SELECT COLUMN_NAME, COLUMN_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?", db, table)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols := map[string]string{}
	for rows.Next() {
		var name, typ sql.NullString
		if err := rows.Scan(&name, &typ); err != nil {
			return nil, err
		}
		cols[strings.ToLower(name.String)] = typ.String
	}
	if err := rows.Err(); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, err
	}
	return cols, nil
}

// ddlTable is the first table (or the database) a statement names.
func ddlTable(d *binlog.DDL) (db, table string, ok bool) {
	st := schema.Classify(d.Schema, d.SQL, ddlMode(d))
	switch {
	case st.Kind == schema.DatabaseStatement:
		return st.Database, "", true
	case len(st.Tables) > 0:
		return st.Tables[0].Schema, st.Tables[0].Name, true
	}
	return "", "", false
}
