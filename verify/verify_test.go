package verify

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"

	"github.com/sluice-cdc/sluice/internal/testenv"
)

// One source and one target server for the whole package: each test works
// in schemas of its own, so they can share them and run in parallel, and
// replaces its schemas so that -count=N can run it again on the same servers.
var (
	startOnce sync.Once
	startErr  error
	srcSrv    *testenv.MariaDB
	dstSrv    *testenv.MariaDB
	// Handles that interpolate arguments client-side (the harness's DSN)
	// and handles that use server-side prepared statements, since the
	// command passes whatever DSN the user gave.
	srcDB, dstDB     *sql.DB
	srcPrep, dstPrep *sql.DB
)

func TestMain(m *testing.M) {
	code := m.Run()
	for _, db := range []*sql.DB{srcDB, dstDB, srcPrep, dstPrep} {
		if db != nil {
			db.Close()
		}
	}
	for _, s := range []*testenv.MariaDB{srcSrv, dstSrv} {
		if s != nil {
			s.Close()
		}
	}
	os.Exit(code)
}

func servers(tb testing.TB) (src, dst *testenv.MariaDB) {
	tb.Helper()
	startOnce.Do(func() {
		var wg sync.WaitGroup
		var errs [2]error
		wg.Go(func() { srcSrv, errs[0] = testenv.NewMariaDB(context.Background(), testenv.MariaDBOptions{}) })
		wg.Go(func() { dstSrv, errs[1] = testenv.NewMariaDB(context.Background(), testenv.MariaDBOptions{}) })
		wg.Wait()
		if startErr = errors.Join(errs[:]...); startErr != nil {
			return
		}
		open := func(dsn string) *sql.DB {
			db, err := sql.Open("mysql", dsn)
			if err != nil {
				startErr = err
			}
			return db
		}
		srcDB, dstDB = open(srcSrv.DriverDSN("")), open(dstSrv.DriverDSN(""))
		srcPrep = open(fmt.Sprintf("root@tcp(127.0.0.1:%d)/", srcSrv.Port))
		dstPrep = open(fmt.Sprintf("root@tcp(127.0.0.1:%d)/", dstSrv.Port))
	})
	if startErr != nil {
		tb.Fatal(startErr)
	}
	return srcSrv, dstSrv
}

// both runs the statements on the source and then on the target.
func both(tb testing.TB, stmts ...string) {
	tb.Helper()
	src, dst := servers(tb)
	src.Exec(tb, stmts...)
	dst.Exec(tb, stmts...)
}

func compareOne(t *testing.T, tbl Table, opts Options) TableResult {
	t.Helper()
	res, err := Compare(context.Background(), srcDB, dstDB, []Table{tbl}, opts)
	if err != nil {
		t.Fatalf("Compare: %v", err)
	}
	if len(res) != 1 {
		t.Fatalf("Compare returned %d results, want 1", len(res))
	}
	return res[0]
}

func same(schema, table string) Table {
	return Table{SourceSchema: schema, SourceTable: table, TargetSchema: schema, TargetTable: table}
}

// noRetry makes a mismatch final at once, for tests that expect one.
var noRetry = Options{Retries: -1}

const typesDDL = `CREATE TABLE ty.t (
	id INT NOT NULL PRIMARY KEY,
	ti TINYINT, si SMALLINT UNSIGNED, mi MEDIUMINT, bi BIGINT UNSIGNED,
	de DECIMAL(30,10), fl FLOAT, db DOUBLE,
	dt DATETIME(6), ts TIMESTAMP(3) NULL DEFAULT NULL, d DATE, tm TIME(2), y YEAR,
	c CHAR(5), vc VARCHAR(100) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci, tx TEXT,
	l1 VARCHAR(20) CHARACTER SET latin1, cy VARCHAR(20) CHARACTER SET cp1251,
	bn BINARY(4), vb VARBINARY(10), bl BLOB,
	js JSON, en ENUM('a','b','c'), st SET('x','y','z'), bt BIT(10),
	gen INT AS (id * %d) VIRTUAL
)`

