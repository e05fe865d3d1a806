package binlog_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/sluice-cdc/sluice/binlog"
)

// TestCellsMatchCellValue: the arena conversion gives what CellValue
// gives, value for value, for every column kind and odd cells (empty,
// out of range, non-ASCII, invalid UTF-8), and the same errors.
func TestCellsMatchCellValue(t *testing.T) {
	long := strings.Repeat("é", 700) // past the arena's per-value limit
	cases := []struct {
		col   binlog.Column
		cells []string
	}{
		{binlog.Column{Type: mysql.MYSQL_TYPE_LONG}, []string{"0", "7", "255", "256", "-1", "-2147483648", "x", ""}},
		{binlog.Column{Type: mysql.MYSQL_TYPE_LONGLONG, Unsigned: true}, []string{"0", "255", "256", "18446744073709551615", "18446744073709551616", "-1"}},
		{binlog.Column{Type: mysql.MYSQL_TYPE_TINY, Unsigned: true}, []string{"0", "200"}},
		{binlog.Column{Type: mysql.MYSQL_TYPE_YEAR, Unsigned: true}, []string{"0", "2024"}},
		{binlog.Column{Type: mysql.MYSQL_TYPE_NEWDECIMAL}, []string{"0.00", "-12345678901234567890.123456789", ""}},
		{binlog.Column{Type: mysql.MYSQL_TYPE_NEWDATE}, []string{"2024-02-29", "0000-00-00"}},
		{binlog.Column{Type: mysql.MYSQL_TYPE_DATETIME2, FSP: 6}, []string{"2024-02-29 12:34:56.123456"}},
		{binlog.Column{Type: mysql.MYSQL_TYPE_TIME2}, []string{"-838:59:59", "00:00:00"}},
		{binlog.Column{Type: mysql.MYSQL_TYPE_TIMESTAMP2, FSP: 3}, []string{"2024-02-29 12:34:56.123", "0000-00-00 00:00:00.500", "0000-00-00 00:00:00.000"}},
		{binlog.Column{Type: mysql.MYSQL_TYPE_FLOAT}, []string{"0.1", "1e38", "x"}},
		{binlog.Column{Type: mysql.MYSQL_TYPE_DOUBLE}, []string{"0.1", "-1.5e300"}},
		{binlog.Column{Type: mysql.MYSQL_TYPE_BIT}, []string{"\x01", "\xff\xff", "123456789"}},
		{binlog.Column{Type: mysql.MYSQL_TYPE_ENUM, Elems: []string{"a", "b"}}, []string{"1", "2", "0"}},
		{binlog.Column{Type: mysql.MYSQL_TYPE_SET, Elems: []string{"a", "b"}}, []string{"0", "3"}},
		{binlog.Column{Type: mysql.MYSQL_TYPE_STRING, Charset: "latin1"}, []string{"", "abc", "caf\xe9", "c4ca4238a0b923820dcc509a6f75849b"}},
		{binlog.Column{Type: mysql.MYSQL_TYPE_VARCHAR, Charset: "utf8mb4"}, []string{"", "plain", "日本語", "\xff\xfe", long}},
		{binlog.Column{Type: mysql.MYSQL_TYPE_VARCHAR, Charset: "sjis"}, []string{"abc", "\x82\xa0"}},
		{binlog.Column{Type: mysql.MYSQL_TYPE_VARCHAR, Charset: "ucs2"}, []string{"\x00a"}},
		{binlog.Column{Type: mysql.MYSQL_TYPE_STRING, Binary: true, Length: 4}, []string{"ab", "abcd"}},
		{binlog.Column{Type: mysql.MYSQL_TYPE_BLOB, Binary: true}, []string{"", "\x00\x01", long}},
		{binlog.Column{Type: mysql.MYSQL_TYPE_BLOB, Charset: "utf8mb4", JSON: true}, []string{`{"a": 1}`, ""}},
		{binlog.Column{Type: mysql.MYSQL_TYPE_STRING, BaseType: "uuid"}, []string{"123e4567-e89b-12d3-a456-426614174000", "bad"}},
		{binlog.Column{Type: mysql.MYSQL_TYPE_STRING, BaseType: "inet6"}, []string{"::1", "bad"}},
		{binlog.Column{Type: mysql.MYSQL_TYPE_STRING, BaseType: "inet4"}, []string{"10.0.0.1", "::1"}},
		{binlog.Column{Type: mysql.MYSQL_TYPE_GEOMETRY}, []string{"\x00\x00\x00\x00\x01"}},
		{binlog.Column{Type: mysql.MYSQL_TYPE_VECTOR}, []string{"\x00\x00\x80\x3f", "\x00"}},
	}
	var cols []binlog.Column
	for _, c := range cases {
		cols = append(cols, c.col)
	}
	cells := binlog.NewCells(cols)
	for i, c := range cases {
		want := binlog.CellValue(&cols[i])
		for _, cell := range c.cells {
			b := []byte(cell)
			got, gotErr := cells.Value(i, b)
			exp, expErr := want([]byte(cell))
			if (gotErr == nil) != (expErr == nil) {
				t.Fatalf("column %d (type %d) cell %q: error %v, CellValue's %v", i, c.col.Type, cell, gotErr, expErr)
			}
			if expErr != nil {
				continue
			}
			if !reflect.DeepEqual(got, exp) {
				t.Fatalf("column %d (type %d) cell %q: %#v, CellValue gives %#v", i, c.col.Type, cell, got, exp)
			}
			// The value does not alias the cell.
			for j := range b {
				b[j] = 'Z'
			}
			if !reflect.DeepEqual(got, exp) {
				t.Fatalf("column %d (type %d) cell %q: the value changed with the cell's bytes: %#v", i, c.col.Type, cell, got)
			}
		}
	}
}
