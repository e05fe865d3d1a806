package sqltext

import (
	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/sluice-cdc/sluice/binlog"
)

// writable reports whether a column can be written: generated columns are
// computed by the target, and columns missing from the row image are left
// as they are.
func writable(t *binlog.Table, img []binlog.Value, i int) bool {
	return !t.Columns[i].Generated && i < len(img) && !binlog.IsAbsent(img[i])
}

// AppendChange appends c as one SQL statement (with a trailing ";").
// With reverse it appends the statement that undoes c (flashback): an
// insert becomes a delete, a delete an insert, and an update restores the
// before image. With wholeRow, an update or delete matches every column of
// the before image, not just the key.
func AppendChange(dst []byte, c *binlog.Change, reverse, wholeRow bool) []byte {
	op, before, after := c.Op, c.Before, c.After
	if reverse {
		switch op {
		case binlog.Insert:
			op, before, after = binlog.Delete, c.After, nil
		case binlog.Delete:
			op, before, after = binlog.Insert, nil, c.Before
		case binlog.Update:
			before, after = c.After, c.Before
		}
	}
	t := c.Table
	switch op {
	case binlog.Insert:
		dst = AppendInsert(dst, "INSERT", []*binlog.Change{{Table: t, Op: binlog.Insert, After: after}})
		return append(dst, ';')
	case binlog.Update:
		dst = append(dst, "UPDATE "...)
		dst = appendTable(dst, t)
		dst = append(dst, " SET "...)
		dst = appendSet(dst, t, before, after)
		dst = AppendWhere(dst, t, before, wholeRow)
		return append(dst, " LIMIT 1;"...)
	default:
		dst = append(dst, "DELETE FROM "...)
		dst = appendTable(dst, t)
		dst = AppendWhere(dst, t, before, wholeRow)
		return append(dst, " LIMIT 1;"...)
	}
}

// appendSet appends the assignments of an update from before to after:
// only the columns whose value changes. With full row images that is the
// same row, it is less for the target to write, and it never writes back a
// value the server stored but will not take in SQL (the empty geometry of
// a NOT NULL GEOMETRY column added to a table with rows, Error 1416).
// TIMESTAMP and DATETIME columns are always written: the target's column
// may update itself (ON UPDATE CURRENT_TIMESTAMP) when it is not set. An
// update that changes no column sets a column to itself, so that it still
// matches (and counts) the row.
func appendSet(dst []byte, t *binlog.Table, before, after []binlog.Value) []byte {
	start := len(dst)
	self := -1
	var a, b []byte
	for i := range t.Columns {
		if !writable(t, after, i) {
			continue
		}
		a = AppendLiteral(a[:0], &t.Columns[i], after[i])
		if writable(t, before, i) && !autoUpdates(&t.Columns[i]) {
			b = AppendLiteral(b[:0], &t.Columns[i], before[i])
			if string(a) == string(b) {
				if self < 0 || t.Columns[self].Type == mysql.MYSQL_TYPE_GEOMETRY {
					self = i
				}
				continue
			}
		}
		if len(dst) > start {
			dst = append(dst, ", "...)
		}
		dst = AppendIdent(dst, t.Columns[i].Name)
		dst = append(dst, '=')
		dst = append(dst, a...)
	}
	if len(dst) == start && self >= 0 {
		dst = AppendIdent(dst, t.Columns[self].Name)
		dst = append(dst, '=')
		dst = AppendIdent(dst, t.Columns[self].Name)
	}
	return dst
}

// autoUpdates reports whether a column's type can update itself when an
// update does not set it (ON UPDATE CURRENT_TIMESTAMP).
func autoUpdates(c *binlog.Column) bool {
	switch c.Type {
	case mysql.MYSQL_TYPE_TIMESTAMP, mysql.MYSQL_TYPE_TIMESTAMP2, mysql.MYSQL_TYPE_DATETIME, mysql.MYSQL_TYPE_DATETIME2:
		return true
	}
	return false
}

func appendTable(dst []byte, t *binlog.Table) []byte {
	dst = AppendIdent(dst, t.Schema)
	dst = append(dst, '.')
	return AppendIdent(dst, t.Name)
}

// AppendInsert appends one INSERT (or REPLACE) of rows of one table whose
// after images have the same columns present.
//
// The empty value of a GEOMETRY NOT NULL column (what INSERT IGNORE of
// NULL stores) cannot be written as a literal (Error 1416): an INSERT of
// rows with one is an INSERT IGNORE that writes NULL there, which stores
// that same empty value. Its affected-row count still tells a duplicate
// key (0 rows) apart.
func AppendInsert(dst []byte, verb string, rows []*binlog.Change) []byte {
	t := rows[0].Table
	ignore := verb == "INSERT" && hasEmptyGeometry(rows)
	if ignore {
		verb = "INSERT IGNORE"
	}
	cols := InsertColumns(t, rows[0].After)
	dst = appendInsertHead(dst, verb, t, cols)
	for r, c := range rows {
		if r > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, '(')
		for k, i := range cols {
			if k > 0 {
				dst = append(dst, ',')
			}
			if ignore && emptyGeometry(&t.Columns[i], c.After[i]) {
				dst = append(dst, "NULL"...)
			} else {
				dst = AppendLiteral(dst, &t.Columns[i], c.After[i])
			}
		}
		dst = append(dst, ')')
	}
	return dst
}

