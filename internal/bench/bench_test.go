// Package bench measures sluice against MariaDB's own replica on this
// machine, in one run, and prints each figure with its ratio (make bench):
//
//   - catch-up: a sysbench oltp_write_only backlog, applied by MariaDB's
//     parallel replica (4 threads, optimistic) and by `sluice run
//     --stop-at-end`, each from a stopped state, in txn/s;
//   - large transaction: one UPDATE of many rows, in rows/s, and sluice's
//     peak RSS on a 1,000,000-row transaction;
//   - lag: commit-to-visible p50/p99 at a steady rate.
//
// Every server is a testenv MariaDB with the same settings (the same
// durability for the native replica and sluice's target; the replica
// writes its binlog too, log_slave_updates, as sluice's target does).
// Sizes come from the environment, defaults as issue 11 gives them:
//
//	BENCH_TXNS=60000 BENCH_TABLES=4 BENCH_TABLE_ROWS=100000 BENCH_THREADS=8
//	BENCH_ROWS=300000 BENCH_BIG_ROWS=1000000 BENCH_RUNS=3 BENCH_LAG_RATE=1000
//	BENCH_WORKERS (the sink's workers; default the sink's default)
//	BENCH_CPUPROFILE=FILE (profile sluice's catch-up, run in-process)
//	BENCH_LOG=FILE (append sluice's debug log of each run to FILE)
package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-cdc/sluice/internal/testenv"
)

var sluiceBin string

func TestMain(m *testing.M) { testenv.RunWithSluice(m, &sluiceBin) }

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// serverArgs: a buffer pool that holds the data set, on every server alike.
var serverArgs = []string{"--innodb-buffer-pool-size=512M", "--innodb-log-file-size=256M", "--max-allowed-packet=64M"}

// nativeArgs make a server MariaDB's parallel replica.
var nativeArgs = []string{"--slave-parallel-threads=4", "--slave-parallel-mode=optimistic", "--log-slave-updates"}

// servers starts a source, a native replica and sluice's target.
func servers(b *testing.B) (src, native, target *testenv.MariaDB) {
	b.Helper()
	out := make([]*testenv.MariaDB, 3)
	errs := make(chan error, 3)
	for i := range 3 {
		args := serverArgs
		if i == 1 {
			args = append(slices.Clone(serverArgs), nativeArgs...)
		}
		go func() {
			var err error
			out[i], err = testenv.NewMariaDB(context.Background(), testenv.MariaDBOptions{Args: args})
			errs <- err
		}()
	}
	for range 3 {
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
	}
	for _, m := range out {
		b.Cleanup(m.Close)
	}
	return out[0], out[1], out[2]
}

// startNative points the native replica at src (from the start of its
// binlog) and starts it.
func startNative(b *testing.B, src, native *testenv.MariaDB) {
	native.Exec(b, "SET GLOBAL gtid_slave_pos = ''",
		fmt.Sprintf("CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=%d, MASTER_USER='root', MASTER_USE_GTID=slave_pos", src.Port),
		"START SLAVE")
}

