package binlog

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRowDecoderMatchesGoMySQL decodes every fixture binlog twice, with
// sluice's row decoder and with go-mysql's (plus the conversions that fix
// its known traps), and requires the same JSON.
func TestRowDecoderMatchesGoMySQL(t *testing.T) {
	dir, _ := filepath.Abs("..")
	root := filepath.Join(dir, "..", "shared", "fixtures", "binlogs")
	if _, err := os.Stat(root); err != nil {
		t.Skipf("binlog fixtures not present at %s", root)
	}
	compared := 0
	filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(path, ".txt") || strings.HasSuffix(path, ".gz") {
			return err
		}
		a, errA := decodeAllJSON(path, false)
		b, errB := decodeAllJSON(path, true)
		if (errA == nil) != (errB == nil) {
			// go-mysql mis-handles some corrupt files differently; both must fail.
			if !strings.Contains(path, "corrupt") {
				t.Errorf("%s: sluice error %v, go-mysql error %v", path, errA, errB)
			}
			return nil
		}
		for i := range min(len(a), len(b)) {
			if a[i] != b[i] {
				t.Errorf("%s transaction %d:\nsluice:   %s\ngo-mysql: %s", path, i, a[i], b[i])
				return nil
			}
		}
		if len(a) != len(b) {
			t.Errorf("%s: %d vs %d transactions", path, len(a), len(b))
		}
		compared += len(a)
		return nil
	})
	if compared < 100 {
		t.Fatalf("only %d transactions compared", compared)
	}
}

func decodeAllJSON(path string, goMySQL bool) ([]string, error) {
	f, _ := NewFilter([]string{"*"}, nil)
	src, err := OpenFiles([]string{path}, DecodeOptions{Filter: f, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, err
	}
	defer src.Close()
	src.asm.dec.goMySQLRows = goMySQL
	var out []string
	for {
		tx, err := src.Next(context.Background())
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		b, err := AppendJSON(nil, tx)
		if err != nil {
			return out, err
		}
		out = append(out, string(b))
		tx.Close()
	}
}
