package difftest

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-cdc/sluice/binlog/schema"
	"github.com/sluice-cdc/sluice/internal/testenv"
	"github.com/sluice-cdc/sluice/replicator"
)

// peerResult is what one peer script did.
type peerResult struct {
	script   string
	rejected int // statements the source rejected
	tables   int // tables compared
	unread   int // tables neither server can read
	unparsed int // DDL the schema tracker could not parse (resolved or skipped)
	differ   []string
	stop     string // why the pipeline stopped, "" when it ran to the end
}

// TestPeers runs every .sql file of $SLUICE_PEERS_DIR (scripts/peers.sh
// extracts them from Debezium's, Maxwell's and python-mysql-replication's
// test suites) on a source with an empty binlog, replicates it with one
// pipeline (ddl: apply, on_conflict: stop) as `sluice run --stop-at-end`
// does, and compares every table of every database with Compare. Statements
// the source itself rejects are counted, not failures. The test fails for
// every table that differs and every stop, and logs a summary.
//
// It is not part of make test (it needs the peers' scripts): run
// scripts/peers.sh. SLUICE_PEERS_RUN=REGEXP picks scripts by name,
// SLUICE_PEERS_VERBOSE=1 logs what the source rejected and sluice's
// warnings.
func TestPeers(t *testing.T) {
	dir := os.Getenv("SLUICE_PEERS_DIR")
	if dir == "" {
		t.Skip("SLUICE_PEERS_DIR is not set: scripts/peers.sh runs this test")
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.sql"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no .sql files in %s (%v)", dir, err)
	}
	if re := os.Getenv("SLUICE_PEERS_RUN"); re != "" {
		pick := regexp.MustCompile(re)
		files = slices.DeleteFunc(files, func(f string) bool { return !pick.MatchString(filepath.Base(f)) })
	}
	if _, err := exec.LookPath("mariadb"); err != nil {
		t.Fatalf("the mariadb client is needed to run the scripts: %v", err)
	}
	// SLUICE_PEERS_SOURCE_ARGS and SLUICE_PEERS_TARGET_ARGS are extra
	// mariadbd options, e.g. --lower-case-table-names=1.
	p := &peers{
		src: testenv.StartMariaDB(t, testenv.MariaDBOptions{Args: strings.Fields(os.Getenv("SLUICE_PEERS_SOURCE_ARGS"))}),
		dst: testenv.StartMariaDB(t, testenv.MariaDBOptions{Args: strings.Fields(os.Getenv("SLUICE_PEERS_TARGET_ARGS"))}),
	}
	var out []peerResult
	for i, f := range files {
		r := p.run(t, i, f)
		out = append(out, r)
		for _, d := range r.differ {
			t.Errorf("%s: %s", r.script, d)
		}
		if r.stop != "" {
			t.Errorf("%s: the pipeline stopped: %s", r.script, r.stop)
		}
	}
	var tables, unread, unparsed, rejected, silent, stopped, stoppedScripts, cleanScripts int
	var b strings.Builder
	for _, r := range out {
		tables += r.tables
		unread += r.unread
		rejected += r.rejected
		if r.stop != "" {
			stoppedScripts++
			stopped += len(r.differ)
		} else {
			silent += len(r.differ)
		}
		if r.stop == "" && len(r.differ) == 0 {
			cleanScripts++
		}
		unparsed += r.unparsed
		fmt.Fprintf(&b, "%-55s tables %3d  differ %2d  rejected %3d  unparsed %2d  %s\n", r.script, r.tables, len(r.differ), r.rejected, r.unparsed, firstLine(r.stop))
	}
	t.Logf("per script:\n%s", b.String())
	t.Logf("%d scripts (%d clean, %d stopped), %d tables compared, %d differ silently, %d differ after a stop; "+
		"%d statements rejected by the source, %d tables neither server can read, %d DDL the schema tracker could not parse",
		len(out), cleanScripts, stoppedScripts, tables, silent, stopped, rejected, unread, unparsed)
}

type peers struct {
	src, dst *testenv.MariaDB
}

var mariadbError = regexp.MustCompile(`(?m)^ERROR \d+`)

