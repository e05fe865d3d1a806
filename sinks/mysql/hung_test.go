package mysql_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/sluice-cdc/sluice/binlog"
	"github.com/sluice-cdc/sluice/checkpoint"
	"github.com/sluice-cdc/sluice/internal/testenv"
	"github.com/sluice-cdc/sluice/mysqlconn"
	mysqlsink "github.com/sluice-cdc/sluice/sinks/mysql"
)

// TestHungTarget: a target that stops answering (the port accepts,
// nothing comes back) does not hold Apply for ever: the read deadline
// breaks the connection, the retry waits on ctx, and the caller's
// cancellation (a bounded shutdown) ends Apply. Without a read timeout the
// checkpoint query after the failure would wait for ever.
func TestHungTarget(t *testing.T) {
	servers := testenv.StartMariaDBs(t, 2)
	src, dst := servers[0], servers[1]
	txns := sourceTxns(t, src, "CREATE DATABASE app", "CREATE TABLE app.t (id INT PRIMARY KEY)", "INSERT INTO app.t VALUES (1)", "INSERT INTO app.t VALUES (2)")
	d, err := mysqlconn.ParseDSN(dst.DSN() + "?timeout=2s&read_timeout=2s&write_timeout=2s")
	if err != nil {
		t.Fatal(err)
	}
	s, err := mysqlsink.Open(context.Background(), mysqlsink.Config{DSN: d, Pipeline: "t", DDL: "apply", OnConflict: "stop", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	last := txns[len(txns)-1]
	if err := applyAll(t, s, txns[:len(txns)-1]); err != nil {
		t.Fatal(err)
	}
	if err := dst.Pause(); err != nil {
		t.Fatal(err)
	}
	defer dst.Resume()

	ctx, cancel := context.WithCancel(context.Background())
	res := make(chan error, 1)
	go func() { res <- s.Apply(ctx, "src", last) }()
	// The read deadline breaks the statement: Apply retries (without
	// one it would wait inside the statement for ever). Then stop it.
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
		if retries, _ := s.Stats("src"); retries > 0 {
			break
		}
		if time.Now().After(deadline) { // a hang guard, not a timing assertion
			t.Fatal("Apply against a hung target never gave up a statement")
		}
	}
	cancel()
	select {
	case err = <-res:
	case <-time.After(2 * time.Minute): // a hang guard, not a timing assertion
		t.Fatal("Apply against a hung target did not return after its context ended")
	}
	if err == nil {
		t.Fatal("Apply succeeded against a paused target")
	}
	t.Log(err)
}

// TestStuckSnapshotChunk: a chunk's bulk command that gets no answer
// (here, waiting on another session's row lock longer than the DSN's
// read_timeout) fails the chunk with an error the pipeline retries, its
// connection dropped; written again once the lock is gone, the chunk
// commits, once.
func TestStuckSnapshotChunk(t *testing.T) {
	dst := testenv.StartMariaDB(t, testenv.MariaDBOptions{})
	dst.Exec(t, "CREATE DATABASE app", "CREATE TABLE app.t (id INT PRIMARY KEY, v VARCHAR(10))")
	d, err := mysqlconn.ParseDSN(dst.DSN() + "?read_timeout=2s")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s, err := mysqlsink.Open(ctx, mysqlsink.Config{DSN: d, Pipeline: "t", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tbl := &binlog.Table{Schema: "app", Name: "t", PK: []int{0}, Columns: []binlog.Column{
		{Name: "id", Type: mysql.MYSQL_TYPE_LONG}, {Name: "v", Type: mysql.MYSQL_TYPE_VARCHAR, Charset: "utf8mb4"}}}
	ts := checkpoint.TableSnapshot{Schema: "app", Table: "t", Definition: "d"}
	if err := s.BeginSnapshotTable(ctx, "src", ts, tbl, false); err != nil {
		t.Fatal(err)
	}
	var chunk []*binlog.Change
	for i := range 100 {
		chunk = append(chunk, &binlog.Change{Table: tbl, Op: binlog.Insert, After: []binlog.Value{int64(i), fmt.Sprint("v", i)}})
	}
	ts.After = []byte("(`id`>99)")

	lock := dst.DB(t)
	tx, err := lock.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec("INSERT INTO app.t VALUES (50, 'lock')"); err != nil {
		t.Fatal(err)
	}
	res := make(chan error, 1)
	go func() { res <- s.WriteSnapshotRows(ctx, "src", ts, chunk, func(context.Context) error { return nil }) }()
	select {
	case err = <-res:
	case <-time.After(2 * time.Minute): // a hang guard, not a timing assertion
		t.Fatal("a chunk stuck on a row lock never gave up")
	}
	if err == nil || !mysqlconn.Retryable(err) || !strings.Contains(err.Error(), "i/o timeout") {
		t.Fatalf("stuck chunk: %v, want a retryable read timeout", err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if err := s.WriteSnapshotRows(ctx, "src", ts, chunk, func(context.Context) error { return nil }); err != nil {
		t.Fatalf("the chunk written again: %v", err)
	}
	if got := rows(t, dst, "SELECT CONCAT(COUNT(*), ' ', SUM(id), ' ', MAX(v)) FROM app.t"); got != "100 4950 v99" {
		t.Errorf("target rows: %s", got)
	}
	if p := progressOf(t, s, "app.t"); p.Rows != 100 || p.Chunks != 1 {
		t.Errorf("progress %+v", p)
	}
}
