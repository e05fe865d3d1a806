package mysql_test

import (
	"fmt"
	"math/rand"
	"strings"
	"testing"

	"github.com/sluice-cdc/sluice/internal/testenv"
)

// TestRandomValues writes random rows of edge values (duplicates included)
// into a keyless and a keyed table, updates and deletes them at random,
// replicates, and compares the tables byte for byte. The seeds are fixed,
// so a failure reproduces.
func TestRandomValues(t *testing.T) {
	servers := testenv.StartMariaDBs(t, 2)
	src, dst := servers[0], servers[1]
	cols := "id INT, a VARCHAR(20) CHARACTER SET latin1, b VARCHAR(20) CHARACTER SET utf8mb4, c FLOAT, d DOUBLE, " +
		"e ENUM('x','y','') , s SET('a','b','c'), j JSON, g POINT, u UUID, i6 INET6, i4 INET4, dt DATETIME(3), ts TIMESTAMP(2) NULL, " +
		"bin VARBINARY(10), asc7 VARCHAR(10) CHARACTER SET ascii, w VARCHAR(10) CHARACTER SET cp1251, dc DECIMAL(8,3), bt BIT(5), y YEAR, dd DATE"
	schema := []string{"SET SESSION sql_mode = ''", "CREATE DATABASE r",
		"CREATE TABLE r.t (" + cols + ")", "CREATE TABLE r.k (pk INT AUTO_INCREMENT PRIMARY KEY, " + cols + ")"}
	src.Exec(t, schema...)
	dst.Exec(t, schema...)

	pools := map[string][]string{
		"a":    {"NULL", "''", "'x'", "_binary X'818D8F909D'", "_binary X'E9'", "'it''s'", "_binary X'5C27'"},
		"b":    {"NULL", "''", "'é'", "'😀'", "'a\\\\b'", "'line\\nbreak'", "'x'"},
		"c":    {"NULL", "0", "0.1", "0.5", "-1e30", "3.4e38", "1.17549435e-38"},
		"d":    {"NULL", "0", "0.1", "-0.0", "1e308", "2.2250738585072014e-308", "0.30000000000000004"},
		"e":    {"NULL", "'x'", "'y'", "''", "'bogus'", "0", "3"},
		"s":    {"NULL", "''", "'a'", "'a,c'", "7", "'b'"},
		"j":    {"NULL", "'null'", "'{}'", "'[1, 2]'", "'\"s\"'", "'{\"$json\": 1}'"},
		"g":    {"NULL", "POINT(0, 0)", "POINT(1.5, -2)", "POINT(0, 0)"},
		"u":    {"NULL", "'00000000-0000-0000-0000-000000000000'", "'123e4567-e89b-12d3-a456-426655440000'", "'ffffffff-0000-0000-0000-000000000000'"},
		"i6":   {"NULL", "'::'", "'::1'", "'1::'", "'::ffff:1.2.3.4'", "'::1.2.3.4'"},
		"i4":   {"NULL", "'0.0.0.0'", "'1.0.0.0'", "'255.255.255.255'"},
		"dt":   {"NULL", "'0000-00-00 00:00:00'", "'2020-02-31 10:00:00.5'", "'2024-01-01 00:00:00.001'", "'9999-12-31 23:59:59.999'"},
		"ts":   {"NULL", "'0000-00-00 00:00:00'", "'1970-01-01 00:00:00.5'", "'2038-01-19 03:14:07.99'", "'2024-06-01 12:00:00'"},
		"bin":  {"NULL", "''", "X'00'", "X'0000'", "X'FF00'", "X'27'"},
		"asc7": {"NULL", "''", "_binary X'41FF'", "'ok'", "_binary X'80'"},
		"w":    {"NULL", "''", "_binary X'98'", "_binary X'C6'", "'x'"},
		"dc":   {"NULL", "0", "-0.001", "99999.999", "-99999.999"},
		"bt":   {"NULL", "0", "b'11111'", "b'1'"},
		"y":    {"NULL", "0", "1901", "2155", "2024"},
		"dd":   {"NULL", "'0000-00-00'", "'2020-02-30'", "'2020-00-01'", "'1000-01-01'"},
	}
	names := []string{"a", "b", "c", "d", "e", "s", "j", "g", "u", "i6", "i4", "dt", "ts", "bin", "asc7", "w", "dc", "bt", "y", "dd"}
	pick := func(r *rand.Rand, c string) string { p := pools[c]; return p[r.Intn(len(p))] }
	row := func(r *rand.Rand) string {
		vals := []string{fmt.Sprint(r.Intn(4))}
		for _, c := range names {
			vals = append(vals, pick(r, c))
		}
		return "(" + strings.Join(vals, ", ") + ")"
	}
	list := "(id, " + strings.Join(names, ", ") + ")"
	for seed := int64(1); seed <= 3; seed++ {
		r := rand.New(rand.NewSource(seed))
		dml := []string{"SET SESSION sql_mode = 'ALLOW_INVALID_DATES'", "SET time_zone = '+00:00'"}
		for range 60 {
			tb := []string{"r.t", "r.k"}[r.Intn(2)]
			switch k := r.Intn(10); {
			case k < 4:
				one := row(r)
				// Duplicates: the same row twice in one statement, sometimes.
				rows := []string{one, row(r)}
				if r.Intn(2) == 0 {
					rows = append(rows, one)
				}
				dml = append(dml, "INSERT INTO "+tb+" "+list+" VALUES "+strings.Join(rows, ", "))
			case k < 8:
				c := names[r.Intn(len(names))]
				dml = append(dml, fmt.Sprintf("UPDATE %s SET %s = %s WHERE id = %d", tb, c, pick(r, c), r.Intn(4)))
			default:
				dml = append(dml, fmt.Sprintf("DELETE FROM %s WHERE id = %d LIMIT 1", tb, r.Intn(4)))
			}
		}
		txns := sourceTxns(t, src, dml...)
		if err := applyAll(t, openSink(t, dst, "apply", "stop"), txns); err != nil {
			t.Fatalf("seed %d: %v\n%s", seed, err, strings.Join(dml, ";\n"))
		}
		if a, b := src.Checksums(t, "r.t", "r.k"), dst.Checksums(t, "r.t", "r.k"); a != b {
			t.Errorf("seed %d: checksums differ: %s vs %s", seed, a, b)
		}
		for _, tb := range []string{"r.t", "r.k"} {
			q := "SELECT * FROM " + tb
			if a, b := hexRows(t, src, q), hexRows(t, dst, q); a != b {
				t.Errorf("seed %d: %s differs:\nsource %s\ntarget %s", seed, tb, a, b)
			}
		}
		if t.Failed() {
			t.Fatalf("statements of seed %d:\n%s", seed, strings.Join(dml, ";\n"))
		}
	}
}
