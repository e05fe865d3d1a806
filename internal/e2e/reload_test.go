package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-cdc/sluice/internal/testenv"
	"github.com/sluice-cdc/sluice/replicator"
)

// TestReload: SIGHUP with an invalid file keeps the running configuration
// and logs the errors; with a valid one, an unchanged pipeline keeps
// running (its counters go on), an added one starts, a changed one
// restarts from its checkpoint and a removed one stops.
func TestReload(t *testing.T) {
	servers := testenv.StartMariaDBs(t, 2)
	src, dst := servers[0], servers[1]
	src.Exec(t, "CREATE DATABASE a", "CREATE TABLE a.t (id INT PRIMARY KEY)", "CREATE DATABASE b", "CREATE TABLE b.t (id INT PRIMARY KEY)")
	port := testenv.FreePort(t)
	pipeline := func(name, db string, ttl string) string {
		return fmt.Sprintf(`
  - name: %s
    lease_ttl: %s
    sources: [{name: primary, dsn: %q, start: oldest, include: ["%s.*"]}]
    sink: {type: mysql, dsn: %q}`, name, ttl, src.DSN(), db, dst.DSN())
	}
	file := func(pipelines ...string) string {
		return fmt.Sprintf("http: {listen: \"127.0.0.1:%d\"}\npipelines:%s\n", port, strings.Join(pipelines, ""))
	}
	cfgPath := writeConfig(t, file(pipeline("pa", "a", "8s")))
	d := startDaemon(t, cfgPath)
	status := func() map[string]replicator.SourceStatus {
		out := map[string]replicator.SourceStatus{}
		var rep replicator.StatusReport
		if json.Unmarshal([]byte(httpGetOr(t, port)), &rep) == nil {
			for _, s := range rep.Sources {
				out[s.Pipeline] = s
			}
		}
		return out
	}
	waitFor := func(what string, ok func(map[string]replicator.SourceStatus) bool) map[string]replicator.SourceStatus {
		t.Helper()
		// A hang guard, not a timing assertion: generous for -race on a
		// loaded machine.
		deadline := time.Now().Add(2 * time.Minute)
		for {
			st := status()
			if ok(st) {
				return st
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: status %+v\n%s", what, st, logTail(t, cfgPath, 20))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	hup := func(body string) {
		t.Helper()
		if err := os.WriteFile(cfgPath, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		d.cmd.Process.Signal(syscall.SIGHUP)
	}
	streaming := func(name string, min uint64) func(map[string]replicator.SourceStatus) bool {
		return func(st map[string]replicator.SourceStatus) bool {
			s, ok := st[name]
			return ok && s.State == "streaming" && s.Applied >= min
		}
	}
	// Every documented series exists from the start, errors at 0.
	waitFor("pa starts", func(st map[string]replicator.SourceStatus) bool { _, ok := st["pa"]; return ok })
	metrics := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	for _, name := range []string{"sluice_transactions_applied_total", "sluice_rows_applied_total", "sluice_source_bytes_read_total",
		"sluice_ddl_total", "sluice_lag_seconds", "sluice_lag_transactions", "sluice_checkpoint_age_seconds",
		"sluice_sink_retries_total", "sluice_conflicts_total", "sluice_errors_total", "sluice_source_up"} {
		if !strings.Contains(metrics, name+`{pipeline="pa",source="primary"}`) {
			t.Errorf("/metrics lacks %s for pa/primary at start", name)
		}
	}
	if !strings.Contains(metrics, `sluice_errors_total{pipeline="pa",source="primary"} 0`) {
		t.Errorf("sluice_errors_total is not 0 at start")
	}
	src.Exec(t, "INSERT INTO a.t VALUES (1)", "INSERT INTO a.t VALUES (2)")
	before := waitFor("pa streams", streaming("pa", 2))["pa"].Applied

	// Invalid: rejected, nothing stops.
	hup(file(pipeline("pa", "a", "8s")) + "  - name: [broken\n")
	waitFor("the error is logged", func(map[string]replicator.SourceStatus) bool {
		return strings.Contains(logTail(t, cfgPath, 5), "the pipeline file has errors; keeping the running configuration")
	})
	src.Exec(t, "INSERT INTO a.t VALUES (3)")
	waitFor("pa still streams after a rejected reload", streaming("pa", before+1))

	// pa unchanged, pb added.
	hup(file(pipeline("pa", "a", "8s"), pipeline("pb", "b", "8s")))
	src.Exec(t, "INSERT INTO b.t VALUES (1)", "INSERT INTO a.t VALUES (4)")
	st := waitFor("pb starts, pa goes on", func(st map[string]replicator.SourceStatus) bool {
		return streaming("pb", 1)(st) && streaming("pa", before+2)(st)
	})
	waitRows(t, dst, "b.t", "1")
	paApplied := st["pa"].Applied

	// pa changed: it restarts from its checkpoint (its counter starts
	// again); pb removed: it stops. The reload is asynchronous: the insert
	// waits until the new pa runs, else the old one may apply it and the
	// new one has nothing to count.
	hup(file(pipeline("pa", "a", "9s")))
	waitFor("pa restarts, pb stops", func(st map[string]replicator.SourceStatus) bool {
		_, pb := st["pb"]
		pa, ok := st["pa"]
		return !pb && ok && pa.State == "streaming" && pa.Applied < paApplied
	})
	src.Exec(t, "INSERT INTO a.t VALUES (5)")
	waitFor("the restarted pa applies from its checkpoint", func(st map[string]replicator.SourceStatus) bool {
		return streaming("pa", 1)(st) && st["pa"].Applied < paApplied
	})
	waitRows(t, dst, "a.t", "5")
	// Idle and caught up: the checkpoint age stays 0 however long it idles.
	time.Sleep(3 * time.Second)
	idle := `sluice_checkpoint_age_seconds{pipeline="pa",source="primary"} 0`
	deadline := time.Now().Add(time.Minute)
	for m := ""; !strings.Contains(m, idle); m = httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/metrics", port)) {
		if time.Now().After(deadline) {
			t.Fatalf("an idle, caught-up pipeline's checkpoint age is not 0:\n%s", grepLines(m, "sluice_checkpoint_age_seconds"))
		}
		time.Sleep(200 * time.Millisecond)
	}
	if a, b := src.Checksums(t, "a.t", "b.t"), dst.Checksums(t, "a.t", "b.t"); a != b {
		t.Fatalf("source %s, target %s", a, b)
	}
}

// waitRows waits until table has n rows on m.
func waitRows(t *testing.T, m *testenv.MariaDB, table, n string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var got string
		if m.DB(t).QueryRow("SELECT COUNT(*) FROM "+table).Scan(&got) == nil && got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s has %q rows on port %d, want %s", table, got, m.Port, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
