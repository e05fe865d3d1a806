// Package mysql applies transactions to a MySQL or MariaDB target, one
// target transaction per source transaction, with the checkpoint written in
// the same transaction. Its SQL is rendered by package sqltext.
package mysql

import (
	"regexp"

	"github.com/sluice-cdc/sluice/binlog"
	"github.com/sluice-cdc/sluice/sqltext"
)

var createDropDatabase = regexp.MustCompile(`(?is)^\s*(?:/\*.*?\*/\s*)*(?:create|drop)\s+(?:database|schema)\b`)

// DDLDatabase is the database a statement must run in: its session's
// default database, except for CREATE and DROP DATABASE, which the server
// logs with the database they name as default although it does not exist
// (yet, or any more, or ever: DROP DATABASE IF EXISTS).
func DDLDatabase(d *binlog.DDL) string {
	if createDropDatabase.MatchString(d.SQL) {
		return ""
	}
	return d.Schema
}

// AppendDDLSQL appends a statement transaction: USE db; statement;
func AppendDDLSQL(dst []byte, d *binlog.DDL) []byte {
	if DDLDatabase(d) != "" {
		dst = append(dst, "USE "...)
		dst = sqltext.AppendIdent(dst, d.Schema)
		dst = append(dst, ";\n"...)
	}
	dst = append(dst, d.SQL...)
	return append(dst, ';')
}

// AppendChangeSQL appends the statement the applier runs for c, a change
// of t, with its ';': a sequence's row as SETVAL or INSERT (sequence.go),
// any other row as sqltext.AppendChange writes it. sluice dump --format
// sql prints it.
func AppendChangeSQL(dst []byte, t *binlog.Txn, c *binlog.Change) []byte {
	return appendChangeSQL(dst, t, c, false)
}

// appendChangeSQL is AppendChangeSQL; checkBefore matches an UPDATE or
// DELETE on the whole before image (sink.check_before_image).
func appendChangeSQL(dst []byte, t *binlog.Txn, c *binlog.Change, checkBefore bool) []byte {
	if setvalRow(c, t) {
		return append(appendSetval(dst, c), ';')
	}
	return sqltext.AppendChange(dst, c, false, checkBefore)
}
