package mysql_test

import (
	"context"
	"testing"
	"time"

	"github.com/sluice-cdc/sluice/binlog"
	"github.com/sluice-cdc/sluice/internal/testenv"
)

// A DDL from a source of the other flavor (a MySQL-only sql_mode, a
// collation id the target lacks) still runs with the source's time and
// the settings the target takes, and the sink's session is restored.
func TestDDLSessionFallback(t *testing.T) {
	dst := testenv.StartMariaDB(t, testenv.MariaDBOptions{})
	dst.Exec(t, "CREATE DATABASE app", "CREATE TABLE app.t (id INT PRIMARY KEY)", "INSERT INTO app.t VALUES (1)")
	s := openSink(t, dst, "apply", "stop")
	ts := time.Date(2001, 9, 9, 1, 46, 40, 123456000, time.UTC)
	ddl := &binlog.Txn{GTID: binlog.GTID{MariaDB: true, Server: 9, Seq: 1}, Timestamp: ts, Pos: binlog.Position{File: "b.000001", Pos: 400},
		DDL: &binlog.DDL{Schema: "app", SQL: "ALTER TABLE t ADD c TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)",
			Session: &binlog.Session{Timestamp: ts, HasSQLMode: true, SQLModeNames: "STRICT_TRANS_TABLES,NO_ZERO_DATE,TIME_TRUNCATE_FRACTIONAL",
				TimeZone: "+00:00", HasFlags: true, ForeignKeyChecks: true,
				HasCharset: true, CharsetClient: 33, CollationConnection: 2047, CollationServer: 8}}}
	ddl.Executed.Add(ddl.GTID)
	if err := s.Apply(context.Background(), "src", ddl); err != nil {
		t.Fatal(err)
	}
	if got := dst.QueryString(t, "SELECT CONVERT_TZ(c, @@session.time_zone, '+00:00') FROM app.t"); got != "2001-09-09 01:46:40.123456" {
		t.Errorf("existing row filled with %s, want the source's time", got)
	}
	// The sink's connection is back to its own settings: a row with a zero
	// date is applied under its permissive sql_mode, not the source's
	// STRICT_TRANS_TABLES.
	tb := &binlog.Table{Schema: "app", Name: "t", NamesKnown: true, PK: []int{0}, Columns: []binlog.Column{{Name: "id", Type: 3}, {Name: "c", Type: 17, FSP: 6}}}
	row := binlog.NewTxn([]*binlog.Change{{Table: tb, Op: binlog.Insert, After: []binlog.Value{int64(2), "0000-00-00 00:00:00.000000"}}})
	row.GTID, row.Pos = binlog.GTID{MariaDB: true, Server: 9, Seq: 2}, binlog.Position{File: "b.000001", Pos: 500}
	row.Executed = ddl.Executed.Clone()
	row.Executed.Add(row.GTID)
	if err := s.Apply(context.Background(), "src", row); err != nil {
		t.Fatalf("the sink's session was not restored: %v", err)
	}
}
