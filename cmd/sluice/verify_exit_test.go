package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