var typesRows = []string{
	// The TIMESTAMP literals are at the ends of its range in UTC.
	"SET time_zone = '+00:00'",
	"DELETE FROM ty.t",
	"INSERT INTO ty.t (id) VALUES (1)",
	`INSERT INTO ty.t (id, ti, si, mi, bi, de, fl, db, dt, ts, d, tm, y, c, vc, tx, l1, cy, bn, vb, bl, js, en, st, bt) VALUES
	(2, -128, 65535, -8388608, 18446744073709551615, 12345678901234567890.0123456789, 3.4028234e38, 1.7976931348623157e308,
	 '2024-02-29 23:59:59.999999', '2038-01-19 03:14:07.999', '9999-12-31', '-838:59:59.99', 2155,
	 'abc', 'héllo 😀', REPEAT('x', 5000), 'café', 'жук', X'00FF0102', X'', X'DEADBEEF00',
	 '{"a": [1, 2, {"b": null}]}', 'c', 'x,z', b'1010101010'),
	(3, 0, 0, 0, 0, 0, 0, 0, '1000-01-01 00:00:00', '1970-01-01 00:00:01', '1000-01-01', '00:00:00', 1901,
	 '', '', '', '', '', X'00000000', '', '', '[]', 'a', '', b'0'),
	(4, 1, 1, 1, 1, -0.5, 0.1, 0.3, '2000-01-01 12:00:00.5', '2000-01-01 12:00:00.5', '2000-01-01', '12:00:00.5', 2000,
	 'x', 'q', 'q', 'q', 'q', X'01', X'01', X'01', '{}', 'b', 'y', b'1'),
	(5, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
	 NULL, 'q', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`,
}

// TestTypes checks that identical rows of every common type match, and that
// a change in any one column, however small, does not.
func TestTypes(t *testing.T) {
	t.Parallel()
	src, dst := servers(t)
	src.Exec(t, "CREATE OR REPLACE DATABASE ty", fmt.Sprintf(typesDDL, 2))
	// A generated column is computed by each server: a different
	// definition on the target is not a data difference.
	dst.Exec(t, "CREATE OR REPLACE DATABASE ty", fmt.Sprintf(typesDDL, 3))
	src.Exec(t, typesRows...)
	dst.Exec(t, typesRows...)

	if r := compareOne(t, same("ty", "t"), noRetry); !r.Match || r.Err != nil || r.Rows != 5 {
		t.Fatalf("identical tables: %+v", r)
	}

	// Text in character sets CONCAT_WS cannot mix, and a target that keeps
	// the same text in utf8mb4.
	src.Exec(t, "CREATE TABLE ty.cs (id INT PRIMARY KEY, a VARCHAR(9) CHARACTER SET latin1, b VARCHAR(9) CHARACTER SET cp1251)",
		"INSERT INTO ty.cs VALUES (1, 'café', 'жук'), (2, NULL, '')")
	dst.Exec(t, "CREATE TABLE ty.cs (id INT PRIMARY KEY, a VARCHAR(9) CHARACTER SET utf8mb4, b VARCHAR(9) CHARACTER SET utf8mb4)",
		"INSERT INTO ty.cs VALUES (1, 'café', 'жук'), (2, NULL, '')")
	if r := compareOne(t, same("ty", "cs"), noRetry); !r.Match || r.Err != nil || r.Rows != 2 {
		t.Fatalf("character sets: %+v", r)
	}

	// The system-versioning columns say when each server applied a row.
	src.Exec(t, `CREATE TABLE ty.sv (id INT PRIMARY KEY, v INT, s TIMESTAMP(6) AS ROW START, e TIMESTAMP(6) AS ROW END,
		PERIOD FOR SYSTEM_TIME(s, e)) WITH SYSTEM VERSIONING`, "INSERT INTO ty.sv (id, v) VALUES (1, 1), (2, 2)")
	time.Sleep(10 * time.Millisecond)
	dst.Exec(t, `CREATE TABLE ty.sv (id INT PRIMARY KEY, v INT, s TIMESTAMP(6) AS ROW START, e TIMESTAMP(6) AS ROW END,
		PERIOD FOR SYSTEM_TIME(s, e)) WITH SYSTEM VERSIONING`, "INSERT INTO ty.sv (id, v) VALUES (1, 1), (2, 2)")
	if r := compareOne(t, same("ty", "sv"), noRetry); !r.Match || r.Err != nil || r.Rows != 2 {
		t.Fatalf("system versioning: %+v", r)
	}

	for _, mut := range []struct{ name, stmt string }{
		{"tinyint", "UPDATE ty.t SET ti = -127 WHERE id = 2"},
		{"smallint unsigned", "UPDATE ty.t SET si = 65534 WHERE id = 2"},
		{"bigint unsigned last digit", "UPDATE ty.t SET bi = 18446744073709551614 WHERE id = 2"},
		{"decimal last digit", "UPDATE ty.t SET de = 12345678901234567890.0123456788 WHERE id = 2"},
		{"float 7th digit", "UPDATE ty.t SET fl = 0.1000001 WHERE id = 4"},
		{"double last digit", "UPDATE ty.t SET db = 0.30000000000000004 WHERE id = 4"},
		{"datetime microsecond", "UPDATE ty.t SET dt = '2024-02-29 23:59:59.999998' WHERE id = 2"},
		{"timestamp millisecond", "UPDATE ty.t SET ts = '2038-01-19 03:14:07.998' WHERE id = 2"},
		{"date", "UPDATE ty.t SET d = '9999-12-30' WHERE id = 2"},
		{"time", "UPDATE ty.t SET tm = '-838:59:59.98' WHERE id = 2"},
		{"year", "UPDATE ty.t SET y = 2154 WHERE id = 2"},
		{"char case", "UPDATE ty.t SET c = 'ABC' WHERE id = 2"},
		{"utf8mb4 case under _ci", "UPDATE ty.t SET vc = 'Héllo 😀' WHERE id = 2"},
		{"trailing space under PAD SPACE", "UPDATE ty.t SET vc = 'héllo 😀 ' WHERE id = 2"},
		{"emoji", "UPDATE ty.t SET vc = 'héllo 😁' WHERE id = 2"},
		{"long text last char", "UPDATE ty.t SET tx = CONCAT(REPEAT('x', 4999), 'y') WHERE id = 2"},
		{"latin1 accent", "UPDATE ty.t SET l1 = 'cafe' WHERE id = 2"},
		{"cp1251 case", "UPDATE ty.t SET cy = 'Жук' WHERE id = 2"},
		{"binary byte", "UPDATE ty.t SET bn = X'00FF0103' WHERE id = 2"},
		{"blob last byte", "UPDATE ty.t SET bl = X'DEADBEEF01' WHERE id = 2"},
		{"json value", `UPDATE ty.t SET js = '{"a": [1, 2, {"b": 0}]}' WHERE id = 2`},
		{"enum", "UPDATE ty.t SET en = 'b' WHERE id = 2"},
		{"set", "UPDATE ty.t SET st = 'x,y' WHERE id = 2"},
		{"bit", "UPDATE ty.t SET bt = b'1010101011' WHERE id = 2"},
		{"empty string to NULL", "UPDATE ty.t SET tx = NULL WHERE id = 3"},
		{"empty binary to NULL", "UPDATE ty.t SET vb = NULL WHERE id = 3"},
		{"zero to NULL", "UPDATE ty.t SET ti = NULL WHERE id = 3"},
		{"NULL to zero", "UPDATE ty.t SET ti = 0 WHERE id = 1"},
		{"NULL moves to another column", "UPDATE ty.t SET c = 'q', vc = NULL WHERE id = 5"},
	} {
		dst.Exec(t, typesRows...)
		dst.Exec(t, mut.stmt)
		r := compareOne(t, same("ty", "t"), noRetry)
		if r.Match || r.Err != nil || !strings.HasPrefix(r.FirstDiff, "whole table: source 5 rows") {
			t.Errorf("%s: %+v", mut.name, r)
		}
	}
}

