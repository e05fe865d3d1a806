// Package mysql applies transactions to a MySQL or MariaDB target, one
// target transaction per source transaction, with the checkpoint written in
// the same transaction. It also renders changes as SQL text (sluice dump
// --format sql).
package mysql

import (
	"encoding/binary"
	"encoding/hex"
	"math"
	"regexp"
	"strconv"
	"strings"

	"github.com/sluice-cdc/sluice/binlog"
)

// QuoteIdent quotes an identifier with backticks.
func QuoteIdent(s string) string {
	return "`" + strings.ReplaceAll(s, "`", "``") + "`"
}

// QualifiedName is `schema`.`table`.
func QualifiedName(schema, table string) string {
	return QuoteIdent(schema) + "." + QuoteIdent(table)
}

// AppendLiteral appends v as a SQL literal.
func AppendLiteral(dst []byte, v binlog.Value) []byte {
	switch x := v.(type) {
	case nil:
		return append(dst, "NULL"...)
	case int64:
		return strconv.AppendInt(dst, x, 10)
	case uint64:
		return strconv.AppendUint(dst, x, 10)
	case float32:
		return appendFloat(dst, float64(x), 32)
	case float64:
		return appendFloat(dst, x, 64)
	case binlog.Decimal:
		return append(dst, x...)
	case string:
		return appendQuoted(dst, x)
	case binlog.JSON:
		return appendQuoted(dst, string(x))
	case []byte:
		return appendHex(dst, x)
	case []float32:
		b := make([]byte, 4*len(x))
		for i, f := range x {
			binary.LittleEndian.PutUint32(b[i*4:], math.Float32bits(f))
		}
		return appendHex(dst, b)
	}
	return append(dst, "NULL"...)
}

func appendFloat(dst []byte, f float64, bits int) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(dst, "NULL"...)
	}
	return strconv.AppendFloat(dst, f, 'g', -1, bits)
}

func appendHex(dst, b []byte) []byte {
	if len(b) == 0 {
		return append(dst, "''"...)
	}
	dst = append(dst, "X'"...)
	dst = hex.AppendEncode(dst, b)
	return append(dst, '\'')
}

// appendQuoted quotes a string with the escapes mysqldump uses, which work
// whatever sql_mode (NO_BACKSLASH_ESCAPES aside) the target runs with.
func appendQuoted(dst []byte, s string) []byte {
	dst = append(dst, '\'')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case 0:
			dst = append(dst, '\\', '0')
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\\':
			dst = append(dst, '\\', '\\')
		case '\'':
			dst = append(dst, '\\', '\'')
		case 0x1a:
			dst = append(dst, '\\', 'Z')
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '\'')
}

// writable reports whether a column can be written: generated columns are
// computed by the target, and columns missing from the row image are left
// as they are.
func writable(t *binlog.Table, img []binlog.Value, i int) bool {
	return !t.Columns[i].Generated && i < len(img) && !binlog.IsAbsent(img[i])
}

// AppendChangeSQL appends c as one SQL statement (with a trailing ";").
// With reverse it appends the statement that undoes c (flashback): an
// insert becomes a delete, a delete an insert, and an update restores the
// before image.
func AppendChangeSQL(dst []byte, c *binlog.Change, reverse bool) []byte {
	return appendChange(dst, c, reverse, false)
}

// appendChange is AppendChangeSQL; with wholeRow, an update or delete
// matches every comparable column of the before image, not just the key.
func appendChange(dst []byte, c *binlog.Change, reverse, wholeRow bool) []byte {
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
	name := QualifiedName(t.Schema, t.Name)
	switch op {
	case binlog.Insert:
		dst = appendInsert(dst, "INSERT", []*binlog.Change{{Table: t, Op: binlog.Insert, After: after}})
		return append(dst, ';')
	case binlog.Update:
		dst = append(dst, "UPDATE "...)
		dst = append(dst, name...)
		dst = append(dst, " SET "...)
		first := true
		for i := range t.Columns {
			if !writable(t, after, i) {
				continue
			}
			if !first {
				dst = append(dst, ", "...)
			}
			first = false
			dst = append(dst, QuoteIdent(t.Columns[i].Name)...)
			dst = append(dst, '=')
			dst = AppendLiteral(dst, after[i])
		}
		dst = appendWhere(dst, t, before, wholeRow)
		return append(dst, " LIMIT 1;"...)
	default:
		dst = append(dst, "DELETE FROM "...)
		dst = append(dst, name...)
		dst = appendWhere(dst, t, before, wholeRow)
		return append(dst, " LIMIT 1;"...)
	}
}

