package binlog_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"

	"github.com/sluice-cdc/sluice/binlog"
	"github.com/sluice-cdc/sluice/internal/testenv"
)

var benchFiles struct {
	once  sync.Once
	files []string
}

// benchBinlog writes a 20 MB binlog once per test binary. The server stays
// up until the process ends (its files are the benchmark's input).
func benchBinlog(b *testing.B) []string {
	benchFiles.once.Do(func() {
		m, err := testenv.NewMariaDB(context.Background(), testenv.MariaDBOptions{})
		if err != nil {
			b.Fatal(err)
		}
		benchFiles.files = testenv.WriteBinlogWorkload(b, m, 20)
	})
	return benchFiles.files
}

// BenchmarkDecodeFile decodes a binlog file into transactions and iterates
// over every change: the offline path of `sluice dump`.
//
//	go test ./binlog -run '^$' -bench DecodeFile -benchtime 5x
func BenchmarkDecodeFile(b *testing.B) {
	benchDecode(b, func(tx *binlog.Txn) error {
		for _, err := range tx.Changes() {
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// BenchmarkDecodeJSON adds the JSON encoding `sluice dump` does.
func BenchmarkDecodeJSON(b *testing.B) {
	var buf []byte
	benchDecode(b, func(tx *binlog.Txn) (err error) {
		buf, err = binlog.AppendJSON(buf[:0], tx)
		return err
	})
}

// benchDecode decodes the benchmark's binlog files once per iteration and
// hands each transaction to use.
func benchDecode(b *testing.B, use func(*binlog.Txn) error) {
	files := benchBinlog(b)
	b.SetBytes(testenv.FileSize(files))
	b.ResetTimer()
	for b.Loop() {
		src, err := binlog.OpenFiles(files, binlog.DecodeOptions{Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			b.Fatal(err)
		}
		for {
			tx, err := src.Next(context.Background())
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			if err := use(tx); err != nil {
				b.Fatal(err)
			}
			tx.Close()
		}
		src.Close()
	}
}

func BenchmarkGTIDSetAdvance(b *testing.B) {
	var s binlog.GTIDSet
	g := binlog.GTID{UUID: "3e11fa47-71ca-11e1-9e33-c80aa9429562"}
	for b.Loop() {
		g.Seq++
		s.AdvanceTo(g)
		_ = s.Clone()
	}
}
