package e2e

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sluice-cdc/sluice/internal/testenv"
)

// TestReset: sluice reset refuses while a process runs the pipeline, moves
// the checkpoint to the source's current end (what was written meanwhile
// is not applied) or back to a GTID set (it is applied again), and rejects
// bad arguments with exit 2.
func TestReset(t *testing.T) {
	servers := testenv.StartMariaDBs(t, 2)
	src, dst := servers[0], servers[1]
	src.Exec(t, "CREATE DATABASE bank", "CREATE TABLE bank.t (id INT PRIMARY KEY)", "INSERT INTO bank.t VALUES (1)")
	cfgPath, httpPort := bankPipeline(t, src, dst)
	catchUp(t, cfgPath)

	d := startDaemon(t, cfgPath)
	deadline := time.Now().Add(2 * time.Minute)
	for !strings.Contains(httpGetOr(t, httpPort), `"role": "active"`) {
		if time.Now().After(deadline) {
			t.Fatalf("the daemon did not become active:\n%s", logTail(t, cfgPath, 20))
		}
		time.Sleep(100 * time.Millisecond)
	}
	out, code := sluice(t, "reset", "-c", cfgPath, "--pipeline", "bank", "--to", "current")
	if code != 1 || !strings.Contains(out, "holds its lease") {
		t.Fatalf("reset while running: exit %d:\n%s", code, out)
	}
	d.kill()

	before := src.QueryString(t, "SELECT @@gtid_binlog_pos")
	src.Exec(t, "INSERT INTO bank.t VALUES (2)")
	now := src.QueryString(t, "SELECT @@gtid_binlog_pos")
	out, code = sluice(t, "reset", "-c", cfgPath, "--pipeline", "bank", "--to", "current")
	if code != 0 || !strings.Contains(out, "bank/primary: checkpoint "+before+" -> "+now) {
		t.Fatalf("reset --to current: exit %d:\n%s", code, out)
	}
	src.Exec(t, "INSERT INTO bank.t VALUES (3)")
	catchUp(t, cfgPath)
	if got := dst.QueryString(t, "SELECT GROUP_CONCAT(id ORDER BY id) FROM bank.t"); got != "1,3" {
		t.Fatalf("after reset --to current, target rows %q, want 1,3 (2 was written before the reset point)", got)
	}

	out, code = sluice(t, "reset", "-c", cfgPath, "--pipeline", "bank", "--source", "primary", "--to", before)
	if code != 0 || !strings.Contains(out, "-> "+before) {
		t.Fatalf("reset --to %s: exit %d:\n%s", before, code, out)
	}
	dst.Exec(t, "DELETE FROM bank.t WHERE id = 3")
	catchUp(t, cfgPath)
	if got := dst.QueryString(t, "SELECT GROUP_CONCAT(id ORDER BY id) FROM bank.t"); got != "1,2,3" {
		t.Fatalf("after reset --to %s, target rows %q, want 1,2,3", before, got)
	}

	for _, args := range [][]string{
		{"--pipeline", "bank", "--to", "yesterday"},
		{"--pipeline", "nosuch", "--to", "current"},
		{"--pipeline", "bank", "--source", "nosuch", "--to", "current"},
		{"--pipeline", "bank"},
	} {
		out, code := sluice(t, append([]string{"reset", "-c", cfgPath}, args...)...)
		if code != 2 {
			t.Errorf("reset %v: exit %d, want 2:\n%s", args, code, out)
		}
	}
}

// httpGetOr is the daemon's /status, or "" while it does not answer.
func httpGetOr(t *testing.T, port int) string {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/status", port))
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
