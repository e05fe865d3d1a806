package binlog

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// The conversions from a cell's stored form to a Value, shared by sluice's
// own row decoder (rows.go) and the go-mysql path (decode.go).

// enumValue converts an ENUM index. Without member names the index stays
// a number, as mysqlbinlog prints it.
func enumValue(elems []string) func(idx uint64) (Value, error) {
	return func(idx uint64) (Value, error) {
		switch {
		case idx == 0:
			return Enum{}, nil // the "invalid value" a non-strict sql_mode stores
		case elems == nil:
			return int64(idx), nil
		case idx > uint64(len(elems)):
			return nil, fmt.Errorf("ENUM index %d out of range for %d members", idx, len(elems))
		}
		return Enum{Index: uint16(idx), Name: elems[idx-1]}, nil
	}
}

// setValue converts a SET bitmask. Without member names the bitmask stays
// a number.
func setValue(elems []string) func(bits uint64) Value {
	return func(bits uint64) Value {
		if elems == nil {
			return int64(bits)
		}
		out := make([]byte, 0, 32)
		for i, e := range elems {
			if i < 64 && bits&(1<<uint(i)) != 0 {
				if len(out) > 0 {
					out = append(out, ',')
				}
				out = append(out, e...)
			}
		}
		return Set{Bits: bits, Names: string(out)}
	}
}

// bytesValue returns the conversion of a string-typed cell's bytes (the
// length prefix removed) to the column's Value: text, bytes, JSON, a
// vector or a MariaDB UUID/INET value. The result never aliases b.
func bytesValue(c *Column) func(b []byte) (Value, error) {
	conv := bytesValueIn(c)
	return func(b []byte) (Value, error) { return conv(b, nil) }
}

// bytesValueIn is bytesValue with the value's memory taken from an arena.
func bytesValueIn(c *Column) func(b []byte, a *arena) (Value, error) {
	pad := 0
	if c.Type == mysql.MYSQL_TYPE_STRING && c.Binary {
		pad = c.Length // BINARY(n) loses its zero padding in the binlog
	}
	switch {
	case c.Type == mysql.MYSQL_TYPE_VECTOR:
		return func(b []byte, a *arena) (Value, error) {
			if len(b)%4 != 0 {
				return nil, fmt.Errorf("VECTOR value of %d bytes is not a list of float32", len(b))
			}
			vec := make([]float32, len(b)/4)
			for i := range vec {
				vec[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[i*4:]))
			}
			return vec, nil
		}
	case c.JSON:
		// MariaDB's JSON is LONGTEXT with a json_valid() check, which is how
		// the schema tracker knows the column is JSON: the text is valid
		// JSON, except the empty text that ALTER TABLE … ADD j JSON NOT
		// NULL gives the existing rows (the check is not applied to them).
		// That text is kept as it is, not read as the document null: it is
		// another value, which a keyless match of the row must find.
		return func(b []byte, a *arena) (Value, error) {
			return a.dataJSON(b), nil
		}
	case c.Type == mysql.MYSQL_TYPE_STRING && c.BaseType == "uuid":
		return func(b []byte, a *arena) (Value, error) {
			var u UUID
			if len(b) > len(u) {
				return nil, fmt.Errorf("UUID value of %d bytes", len(b))
			}
			copy(u[:], b) // trailing zero bytes are not logged
			return u, nil
		}
	case c.Type == mysql.MYSQL_TYPE_STRING && c.BaseType == "inet6":
		return func(b []byte, a *arena) (Value, error) {
			var ip Inet6
			if len(b) > len(ip) {
				return nil, fmt.Errorf("INET6 value of %d bytes", len(b))
			}
			copy(ip[:], b)
			return ip, nil
		}
	case c.Type == mysql.MYSQL_TYPE_STRING && c.BaseType == "inet4":
		return func(b []byte, a *arena) (Value, error) {
			var ip Inet4
			if len(b) > len(ip) {
				return nil, fmt.Errorf("INET4 value of %d bytes", len(b))
			}
			copy(ip[:], b)
			return ip, nil
		}
	case c.Binary || c.Type == mysql.MYSQL_TYPE_GEOMETRY,
		// A BLOB or TEXT whose character set is unknown: keep the bytes.
		c.Charset == "" && c.Type != mysql.MYSQL_TYPE_STRING && c.Type != mysql.MYSQL_TYPE_VARCHAR && c.Type != mysql.MYSQL_TYPE_VAR_STRING:
		return func(b []byte, a *arena) (Value, error) {
			if pad <= len(b) {
				return a.dataBlob(b), nil
			}
			out := make([]byte, pad)
			copy(out, b)
			return out, nil
		}
	}
	text := textDecoderIn(c.Charset)
	return func(b []byte, a *arena) (Value, error) { return text(b, a), nil }
}
