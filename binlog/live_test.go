package binlog_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/sluice-cdc/sluice/binlog"
	"github.com/sluice-cdc/sluice/internal/testenv"
)

// readAll reads every transaction a live server has, from its oldest
// binlog, and stops at the end.
func readAll(t *testing.T, m *testenv.MariaDB, include ...string) []*binlog.Txn {
	t.Helper()
	return readFrom(t, m, binlog.Start{Mode: binlog.StartOldest}, include...)
}

func readFrom(t *testing.T, m *testenv.MariaDB, start binlog.Start, include ...string) []*binlog.Txn {
	t.Helper()
	f, err := binlog.NewFilter(include, nil)
	if err != nil {
		t.Fatal(err)
	}
	var out []*binlog.Txn
	testenv.ReadSource(t, m, start, binlog.DecodeOptions{Filter: f, SpillBytes: 4096}, func(tx *binlog.Txn) {
		t.Cleanup(func() { tx.Close() })
		out = append(out, tx)
	})
	return out
}

func changes(t *testing.T, tx *binlog.Txn) []*binlog.Change {
	t.Helper()
	var out []*binlog.Change
	for c, err := range tx.Changes() {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

// column describes one column of the type matrix: its definition, how to
// SELECT it as text, and how to render the decoded value the same way.
type column struct {
	name, def string
	sel       string                    // select expression; default: the column
	render    func(binlog.Value) string // default: renderText
	equal     func(got, want string) bool
}

func renderText(v binlog.Value) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case int64:
		return strconv.FormatInt(x, 10)
	case uint64:
		return strconv.FormatUint(x, 10)
	case binlog.Decimal:
		return string(x)
	case string:
		return x
	case binlog.JSON:
		return string(x)
	case binlog.Enum:
		return x.Name
	case binlog.Set:
		return x.Names
	case []byte:
		return strings.ToUpper(hex.EncodeToString(x))
	case float32:
		return strconv.FormatFloat(float64(x), 'g', -1, 64)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	}
	return fmt.Sprintf("%T(%v)", v, v)
}

func floatEqual(got, want string) bool {
	if got == want {
		return true
	}
	g, err1 := strconv.ParseFloat(got, 64)
	w, err2 := strconv.ParseFloat(want, 64)
	return err1 == nil && err2 == nil && (g == w || math.Abs(g-w) <= 1e-12*math.Abs(w))
}

func yearEqual(got, want string) bool {
	g, _ := strconv.Atoi(got)
	w, _ := strconv.Atoi(want)
	return got == want || g == w
}

var matrix = []column{
	{name: "ti", def: "TINYINT"},
	{name: "tiu", def: "TINYINT UNSIGNED"},
	{name: "si", def: "SMALLINT"},
	{name: "siu", def: "SMALLINT UNSIGNED"},
	{name: "mi", def: "MEDIUMINT"},
	{name: "miu", def: "MEDIUMINT UNSIGNED"},
	{name: "i", def: "INT"},
	{name: "iu", def: "INT UNSIGNED"},
	{name: "bi", def: "BIGINT"},
	{name: "biu", def: "BIGINT UNSIGNED"},
	{name: "dec65", def: "DECIMAL(65,30)"},
	{name: "dec10", def: "DECIMAL(10,2)"},
	{name: "dec0", def: "DECIMAL(20,0) UNSIGNED"},
	{name: "f", def: "FLOAT", sel: "CAST(f AS DOUBLE)", equal: floatEqual},
	{name: "dbl", def: "DOUBLE", equal: floatEqual},
	{name: "dt", def: "DATE"},
	{name: "dtm", def: "DATETIME"},
	{name: "dtm6", def: "DATETIME(6)"},
	{name: "dtm3", def: "DATETIME(3)"},
	{name: "ts", def: "TIMESTAMP NULL"},
	{name: "ts6", def: "TIMESTAMP(6) NULL"},
	{name: "tm", def: "TIME"},
	{name: "tm6", def: "TIME(6)"},
	{name: "tm2", def: "TIME(2)"},
	{name: "yr", def: "YEAR", equal: yearEqual},
	{name: "b1", def: "BIT(1)", sel: "CAST(b1 AS UNSIGNED)"},
	{name: "b13", def: "BIT(13)", sel: "CAST(b13 AS UNSIGNED)"},
	{name: "b64", def: "BIT(64)", sel: "CAST(b64 AS UNSIGNED)"},
	{name: "e", def: "ENUM('small','medium','large')"},
	{name: "st", def: "SET('red','green','blue')"},
	{name: "j", def: "JSON"},
	{name: "ch", def: "CHAR(10)"},
	{name: "vc", def: "VARCHAR(255)"},
	{name: "vlat", def: "VARCHAR(50) CHARACTER SET latin1"},
	{name: "txt", def: "TEXT"},
	{name: "ltxt", def: "LONGTEXT"},
	{name: "bn", def: "BINARY(8)", sel: "HEX(bn)"},
	{name: "vb", def: "VARBINARY(64)", sel: "HEX(vb)"},
	{name: "bl", def: "BLOB", sel: "HEX(bl)"},
	{name: "g", def: "GEOMETRY", sel: "HEX(g)"},
	{name: "pt", def: "POINT", sel: "HEX(pt)"},
	{name: "gv", def: "INT AS (i + 1) VIRTUAL"},
	{name: "gs", def: "VARCHAR(300) AS (CONCAT(vc, '!')) STORED"},
	{name: "inv", def: "INT INVISIBLE"},
}