// TestKeys checks which key the walk uses and how each kind of key value
// bounds its chunks: every row must land in exactly one chunk, on both
// servers, and a change must show in the chunk that holds it.
func TestKeys(t *testing.T) {
	t.Parallel()
	for i, tc := range []struct {
		name  string
		ddl   string // of k.t with columns k (the key) and v
		fill  string // INSERT ... SELECT over seq_1_to_<n>, with USE k<i> done
		n     int
		chunk int
		want  string // the key FirstDiff must name
	}{
		{"int", "k INT PRIMARY KEY, v INT", "SELECT seq * 3, seq FROM seq_1_to_100", 100, 7, "`k`"},
		{"tinyint negative", "k TINYINT PRIMARY KEY, v INT", "SELECT CAST(seq AS SIGNED) - 60, seq FROM seq_1_to_100", 100, 7, "`k`"},
		{"bigint unsigned beyond 2^53", "k BIGINT UNSIGNED PRIMARY KEY, v INT", "SELECT 18446744073709551615 - seq, seq FROM seq_1_to_100", 100, 7, "`k`"},
		{"decimal", "k DECIMAL(40,20) PRIMARY KEY, v INT", "SELECT seq / 7 - 3, seq FROM seq_1_to_100", 100, 7, "`k`"},
		{"float", "k FLOAT PRIMARY KEY, v INT", "SELECT seq / 10, seq FROM seq_1_to_100", 100, 7, "`k`"},
		{"double", "k DOUBLE PRIMARY KEY, v INT", "SELECT seq / 3, seq FROM seq_1_to_100", 100, 7, "`k`"},
		{"datetime(6)", "k DATETIME(6) PRIMARY KEY, v INT", "SELECT TIMESTAMP'2024-01-01 00:00:00' + INTERVAL seq * 1001 MICROSECOND, seq FROM seq_1_to_100", 100, 7, "`k`"},
		{"timestamp(6)", "k TIMESTAMP(6) PRIMARY KEY, v INT", "SELECT TIMESTAMP'2024-03-31 00:00:00' + INTERVAL seq * 997 SECOND, seq FROM seq_1_to_100", 100, 7, "`k`"},
		{"date", "k DATE PRIMARY KEY, v INT", "SELECT DATE'2000-01-01' + INTERVAL seq DAY, seq FROM seq_1_to_100", 100, 7, "`k`"},
		{"negative time", "k TIME(3) PRIMARY KEY, v INT", "SELECT SEC_TO_TIME(seq * 1.5 - 50), seq FROM seq_1_to_100", 100, 7, "`k`"},
		{"year", "k YEAR PRIMARY KEY, v INT", "SELECT 1901 + seq, seq FROM seq_1_to_100", 100, 7, "`k`"},
		{"varchar _ci mixed case", "k VARCHAR(20) COLLATE utf8mb4_general_ci PRIMARY KEY, v INT",
			"SELECT CONCAT(ELT(1 + seq % 4, 'a', 'B', 'c', 'D'), seq), seq FROM seq_1_to_100", 100, 7, "`k`"},
		{"varchar latin1 accents", "k VARCHAR(20) CHARACTER SET latin1 PRIMARY KEY, v INT",
			"SELECT CONCAT(IF(seq % 2, 'é', 'e'), seq, IF(seq % 5 = 0, '''', '')), seq FROM seq_1_to_100", 100, 7, "`k`"},
		{"varbinary", "k VARBINARY(16) PRIMARY KEY, v INT", "SELECT UNHEX(CONCAT(HEX(seq * 2 + 100), '00ff')), seq FROM seq_1_to_100", 100, 7, "`k`"},
		{"enum sorts by index", "k ENUM('z','a','m','b','y') PRIMARY KEY, v INT", "SELECT ELT(seq, 'z', 'a', 'm', 'b', 'y'), seq FROM seq_1_to_5", 5, 2, "`k`"},
		{"bit", "k BIT(16) PRIMARY KEY, v INT", "SELECT seq * 3, seq FROM seq_1_to_100", 100, 7, "`k`"},
		{"uuid", "k UUID PRIMARY KEY, v INT",
			"SELECT CONCAT(LPAD(HEX(seq), 8, '0'), '-0000-1000-8000-', LPAD(HEX(seq * 7), 12, '0')), seq FROM seq_1_to_100", 100, 7, "`k`"},
		{"composite int, varchar", "a INT, k VARCHAR(10), v INT, PRIMARY KEY (a, k)",
			"SELECT seq % 3, CONCAT('k', seq), seq FROM seq_1_to_100", 100, 7, "(`a`,`k`)"},
		{"three columns, few leading values", "a INT, b INT, k INT, v INT, PRIMARY KEY (a, b, k)",
			"SELECT seq % 2, seq % 5, seq, seq FROM seq_1_to_100", 100, 7, "(`a`,`b`,`k`)"},
		{"unique NOT NULL key, nullable unique key ignored", "n INT NULL, k INT NOT NULL, v INT, UNIQUE KEY un (n), UNIQUE KEY uk (k)",
			"SELECT seq, seq * 2, seq FROM seq_1_to_100", 100, 7, "`k`"},
		{"prefix unique key ignored", "k VARCHAR(20) NOT NULL, v INT, UNIQUE KEY up (k(10))",
			"SELECT CONCAT('k', seq), seq FROM seq_1_to_100", 100, 7, "whole table"},
		{"no key", "k INT, v INT", "SELECT seq, seq FROM seq_1_to_100", 100, 7, "whole table"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			schema := fmt.Sprintf("k%d", i)
			both(t, "CREATE OR REPLACE DATABASE "+schema, "USE "+schema, "CREATE TABLE t ("+tc.ddl+")", "INSERT INTO t "+tc.fill)
			tbl := same(schema, "t")
			opts := Options{ChunkSize: tc.chunk, Retries: -1}
			chunks := tc.n/tc.chunk + 1
			if tc.want == "whole table" {
				chunks = 1
			}
			r := compareOne(t, tbl, opts)
			if !r.Match || r.Err != nil || r.Rows != int64(tc.n) || r.Chunks != chunks {
				t.Fatalf("identical: got %+v, want a match of %d rows in %d chunks", r, tc.n, chunks)
			}

			// The row just past the middle of the key order, which is never in
			// the first chunk.
			_, dst := servers(t)
			dst.Exec(t, "USE "+schema, "UPDATE t SET v = -v ORDER BY "+keyColumns(tc.want)+" LIMIT "+fmt.Sprint(tc.n/2+1))
			dst.Exec(t, "USE "+schema, "UPDATE t SET v = -v ORDER BY "+keyColumns(tc.want)+" LIMIT "+fmt.Sprint(tc.n/2))
			r = compareOne(t, tbl, opts)
			t.Log(r.FirstDiff)
			if r.Match || r.Err != nil || r.Rows != int64(tc.n) || r.Chunks != chunks {
				t.Fatalf("changed: got %+v, want a mismatch of %d rows in %d chunks", r, tc.n, chunks)
			}
			if tc.want == "whole table" {
				if !strings.HasPrefix(r.FirstDiff, "whole table: ") {
					t.Fatalf("FirstDiff %q, want the whole table", r.FirstDiff)
				}
				return
			}
			re := regexp.MustCompile(`^` + regexp.QuoteMeta(tc.want) + ` > .+ AND ` + regexp.QuoteMeta(tc.want) +
				fmt.Sprintf(` <= .+: source %d rows checksum [0-9a-f]{8}, target %[1]d rows checksum [0-9a-f]{8}$`, tc.chunk))
			if !re.MatchString(r.FirstDiff) {
				t.Fatalf("FirstDiff %q, want a middle chunk of %d rows on %s", r.FirstDiff, tc.chunk, tc.want)
			}
		})
	}
}

