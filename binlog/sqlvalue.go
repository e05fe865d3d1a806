package binlog

import (
	"encoding/hex"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/sluice-cdc/sluice/binlog/schema"
)

// Reading rows with SELECT (a snapshot) instead of from the binlog: the
// same Table and Values, so that a copied row is written by the same
// literal writer (package sqltext) as a replicated one, byte for byte.
//
// The session that reads them must have character_set_results=binary
// (text arrives as the bytes the column stores) and time_zone='+00:00'
// (TIMESTAMP in UTC, as the binlog has it), and select each column with
// SelectExpr.

// TableFromSchema is the Table a tracked definition describes, with the
// binlog type codes its columns would have in a TABLE_MAP event.
func TableFromSchema(def *schema.Table) *Table {
	t := &Table{Schema: def.Schema, Name: def.Name, Columns: make([]Column, len(def.Columns)), NamesKnown: true, Sequence: def.Sequence}
	for i, c := range def.Columns {
		col := &t.Columns[i]
		col.Name, col.SQLType, col.BaseType, col.Unsigned, col.Nullable = c.Name, c.SQLType, c.Type, c.Unsigned, c.Nullable
		col.Charset, col.Elems, col.JSON, col.Generated, col.Invisible, col.Length = c.Charset, c.Elems, c.JSON, c.Generated, c.Invisible, c.Length
		col.Binary = c.Charset == "binary" && !c.JSON
		col.Type = typeCode(c.Type)
		if col.Type == mysql.MYSQL_TYPE_JSON {
			col.Binary = false
		}
		switch col.Type {
		case mysql.MYSQL_TYPE_TIME2, mysql.MYSQL_TYPE_DATETIME2, mysql.MYSQL_TYPE_TIMESTAMP2:
			if _, p, ok := strings.Cut(c.SQLType, "("); ok {
				col.FSP, _ = strconv.Atoi(strings.TrimSuffix(p, ")"))
			}
		}
	}
	for _, name := range def.RowKey() {
		if i := def.ColumnIndex(name); i >= 0 {
			t.PK = append(t.PK, i)
		}
	}
	return t
}

// typeCode is the binlog type of a base type (the inverse of typeMatches).
func typeCode(base string) byte {
	switch base {
	case "tinyint", "bool", "boolean":
		return mysql.MYSQL_TYPE_TINY
	case "smallint":
		return mysql.MYSQL_TYPE_SHORT
	case "mediumint":
		return mysql.MYSQL_TYPE_INT24
	case "int", "integer":
		return mysql.MYSQL_TYPE_LONG
	case "bigint", "serial":
		return mysql.MYSQL_TYPE_LONGLONG
	case "float":
		return mysql.MYSQL_TYPE_FLOAT
	case "double", "real", "double precision":
		return mysql.MYSQL_TYPE_DOUBLE
	case "decimal", "numeric":
		return mysql.MYSQL_TYPE_NEWDECIMAL
	case "date":
		return mysql.MYSQL_TYPE_NEWDATE
	case "datetime":
		return mysql.MYSQL_TYPE_DATETIME2
	case "timestamp":
		return mysql.MYSQL_TYPE_TIMESTAMP2
	case "time":
		return mysql.MYSQL_TYPE_TIME2
	case "year":
		return mysql.MYSQL_TYPE_YEAR
	case "bit":
		return mysql.MYSQL_TYPE_BIT
	case "char", "binary", "uuid", "inet6", "inet4":
		return mysql.MYSQL_TYPE_STRING
	case "varchar", "varbinary":
		return mysql.MYSQL_TYPE_VARCHAR
	case "enum":
		return mysql.MYSQL_TYPE_ENUM
	case "set":
		return mysql.MYSQL_TYPE_SET
	case "json":
		return mysql.MYSQL_TYPE_JSON
	case "geometry", "point", "linestring", "polygon", "multipoint", "multilinestring", "multipolygon", "geometrycollection", "geomcollection":
		return mysql.MYSQL_TYPE_GEOMETRY
	case "vector":
		return mysql.MYSQL_TYPE_VECTOR
	}
	return mysql.MYSQL_TYPE_BLOB // text and blob types
}

// SelectExpr is the expression that selects column c for CellValue:
// FLOAT widened to DOUBLE (its own text has 6 digits, not the value),
// ENUM and SET as their index and bitmask.
func SelectExpr(c *Column) string {
	name := "`" + strings.ReplaceAll(c.Name, "`", "``") + "`"
	switch {
	case c.Type == mysql.MYSQL_TYPE_FLOAT:
		return "CAST(" + name + " AS DOUBLE)"
	case c.Type == mysql.MYSQL_TYPE_ENUM || c.Type == mysql.MYSQL_TYPE_SET:
		return name + "+0"
	}
	return name
}

