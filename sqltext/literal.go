// Package sqltext renders SQL: identifiers, literals and the row statements
// (INSERT, UPDATE, DELETE, and their reverse for flashback) that the MySQL
// sink applies, `sluice dump --format sql` prints, and verify and the NATS
// outbox run.
//
// Everything it writes means the same whatever the session's sql_mode
// (NO_BACKSLASH_ESCAPES, ANSI_QUOTES) and connection character set: it
// never writes a backslash escape or a double-quoted string, and text that
// is not plain printable ASCII carries a character set introducer, as hex
// when it has bytes a client could mangle.
package sqltext

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/sluice-cdc/sluice/binlog"
	"github.com/sluice-cdc/sluice/binlog/schema"
)

// QuoteIdent quotes an identifier with backticks. The schema tracker,
// below sqltext (sqltext's values come from binlog, which tracks schemas
// with binlog/schema), has the one implementation.
func QuoteIdent(s string) string { return schema.QuoteIdent(s) }

// AppendIdent appends s quoted with backticks.
func AppendIdent(dst []byte, s string) []byte {
	dst = append(dst, '`')
	for i := 0; i < len(s); i++ {
		if s[i] == '`' {
			dst = append(dst, '`')
		}
		dst = append(dst, s[i])
	}
	return append(dst, '`')
}

// QualifiedName is `schema`.`table`.
func QualifiedName(schema, table string) string {
	return QuoteIdent(schema) + "." + QuoteIdent(table)
}

// AppendString appends s (UTF-8 text) as a string literal: '…' when it is
// printable ASCII, _utf8mb4'…' when it is printable UTF-8, and
// _utf8mb4 X'…' otherwise. A quote is doubled, never escaped.
func AppendString(dst []byte, s string) []byte {
	switch plainness(s) {
	case plainASCII:
		return appendQuoted(dst, s)
	case plainUTF8:
		return appendUTF8Quoted(dst, s)
	}
	return appendHexText(dst, "utf8mb4", []byte(s))
}

// AppendValue appends v as a literal without knowing its column: text as
// AppendString does.
func AppendValue(dst []byte, v binlog.Value) []byte { return AppendLiteral(dst, nil, v) }

// AppendLiteral appends v, a value of column col (nil if unknown), as a
// SQL literal that stores exactly v in that column:
//
//   - text is converted back to the column's character set and written as
//     _charset X'…' unless it is printable ASCII (or printable UTF-8 for a
//     UTF-8 column); RawText is always _charset X'…'; plain printable
//     ASCII, for an ASCII-compatible column only, is the one literal the
//     session's character set is left to read (the same bytes in any
//     ASCII-compatible one, binary included);
//   - ENUM and SET by index and bitmask, which no collation can confuse;
//   - FLOAT and DOUBLE as double literals (with an exponent), exact;
//   - binary strings and GEOMETRY as X'…'; UUID and INET values in their
//     text form, as _utf8mb4'…'.
func AppendLiteral(dst []byte, col *binlog.Column, v binlog.Value) []byte {
	switch x := v.(type) {
	case nil:
		return append(dst, "NULL"...)
	case int64:
		return strconv.AppendInt(dst, x, 10)
	case uint64:
		return strconv.AppendUint(dst, x, 10)
	case float32:
		return appendDouble(dst, float64(x))
	case float64:
		return appendDouble(dst, x)
	case binlog.Decimal:
		return append(dst, x...)
	case string:
		return appendText(dst, col, x)
	case binlog.RawText:
		return appendHexText(dst, x.Charset, x.Bytes)
	case binlog.JSON:
		// JSON text is utf8mb4, and a string with a character set is what
		// MySQL's JSON type accepts (a binary string is not).
		return AppendString(dst, string(x))
	case binlog.Enum:
		return strconv.AppendUint(dst, uint64(x.Index), 10)
	case binlog.Set:
		return strconv.AppendUint(dst, x.Bits, 10)
	case binlog.UUID:
		// The text form: what every MariaDB version reads the same way,
		// whatever order it stores a UUID's bytes in. With a character
		// set: a binary string (as a plain one is on a session whose
		// character set is binary) is read as the binary form.
		return appendUTF8Quoted(dst, x.String())
	case binlog.Inet4:
		return appendUTF8Quoted(dst, x.String())
	case binlog.Inet6:
		return appendUTF8Quoted(dst, x.String())
	case []byte:
		return appendHex(dst, x)
	case []float32:
		b := make([]byte, 4*len(x))
		for i, f := range x {
			binary.LittleEndian.PutUint32(b[i*4:], math.Float32bits(f))
		}
		return appendHex(dst, b)
	}
	// A value type this writer does not know must not become NULL or any
	// other value silently: the statement fails, naming it.
	return fmt.Appendf(dst, "sluice_cannot_write_%T", v)
}