// keyColumns turns a FirstDiff key ("`k`", "(`a`,`k`)") into an ORDER BY list.
func keyColumns(want string) string {
	if want == "whole table" {
		return "k"
	}
	return strings.Trim(want, "()")
}

// TestRanges checks FirstDiff for each kind of difference, with the key
// range it is in: ids 2, 4, ..., 100 in chunks of 10 rows.
func TestRanges(t *testing.T) {
	t.Parallel()
	for i, tc := range []struct {
		name, mutate, want string
	}{
		{"changed value", "UPDATE t SET n = n + 1 WHERE id = 30",
			"`id` > 20 AND `id` <= 40: source 10 rows checksum ~, target 10 rows checksum ~"},
		{"missing row", "DELETE FROM t WHERE id = 30",
			"`id` > 20 AND `id` <= 40: source 10 rows checksum ~, target 9 rows checksum ~"},
		{"missing first row", "DELETE FROM t WHERE id = 2",
			"`id` <= 20: source 10 rows checksum ~, target 9 rows checksum ~"},
		{"extra row between keys", "INSERT INTO t VALUES (45, 0, 'x')",
			"`id` > 40 AND `id` <= 60: source 10 rows checksum ~, target 11 rows checksum ~"},
		{"extra row before the first key", "INSERT INTO t VALUES (-1, 0, 'x')",
			"`id` <= 20: source 10 rows checksum ~, target 11 rows checksum ~"},
		{"extra row after the last key", "INSERT INTO t VALUES (1000, 0, 'x')",
			"`id` > 100: source 0 rows checksum 00000000, target 1 rows checksum ~"},
		{"case-only change under _ci", "UPDATE t SET s = UPPER(s) WHERE id = 88",
			"`id` > 80 AND `id` <= 100: source 10 rows checksum ~, target 10 rows checksum ~"},
		{"only the first diff", "UPDATE t SET n = 0 WHERE id IN (64, 84)",
			"`id` > 60 AND `id` <= 80: source 10 rows checksum ~, target 10 rows checksum ~"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			schema := fmt.Sprintf("r%d", i)
			both(t, "CREATE OR REPLACE DATABASE "+schema, "USE "+schema,
				"CREATE TABLE t (id INT PRIMARY KEY, n INT, s VARCHAR(20) COLLATE utf8mb4_unicode_ci)",
				"INSERT INTO t SELECT seq * 2, seq, CONCAT('row ', seq) FROM seq_1_to_50")
			_, dst := servers(t)
			dst.Exec(t, "USE "+schema, tc.mutate)
			r := compareOne(t, same(schema, "t"), Options{ChunkSize: 10, Retries: -1})
			re := regexp.MustCompile("^" + strings.ReplaceAll(regexp.QuoteMeta(tc.want), "~", "[0-9a-f]{8}") + "$")
			if r.Match || r.Err != nil || !re.MatchString(r.FirstDiff) {
				t.Fatalf("got %+v\nwant FirstDiff %s", r, tc.want)
			}
			// The walk goes on to the end after the first diff.
			if r.Rows != 50 || r.Chunks != 6 {
				t.Fatalf("rows %d chunks %d, want 50 rows in 6 chunks", r.Rows, r.Chunks)
			}
		})
	}
}

