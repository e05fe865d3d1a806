package binlog_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-cdc/sluice/binlog"
	"github.com/sluice-cdc/sluice/internal/testenv"
	"github.com/sluice-cdc/sluice/mysqlconn"
)

// TestReconnect: the live source survives a server restart and a killed
// dump connection, resuming exactly after the last transaction it returned.
func TestReconnect(t *testing.T) {
	m := testenv.StartMariaDB(t, testenv.MariaDBOptions{})
	m.Exec(t, "CREATE DATABASE r", "CREATE TABLE r.t (id INT PRIMARY KEY)")
	d, _ := mysqlconn.ParseDSN(m.DSN())
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	src, err := binlog.Connect(ctx, binlog.LiveConfig{DSN: d, ServerID: 8888, Start: binlog.Start{Mode: binlog.StartCurrent},
		Heartbeat: time.Second, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	next := 1
	insertAndRead := func(n int) {
		t.Helper()
		for i := 0; i < n; i++ {
			m.Exec(t, fmt.Sprintf("INSERT INTO r.t VALUES (%d)", next+i))
		}
		for i := 0; i < n; i++ {
			tx, err := src.Next(ctx)
			if err != nil {
				t.Fatal(err)
			}
			cs := changes(t, tx)
			if len(cs) != 1 || cs[0].After[0] != int64(next) {
				t.Fatalf("want insert of %d, got %s", next, summary(t, tx))
			}
			tx.Close()
			next++
		}
	}
	insertAndRead(20)

	// Restart the server: the source reconnects from its last transaction.
	if err := m.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	insertAndRead(20)

	// Kill the dump thread from the server side.
	id := m.QueryString(t, "SELECT ID FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%' LIMIT 1")
	m.Exec(t, "KILL "+id)
	insertAndRead(20)
}

// TestLargeTransactionBoundedMemory reads a transaction of 1,000,000 rows
// and checks that the heap never holds them all: past the spill budget the
// changes go to a temporary file and are read back one at a time. It reads
// it from the server, then from its binlog file with a pool of decoding
// goroutines, and then as sluice dump --format json does: with
// RenderJSON, whose spilled JSON WriteJSON copies to its writer (checked
// row by row as it comes) without holding it in memory.
func TestLargeTransactionBoundedMemory(t *testing.T) {
	const rows = 1_000_000
	m := testenv.StartMariaDB(t, testenv.MariaDBOptions{Args: []string{"--max-binlog-cache-size=4G"}})
	m.Exec(t, "CREATE DATABASE big", "USE big", "CREATE TABLE big.t (id INT PRIMARY KEY, v BIGINT, s VARCHAR(20))",
		fmt.Sprintf("INSERT INTO big.t SELECT seq, seq * 3, CONCAT('row ', seq) FROM seq_1_to_%d", rows), "FLUSH BINARY LOGS")
	f, _ := binlog.NewFilter([]string{"big.*"}, nil)
	opts := binlog.DecodeOptions{Filter: f, SpillBytes: 8 << 20, SpillDir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)}

	t.Run("live", func(t *testing.T) {
		d, _ := mysqlconn.ParseDSN(m.DSN())
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		boundedRead(t, rows, func() (binlog.Source, error) {
			return binlog.Connect(ctx, binlog.LiveConfig{DSN: d, ServerID: 8889, Start: binlog.Start{Mode: binlog.StartOldest}, StopAtEnd: true,
				Decode: opts, Logger: slog.New(slog.DiscardHandler)})
		}, nil)
	})
	t.Run("files", func(t *testing.T) {
		files, _ := filepath.Glob(filepath.Join(m.Dir, "data", "bin.[0-9]*"))
		o := opts
		o.Workers = 2
		boundedRead(t, rows, func() (binlog.Source, error) { return binlog.OpenFiles(files, o) }, nil)
	})
	t.Run("files RenderJSON", func(t *testing.T) {
		files, _ := filepath.Glob(filepath.Join(m.Dir, "data", "bin.[0-9]*"))
		o := opts
		o.Workers, o.RenderJSON = 2, true
		boundedRead(t, rows, func() (binlog.Source, error) { return binlog.OpenFiles(files, o) }, func(big *binlog.Txn) error {
			var enc binlog.JSONEncoder
			w := &rowsJSONChecker{}
			if err := enc.WriteJSON(w, big); err != nil {
				return err
			}
			return w.done(rows)
		})
	})
}

// rowsJSONChecker checks the JSON of big.t's transaction as it is written,
// without keeping it: after its "changes":[, the inserts of rows 1, 2, ...
type rowsJSONChecker struct {
	head    []byte // until "changes":[ is seen
	started bool
	want    []byte // the expected bytes not yet written
	next    int    // the next row to expect
	ended   bool
	err     error
}

func (w *rowsJSONChecker) Write(p []byte) (int, error) {
	n := len(p)
	if !w.started {
		w.head = append(w.head, p...)
		i := bytes.Index(w.head, []byte(`"changes":[`))
		if i < 0 {
			return n, nil
		}
		w.started = true
		p = w.head[i+len(`"changes":[`):]
		w.next = 1
	}
	for len(p) > 0 && w.err == nil {
		if len(w.want) == 0 {
			if w.ended {
				w.err = fmt.Errorf("bytes after the transaction's end: %.40q", p)
				break
			}
			w.want = w.row(w.want[:0])
		}
		k := min(len(p), len(w.want))
		if !bytes.Equal(p[:k], w.want[:k]) {
			w.err = fmt.Errorf("before row %d: wrote %.80q, want %.80q", w.next-1, p[:k], w.want[:k])
		}
		p, w.want = p[k:], w.want[k:]
	}
	return n, w.err
}

// row is the next expected change, or the end of the object.
func (w *rowsJSONChecker) row(dst []byte) []byte {
	if w.next > 1 {
		dst = append(dst, ',')
	}
	if w.next > 1_000_000 {
		w.ended = true
		return append(dst[:0], "]}"...)
	}
	i := w.next
	w.next++
	return fmt.Appendf(dst, `{"schema":"big","table":"t","type":"insert","pk":["id"],"after":{"id":%d,"v":%d,"s":"row %d"}}`, i, 3*i, i)
}

func (w *rowsJSONChecker) done(rows int) error {
	if w.err == nil && (!w.ended || len(w.want) > 0 || w.next != rows+1) {
		w.err = fmt.Errorf("the JSON ends at row %d of %d", w.next-1, rows)
	}
	return w.err
}

// boundedRead reads the first transaction with rows of the source open
// makes, a transaction of rows rows (id, id * 3, ...), iterates over it
// twice (or passes it to check twice, if not nil), and fails if the heap
// grew by what holding it would take.
func boundedRead(t *testing.T, rows int, open func() (binlog.Source, error), check func(*binlog.Txn) error) {
	var peak atomic.Uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > peak.Load() {
				peak.Store(ms.HeapAlloc)
			}
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	src, err := open()
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var big *binlog.Txn
	for big == nil {
		tx, err := src.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if tx.Len() > 0 {
			big = tx
		} else {
			tx.Close()
		}
	}
	if big.Len() != rows {
		t.Fatalf("transaction has %d changes, want %d", big.Len(), rows)
	}
	// Iterate twice, as a sink retrying the transaction would.
	for pass := 0; pass < 2; pass++ {
		if check != nil {
			if err := check(big); err != nil {
				t.Fatalf("pass %d: %v", pass, err)
			}
			continue
		}
		n := 0
		var sum int64
		for c, err := range big.Changes() {
			if err != nil {
				t.Fatal(err)
			}
			n++
			sum += c.After[1].(int64)
		}
		if n != rows || sum != 3*int64(rows)*int64(rows+1)/2 {
			t.Fatalf("pass %d: %d changes, sum %d", pass, n, sum)
		}
	}
	big.Close()
	close(stop)
	<-done
	grown := int64(peak.Load()) - int64(base.HeapAlloc)
	t.Logf("peak heap growth %d MiB for %d rows", grown>>20, rows)
	// Held in memory the changes would take well over 150 MiB.
	if grown > 96<<20 {
		t.Fatalf("heap grew by %d MiB reading a %d-row transaction: changes are not spilled", grown>>20, rows)
	}
}
