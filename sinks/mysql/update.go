package mysql

import (
	"strconv"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/sluice-cdc/sluice/binlog"
	"github.com/sluice-cdc/sluice/sqltext"
)

// Consecutive updates of one table that set the same columns, each by an
// integer key that it does not change, go out as one statement: a join
// against a derived table of the new values,
//
//	UPDATE t JOIN (SELECT 1 AS sluice_k0, 'x' AS sluice_c2 UNION ALL SELECT 2, 'y') AS sluice_v
//	  ON t.id = sluice_v.sluice_k0 SET t.c = sluice_v.sluice_c2
//
// The session counts the rows found (CLIENT_FOUND_ROWS), so the statement's
// affected-row count is the number of keys the target has: one short means
// a row is missing, a conflict, as for a single UPDATE. Only values that
// are written the same way through a derived table's column as through a
// literal take part: integers, decimals, NULL and text of the common
// character sets; other types, and temporal columns (always written, see
// sqltext's appendSet), keep one statement per row. Two updates of the
// same key never share a statement.

// updateSig is what decides whether two updates can share a statement:
// the columns they set.
type updateSig []int

// batchableUpdate returns the columns c sets when c can join a batched
// UPDATE.
func batchableUpdate(c *binlog.Change) (updateSig, bool) {
	t := c.Table
	if c.Op != binlog.Update || len(t.PK) == 0 {
		return nil, false
	}
	for _, k := range t.PK {
		if k >= len(c.Before) || k >= len(c.After) {
			return nil, false
		}
		switch b := c.Before[k].(type) {
		case int64:
			if a, ok := c.After[k].(int64); !ok || a != b {
				return nil, false
			}
		case uint64:
			if a, ok := c.After[k].(uint64); !ok || a != b {
				return nil, false
			}
		default:
			return nil, false
		}
	}
	var cols updateSig
	var a, b []byte
	for i := range t.Columns {
		col := &t.Columns[i]
		if col.Generated || i >= len(c.After) || binlog.IsAbsent(c.After[i]) {
			continue
		}
		switch col.Type {
		case mysql.MYSQL_TYPE_TIMESTAMP, mysql.MYSQL_TYPE_TIMESTAMP2, mysql.MYSQL_TYPE_DATETIME, mysql.MYSQL_TYPE_DATETIME2:
			return nil, false
		}
		a = sqltext.AppendLiteral(a[:0], col, c.After[i])
		if i < len(c.Before) && !binlog.IsAbsent(c.Before[i]) {
			b = sqltext.AppendLiteral(b[:0], col, c.Before[i])
			if string(a) == string(b) {
				continue
			}
		}
		if !derivable(col, c.After[i]) {
			return nil, false
		}
		cols = append(cols, i)
	}
	return cols, len(cols) > 0
}

// derivable reports whether v written through a derived table's column is
// stored as v written as a literal.
func derivable(col *binlog.Column, v binlog.Value) bool {
	switch v.(type) {
	case nil, int64, uint64, binlog.Decimal:
		return true
	case string:
		switch col.Type {
		case mysql.MYSQL_TYPE_VARCHAR, mysql.MYSQL_TYPE_VAR_STRING, mysql.MYSQL_TYPE_STRING, mysql.MYSQL_TYPE_BLOB:
		default:
			return false
		}
		if col.Binary || col.JSON || len(col.Elems) > 0 {
			return false
		}
		switch col.Charset {
		case "utf8mb4", "utf8mb3", "utf8", "latin1", "ascii":
			return true
		}
	}
	return false
}

func sameSig(a, b updateSig) bool { return sameInts(a, b) }

// updateKey is the literal of an update's key, to keep two updates of one
// row out of one statement.
func updateKey(c *binlog.Change) string {
	var b []byte
	for _, k := range c.Table.PK {
		b = sqltext.AppendLiteral(b, &c.Table.Columns[k], c.Before[k])
		b = append(b, 0)
	}
	return string(b)
}

// appendUpdateJoin appends one UPDATE of rows, which share a table and a
// signature.
func appendUpdateJoin(dst []byte, rows []*binlog.Change, sig updateSig) []byte {
	t := rows[0].Table
	name := sqltext.QualifiedName(t.Schema, t.Name)
	dst = append(dst, "UPDATE "...)
	dst = append(dst, name...)
	dst = append(dst, " JOIN ("...)
	for r, c := range rows {
		if r > 0 {
			dst = append(dst, " UNION ALL "...)
		}
		dst = append(dst, "SELECT "...)
		for j, k := range t.PK {
			if j > 0 {
				dst = append(dst, ',')
			}
			dst = sqltext.AppendLiteral(dst, &t.Columns[k], c.Before[k])
			if r == 0 {
				dst = append(dst, " AS sluice_k"...)
				dst = strconv.AppendInt(dst, int64(j), 10)
			}
		}
		for _, i := range sig {
			dst = append(dst, ',')
			dst = sqltext.AppendLiteral(dst, &t.Columns[i], c.After[i])
			if r == 0 {
				dst = append(dst, " AS sluice_c"...)
				dst = strconv.AppendInt(dst, int64(i), 10)
			}
		}
	}
	dst = append(dst, ") AS sluice_v ON "...)
	for j, k := range t.PK {
		if j > 0 {
			dst = append(dst, " AND "...)
		}
		dst = append(dst, name...)
		dst = append(dst, '.')
		dst = sqltext.AppendIdent(dst, t.Columns[k].Name)
		dst = append(dst, " = sluice_v.sluice_k"...)
		dst = strconv.AppendInt(dst, int64(j), 10)
	}
	dst = append(dst, " SET "...)
	for n, i := range sig {
		if n > 0 {
			dst = append(dst, ", "...)
		}
		dst = append(dst, name...)
		dst = append(dst, '.')
		dst = sqltext.AppendIdent(dst, t.Columns[i].Name)
		dst = append(dst, " = sluice_v.sluice_c"...)
		dst = strconv.AppendInt(dst, int64(i), 10)
	}
	return dst
}