// TestTargetShape covers targets that are not a copy of the source table:
// missing, lacking a column, with extra columns, and merged from several
// sources (a route), with both ways the driver can send TargetArgs.
func TestTargetShape(t *testing.T) {
	t.Parallel()
	src, dst := servers(t)
	src.Exec(t, "CREATE OR REPLACE DATABASE ts_a", "CREATE OR REPLACE DATABASE ts_b",
		"CREATE TABLE ts_a.t (id INT PRIMARY KEY, v VARCHAR(20), d DECIMAL(10,2))",
		"CREATE TABLE ts_b.t (id INT PRIMARY KEY, v VARCHAR(20), d DECIMAL(10,2))",
		"USE ts_a",
		"INSERT INTO ts_a.t SELECT seq, CONCAT('a', seq), seq / 4 FROM seq_1_to_300",
		"INSERT INTO ts_b.t SELECT seq, CONCAT('b', seq), seq / 8 FROM seq_1_to_200",
		"CREATE TABLE ts_a.gone (id INT PRIMARY KEY)",
		"CREATE TABLE ts_a.narrow (id INT PRIMARY KEY, v INT, w INT)")
	// The merged table has the source tables' columns in another order, a
	// column saying where a row came from, and one of its own.
	dst.Exec(t, "CREATE OR REPLACE DATABASE ts_m", "CREATE OR REPLACE DATABASE ts_a",
		`CREATE TABLE ts_m.t (src VARCHAR(5) NOT NULL, d DECIMAL(10,2), id INT NOT NULL, v VARCHAR(20),
			loaded TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, PRIMARY KEY (src, id))`,
		"USE ts_m",
		"INSERT INTO ts_m.t (src, id, v, d) SELECT 'a', seq, CONCAT('a', seq), seq / 4 FROM seq_1_to_300",
		"INSERT INTO ts_m.t (src, id, v, d) SELECT 'b', seq, CONCAT('b', seq), seq / 8 FROM seq_1_to_200",
		"CREATE TABLE ts_a.narrow (id INT PRIMARY KEY, v INT)")

	merged := func(schema, src string) Table {
		return Table{SourceSchema: schema, SourceTable: "t", TargetSchema: "ts_m", TargetTable: "t",
			TargetWhere: "`src` = ?", TargetArgs: []any{src}}
	}
	for _, mode := range []struct {
		name     string
		src, dst *sql.DB
	}{{"interpolated", srcDB, dstDB}, {"prepared", srcPrep, dstPrep}} {
		t.Run(mode.name, func(t *testing.T) {
			res, err := Compare(context.Background(), mode.src, mode.dst, []Table{
				merged("ts_a", "a"),
				merged("ts_b", "b"),
				same("ts_a", "gone"),
				same("ts_a", "narrow"),
				merged("ts_b", "a"), // the wrong filter
			}, Options{ChunkSize: 64, Retries: -1})
			if err != nil {
				t.Fatal(err)
			}
			want := []struct {
				match bool
				rows  int64
				diff  string
			}{
				{true, 300, ""},
				{true, 200, ""},
				{false, 0, "missing on target"},
				{false, 0, "columns missing on target: `w`"},
				{false, 200, "`id` <= 64: source 64 rows checksum"},
			}
			for i, w := range want {
				r := res[i]
				if r.Match != w.match || r.Err != nil || r.Rows != w.rows || !strings.HasPrefix(r.FirstDiff, w.diff) {
					t.Errorf("table %d: got %+v, want match %v rows %d diff %q", i, r, w.match, w.rows, w.diff)
				}
			}
			if res[0].Source != "ts_a.t" || res[0].Target != "ts_m.t" {
				t.Errorf("names %q %q", res[0].Source, res[0].Target)
			}
		})
	}
}

