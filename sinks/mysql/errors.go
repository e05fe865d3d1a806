package mysql

import (
	"errors"
	"fmt"

	drv "github.com/go-sql-driver/mysql"
	"github.com/sluice-cdc/sluice/binlog/schema"
	"github.com/sluice-cdc/sluice/mysqlconn"
)

// errorNumber returns the server error number of err, or 0.
func errorNumber(err error) uint16 {
	var me *drv.MySQLError
	if errors.As(err, &me) {
		return me.Number
	}
	return 0
}

// retryable reports whether applying the transaction again can succeed;
// mysqlconn decides for every MySQL connection of sluice.
func retryable(err error) bool { return mysqlconn.Retryable(err) }

// lockError: a deadlock, or a lock wait timeout.
func lockError(err error) bool {
	n := errorNumber(err)
	return n == 1213 || n == 1205
}

// alreadyInEffect reports whether a DDL failed because what it does is
// already done: replaying a DDL after a crash between running it and
// recording it must not fail.
func alreadyInEffect(err error) bool {
	switch errorNumber(err) {
	case 1007, // database exists
		1008, // database does not exist (DROP)
		1050, // table exists
		1051, // unknown table (DROP)
		1054, // unknown column (the rename already happened)
		1060, // duplicate column
		1061, // duplicate key name
		1068, // multiple primary key
		1091, // can't drop; check that it exists
		1146, // table does not exist
		1176, // key does not exist
		1826: // duplicate foreign key constraint
		return true
	}
	return false
}

// ConflictError is a data conflict under on_conflict: stop.
type ConflictError struct {
	GTID   string
	Table  string
	Op     string
	Key    string
	Reason string
	// Other names the transaction of another source that last wrote the
	// key, when known.
	Other string
}

func (e *ConflictError) Error() string {
	reason := e.Reason
	if e.Other != "" {
		reason += " (last written by " + e.Other + ")"
	}
	return fmt.Sprintf("conflict applying transaction %s: %s on %s %s: %s; the target differs from the source. "+
		"Fix the row on the target, or set on_conflict: overwrite (write the source's row) or skip", e.GTID, e.Op, e.Table, e.Key, reason)
}

// DDLStopError is returned under ddl: stop.
type DDLStopError struct {
	ID, Schema, SQL string
}

func (e *DDLStopError) Error() string {
	return fmt.Sprintf("DDL %s stopped the pipeline (ddl: stop): %q in database %q; apply it to the target by hand and add %q to sink.ddl_done, or set ddl: apply or skip",
		e.ID, schema.Shorten(schema.Redact(e.SQL), 200), e.Schema, e.ID)
}
