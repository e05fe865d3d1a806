package binlog_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"runtime"
	"testing"

	"github.com/sluice-cdc/sluice/binlog"
)

// decodeJSON reads a binlog file with the given options and returns each
// transaction as JSON, read after the whole file is decoded and a garbage
// collection (values point into arenas and file chunks), and the error
// that ended it.
func decodeJSON(t *testing.T, path string, opts binlog.DecodeOptions) ([]string, error) {
	t.Helper()
	src, err := binlog.OpenFiles([]string{path}, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var txns []*binlog.Txn
	defer func() {
		for _, tx := range txns {
			tx.Close()
		}
	}()
	var readErr error
	for {
		tx, err := src.Next(context.Background())
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			readErr = err
			break
		}
		txns = append(txns, tx)
	}
	runtime.GC()
	var out []string
	var enc binlog.JSONEncoder
	for _, tx := range txns {
		b, err := binlog.AppendJSON(nil, tx)
		if err != nil {
			t.Fatal(err)
		}
		e, err := enc.AppendJSON(nil, tx)
		if err != nil {
			t.Fatal(err)
		}
		if string(e) != string(b) {
			t.Fatalf("JSONEncoder wrote\n%s\nAppendJSON\n%s", e, b)
		}
		var w bytes.Buffer
		if err := enc.WriteJSON(&w, tx); err != nil {
			t.Fatal(err)
		}
		if w.String() != string(b) {
			t.Fatalf("WriteJSON wrote\n%s\nAppendJSON\n%s", w.Bytes(), b)
		}
		out = append(out, string(b))
	}
	return out, readErr
}

// TestParallelDecodeSame decodes every fixture binlog in the reader and
// with a pool of decoding goroutines, with and without RenderJSON, with the
// default spill budget and with one that spills every transaction: the
// transactions, their changes in order and the errors are the same, and
// AppendJSON, JSONEncoder.AppendJSON and WriteJSON write the same JSON.
// With RenderJSON and workers, the read and render chunks are pooled and
// small in the package's tests, and poisoned once released (see
// refbuf_test.go): JSON read from a chunk after its release differs.
func TestParallelDecodeSame(t *testing.T) {
	f, _ := binlog.NewFilter([]string{"*"}, nil)
	cases := []struct {
		workers int
		render  bool
	}{{1, false}, {3, false}, {0, true}, {1, true}, {3, true}}
	eachFixtureBinlog(t, func(t *testing.T, _, path string) {
		for _, spill := range []int64{0, 1} {
			opts := binlog.DecodeOptions{Filter: f, AccountStatements: true, Logger: slog.New(slog.DiscardHandler),
				SpillBytes: spill, SpillDir: t.TempDir()}
			want, wantErr := decodeJSON(t, path, opts)
			for _, c := range cases {
				opts.Workers, opts.RenderJSON = c.workers, c.render
				got, gotErr := decodeJSON(t, path, opts)
				if (wantErr == nil) != (gotErr == nil) || wantErr != nil && wantErr.Error() != gotErr.Error() {
					t.Fatalf("%+v, spill %d: error %v, want %v", c, spill, gotErr, wantErr)
				}
				if len(got) != len(want) {
					t.Fatalf("%+v, spill %d: %d transactions, want %d", c, spill, len(got), len(want))
				}
				for i := range want {
					if got[i] != want[i] {
						t.Fatalf("%+v, spill %d: transaction %d:\n%s\nwant\n%s", c, spill, i, got[i], want[i])
					}
				}
			}
		}
	})
}
