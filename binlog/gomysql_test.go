package binlog

import (
	"strings"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
)

// The differential test of sluice's row decoder decodes the same rows with
// go-mysql (decoder.goMySQLRows): these convert go-mysql's values into
// sluice's, and are the test's oracle. sluice itself decodes every value
// with rows.go, and takes only MySQL's binary JSON from go-mysql.
func init() { convertGoMySQL = converter }

// converter returns the function that turns go-mysql's decoded value for a
// column into a Value (see Value for the types).
func converter(c *Column) func(Value) (Value, error) {
	switch c.Type {
	case mysql.MYSQL_TYPE_TINY, mysql.MYSQL_TYPE_SHORT, mysql.MYSQL_TYPE_LONG, mysql.MYSQL_TYPE_LONGLONG:
		unsigned := c.Unsigned
		return func(v Value) (Value, error) { return normalizeInt(v, unsigned), nil }
	case mysql.MYSQL_TYPE_INT24:
		unsigned := c.Unsigned
		return func(v Value) (Value, error) {
			// go-mysql decodes MEDIUMINT into an int32 sign-extended from 24 bits.
			if x, ok := v.(int32); ok && unsigned {
				return uint64(uint32(x) & 0xFFFFFF), nil
			}
			return normalizeInt(v, unsigned), nil
		}
	case mysql.MYSQL_TYPE_TIME2, mysql.MYSQL_TYPE_DATETIME2, mysql.MYSQL_TYPE_TIMESTAMP2:
		fsp, typ := c.FSP, c.Type
		return func(v Value) (Value, error) {
			if s, ok := v.(string); ok {
				s = padFraction(s, fsp)
				// go-mysql prints a TIMESTAMP of second 0 with a fraction
				// as the zero timestamp; it is 1970-01-01 00:00:00.f UTC.
				if rest, ok := strings.CutPrefix(s, "0000-00-00 00:00:00."); ok && typ == mysql.MYSQL_TYPE_TIMESTAMP2 &&
					strings.Trim(rest, "0") != "" {
					s = "1970-01-01 00:00:00." + rest
				}
				return s, nil
			}
			return v, nil
		}
	case mysql.MYSQL_TYPE_YEAR:
		return func(v Value) (Value, error) { return normalizeInt(v, false), nil }
	case mysql.MYSQL_TYPE_BIT:
		return func(v Value) (Value, error) {
			if i, ok := v.(int64); ok {
				return uint64(i), nil
			}
			return v, nil
		}
	case mysql.MYSQL_TYPE_NEWDECIMAL, mysql.MYSQL_TYPE_DECIMAL:
		return func(v Value) (Value, error) {
			if s, ok := v.(string); ok {
				return Decimal(s), nil
			}
			return v, nil
		}
	case mysql.MYSQL_TYPE_ENUM:
		conv := enumValue(c.Elems)
		return func(v Value) (Value, error) {
			if i, ok := v.(int64); ok {
				return conv(uint64(i))
			}
			return v, nil
		}
	case mysql.MYSQL_TYPE_SET:
		conv := setValue(c.Elems)
		return func(v Value) (Value, error) {
			if bits, ok := v.(int64); ok {
				return conv(uint64(bits)), nil
			}
			return v, nil
		}
	case mysql.MYSQL_TYPE_STRING, mysql.MYSQL_TYPE_VARCHAR, mysql.MYSQL_TYPE_VAR_STRING, mysql.MYSQL_TYPE_BLOB,
		mysql.MYSQL_TYPE_GEOMETRY, mysql.MYSQL_TYPE_VECTOR:
		conv := bytesValue(c)
		return func(v Value) (Value, error) {
			switch x := v.(type) {
			case string:
				return conv([]byte(x))
			case []byte:
				return conv(x)
			}
			return v, nil
		}
	case mysql.MYSQL_TYPE_JSON:
		return func(v Value) (Value, error) {
			if _, ok := v.(*replication.JsonDiff); ok {
				return nil, ErrPartialJSON
			}
			return toJSON(v), nil
		}
	}
	return func(v Value) (Value, error) { return v, nil }
}

// padFraction gives a temporal value exactly fsp fractional digits, as the
// server prints it: go-mysql drops an all-zero fraction of TIME(n).
func padFraction(s string, fsp int) string {
	if fsp <= 0 {
		return s
	}
	dot := strings.LastIndexByte(s, '.')
	if dot < 0 || strings.IndexByte(s[dot:], ':') >= 0 || strings.IndexByte(s[dot:], ' ') >= 0 {
		return s + "." + strings.Repeat("0", fsp)
	}
	if have := len(s) - dot - 1; have < fsp {
		return s + strings.Repeat("0", fsp-have)
	}
	return s
}

// normalizeInt turns go-mysql's sized integers into int64 or uint64. Without
// signedness metadata (MariaDB, MySQL before 8.0.2) go-mysql decodes
// unsigned columns as signed (go-mysql#26, #338, #768); the tracked schema
// says which are unsigned, and the bits are reinterpreted here.
func normalizeInt(v Value, unsigned bool) Value {
	switch x := v.(type) {
	case int8:
		if unsigned {
			return uint64(uint8(x))
		}
		return int64(x)
	case int16:
		if unsigned {
			return uint64(uint16(x))
		}
		return int64(x)
	case int32:
		if unsigned {
			return uint64(uint32(x))
		}
		return int64(x)
	case int64:
		if unsigned {
			return uint64(x)
		}
		return x
	case int:
		return int64(x)
	case uint8:
		return uint64(x)
	case uint16:
		return uint64(x)
	case uint32:
		return uint64(x)
	case uint64:
		return x
	}
	return v
}
