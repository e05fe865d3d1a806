package snapshot_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
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
	return openTargetWith(t, m, mysqlsink.Config{Pipeline: pipeline})
}

// openTargetWith opens the target as a MySQL sink configured as cfg.
func openTargetWith(t testing.TB, m *testenv.MariaDB, cfg mysqlsink.Config) *mysqlsink.Sink {
	t.Helper()
	dsn, err := mysqlconn.ParseDSN(m.DSN())
	if err != nil {
		t.Fatal(err)
	}
	cfg.DSN, cfg.Logger = dsn, testenv.Logger()
	s, err := mysqlsink.Open(context.Background(), cfg)
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
	return runSnapshotTo(t, src, dst, db, mysqlsink.Config{Pipeline: pipeline}, readers, writers)
}

// runSnapshotTo is runSnapshot into a sink configured as cfg.
func runSnapshotTo(t testing.TB, src, dst *testenv.MariaDB, db string, cfg mysqlsink.Config, readers, writers int) (time.Duration, uint64) {
	t.Helper()
	sink := openTargetWith(t, dst, cfg)
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
	// The source opened as sluice opens it (mysqlconn.Open).
	dsn, err := mysqlconn.ParseDSN(src.DSN())
	if err != nil {
		t.Fatal(err)
	}
	source, err := mysqlconn.Open(context.Background(), dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer source.Close()
	runtime.GC()
	start := time.Now()
	_, err = snapshot.Run(context.Background(), snapshot.Config{Source: source, SourceName: "primary", Filter: filter, Target: sink,
		Readers: readers, Writers: writers, Logger: testenv.Logger()})
	took := time.Since(start)
	close(stop)
	<-sampled
	if err != nil {
		t.Fatal(err)
	}
	return took, peak.Load()
}

// run runs a shell command line and returns the CPU time it and its
// children used.
func run(t testing.TB, name string, args ...string) time.Duration {
	t.Helper()
	cmd := exec.Command("sh", "-c", name+" "+shellJoin(args))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", cmd.Args, err, out)
	}
	return cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
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

// selfCPU is this process's CPU time so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuTimes are the CPU seconds one run of a tool cost: the source server,
// the target server and the tool's own processes.
type cpuTimes struct{ src, dst, tool time.Duration }

func (c cpuTimes) String() string {
	return fmt.Sprintf("CPU source %.1fs, target %.1fs, tool %.1fs", c.src.Seconds(), c.dst.Seconds(), c.tool.Seconds())
}

// measure runs f and returns its time and CPU times; f returns the tool's
// own CPU time.
func measure(t testing.TB, src, dst *testenv.MariaDB, f func() time.Duration) (time.Duration, cpuTimes) {
	s0, d0 := src.CPU(t), dst.CPU(t)
	start := time.Now()
	tool := f()
	took := time.Since(start)
	return took, cpuTimes{src.CPU(t) - s0, dst.CPU(t) - d0, tool}
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

// BenchmarkSnapshotVsDump copies the same tables between the same two
// servers with sluice's snapshot (4 readers, 4 writers), mariadb-dump |
// mariadb, and mydumper + myloader with 4 threads, in rounds, and prints
// each one's median rows/s and sluice's ratios (make bench-snapshot).
// myloader writes nothing to the target's binlog unless asked
// (--enable-binlog), sluice does unless asked (snapshot_binlog: skip):
// each is run both ways, and compared like for like.
//
// A first round, not counted, warms both servers (a fresh target's first
// load also grows its undo and data files); after it, each round starts
// with the next tool, so that no tool always runs in one slot.
func BenchmarkSnapshotVsDump(b *testing.B) {
	for _, tool := range []string{"mariadb-dump", "mariadb", "mydumper", "myloader"} {
		if _, err := exec.LookPath(tool); err != nil {
			b.Fatalf("%s is not installed (scripts/deps.sh installs it)", tool)
		}
	}
	rows := envInt("SNAPSHOT_BENCH_ROWS", 1000000)
	rounds := envInt("SNAPSHOT_BENCH_ROUNDS", 3)
	// The collector as `sluice snapshot` and `sluice run` set it
	// (cmd/sluice's tuneGC), unless GOGC says otherwise.
	if os.Getenv("GOGC") == "" {
		defer debug.SetGCPercent(debug.SetGCPercent(200))
	}
	// The same servers for the three tools.
	src, dst := startSized(b), startSized(b)
	benchTables(b, src, "bench", rows)
	conn := func(m *testenv.MariaDB) string { return fmt.Sprintf("-h 127.0.0.1 -P %d -u root", m.Port) }
	var peak uint64
	sluiceRun := func(cfg mysqlsink.Config) func(string) time.Duration {
		return func(string) time.Duration {
			c0 := selfCPU()
			_, heap := runSnapshotTo(b, src, dst, "bench", cfg, envInt("SNAPSHOT_BENCH_READERS", 4), envInt("SNAPSHOT_BENCH_WRITERS", 4))
			peak = max(peak, heap)
			return selfCPU() - c0
		}
	}
	mydumper := func(loaderArgs string) func(string) time.Duration {
		return func(dir string) time.Duration {
			return run(b, "mydumper", conn(src), "-B bench -t 4 -o", dir) + run(b, "myloader", conn(dst), "-d", dir, "-t 4 -o", loaderArgs)
		}
	}
	type contender struct {
		name  string
		copy  func(dir string) time.Duration // returns the tool's own CPU time
		times []time.Duration
	}
	tools := []*contender{
		{name: "sluice"},
		{name: "with snapshot_binlog: skip"},
		{name: "mariadb-dump|mariadb", copy: func(string) time.Duration {
			return run(b, "mariadb-dump", conn(src), "--single-transaction --databases bench |", "mariadb", conn(dst))
		}},
		// myloader writes nothing to the target's binlog unless asked
		// (--enable-binlog); sluice and mariadb do, as a replica's
		// replicas need it.
		{name: "mydumper+myloader", copy: mydumper("")},
		{name: "with --enable-binlog", copy: mydumper("--enable-binlog")},
	}
	for i := -1; i < b.N*rounds; i++ {
		tools[0].copy = sluiceRun(mysqlsink.Config{Pipeline: fmt.Sprintf("bench-%d", i)})
		tools[1].copy = sluiceRun(mysqlsink.Config{Pipeline: fmt.Sprintf("bench-skip-%d", i), SnapshotSkipBinlog: true})
		var line []string
		for k := range tools {
			c := tools[(max(i, 0)+k)%len(tools)]
			dst.Exec(b, "DROP DATABASE IF EXISTS bench")
			dir := filepath.Join(b.TempDir(), strconv.Itoa(k))
			took, cpu := measure(b, src, dst, func() time.Duration { return c.copy(dir) })
			if i >= 0 {
				c.times = append(c.times, took)
			}
			line = append(line, fmt.Sprintf("%s %s (%s)", c.name, took.Round(time.Millisecond), cpu))
		}
		if i < 0 {
			b.Logf("warm-up round, not counted: %s", strings.Join(line, ", "))
		} else {
			b.Logf("round %d: %s", i+1, strings.Join(line, ", "))
		}
	}
	sluice, sluiceSkip, dump, mydumperTimes, mydumperBinlog := tools[0].times, tools[1].times, tools[2].times, tools[3].times, tools[4].times
	if load, err := os.ReadFile("/proc/loadavg"); err == nil {
		b.Logf("load average: %s", strings.TrimSpace(string(load)))
	}
	if a, c := src.Checksums(b, "bench.sbtest1", "bench.sbtest4"), dst.Checksums(b, "bench.sbtest1", "bench.sbtest4"); a != c {
		b.Fatalf("checksums differ: %s / %s", a, c)
	}
	rate := func(d time.Duration) float64 { return float64(rows) / d.Seconds() }
	s, sn, d, m, mb := median(sluice), median(sluiceSkip), median(dump), median(mydumperTimes), median(mydumperBinlog)
	b.Logf("%d rows, %d rounds, %d cores: sluice %.0f rows/s, with snapshot_binlog: skip %.0f rows/s, mariadb-dump|mariadb %.0f rows/s, mydumper+myloader (4 threads) %.0f rows/s, with --enable-binlog %.0f rows/s",
		rows, rounds, runtime.NumCPU(), rate(s), rate(sn), rate(d), rate(m), rate(mb))
	b.Logf("like for like: sluice vs mariadb-dump|mariadb (both write the target's binlog): %.2f; vs mydumper+myloader --enable-binlog: %.2f; "+
		"sluice with snapshot_binlog: skip vs mydumper+myloader (neither writes it): %.2f", d.Seconds()/s.Seconds(), mb.Seconds()/s.Seconds(), m.Seconds()/sn.Seconds())
	b.Logf("across: sluice (binlog written) vs mydumper+myloader (not written): %.2f; peak heap in use during sluice's snapshots: %d MiB", m.Seconds()/s.Seconds(), peak>>20)
	b.ReportMetric(rate(s), "sluice_rows/s")
	b.ReportMetric(d.Seconds()/s.Seconds(), "ratio_vs_mariadb-dump")
	b.ReportMetric(mb.Seconds()/s.Seconds(), "ratio_vs_mydumper_binlog")
	b.ReportMetric(m.Seconds()/sn.Seconds(), "ratio_skip_vs_mydumper")
	b.ReportMetric(m.Seconds()/s.Seconds(), "ratio_vs_mydumper")
}
