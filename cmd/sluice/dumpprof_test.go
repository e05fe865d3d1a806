package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkDumpJSON runs `sluice dump --format json` in the test process on
// the binlog BenchmarkDumpVsMariadbBinlog keeps in $TMPDIR, for profiling:
//
//	go test ./cmd/sluice -run '^$' -bench 'DumpJSON$' -benchtime 1x -cpuprofile cpu.out
func BenchmarkDumpJSON(b *testing.B) {
	files, _ := filepath.Glob(filepath.Join(os.TempDir(), "sluice-bench-binlog-v1-*mb", "bin.*"))
	if len(files) == 0 {
		b.Skip("no benchmark binlog: run BenchmarkDumpVsMariadbBinlog once to write it")
	}
	var size int64
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			b.Fatal(err)
		}
		size += st.Size()
	}
	b.SetBytes(size)
	for b.Loop() {
		if err := runDump(context.Background(), append([]string{"--format", "json"}, files...), io.Discard, io.Discard); err != nil {
			b.Fatal(err)
		}
	}
}