// TestLarge walks 25,000 rows in chunks of 1000 and watches the progress.
func TestLarge(t *testing.T) {
	t.Parallel()
	both(t, "CREATE OR REPLACE DATABASE big", "USE big",
		"CREATE TABLE t (id INT PRIMARY KEY, n INT, s VARCHAR(40), at DATETIME)",
		"INSERT INTO t SELECT seq, seq * 7 % 1000, CONCAT('row ', seq), TIMESTAMP'2024-01-01 00:00:00' + INTERVAL seq SECOND FROM seq_1_to_25000",
		"ANALYZE TABLE t")
	var got []Progress
	r := compareOne(t, same("big", "t"), Options{ChunkSize: 1000, Progress: func(p Progress) { got = append(got, p) }})
	// 25 full chunks, then the open-ended one after the last bound, which
	// would catch rows the target has beyond it.
	if !r.Match || r.Err != nil || r.Rows != 25000 || r.Chunks != 26 {
		t.Fatalf("got %+v", r)
	}
	if len(got) != 26 {
		t.Fatalf("Progress called %d times, want 26", len(got))
	}
	for i, p := range got {
		want := min(int64(i+1)*1000, 25000)
		if p.Table != "big.t" || p.Chunk != i+1 || p.RowsChecked != want || p.RowsTotal <= 0 {
			t.Fatalf("progress %d: %+v", i, p)
		}
	}
}