// appendInsert appends one INSERT (or REPLACE) of rows of one table whose
// images have the same columns present.
func appendInsert(dst []byte, verb string, rows []*binlog.Change) []byte {
	t := rows[0].Table
	first := rows[0].After
	dst = append(dst, verb...)
	dst = append(dst, " INTO "...)
	dst = append(dst, QualifiedName(t.Schema, t.Name)...)
	dst = append(dst, " ("...)
	n := 0
	for i := range t.Columns {
		if writable(t, first, i) {
			if n > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, QuoteIdent(t.Columns[i].Name)...)
			n++
		}
	}
	dst = append(dst, ") VALUES "...)
	for r, c := range rows {
		if r > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, '(')
		n := 0
		for i := range t.Columns {
			if writable(t, first, i) {
				if n > 0 {
					dst = append(dst, ',')
				}
				dst = AppendLiteral(dst, c.After[i])
				n++
			}
		}
		dst = append(dst, ')')
	}
	return dst
}

// KeyColumns returns the columns that identify a row of t in img: the
// primary (or unique NOT NULL) key when it is known and present, otherwise
// every column the image has that can be compared.
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
	return comparableColumns(t, img)
}

// comparableColumns are the columns of img a WHERE clause can match
// exactly (not JSON, GEOMETRY, FLOAT or generated).
func comparableColumns(t *binlog.Table, img []binlog.Value) []int {
	var cols []int
	for i := range t.Columns {
		if i < len(img) && !binlog.IsAbsent(img[i]) && !t.Columns[i].JSON && !t.Columns[i].Generated &&
			t.Columns[i].Type != typeGeometry && t.Columns[i].Type != typeFloat {
			cols = append(cols, i)
		}
	}
	return cols
}

// Column types a WHERE clause cannot compare reliably: GEOMETRY values are
// not comparable with =, and a FLOAT literal is a DOUBLE that rarely equals
// the stored single-precision value.
const (
	typeGeometry = 255
	typeFloat    = 4
)

func appendWhere(dst []byte, t *binlog.Table, img []binlog.Value, wholeRow bool) []byte {
	dst = append(dst, " WHERE "...)
	cols := KeyColumns(t, img)
	if wholeRow {
		cols = comparableColumns(t, img)
	}
	for n, i := range cols {
		if n > 0 {
			dst = append(dst, " AND "...)
		}
		dst = append(dst, QuoteIdent(t.Columns[i].Name)...)
		if img[i] == nil {
			dst = append(dst, " IS NULL"...)
			continue
		}
		dst = append(dst, '=')
		dst = AppendLiteral(dst, img[i])
	}
	return dst
}

var createDatabase = regexp.MustCompile(`(?is)^\s*(?:/\*.*?\*/\s*)*create\s+(?:database|schema)\b`)

// DDLDatabase is the database a statement must run in: its session's
// default database, except for CREATE DATABASE, which the server logs with
// the new database as default although it does not exist yet.
func DDLDatabase(d *binlog.DDL) string {
	if createDatabase.MatchString(d.SQL) {
		return ""
	}
	return d.Schema
}

// AppendDDLSQL appends a statement transaction: USE db; statement;
func AppendDDLSQL(dst []byte, d *binlog.DDL) []byte {
	if DDLDatabase(d) != "" {
		dst = append(dst, "USE "...)
		dst = append(dst, QuoteIdent(d.Schema)...)
		dst = append(dst, ";\n"...)
	}
	dst = append(dst, d.SQL...)
	return append(dst, ';')
}
