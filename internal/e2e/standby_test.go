package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-cdc/sluice/internal/testenv"
	"github.com/sluice-cdc/sluice/replicator"
)

// TestStandbyTakeover runs three `sluice run` processes on one pipeline
// under a transfer load, and repeatedly kills (SIGKILL) or freezes
// (SIGSTOP, resumed later with SIGCONT) whichever is active. Exactly one
// applies at a time: a standby takes over within the lease TTL plus 5 s,
// a resumed frozen process stands down without committing anything, the
// target's checkpoint never decreases, the target never shows a torn
// transfer, and at the end source and target are equal with every
// transfer applied exactly once. All three share one server_id: standbys
// do not connect to the source, so they do not knock the active one off.
// (The fence itself is pinned by sinks/mysql TestLeaseFencing.)
func TestStandbyTakeover(t *testing.T) {
	servers := testenv.StartMariaDBs(t, 2)
	src, dst := servers[0], servers[1]
	src.Exec(t, testenv.LoadSchema("bank", 50)...)
	var total int64
	src.DB(t).QueryRow("SELECT SUM(balance) FROM bank.accounts").Scan(&total)
	const ttl = 3 * time.Second
	stateDir := t.TempDir()
	dir := t.TempDir()
	start := func(i int) *standbyProc {
		return startStandby(t, dir, i, func(port int) string {
			return fmt.Sprintf(`
state_dir: %s
http: {listen: "127.0.0.1:%d"}
pipelines:
  - name: bank
    lease_ttl: %s
    sources:
      - {name: primary, dsn: "%s", start: oldest, include: ["bank.*"], server_id: 7000}
    sink: {type: mysql, dsn: "%s"}
`, stateDir, port, ttl, src.DSN(), dst.DSN())
		})
	}
	// The target's checkpoint sequence number and the sum of balances,
	// sampled in one consistent read.
	var lastSeq uint64
	sample := func() {
		tx, err := dst.DB(t).Begin()
		if err != nil {
			return
		}
		defer tx.Rollback()
		var gtid string
		var sum int64
		if tx.QueryRow("SELECT gtid_set FROM sluice.checkpoint WHERE pipeline = 'bank'").Scan(&gtid) != nil {
			return
		}
		if err := tx.QueryRow("SELECT COALESCE(SUM(balance), 0) FROM bank.accounts").Scan(&sum); err == nil && sum != total && sum != 0 {
			t.Errorf("torn read on the target: sum of balances %d, want %d (checkpoint %s)", sum, total, gtid)
		}
		seq, _ := strconv.ParseUint(gtid[strings.LastIndex(gtid, "-")+1:], 10, 64)
		if seq < lastSeq {
			t.Errorf("the checkpoint went backwards: %d -> %d", lastSeq, seq)
		}
		lastSeq = seq
	}
	load := testenv.StartLoad(t, src, "bank", 4)
	procs, cur := takeoverRounds(t, dir, ttl, start, sample)
	load.Stop()
	// The active process catches up.
	want := src.QueryString(t, "SELECT @@gtid_binlog_pos")
	deadline := time.Now().Add(2 * time.Minute)
	for dst.QueryString(t, "SELECT gtid_set FROM sluice.checkpoint WHERE pipeline = 'bank'") != want {
		if time.Now().After(deadline) {
			t.Fatalf("did not catch up to %s:\n%s", want, logTail(t, cur.cfg, 30))
		}
		sample()
		time.Sleep(200 * time.Millisecond)
	}
	tables := testenv.LoadTables("bank")
	if a, b := src.Checksums(t, tables...), dst.Checksums(t, tables...); a != b {
		if os.Getenv("STANDBY_DIAG") != "" {
			out, _ := exec.Command("sh", "-c", "mariadb-binlog -vv --base64-output=decode-rows "+dst.Dir+"/data/bin.0* > /tmp/standby-dst-binlog.txt; cat "+dir+"/p*/sluice.log > /tmp/standby-logs.txt").CombinedOutput()
			t.Logf("diag: %s", out)
		}
		q := "SELECT kind, payload, n, COUNT(*) c FROM bank.events GROUP BY kind, payload, n ORDER BY 1, 2, 3"
		t.Fatalf("source %s\ntarget %s\nsource events:\n%s\ntarget events:\n%s", a, b, src.QueryString(t, "SELECT GROUP_CONCAT(CONCAT_WS(':', kind, payload, n, c) SEPARATOR ' ') FROM ("+q+") x"),
			dst.QueryString(t, "SELECT GROUP_CONCAT(CONCAT_WS(':', kind, payload, n, c) SEPARATOR ' ') FROM ("+q+") x"))
	}
	for _, p := range procs {
		b, _ := os.ReadFile(filepath.Join(filepath.Dir(p.cfg), "sluice.log"))
		if strings.Contains(string(b), "conflict") {
			t.Fatalf("a conflict was logged: a transaction was applied twice:\n%s", logTail(t, p.cfg, 40))
		}
	}
	out, code := sluice(t, "verify", "-c", cur.cfg)
	if code != 0 || strings.Count(out, "MATCH ") != 4 {
		t.Fatalf("sluice verify exit %d:\n%s", code, out)
	}
	t.Logf("%d transactions (%d transfers) applied exactly once across 8 takeovers", load.Txns.Load(), load.Transfers.Load())
}

