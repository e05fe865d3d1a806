// Package e2e runs the sluice binary as a user would: as a separate
// process that is killed with SIGKILL, restarted, and checked.
package e2e

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-cdc/sluice/internal/testenv"
)

var sluiceBin string

func TestMain(m *testing.M) { testenv.RunWithSluice(m, &sluiceBin) }

// daemon is a `sluice run` process.
type daemon struct {
	t    *testing.T
	cmd  *exec.Cmd
	log  *os.File
	done chan error
}

func startDaemon(t *testing.T, cfgPath string, args ...string) *daemon {
	t.Helper()
	return startCommand(t, "run", cfgPath, args...)
}

// startCommand starts `sluice COMMAND -c cfgPath args...`, logging beside
// the file.
func startCommand(t *testing.T, command, cfgPath string, args ...string) *daemon {
	t.Helper()
	logPath := filepath.Join(filepath.Dir(cfgPath), "sluice.log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(sluiceBin, append([]string{command, "-c", cfgPath}, args...)...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &daemon{t: t, cmd: cmd, log: f, done: make(chan error, 1)}
	go func() { d.done <- cmd.Wait() }()
	t.Cleanup(func() { d.kill(); f.Close() })
	return d
}

func (d *daemon) kill() {
	if d.cmd.ProcessState == nil {
		_ = d.cmd.Process.Signal(syscall.SIGKILL)
		select {
		case <-d.done:
		case <-time.After(10 * time.Second):
		}
	}
}

// wait waits for the process to exit and returns its exit code.
func (d *daemon) wait(timeout time.Duration) int {
	d.t.Helper()
	select {
	case <-d.done:
		return d.cmd.ProcessState.ExitCode()
	case <-time.After(timeout):
		d.t.Fatalf("sluice did not exit within %s", timeout)
		return -1
	}
}

// sluice runs a sluice command and returns its output and exit code.
func sluice(t *testing.T, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(sluiceBin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil && cmd.ProcessState == nil {
		t.Fatal(err)
	}
	return out.String(), cmd.ProcessState.ExitCode()
}

func logTail(t *testing.T, cfgPath string, n int) string {
	b, _ := os.ReadFile(filepath.Join(filepath.Dir(cfgPath), "sluice.log"))
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "pipeline.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	// A failed test shows the end of sluice's log, and keeps all of it in
	// the folder SLUICE_E2E_LOGS names (the temporary folder goes).
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		t.Logf("sluice's log ends:\n%s", logTail(t, path, 40))
		if dir := os.Getenv("SLUICE_E2E_LOGS"); dir != "" {
			b, _ := os.ReadFile(filepath.Join(filepath.Dir(path), "sluice.log"))
			keep := filepath.Join(dir, strings.ReplaceAll(t.Name(), "/", "_")+time.Now().Format("-150405")+".log")
			if err := os.WriteFile(keep, b, 0o644); err == nil {
				t.Logf("sluice's whole log: %s", keep)
			}
		}
	})
	return path
}

func bankPipeline(t *testing.T, src, dst *testenv.MariaDB) (path string, httpPort int) {
	httpPort = testenv.FreePort(t)
	return writeConfig(t, fmt.Sprintf(`
http: {listen: "127.0.0.1:%d"}
pipelines:
  - name: bank
    sources:
      - {name: primary, dsn: "%s", start: oldest, include: ["bank.*"]}
    sink: {type: mysql, dsn: "%s"}
`, httpPort, src.DSN(), dst.DSN())), httpPort
}

// catchUp runs sluice with --stop-at-end and requires exit 0.
func catchUp(t *testing.T, cfgPath string) {
	t.Helper()
	d := startDaemon(t, cfgPath, "--stop-at-end")
	if code := d.wait(3 * time.Minute); code != 0 {
		t.Fatalf("sluice run --stop-at-end exited %d:\n%s", code, logTail(t, cfgPath, 30))
	}
}

