package binlog

import (
	"encoding/hex"
	"net/netip"
	"strconv"
)

// Value is one decoded column value. Its dynamic type is one of:
//
//	nil            SQL NULL
//	int64, uint64  integer types, YEAR; BIT as uint64; ENUM and SET when
//	               the members are unknown (index, bitmask)
//	float32        FLOAT
//	float64        DOUBLE
//	Decimal        DECIMAL, exact, in MySQL's text form
//	string         text whose bytes convert exactly to UTF-8 and back in
//	               the column's character set; temporal types in MySQL's
//	               text form ("2024-01-02 03:04:05.123456", "-838:59:59",
//	               "0000-00-00"); TIMESTAMP in UTC
//	RawText        text that does not survive a round trip through UTF-8
//	               (invalid in its character set, or a character set sluice
//	               cannot convert): the stored bytes and their charset
//	Enum, Set      ENUM and SET: index or bitmask, and member names
//	UUID, Inet4, Inet6  MariaDB's UUID, INET4 and INET6
//	[]byte         binary strings and blobs, GEOMETRY (SRID + WKB)
//	JSON           JSON documents, as JSON text
//	[]float32      VECTOR
//	AbsentValue    the row image did not carry the column
type Value = any

// Decimal is an exact DECIMAL value in MySQL's text form, e.g. "-12.340".
type Decimal string

// JSON is a JSON document as JSON text.
type JSON []byte

// RawText is a text value carried as the bytes the server stored, in the
// column's character set, because converting them to UTF-8 would change
// them: bytes that are invalid in the character set (ascii >= 0x80,
// invalid UTF-8, cp1251 0x98) or a character set sluice does not convert.
type RawText struct {
	Bytes   []byte
	Charset string // MySQL's name, e.g. "latin1"
}

// String is the value's marker form, for logs and messages.
func (r RawText) String() string { return "_" + r.Charset + " X'" + hex.EncodeToString(r.Bytes) + "'" }

// Enum is an ENUM value: its 1-based index (0 is the "invalid value" that
// a non-strict sql_mode stores) and its member name ("" for index 0).
type Enum struct {
	Index uint16
	Name  string
}

// String is the member name.
func (e Enum) String() string { return e.Name }

// Set is a SET value: its member bitmask and the names of the members it
// holds, comma-separated as MySQL prints them.
type Set struct {
	Bits  uint64
	Names string
}

// String is the comma-separated member names.
func (s Set) String() string { return s.Names }

// UUID is a MariaDB UUID value, its 16 bytes in text order.
type UUID [16]byte

// String is the canonical text form, e.g. 123e4567-e89b-12d3-a456-426655440000.
func (u UUID) String() string {
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], u[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], u[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], u[8:10])
	b[23] = '-'
	hex.Encode(b[24:], u[10:])
	return string(b[:])
}

// Inet4 is a MariaDB INET4 value.
type Inet4 [4]byte

// String is the dotted form, e.g. 192.0.2.1.
func (a Inet4) String() string { return netip.AddrFrom4(a).String() }

// Inet6 is a MariaDB INET6 value.
type Inet6 [16]byte

// String is the text form MariaDB prints: RFC 5952, with IPv4-mapped
// (::ffff:a.b.c.d) and IPv4-compatible (::a.b.c.d) addresses in dotted form.
func (a Inet6) String() string {
	ip := netip.AddrFrom16(a)
	if isV4Compatible(a) {
		v4 := netip.AddrFrom4([4]byte(a[12:]))
		return "::" + v4.String()
	}
	return ip.String()
}

// isV4Compatible: ::a.b.c.d (deprecated IPv4-compatible form), which
// MariaDB prints dotted unless the last four bytes make ::, ::1 or
// ::0.0.x.y-like short values (it follows inet_ntop).
func isV4Compatible(a Inet6) bool {
	for _, b := range a[:12] {
		if b != 0 {
			return false
		}
	}
	// inet_ntop prints ::a.b.c.d when the first 96 bits are zero and the
	// last 32 bits do not fit in 16 (i.e. not ::, ::1 or ::x).
	return a[12] != 0 || a[13] != 0
}

// AbsentValue marks a column that a row image did not include.
type AbsentValue struct{}

// Absent is the value of a column missing from a row image.
var Absent Value = AbsentValue{}

// IsAbsent reports whether v marks a column missing from the row image.
func IsAbsent(v Value) bool {
	_, ok := v.(AbsentValue)
	return ok
}

// Text returns v's text form, as JSON and messages show it, and whether v
// has one (false for NULL, numbers' callers aside, vectors and absent
// columns). Binary strings are returned as they are.
func Text(v Value) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case Decimal:
		return string(x), true
	case JSON:
		return string(x), true
	case []byte:
		return string(x), true
	case RawText:
		return string(x.Bytes), true
	case Enum:
		return x.Name, true
	case Set:
		return x.Names, true
	case UUID:
		return x.String(), true
	case Inet4:
		return x.String(), true
	case Inet6:
		return x.String(), true
	case int64:
		return strconv.FormatInt(x, 10), true
	case uint64:
		return strconv.FormatUint(x, 10), true
	}
	return "", false
}