// rows of the matrix: values for every column but the generated ones, in
// matrix order, as SQL literals.
var matrixRows = [][]string{
	// Minimum values, zero dates, negative TIME.
	{"-128", "0", "-32768", "0", "-8388608", "0", "-2147483648", "0", "-9223372036854775808", "0",
		"-99999999999999999999999999999999999.999999999999999999999999999999", "-12345678.90", "0",
		"-3.402823466E+38", "-1.7976931348623157E+308",
		"'0000-00-00'", "'0000-00-00 00:00:00'", "'1000-01-01 00:00:00.000000'", "'2024-02-29 23:59:59.999'",
		"'1970-01-01 00:00:01'", "'2038-01-19 03:14:07.999999'",
		"'-838:59:59'", "'-00:00:00.000001'", "'-12:34:56.78'", "0",
		"b'0'", "b'0'", "b'0'", "'small'", "''", "'{}'",
		"''", "''", "''", "''", "''", "x''", "x''", "x''",
		"ST_GeomFromText('POINT(0 0)')", "ST_GeomFromText('POINT(-1.5 2.25)')", "-1"},
	// Maximum values, unsigned above the signed range.
	{"127", "255", "32767", "65535", "8388607", "16777215", "2147483647", "4294967295", "9223372036854775807", "18446744073709551615",
		"99999999999999999999999999999999999.999999999999999999999999999999", "99999999.99", "99999999999999999999",
		"3.402823466E+38", "1.7976931348623157E+308",
		"'9999-12-31'", "'9999-12-31 23:59:59'", "'9999-12-31 23:59:59.999999'", "'2000-01-01 00:00:00.5'",
		"'2038-01-19 03:14:07'", "'2001-02-03 04:05:06.070809'",
		"'838:59:59'", "'838:59:58.999999'", "'00:00:00.01'", "2155",
		"b'1'", "b'1111111111111'", "b'1111111111111111111111111111111111111111111111111111111111111111'",
		"'large'", "'red,green,blue'", `'{"a": [1, 2.5, "x", null, true], "b": {"c": -0.0001}, "d": 18446744073709551615}'`,
		"'abcdefghij'", "'utf8mb4 😀 ünïcödé 中文'", "'café ÄÖÜ ß'", "REPEAT('t', 1000)", "REPEAT('long ', 20000)",
		"x'0102030405060708'", "x'00ff00ff'", "x'000102fffe'",
		"ST_GeomFromText('POLYGON((0 0,10 0,10 10,0 10,0 0))')", "ST_GeomFromText('POINT(1e300 -1e-300)')", "2147483647"},
	// Ordinary values; trailing zero bytes and spaces; escapes.
	{"-1", "200", "-2", "40000", "-3", "9000000", "42", "3000000000", "-42", "9223372036854775808",
		"1000000000000000000.000000000000000000000000000001", "0.10", "12345",
		"1.5", "0.1",
		"'2024-01-02'", "'2024-01-02 03:04:05'", "'2024-01-02 03:04:05.123456'", "'2024-01-02 03:04:05.120'",
		"'2024-01-02 03:04:05'", "'2024-01-02 03:04:05.000001'",
		"'-01:02:03'", "'12:34:56.100000'", "'00:00:00.00'", "1999",
		"b'1'", "b'101'", "b'1000000000000000000000000000000000000000000000000000000000000000'",
		"'medium'", "'blue,red'", `'[1, "two", {"three": 3}]'`,
		"'trail  '", "'quote '' and \\\\ backslash\\n newline \\t tab'", "'plain'", "'x'", "'y'",
		"x'ab'", "x'0000'", "x'00'",
		"ST_GeomFromText('LINESTRING(0 0,1 1,2 2)')", "ST_GeomFromText('POINT(3 4)')", "7"},
}