// appendInsertHead appends "verb INTO t (cols) VALUES ".
func appendInsertHead(dst []byte, verb string, t *binlog.Table, cols []int) []byte {
	dst = append(dst, verb...)
	dst = append(dst, " INTO "...)
	dst = appendTable(dst, t)
	dst = append(dst, " ("...)
	for k, i := range cols {
		if k > 0 {
			dst = append(dst, ',')
		}
		dst = AppendIdent(dst, t.Columns[i].Name)
	}
	return append(dst, ") VALUES "...)
}

// emptyGeometry reports whether v is the empty value of c, a GEOMETRY NOT
// NULL column.
func emptyGeometry(c *binlog.Column, v binlog.Value) bool {
	b, ok := v.([]byte)
	return ok && len(b) == 0 && c.Type == mysql.MYSQL_TYPE_GEOMETRY && !c.Nullable
}

func hasEmptyGeometry(rows []*binlog.Change) bool {
	t := rows[0].Table
	for _, c := range rows {
		for i := range t.Columns {
			if writable(t, c.After, i) && emptyGeometry(&t.Columns[i], c.After[i]) {
				return true
			}
		}
	}
	return false
}

// AppendDeleteIn appends one DELETE of rows of one table by its one-column
// key: DELETE FROM t WHERE k IN (…).
func AppendDeleteIn(dst []byte, rows []*binlog.Change) []byte {
	t := rows[0].Table
	k := t.PK[0]
	dst = append(dst, "DELETE FROM "...)
	dst = appendTable(dst, t)
	dst = append(dst, " WHERE "...)
	dst = AppendIdent(dst, t.Columns[k].Name)
	dst = append(dst, " IN ("...)
	for i, c := range rows {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = AppendLiteral(dst, &t.Columns[k], c.Before[k])
	}
	return append(dst, ')')
}

// KeyColumns returns the columns that identify a row of t in img: the
// primary (or unique NOT NULL) key when it is known and present, otherwise
// every column the image has that is not generated.
func KeyColumns(t *binlog.Table, img []binlog.Value) []int {
	if len(t.PK) > 0 {
		ok := true
		for _, k := range t.PK {
			if k >= len(img) || binlog.IsAbsent(img[k]) {
				ok = false
			}
		}
		if ok {
			return t.PK
		}
	}
	return MatchColumns(t, img)
}

// MatchColumns are the columns of img a WHERE clause matches when the
// whole row is compared: every column present and not generated (generated
// columns follow the others). FLOAT, DOUBLE, JSON and GEOMETRY columns
// take part, compared exactly (see AppendMatch), so that duplicate rows
// differing only there are told apart.
func MatchColumns(t *binlog.Table, img []binlog.Value) []int {
	var cols []int
	for i := range t.Columns {
		if i < len(img) && !binlog.IsAbsent(img[i]) && !t.Columns[i].Generated {
			cols = append(cols, i)
		}
	}
	return cols
}

// AppendWhere appends " WHERE …" matching img by its key (KeyColumns), or
// with wholeRow by every column (MatchColumns). An image with no column to
// match (it cannot be found) matches nothing: " WHERE FALSE".
func AppendWhere(dst []byte, t *binlog.Table, img []binlog.Value, wholeRow bool) []byte {
	dst = append(dst, " WHERE "...)
	cols := KeyColumns(t, img)
	if wholeRow {
		cols = MatchColumns(t, img)
	}
	if len(cols) == 0 {
		return append(dst, "FALSE"...)
	}
	exact := wholeRow || len(t.PK) == 0 || !sameColumns(cols, t.PK)
	for n, i := range cols {
		if n > 0 {
			dst = append(dst, " AND "...)
		}
		dst = AppendMatch(dst, &t.Columns[i], img[i])
		if exact && collated(&t.Columns[i], img[i]) {
			// Rows matched on every column may be duplicates but for text
			// their collation calls equal ('a' and 'A', or trailing
			// spaces under PAD SPACE): the bytes tell them apart.
			dst = append(dst, " AND CAST("...)
			dst = AppendIdent(dst, t.Columns[i].Name)
			dst = append(dst, " AS BINARY)="...)
			dst = AppendLiteral(dst, &t.Columns[i], img[i])
		}
	}
	return dst
}

func sameColumns(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// collated reports whether v, a value of column c, is text that c's
// collation compares (MariaDB's JSON is text too; MySQL's is not).
func collated(c *binlog.Column, v binlog.Value) bool {
	switch v.(type) {
	case string, binlog.RawText:
		return !c.Binary
	case binlog.JSON:
		return c.Type != mysql.MYSQL_TYPE_JSON
	}
	return false
}

// AppendMatch appends the condition that column c holds exactly v:
//
//   - NULL: c IS NULL;
//   - FLOAT: c = the double the stored FLOAT widens to (exact, where the
//     FLOAT's own shortest text would not compare equal);
//   - MySQL's binary JSON: c = CAST(text AS JSON) (a string would compare
//     as a JSON string); MariaDB's JSON is text and compares as text;
//   - GEOMETRY: c = X'…', SRID and WKB bytes;
//   - anything else: c = literal.
func AppendMatch(dst []byte, c *binlog.Column, v binlog.Value) []byte {
	dst = AppendIdent(dst, c.Name)
	if v == nil {
		return append(dst, " IS NULL"...)
	}
	dst = append(dst, '=')
	if c.Type == mysql.MYSQL_TYPE_JSON {
		dst = append(dst, "CAST("...)
		dst = AppendLiteral(dst, c, v)
		return append(dst, " AS JSON)"...)
	}
	return AppendLiteral(dst, c, v)
}