// standbyProc is one `sluice run` process of a standby test.
type standbyProc struct {
	d    *daemon
	port int
	cfg  string
}

// startStandby writes process i's pipeline file, which yaml gives for the
// process's HTTP port, and starts the process.
func startStandby(t *testing.T, dir string, i int, yaml func(port int) string) *standbyProc {
	port := testenv.FreePort(t)
	cfg := filepath.Join(dir, fmt.Sprintf("p%d", i), "pipeline.yaml")
	if err := os.MkdirAll(filepath.Dir(cfg), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, []byte(yaml(port)), 0o600); err != nil {
		t.Fatal(err)
	}
	return &standbyProc{d: startDaemon(t, cfg), port: port, cfg: cfg}
}

// status is the process's first source's /status, if it answers.
func (p *standbyProc) status() (replicator.SourceStatus, bool) {
	c := http.Client{Timeout: 500 * time.Millisecond}
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/status", p.port))
	if err != nil {
		return replicator.SourceStatus{}, false
	}
	defer resp.Body.Close()
	var rep replicator.StatusReport
	if json.NewDecoder(resp.Body).Decode(&rep) != nil || len(rep.Sources) == 0 {
		return replicator.SourceStatus{}, false
	}
	return rep.Sources[0], true
}

// awaitActive waits for exactly one live process to report itself active
// and returns it, calling sample (the test's invariant checks) meanwhile.
func awaitActive(t *testing.T, dir string, procs []*standbyProc, within time.Duration, sample func()) *standbyProc {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		sample()
		var act []*standbyProc
		for _, p := range procs {
			if s, ok := p.status(); ok && s.Role == "active" && s.State == "streaming" {
				act = append(act, p)
			}
		}
		if len(act) > 1 {
			exec.Command("sh", "-c", "cat "+dir+"/p*/sluice.log > /tmp/standby-logs.txt").Run()
			t.Fatalf("%d processes report themselves active", len(act))
		}
		if len(act) == 1 {
			return act[0]
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("no process took over within %s:\n%s", within, logTail(t, procs[0].cfg, 20))
	return nil
}

// takeoverRounds starts three processes with start(0..2) and, in 8 rounds,
// kills (SIGKILL, then starts another) or freezes (SIGSTOP past the TTL,
// then SIGCONT) whichever is active. A standby must take over within the
// TTL plus 5 s, a resumed frozen process must stand down, and standbys
// must be healthy. It returns the live processes and the active one.
func takeoverRounds(t *testing.T, dir string, ttl time.Duration, start func(int) *standbyProc, sample func()) ([]*standbyProc, *standbyProc) {
	t.Helper()
	procs := []*standbyProc{start(0), start(1), start(2)}
	cur := awaitActive(t, dir, procs, 30*time.Second, sample)
	for _, p := range procs {
		// A standby waiting for the lease is healthy.
		if p != cur {
			if body := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/healthz", p.port)); strings.TrimSpace(body) != "ok" {
				t.Fatalf("a standby's /healthz: %q", body)
			}
		}
	}
	next := 3
	for round := range 8 {
		// Let it apply for a while.
		for range 10 {
			sample()
			time.Sleep(100 * time.Millisecond)
		}
		live := procs[:0:0]
		for _, p := range procs {
			if p != cur {
				live = append(live, p)
			}
		}
		stopped := time.Now()
		if round%2 == 0 {
			cur.d.kill()
			live = append(live, start(next))
			next++
		} else {
			// Freeze it past the TTL; a standby takes over meanwhile.
			cur.d.cmd.Process.Signal(syscall.SIGSTOP)
			took := awaitActive(t, dir, live, ttl+5*time.Second, sample)
			// Resumed, the old process must stand down, not write.
			cur.d.cmd.Process.Signal(syscall.SIGCONT)
			deadline := time.Now().Add(ttl + 5*time.Second)
			for {
				s, ok := cur.status()
				if ok && s.Role == "standby" {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("a resumed frozen process did not stand down: %+v\n%s", s, logTail(t, cur.cfg, 20))
				}
				sample()
				time.Sleep(100 * time.Millisecond)
			}
			live = append(live, cur)
			procs = live
			cur = took
			t.Logf("round %d: SIGSTOP, takeover after %s", round, time.Since(stopped).Round(100*time.Millisecond))
			continue
		}
		procs = live
		cur = awaitActive(t, dir, procs, ttl+5*time.Second, sample)
		t.Logf("round %d: SIGKILL, takeover after %s", round, time.Since(stopped).Round(100*time.Millisecond))
	}
	return procs, cur
}
