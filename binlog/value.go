package binlog

// Value is one decoded column value. Its dynamic type is one of:
//
//	nil            SQL NULL
//	int64, uint64  integer types, YEAR; BIT as uint64
//	float32        FLOAT
//	float64        DOUBLE
//	Decimal        DECIMAL, exact, in MySQL's text form
//	string         text types, ENUM and SET (by member names), and temporal
//	               types in MySQL's text form ("2024-01-02 03:04:05.123456",
//	               "-838:59:59", "0000-00-00"); TIMESTAMP in UTC
//	[]byte         binary strings and blobs, GEOMETRY (SRID + WKB)
//	JSON           JSON documents, as JSON text
//	[]float32      VECTOR
//	AbsentValue    the row image did not carry the column
type Value = any

// Decimal is an exact DECIMAL value in MySQL's text form, e.g. "-12.340".
type Decimal string

// JSON is a JSON document as JSON text.
type JSON []byte

// AbsentValue marks a column that a row image did not include.
type AbsentValue struct{}

// Absent is the value of a column missing from a row image.
var Absent Value = AbsentValue{}

// IsAbsent reports whether v marks a column missing from the row image.
func IsAbsent(v Value) bool {
	_, ok := v.(AbsentValue)
	return ok
}
