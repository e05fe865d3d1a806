// Package demo is `make demo`: a source and a target MariaDB on throwaway
// ports, a pipeline between them, a write load, a kill -9 of sluice in the
// middle, and `sluice verify` at the end. It is a test so that the demo
// stays true: `make test` runs a short version of it.
//
//	make demo                      # 30 seconds of load, verbose
//	DEMO_SECONDS=120 make demo     # longer
//	DEMO_KEEP=1 make demo          # keep the servers until Ctrl-C
package demo

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-cdc/sluice/internal/testenv"
)

func say(format string, args ...any) {
	fmt.Printf("demo | "+format+"\n", args...)
}

func TestDemo(t *testing.T) {
	seconds := 8
	if s := os.Getenv("DEMO_SECONDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 4 {
			t.Fatalf("DEMO_SECONDS=%q: want a number of seconds, at least 4", s)
		}
		seconds = n
	}
	// make demo (DEMO_SECONDS set) keeps the pipeline file and sluice's log
	// for the reader; inside make test they go with the test.
	work := t.TempDir()
	if os.Getenv("DEMO_SECONDS") != "" {
		var err error
		if work, err = os.MkdirTemp("", "sluice-demo-"); err != nil {
			t.Fatal(err)
		}
		defer say("the pipeline file and sluice's log are kept in %s", work)
	}
	bin := filepath.Join(work, "sluice")
	say("building sluice")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/sluice").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}

	say("starting a source and a target MariaDB on throwaway ports")
	servers := testenv.StartMariaDBs(t, 2)
	src, dst := servers[0], servers[1]
	say("  source  %s   (mariadb -h127.0.0.1 -P%d -uroot)", src.DSN(), src.Port)
	say("  target  %s   (mariadb -h127.0.0.1 -P%d -uroot)", dst.DSN(), dst.Port)
	src.Exec(t, testenv.LoadSchema("bank", 50)...)

	port := testenv.FreePort(t)
	cfg := fmt.Sprintf(`# written by the demo
state_dir: %s/state
http:
  listen: 127.0.0.1:%d
pipelines:
  - name: bank
    sources:
      - name: primary
        dsn: %s
        include: ["bank.*"]
        start: oldest
    sink:
      type: mysql
      dsn: %s
      ddl: apply
      on_conflict: stop
`, work, port, src.DSN(), dst.DSN())
	cfgPath := filepath.Join(work, "pipeline.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	say("pipeline file %s:\n%s", cfgPath, indent(cfg))

	logPath := filepath.Join(work, "sluice.log")
	exited := map[*exec.Cmd]chan struct{}{} // closed once Wait returned
	start := func() *exec.Cmd {
		f, _ := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		cmd := exec.Command(bin, "run", "-c", cfgPath)
		cmd.Stdout, cmd.Stderr = f, f
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		exited[cmd] = done
		go func() { cmd.Wait(); f.Close(); close(done) }()
		return cmd
	}
	say("$ sluice run -c pipeline.yaml      (log: %s)", logPath)
	cmd := start()
	t.Cleanup(func() { cmd.Process.Kill() })

	before := seqNo(src.QueryString(t, "SELECT @@gtid_binlog_pos"))
	say("writing transfers, random row changes and deletes to the source with 4 connections for %ds", seconds)
	say("every 2s: the source's commits and binlog position (GTID), sluice's state and checkpoint, how far the checkpoint is behind the binlog, and what this sluice process applied since it started")
	load := testenv.StartLoad(t, src, "bank", 4)
	killed := false
	for elapsed := 0; elapsed < seconds; elapsed += 2 {
		time.Sleep(2 * time.Second)
		showStatus(t, port, src, load)
		if !killed && elapsed+2 >= seconds/2 {
			at := ""
			if st := status(port); st != nil && len(st.Sources) > 0 {
				at = " (its checkpoint was at " + st.Sources[0].CheckpointGTID + " a moment ago)"
			}
			say("kill -9 sluice in the middle of the load%s, and start it again", at)
			cmd.Process.Signal(syscall.SIGKILL)
			time.Sleep(300 * time.Millisecond)
			cmd = start()
			say("the new process resumes from the checkpoint in the target's sluice.checkpoint table; its own counters start at 0")
			killed = true
		}
	}
	load.Stop()
	logged := seqNo(src.QueryString(t, "SELECT @@gtid_binlog_pos")) - before
	say("load stopped: %d transactions committed on the source (%d transfers); %d of them wrote binlog events (GTIDs)",
		load.Txns.Load(), load.Transfers.Load(), logged)
	if n := load.Txns.Load() - logged; n > 0 {
		say("the other %d changed no row (a DELETE or UPDATE that matched nothing): MariaDB logs no event for them, so there is nothing to replicate", n)
	}

	// Wait until the daemon has applied everything, then stop it cleanly.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		st := status(port)
		if st != nil && len(st.Sources) > 0 && st.Sources[0].LagTransactions == 0 && st.Sources[0].State == "streaming" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sluice did not catch up; log:\n%s", tail(logPath))
		}
		time.Sleep(500 * time.Millisecond)
	}
	showStatus(t, port, src, load)
	say("caught up: the checkpoint equals the source's binlog position; SIGTERM: sluice finishes its transaction, checkpoints and exits")
	cmd.Process.Signal(syscall.SIGTERM)
	waitExit(t, exited[cmd])

	say("$ sluice verify -c pipeline.yaml")
	var out bytes.Buffer
	v := exec.Command(bin, "verify", "-c", cfgPath)
	v.Stdout, v.Stderr = &out, &out
	err := v.Run()
	fmt.Print(indent(out.String()))
	if err != nil {
		t.Fatalf("sluice verify: %v\nsluice log:\n%s", err, tail(logPath))
	}
	say("the target equals the source after a kill -9: nothing lost, nothing applied twice (the ledger table would collide)")

	if os.Getenv("DEMO_KEEP") != "" {
		cmd = start()
		say("DEMO_KEEP: sluice runs on; write to the source and watch the target. Ctrl-C ends the demo and removes the servers.")
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
		<-ch
		cmd.Process.Signal(syscall.SIGTERM)
		waitExit(t, exited[cmd])
	}
}

