package binlog_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sluice-cdc/sluice/binlog"
	"github.com/sluice-cdc/sluice/internal/testenv"
	"github.com/sluice-cdc/sluice/mysqlconn"
)

// TestSilentSource: a source that stops answering mid-stream (a hung
// server: the port still accepts, nothing comes back) is noticed by the
// heartbeat's read deadline; Next returns a retryable error naming the
// server instead of waiting for ever.
func TestSilentSource(t *testing.T) {
	m := testenv.StartMariaDB(t, testenv.MariaDBOptions{})
	m.Exec(t, "CREATE DATABASE app", "CREATE TABLE app.t (id INT PRIMARY KEY)", "INSERT INTO app.t VALUES (1)")
	d, err := mysqlconn.ParseDSN(m.DSN() + "?timeout=2s")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	src, err := binlog.Connect(ctx, binlog.LiveConfig{DSN: d, ServerID: 7001, Start: binlog.Start{Mode: binlog.StartOldest},
		Heartbeat: time.Second, MaxRetries: 1, Logger: testenv.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	// Status pollers read the state while Next runs (race detector).
	stopPoll := make(chan struct{})
	pollDone := make(chan struct{})
	go func() {
		defer close(pollDone)
		for {
			select {
			case <-stopPoll:
				return
			case <-time.After(10 * time.Millisecond):
				_ = src.State()
			}
		}
	}()
	defer func() { close(stopPoll); <-pollDone }()
	for {
		tx, err := src.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		done := tx.Len() > 0
		tx.Close()
		if done {
			break
		}
	}
	if err := m.Pause(); err != nil {
		t.Fatal(err)
	}
	defer m.Resume()

	res := make(chan error, 1)
	go func() {
		_, err := src.Next(ctx)
		res <- err
	}()
	select {
	case err = <-res:
	case <-time.After(2 * time.Minute): // a hang guard, not a timing assertion
		t.Fatal("Next did not notice the silent source")
	}
	if err == nil || !mysqlconn.Retryable(errors.Unwrap(err)) && !mysqlconn.Retryable(err) {
		t.Fatalf("Next = %v, want a retryable error", err)
	}
	if !strings.Contains(err.Error(), m.DSN()[len("mysql://root@"):]) {
		t.Errorf("error %q does not name the server", err)
	}
	if st := src.State(); st != "reconnecting" {
		t.Errorf("state %q, want reconnecting", st)
	}
	t.Log(err)
}