// waitNative waits until the native replica has applied gtid.
func waitNative(b *testing.B, native *testenv.MariaDB, gtid string) {
	b.Helper()
	deadline := time.Now().Add(30 * time.Minute)
	for native.QueryString(b, "SELECT @@gtid_slave_pos") != gtid {
		if time.Now().After(deadline) {
			b.Fatalf("the native replica did not reach %s: %s", gtid, native.QueryString(b, "SELECT @@gtid_slave_pos"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// pipeline writes sluice's pipeline file from src into target.
func pipeline(b *testing.B, src, target *testenv.MariaDB, include string) string {
	workers := ""
	if w := os.Getenv("BENCH_WORKERS"); w != "" {
		workers = ", workers: " + w
	}
	level := "warn"
	if os.Getenv("BENCH_LOG") != "" {
		level = "debug"
	}
	path := filepath.Join(b.TempDir(), "pipeline.yaml")
	yml := fmt.Sprintf(`
http: {listen: "off"}
log: {level: `+level+`}
pipelines:
  - name: bench
    sources: [{name: primary, dsn: "%s", start: oldest, include: ["%s"]}]
    sink: {type: mysql, dsn: "%s"%s}
`, src.DSN(), include, target.DSN(), workers)
	if err := os.WriteFile(path, []byte(yml), 0o600); err != nil {
		b.Fatal(err)
	}
	return path
}

// run is one sluice process's cost.
type run struct {
	wall      time.Duration
	cpu       time.Duration // user + system
	maxRSSMiB float64
}

// runSluice runs `sluice run --stop-at-end` to the end and measures it.
func runSluice(b *testing.B, cfgPath string) run {
	b.Helper()
	logPath := filepath.Join(filepath.Dir(cfgPath), "sluice.log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(sluiceBin, "run", "-c", cfgPath, "--stop-at-end")
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	start := time.Now()
	if err := cmd.Run(); err != nil {
		log, _ := os.ReadFile(logPath)
		b.Fatalf("sluice run --stop-at-end: %v\n%s", err, tail(string(log), 20))
	}
	r := run{wall: time.Since(start), cpu: cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()}
	if keep := os.Getenv("BENCH_LOG"); keep != "" {
		// BENCH_LOG=FILE: sluice's debug log of every run, appended.
		log, _ := os.ReadFile(logPath)
		if f, err := os.OpenFile(keep, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err == nil {
			f.Write(log)
			f.Close()
		}
		os.Truncate(logPath, 0)
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.maxRSSMiB = float64(ru.Maxrss) / 1024 // KiB on Linux
	}
	return r
}

// runSluiceProfiled runs the pipeline in this process under the CPU
// profiler, writing the profile to file.
func runSluiceProfiled(b *testing.B, cfgPath, file string) run {
	b.Helper()
	f, err := os.Create(file)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	cfg := testenv.LoadConfig(b, mustRead(b, cfgPath))
	var before, after syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	start := time.Now()
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	err = testenv.RunToEnd(b, cfg)
	pprof.StopCPUProfile()
	if err != nil {
		b.Fatal(err)
	}
	syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	cpu := time.Duration(after.Utime.Nano()-before.Utime.Nano()) + time.Duration(after.Stime.Nano()-before.Stime.Nano())
	return run{wall: time.Since(start), cpu: cpu}
}

func mustRead(b *testing.B, path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	return string(data)
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

func sysbench(b *testing.B, src *testenv.MariaDB, args ...string) {
	b.Helper()
	base := []string{"oltp_write_only", "--db-driver=mysql", "--mysql-host=127.0.0.1", "--mysql-port=" + strconv.Itoa(src.Port),
		"--mysql-user=root", "--mysql-password=", "--mysql-db=sbtest", "--rand-seed=1"}
	cmd := exec.Command("sysbench", append(base, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("sysbench %s: %v\n%s", strings.Join(args, " "), err, tail(string(out), 20))
	}
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

func report(b *testing.B, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	fmt.Println(msg)
	b.Log(msg)
}

// BenchmarkCatchUp: a sysbench oltp_write_only backlog, caught up by
// MariaDB's parallel replica and then by sluice, BENCH_RUNS times on the
// same servers (each run a new backlog), with the medians and their ratio.
func BenchmarkCatchUp(b *testing.B) {
	txns, tables, rows := envInt("BENCH_TXNS", 60000), envInt("BENCH_TABLES", 4), envInt("BENCH_TABLE_ROWS", 100000)
	threads, runs := envInt("BENCH_THREADS", 8), envInt("BENCH_RUNS", 3)
	src, native, target := servers(b)
	src.Exec(b, "CREATE DATABASE sbtest")
	sysbench(b, src, "--tables="+strconv.Itoa(tables), "--table-size="+strconv.Itoa(rows), "--threads="+strconv.Itoa(min(tables, 4)), "prepare")
	cfgPath := pipeline(b, src, target, "sbtest.*")
	// The prepared tables reach both replicas before the clock starts.
	startNative(b, src, native)
	waitNative(b, native, src.QueryString(b, "SELECT @@gtid_binlog_pos"))
	native.Exec(b, "STOP SLAVE")
	runSluice(b, cfgPath)
	var tableNames []string
	for i := 1; i <= tables; i++ {
		tableNames = append(tableNames, fmt.Sprintf("sbtest.sbtest%d", i))
	}
	var nativeRates, sluiceRates, ratios []float64
	for b.Loop() {
		for i := range runs {
			from := gtidSeq(b, src)
			sysbench(b, src, "--tables="+strconv.Itoa(tables), "--table-size="+strconv.Itoa(rows), "--threads="+strconv.Itoa(threads),
				"--events="+strconv.Itoa(txns), "--time=0", "--report-interval=0", "run")
			end := src.QueryString(b, "SELECT @@gtid_binlog_pos")
			n := gtidSeq(b, src) - from

			start, nativeCPU := time.Now(), native.CPU(b)
			native.Exec(b, "START SLAVE")
			waitNative(b, native, end)
			nat := time.Since(start)
			nativeCPU = native.CPU(b) - nativeCPU
			native.Exec(b, "STOP SLAVE")

			var sl run
			targetCPU := target.CPU(b)
			if p := os.Getenv("BENCH_CPUPROFILE"); p != "" && i == 0 {
				sl = runSluiceProfiled(b, cfgPath, p)
			} else {
				sl = runSluice(b, cfgPath)
			}
			targetCPU = target.CPU(b) - targetCPU
			if a, c, d := src.Checksums(b, tableNames...), native.Checksums(b, tableNames...), target.Checksums(b, tableNames...); a != c || a != d {
				b.Fatalf("the replicas differ from the source:\nsource %s\nnative %s\nsluice %s", a, c, d)
			}
			nr, sr := float64(n)/nat.Seconds(), float64(n)/sl.wall.Seconds()
			nativeRates, sluiceRates, ratios = append(nativeRates, nr), append(sluiceRates, sr), append(ratios, sr/nr)
			// CPU per 1,000 transactions: the replica server's for native,
			// the target server's and sluice's own for sluice.
			perK := func(d time.Duration) float64 { return d.Seconds() * 1000 / float64(n) }
			report(b, "catch-up run %d: %d txns; native %.1fs %.0f txn/s; sluice %.1fs %.0f txn/s (cpu %.0f%% of one core, max RSS %.0f MiB); ratio %.2f; "+
				"CPU s per 1k txns: native replica %.2f, sluice's target %.2f + sluice %.2f",
				i+1, n, nat.Seconds(), nr, sl.wall.Seconds(), sr, 100*sl.cpu.Seconds()/sl.wall.Seconds(), sl.maxRSSMiB, sr/nr,
				perK(nativeCPU), perK(targetCPU), perK(sl.cpu))
		}
	}
	b.ReportMetric(median(sluiceRates), "sluice-txn/s")
	b.ReportMetric(median(nativeRates), "native-txn/s")
	b.ReportMetric(median(ratios), "ratio")
	report(b, "CATCH-UP (%d tables x %d rows, %d txns, %d threads, median of %d): native %.0f txn/s, sluice %.0f txn/s, ratio sluice/native %.2f",
		tables, rows, txns, threads, runs, median(nativeRates), median(sluiceRates), median(ratios))
}

// gtidSeq is the sequence number of the source's last GTID (domain 0).
func gtidSeq(b *testing.B, m *testenv.MariaDB) int64 {
	s := m.QueryString(b, "SELECT @@gtid_binlog_pos")
	if s == "" {
		return 0
	}
	i := strings.LastIndexByte(s, '-')
	n, err := strconv.ParseInt(s[i+1:], 10, 64)
	if err != nil {
		b.Fatalf("gtid %q: %v", s, err)
	}
	return n
}

// BenchmarkLargeTransaction: one UPDATE of BENCH_ROWS rows applied by the
// native replica and by sluice (rows/s), then sluice's peak RSS on one
// INSERT of BENCH_BIG_ROWS rows.
func BenchmarkLargeTransaction(b *testing.B) {
	rows, bigRows, runs := envInt("BENCH_ROWS", 300000), envInt("BENCH_BIG_ROWS", 1000000), envInt("BENCH_RUNS", 3)
	src, native, target := servers(b)
	src.Exec(b, "CREATE DATABASE big",
		"CREATE TABLE big.t (id INT PRIMARY KEY, k INT NOT NULL, v VARCHAR(64) NOT NULL, KEY (k))",
		fmt.Sprintf("INSERT INTO big.t SELECT seq, seq, CONCAT('value ', seq) FROM big.seq_1_to_%d", rows))
	cfgPath := pipeline(b, src, target, "big.*")
	startNative(b, src, native)
	waitNative(b, native, src.QueryString(b, "SELECT @@gtid_binlog_pos"))
	native.Exec(b, "STOP SLAVE")
	runSluice(b, cfgPath)
	var nativeRates, sluiceRates, ratios []float64
	for b.Loop() {
		for i := range runs {
			src.Exec(b, "UPDATE big.t SET k = k + 1, v = CONCAT(v, '.')")
			end := src.QueryString(b, "SELECT @@gtid_binlog_pos")
			start := time.Now()
			native.Exec(b, "START SLAVE")
			waitNative(b, native, end)
			nat := time.Since(start)
			native.Exec(b, "STOP SLAVE")
			sl := runSluice(b, cfgPath)
			if a, c, d := src.Checksums(b, "big.t"), native.Checksums(b, "big.t"), target.Checksums(b, "big.t"); a != c || a != d {
				b.Fatalf("the replicas differ from the source:\nsource %s\nnative %s\nsluice %s", a, c, d)
			}
			nr, sr := float64(rows)/nat.Seconds(), float64(rows)/sl.wall.Seconds()
			nativeRates, sluiceRates, ratios = append(nativeRates, nr), append(sluiceRates, sr), append(ratios, sr/nr)
			report(b, "large UPDATE run %d: %d rows; native %.1fs %.0f rows/s; sluice %.1fs %.0f rows/s (max RSS %.0f MiB); ratio %.2f",
				i+1, rows, nat.Seconds(), nr, sl.wall.Seconds(), sr, sl.maxRSSMiB, sr/nr)
		}
	}
	report(b, "LARGE UPDATE (%d rows, median of %d): native %.0f rows/s, sluice %.0f rows/s, ratio sluice/native %.2f",
		rows, runs, median(nativeRates), median(sluiceRates), median(ratios))
	b.ReportMetric(median(ratios), "ratio")

	// Peak RSS on one transaction of bigRows rows.
	src.Exec(b, "CREATE TABLE big.m (id INT PRIMARY KEY, k INT NOT NULL, v VARCHAR(64) NOT NULL)",
		fmt.Sprintf("INSERT INTO big.m SELECT seq, seq, CONCAT('value ', seq) FROM big.seq_1_to_%d", bigRows))
	sl := runSluice(b, cfgPath)
	if a, d := src.Checksums(b, "big.m"), target.Checksums(b, "big.m"); a != d {
		b.Fatalf("big.m differs: source %s, sluice %s", a, d)
	}
	report(b, "MEMORY: one %d-row INSERT transaction: sluice applied it in %.1fs (%.0f rows/s) with peak RSS %.0f MiB",
		bigRows, sl.wall.Seconds(), float64(bigRows)/sl.wall.Seconds(), sl.maxRSSMiB)
	b.ReportMetric(sl.maxRSSMiB, "peak-RSS-MiB")
}

// BenchmarkLag: commit-to-visible lag while the source takes a steady
// BENCH_LAG_RATE txn/s (sysbench --rate) for BENCH_LAG_SECONDS, measured
// by a probe row committed on the source every 10ms and polled on sluice's
// target.
func BenchmarkLag(b *testing.B) {
	rate, seconds := envInt("BENCH_LAG_RATE", 1000), envInt("BENCH_LAG_SECONDS", 30)
	src, _, target := servers(b)
	src.Exec(b, "CREATE DATABASE sbtest", "CREATE TABLE sbtest.probe (id INT PRIMARY KEY, at BIGINT NOT NULL)")
	sysbench(b, src, "--tables=4", "--table-size=10000", "--threads=4", "prepare")
	cfgPath := pipeline(b, src, target, "sbtest.*")
	runSluice(b, cfgPath)
	for b.Loop() {
		logPath := filepath.Join(filepath.Dir(cfgPath), "sluice.log")
		f, _ := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		cmd := exec.Command(sluiceBin, "run", "-c", cfgPath)
		cmd.Stdout, cmd.Stderr = f, f
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		load := exec.Command("sysbench", "oltp_write_only", "--db-driver=mysql", "--mysql-host=127.0.0.1", "--mysql-port="+strconv.Itoa(src.Port),
			"--mysql-user=root", "--mysql-password=", "--mysql-db=sbtest", "--tables=4", "--table-size=10000", "--threads=4",
			"--rate="+strconv.Itoa(rate), "--time="+strconv.Itoa(seconds), "--report-interval=0", "run")
		loadOut, _ := os.Create(filepath.Join(filepath.Dir(cfgPath), "sysbench.log"))
		load.Stdout, load.Stderr = loadOut, loadOut
		if err := load.Start(); err != nil {
			b.Fatal(err)
		}
		srcDB, dstDB := src.DB(b), target.DB(b)
		var lags []float64
		deadline := time.Now().Add(time.Duration(seconds) * time.Second)
		for id := 1; time.Now().Before(deadline); id++ {
			if _, err := srcDB.Exec("INSERT INTO sbtest.probe VALUES (?, 0)", id); err != nil {
				b.Fatal(err)
			}
			committed := time.Now()
			for {
				var n int
				if err := dstDB.QueryRow("SELECT COUNT(*) FROM sbtest.probe WHERE id = ?", id).Scan(&n); err != nil {
					b.Fatal(err)
				}
				if n == 1 {
					break
				}
				if time.Since(committed) > time.Minute {
					b.Fatalf("probe %d not visible on the target after a minute", id)
				}
				time.Sleep(time.Millisecond)
			}
			lags = append(lags, float64(time.Since(committed).Microseconds())/1000)
			time.Sleep(10 * time.Millisecond)
		}
		load.Wait()
		loadOut.Close()
		_ = cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		f.Close()
		// The rate sysbench reached: on a loaded machine it can fall short
		// of --rate, and the lag with it.
		reached := "?"
		if out, err := os.ReadFile(loadOut.Name()); err == nil {
			if m := regexp.MustCompile(`transactions:\s+\d+\s+\(([\d.]+) per sec`).FindSubmatch(out); m != nil {
				reached = string(m[1])
			}
		}
		slices.Sort(lags)
		p := func(q float64) float64 { return lags[int(q*float64(len(lags)-1))] }
		report(b, "LAG at %d txn/s for %ds (sysbench --rate, 4 threads, reached %s txn/s; %d probes): p50 %.1f ms, p99 %.1f ms, max %.1f ms",
			rate, seconds, reached, len(lags), p(0.5), p(0.99), lags[len(lags)-1])
		b.ReportMetric(p(0.5), "p50-ms")
		b.ReportMetric(p(0.99), "p99-ms")
	}
}