type statusReport struct {
	Sources []struct {
		State           string `json:"state"`
		Applied         uint64 `json:"transactions_applied"`
		Rows            uint64 `json:"rows_applied"`
		LagTransactions uint64 `json:"lag_transactions"`
		CheckpointGTID  string `json:"checkpoint_gtid"`
	} `json:"sources"`
}

func status(port int) *statusReport {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/status", port))
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var st statusReport
	if json.NewDecoder(resp.Body).Decode(&st) != nil {
		return nil
	}
	return &st
}

func showStatus(t *testing.T, port int, src *testenv.MariaDB, load *testenv.Load) {
	// The source's position read now, after sluice's status: never behind
	// the checkpoint it is compared with.
	st := status(port)
	binlogAt := src.QueryString(t, "SELECT @@gtid_binlog_pos")
	if st == nil || len(st.Sources) == 0 {
		say("  source txns %6d | sluice: (starting)", load.Txns.Load())
		return
	}
	s := st.Sources[0]
	behind := max(seqNo(binlogAt)-seqNo(s.CheckpointGTID), 0)
	say("  source: %6d txns committed, binlog at %-12s | sluice %-9s checkpoint %-12s %5d txns behind | this process applied %6d txns %7d rows",
		load.Txns.Load(), binlogAt, s.State, s.CheckpointGTID, behind, s.Applied, s.Rows)
}

// seqNo is the sequence number of a one-domain MariaDB GTID set (0-1-42: 42).
func seqNo(set string) int64 {
	i := strings.LastIndexByte(set, '-')
	n, _ := strconv.ParseInt(set[i+1:], 10, 64)
	return n
}

// waitExit waits for a process's Wait to return (exited is closed then).
func waitExit(t *testing.T, exited <-chan struct{}) {
	select {
	case <-exited:
	case <-time.After(15 * time.Second):
		t.Fatal("sluice did not exit after SIGTERM")
	}
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ") + "\n"
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 30 {
		lines = lines[len(lines)-30:]
	}
	return strings.Join(lines, "\n")
}
