package binlog_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/sluice-cdc/sluice/binlog"
	"github.com/sluice-cdc/sluice/internal/testenv"
)

// summary renders a transaction compactly: "insert a(1) update a(1) ..."
// or "DDL: statement".
func summary(t *testing.T, tx *binlog.Txn) string {
	t.Helper()
	if tx.DDL != nil && tx.Len() == 0 {
		return "DDL: " + tx.DDL.SQL
	}
	var parts []string
	for _, c := range changes(t, tx) {
		parts = append(parts, fmt.Sprintf("%s %s(%v)", c.Op, c.Table.Name, c.Image()[0]))
	}
	s := strings.Join(parts, " ")
	if tx.XID != "" {
		s += " [xa]"
	}
	return s
}

func summaries(t *testing.T, txns []*binlog.Txn) []string {
	var out []string
	for _, tx := range txns {
		out = append(out, summary(t, tx))
	}
	return out
}

func TestTransactionGrouping(t *testing.T) {
	m := testenv.StartMariaDB(t, testenv.MariaDBOptions{})
	m.Exec(t,
		"CREATE DATABASE g",
		"CREATE TABLE g.a (id INT PRIMARY KEY, v INT) ENGINE=InnoDB",
		"CREATE TABLE g.m (id INT PRIMARY KEY, v INT) ENGINE=MyISAM",
		// A multi-statement transaction.
		"BEGIN", "INSERT INTO g.a VALUES (1, 1)", "INSERT INTO g.a VALUES (2, 2)", "UPDATE g.a SET v = 10 WHERE id = 1", "DELETE FROM g.a WHERE id = 2", "COMMIT",
		// Rolled back: never in the binlog.
		"BEGIN", "INSERT INTO g.a VALUES (10, 10)", "ROLLBACK",
		// A savepoint rolled back to.
		"BEGIN", "INSERT INTO g.a VALUES (30, 30)", "SAVEPOINT s1", "INSERT INTO g.a VALUES (31, 31)", "ROLLBACK TO SAVEPOINT s1", "INSERT INTO g.a VALUES (32, 32)", "COMMIT",
	)
	// XA: prepared, another transaction commits, then XA COMMIT.
	m.Exec(t, "XA START 'x1'", "INSERT INTO g.a VALUES (40, 40)", "XA END 'x1'", "XA PREPARE 'x1'")
	m.Exec(t, "INSERT INTO g.a VALUES (41, 41)")
	finishXA(t, m, "XA COMMIT 'x1'")
	// XA rolled back after prepare.
	m.Exec(t, "XA START 'x2'", "INSERT INTO g.a VALUES (50, 50)", "XA END 'x2'", "XA PREPARE 'x2'")
	finishXA(t, m, "XA ROLLBACK 'x2'")
	// XA in one phase.
	m.Exec(t, "XA START 'x3'", "INSERT INTO g.a VALUES (60, 60)", "XA END 'x3'", "XA COMMIT 'x3' ONE PHASE")
	// Non-transactional engine: autocommit, and mixed with InnoDB.
	m.Exec(t, "INSERT INTO g.m VALUES (70, 70)",
		"BEGIN", "INSERT INTO g.a VALUES (80, 80)", "INSERT INTO g.m VALUES (80, 80)", "COMMIT",
		"INSERT INTO g.a VALUES (90, 90)",
		// Rolled back, with a non-transactional change that cannot be undone.
		"BEGIN", "INSERT INTO g.a VALUES (95, 95)", "INSERT INTO g.m VALUES (95, 95)", "ROLLBACK")

	got := summaries(t, readAll(t, m, "g.*"))
	want := []string{
		"DDL: CREATE DATABASE g",
		"DDL: CREATE TABLE g.a (id INT PRIMARY KEY, v INT) ENGINE=InnoDB",
		"DDL: CREATE TABLE g.m (id INT PRIMARY KEY, v INT) ENGINE=MyISAM",
		"insert a(1) insert a(2) update a(1) delete a(2)",
		"insert a(30) insert a(32)",
		"insert a(41)",
		"insert a(40) [xa]",
		"insert a(60)", // one phase: MariaDB logs a plain transaction
		"insert m(70)",
		"insert m(80)",
		"insert a(80)",
		"insert a(90)",
		"insert m(95)",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("transactions:\n%s\n\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// finishXA runs XA COMMIT or XA ROLLBACK from a new connection. MariaDB
// hands a prepared XA transaction to other connections only once it has
// processed the disconnect of the connection that prepared it, which happens
// asynchronously after the client closes; until then it answers XAER_NOTA.
func finishXA(t *testing.T, m *testenv.MariaDB, stmt string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		err := m.ExecErr(stmt)
		var me *mysql.MySQLError
		if err == nil {
			return
		}
		if !errors.As(err, &me) || me.Number != 1397 || time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestDoneWhen is the acceptance scenario: a 3-statement
// transaction, a rolled-back transaction and an ALTER TABLE, read from the
// start of the binlog after the fact, with the right column names on both
// sides of the ALTER.
func TestDoneWhen(t *testing.T) {
	m := testenv.StartMariaDB(t, testenv.MariaDBOptions{})
	m.Exec(t,
		"CREATE DATABASE shop",
		"CREATE TABLE shop.orders (id INT PRIMARY KEY, amount DECIMAL(10,2), note VARCHAR(20))",
		"BEGIN", "INSERT INTO shop.orders VALUES (1, 10.50, 'a')", "INSERT INTO shop.orders VALUES (2, 20, 'b')", "UPDATE shop.orders SET amount = 11 WHERE id = 1", "COMMIT",
		"BEGIN", "INSERT INTO shop.orders VALUES (3, 30, 'c')", "ROLLBACK",
		"ALTER TABLE shop.orders ADD COLUMN status VARCHAR(10) AFTER id",
		"INSERT INTO shop.orders VALUES (4, 'new', 40, 'd')",
	)
	var lines []string
	for _, tx := range readAll(t, m, "shop.*") {
		b, err := binlog.AppendJSON(nil, tx)
		if err != nil {
			t.Fatal(err)
		}
		// Drop the volatile header (gtid server id, time, position).
		s := string(b)
		if i := strings.Index(s, `,"ddl"`); i >= 0 {
			s = s[i+1:]
		} else if i := strings.Index(s, `,"changes"`); i >= 0 {
			s = s[i+1:]
		}
		lines = append(lines, s)
	}
	want := []string{
		`"ddl":{"schema":"shop","sql":"CREATE DATABASE shop"}}`,
		`"ddl":{"schema":"","sql":"CREATE TABLE shop.orders (id INT PRIMARY KEY, amount DECIMAL(10,2), note VARCHAR(20))"}}`,
		`"changes":[{"schema":"shop","table":"orders","type":"insert","pk":["id"],"after":{"id":1,"amount":"10.50","note":"a"}},` +
			`{"schema":"shop","table":"orders","type":"insert","pk":["id"],"after":{"id":2,"amount":"20.00","note":"b"}},` +
			`{"schema":"shop","table":"orders","type":"update","pk":["id"],"before":{"id":1,"amount":"10.50","note":"a"},"after":{"id":1,"amount":"11.00","note":"a"}}]}`,
		`"ddl":{"schema":"","sql":"ALTER TABLE shop.orders ADD COLUMN status VARCHAR(10) AFTER id"}}`,
		`"changes":[{"schema":"shop","table":"orders","type":"insert","pk":["id"],"after":{"id":4,"status":"new","amount":"40.00","note":"d"}}]}`,
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}

// TestSchemaHistory decodes, from the start of the binlog and after the
// fact, rows written between ALTER TABLE statements: each with the columns
// its table had at that point.
func TestSchemaHistory(t *testing.T) {
	m := testenv.StartMariaDB(t, testenv.MariaDBOptions{})
	m.Exec(t,
		"CREATE DATABASE h",
		"CREATE TABLE h.t (id INT PRIMARY KEY, a INT, b VARCHAR(10))",
		"INSERT INTO h.t VALUES (1, 10, 'one')",
		"ALTER TABLE h.t ADD COLUMN c BIGINT UNSIGNED FIRST",
		"INSERT INTO h.t VALUES (18446744073709551615, 2, 20, 'two')",
		"ALTER TABLE h.t DROP COLUMN a",
		"INSERT INTO h.t VALUES (3, 3, 'three')",
		"ALTER TABLE h.t MODIFY COLUMN b ENUM('one','two','three','four') NOT NULL",
		"INSERT INTO h.t VALUES (4, 4, 'four')",
		"ALTER TABLE h.t CHANGE COLUMN b label VARCHAR(20), ADD COLUMN d DATE AFTER id",
		"INSERT INTO h.t VALUES (5, 5, '2024-05-05', 'five')",
		"RENAME TABLE h.t TO h.t2",
		"INSERT INTO h.t2 VALUES (6, 6, '2024-06-06', 'six')",
		"CREATE TABLE h.t3 LIKE h.t2",
		"INSERT INTO h.t3 VALUES (7, 7, NULL, 'seven')",
		"DROP TABLE h.t3",
		"CREATE TABLE h.t3 (x INT UNSIGNED PRIMARY KEY)",
		"INSERT INTO h.t3 VALUES (4294967295)",
	)
	var rows []string
	for _, tx := range readAll(t, m, "h.*") {
		for _, c := range changes(t, tx) {
			rows = append(rows, c.Table.Name+" "+string(binlog.AppendImageJSON(nil, c.Table, c.Image())))
		}
	}
	want := []string{
		`t {"id":1,"a":10,"b":"one"}`,
		`t {"c":18446744073709551615,"id":2,"a":20,"b":"two"}`,
		`t {"c":3,"id":3,"b":"three"}`,
		`t {"c":4,"id":4,"b":"four"}`,
		`t {"c":5,"id":5,"d":"2024-05-05","label":"five"}`,
		`t2 {"c":6,"id":6,"d":"2024-06-06","label":"six"}`,
		`t3 {"c":7,"id":7,"d":null,"label":"seven"}`,
		`t3 {"x":4294967295}`,
	}
	if strings.Join(rows, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got:\n%s\nwant:\n%s", strings.Join(rows, "\n"), strings.Join(want, "\n"))
	}
}
