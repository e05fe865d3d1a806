package replicator_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sluice-cdc/sluice/internal/testenv"
	"github.com/sluice-cdc/sluice/replicator"
)

// healthz returns /healthz's status code and body.
func healthz(addr string) (int, string) {
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// metric returns a series' value as /metrics prints it ("" when absent),
// e.g. metric(addr, `sluice_sink_up{pipeline="p",source="primary"}`).
func metric(addr, series string) string {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return v
		}
	}
	return ""
}

// waitFor polls cond until it holds; the bound is a hang guard only.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(3 * time.Minute); !cond(); time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestTargetDownAtStart: a pipeline whose target is down when sluice
// starts is retried (not dropped) and replicates once the target is up;
// meanwhile /healthz fails and names the pipeline.
func TestTargetDownAtStart(t *testing.T) {
	servers := testenv.StartMariaDBs(t, 2)
	src, dst := servers[0], servers[1]
	src.Exec(t, "CREATE DATABASE app", "CREATE TABLE app.t (id INT PRIMARY KEY, v VARCHAR(10))", "INSERT INTO app.t VALUES (1, 'a')")
	if err := dst.Stop(); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	cfg := testenv.LoadConfig(t, strings.Replace(pipelineYAML(src, dst, "", ""), `http: {listen: "off"}`, `http: {listen: "`+addr+`"}`, 1))
	ctx, cancel := context.WithCancel(context.Background())
	r, err := replicator.New(cfg, replicator.Options{Logger: testenv.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()

	var code int
	var body string
	waitUntil(t, "/healthz to report the target", func() bool {
		code, body = healthz(addr)
		return code == http.StatusServiceUnavailable && strings.Contains(body, "sink")
	})
	if !strings.Contains(body, "p/primary: reconnecting") {
		t.Errorf("/healthz body %q does not name the waiting pipeline", body)
	}
	select {
	case err := <-done:
		t.Fatalf("the run ended while the target was down: %v", err)
	default:
	}

	if err := dst.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	src.Exec(t, "INSERT INTO app.t VALUES (2, 'b')")
	waitUntil(t, "the rows on the target", func() bool {
		return dst.ExecErr("SELECT 1") == nil && dst.QueryString(t, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'app'") == "1" &&
			dst.QueryString(t, "SELECT COUNT(*) FROM app.t") == "2"
	})
	waitUntil(t, "/healthz ok", func() bool {
		code, body = healthz(addr)
		return code == http.StatusOK
	})

	// The target goes down mid-stream: the sink retries, and /healthz
	// says so until it is back.
	if err := dst.Stop(); err != nil {
		t.Fatal(err)
	}
	src.Exec(t, "INSERT INTO app.t VALUES (3, 'c')")
	waitUntil(t, "/healthz to report the retrying sink", func() bool {
		code, body = healthz(addr)
		return code == http.StatusServiceUnavailable && strings.Contains(body, "p/primary: reconnecting: sink: ")
	})
	sinkUp := `sluice_sink_up{pipeline="p",source="primary"}`
	waitUntil(t, "sluice_sink_up 0", func() bool { return metric(addr, sinkUp) == "0" })
	if err := dst.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the third row on the target", func() bool {
		return dst.ExecErr("SELECT 1") == nil && dst.QueryString(t, "SELECT COUNT(*) FROM app.t") == "3"
	})
	waitUntil(t, "/healthz ok again", func() bool {
		code, body = healthz(addr)
		return code == http.StatusOK
	})
	waitUntil(t, "sluice_sink_up 1", func() bool { return metric(addr, sinkUp) == "1" })
}
