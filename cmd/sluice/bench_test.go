package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/sluice-cdc/sluice/internal/testenv"
)

// BenchmarkDumpVsMariadbBinlog times `sluice dump --format json` against
// `mariadb-binlog -v` on the same 200+ MB binlog, both to /dev/null,
// alternating runs, and reports the median of each and their ratio:
//
//	go test ./cmd/sluice -run '^$' -bench DumpVsMariadbBinlog -benchtime 1x
//
// ratio > 1 means sluice is faster. The binlog is generated once by a
// throwaway MariaDB (about a minute) and kept in $TMPDIR for later runs.
func BenchmarkDumpVsMariadbBinlog(b *testing.B) {
	const mb = 250
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("sluice-bench-binlog-v1-%dmb", mb))
	files, _ := filepath.Glob(filepath.Join(dir, "bin.*"))
	if len(files) == 0 {
		m, err := testenv.NewMariaDB(context.Background(), testenv.MariaDBOptions{})
		if err != nil {
			b.Fatal(err)
		}
		src := testenv.WriteBinlogWorkload(b, m, mb)
		os.MkdirAll(dir, 0o755)
		for _, f := range src {
			data, err := os.ReadFile(f)
			if err != nil {
				b.Fatal(err)
			}
			dst := filepath.Join(dir, filepath.Base(f))
			if err := os.WriteFile(dst, data, 0o644); err != nil {
				b.Fatal(err)
			}
			files = append(files, dst)
		}
		m.Close()
	}
	size := testenv.FileSize(files)
	bin := filepath.Join(b.TempDir(), "sluice")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		b.Fatalf("build: %v\n%s", err, out)
	}
	mdbBin, err := exec.LookPath("mariadb-binlog")
	if err != nil {
		b.Skip("mariadb-binlog not installed")
	}
	timeRun := func(name string, args ...string) time.Duration {
		devnull, _ := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
		defer devnull.Close()
		var stderr bytes.Buffer
		cmd := exec.Command(name, args...)
		cmd.Stdout, cmd.Stderr = devnull, &stderr
		start := time.Now()
		if err := cmd.Run(); err != nil {
			b.Fatalf("%s: %v\n%s", name, err, stderr.Bytes())
		}
		return time.Since(start)
	}
	const runs = 5
	var sl, mdb []time.Duration
	for b.Loop() {
		for range runs {
			sl = append(sl, timeRun(bin, append([]string{"dump", "--format", "json"}, files...)...))
			mdb = append(mdb, timeRun(mdbBin, append([]string{"-v"}, files...)...))
		}
	}
	slices.Sort(sl)
	slices.Sort(mdb)
	ms, mm := sl[len(sl)/2], mdb[len(mdb)/2]
	mbs := func(d time.Duration) float64 { return float64(size) / (1 << 20) / d.Seconds() }
	b.ReportMetric(mbs(ms), "sluice-MB/s")
	b.ReportMetric(mbs(mm), "mariadb-binlog-MB/s")
	b.ReportMetric(mm.Seconds()/ms.Seconds(), "ratio")
	fmt.Printf("binlog %d MB; median of %d runs: sluice dump --format json %.2fs (%.0f MB/s), mariadb-binlog -v %.2fs (%.0f MB/s); sluice/mariadb-binlog throughput ratio %.2f\n",
		size>>20, len(sl), ms.Seconds(), mbs(ms), mm.Seconds(), mbs(mm), mm.Seconds()/ms.Seconds())
}