// TestCrashSafety kills the daemon with SIGKILL at random points during a
// write load, 20 times, with parallel apply on (the default 4 workers).
// After the load stops and sluice catches up, source and target are
// identical, and no transaction was applied twice: each transfer inserts a
// ledger row with a unique id, so a replayed transfer would collide and
// stop the pipeline (on_conflict: stop). All along, a reader of the target
// never sees a torn state: transfers keep the sum of the balances, so any
// committed prefix of the source's transactions has the same sum.
func TestCrashSafety(t *testing.T) {
	servers := testenv.StartMariaDBs(t, 2)
	src, dst := servers[0], servers[1]
	const accounts = 50
	src.Exec(t, testenv.LoadSchema("bank", accounts)...)
	cfgPath, _ := bankPipeline(t, src, dst)
	load := testenv.StartLoad(t, src, "bank", 4)
	stopReading := make(chan struct{})
	torn := make(chan string, 1)
	reads := 0
	go func() {
		defer close(torn)
		db := dst.DB(t)
		for {
			select {
			case <-stopReading:
				return
			default:
			}
			var n, sum sql.NullInt64
			// One consistent snapshot: the count and the sum together.
			if err := db.QueryRow("SELECT COUNT(*), SUM(balance) FROM bank.accounts").Scan(&n, &sum); err != nil || n.Int64 == 0 {
				time.Sleep(5 * time.Millisecond)
				continue
			}
			reads++
			if n.Int64 != accounts || sum.Int64 != accounts*1000 {
				torn <- fmt.Sprintf("the target showed %d accounts with a total of %d (want %d and %d)", n.Int64, sum.Int64, accounts, accounts*1000)
				return
			}
		}
	}()
	kills := 0
	for i := range 20 {
		d := startDaemon(t, cfgPath)
		// Random points: from before the first transaction to mid-stream.
		time.Sleep(time.Duration(200+(i*337)%900) * time.Millisecond)
		if d.cmd.ProcessState != nil {
			t.Fatalf("sluice exited on its own:\n%s", logTail(t, cfgPath, 30))
		}
		d.kill()
		kills++
	}
	load.Stop()
	catchUp(t, cfgPath)
	close(stopReading)
	if msg, ok := <-torn; ok {
		t.Fatal(msg)
	}
	if reads == 0 {
		t.Fatal("the torn-read checker never read the target")
	}
	tables := testenv.LoadTables("bank")
	if a, b := src.Checksums(t, tables...), dst.Checksums(t, tables...); a != b {
		t.Fatalf("after %d kills: source %s\ntarget %s\n%s", kills, a, b, logTail(t, cfgPath, 20))
	}
	var srcLedger, dstLedger int64
	src.DB(t).QueryRow("SELECT COUNT(*) FROM bank.ledger").Scan(&srcLedger)
	dst.DB(t).QueryRow("SELECT COUNT(*) FROM bank.ledger").Scan(&dstLedger)
	if srcLedger != dstLedger || srcLedger < 50 {
		t.Fatalf("ledger rows: source %d, target %d", srcLedger, dstLedger)
	}
	log, _ := os.ReadFile(filepath.Join(filepath.Dir(cfgPath), "sluice.log"))
	if bytes.Contains(log, []byte("conflict")) {
		t.Fatalf("a conflict was logged: a transaction was applied twice:\n%s", logTail(t, cfgPath, 40))
	}
	// sluice verify agrees; then a changed target row is caught.
	out, code := sluice(t, "verify", "-c", cfgPath)
	if code != 0 || strings.Count(out, "MATCH ") != 4 {
		t.Fatalf("sluice verify exit %d:\n%s", code, out)
	}
	dst.Exec(t, "UPDATE bank.accounts SET balance = balance + 1 WHERE id = 7")
	out, code = sluice(t, "verify", "-c", cfgPath)
	if code != 1 || !strings.Contains(out, "MISMATCH  bank/primary bank.accounts -> bank.accounts: ") {
		t.Fatalf("sluice verify after a target change: exit %d:\n%s", code, out)
	}
	t.Logf("%d kills; %d transactions (%d transfers) written and replicated exactly once; %d consistent reads of the target", kills, load.Txns.Load(), load.Transfers.Load(), reads)
}

// TestServerRestarts restarts the target, then the source, under load,
// and adds a column on the source mid-load.
func TestServerRestarts(t *testing.T) {
	servers := testenv.StartMariaDBs(t, 2)
	src, dst := servers[0], servers[1]
	src.Exec(t, testenv.LoadSchema("bank", 50)...)
	cfgPath, httpPort := bankPipeline(t, src, dst)
	d := startDaemon(t, cfgPath)
	load := testenv.StartLoad(t, src, "bank", 3)
	time.Sleep(time.Second)

	// The target goes down for a while: sluice retries without losing or
	// duplicating anything.
	if err := dst.Stop(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	if err := dst.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)

	// A DDL on the source in the middle of the load.
	src.Exec(t, "ALTER TABLE bank.ledger ADD COLUMN note VARCHAR(20) DEFAULT 'added'")
	time.Sleep(time.Second)

	// The source goes down: sluice reconnects from its checkpoint.
	if err := src.Stop(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	if err := src.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	load.Stop()
	if d.cmd.ProcessState != nil {
		t.Fatalf("sluice exited:\n%s", logTail(t, cfgPath, 30))
	}
	// The operator's view while it runs: sluice status and /metrics.
	var out string
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var code int
		out, code = sluice(t, "status", "-c", cfgPath)
		if code != 0 {
			t.Fatalf("sluice status exit %d:\n%s", code, out)
		}
		if strings.Contains(out, "bank      primary  streaming") && strings.Contains(out, " 0         ") {
			break // reconnected and caught up: lag 0 transactions
		}
		if time.Now().After(deadline) {
			t.Fatalf("sluice status never showed a caught-up stream:\n%s", out)
		}
		time.Sleep(500 * time.Millisecond)
	}
	metrics := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/metrics", httpPort))
	for _, series := range []string{`sluice_transactions_applied_total{pipeline="bank",source="primary"}`, "sluice_lag_seconds", "sluice_lag_transactions",
		"sluice_checkpoint_age_seconds", "sluice_sink_retries_total", "sluice_source_bytes_read_total", "sluice_source_up"} {
		if !strings.Contains(metrics, series) {
			t.Errorf("/metrics lacks %s", series)
		}
	}
	// SIGTERM: finish the transaction in flight, checkpoint, exit 0 quickly.
	start := time.Now()
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	if code := d.wait(15 * time.Second); code != 0 {
		t.Fatalf("exit code %d after SIGTERM:\n%s", code, logTail(t, cfgPath, 30))
	}
	t.Logf("stopped %s after SIGTERM", time.Since(start).Round(time.Millisecond))
	catchUp(t, cfgPath)
	tables := testenv.LoadTables("bank")
	if a, b := src.Checksums(t, tables...), dst.Checksums(t, tables...); a != b {
		t.Fatalf("source %s\ntarget %s\n%s", a, b, logTail(t, cfgPath, 30))
	}
	if n := dst.QueryString(t, "SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA='bank' AND TABLE_NAME='ledger' AND COLUMN_NAME='note'"); n != "1" {
		t.Fatal("the ALTER TABLE did not reach the target")
	}
	t.Logf("%d transactions, %d write errors on the source during its restart", load.Txns.Load(), load.Errors.Load())
}
