package replicator_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-cdc/sluice/config"
	"github.com/sluice-cdc/sluice/internal/testenv"
	"github.com/sluice-cdc/sluice/replicator"
)

// logBuffer captures sluice's log lines, at every level.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// runCaptured runs the pipelines to the end with a log captured in logs,
// and returns the run's error.
func runCaptured(t *testing.T, cfg *config.File, logs *logBuffer) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	r, err := replicator.New(cfg, replicator.Options{StopAtEnd: true, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	return r.Run(ctx)
}

// sameTables compares tables on both servers with CHECKSUM TABLE and an
// ordered SELECT of every row.
func sameTables(t *testing.T, src, dst *testenv.MariaDB, tables ...string) {
	t.Helper()
	if a, b := src.Checksums(t, tables...), dst.Checksums(t, tables...); a != b {
		t.Errorf("checksums differ:\nsource %s\ntarget %s", a, b)
	}
	for _, tbl := range tables {
		if a, b := orderedRows(t, src, tbl), orderedRows(t, dst, tbl); a != b {
			t.Errorf("%s differs:\nsource %s\ntarget %s", tbl, a, b)
		}
	}
}

// orderedRows is every row of a table as text, ordered by every column.
func orderedRows(t *testing.T, m *testenv.MariaDB, table string) string {
	t.Helper()
	db := m.DB(t)
	db.SetMaxOpenConns(1)
	rows, err := db.Query("SELECT * FROM " + table + " LIMIT 0")
	if err != nil {
		return "error: " + err.Error()
	}
	cols, _ := rows.Columns()
	rows.Close()
	order := make([]string, len(cols))
	for i := range cols {
		order[i] = fmt.Sprint(i + 1)
	}
	rows, err = db.Query("SELECT * FROM " + table + " ORDER BY " + strings.Join(order, ","))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		var r []string
		for _, v := range vals {
			if v.Valid {
				r = append(r, fmt.Sprintf("%q", v.String))
			} else {
				r = append(r, "NULL")
			}
		}
		out = append(out, "("+strings.Join(r, ",")+")")
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(out, " ")
}

// Account statements pass no table filter: with include: ["app.*"] they do
// not reach the target, and their passwords appear in no log line. With
// account_statements they are replicated, and when the target refuses them
// the error hides the password too (issue 9).
func TestAccountStatements(t *testing.T) {
	servers := testenv.StartMariaDBs(t, 2)
	src, dst := servers[0], servers[1]
	const secret = "Sekr1t-pw-42"
	hash := src.QueryString(t, "SELECT PASSWORD(?)", secret)
	src.Exec(t,
		"CREATE DATABASE app",
		"CREATE TABLE app.t (id INT PRIMARY KEY, v VARCHAR(10))",
		"INSERT INTO app.t VALUES (1, 'a')",
		"CREATE USER 'acct'@'%' IDENTIFIED BY '"+secret+"'",
		"GRANT SELECT ON app.* TO 'acct'@'%'",
		"SET PASSWORD FOR 'acct'@'%' = PASSWORD('"+secret+"2')",
		"ALTER USER 'acct'@'%' IDENTIFIED VIA mysql_native_password USING PASSWORD('"+secret+"3')",
		"CREATE ROLE rl",
		"GRANT rl TO 'acct'@'%'",
		"SET DEFAULT ROLE rl FOR 'acct'@'%'",
		"CREATE USER 'acct2'@'%' IDENTIFIED BY PASSWORD '"+hash+"'",
		"RENAME USER 'acct2'@'%' TO 'acct3'@'%'",
		"REVOKE SELECT ON app.* FROM 'acct'@'%'",
		"INSERT INTO app.t VALUES (2, 'b')",
	)
	noSecret := func(what, text string) {
		t.Helper()
		for _, s := range []string{secret, hash, strings.TrimPrefix(hash, "*")} {
			if strings.Contains(text, s) {
				t.Errorf("%s shows a password (%q):\n%s", what, s, text)
			}
		}
	}

	var logs logBuffer
	cfg := testenv.LoadConfig(t, pipelineYAML(src, dst, "", ""))
	if err := runCaptured(t, cfg, &logs); err != nil {
		t.Fatal(err)
	}
	sameTables(t, src, dst, "app.t")
	if n := dst.QueryString(t, "SELECT COUNT(*) FROM mysql.user WHERE User IN ('acct', 'acct2', 'acct3', 'rl')"); n != "0" {
		t.Errorf("account statements reached the target: %s accounts", n)
	}
	if !strings.Contains(logs.String(), "account statement not replicated") {
		t.Errorf("dropping account statements was not logged:\n%s", logs.String())
	}
	noSecret("the log", logs.String())

	// Asked for, they are replicated to a privileged target ...
	dst2 := testenv.StartMariaDB(t, testenv.MariaDBOptions{})
	logs = logBuffer{}
	cfg = testenv.LoadConfig(t, strings.Replace(pipelineYAML(src, dst2, "", ""), "    sources:", "    account_statements: true\n    sources:", 1))
	if err := runCaptured(t, cfg, &logs); err != nil {
		t.Fatal(err)
	}
	sameTables(t, src, dst2, "app.t")
	if got, want := dst2.QueryString(t, "SELECT GROUP_CONCAT(User ORDER BY User) FROM mysql.user WHERE User IN ('acct', 'acct2', 'acct3', 'rl')"),
		src.QueryString(t, "SELECT GROUP_CONCAT(User ORDER BY User) FROM mysql.user WHERE User IN ('acct', 'acct2', 'acct3', 'rl')"); got != want {
		t.Errorf("accounts on the target %q, on the source %q", got, want)
	}
	noSecret("the log", logs.String())

	// ... and an unprivileged target refuses them: the pipeline stops, and
	// neither the error nor the log shows the password.
	dst.Exec(t, "CREATE USER 'lim'@'%' IDENTIFIED BY 'limpw'", "GRANT ALL ON app.* TO 'lim'@'%'", "GRANT ALL ON sluice.* TO 'lim'@'%'")
	logs = logBuffer{}
	yml := strings.Replace(pipelineYAML(src, dst, "", ""), "    sources:", "    account_statements: true\n    sources:", 1)
	yml = strings.Replace(yml, "name: p\n", "name: p2\n", 1)
	yml = strings.Replace(yml, "dsn: "+dst.DSN(), "dsn: "+dst.UserDSN("lim", "limpw"), 1)
	cfg = testenv.LoadConfig(t, yml)
	err := runCaptured(t, cfg, &logs)
	if err == nil {
		t.Fatal("an unprivileged target accepted CREATE USER")
	}
	noSecret("the error", err.Error())
	noSecret("the log", logs.String())
}

// DDL runs with the source session's time and settings: a TIMESTAMP column
// added with DEFAULT CURRENT_TIMESTAMP gets the source's time on existing
// rows, so a keyless table (matched on every column) keeps replicating
// updates; a DATETIME DEFAULT NOW() gets the source session's time zone;
// and a statement written under ANSI_QUOTES,PIPES_AS_CONCAT is read and run
// under it (issue 14 items 4 and 14).
func TestDDLSourceSession(t *testing.T) {
	servers := testenv.StartMariaDBs(t, 2)
	src, dst := servers[0], servers[1]
	src.Exec(t,
		"CREATE DATABASE app",
		"CREATE TABLE app.k (x INT, y VARCHAR(10))",
		"INSERT INTO app.k VALUES (1, 'a'), (2, 'b')",
		"SET TIMESTAMP = 1000000000.123456",
		"SET time_zone = '+05:00'",
		"ALTER TABLE app.k ADD c TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6), ADD d DATETIME NOT NULL DEFAULT NOW()",
		"SET TIMESTAMP = DEFAULT",
		"SET time_zone = SYSTEM",
		"UPDATE app.k SET y = 'z' WHERE x = 1",
		"DELETE FROM app.k WHERE x = 2",
		"SET sql_mode = 'ANSI_QUOTES,PIPES_AS_CONCAT'",
		`CREATE TABLE "app"."q" ("id" INT PRIMARY KEY, "v" VARCHAR(10) DEFAULT 'x', "w" VARCHAR(10) AS ('a' || 'b') STORED)`,
		`INSERT INTO "app"."q" ("id") VALUES (1)`,
		`ALTER TABLE "app"."q" ADD "u" VARCHAR(10) NOT NULL DEFAULT ('p' || 'q')`,
		"SET sql_mode = DEFAULT",
		"INSERT INTO app.q (id, v) VALUES (2, 'y')",
		"UPDATE app.q SET v = 'n' WHERE id = 1",
	)
	var logs logBuffer
	cfg := testenv.LoadConfig(t, pipelineYAML(src, dst, "", "on_conflict: stop"))
	if err := runCaptured(t, cfg, &logs); err != nil {
		t.Fatalf("%v\n%s", err, logs.String())
	}
	sameTables(t, src, dst, "app.k", "app.q")
	// The target session is back to the sink's own settings: rows applied
	// after the DDL are not read under ANSI_QUOTES or the source's zone.
	src.Exec(t, "INSERT INTO app.k (x, y, c, d) VALUES (3, 'c', '2020-01-01 00:00:00', '2020-01-01 00:00:00')")
	if err := runCaptured(t, cfg, &logs); err != nil {
		t.Fatal(err)
	}
	sameTables(t, src, dst, "app.k")
}

// CREATE TABLE ... SELECT is one source transaction holding the statement
// and the rows: the table is created, then its rows applied (issue 14
// item 5).
func TestCreateTableSelect(t *testing.T) {
	servers := testenv.StartMariaDBs(t, 2)
	src, dst := servers[0], servers[1]
	src.Exec(t,
		"CREATE DATABASE app",
		"CREATE TABLE app.s (id INT PRIMARY KEY, v VARCHAR(10))",
		"INSERT INTO app.s VALUES (1, 'a'), (2, 'b'), (3, 'c')",
		"CREATE TABLE app.copy SELECT * FROM app.s WHERE id > 1",
		"CREATE TABLE app.copy2 (extra INT DEFAULT 5, PRIMARY KEY (id)) SELECT id, v FROM app.s",
		"CREATE TABLE app.empty SELECT * FROM app.s WHERE id > 100",
		"INSERT INTO app.copy VALUES (9, 'i')",
		"UPDATE app.copy2 SET extra = 6 WHERE id = 3",
	)
	var logs logBuffer
	cfg := testenv.LoadConfig(t, pipelineYAML(src, dst, "", ""))
	if err := runCaptured(t, cfg, &logs); err != nil {
		t.Fatalf("%v\n%s", err, logs.String())
	}
	sameTables(t, src, dst, "app.s", "app.copy", "app.copy2", "app.empty")
}

// A database name with a backtick, and a DDL with no default database that
// names its table: both are attributed to the right table by the parser,
// so the filter keeps the one and drops the other (issue 14 items 8, 9).
func TestDDLAttribution(t *testing.T) {
	servers := testenv.StartMariaDBs(t, 2)
	src, dst := servers[0], servers[1]
	src.Exec(t,
		"CREATE DATABASE `q``b`",
		"CREATE TABLE `q``b`.t (id INT PRIMARY KEY, v INT)",
		"INSERT INTO `q``b`.t VALUES (1, 1)",
		"ALTER TABLE `q``b`.t ADD c INT NOT NULL DEFAULT 3",
		"INSERT INTO `q``b`.t VALUES (2, 2, 4)",
		"CREATE DATABASE other",
		"CREATE TABLE other.o (a INT)",
		"CREATE INDEX i ON other.o (a)",
		"CREATE INDEX iv ON `q``b`.t (v)",
		// A name with glob characters, quotes and a backtick, named by an
		// escaped pattern (issue 14 item 10).
		"CREATE DATABASE `special\"[``]$'_db`",
		"CREATE TABLE `special\"[``]$'_db`.t (id INT PRIMARY KEY)",
		"INSERT INTO `special\"[``]$'_db`.t VALUES (1), (2)",
		"CREATE DATABASE `special\"x``]$'_db`",
		"CREATE TABLE `special\"x``]$'_db`.t (id INT PRIMARY KEY)",
	)
	var logs logBuffer
	yml := strings.Replace(pipelineYAML(src, dst, "", ""), `include: ["app.*"]`, "include: [\"q`b.*\", 'special\"\\[`]$''_db.*']", 1)
	cfg := testenv.LoadConfig(t, yml)
	if err := runCaptured(t, cfg, &logs); err != nil {
		t.Fatalf("%v\n%s", err, logs.String())
	}
	sameTables(t, src, dst, "`q``b`.t", "`special\"[``]$'_db`.t")
	if n := dst.QueryString(t, "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME IN ('other', 'special\"x`]$\\'_db')"); n != "0" {
		t.Errorf("%s databases outside the filter reached the target", n)
	}
	if n := dst.QueryString(t, "SELECT COUNT(*) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = 'q`b' AND INDEX_NAME = 'iv'"); n != "1" {
		t.Errorf("the index on q`b.t is missing on the target")
	}
	if strings.Contains(logs.String(), "already in effect") {
		t.Errorf("a DDL was taken as already in effect:\n%s", logs.String())
	}
}

// A DDL whose session database is missing on the target stops with a
// message instead of running in the database the connection used last
// (issue 14 item 8).
func TestDDLMissingDatabase(t *testing.T) {
	servers := testenv.StartMariaDBs(t, 2)
	src, dst := servers[0], servers[1]
	src.Exec(t,
		"CREATE DATABASE app", "CREATE DATABASE app2",
		"CREATE TABLE app2.t0 (id INT PRIMARY KEY)",
	)
	yml := strings.Replace(pipelineYAML(src, dst, "", ""), `include: ["app.*"]`, `include: ["app.*", "app2.*"]`, 1)
	cfg := testenv.LoadConfig(t, yml)
	runToEnd(t, cfg)
	dst.Exec(t, "DROP DATABASE app")
	src.Exec(t, "USE app2", "CREATE TABLE t1 (id INT PRIMARY KEY)", "USE app", "CREATE TABLE t2 (id INT PRIMARY KEY)")
	var logs logBuffer
	err := runCaptured(t, cfg, &logs)
	if err == nil || !strings.Contains(err.Error(), "does not exist on the target") {
		t.Fatalf("got %v, want a stop naming the missing database", err)
	}
	if n := dst.QueryString(t, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_NAME = 't2'"); n != "0" {
		t.Fatal("the DDL ran in another database")
	}
	sameTables(t, src, dst, "app2.t1")
}

// DDL in MariaDB's own dialect that the parser lacks (CHAR(n) BYTE, ASCII,
// UNICODE, DEFAULT (expression)) is tracked, so rows after it are applied
// by name (issue 14 item 7). UNICODE (ucs2) is tracked too (see the
// schema tests), but ucs2 values are the value writer's concern.
func TestDDLMariaDBDialect(t *testing.T) {
	servers := testenv.StartMariaDBs(t, 2)
	src, dst := servers[0], servers[1]
	src.Exec(t,
		"CREATE DATABASE app",
		"CREATE TABLE app.d (id INT PRIMARY KEY, a CHAR(1) BYTE, b CHAR(32) ASCII, c VARCHAR(5) ASCII, e INT DEFAULT (1+2))",
		"INSERT INTO app.d (id, a, b, c) VALUES (1, 'x', 'abc', 'uv'), (2, NULL, NULL, NULL)",
		"ALTER TABLE app.d ADD g TINYTEXT ASCII, ADD h INT NOT NULL DEFAULT (-1) AFTER id",
		"INSERT INTO app.d (id, a, b, c, g) VALUES (3, 'y', 'de', 'wxyz', 'text')",
		"UPDATE app.d SET g = 'u', e = 9 WHERE id = 1",
	)
	var logs logBuffer
	cfg := testenv.LoadConfig(t, pipelineYAML(src, dst, "", ""))
	if err := runCaptured(t, cfg, &logs); err != nil {
		t.Fatalf("%v\n%s", err, logs.String())
	}
	sameTables(t, src, dst, "app.d")
}

// On servers that compare table names without case
// (lower_case_table_names=1), ALTER TABLE Orders changes the tracked
// orders (issue 14 item 13).
func TestDDLCaseInsensitiveNames(t *testing.T) {
	opts := testenv.MariaDBOptions{Args: []string{"--lower-case-table-names=1"}}
	src, dst := testenv.StartMariaDB(t, opts), testenv.StartMariaDB(t, opts)
	src.Exec(t,
		"CREATE DATABASE app",
		"CREATE TABLE app.orders (id INT PRIMARY KEY, v VARCHAR(10))",
		"INSERT INTO app.orders VALUES (1, 'a')",
		"ALTER TABLE app.Orders ADD c INT NOT NULL DEFAULT 5",
		"INSERT INTO APP.ORDERS VALUES (2, 'b', 7)",
		"ALTER TABLE App.Orders DROP COLUMN v",
		"INSERT INTO app.orders VALUES (3, 8)",
	)
	var logs logBuffer
	cfg := testenv.LoadConfig(t, pipelineYAML(src, dst, "", ""))
	if err := runCaptured(t, cfg, &logs); err != nil {
		t.Fatalf("%v\n%s", err, logs.String())
	}
	sameTables(t, src, dst, "app.orders")
}

// A DDL the tracker cannot parse (MariaDB's PERIOD FOR, ALGORITHM=NOCOPY,
// a table named GENERATED) is resolved by reading the table's
// definition from the source; when that definition does not fit the rows
// (a later DDL changed the table) the pipeline stops saying so, and never
// applies rows by position (issue 14 item 7).
func TestDDLUnparsedResolvedFromSource(t *testing.T) {
	servers := testenv.StartMariaDBs(t, 2)
	src, dst := servers[0], servers[1]
	src.Exec(t,
		"CREATE DATABASE app",
		"USE app",
		"CREATE TABLE p (id INT PRIMARY KEY, s DATE, e DATE, PERIOD FOR pp(s, e))",
		"INSERT INTO p VALUES (1, '2020-01-01', '2021-01-01')",
		"CREATE TABLE z (id INT PRIMARY KEY)",
		"INSERT INTO z VALUES (1)",
		"ALTER TABLE z ADD c VARCHAR(10), ALGORITHM=NOCOPY",
		"INSERT INTO z VALUES (2, 'two')",
		"CREATE TABLE GENERATED LIKE p",
		"INSERT INTO GENERATED VALUES (5, '2020-01-01', '2022-01-01')",
	)
	var logs logBuffer
	cfg := testenv.LoadConfig(t, pipelineYAML(src, dst, "", ""))
	if err := runCaptured(t, cfg, &logs); err != nil {
		t.Fatalf("%v\n%s", err, logs.String())
	}
	sameTables(t, src, dst, "app.p", "app.z", "app.GENERATED")
	if !strings.Contains(logs.String(), "definition was read from the source") {
		t.Errorf("resolving was not logged:\n%s", logs.String())
	}

	src.Exec(t,
		"CREATE TABLE app.y (id INT PRIMARY KEY)",
		"ALTER TABLE app.y ADD c VARCHAR(10), ALGORITHM=NOCOPY",
		"INSERT INTO app.y VALUES (1, 'a')",
		"ALTER TABLE app.y ADD d INT",
	)
	err := runCaptured(t, cfg, &logs)
	if err == nil || !strings.Contains(err.Error(), "cannot name the columns of app.y") {
		t.Fatalf("got %v, want a stop naming app.y", err)
	}
	// The stop names the statement that was resolved and what to do.
	for _, want := range []string{"ALTER TABLE app.y ADD c VARCHAR(10), ALGORITHM=NOCOPY", "a later DDL has changed it", "binlog_row_metadata=FULL"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the stop does not say %q: %v", want, err)
		}
	}
}

