package snapshot_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-cdc/sluice/internal/testenv"
	"github.com/sluice-cdc/sluice/mysqlconn"
	mysqlsink "github.com/sluice-cdc/sluice/sinks/mysql"
	"github.com/sluice-cdc/sluice/snapshot"
)

// benchTables fills db with 4 sysbench-shaped tables of rows/4 rows each.
func benchTables(t testing.TB, m *testenv.MariaDB, db string, rows int) {
	m.Exec(t, "CREATE DATABASE "+db)
	for i := 1; i <= 4; i++ {
		tb := fmt.Sprintf("%s.sbtest%d", db, i)
		m.Exec(t, "CREATE TABLE "+tb+" (id INT NOT NULL PRIMARY KEY, k INT NOT NULL DEFAULT 0, c CHAR(120) NOT NULL DEFAULT '', pad CHAR(60) NOT NULL DEFAULT '', KEY k_1 (k))",
			fmt.Sprintf("INSERT INTO %s SELECT seq, seq * 7 %% %d, CONCAT(MD5(seq), MD5(seq + 1), MD5(seq + 2), LEFT(MD5(seq + 3), 24)), "+
				"CONCAT(MD5(seq * 3), LEFT(MD5(seq * 5), 28)) FROM %s.seq_1_to_%d", tb, rows, db, rows/4))
	}
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// openTarget opens the target as a pipeline's MySQL sink.
func openTarget(t testing.TB, m *testenv.MariaDB, pipeline string) *mysqlsink.Sink {
	t.Helper()
	dsn, err := mysqlconn.ParseDSN(m.DSN())
	if err != nil {
		t.Fatal(err)
	}
	s, err := mysqlsink.Open(context.Background(), mysqlsink.Config{DSN: dsn, Pipeline: pipeline, Logger: testenv.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// startSized starts a server sized for a bulk load: testenv's default 8 MB
// redo log makes every tool wait on checkpoints.
func startSized(t testing.TB) *testenv.MariaDB {
	return testenv.StartMariaDB(t, testenv.MariaDBOptions{Args: []string{"--innodb-log-file-size=256M", "--innodb-buffer-pool-size=256M"}})
}

// runSnapshot copies db from src to dst as pipeline, and returns the
// time it took and the highest heap in use seen meanwhile.
func runSnapshot(t testing.TB, src, dst *testenv.MariaDB, db, pipeline string, readers, writers int) (time.Duration, uint64) {
	t.Helper()
	sink := openTarget(t, dst, pipeline)
	defer sink.Close()
	filter := mustFilter(t, db+".*")
	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	runtime.GC()
	start := time.Now()
	_, err := snapshot.Run(context.Background(), snapshot.Config{Source: src.DB(t), SourceName: "primary", Filter: filter, Target: sink,
		Readers: readers, Writers: writers, Logger: testenv.Logger()})
	took := time.Since(start)
	close(stop)
	<-sampled
	if err != nil {
		t.Fatal(err)
	}
	return took, peak.Load()
}

func run(t testing.TB, name string, args ...string) {
	t.Helper()
	cmd := exec.Command("sh", "-c", name+" "+shellJoin(args))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", cmd.Args, err, out)
	}
}

func shellJoin(args []string) string {
	s := ""
	for i, a := range args {
		if i > 0 {
			s += " "
		}
		s += a
	}
	return s
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

// BenchmarkSnapshotVsDump copies the same tables between the same two
// servers with sluice's snapshot (4 readers, 4 writers), mariadb-dump |
// mariadb, and mydumper + myloader with 4 threads (with and without
// --enable-binlog), in alternating rounds,
// and prints each one's median rows/s and sluice's ratio to each (make
// bench-snapshot).
func BenchmarkSnapshotVsDump(b *testing.B) {
	for _, tool := range []string{"mariadb-dump", "mariadb", "mydumper", "myloader"} {
		if _, err := exec.LookPath(tool); err != nil {
			b.Fatalf("%s is not installed (scripts/deps.sh installs it)", tool)
		}
	}
	rows := envInt("SNAPSHOT_BENCH_ROWS", 1000000)
	rounds := envInt("SNAPSHOT_BENCH_ROUNDS", 3)
	// The same servers for the three tools.
	src, dst := startSized(b), startSized(b)
	benchTables(b, src, "bench", rows)
	conn := func(m *testenv.MariaDB) string { return fmt.Sprintf("-h 127.0.0.1 -P %d -u root", m.Port) }
	var sluice, dump, mydumper, mydumperBinlog []time.Duration
	var peak uint64
	for i := range b.N * rounds {
		dst.Exec(b, "DROP DATABASE IF EXISTS bench")
		took, heap := runSnapshot(b, src, dst, "bench", fmt.Sprintf("bench-%d", i), envInt("SNAPSHOT_BENCH_READERS", 4), envInt("SNAPSHOT_BENCH_WRITERS", 4))
		sluice = append(sluice, took)
		peak = max(peak, heap)

		dst.Exec(b, "DROP DATABASE IF EXISTS bench")
		start := time.Now()
		run(b, "mariadb-dump", conn(src), "--single-transaction --databases bench |", "mariadb", conn(dst))
		dump = append(dump, time.Since(start))

		dst.Exec(b, "DROP DATABASE IF EXISTS bench")
		dir := filepath.Join(b.TempDir(), strconv.Itoa(i))
		start = time.Now()
		run(b, "mydumper", conn(src), "-B bench -t 4 -o", dir)
		run(b, "myloader", conn(dst), "-d", dir, "-t 4 -o")
		mydumper = append(mydumper, time.Since(start))

		// myloader writes nothing to the target's binlog unless asked
		// (--enable-binlog); sluice and mariadb do, as a replica's
		// replicas need it.
		dst.Exec(b, "DROP DATABASE IF EXISTS bench")
		dir += "b"
		start = time.Now()
		run(b, "mydumper", conn(src), "-B bench -t 4 -o", dir)
		run(b, "myloader", conn(dst), "-d", dir, "-t 4 -o --enable-binlog")
		mydumperBinlog = append(mydumperBinlog, time.Since(start))
		b.Logf("round %d: sluice %s, mariadb-dump|mariadb %s, mydumper+myloader %s, with --enable-binlog %s", i+1, took.Round(time.Millisecond),
			dump[len(dump)-1].Round(time.Millisecond), mydumper[len(mydumper)-1].Round(time.Millisecond), mydumperBinlog[len(mydumperBinlog)-1].Round(time.Millisecond))
	}
	if a, c := src.Checksums(b, "bench.sbtest1", "bench.sbtest4"), dst.Checksums(b, "bench.sbtest1", "bench.sbtest4"); a != c {
		b.Fatalf("checksums differ: %s / %s", a, c)
	}
	rate := func(d time.Duration) float64 { return float64(rows) / d.Seconds() }
	s, d, m, mb := median(sluice), median(dump), median(mydumper), median(mydumperBinlog)
	b.Logf("%d rows, %d rounds, %d cores: sluice %.0f rows/s, mariadb-dump|mariadb %.0f rows/s, mydumper+myloader (4 threads) %.0f rows/s, with --enable-binlog %.0f rows/s",
		rows, rounds, runtime.NumCPU(), rate(s), rate(d), rate(m), rate(mb))
	b.Logf("ratio vs mariadb-dump|mariadb: %.2f; vs mydumper+myloader: %.2f; vs mydumper+myloader --enable-binlog: %.2f; peak heap in use during sluice's snapshot: %d MiB",
		d.Seconds()/s.Seconds(), m.Seconds()/s.Seconds(), mb.Seconds()/s.Seconds(), peak>>20)
	b.ReportMetric(rate(s), "sluice_rows/s")
	b.ReportMetric(d.Seconds()/s.Seconds(), "ratio_vs_mariadb-dump")
	b.ReportMetric(m.Seconds()/s.Seconds(), "ratio_vs_mydumper")
	b.ReportMetric(mb.Seconds()/s.Seconds(), "ratio_vs_mydumper_binlog")
}