// run replays one script and compares.
func (p *peers) run(t *testing.T, n int, file string) peerResult {
	t.Helper()
	r := peerResult{script: filepath.Base(file)}
	ctx := context.Background()
	p.reset(t, file)
	script, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	// The peers run their scripts in a database of the test's own.
	db := strings.ToLower(strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, strings.TrimSuffix(r.script, ".sql")))
	in := append([]byte("CREATE DATABASE `"+db+"`;\nUSE `"+db+"`;\n"), script...)
	cmd := exec.Command("mariadb", "--no-defaults", "--force", "--default-character-set=utf8mb4",
		"-h127.0.0.1", "-P"+strconv.Itoa(p.src.Port), "-uroot")
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = nil, &stderr
	_ = cmd.Run() // --force: errors are counted below
	r.rejected = len(mariadbError.FindAllIndex(stderr.Bytes(), -1))
	if os.Getenv("SLUICE_PEERS_VERBOSE") != "" && stderr.Len() > 0 {
		t.Logf("%s: the source rejected:\n%s", r.script, stderr.String())
	}

	cfg := testenv.LoadConfig(t, fmt.Sprintf(`
http: {listen: "off"}
pipelines:
  - name: peers%d
    sources:
      - {name: src, dsn: %q, start: oldest}
    sink: {type: mysql, dsn: %q, ddl: apply, on_conflict: stop}
`, n, p.src.DSN(), p.dst.DSN()))
	var logs syncBuffer
	rctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	rep, err := replicator.New(cfg, replicator.Options{StopAtEnd: true,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.Run(rctx); err != nil {
		r.stop = err.Error()
	}
	r.unparsed = strings.Count(logs.String(), "schema tracker cannot parse")
	if os.Getenv("SLUICE_PEERS_VERBOSE") != "" && logs.Len() > 0 {
		t.Logf("%s: sluice's warnings:\n%s", r.script, logs.String())
	}

	srcDB, dstDB := p.src.DB(t), p.dst.DB(t)
	dbs, dstDBs := userDatabases(t, srcDB), userDatabases(t, dstDB)
	for _, d := range dstDBs {
		if d != "sluice" && !slices.Contains(dbs, d) {
			r.differ = append(r.differ, "database "+d+" on the target only")
		}
	}
	for _, d := range dbs {
		var count int
		if err := srcDB.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE <> 'VIEW'", d).Scan(&count); err != nil {
			t.Fatal(err)
		}
		r.tables += count
		ms, err := Compare(ctx, srcDB, dstDB, d)
		if err != nil {
			r.differ = append(r.differ, fmt.Sprintf("database %s: compare: %v", d, err))
			continue
		}
		for _, m := range ms {
			if m.What == Unreadable {
				r.unread++
				r.tables--
				continue
			}
			r.differ = append(r.differ, d+"."+m.String())
		}
	}
	return r
}

// reset gives both servers empty user databases and the source an empty
// binlog; a script that sets global variables gets a restarted source.
func (p *peers) reset(t *testing.T, file string) {
	t.Helper()
	ctx := context.Background()
	script, _ := os.ReadFile(file)
	if regexp.MustCompile(`(?i)set\s+(global|@@global)`).Match(script) {
		if err := p.src.Stop(); err != nil {
			t.Fatal(err)
		}
		if err := p.src.Start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range []*testenv.MariaDB{p.src, p.dst} {
		db := m.DB(t)
		for _, d := range userDatabases(t, db) {
			if _, err := db.ExecContext(ctx, "DROP DATABASE "+ident(d)); err != nil {
				t.Fatalf("drop %s: %v", d, err)
			}
		}
	}
	p.src.Exec(t, "RESET MASTER")
}

// userDatabases lists the server's databases but its own.
func userDatabases(t *testing.T, db *sql.DB) []string {
	t.Helper()
	return slices.DeleteFunc(testenv.Rows(t, db, "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA ORDER BY 1",
		func(b []byte) string { return string(b) }), schema.IsSystemSchema)
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 160 {
		s = s[:160] + "..."
	}
	return s
}

// syncBuffer is a bytes.Buffer safe for the pipeline's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Len()
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