// A MariaDB system-versioned table's rows carry its hidden row_start and
// row_end columns: the tracker knows them, so the rows apply by name
// (issue 14 item 12). The server fills them, on the target too, so only
// the visible columns are compared.
func TestSystemVersionedTable(t *testing.T) {
	servers := testenv.StartMariaDBs(t, 2)
	src, dst := servers[0], servers[1]
	src.Exec(t,
		"CREATE DATABASE app",
		"CREATE TABLE app.v (id INT PRIMARY KEY, x INT) WITH SYSTEM VERSIONING",
		"INSERT INTO app.v VALUES (1, 1), (2, 2)",
		"UPDATE app.v SET x = 10 WHERE id = 1",
		"DELETE FROM app.v WHERE id = 2",
		"DELETE HISTORY FROM app.v",
		"UPDATE app.v SET x = 11 WHERE id = 1",
		"CREATE TABLE app.w (id INT PRIMARY KEY, x INT)",
		"INSERT INTO app.w VALUES (1, 1)",
		"ALTER TABLE app.w ADD SYSTEM VERSIONING",
		"UPDATE app.w SET x = 3 WHERE id = 1",
		"INSERT INTO app.w VALUES (2, 2)",
		"ALTER TABLE app.w DROP SYSTEM VERSIONING",
		"INSERT INTO app.w VALUES (3, 3)",
	)
	var logs logBuffer
	cfg := testenv.LoadConfig(t, pipelineYAML(src, dst, "", ""))
	if err := runCaptured(t, cfg, &logs); err != nil {
		t.Fatalf("%v\n%s", err, logs.String())
	}
	for _, tbl := range []string{"app.v", "app.w"} {
		if a, b := orderedRows(t, src, tbl), orderedRows(t, dst, tbl); a != b {
			t.Errorf("%s differs:\nsource %s\ntarget %s", tbl, a, b)
		}
	}
	sameTables(t, src, dst, "app.w")
	if strings.Contains(logs.String(), "@1") {
		t.Errorf("columns named by position:\n%s", logs.String())
	}
}
