package replicator

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The shipped alert rules and Grafana dashboard (monitoring/) load in
// promtool, their unit tests pass, every query is valid PromQL, and they
// name only series sluice exports, while the dashboard shows every one.
func TestMonitoring(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool not found: `make deps` installs it (Debian package prometheus)")
	}
	dir := filepath.Join("..", "monitoring")
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command(promtool, args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run("check", "rules", "alerts.yml")
	run("test", "rules", "alerts_test.yml")

	// The dashboard's queries, with Grafana's variables given values,
	// checked as recording rules: promtool parses each.
	b, err := os.ReadFile(filepath.Join(dir, "grafana-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			ID      int    `json:"id"`
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("grafana-dashboard.json: %v", err)
	}
	vars := strings.NewReplacer("$__rate_interval", "5m", "$pipeline", ".*", "$source", ".*")
	var rules strings.Builder
	rules.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	var dashExprs []string
	ids := map[int]bool{}
	for _, p := range dash.Panels {
		if ids[p.ID] {
			t.Errorf("panel %q: id %d used twice", p.Title, p.ID)
		}
		ids[p.ID] = true
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for i, q := range p.Targets {
			dashExprs = append(dashExprs, q.Expr)
			fmt.Fprintf(&rules, "      - record: panel_%d_%d\n        expr: %q\n", p.ID, i, vars.Replace(q.Expr))
		}
	}
	tmp := filepath.Join(t.TempDir(), "dashboard-rules.yml")
	if err := os.WriteFile(tmp, []byte(rules.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "check", "rules", tmp).CombinedOutput(); err != nil {
		t.Fatalf("a dashboard query is not valid PromQL: %v\n%s", err, out)
	}

	// Names: exported by NewMetrics, used by the dashboard.
	m := NewMetrics()
	m.init("p", "s")
	families, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var exported []string
	for _, f := range families {
		exported = append(exported, f.GetName())
	}
	alerts, err := os.ReadFile(filepath.Join(dir, "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	name := regexp.MustCompile(`\bsluice_[a-z_]+`)
	for file, text := range map[string]string{"alerts.yml": string(alerts), "grafana-dashboard.json": strings.Join(dashExprs, "\n")} {
		for _, n := range name.FindAllString(text, -1) {
			if !slices.Contains(exported, n) {
				t.Errorf("%s uses %s, which sluice does not export (it has %v)", file, n, exported)
			}
		}
	}
	shown := strings.Join(dashExprs, "\n")
	for _, n := range exported {
		if !strings.Contains(shown, n) {
			t.Errorf("the dashboard shows no panel of %s", n)
		}
	}
}