// appendText writes text of column col: exactly the bytes the column's
// character set stores for it.
func appendText(dst []byte, col *binlog.Column, s string) []byte {
	p := plainness(s)
	if col == nil {
		if p == plainASCII {
			return appendQuoted(dst, s)
		}
	} else if p == plainASCII && binlog.ASCIICompatible(col.Charset) {
		return appendQuoted(dst, s)
	}
	cs := ""
	if col != nil {
		cs = strings.ToLower(col.Charset)
	}
	switch {
	case cs == "" || cs == "utf8mb4" || cs == "utf8mb3" || cs == "utf8" || cs == "binary":
		if p != notPlain {
			return appendUTF8Quoted(dst, s)
		}
		return appendHexText(dst, "utf8mb4", []byte(s))
	}
	if b, ok := binlog.EncodeText(s, cs); ok {
		return appendHexText(dst, cs, b)
	}
	// A character the column's character set cannot store (text that did
	// not come from this column): the server converts, as it would for
	// the client that wrote it.
	return AppendString(dst, s)
}

type plain int

const (
	notPlain   plain = iota
	plainASCII       // printable ASCII, no backslash
	plainUTF8        // printable valid UTF-8, no backslash
)

// plainness classifies s: a backslash, a control byte or invalid UTF-8
// make it not plain, as their meaning depends on the session. Text is
// checked 8 bytes at a time while they are printable ASCII without a
// backslash (a snapshot writes millions of such values).
func plainness(s string) plain {
	i := 0
	for ; i+8 <= len(s); i += 8 {
		if !plainWord(load64(s[i : i+8])) {
			break
		}
	}
	p := plainASCII
	for ; i < len(s); i++ {
		c := s[i]
		if c == '\\' || c < 0x20 || c == 0x7f {
			return notPlain
		}
		if c >= 0x80 {
			p = plainUTF8
		}
	}
	if p == plainUTF8 {
		if !utf8.ValidString(s) {
			return notPlain
		}
		for _, r := range s {
			if r >= 0x80 && r < 0xa0 || r == 0x2028 || r == 0x2029 {
				return notPlain // C1 controls and line separators: hex in dumps
			}
		}
	}
	return p
}

// Masks of plainWord: a byte's high bit, and each byte set to 1.
const (
	highBits = 0x8080808080808080
	lowBits  = 0x0101010101010101
)

// plainWord reports whether the 8 bytes of w are all printable ASCII
// (0x20 to 0x7e) and none is a backslash. Each test adds to every byte
// without carrying into the next (the high bit cleared first), so a
// byte's high bit tells its answer.
func plainWord(w uint64) bool {
	low := w &^ highBits // each byte's value below 0x80
	// A byte's low+0x60 reaches 0x80 when it is at least 0x20.
	atLeast20 := (low + 0x60*lowBits) & highBits
	// low+0x01 reaches 0x80 only for 0x7f.
	is7f := (low + 0x01*lowBits) & highBits
	// low^0x5c is 0 only for a backslash; +0x7f reaches 0x80 otherwise.
	notBackslash := ((low ^ 0x5c*lowBits) + 0x7f*lowBits) & highBits
	return w&highBits == 0 && atLeast20 == highBits && is7f == 0 && notBackslash == highBits
}

// load64 reads the first 8 bytes of s as a little-endian word (one load:
// the compiler combines them).
func load64(s string) uint64 {
	_ = s[7]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// appendUTF8Quoted appends s, printable UTF-8 text, as _utf8mb4'…': a
// literal no session's character set reads otherwise.
func appendUTF8Quoted(dst []byte, s string) []byte {
	return appendQuoted(append(dst, "_utf8mb4"...), s)
}

// appendQuoted appends s between single quotes, each quote in it doubled.
func appendQuoted(dst []byte, s string) []byte {
	dst = append(dst, '\'')
	for {
		i := strings.IndexByte(s, '\'')
		if i < 0 {
			break
		}
		dst = append(dst, s[:i+1]...)
		dst = append(dst, '\'')
		s = s[i+1:]
	}
	dst = append(dst, s...)
	return append(dst, '\'')
}

// AppendCharsetBytes appends b, bytes in charset cs, as _cs X'…' (with
// an empty cs, or "binary", as a bare X'…').
func AppendCharsetBytes(dst []byte, cs string, b []byte) []byte { return appendHexText(dst, cs, b) }

func appendHexText(dst []byte, cs string, b []byte) []byte {
	if cs != "" && cs != "binary" {
		if cs == "utf8" {
			cs = "utf8mb3"
		}
		dst = append(dst, '_')
		dst = append(dst, cs...)
		dst = append(dst, ' ')
	}
	dst = append(dst, "X'"...)
	dst = hex.AppendEncode(dst, b)
	return append(dst, '\'')
}

func appendHex(dst, b []byte) []byte {
	dst = append(dst, "X'"...)
	dst = hex.AppendEncode(dst, b)
	return append(dst, '\'')
}

// appendDouble writes f as a double literal: the shortest decimal that
// reads back as the same double, with an exponent so
// that MySQL reads it as a DOUBLE, not as an exact DECIMAL. A FLOAT value
// is written as the double it widens to, so that comparing a FLOAT column
// with it is exact. NaN and infinities, which MySQL cannot store, are NULL.
func appendDouble(dst []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(dst, "NULL"...)
	}
	// A FLOAT's 0.1 is 0.100000001490116...: "0.1" would store the same
	// FLOAT but not compare equal to it, so it is written as a double.
	start := len(dst)
	dst = binlog.AppendFloat(dst, f, 64)
	for _, c := range dst[start:] {
		if c == 'e' || c == 'E' {
			return dst
		}
	}
	return append(dst, "e0"...)
}
