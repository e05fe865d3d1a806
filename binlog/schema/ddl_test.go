package schema

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// cols renders a table as "name type[ flags], ..." for comparison.
func cols(t *Table) string {
	if t == nil {
		return "<nil>"
	}
	var parts []string
	for _, c := range t.Columns {
		s := c.Name + " " + c.SQLType
		if c.Charset != "" {
			s += " cs=" + c.Charset
		}
		for _, f := range []struct {
			on   bool
			name string
		}{{c.Unsigned, "unsigned"}, {c.Generated, "generated"}, {c.Invisible, "invisible"}, {c.JSON, "json"}, {!c.Nullable, "notnull"}} {
			if f.on {
				s += " " + f.name
			}
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ") + " | key " + strings.Join(t.RowKey(), ",")
}

func TestApplyDDL(t *testing.T) {
	tests := []struct {
		name  string
		stmts []string
		table string // db.table to check
		want  string
	}{
		{
			name:  "create with types and keys",
			stmts: []string{"CREATE TABLE d.t (id INT UNSIGNED NOT NULL, b VARBINARY(8), c CHAR(3) CHARACTER SET latin1, e ENUM('a','b'), j JSON, UNIQUE KEY u (b), PRIMARY KEY (id))"},
			table: "d.t",
			want:  "id int(11) unsigned unsigned notnull, b varbinary(8) cs=binary, c char(3) cs=latin1, e enum('a','b') cs=utf8mb4, j json json | key id",
		},
		{
			name: "table and database charsets",
			stmts: []string{"CREATE DATABASE l CHARACTER SET latin1", "CREATE TABLE l.t (a TEXT, b VARCHAR(5) CHARSET utf8mb4)",
				"CREATE TABLE l.u (a TEXT) DEFAULT CHARSET=cp1251"},
			table: "l.t",
			want:  "a text cs=latin1, b varchar(5) cs=utf8mb4 | key ",
		},
		{
			name:  "MariaDB JSON, spatial, uuid, invisible, persistent",
			stmts: []string{"CREATE OR REPLACE TABLE d.m (id INT PRIMARY KEY, doc LONGTEXT CHECK (json_valid(doc)), g POINT, geo GEOMETRY NOT NULL, u UUID, h INT INVISIBLE, p INT AS (id * 2) PERSISTENT) WITH SYSTEM VERSIONING"},
			table: "d.m",
			want:  "id int(11) notnull, doc longtext cs=utf8mb4 json, g point cs=binary, geo geometry cs=binary notnull, u uuid cs=binary, h int(11) invisible, p int(11) generated, row_start timestamp(6) generated invisible notnull, row_end timestamp(6) generated invisible notnull | key id",
		},
		{
			name: "alter add first/after, drop, modify, change, rename column",
			stmts: []string{"CREATE TABLE d.a (id INT PRIMARY KEY, x INT, y INT)",
				"ALTER TABLE d.a ADD COLUMN z BIGINT FIRST, ADD COLUMN w TEXT AFTER id, DROP COLUMN x",
				"ALTER TABLE d.a MODIFY y VARCHAR(10) AFTER z, CHANGE id pk BIGINT UNSIGNED NOT NULL",
				"ALTER TABLE d.a RENAME COLUMN w TO ww"},
			table: "d.a",
			want:  "z bigint(20), y varchar(10) cs=utf8mb4, pk bigint(20) unsigned unsigned notnull, ww text cs=utf8mb4 | key pk",
		},
		{
			name:  "add several columns after one keeps their order",
			stmts: []string{"CREATE TABLE d.o (a INT, b INT)", "ALTER TABLE d.o ADD COLUMN (c1 INT, c2 INT) "},
			table: "d.o",
			want:  "a int(11), b int(11), c1 int(11), c2 int(11) | key ",
		},
		{
			name:  "IF NOT EXISTS keeps the existing definition",
			stmts: []string{"CREATE TABLE d.i (a INT)", "CREATE TABLE IF NOT EXISTS d.i (a INT, b INT)", "ALTER TABLE d.i ADD COLUMN IF NOT EXISTS a BIGINT, DROP COLUMN IF EXISTS nope"},
			table: "d.i",
			want:  "a int(11) | key ",
		},
		{
			name: "rename table and create like",
			stmts: []string{"CREATE TABLE d.r (a INT PRIMARY KEY)", "RENAME TABLE d.r TO d.r2", "CREATE TABLE d.r3 LIKE d.r2",
				"ALTER TABLE d.r3 RENAME TO e.r4"},
			table: "e.r4",
			want:  "a int(11) notnull | key a",
		},
		{
			name:  "drop primary key, unique not null key becomes the row key",
			stmts: []string{"CREATE TABLE d.k (a INT NOT NULL, b INT NOT NULL, c INT, PRIMARY KEY (a))", "CREATE UNIQUE INDEX uc ON d.k (c)", "ALTER TABLE d.k DROP PRIMARY KEY, ADD UNIQUE KEY ub (b)"},
			table: "d.k",
			want:  "a int(11) notnull, b int(11) notnull, c int(11) | key b",
		},
		{
			name:  "collations the parser does not know",
			stmts: []string{"CREATE TABLE d.u (a VARCHAR(5) COLLATE utf8mb4_uca1400_ai_ci, b TEXT CHARACTER SET cp1251) COLLATE=utf8mb4_uca1400_as_cs"},
			table: "d.u",
			want:  "a varchar(5) cs=utf8mb4, b text cs=cp1251 | key ",
		},
		{
			name:  "convert to character set",
			stmts: []string{"CREATE TABLE d.c (a VARCHAR(5), b BLOB, n INT) DEFAULT CHARSET=utf8mb4", "ALTER TABLE d.c CONVERT TO CHARACTER SET latin1"},
			table: "d.c",
			want:  "a varchar(5) cs=latin1, b blob cs=binary, n int(11) | key ",
		},
		{
			name:  "drop database and table",
			stmts: []string{"CREATE TABLE x.t (a INT)", "DROP DATABASE x"},
			table: "x.t",
			want:  "<nil>",
		},
		{
			name:  "statements that do not change tables are ignored",
			stmts: []string{"CREATE TABLE d.n (a INT)", "GRANT ALL ON *.* TO 'u'@'%'", "CREATE VIEW d.v AS SELECT 1", "ANALYZE TABLE d.n", "FLUSH PRIVILEGES", "XA START 'x'"},
			table: "d.n",
			want:  "a int(11) | key ",
		},
		{
			name:  "default database",
			stmts: []string{"USE-DB d", "CREATE TABLE q (a INT)"},
			table: "d.q",
			want:  "a int(11) | key ",
		},
		{
			name: "YEAR(n) and partition operations on ALL (Maxwell's DDL tests)",
			stmts: []string{"CREATE TABLE d.y (a YEAR(2), b year (4) NOT NULL, c INT DEFAULT (YEAR(NOW()))) PARTITION BY HASH (c) PARTITIONS 2",
				"ALTER TABLE d.y ANALYZE PARTITION ALL", "ALTER TABLE d.y TRUNCATE PARTITION all", "ALTER TABLE d.y ADD COLUMN e INT"},
			table: "d.y",
			want:  "a year(4), b year(4) notnull, c int(11), e int(11) | key ",
		},
		{
			name:  "comments and quoting",
			stmts: []string{"/* a comment */ CREATE TABLE `d`.`we``ird` (`point` INT, `uuid` UUID, -- trailing\n note VARCHAR(3) COMMENT 'point is not a type here')"},
			table: "d.we`ird",
			want:  "point int(11), uuid uuid cs=binary, note varchar(3) cs=utf8mb4 | key ",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewCatalog("utf8mb4")
			db := ""
			for _, s := range tt.stmts {
				if strings.HasPrefix(s, "USE-DB ") {
					db = strings.TrimPrefix(s, "USE-DB ")
					continue
				}
				if _, err := c.Apply(db, s); err != nil {
					t.Fatalf("%s: %v", s, err)
				}
			}
			sch, name, _ := strings.Cut(tt.table, ".")
			if got := cols(c.Table(sch, name)); got != tt.want {
				t.Fatalf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestApplyDDLErrors(t *testing.T) {
	c := NewCatalog("utf8mb4")
	_, err := c.Apply("d", "CREATE TABLE GENERATED LIKE t1")
	var pe *ParseError
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "CREATE TABLE GENERATED LIKE t1") {
		t.Fatalf("want a ParseError naming the statement, got %v", err)
	}
	if _, err := c.Apply("d", "CREATE TABLE t (a INT)"); err != nil {
		t.Fatal(err)
	}
	var me *MismatchError
	if _, err := c.Apply("d", "ALTER TABLE t ADD COLUMN a INT"); !errors.As(err, &me) || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("adding an existing column: %v", err)
	}
	// An ALTER of a table the catalog does not know is not an error: the
	// table is not tracked (filtered, or created before the snapshot).
	if _, err := c.Apply("d", "ALTER TABLE unknown ADD COLUMN b INT"); err != nil {
		t.Fatal(err)
	}
}

func TestTableOf(t *testing.T) {
	tests := []struct{ sql, db, table string }{
		{"ALTER TABLE `shop`.`orders` ADD x INT", "shop", "orders"},
		{"create table if not exists t1 (a int)", "def", "t1"},
		{"/* c */ DROP TABLE IF EXISTS a.b", "a", "b"},
		{"CREATE OR REPLACE TABLE x (a int)", "def", "x"},
		{"CREATE DATABASE foo", "foo", ""},
		// A backtick inside a quoted name (issue 14 item 8).
		{"ALTER TABLE `q``b`.`t` ADD x INT", "q`b", "t"},
		{"CREATE TABLE `q``b` (a INT)", "def", "q`b"},
		// No default database: CREATE INDEX names its table (item 9).
		{"CREATE INDEX i ON b.t (a)", "b", "t"},
		{"DROP INDEX i ON `b`.t", "b", "t"},
		{"TRUNCATE TABLE x.y", "x", "y"},
		// Unparseable, found by its head.
		{"ALTER TABLE `q``b`.t ADD c CHAR(1) NONSENSE", "q`b", "t"},
	}
	for _, tt := range tests {
		db, table, ok := TableOf("def", tt.sql)
		if !ok || db != tt.db || table != tt.table {
			t.Errorf("TableOf(%q) = %q, %q, %v", tt.sql, db, table, ok)
		}
	}
}

func TestCatalogJSONRoundTrip(t *testing.T) {
	c := NewCatalog("latin1")
	for _, s := range []string{"CREATE DATABASE s CHARACTER SET utf8mb4", "CREATE TABLE s.t (id INT PRIMARY KEY, e ENUM('x','y'), g POINT)"} {
		if _, err := c.Apply("", s); err != nil {
			t.Fatal(err)
		}
	}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var back Catalog
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if cols(back.Table("s", "t")) != cols(c.Table("s", "t")) || back.ServerCharset != "latin1" || back.dbCharset("s") != "utf8mb4" {
		t.Fatalf("round trip lost data: %s", b)
	}
}

func TestParseElems(t *testing.T) {
	got := parseElems(`enum('a','b''c','d,e','f\\g')`)
	want := []string{"a", "b'c", "d,e", `f\g`}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("got %q", got)
	}
}

func TestAdditiveDDL(t *testing.T) {
	tests := []struct {
		sql    string
		cols   []string // name:sqltype
		reason string   // empty when additive
	}{
		{"CREATE TABLE agg.orders (id INT PRIMARY KEY, note VARCHAR(20))", []string{"id:int(11)", "note:varchar(20)"}, ""},
		{"ALTER TABLE agg.orders ADD COLUMN price DECIMAL(10,2) NOT NULL DEFAULT 0", []string{"price:decimal(10,2)"}, ""},
		{"ALTER TABLE agg.orders ADD INDEX (price), ADD UNIQUE KEY u (note), ALGORITHM=INPLACE", nil, ""},
		{"CREATE INDEX i ON agg.orders (note)", nil, ""},
		{"CREATE DATABASE IF NOT EXISTS agg", nil, ""},
		{"ALTER TABLE agg.orders ADD COLUMN x INT, DROP COLUMN note", nil, "it changes or removes what exists (DROP COLUMN)"},
		{"ALTER TABLE agg.orders MODIFY note VARCHAR(40)", nil, "it changes or removes what exists (MODIFY)"},
		{"DROP TABLE agg.orders", nil, "it changes or removes what exists"},
		{"TRUNCATE TABLE agg.orders", nil, "it changes or removes what exists"},
		{"RENAME TABLE agg.orders TO agg.o2", nil, "it changes or removes what exists"},
		{"CREATE TABLE agg.o2 LIKE agg.orders", nil, "it copies another table"},
	}
	for _, tt := range tests {
		add, reason, err := AdditiveDDL(tt.sql)
		if err != nil {
			t.Fatalf("%s: %v", tt.sql, err)
		}
		if reason != tt.reason {
			t.Errorf("%s: reason %q, want %q", tt.sql, reason, tt.reason)
		}
		if want := tt.reason == "" && strings.HasPrefix(tt.sql, "CREATE TABLE"); add.CreatesTable != want {
			t.Errorf("%s: CreatesTable %v", tt.sql, add.CreatesTable)
		}
		var cols []string
		for _, c := range add.Columns {
			cols = append(cols, c.Name+":"+c.SQLType)
		}
		if strings.Join(cols, ",") != strings.Join(tt.cols, ",") {
			t.Errorf("%s: columns %v, want %v", tt.sql, cols, tt.cols)
		}
	}
	if !SameType("int(11)", "INT") || !SameType("bigint(20) unsigned", "bigint unsigned") || SameType("int(11)", "varchar(11)") ||
		!SameType("longtext", "JSON") || !SameType("tinyint(1)", "BOOLEAN") || SameType("text", "json") {
		t.Error("SameType")
	}
}