// TestRetries covers a target that catches up while a chunk is re-checked,
// one that does not, and cancellation during the wait.
func TestRetries(t *testing.T) {
	t.Parallel()
	both(t, "CREATE OR REPLACE DATABASE rt", "USE rt",
		"CREATE TABLE t (id INT PRIMARY KEY, v INT)", "INSERT INTO t SELECT seq, seq FROM seq_1_to_20",
		"CREATE TABLE u (id INT PRIMARY KEY, v INT)", "INSERT INTO u SELECT seq, seq FROM seq_1_to_20",
		"CREATE TABLE c (id INT PRIMARY KEY, v INT)", "INSERT INTO c SELECT seq, seq FROM seq_1_to_20")
	_, dst := servers(t)
	dst.Exec(t, "UPDATE rt.t SET v = 0 WHERE id = 5", "UPDATE rt.u SET v = 0 WHERE id = 5", "UPDATE rt.c SET v = 0 WHERE id = 5")

	t.Run("caught up", func(t *testing.T) {
		t.Parallel()
		const wait = 300 * time.Millisecond
		fixed := make(chan error, 1)
		go func() {
			time.Sleep(time.Second)
			fixed <- dst.ExecErr("UPDATE rt.t SET v = 5 WHERE id = 5")
		}()
		start := time.Now()
		r := compareOne(t, same("rt", "t"), Options{Retries: 20, RetryWait: wait})
		if err := <-fixed; err != nil {
			t.Fatal(err)
		}
		if !r.Match || r.Err != nil || r.Rows != 20 {
			t.Fatalf("got %+v", r)
		}
		if d := time.Since(start); d < time.Second {
			t.Fatalf("matched after %v, before the target was fixed", d)
		}
	})
	t.Run("exhausted", func(t *testing.T) {
		t.Parallel()
		start := time.Now()
		r := compareOne(t, same("rt", "u"), Options{Retries: 2, RetryWait: 100 * time.Millisecond})
		if r.Match || r.Err != nil || !strings.HasPrefix(r.FirstDiff, "whole table: source 20 rows") {
			t.Fatalf("got %+v", r)
		}
		if d := time.Since(start); d < 200*time.Millisecond {
			t.Fatalf("gave up after %v, want 2 waits of 100ms", d)
		}
	})
	t.Run("cancelled while waiting", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := Compare(ctx, srcDB, dstDB, []Table{same("rt", "c")}, Options{Retries: 100, RetryWait: 10 * time.Second})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err %v, want the deadline", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("returned after %v", d)
		}
	})
}

// TestErrors separates per-table problems from ones that stop everything.
func TestErrors(t *testing.T) {
	t.Parallel()
	both(t, "CREATE OR REPLACE DATABASE er", "CREATE TABLE er.t (id INT PRIMARY KEY)", "INSERT INTO er.t VALUES (1), (2)")

	t.Run("table missing on source", func(t *testing.T) {
		res, err := Compare(context.Background(), srcDB, dstDB, []Table{same("er", "nope"), same("er", "t")}, noRetry)
		if err != nil {
			t.Fatal(err)
		}
		if res[0].Match || res[0].Err == nil || !strings.Contains(res[0].Err.Error(), "not found on source") {
			t.Errorf("missing table: %+v", res[0])
		}
		if !res[1].Match || res[1].Err != nil || res[1].Rows != 2 {
			t.Errorf("the next table: %+v", res[1])
		}
	})
	t.Run("bad TargetWhere", func(t *testing.T) {
		tbl := same("er", "t")
		tbl.TargetWhere = "no_such_column = 1"
		r := compareOne(t, tbl, noRetry)
		if r.Match || r.Err == nil {
			t.Errorf("got %+v", r)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		res, err := Compare(ctx, srcDB, dstDB, []Table{same("er", "t")}, noRetry)
		if !errors.Is(err, context.Canceled) || len(res) != 0 {
			t.Errorf("got %v, %v", res, err)
		}
	})
	t.Run("source unreachable", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		down, err := sql.Open("mysql", fmt.Sprintf("root@tcp(127.0.0.1:%d)/?timeout=2s", port))
		if err != nil {
			t.Fatal(err)
		}
		defer down.Close()
		res, err := Compare(context.Background(), down, dstDB, []Table{same("er", "t")}, noRetry)
		if err == nil || len(res) != 0 {
			t.Errorf("got %v, %v, want an error", res, err)
		}
	})
	t.Run("session restored", func(t *testing.T) {
		// The caller's pool gets its connections back as they were.
		db, err := sql.Open("mysql", srcSrv.DriverDSN(""))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		db.SetMaxOpenConns(1)
		if _, err := db.Exec("SET SESSION time_zone = '+05:30'"); err != nil {
			t.Fatal(err)
		}
		if _, err := Compare(context.Background(), db, dstDB, []Table{same("er", "t")}, noRetry); err != nil {
			t.Fatal(err)
		}
		var tz string
		if err := db.QueryRow("SELECT @@session.time_zone").Scan(&tz); err != nil || tz != "+05:30" {
			t.Errorf("time_zone %q, %v", tz, err)
		}
	})
}

