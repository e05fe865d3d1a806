package binlog_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/sluice-cdc/sluice/binlog"
)

// FuzzDecodeFile feeds corrupt and truncated binlog files to the offline
// decoder: it must return an error or transactions, never panic or hang.
//
//	go test ./binlog -run '^$' -fuzz FuzzDecodeFile -fuzztime 60s
func FuzzDecodeFile(f *testing.F) {
	f.Add([]byte("\xfebin"))
	f.Add([]byte("\xfebin\x00\x00\x00\x00\x0f\x01\x00\x00\x00\x13\x00\x00\x00\x00\x00\x00\x00"))
	// Seeds from the shared fixtures when they are present.
	if root := fixtureRoot(); root != "" {
		for _, rel := range []string{
			"rust_mysql_common/transaction_compression.000001", "rust_mysql_common/mariadb-bin.000001",
			"rust_mysql_common/mysql-enum-string-set.000001", "rust_mysql_common/json-opaque.binlog",
			"rust_mysql_common/vector.binlog", "binlog-parser/mysql-bin.07", "mysql-cdc-rs/8.0/31_update_rows_v2/binlog.000001",
			"rust_mysql_common/binlog_transaction_with_GTID_TAG.000001",
		} {
			if b, err := os.ReadFile(filepath.Join(root, rel)); err == nil {
				f.Add(b)
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// A hang is a failure: crash with every goroutine's stack.
		watchdog := time.AfterFunc(20*time.Second, func() {
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			panic("decoder hung on a fuzz input:\n" + string(buf[:n]))
		})
		defer watchdog.Stop()
		path := filepath.Join(t.TempDir(), "fuzz.000001")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		all, _ := binlog.NewFilter([]string{"*"}, nil)
		src, err := binlog.OpenFiles([]string{path}, binlog.DecodeOptions{Filter: all, Logger: slog.New(slog.DiscardHandler), SpillBytes: 1024})
		if err != nil {
			return
		}
		defer src.Close()
		for i := 0; i < 100000; i++ {
			tx, err := src.Next(context.Background())
			if err != nil {
				return
			}
			_, _ = binlog.AppendJSON(nil, tx)
			tx.Close()
		}
		t.Fatal("decoder did not finish a small input")
	})
}

func fixtureRoot() string {
	dir, _ := filepath.Abs("..")
	fx := filepath.Join(dir, "..", "shared", "fixtures", "binlogs")
	if _, err := os.Stat(fx); err != nil {
		return ""
	}
	return fx
}
