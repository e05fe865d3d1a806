package testenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sluice-cdc/sluice/binlog"
	"github.com/sluice-cdc/sluice/config"
	"github.com/sluice-cdc/sluice/mysqlconn"
	"github.com/sluice-cdc/sluice/replicator"
)

// Logger is sluice's log for a test: on stderr with -v, discarded otherwise.
func Logger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// FreePort is a TCP port free on 127.0.0.1 at the time of the call.
func FreePort(t testing.TB) int {
	t.Helper()
	p, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// LoadConfig writes a pipeline file into a temporary directory and loads it.
func LoadConfig(t testing.TB, yml string) *config.File {
	t.Helper()
	path := filepath.Join(t.TempDir(), "pipeline.yaml")
	if err := os.WriteFile(path, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := config.Load(path)
	if err != nil {
		t.Fatalf("%v\n%s", err, yml)
	}
	return f
}

// RunToEnd runs the pipelines until every source caught up (stop at end)
// and returns the error. The timeout is a hang guard, generous for a large
// backlog under -race on a loaded machine (go test's own -timeout is 30m).
func RunToEnd(t testing.TB, cfg *config.File) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	r, err := replicator.New(cfg, replicator.Options{StopAtEnd: true, Logger: Logger()})
	if err != nil {
		t.Fatal(err)
	}
	// Run ends quietly when its context ends (a shutdown is not an error):
	// the hang guard firing must not pass for having caught up.
	if err := r.Run(ctx); err != nil || ctx.Err() == nil {
		return err
	}
	return fmt.Errorf("the pipelines did not catch up within 10 minutes: %w", ctx.Err())
}

// SourceRowCounts lists the server's transactions that change rows of db,
// as GTID -> number of row changes, read from its oldest binlog with
// sluice's own decoder.
func SourceRowCounts(t testing.TB, m *MariaDB, db string) map[string]int {
	t.Helper()
	f, _ := binlog.NewFilter([]string{db + ".*"}, nil)
	out := map[string]int{}
	ReadSource(t, m, binlog.Start{Mode: binlog.StartOldest}, binlog.DecodeOptions{Filter: f}, func(tx *binlog.Txn) {
		if tx.Len() > 0 {
			out[tx.GTID.String()] = tx.Len()
		}
		tx.Close()
	})
	return out
}

// ReadSource reads the server's transactions with sluice's live reader,
// from start to the end of the binlog as it was when the reader connected,
// and hands each to use, which then owns it.
func ReadSource(t testing.TB, m *MariaDB, start binlog.Start, decode binlog.DecodeOptions, use func(*binlog.Txn)) {
	t.Helper()
	d, err := mysqlconn.ParseDSN(m.DSN())
	if err != nil {
		t.Fatal(err)
	}
	if decode.Logger == nil {
		decode.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := binlog.Connect(ctx, binlog.LiveConfig{DSN: d, ServerID: nextServerID.Add(1), Start: start, StopAtEnd: true,
		Decode: decode, Logger: decode.Logger})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for {
		tx, err := s.Next(ctx)
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		use(tx)
	}
}
