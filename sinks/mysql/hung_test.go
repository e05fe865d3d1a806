package mysql_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

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
