package sqltext

import (
	"strings"
	"unicode/utf8"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/sluice-cdc/sluice/binlog"
)

// Param returns v, a value of column col, as a prepared statement's
// parameter, one of the binary protocol's types (nil, int64, uint64,
// float64, string, []byte), that a session whose character set is binary
// stores as exactly what AppendLiteral's literal stores, and its size in
// bytes. ok is false for a value Param leaves to the literal.
//
// On such a session the server assigns a string parameter's bytes to a
// text column without converting them, only checking that they are well
// formed in the column's character set (as for a binary string literal):
// text is therefore sent as the bytes the column stores for it, and only
// when they are well formed there: UTF-8 for a utf8mb4 column (without
// 4-byte characters for utf8mb3), binlog.EncodeText's bytes for an 8-bit
// or multi-byte one. Numbers go in binary (a FLOAT widened to the double
// that holds it exactly), DECIMAL as its digits, ENUM and SET by index and
// bitmask as the literal does, temporal values as their text. Left to the
// literal: JSON, UUID, INET, VECTOR and GEOMETRY values, RawText, text in
// a character set of 2- or 4-byte units (ucs2, utf16, utf32, whose copy
// of a binary string pads it), and text its column cannot hold.
//
// A value sent as it is comes back as v itself, not boxed again: a
// snapshot sends millions.
func Param(col *binlog.Column, v binlog.Value) (p any, size int, ok bool) {
	switch x := v.(type) {
	case nil:
		return nil, 0, true
	case int64, uint64, float64:
		return v, 8, true
	case float32:
		return float64(x), 8, true
	case binlog.Decimal:
		return string(x), len(x), true
	case binlog.Enum:
		return uint64(x.Index), 8, true
	case binlog.Set:
		return x.Bits, 8, true
	case string:
		if col == nil {
			return nil, 0, false
		}
		b, same, ok := storedText(col, x)
		if same {
			return v, len(x), ok
		}
		return b, len(x), ok
	case []byte:
		if col == nil || col.Type == mysql.MYSQL_TYPE_GEOMETRY {
			return nil, 0, false
		}
		if len(x) == 0 {
			return "", 0, true // an empty []byte may be nil, which is NULL
		}
		return v, len(x), true
	}
	return nil, 0, false
}

// storedText is the parameter for text s of column col: the bytes the
// column stores for it, as a []byte, or same when they are s's.
func storedText(col *binlog.Column, s string) (b []byte, same, ok bool) {
	cs := strings.ToLower(col.Charset)
	if binlog.ASCIICompatible(cs) && binlog.IsASCII(s) {
		return nil, true, true // the same bytes in every ASCII-compatible set
	}
	switch cs {
	case "utf8mb4":
		return nil, true, utf8.ValidString(s)
	case "utf8mb3", "utf8":
		for _, r := range s {
			if r == utf8.RuneError || r > 0xFFFF {
				return nil, false, false // invalid, or not in utf8mb3
			}
		}
		return nil, true, true
	case "", "binary":
		return nil, false, false
	}
	if !binlog.ASCIICompatible(cs) {
		return nil, false, false
	}
	b, ok = binlog.EncodeText(s, cs)
	if len(b) == 0 {
		return nil, true, ok // "", not a nil []byte (NULL)
	}
	return b, false, ok
}

// InsertColumns lists the columns an INSERT of rows whose after image is
// like img writes (AppendInsert's): not generated, present in the image.
func InsertColumns(t *binlog.Table, img []binlog.Value) []int {
	var cols []int
	for i := range t.Columns {
		if writable(t, img, i) {
			cols = append(cols, i)
		}
	}
	return cols
}

// AppendInsertMarks appends an INSERT of n rows into t's columns cols
// whose values are parameter markers, for a prepared statement.
func AppendInsertMarks(dst []byte, t *binlog.Table, cols []int, n int) []byte {
	dst = appendInsertHead(dst, "INSERT", t, cols)
	for r := range n {
		if r > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, '(')
		for k := range cols {
			if k > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, '?')
		}
		dst = append(dst, ')')
	}
	return dst
}