func TestTables(t *testing.T) {
	t.Parallel()
	src, _ := servers(t)
	src.Exec(t, "CREATE OR REPLACE DATABASE tl_b", "CREATE OR REPLACE DATABASE tl_a",
		"CREATE TABLE tl_b.z (id INT)", "CREATE TABLE tl_a.y (id INT)", "CREATE TABLE tl_a.X (id INT)",
		"CREATE TABLE tl_a.skip (id INT)", "CREATE VIEW tl_a.v AS SELECT * FROM tl_a.y",
		"CREATE TABLE tl_a.h (id INT) WITH SYSTEM VERSIONING", "CREATE SEQUENCE tl_a.seq")
	got, err := Tables(context.Background(), srcDB, func(schema, table string) bool {
		return strings.HasPrefix(schema, "tl_") && table != "skip"
	})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tb := range got {
		if tb.TargetSchema != tb.SourceSchema || tb.TargetTable != tb.SourceTable || tb.TargetWhere != "" {
			t.Errorf("target of %+v", tb)
		}
		names = append(names, tb.SourceSchema+"."+tb.SourceTable)
		if tb.Sequence != (tb.SourceTable == "seq") {
			t.Errorf("%s.%s: Sequence %v", tb.SourceSchema, tb.SourceTable, tb.Sequence)
		}
	}
	if want := "tl_a.X tl_a.h tl_a.seq tl_a.y tl_b.z"; strings.Join(names, " ") != want {
		t.Errorf("got %v, want %s", names, want)
	}

	all, err := Tables(context.Background(), srcDB, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range all {
		if s := strings.ToLower(tb.SourceSchema); s == "mysql" || s == "sys" || s == "information_schema" || s == "performance_schema" {
			t.Errorf("system table %s.%s listed", tb.SourceSchema, tb.SourceTable)
		}
	}
}

// TestSequences compares sequences by their row: equal ones match; one
// whose state (a NEXTVAL past the cache) or definition differs, or whose
// target is missing or an ordinary table, does not.
func TestSequences(t *testing.T) {
	t.Parallel()
	src, dst := servers(t)
	both(t, "CREATE OR REPLACE DATABASE sq",
		"CREATE SEQUENCE sq.same START WITH 100 INCREMENT BY 5 CACHE 10 CYCLE MAXVALUE 1000",
		"CREATE SEQUENCE sq.moved CACHE 0", "CREATE SEQUENCE sq.inc", "CREATE SEQUENCE sq.round MAXVALUE 3 CYCLE CACHE 0")
	both(t, "DO NEXTVAL(sq.same), NEXTVAL(sq.same), NEXTVAL(sq.moved)")
	src.Exec(t, "DO NEXTVAL(sq.moved)", "CREATE SEQUENCE sq.plain", "CREATE SEQUENCE sq.gone",
		"DO SETVAL(sq.round, 2, 0, 1)")
	dst.Exec(t, "ALTER SEQUENCE sq.inc INCREMENT BY 2", "CREATE TABLE sq.plain (next_not_cached_value BIGINT)",
		"DO SETVAL(sq.round, 2, 0, 0)")
	seq := func(name string) Table {
		tb := same("sq", name)
		tb.Sequence = true
		return tb
	}
	res, err := Compare(context.Background(), srcDB, dstDB,
		[]Table{seq("same"), seq("moved"), seq("inc"), seq("round"), seq("plain"), seq("gone")}, noRetry)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		match bool
		diff  string
	}{
		{true, ""},
		{false, "sequence next_not_cached_value: source 3, target 2"},
		{false, "sequence increment: source 1, target 2"},
		{false, "sequence cycle_count: source 1, target 0"},
		{false, "not a sequence on the target (base table)"},
		{false, "missing on target"},
	}
	for i, w := range want {
		if r := res[i]; r.Match != w.match || r.Err != nil || r.FirstDiff != w.diff {
			t.Errorf("%s: got %+v, want match %v diff %q", r.Source, r, w.match, w.diff)
		}
	}
	if res[0].Rows != 1 {
		t.Errorf("rows %d, want 1", res[0].Rows)
	}
}

// BenchmarkCompare compares a 100,000-row table with its copy on another
// server.
func BenchmarkCompare(b *testing.B) {
	const rows = 100_000
	src, dst := servers(b)
	for _, m := range []*testenv.MariaDB{src, dst} {
		if err := m.ExecErr("CREATE DATABASE bench"); err != nil {
			continue // made by an earlier run of the benchmark in this process
		}
		m.Exec(b, "USE bench",
			"CREATE TABLE t (id BIGINT PRIMARY KEY, n INT, d DECIMAL(12,2), s VARCHAR(64), at DATETIME(6), f DOUBLE, j JSON)",
			fmt.Sprintf(`INSERT INTO t SELECT seq, seq * 7 %% 1000, seq / 3, CONCAT('row number ', seq),
				TIMESTAMP'2024-01-01 00:00:00' + INTERVAL seq SECOND, seq / 7, CONCAT('{"k": ', seq, '}') FROM seq_1_to_%d`, rows))
	}
	tables := []Table{same("bench", "t")}
	for b.Loop() {
		res, err := Compare(context.Background(), srcDB, dstDB, tables, Options{})
		if err != nil || !res[0].Match || res[0].Rows != rows {
			b.Fatalf("%+v %v", res, err)
		}
	}
	b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}
