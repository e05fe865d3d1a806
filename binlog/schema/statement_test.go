package schema

import (
	"strings"
	"testing"

	"github.com/pingcap/tidb/pkg/parser/mysql"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		sql    string
		mode   SQLMode
		kind   Kind
		tables string // "db.t,db.u"
		db     string
	}{
		{sql: "CREATE USER 'u'@'%' IDENTIFIED BY 'pw'", kind: AccountStatement},
		{sql: "create or replace user u", kind: AccountStatement},
		{sql: "/* x */ GRANT SELECT ON shop.* TO 'u'@'%'", kind: AccountStatement},
		{sql: "REVOKE ALL ON *.* FROM u", kind: AccountStatement},
		{sql: "SET PASSWORD FOR 'u'@'%' = PASSWORD('x')", kind: AccountStatement},
		{sql: "ALTER USER u IDENTIFIED BY 'x'", kind: AccountStatement},
		{sql: "DROP USER u", kind: AccountStatement},
		{sql: "RENAME USER a TO b", kind: AccountStatement},
		{sql: "CREATE ROLE r", kind: AccountStatement},
		{sql: "DROP ROLE r", kind: AccountStatement},
		{sql: "SET DEFAULT ROLE r FOR u", kind: AccountStatement},
		{sql: "RENAME TABLE a TO b, c TO a", kind: TableStatement, tables: "d.a,d.b,d.c,d.a"},
		{sql: "RENAME TABLE `q``b`.a TO x.b", kind: TableStatement, tables: "q`b.a,x.b"},
		{sql: "CREATE INDEX i ON b.t (a)", kind: TableStatement, tables: "b.t"},
		{sql: "ALTER TABLE t RENAME TO u", kind: TableStatement, tables: "d.t,d.u"},
		{sql: "CREATE TABLE t2 LIKE o.t1", kind: TableStatement, tables: "d.t2,o.t1"},
		{sql: "CREATE VIEW v AS SELECT 1", kind: TableStatement, tables: "d.v"},
		{sql: "DROP DATABASE x", kind: DatabaseStatement, db: "x"},
		{sql: "CREATE PROCEDURE p() BEGIN END", kind: OtherStatement},
		{sql: `CREATE TABLE "a b" ("c" INT)`, mode: SQLMode(mysql.ModeANSIQuotes), kind: TableStatement, tables: "d.a b"},
		{sql: "CREATE TABLE t (a INT) SELECT 1 AS a START TRANSACTION", kind: TableStatement, tables: "d.t"},
	}
	for _, tt := range tests {
		st := Classify("d", tt.sql, tt.mode)
		var names []string
		for _, r := range st.Tables {
			names = append(names, r.Schema+"."+r.Name)
		}
		if st.Kind != tt.kind || strings.Join(names, ",") != tt.tables || st.Database != tt.db {
			t.Errorf("Classify(%q) = kind %d tables %q db %q; want kind %d tables %q db %q", tt.sql, st.Kind, names, st.Database, tt.kind, tt.tables, tt.db)
		}
	}
}

