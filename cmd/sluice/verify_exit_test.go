package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluice-cdc/sluice/internal/testenv"
)

// TestVerifyExitCodes: verify exits 2 with a message when it is asked for
// a pipeline that does not exist, or when it compared nothing because the
// pipelines' sinks cannot be compared; never 0 after comparing nothing.
func TestVerifyExitCodes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.yml")
	if err := os.WriteFile(path, []byte(`
http: {listen: "off"}
pipelines:
  - name: to_nats
    sources:
      - {name: a, dsn: "mysql://root@127.0.0.1:1"}
    sink: {type: nats, url: "nats://127.0.0.1:1"}
  - name: to_mysql
    sources:
      - {name: a, dsn: "mysql://root@127.0.0.1:1"}
    sink: {type: mysql, dsn: "mysql://root@127.0.0.1:2"}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown pipeline", []string{"--pipeline", "typo"}, `no pipeline named "typo" in ` + path + " (it has: to_nats, to_mysql)"},
		{"one known, one unknown", []string{"--pipeline", "to_nats,typo"}, `no pipeline named "typo"`},
		{"sink not comparable", []string{"--pipeline", "to_nats"}, "nothing compared: verify compares MySQL/MariaDB targets, and the sinks of to_nats (nats) cannot be compared"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errOut, code := run(t, append([]string{"verify", "-c", path}, tt.args...)...)
			if code != exitUsage || !strings.Contains(errOut, tt.want) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, errOut, exitUsage, tt.want)
			}
		})
	}
}

// TestVerifySequences: verify compares a sequence by its row, and exits 1
// when the target's has not moved with the source's.
func TestVerifySequences(t *testing.T) {
	servers := testenv.StartMariaDBs(t, 2)
	src, dst := servers[0], servers[1]
	for _, m := range servers {
		m.Exec(t, "CREATE DATABASE app", "CREATE SEQUENCE app.s CACHE 0", "CREATE SEQUENCE app.same", "CREATE TABLE app.t (id INT PRIMARY KEY)")
	}
	src.Exec(t, "DO NEXTVAL(app.s)")
	path := filepath.Join(t.TempDir(), "p.yml")
	if err := os.WriteFile(path, []byte(fmt.Sprintf(`
http: {listen: "off"}
pipelines:
  - name: p
    sources:
      - {name: a, dsn: %q, include: ["app.*"]}
    sink: {type: mysql, dsn: %q}
`, src.DSN(), dst.DSN())), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := run(t, "verify", "-c", path, "-q")
	for _, want := range []string{
		"MISMATCH  p/a app.s -> app.s: sequence next_not_cached_value: source 2, target 1\n",
		"MATCH     p/a app.same (1 rows, 1 chunks)\n",
		"3 table(s) compared, 1 differ\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if code != 1 {
		t.Errorf("exit %d, want 1; stderr %s", code, errOut)
	}
}
