package sqltext

import (
	"math"
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/sluice-cdc/sluice/binlog"
)

func TestAppendLiteral(t *testing.T) {
	text := func(cs string) *binlog.Column {
		return &binlog.Column{Name: "c", Type: mysql.MYSQL_TYPE_VARCHAR, Charset: cs}
	}
	tests := []struct {
		name string
		col  *binlog.Column
		v    binlog.Value
		want string
	}{
		{"null", nil, nil, "NULL"},
		{"int", nil, int64(-5), "-5"},
		{"uint", nil, uint64(18446744073709551615), "18446744073709551615"},
		{"decimal", nil, binlog.Decimal("-12.340"), "-12.340"},
		{"double has an exponent", nil, 0.5, "0.5e0"},
		{"double with exponent", nil, 1e300, "1e+300"},
		{"float is its exact double", nil, float32(0.1), "0.10000000149011612e0"},
		{"float zero", nil, float32(0), "0e0"},
		{"double NaN", nil, math.NaN(), "NULL"},
		{"ascii", text("utf8mb4"), "abc", "'abc'"},
		{"quote doubled", text("utf8mb4"), "it's", "'it''s'"},
		{"injection", text("utf8mb4"), `a\'; DROP TABLE t; -- `, "_utf8mb4 X'615c273b2044524f50205441424c4520743b202d2d20'"},
		{"newline as hex", text("utf8mb4"), "a\nb", "_utf8mb4 X'610a62'"},
		{"utf8 printable", text("utf8mb4"), "héllo", "_utf8mb4'héllo'"},
		{"utf8mb3 column", text("utf8mb3"), "é", "_utf8mb4'é'"},
		{"latin1 back to its bytes", text("latin1"), "é\u0081", "_latin1 X'e981'"},
		{"latin1 ascii", text("latin1"), "x'y", "'x''y'"},
		{"ucs2 ascii", text("ucs2"), "abc", "_ucs2 X'006100620063'"},
		{"ucs2 non-ascii", text("ucs2"), "é", "_ucs2 X'00e9'"},
		{"cp1251", text("cp1251"), "Ж", "_cp1251 X'c6'"},
		{"raw ascii", text("ascii"), binlog.RawText{Bytes: []byte{0x41, 0xff}, Charset: "ascii"}, "_ascii X'41ff'"},
		{"raw invalid utf8", text("utf8mb4"), binlog.RawText{Bytes: []byte{0xff}, Charset: "utf8mb4"}, "_utf8mb4 X'ff'"},
		{"raw unknown charset", nil, binlog.RawText{Bytes: []byte{0xff}}, "X'ff'"},
		{"unknown column", nil, "a\\b", "_utf8mb4 X'615c62'"},
		{"binary", nil, []byte{0, 1, 0xff}, "X'0001ff'"},
		{"empty binary", nil, []byte{}, "X''"},
		{"enum by index", nil, binlog.Enum{Index: 2, Name: "b"}, "2"},
		{"invalid enum", nil, binlog.Enum{}, "0"},
		{"set by bitmask", nil, binlog.Set{Bits: 5, Names: "a,c"}, "5"},
		{"uuid", nil, binlog.UUID{0x12, 0x3e}, "_utf8mb4'123e0000-0000-0000-0000-000000000000'"},
		{"inet4", nil, binlog.Inet4{}, "_utf8mb4'0.0.0.0'"},
		{"inet6", nil, binlog.Inet6{}, "_utf8mb4'::'"},
		{"json", nil, binlog.JSON(`{"a":"b\n"}`), `_utf8mb4 X'7b2261223a22625c6e227d'`},
		{"vector", nil, []float32{1}, "X'0000803f'"},
		{"temporal", nil, "2020-02-31", "'2020-02-31'"},
		{"unknown type fails the statement", nil, int32(1), "sluice_cannot_write_int32"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(AppendLiteral(nil, tt.col, tt.v)); got != tt.want {
				t.Errorf("AppendLiteral(%#v) = %s, want %s", tt.v, got, tt.want)
			}
		})
	}
}

func TestQuoteIdent(t *testing.T) {
	for in, want := range map[string]string{"a": "`a`", "q`b": "`q``b`", "": "``", `x"y`: "`x\"y`"} {
		if got := QuoteIdent(in); got != want {
			t.Errorf("QuoteIdent(%q) = %s, want %s", in, got, want)
		}
		if got := string(AppendIdent(nil, in)); got != want {
			t.Errorf("AppendIdent(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestAppendChange(t *testing.T) {
	keyed := &binlog.Table{Schema: "d", Name: "t", NamesKnown: true, PK: []int{0}, Columns: []binlog.Column{
		{Name: "id", Type: mysql.MYSQL_TYPE_LONG}, {Name: "v", Type: mysql.MYSQL_TYPE_VARCHAR, Charset: "utf8mb4"},
		{Name: "g", Type: mysql.MYSQL_TYPE_LONG, Generated: true}}}
	floats := &binlog.Table{Schema: "d", Name: "f", NamesKnown: true, Columns: []binlog.Column{
		{Name: "c", Type: mysql.MYSQL_TYPE_FLOAT}, {Name: "g", Type: mysql.MYSQL_TYPE_GEOMETRY, Binary: true},
		{Name: "j", Type: mysql.MYSQL_TYPE_BLOB, JSON: true}, {Name: "mj", Type: mysql.MYSQL_TYPE_JSON, JSON: true}}}
	tests := []struct {
		name     string
		c        *binlog.Change
		reverse  bool
		wholeRow bool
		want     string
	}{
		{"insert", &binlog.Change{Table: keyed, Op: binlog.Insert, After: []binlog.Value{int64(1), "x", int64(2)}}, false, false,
			"INSERT INTO `d`.`t` (`id`,`v`) VALUES (1,'x');"},
		{"update by key", &binlog.Change{Table: keyed, Op: binlog.Update, Before: []binlog.Value{int64(1), "x", nil}, After: []binlog.Value{int64(1), "y", nil}}, false, false,
			"UPDATE `d`.`t` SET `v`='y' WHERE `id`=1 LIMIT 1;"},
		{"update whole row", &binlog.Change{Table: keyed, Op: binlog.Update, Before: []binlog.Value{int64(1), nil, nil}, After: []binlog.Value{int64(1), "y", nil}}, false, true,
			"UPDATE `d`.`t` SET `v`='y' WHERE `id`=1 AND `v` IS NULL LIMIT 1;"},
		{"reverse insert", &binlog.Change{Table: keyed, Op: binlog.Insert, After: []binlog.Value{int64(1), "x", nil}}, true, false,
			"DELETE FROM `d`.`t` WHERE `id`=1 LIMIT 1;"},
		{"keyless float, geometry, json", &binlog.Change{Table: floats, Op: binlog.Delete,
			Before: []binlog.Value{float32(0.5), []byte{1, 2}, binlog.JSON(`null`), binlog.JSON(`{}`)}}, false, false,
			"DELETE FROM `d`.`f` WHERE `c`=0.5e0 AND `g`=X'0102' AND `j`='null' AND CAST(`j` AS BINARY)='null' AND `mj`=CAST('{}' AS JSON) LIMIT 1;"},
		{"nothing to match", &binlog.Change{Table: floats, Op: binlog.Delete,
			Before: []binlog.Value{binlog.Absent, binlog.Absent, binlog.Absent, binlog.Absent}}, false, false,
			"DELETE FROM `d`.`f` WHERE FALSE LIMIT 1;"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(AppendChange(nil, tt.c, tt.reverse, tt.wholeRow)); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}