// CellValue returns the conversion of a cell selected with SelectExpr
// (not NULL) to the Value the binlog decoder gives for it. The result
// never aliases the cell's bytes.
func CellValue(c *Column) func(b []byte) (Value, error) {
	switch c.Type {
	case mysql.MYSQL_TYPE_TINY, mysql.MYSQL_TYPE_SHORT, mysql.MYSQL_TYPE_INT24, mysql.MYSQL_TYPE_LONG, mysql.MYSQL_TYPE_LONGLONG:
		if c.Unsigned {
			return func(b []byte) (Value, error) { return strconv.ParseUint(string(b), 10, 64) }
		}
		return parseInt
	case mysql.MYSQL_TYPE_YEAR:
		return parseInt
	case mysql.MYSQL_TYPE_BIT:
		return func(b []byte) (Value, error) {
			if len(b) > 8 {
				return nil, fmt.Errorf("BIT value of %d bytes", len(b))
			}
			var v uint64
			for _, x := range b {
				v = v<<8 | uint64(x)
			}
			return v, nil
		}
	case mysql.MYSQL_TYPE_FLOAT:
		return func(b []byte) (Value, error) {
			f, err := strconv.ParseFloat(string(b), 64)
			return float32(f), err // the widened double is exactly the FLOAT
		}
	case mysql.MYSQL_TYPE_DOUBLE:
		return func(b []byte) (Value, error) { return strconv.ParseFloat(string(b), 64) }
	case mysql.MYSQL_TYPE_NEWDECIMAL, mysql.MYSQL_TYPE_DECIMAL:
		return func(b []byte) (Value, error) { return Decimal(b), nil }
	case mysql.MYSQL_TYPE_TIMESTAMP2, mysql.MYSQL_TYPE_TIMESTAMP:
		return func(b []byte) (Value, error) {
			s := string(b)
			// A TIMESTAMP of second 0 with a fraction prints as the zero
			// timestamp; it is 1970-01-01 00:00:00.f UTC (as in decode.go).
			if rest, ok := strings.CutPrefix(s, "0000-00-00 00:00:00."); ok && strings.Trim(rest, "0") != "" {
				s = "1970-01-01 00:00:00." + rest
			}
			return s, nil
		}
	case mysql.MYSQL_TYPE_NEWDATE, mysql.MYSQL_TYPE_DATE, mysql.MYSQL_TYPE_DATETIME2, mysql.MYSQL_TYPE_DATETIME,
		mysql.MYSQL_TYPE_TIME2, mysql.MYSQL_TYPE_TIME:
		return func(b []byte) (Value, error) { return string(b), nil }
	case mysql.MYSQL_TYPE_ENUM:
		conv := enumValue(c.Elems)
		return func(b []byte) (Value, error) {
			idx, err := strconv.ParseUint(string(b), 10, 16)
			if err != nil {
				return nil, err
			}
			return conv(idx)
		}
	case mysql.MYSQL_TYPE_SET:
		conv := setValue(c.Elems)
		return func(b []byte) (Value, error) {
			bits, err := strconv.ParseUint(string(b), 10, 64)
			if err != nil {
				return nil, err
			}
			return conv(bits), nil
		}
	}
	if c.Type == mysql.MYSQL_TYPE_STRING {
		switch c.BaseType {
		case "uuid":
			return func(b []byte) (Value, error) {
				var u UUID
				h := strings.ReplaceAll(string(b), "-", "")
				if len(h) != 32 {
					return nil, fmt.Errorf("UUID text %q", b)
				}
				_, err := hex.Decode(u[:], []byte(h))
				return u, err
			}
		case "inet6":
			return func(b []byte) (Value, error) {
				a, err := netip.ParseAddr(string(b))
				if err != nil {
					return nil, err
				}
				return Inet6(a.As16()), nil
			}
		case "inet4":
			return func(b []byte) (Value, error) {
				a, err := netip.ParseAddr(string(b))
				if err != nil || !a.Is4() {
					return nil, fmt.Errorf("INET4 text %q", b)
				}
				return Inet4(a.As4()), nil
			}
		}
	}
	return bytesValue(c)
}

func parseInt(b []byte) (Value, error) { return strconv.ParseInt(string(b), 10, 64) }
