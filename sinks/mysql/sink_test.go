package mysql_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/sluice-cdc/sluice/binlog"
	"github.com/sluice-cdc/sluice/internal/testenv"
	"github.com/sluice-cdc/sluice/mysqlconn"
	mysqlsink "github.com/sluice-cdc/sluice/sinks/mysql"
)

// sourceTxns writes stmts on a fresh source and returns the transactions
// they produced (decoded by the live reader), for applying to a target.
func sourceTxns(t *testing.T, src *testenv.MariaDB, stmts ...string) []*binlog.Txn {
	t.Helper()
	before := src.QueryString(t, "SELECT @@gtid_binlog_pos")
	src.Exec(t, stmts...)
	set, err := binlog.ParseGTIDSet(before)
	if err != nil {
		t.Fatal(err)
	}
	start := binlog.Start{Mode: binlog.StartGTID, GTID: set}
	if set.IsEmpty() {
		start = binlog.Start{Mode: binlog.StartOldest}
	}
	var out []*binlog.Txn
	testenv.ReadSource(t, src, start, binlog.DecodeOptions{StrictColumns: true}, func(tx *binlog.Txn) { out = append(out, tx) })
	return out
}

func openSink(t *testing.T, dst *testenv.MariaDB, ddl, onConflict string, done ...string) *mysqlsink.Sink {
	t.Helper()
	d, _ := mysqlconn.ParseDSN(dst.DSN())
	s, err := mysqlsink.Open(context.Background(), mysqlsink.Config{DSN: d, Pipeline: "t", DDL: ddl, OnConflict: onConflict, DDLDone: done,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func applyAll(t *testing.T, s *mysqlsink.Sink, txns []*binlog.Txn) error {
	t.Helper()
	for _, tx := range txns {
		if err := s.Apply(context.Background(), "src", tx); err != nil {
			return err
		}
	}
	return nil
}

func rows(t *testing.T, m *testenv.MariaDB, q string) string {
	t.Helper()
	return strings.Join(testenv.Rows(t, m.DB(t), q, func(b []byte) string { return string(b) }), " ")
}

// TestConflictPolicies: the target already has a row the source inserts,
// lacks a row the source updates, and lacks a row the source deletes.
func TestConflictPolicies(t *testing.T) {
	servers := testenv.StartMariaDBs(t, 2)
	src, dst := servers[0], servers[1]
	schema := []string{"CREATE DATABASE c", "CREATE TABLE c.t (id INT PRIMARY KEY, v VARCHAR(10))", "CREATE TABLE c.n (v VARCHAR(10))"}
	src.Exec(t, append(schema, "INSERT INTO c.t VALUES (2, 'two'), (3, 'three')", "INSERT INTO c.n VALUES ('x')")...)
	txns := sourceTxns(t, src,
		"INSERT INTO c.t VALUES (1, 'src')",      // the target has id 1 already
		"UPDATE c.t SET v = 'two!' WHERE id = 2", // the target lacks id 2
		"DELETE FROM c.t WHERE id = 3",           // the target lacks id 3
		"UPDATE c.n SET v = 'y'",                 // no key, the target lacks the row
	)
	tests := []struct {
		policy   string
		wantErr  string
		wantRows string
	}{
		{"stop", "conflict applying transaction", "1,target"},
		{"skip", "", "1,target"},
		{"overwrite", "", "1,src 2,two!"},
	}
	for _, tt := range tests {
		t.Run(tt.policy, func(t *testing.T) {
			dst.Exec(t, "DROP DATABASE IF EXISTS c", "DROP DATABASE IF EXISTS sluice")
			dst.Exec(t, schema...)
			dst.Exec(t, "INSERT INTO c.t VALUES (1, 'target')")
			s := openSink(t, dst, "apply", tt.policy)
			err := applyAll(t, s, txns)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				if got := rows(t, dst, "SELECT * FROM c.t ORDER BY id"); got != tt.wantRows {
					t.Fatalf("after the stop: %s, want %s (nothing of the conflicting transaction applied)", got, tt.wantRows)
				}
				if _, ok, _ := s.Checkpoint(context.Background(), "src"); ok {
					t.Fatal("checkpoint written although the transaction was not applied")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := rows(t, dst, "SELECT * FROM c.t ORDER BY id"); got != tt.wantRows {
				t.Fatalf("rows %s, want %s", got, tt.wantRows)
			}
			if r, c := s.Stats("src"); r != 0 || c != 4 {
				t.Fatalf("stats: %d retries, %d conflicts; want 0 and 4", r, c)
			}
			st, ok, err := s.Checkpoint(context.Background(), "src")
			if err != nil || !ok || !st.Covers(txns[len(txns)-1]) {
				t.Fatalf("checkpoint %+v %v %v does not cover the last transaction", st, ok, err)
			}
		})
	}
}

// TestDDLPolicies: apply, skip, stop and ddl_done; and the replay of a DDL
// interrupted between running it and recording it.
func TestDDLPolicies(t *testing.T) {
	servers := testenv.StartMariaDBs(t, 2)
	src, dst := servers[0], servers[1]
	src.Exec(t, "CREATE DATABASE d", "CREATE TABLE d.t (id INT PRIMARY KEY)")
	txns := sourceTxns(t, src, "ALTER TABLE d.t ADD COLUMN c INT", "INSERT INTO d.t VALUES (1, 5)")
	alter := txns[0]
	if alter.DDL == nil {
		t.Fatalf("first transaction is not the ALTER: %+v", alter)
	}
	reset := func() {
		dst.Exec(t, "DROP DATABASE IF EXISTS d", "DROP DATABASE IF EXISTS sluice", "CREATE DATABASE d", "CREATE TABLE d.t (id INT PRIMARY KEY)")
	}
	cols := func() string {
		return dst.QueryString(t, "SELECT GROUP_CONCAT(COLUMN_NAME ORDER BY ORDINAL_POSITION) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA='d' AND TABLE_NAME='t'")
	}

	t.Run("apply", func(t *testing.T) {
		reset()
		if err := applyAll(t, openSink(t, dst, "apply", "stop"), txns); err != nil {
			t.Fatal(err)
		}
		if cols() != "id,c" || rows(t, dst, "SELECT * FROM d.t") != "1,5" {
			t.Fatalf("columns %s", cols())
		}
	})
	t.Run("skip", func(t *testing.T) {
		reset()
		s := openSink(t, dst, "skip", "stop")
		if err := s.Apply(context.Background(), "src", alter); err != nil {
			t.Fatal(err)
		}
		if cols() != "id" {
			t.Fatalf("columns %s after a skipped DDL", cols())
		}
		if st, ok, _ := s.Checkpoint(context.Background(), "src"); !ok || !st.Covers(alter) {
			t.Fatal("a skipped DDL must still be checkpointed")
		}
	})
	t.Run("stop", func(t *testing.T) {
		reset()
		err := applyAll(t, openSink(t, dst, "stop", "stop"), txns)
		var se *mysqlsink.DDLStopError
		if !errors.As(err, &se) || !strings.Contains(err.Error(), "add \""+alter.GTID.String()+"\" to sink.ddl_done") {
			t.Fatalf("error %v", err)
		}
		// Applied by hand and declared done: the pipeline goes on.
		dst.Exec(t, "ALTER TABLE d.t ADD COLUMN c INT")
		if err := applyAll(t, openSink(t, dst, "stop", "stop", alter.GTID.String()), txns); err != nil {
			t.Fatal(err)
		}
		if rows(t, dst, "SELECT * FROM d.t") != "1,5" {
			t.Fatal("rows after ddl_done")
		}
	})
	t.Run("replay after a crash", func(t *testing.T) {
		reset()
		// The state a crash leaves between running the DDL and recording
		// it: the DDL is in effect and marked pending.
		openSink(t, dst, "apply", "stop")
		dst.Exec(t, "ALTER TABLE d.t ADD COLUMN c INT",
			"INSERT INTO sluice.ddl_pending VALUES ('t', 'src', '"+alter.GTID.String()+"')")
		if err := applyAll(t, openSink(t, dst, "apply", "stop"), txns); err != nil {
			t.Fatalf("replaying a DDL already in effect: %v", err)
		}
		if n := dst.QueryString(t, "SELECT COUNT(*) FROM sluice.ddl_pending"); n != "0" {
			t.Fatal("pending marker left behind")
		}
	})
	t.Run("a column already there, the same", func(t *testing.T) {
		reset()
		dst.Exec(t, "ALTER TABLE d.t ADD COLUMN c INT") // e.g. the target's schema prepared by hand
		if err := applyAll(t, openSink(t, dst, "apply", "stop"), txns); err != nil {
			t.Fatalf("an ADD COLUMN already in effect: %v", err)
		}
	})
	t.Run("a column already there, different", func(t *testing.T) {
		reset()
		dst.Exec(t, "ALTER TABLE d.t ADD COLUMN c VARCHAR(5)") // a real divergence
		err := applyAll(t, openSink(t, dst, "apply", "stop"), txns)
		if err == nil || !strings.Contains(err.Error(), "column c is varchar(5) on the target but int(11) in this DDL") || !strings.Contains(err.Error(), "sink.ddl_done") {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("a failing DDL is an error", func(t *testing.T) {
		reset()
		dst.Exec(t, "DROP TABLE d.t")
		err := applyAll(t, openSink(t, dst, "apply", "stop"), txns)
		if err == nil || !strings.Contains(err.Error(), "doesn't exist") || !strings.Contains(err.Error(), "sink.ddl_done") {
			t.Fatalf("error %v", err)
		}
	})
}

// TestApplyRetriesAcrossTargetRestart: the target restarts while a
// transaction is applied; Apply retries and the row lands once. After an
// outage long enough for the retry backoff to reach its maximum, applying
// still resumes promptly once the target answers (the probe runs at least
// every second); that delay is logged, not asserted: the machine's load
// decides it.
func TestApplyRetriesAcrossTargetRestart(t *testing.T) {
	for _, outage := range []time.Duration{1500 * time.Millisecond, 12 * time.Second} {
		t.Run(outage.String(), func(t *testing.T) {
			servers := testenv.StartMariaDBs(t, 2)
			src, dst := servers[0], servers[1]
			src.Exec(t, "CREATE DATABASE r", "CREATE TABLE r.t (id INT PRIMARY KEY)")
			dst.Exec(t, "CREATE DATABASE r", "CREATE TABLE r.t (id INT PRIMARY KEY)")
			txns := sourceTxns(t, src, "INSERT INTO r.t VALUES (1)", "INSERT INTO r.t VALUES (2)")
			s := openSink(t, dst, "apply", "stop")
			if err := s.Apply(context.Background(), "src", txns[0]); err != nil {
				t.Fatal(err)
			}
			if err := dst.Stop(); err != nil {
				t.Fatal(err)
			}
			up := make(chan time.Time, 1)
			go func() {
				time.Sleep(outage)
				dst.Start(context.Background())
				up <- time.Now()
			}()
			if err := s.Apply(context.Background(), "src", txns[1]); err != nil {
				t.Fatal(err)
			}
			t.Logf("applied %s after the target answered again", time.Since(<-up).Round(10*time.Millisecond))
			if got := rows(t, dst, "SELECT id FROM r.t ORDER BY id"); got != "1 2" {
				t.Fatalf("rows %s", got)
			}
			if r, _ := s.Stats("src"); r == 0 {
				t.Fatal("no retry counted")
			}
		})
	}
}

// TestEmptyGeometryInsertConflict: a row with an empty geometry goes out
// as INSERT IGNORE, whose duplicate key writes nothing without an error:
// it is still a conflict, stopped or skipped by the policy.
func TestEmptyGeometryInsertConflict(t *testing.T) {
	servers := testenv.StartMariaDBs(t, 2)
	src, dst := servers[0], servers[1]
	schema := []string{"CREATE DATABASE e", "CREATE TABLE e.t (id INT PRIMARY KEY, g POINT NOT NULL)"}
	src.Exec(t, schema...)
	txns := sourceTxns(t, src, "INSERT IGNORE INTO e.t VALUES (1, NULL)")
	for _, tt := range []struct{ policy, wantErr string }{
		{"stop", "duplicate key on the target"},
		{"skip", ""},
	} {
		t.Run(tt.policy, func(t *testing.T) {
			dst.Exec(t, "DROP DATABASE IF EXISTS e", "DROP DATABASE IF EXISTS sluice")
			dst.Exec(t, schema...)
			dst.Exec(t, "INSERT INTO e.t VALUES (1, POINT(1, 1))")
			s := openSink(t, dst, "apply", tt.policy)
			err := applyAll(t, s, txns)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("error %v, want %q", err, tt.wantErr)
			}
			if _, c := s.Stats("src"); c != 1 {
				t.Fatalf("%d conflicts, want 1", c)
			}
			if got := rows(t, dst, "SELECT id, ST_AsText(g) FROM e.t"); got != "1,POINT(1 1)" {
				t.Fatalf("target rows %s, want the target's own row", got)
			}
		})
	}
}
