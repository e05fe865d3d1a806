package binlog_test

import (
	"context"
	"testing"

	"github.com/sluice-cdc/sluice/internal/testenv"
)

// TestNoFKChecksFlag: a change the source made with foreign_key_checks=0
// says so, and the others do not.
func TestNoFKChecksFlag(t *testing.T) {
	m := testenv.StartMariaDB(t, testenv.MariaDBOptions{})
	// One connection: the session variable is the connection's.
	db, err := m.DB(t).Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{
		"CREATE DATABASE d",
		"CREATE TABLE d.t (id INT PRIMARY KEY)",
		"INSERT INTO d.t VALUES (1)",
		"SET SESSION foreign_key_checks = 0",
		"INSERT INTO d.t VALUES (2)",
		"SET SESSION foreign_key_checks = 1",
		"DELETE FROM d.t WHERE id = 1",
	} {
		if _, err := db.ExecContext(context.Background(), q); err != nil {
			t.Fatal(err)
		}
	}
	var got []bool
	for _, tx := range readAll(t, m, "d.*") {
		for _, c := range changes(t, tx) {
			got = append(got, c.NoFKChecks)
		}
	}
	if len(got) != 3 || got[0] || !got[1] || got[2] {
		t.Errorf("NoFKChecks of insert 1, insert 2 (checks off), delete 1: %v, want [false true false]", got)
	}
}
