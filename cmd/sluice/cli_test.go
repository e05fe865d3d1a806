package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCLIArguments: flags after positional arguments, the pipeline file as
// the argument, -q, --pipeline checked against the file, and exit codes
// (0 ok, 2 usage or configuration) the same on every subcommand.
func TestCLIArguments(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "p.yaml")
	os.WriteFile(cfg, []byte(`
http: {listen: "off"}
pipelines:
  - name: a
    sources:
      - {name: primary, dsn: "mysql://root@127.0.0.1:1"}
    sink: {type: mysql, dsn: "mysql://root@127.0.0.1:1"}
`), 0o600)
	empty := filepath.Join(dir, "empty.binlog")
	os.WriteFile(empty, []byte("\xfebin"), 0o600)
	tests := []struct {
		args   []string
		code   int
		stdout string // substring
		stderr string // substring
	}{
		{[]string{"check", cfg}, 0, "ok", ""},
		{[]string{"check", "-c", cfg}, 0, "ok", ""},
		{[]string{"check", cfg, cfg}, 2, "", "give the pipeline file once"},
		{[]string{"check"}, 2, "", "give the pipeline file once"},
		{[]string{"status", cfg, "--pipeline", "nosuch"}, 2, "", `no pipeline named "nosuch"`},
		{[]string{"verify", cfg, "-q", "--pipeline", "nosuch"}, 2, "", `no pipeline named "nosuch"`},
		{[]string{"reset", cfg, "--pipeline", "a", "--to", "yesterday"}, 2, "", `--to "yesterday"`},
		{[]string{"run", cfg, "--pipeline", "nosuch"}, 2, "", `no pipeline named "nosuch"`},
		{[]string{"run", "-c", cfg, "extra"}, 2, "", "unexpected arguments"},
		{[]string{"run", cfg, "--log-format", "xml"}, 2, "", `--log-format "xml"`},
		{[]string{"snapshot", cfg, "--pipeline", "nosuch"}, 2, "", `no pipeline named "nosuch"`},
		{[]string{"snapshot", "-c", cfg, "--readers", "0"}, 2, "", "--readers and --writers must be at least 1"},
		{[]string{"snapshot", cfg, "--log-level", "loud"}, 2, "", `--log-level "loud"`},
		{[]string{"reset", cfg, "--pipeline", "a", "--to", "current", "--log-level", "loud"}, 2, "", `--log-level "loud"`},
		// --log-level and --log-format on every subcommand.
		{[]string{"check", cfg, "--log-level", "debug", "--log-format", "json"}, 0, "ok", ""},
		{[]string{"check", cfg, "--log-format", "xml"}, 2, "", `--log-format "xml"`},
		{[]string{"status", cfg, "--log-level", "loud"}, 2, "", `--log-level "loud"`},
		{[]string{"verify", cfg, "--log-format", "xml"}, 2, "", `--log-format "xml"`},
		{[]string{"tail", "--url", "nats://127.0.0.1:1", "--stream", "s", "--log-level", "loud"}, 2, "", `--log-level "loud"`},
		{[]string{"dump", empty, "--log-level", "loud"}, 2, "", `--log-level "loud"`},
		// --pipeline repeatable and checked on reset too.
		{[]string{"reset", cfg, "--pipeline", "a", "--pipeline", "nosuch", "--to", "current"}, 2, "", `no pipeline named "nosuch"`},
		{[]string{"reset", cfg, "--pipeline", "a,b", "--source", "primary", "--to", "current"}, 2, "", "give one --pipeline"},
		// A binlog file followed by flags: the flags are parsed.
		{[]string{"dump", empty, "--format", "nosuch"}, 2, "", "--format"},
		{[]string{"dump", empty, "--nosuchflag"}, 2, "", "nosuchflag"},
	}
	for _, tt := range tests {
		stdout, stderr, code := run(t, tt.args...)
		if code != tt.code || !strings.Contains(stdout, tt.stdout) || !strings.Contains(stderr, tt.stderr) {
			t.Errorf("sluice %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(tt.args, " "), code, tt.code, stdout, stderr)
		}
	}
}
