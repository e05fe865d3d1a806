package mysql

import (
	"context"
	"math"

	"github.com/sluice-cdc/sluice/binlog"
	"github.com/sluice-cdc/sluice/binlog/schema"
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

// warnRunOutSequence warns before d, an ALTER SEQUENCE without RESTART,
// runs against a target sequence that has run out (no CYCLE, its next
// value past its limit). On the source, a NEXTVAL that failed on such a
// sequence logs nothing but leaves next_not_cached_value = maximum_value + 1
// in memory, and the ALTER writes that; the target (like MariaDB's own
// replica) writes the last logged value. The two then hand out different
// values once a later ALTER widens the range. Nothing in the binlog tells
// which happened, so this is a warning, not a stop.
func (a *applier) warnRunOutSequence(ctx context.Context, d *binlog.DDL) {
	ref, ok := schema.AlterSequenceKeeping(d.Schema, d.SQL, ddlMode(d))
	if !ok {
		return
	}
	var next, lo, hi, inc int64
	var cycle bool
	q := "SELECT next_not_cached_value, minimum_value, maximum_value, increment, cycle_option FROM " +
		sqltext.QuoteIdent(ref.Schema) + "." + sqltext.QuoteIdent(ref.Name)
	if err := a.conn.QueryRowContext(ctx, q).Scan(&next, &lo, &hi, &inc, &cycle); err != nil {
		return // the ALTER itself reports a missing sequence
	}
	if cycle || (inc >= 0 && next <= hi) || (inc < 0 && next >= lo) {
		return
	}
	a.s.log.Warn("ALTER SEQUENCE without RESTART on a sequence that has run out: if a NEXTVAL failed on the source after it ran out, "+
		"the source now holds next_not_cached_value at its old limit and this target keeps the last logged value (MariaDB's own replica does the same); "+
		"compare the two and, where they differ, run ALTER SEQUENCE … RESTART WITH on the source",
		"source", a.source, "sequence", ref.Schema+"."+ref.Name, "target_next_not_cached_value", next)
}