// TestTypeMatrix writes every column type on a live MariaDB and reads it
// back through the live decoder; each value must equal what SELECT returns.
// The table definition comes once from the CREATE TABLE in the binlog and
// once from information_schema (the stream starts after the CREATE).
func TestTypeMatrix(t *testing.T) {
	t.Run("schema from binlog DDL", func(t *testing.T) { testTypeMatrix(t, false) })
	t.Run("schema from information_schema", func(t *testing.T) { testTypeMatrix(t, true) })
}

func testTypeMatrix(t *testing.T, afterCreate bool) {
	m := testenv.StartMariaDB(t, testenv.MariaDBOptions{})
	var defs, names []string
	for _, c := range matrix {
		defs = append(defs, c.name+" "+c.def)
		if !strings.Contains(c.def, " AS (") {
			names = append(names, c.name)
		}
	}
	stmts := []string{
		"SET SESSION sql_mode = ''", "SET time_zone = '+00:00'",
		"CREATE DATABASE types",
		"CREATE TABLE types.t (id INT PRIMARY KEY, " + strings.Join(defs, ", ") + ")",
	}
	for i, r := range matrixRows {
		if len(r) != len(names) {
			t.Fatalf("row %d has %d values for %d columns", i, len(r), len(names))
		}
		stmts = append(stmts, fmt.Sprintf("INSERT INTO types.t (id, %s) VALUES (%d, %s)", strings.Join(names, ", "), i+1, strings.Join(r, ", ")))
	}
	// A row of NULLs, then an update and a delete so before images are read too.
	stmts = append(stmts, fmt.Sprintf("INSERT INTO types.t (id) VALUES (%d)", len(matrixRows)+1),
		"UPDATE types.t SET i = i + 1, vc = CONCAT(vc, '+') WHERE id = 3")
	start := binlog.Start{Mode: binlog.StartOldest}
	if afterCreate {
		m.Exec(t, stmts[:4]...)
		set, err := binlog.ParseGTIDSet(m.QueryString(t, "SELECT @@gtid_binlog_pos"))
		if err != nil {
			t.Fatal(err)
		}
		start = binlog.Start{Mode: binlog.StartGTID, GTID: set}
		stmts = append(stmts[:2:2], stmts[4:]...)
	}
	m.Exec(t, stmts...)

	// What SELECT returns, per id.
	want := selectMatrix(t, m)

	txns := readFrom(t, m, start, "types.*")
	got := map[int64][]binlog.Value{}
	var table *binlog.Table
	for _, tx := range txns {
		for _, c := range changes(t, tx) {
			table = c.Table
			img := c.Image()
			got[img[0].(int64)] = img
		}
	}
	if table == nil || !table.NamesKnown {
		t.Fatalf("no rows decoded, or column names unknown: %+v", table)
	}
	if len(got) != len(want) {
		t.Fatalf("decoded %d rows, SELECT has %d", len(got), len(want))
	}
	for id, wrow := range want {
		grow := got[id]
		for _, c := range matrix {
			i := table.ColumnIndex(c.name)
			if i < 0 {
				t.Errorf("column %s missing from the decoded table", c.name)
				continue
			}
			render := renderText
			if c.render != nil {
				render = c.render
			}
			if binlog.IsAbsent(grow[i]) {
				t.Errorf("id %d column %s (%s): absent from the row image", id, c.name, c.def)
				continue
			}
			g, w := render(grow[i]), wrow[c.name]
			eq := c.equal
			if eq == nil {
				eq = func(a, b string) bool { return a == b }
			}
			if !eq(g, w) {
				t.Errorf("id %d column %s (%s): decoded %q (%T), SELECT returns %q", id, c.name, c.def, g, grow[i], w)
			}
		}
	}
}

func selectMatrix(t *testing.T, m *testenv.MariaDB) map[int64]map[string]string {
	t.Helper()
	db := m.DB(t)
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SET time_zone = '+00:00'"); err != nil {
		t.Fatal(err)
	}
	var exprs []string
	for _, c := range matrix {
		e := c.name
		if c.sel != "" {
			e = c.sel
		}
		exprs = append(exprs, e)
	}
	rows, err := conn.QueryContext(ctx, "SELECT id, "+strings.Join(exprs, ", ")+" FROM types.t ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[int64]map[string]string{}
	for rows.Next() {
		var id int64
		vals := make([]*string, len(matrix))
		dest := []any{&id}
		for i := range vals {
			dest = append(dest, &vals[i])
		}
		if err := rows.Scan(dest...); err != nil {
			t.Fatal(err)
		}
		row := map[string]string{}
		for i, c := range matrix {
			if vals[i] == nil {
				row[c.name] = "NULL"
			} else {
				row[c.name] = *vals[i]
			}
		}
		out[id] = row
	}
	return out
}