func TestRedact(t *testing.T) {
	tests := []struct{ in, want string }{
		{"CREATE USER 'u'@'%' IDENTIFIED BY 'sekrit'", "CREATE USER 'u'@'%' IDENTIFIED BY '***'"},
		{"CREATE USER `u`@`%` IDENTIFIED BY PASSWORD '*94BDCEBE19083CE2A1F959FD02F964C7AF4CFC29'", "CREATE USER `u`@`%` IDENTIFIED BY PASSWORD '***'"},
		{"ALTER USER u IDENTIFIED VIA ed25519 USING PASSWORD('sekrit')", "ALTER USER u IDENTIFIED VIA ed25519 USING PASSWORD('***')"},
		{"CREATE USER u IDENTIFIED VIA mysql_native_password USING 'hash' OR unix_socket", "CREATE USER u IDENTIFIED VIA mysql_native_password USING '***' OR unix_socket"},
		{"CREATE USER u IDENTIFIED WITH caching_sha2_password AS '$A$005$x'", "CREATE USER u IDENTIFIED WITH caching_sha2_password AS '***'"},
		{"SET PASSWORD FOR 'u'@'h' = PASSWORD('sekrit')", "SET PASSWORD FOR 'u'@'h' = PASSWORD('***')"},
		{"SET PASSWORD FOR `u`@`h`='*94BDCEBE1908'", "SET PASSWORD FOR `u`@`h`='***'"},
		{"SET PASSWORD = 'x'", "SET PASSWORD = '***'"},
		{"GRANT ALL ON *.* TO 'u'@'h' IDENTIFIED BY 'it''s \\' sekrit'", "GRANT ALL ON *.* TO 'u'@'h' IDENTIFIED BY '***'"},
		{"ALTER USER u IDENTIFIED BY 'new' REPLACE 'old'", "ALTER USER u IDENTIFIED BY '***' REPLACE '***'"},
		{"CREATE USER u IDENTIFIED BY _utf8mb4'sekrit'", "CREATE USER u IDENTIFIED BY _utf8mb4'***'"},
		{"CREATE SERVER s FOREIGN DATA WRAPPER mysql OPTIONS (USER 'r', PASSWORD 'sekrit')", "CREATE SERVER s FOREIGN DATA WRAPPER mysql OPTIONS (USER 'r', PASSWORD '***')"},
		// Truncated in the middle of the literal.
		{"CREATE USER u IDENTIFIED BY 'sekr", "CREATE USER u IDENTIFIED BY '***'"},
		// Nothing to hide.
		{"ALTER TABLE t ADD c INT DEFAULT 'by'", "ALTER TABLE t ADD c INT DEFAULT 'by'"},
		{"CREATE TABLE t (a INT) PARTITION BY KEY (a)", "CREATE TABLE t (a INT) PARTITION BY KEY (a)"},
	}
	for _, tt := range tests {
		if got := Redact(tt.in); got != tt.want {
			t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestStripStartTransaction(t *testing.T) {
	tests := []struct{ in, want string }{
		{"CREATE TABLE t2 (\n  `a` int DEFAULT NULL\n) START TRANSACTION", "CREATE TABLE t2 (\n  `a` int DEFAULT NULL\n)"},
		{"create table t2 (a int) start transaction;", "create table t2 (a int)"},
		{"CREATE TABLE t (a VARCHAR(20) DEFAULT 'START TRANSACTION')", "CREATE TABLE t (a VARCHAR(20) DEFAULT 'START TRANSACTION')"},
		{"START TRANSACTION", "START TRANSACTION"},
	}
	for _, tt := range tests {
		if got := StripStartTransaction(tt.in); got != tt.want {
			t.Errorf("StripStartTransaction(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	// The tracker reads the statement MySQL 8.0.21+ logs.
	c := NewCatalog("utf8mb4")
	if _, err := c.Apply("d", "CREATE TABLE t2 (\n  `a` int DEFAULT NULL, b varchar(3)\n) START TRANSACTION"); err != nil {
		t.Fatal(err)
	}
	if got := cols(c.Table("d", "t2")); got != "a int(11), b varchar(3) cs=utf8mb4 | key " {
		t.Fatalf("columns %s", got)
	}
}

func TestRewriteTables(t *testing.T) {
	route := func(r TableRef) (string, string, bool) {
		switch r.Schema + "." + r.Name {
		case "shop_1.orders", "shop_2.orders":
			return "agg", "orders", true
		case "d.a":
			return "x", "a2", true
		case "q`b.t":
			return "out", "t", true
		}
		return "", "", false
	}
	tests := []struct{ in, want string }{
		{"ALTER TABLE shop_1.orders ADD COLUMN x INT", "ALTER TABLE `agg`.`orders` ADD COLUMN x INT"},
		{"alter table `shop_2` . `orders` add index (x)", "alter table `agg`.`orders` add index (x)"},
		{"CREATE TABLE IF NOT EXISTS `shop_2`.`orders` (id INT)", "CREATE TABLE IF NOT EXISTS `agg`.`orders` (id INT)"},
		{"DROP TABLE shop_1.orders /* generated by server */", "DROP TABLE `agg`.`orders` /* generated by server */"},
		// Every table of a multi-table RENAME, not only the first.
		{"RENAME TABLE a TO b, c TO a", "RENAME TABLE `x`.`a2` TO b, c TO `x`.`a2`"},
		{"RENAME TABLE b TO c, a TO b", "RENAME TABLE b TO c, `x`.`a2` TO b"},
		// A column named like the table is left alone.
		{"ALTER TABLE a ADD COLUMN a INT", "ALTER TABLE `x`.`a2` ADD COLUMN a INT"},
		{"ALTER TABLE `q``b`.t ADD COLUMN t INT", "ALTER TABLE `out`.`t` ADD COLUMN t INT"},
		{"CREATE INDEX i ON shop_1.orders (a)", "CREATE INDEX i ON `agg`.`orders` (a)"},
	}
	for _, tt := range tests {
		if got, _ := RewriteTables("d", tt.in, 0, route); got != tt.want {
			t.Errorf("RewriteTables(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if _, ok := RewriteTables("d", "CREATE DATABASE a", 0, route); ok {
		t.Error("a database statement was rewritten")
	}
}

func TestApplyANSIQuotes(t *testing.T) {
	c := NewCatalog("utf8mb4")
	if _, err := c.ApplyMode("d", `CREATE TABLE "t" ("id" INT PRIMARY KEY, "v" VARCHAR(5))`, SQLMode(mysql.ModeANSIQuotes)); err != nil {
		t.Fatal(err)
	}
	if got := cols(c.Table("d", "t")); got != "id int(11) notnull, v varchar(5) cs=utf8mb4 | key id" {
		t.Fatalf("columns %s", got)
	}
	if _, err := c.Apply("d", `CREATE TABLE "t2" ("id" INT)`); err == nil {
		t.Fatal("without ANSI_QUOTES, \"t2\" is a string and the statement does not parse")
	}
}

func TestApplyMariaDBDialect(t *testing.T) {
	c := NewCatalog("utf8mb4")
	for _, q := range []string{
		"CREATE TABLE t (a CHAR(1) BYTE, b CHAR(32) ASCII, c VARCHAR(5) UNICODE, d TEXT UNICODE, e INT DEFAULT (1+2), f VARCHAR(3) DEFAULT ('p' || 'q'))",
		"ALTER TABLE t ADD g CHAR(2) ASCII NOT NULL DEFAULT (concat('a', 'b')), ADD h INT DEFAULT (-1)",
	} {
		if _, err := c.ApplyMode("d", q, SQLMode(mysql.ModePipesAsConcat)); err != nil {
			t.Fatal(err)
		}
	}
	want := "a binary(1) cs=binary, b char(32) cs=latin1, c varchar(5) cs=ucs2, d text cs=ucs2, e int(11), f varchar(3) cs=utf8mb4, g char(2) cs=latin1 notnull, h int(11) | key "
	if got := cols(c.Table("d", "t")); got != want {
		t.Fatalf("columns\n%s\nwant\n%s", got, want)
	}
}

func TestFoldCase(t *testing.T) {
	for _, fold := range []bool{false, true} {
		c := NewCatalog("utf8mb4")
		c.FoldCase = fold
		for _, q := range []string{"CREATE TABLE orders (id INT PRIMARY KEY)", "ALTER TABLE Orders ADD c INT", "ALTER TABLE D.ORDERS ADD e INT"} {
			if _, err := c.Apply("d", q); err != nil {
				t.Fatal(err)
			}
		}
		want := "id int(11) notnull | key id"
		if fold {
			want = "id int(11) notnull, c int(11), e int(11) | key id"
		}
		if got := cols(c.Table("d", "orders")); got != want {
			t.Errorf("fold %v: %s, want %s", fold, got, want)
		}
		if fold && c.Table("D", "ORDERS") == nil {
			t.Error("lookup is not case-insensitive")
		}
	}
}

func TestSystemVersioning(t *testing.T) {
	c := NewCatalog("utf8mb4")
	steps := []struct{ sql, want string }{
		{"CREATE TABLE v (id INT PRIMARY KEY, x INT WITHOUT SYSTEM VERSIONING) WITH SYSTEM VERSIONING",
			"id int(11) notnull, x int(11), row_start timestamp(6) generated invisible notnull, row_end timestamp(6) generated invisible notnull | key id"},
		{"ALTER TABLE v DROP SYSTEM VERSIONING", "id int(11) notnull, x int(11) | key id"},
		{"ALTER TABLE v ADD SYSTEM VERSIONING",
			"id int(11) notnull, x int(11), row_start timestamp(6) generated invisible notnull, row_end timestamp(6) generated invisible notnull | key id"},
	}
	for _, s := range steps {
		if _, err := c.Apply("d", s.sql); err != nil {
			t.Fatal(err)
		}
		if got := cols(c.Table("d", "v")); got != s.want {
			t.Fatalf("after %s:\n%s\nwant\n%s", s.sql, got, s.want)
		}
	}
}

func TestFunctionalIndexHiddenColumns(t *testing.T) {
	c := NewCatalog("utf8mb4")
	steps := []struct{ sql, want string }{
		{"CREATE TABLE t (a INT, INDEX i((a+1)), KEY j (a))", "a int(11), !hidden!i!0!0 functional index generated invisible | key "},
		{"ALTER TABLE t ADD COLUMN b TEXT", "a int(11), !hidden!i!0!0 functional index generated invisible, b text cs=utf8mb4 | key "},
		{"CREATE INDEX k ON t ((a*2), b(3))", "a int(11), !hidden!i!0!0 functional index generated invisible, b text cs=utf8mb4, !hidden!k!0!0 functional index generated invisible | key "},
		{"ALTER TABLE t DROP INDEX i", "a int(11), b text cs=utf8mb4, !hidden!k!0!0 functional index generated invisible | key "},
		{"DROP INDEX k ON t", "a int(11), b text cs=utf8mb4 | key "},
	}
	for _, s := range steps {
		if _, err := c.Apply("d", s.sql); err != nil {
			t.Fatal(err)
		}
		if got := cols(c.Table("d", "t")); got != s.want {
			t.Fatalf("after %s:\n%s\nwant\n%s", s.sql, got, s.want)
		}
	}
}

func TestProgramKind(t *testing.T) {
	for _, tc := range []struct{ sql, want string }{
		{"CREATE DEFINER=`root`@`localhost` TRIGGER ai AFTER INSERT ON a FOR EACH ROW INSERT INTO l VALUES (NEW.id)", "trigger"},
		{"CREATE TRIGGER IF NOT EXISTS t BEFORE UPDATE ON a FOR EACH ROW SET NEW.v = 1", "trigger"},
		{"create or replace definer = CURRENT_USER() trigger t before delete on a for each row set @x = 1", "trigger"},
		{"CREATE DEFINER=root@localhost TRIGGER t AFTER INSERT ON a FOR EACH ROW SET @x = 1", "trigger"},
		{"/* c */ DROP TRIGGER IF EXISTS app.t", "trigger"},
		{"CREATE DEFINER=`root`@`%` EVENT e ON SCHEDULE EVERY 1 HOUR DO DELETE FROM t", "event"},
		{"ALTER DEFINER=`root`@`%` EVENT e DISABLE", "event"},
		{"ALTER EVENT e ON COMPLETION PRESERVE", "event"},
		{"DROP EVENT IF EXISTS e", "event"},
		{"CREATE DEFINER=`root`@`localhost` PROCEDURE p() BEGIN SELECT 1; END", ""},
		{"CREATE DEFINER=`trigger`@`localhost` FUNCTION f() RETURNS INT RETURN 1", ""},
		{"CREATE ALGORITHM=UNDEFINED DEFINER=`root`@`localhost` SQL SECURITY DEFINER VIEW v AS SELECT 1", ""},
		{"CREATE TABLE `trigger` (id INT)", ""},
		{"ALTER TABLE t ADD COLUMN event INT", ""},
		{"DROP TABLE event", ""},
		{"INSERT INTO t VALUES (1)", ""},
	} {
		if got := ProgramKind(tc.sql); got != tc.want {
			t.Errorf("ProgramKind(%q) = %q, want %q", tc.sql, got, tc.want)
		}
	}
}

func TestShorten(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly", 7, "exactly"},
		{"abcdef", 3, "abc..."},
		{"aé", 2, "a..."}, // é is two bytes: never cut inside it
		{"ééé", 3, "é..."},
		{"€", 0, "..."},
	}
	for _, tt := range tests {
		if got := Shorten(tt.in, tt.n); got != tt.want {
			t.Errorf("Shorten(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}
