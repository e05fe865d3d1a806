package mysql

import (
	"strings"

	"github.com/sluice-cdc/sluice/binlog"
)

// MariaDB logs the changes of a system-versioned table as the server made
// them: an UPDATE is the update of the current row plus the INSERT of the
// old version into history (its row_end set to the statement's time), and
// a DELETE is an UPDATE that ends the current row. A system-versioned
// target writes its history itself, so the applier turns these back into
// what the application did: history inserts are dropped, and an update
// that ends a row is a delete, and DELETE HISTORY is not replayed.
// (row_start/row_end are the target's own;
// they are generated columns to the applier.)

// versionedChange returns the change the target must apply for c, or nil
// when there is none.
func versionedChange(c *binlog.Change) *binlog.Change {
	end := rowEndColumn(c.Table)
	if end < 0 {
		return c
	}
	switch c.Op {
	case binlog.Insert:
		if end < len(c.After) && !currentRowEnd(c.After[end]) {
			return nil
		}
	case binlog.Delete:
		// DELETE HISTORY: the target's history is its own.
		if end < len(c.Before) && !currentRowEnd(c.Before[end]) {
			return nil
		}
	case binlog.Update:
		if end < len(c.After) && !currentRowEnd(c.After[end]) {
			return &binlog.Change{Table: c.Table, Op: binlog.Delete, Before: c.Before, Query: c.Query}
		}
	}
	return c
}

// rowEndColumn is the index of a system-versioned table's row_end column,
// or -1.
func rowEndColumn(t *binlog.Table) int {
	for i := range t.Columns {
		c := &t.Columns[i]
		if c.Generated && c.Invisible && strings.EqualFold(c.Name, "row_end") {
			return i
		}
	}
	return -1
}

// currentRowEnd reports whether a row_end value marks the current version
// of a row: the largest TIMESTAMP (2038, or 2106 on MariaDB 11.5 and
// later), or the largest transaction id.
func currentRowEnd(v binlog.Value) bool {
	switch x := v.(type) {
	case string:
		return strings.HasPrefix(x, "2038-01-19 03:14:07.999999") || strings.HasPrefix(x, "2106-02-07 06:28:15.999999")
	case uint64:
		return x == 1<<64-1
	}
	return true // not a value to judge by: leave the change as it is
}
