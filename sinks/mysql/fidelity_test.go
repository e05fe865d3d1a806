package mysql_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/sluice-cdc/sluice/internal/testenv"
)

// TestValueFidelity replicates values whose text or match is easy to get
// wrong and compares the target with the source byte for byte: CHECKSUM
// TABLE and an ordered SELECT of each table's bytes. Each case failed
// before the value model and literal writer of package sqltext.
func TestValueFidelity(t *testing.T) {
	servers := testenv.StartMariaDBs(t, 2)
	src, dst := servers[0], servers[1]

	// Every character set the server has, as a keyless table that is then
	// updated by its before image. Single-byte character sets get every
	// byte 0x20..0xFF, the others text converted by the server.
	var allCharsets []string
	var charsetTables []string
	for _, cs := range strings.Fields(src.QueryString(t, "SELECT GROUP_CONCAT(CHARACTER_SET_NAME SEPARATOR ' ') FROM information_schema.CHARACTER_SETS WHERE CHARACTER_SET_NAME <> 'binary'")) {
		tb := "cs." + cs
		charsetTables = append(charsetTables, tb)
		allCharsets = append(allCharsets, fmt.Sprintf("CREATE TABLE %s (n INT, v VARCHAR(300) CHARACTER SET %s, t TEXT CHARACTER SET %s)", tb, cs, cs))
	}
	var highBytes strings.Builder
	for b := 0x20; b <= 0xff; b++ {
		fmt.Fprintf(&highBytes, "%02X", b)
	}
	charsetDML := []string{"SET SESSION sql_mode = ''"}
	for _, tb := range charsetTables {
		charsetDML = append(charsetDML,
			fmt.Sprintf("INSERT INTO %s SELECT 1, CONVERT(_binary X'%s' USING %s), CONVERT(_utf8mb4 'abc é ü € Ж ก 中文 한국 😀 ''\\\\' USING %s) FROM DUAL",
				tb, highBytes.String(), tb[3:], tb[3:]),
			fmt.Sprintf("INSERT INTO %s VALUES (2, _binary X'%s', _binary X'414243')", tb, highBytes.String()),
			fmt.Sprintf("UPDATE %s SET n = n + 10", tb),
			fmt.Sprintf("DELETE FROM %s WHERE n = 12", tb))
	}

	tests := []struct {
		name   string
		schema []string // run on both servers (under sql_mode '')
		dml    []string // run on the source, replicated
		tables []string
		query  string // an ordered SELECT compared between the servers
		want   string // what query returns on the target
	}{
		{
			name:   "ucs2 utf16 utf16le utf32",
			schema: []string{"CREATE TABLE u.t (id INT, a TEXT CHARACTER SET ucs2, b VARCHAR(10) CHARACTER SET utf16, c TEXT CHARACTER SET utf16le, d VARCHAR(10) CHARACTER SET utf32)"},
			dml: []string{"INSERT INTO u.t VALUES (1, 'abc', 'abc', 'abc', 'abc'), (2, 'é€', 'é😀', 'é😀', 'é😀')",
				"UPDATE u.t SET id = id + 10"},
			tables: []string{"u.t"},
			query:  "SELECT id, HEX(a), HEX(b), HEX(c), HEX(d) FROM u.t ORDER BY id",
			want:   "11,006100620063,006100620063,610062006300,000000610000006200000063 12,00E920AC,00E9D83DDE00,E9003DD800DE,000000E90001F600",
		},
		{
			name:   "latin1 bytes cp1252 leaves undefined",
			schema: []string{"CREATE TABLE l.t (v VARCHAR(20) CHARACTER SET latin1)"},
			dml:    []string{"INSERT INTO l.t VALUES (_binary X'818D8F909D'), (_binary X'E9FF80')", "UPDATE l.t SET v = CONCAT(v, 'x')"},
			tables: []string{"l.t"},
			query:  "SELECT HEX(v) FROM l.t ORDER BY HEX(v)",
			want:   "818D8F909D78 E9FF8078",
		},
		{
			name: "bytes invalid in their charset",
			schema: []string{"CREATE TABLE i.t (a VARCHAR(10) CHARACTER SET ascii, b VARCHAR(10) CHARACTER SET cp1251, " +
				"c VARCHAR(10) CHARACTER SET cp852, d VARCHAR(10) CHARACTER SET tis620, e VARCHAR(10) CHARACTER SET macroman)"},
			dml: []string{"INSERT INTO i.t VALUES (_binary X'41FF', _binary X'4198', _binary X'41E9', _binary X'41A1FF', _binary X'41D7')",
				"UPDATE i.t SET a = CONCAT(a, 'x')", "UPDATE i.t SET b = CONCAT(b, 'y')"},
			tables: []string{"i.t"},
			query:  "SELECT HEX(a), HEX(b), HEX(c), HEX(d), HEX(e) FROM i.t",
			want:   "41FF78,419879,41E9,41A1FF,41D7",
		},
		{
			name:   "invalid and zero dates",
			schema: []string{"CREATE TABLE d.t (d DATE, dt DATETIME, n INT)"},
			dml: []string{"SET SESSION sql_mode = 'ALLOW_INVALID_DATES'",
				"INSERT INTO d.t VALUES ('2020-02-31', '2020-04-31 10:00:00', 1), ('0000-00-00', '0000-00-00 00:00:00', 2), ('2020-00-00', '2020-01-00 00:00:00', 3)",
				"UPDATE d.t SET n = n + 10"},
			tables: []string{"d.t"},
			query:  "SELECT CAST(d AS CHAR), CAST(dt AS CHAR), n FROM d.t ORDER BY n",
			want:   "2020-02-31,2020-04-31 10:00:00,11 0000-00-00,0000-00-00 00:00:00,12 2020-00-00,2020-01-00 00:00:00,13",
		},
		{
			name: "enum and set by index",
			schema: []string{"CREATE TABLE e.t (e ENUM('a','b'), s SET('ü','y') CHARACTER SET latin1 COLLATE latin1_swedish_ci, n INT)",
				"CREATE TABLE e.k (id INT PRIMARY KEY, e ENUM('','a'))"},
			dml: []string{"SET SESSION sql_mode = ''",
				"INSERT INTO e.t VALUES ('zzz', 2, 1), ('a', 3, 2), ('b', 1, 3)",
				"UPDATE e.t SET n = n + 10",
				"DELETE FROM e.t WHERE s + 0 = 1",
				"INSERT INTO e.k VALUES (1, 'bogus'), (2, ''), (3, 'a')",
				"UPDATE e.k SET id = id + 10"},
			tables: []string{"e.t", "e.k"},
			query:  "SELECT e + 0, s + 0, n FROM e.t ORDER BY n",
			want:   "0,2,11 1,3,12",
		},
		{
			name:   "uuid inet4 inet6 with trailing zero bytes",
			schema: []string{"CREATE TABLE m.t (u UUID, a INET4, b INET6, n INT)"},
			dml: []string{"INSERT INTO m.t VALUES ('00000000-0000-0000-0000-000000000000', '0.0.0.0', '::', 1), " +
				"('123e4567-e89b-12d3-a456-426655440000', '1.2.3.0', '1::', 2), ('6ccd780c-baba-1026-9564-5b8c656024db', '255.0.0.0', '::ffff:1.2.3.4', 3), " +
				"('6ccd780c-baba-4026-9564-5b8c656024db', '0.0.0.1', '::1.2.3.4', 4), ('ffffffff-ffff-ffff-ffff-ffffffffffff', '1.2.3.4', '1:0:0:2::3', 5), (NULL, NULL, '::102', 6)",
				"UPDATE m.t SET n = n + 10", "DELETE FROM m.t WHERE n = 13"},
			tables: []string{"m.t"},
			query:  "SELECT u, a, b, n FROM m.t ORDER BY n",
			want: "00000000-0000-0000-0000-000000000000,0.0.0.0,::,11 123e4567-e89b-12d3-a456-426655440000,1.2.3.0,1::,12 " +
				"6ccd780c-baba-4026-9564-5b8c656024db,0.0.0.1,::1.2.3.4,14 ffffffff-ffff-ffff-ffff-ffffffffffff,1.2.3.4,1:0:0:2::3,15 NULL,NULL,::102,16",
		},
		{
			name:   "timestamp at epoch 0 with a fraction",
			schema: []string{"CREATE TABLE s.t (id INT PRIMARY KEY, ts TIMESTAMP(1) NULL)"},
			dml:    []string{"SET time_zone = '+00:00'", "INSERT INTO s.t VALUES (1, '1970-01-01 00:00:00.5'), (2, '1970-01-01 00:00:01.0')"},
			tables: []string{"s.t"},
			query:  "SELECT id, UNIX_TIMESTAMP(ts) FROM s.t ORDER BY id",
			want:   "1,0.5 2,1.0",
		},
		{
			name:   "keyless duplicate rows differing only in FLOAT",
			schema: []string{"CREATE TABLE f.f (id INT, c FLOAT)", "CREATE TABLE f.g (id INT, c FLOAT)"},
			dml: []string{"INSERT INTO f.f VALUES (1, 0.5), (1, 0.5)", "UPDATE f.f SET c = 2 WHERE id = 1",
				"INSERT INTO f.g VALUES (1, 0.1), (1, 0.2)", "UPDATE f.g SET id = 2 WHERE c > 0.15"},
			tables: []string{"f.f", "f.g"},
			query:  "SELECT id, c FROM f.f ORDER BY id, c",
			want:   "1,2 1,2",
		},
		{
			name: "keyless tables of FLOAT, DOUBLE, GEOMETRY and JSON only",
			schema: []string{"CREATE TABLE k.t (f FLOAT, d DOUBLE, g GEOMETRY, j JSON)",
				"CREATE TABLE k.j (id INT, j JSON)", "CREATE TABLE k.g (id INT, g POINT)", "CREATE TABLE k.o (f FLOAT, g GEOMETRY, j JSON)"},
			dml: []string{"INSERT INTO k.t VALUES (0.1, 0.1, ST_GeomFromText('POINT(1 2)'), '{\"a\": 1}'), (0.1, 0.1, ST_GeomFromText('POINT(1 2)'), '{\"a\": 1}'), (0.2, 0.3, NULL, 'null')",
				"UPDATE k.t SET f = 1.5 WHERE d < 0.2",
				"DELETE FROM k.t WHERE j = 'null'",
				"INSERT INTO k.j VALUES (1, '[1]'), (1, '[2]')", "UPDATE k.j SET id = 2 WHERE j = '[2]'",
				"INSERT INTO k.g VALUES (1, POINT(1, 1)), (1, POINT(2, 2))", "UPDATE k.g SET id = 2 WHERE ST_X(g) = 2",
				"INSERT INTO k.o VALUES (0.1, POINT(0, 0), '1'), (0.2, POINT(0, 0), '1'), (0.3, NULL, NULL)",
				"UPDATE k.o SET j = '2' WHERE f > 0.15", "DELETE FROM k.o WHERE g IS NULL"},
			tables: []string{"k.t", "k.j", "k.g", "k.o"},
			query:  "SELECT f, d, ST_AsText(g), j FROM k.t ORDER BY f",
			want:   "1.5,0.1,POINT(1 2),{\"a\": 1} 1.5,0.1,POINT(1 2),{\"a\": 1}",
		},
		{
			// ALTER TABLE … ADD … GEOMETRY NOT NULL gives the existing rows
			// an empty value, which no SQL literal can write (Error 1416):
			// an update leaves the column alone unless it changes, and a
			// keyless match finds the empty value.
			name: "empty geometry of a NOT NULL column added to rows",
			schema: []string{"CREATE TABLE g.t (id INT PRIMARY KEY, v INT)", "CREATE TABLE g.k (v INT)",
				"INSERT INTO g.t VALUES (1, 1), (2, 2)", "INSERT INTO g.k VALUES (1), (1), (2), (3)",
				"ALTER TABLE g.t ADD g MULTIPOINT NOT NULL", "ALTER TABLE g.k ADD g GEOMETRY NOT NULL"},
			dml: []string{"UPDATE g.t SET v = v + 10", "UPDATE g.t SET g = ST_GeomFromText('MULTIPOINT(1 1)') WHERE id = 2",
				"UPDATE g.k SET v = 5 WHERE v = 1 LIMIT 1", "DELETE FROM g.k WHERE v = 2",
				"UPDATE g.k SET g = POINT(3, 3) WHERE v = 3"},
			tables: []string{"g.t", "g.k"},
			query: "SELECT (SELECT GROUP_CONCAT(id, ':', v, ':', IF(LENGTH(g) = 0, 'empty', ST_AsText(g)) ORDER BY id SEPARATOR ';') FROM g.t), " +
				"(SELECT GROUP_CONCAT(v, ':', IF(LENGTH(g) = 0, 'empty', ST_AsText(g)) ORDER BY v SEPARATOR ';') FROM g.k)",
			want: "1:11:empty;2:12:MULTIPOINT(1 1),1:empty;3:POINT(3 3);5:empty",
		},
		{
			// INSERT IGNORE of NULL into a GEOMETRY NOT NULL column stores
			// the empty value, which the sink writes the same way.
			name:   "empty geometry from insert ignore of null",
			schema: []string{"CREATE TABLE n.t (id INT PRIMARY KEY, v INT, g POINT NOT NULL)", "CREATE TABLE n.k (v INT, g GEOMETRY NOT NULL)"},
			dml: []string{"INSERT IGNORE INTO n.t VALUES (1, 1, NULL), (2, 2, POINT(1, 1))", "INSERT IGNORE INTO n.k VALUES (1, NULL), (1, NULL), (2, POINT(2, 2))",
				"UPDATE n.t SET v = v + 10", "UPDATE n.k SET v = 3 WHERE v = 1 LIMIT 1", "DELETE FROM n.k WHERE v = 1"},
			tables: []string{"n.t", "n.k"},
			query: "SELECT (SELECT GROUP_CONCAT(id, ':', v, ':', IF(LENGTH(g) = 0, 'empty', ST_AsText(g)) ORDER BY id SEPARATOR ';') FROM n.t), " +
				"(SELECT GROUP_CONCAT(v, ':', IF(LENGTH(g) = 0, 'empty', ST_AsText(g)) ORDER BY v SEPARATOR ';') FROM n.k)",
			want: "1:11:empty;2:12:POINT(1 1),2:POINT(2 2);3:empty",
		},
		{
			// Keyless rows that differ only in text their collation calls
			// equal: case, and trailing spaces under PAD SPACE.
			name: "keyless text equal under its collation",
			schema: []string{"CREATE TABLE p.t (c VARCHAR(5) CHARACTER SET ucs2, d VARCHAR(5) CHARACTER SET latin1, e CHAR(3) CHARACTER SET utf8mb4, v INT)",
				"CREATE TABLE p.j (j JSON, v INT)"},
			dml: []string{"INSERT INTO p.t VALUES ('', 'a', 'x', 1), (' ', 'a', 'x', 1), (' ', 'A', 'x', 1), (' ', 'a', 'X', 1), ('', 'a ', 'x', 1)",
				"UPDATE p.t SET v = 2 WHERE HEX(c) = '0020' AND d = BINARY 'a' AND e = BINARY 'x'",
				"UPDATE p.t SET v = 3 WHERE d = BINARY 'A'", "DELETE FROM p.t WHERE e = BINARY 'X'", "UPDATE p.t SET v = 4 WHERE d = BINARY 'a '",
				"INSERT INTO p.j VALUES ('{}', 1), ('{} ', 1)", "UPDATE p.j SET v = 2 WHERE j = BINARY '{} '"},
			tables: []string{"p.t", "p.j"},
			query:  "SELECT HEX(c), HEX(d), HEX(e), v FROM p.t ORDER BY v",
			want:   ",61,78,1 0020,61,78,2 0020,41,78,3 ,6120,78,4",
		},
		{
			// ALTER TABLE … ADD … JSON NOT NULL gives MariaDB's existing
			// rows the empty text, which is not the document null: a
			// keyless delete of one must not delete a 'null' row.
			name: "empty text of a JSON NOT NULL column added to rows",
			schema: []string{"CREATE TABLE j.k (f FLOAT, d DOUBLE)",
				"INSERT INTO j.k VALUES (1.5, 2.5), (1.5, 2.5), (-3.40282e38, 5e-324)",
				"ALTER TABLE j.k ADD j JSON NOT NULL"},
			dml: []string{"INSERT INTO j.k VALUES (1.5, 2.5, 'null'), (-3.40282e38, 5e-324, 'null')",
				"DELETE FROM j.k WHERE j = '' LIMIT 1", "DELETE FROM j.k WHERE j = '' AND d < 1",
				"UPDATE j.k SET f = 7 WHERE j = 'null' AND d > 1"},
			tables: []string{"j.k"},
			query:  "SELECT f, d, HEX(j) FROM j.k ORDER BY f, j",
			want:   "-3.40282e+38,5e-324,6E756C6C 1.5,2.5, 7,2.5,6E756C6C",
		},
		{
			// An update sets only the columns that change, but never
			// leaves out a TIMESTAMP or DATETIME: the target's ON UPDATE
			// CURRENT_TIMESTAMP would give it the target's clock.
			name: "on update current_timestamp left as it was",
			schema: []string{"CREATE TABLE o.t (id INT PRIMARY KEY, v INT, ts TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP, " +
				"dt DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP)",
				"INSERT INTO o.t VALUES (1, 1, '2000-01-01 00:00:00', '2000-01-01 00:00:00')"},
			dml:    []string{"UPDATE o.t SET v = 2, ts = ts, dt = dt"},
			tables: []string{"o.t"},
			query:  "SELECT id, v, ts, dt FROM o.t",
			want:   "1,2,2000-01-01 00:00:00,2000-01-01 00:00:00",
		},
		{
			name:   "every character set",
			schema: append([]string{"CREATE DATABASE cs"}, allCharsets...),
			dml:    charsetDML,
			tables: charsetTables,
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			schema := append([]string{"SET SESSION sql_mode = ''"}, tt.schema...)
			if !strings.HasPrefix(tt.schema[0], "CREATE DATABASE") {
				db, _, _ := strings.Cut(tt.tables[0], ".")
				schema = append([]string{"SET SESSION sql_mode = ''", "CREATE DATABASE " + db}, tt.schema...)
			}
			src.Exec(t, schema...)
			dst.Exec(t, schema...)
			txns := sourceTxns(t, src, tt.dml...)
			if err := applyAll(t, openSink(t, dst, "apply", "stop"), txns); err != nil {
				t.Fatalf("case %d: apply: %v", i, err)
			}
			if a, b := src.Checksums(t, tt.tables...), dst.Checksums(t, tt.tables...); a != b {
				t.Errorf("checksums differ:\nsource %s\ntarget %s", a, b)
			}
			for _, tb := range tt.tables {
				q := "SELECT * FROM " + tb
				if a, b := hexRows(t, src, q), hexRows(t, dst, q); a != b {
					t.Errorf("%s differs:\nsource %s\ntarget %s", tb, a, b)
				}
			}
			if tt.query != "" {
				if got := rows(t, dst, tt.query); got != tt.want {
					t.Errorf("target: %s\nwant          %s", got, tt.want)
				}
				if got := rows(t, src, tt.query); got != tt.want {
					t.Errorf("source (the test's own expectation): %s\nwant %s", got, tt.want)
				}
			}
		})
	}
}

// hexRows is the rows of q as the bytes the server returns, in hex,
// sorted so that keyless tables compare whatever their physical order.
func hexRows(t *testing.T, m *testenv.MariaDB, q string) string {
	t.Helper()
	db := m.DB(t)
	db.SetMaxOpenConns(1) // SET NAMES holds for the one connection
	if _, err := db.Exec("SET NAMES binary"); err != nil {
		t.Fatal(err)
	}
	out := testenv.Rows(t, db, q, func(b []byte) string { return fmt.Sprintf("%X", b) })
	slices.Sort(out)
	return strings.Join(out, " ")
}
