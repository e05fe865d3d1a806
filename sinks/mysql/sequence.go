package mysql

import (
	"math"

	"github.com/sluice-cdc/sluice/binlog"
	"github.com/sluice-cdc/sluice/sqltext"
)

// A MariaDB sequence's row, logged by NEXTVAL or SETVAL when they leave
// the cached range, is applied as MariaDB's replica applies it
// (Rows_log_event::update_sequence): as SETVAL(next_not_cached_value, not
// used, cycle_count), which moves the sequence as the source's own call
// did. An INSERT would be checked as a new definition and refused where
// the source's SETVAL went below the minimum of a cycling sequence. A row
// in a transaction MariaDB flags as DDL was written whole (INSERT INTO s
// VALUES (…)) and is applied as an INSERT, which replaces every column.

// setvalRow reports whether c, a change of t, is applied as SETVAL. A
// next value of -2^63 (a sequence run out downwards) is no literal
// SETVAL's grammar takes: that row stays an INSERT.
func setvalRow(c *binlog.Change, t *binlog.Txn) bool {
	if !c.Table.Sequence || c.Op != binlog.Insert || t.MariaDBDDL {
		return false
	}
	i := c.Table.ColumnIndex("next_not_cached_value")
	return i < 0 || i >= len(c.After) || c.After[i] != binlog.Value(int64(math.MinInt64))
}

// appendSetval appends DO SETVAL(seq, next_not_cached_value, 0,
// cycle_count) for c's row.
func appendSetval(dst []byte, c *binlog.Change) []byte {
	start := len(dst)
	dst = append(dst, "DO SETVAL("...)
	dst = sqltext.AppendIdent(dst, c.Table.Schema)
	dst = append(dst, '.')
	dst = sqltext.AppendIdent(dst, c.Table.Name)
	for _, name := range []string{"next_not_cached_value", "", "cycle_count"} {
		dst = append(dst, ',')
		if name == "" {
			dst = append(dst, '0')
			continue
		}
		i := c.Table.ColumnIndex(name)
		if i < 0 || i >= len(c.After) {
			// Not a sequence's row: the target refuses SETVAL(NULL).
			return append(dst[:start], "DO SETVAL(NULL)"...)
		}
		dst = sqltext.AppendLiteral(dst, &c.Table.Columns[i], c.After[i])
	}
	return append(dst, ')')
}
