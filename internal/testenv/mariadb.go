// Package testenv starts throwaway servers for sluice's tests: MariaDB
// instances with row-based binary logging, and NATS servers with JetStream.
// Every server gets its own temporary directory and port and is removed when
// the test (or the caller's Close) ends, also when the test fails.
//
// Only tests (and the demo, which is itself a test) import this package.
package testenv

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql" // database/sql driver for the harness's own queries
)

// MariaDBOptions configures one throwaway MariaDB instance.
type MariaDBOptions struct {
	// ServerID is the instance's server_id. Zero picks a unique one.
	ServerID uint32
	// DomainID is gtid_domain_id (default 0).
	DomainID uint32
	// Args are extra mariadbd command-line options, e.g. "--binlog-row-image=MINIMAL".
	Args []string
}

// MariaDB is one running (or stopped) throwaway mariadbd.
type MariaDB struct {
	Port     int
	ServerID uint32
	Dir      string // the instance's directory: data/, mariadbd.err, mariadbd.sock

	opts MariaDBOptions
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	dbs  []*sql.DB
}

var nextServerID atomic.Uint32

func init() { nextServerID.Store(uint32(100 + os.Getpid()%1000*10)) }

// StartMariaDB starts an instance for a test and stops it and removes its
// files when the test ends. It fails the test when the server cannot start.
func StartMariaDB(t testing.TB, opts MariaDBOptions) *MariaDB {
	t.Helper()
	m, err := NewMariaDB(context.Background(), opts)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("testenv: mariadbd on port %d, last lines of its error log:\n%s", m.Port, m.LogTail(20))
		}
		m.Close()
	})
	return m
}

// StartMariaDBs starts n instances in parallel with distinct server ids.
func StartMariaDBs(t testing.TB, n int) []*MariaDB {
	t.Helper()
	out := make([]*MariaDB, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { out[i], errs[i] = NewMariaDB(context.Background(), MariaDBOptions{}) })
	}
	wg.Wait()
	for i, m := range out {
		if m != nil {
			t.Cleanup(m.Close)
		}
		if errs[i] != nil {
			t.Fatalf("testenv: %v", errs[i])
		}
	}
	return out
}

// NewMariaDB installs a fresh data directory and starts mariadbd on a free
// port. The caller must Close it.
func NewMariaDB(ctx context.Context, opts MariaDBOptions) (*MariaDB, error) {
	if opts.ServerID == 0 {
		opts.ServerID = nextServerID.Add(1)
	}
	for _, bin := range []string{"mariadbd", "mariadb-install-db"} {
		if _, err := lookBin(bin); err != nil {
			return nil, fmt.Errorf("%s not found (install mariadb-server, or run `make test`, which does): %w", bin, err)
		}
	}
	// A short path: the unix socket path must stay under 108 bytes.
	dir, err := os.MkdirTemp("", "sluice-mdb-")
	if err != nil {
		return nil, err
	}
	m := &MariaDB{Dir: dir, ServerID: opts.ServerID, opts: opts}
	// Each instance gets its own tmpdir: instances sharing /tmp collide on
	// internal temporary table names and crash (seen with parallel
	// mariadb-install-db runs and information_schema queries).
	if err := os.MkdirAll(m.tmpDir(), 0o755); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	install, _ := lookBin("mariadb-install-db")
	args := []string{"--no-defaults", "--datadir=" + m.dataDir(), "--tmpdir=" + m.tmpDir(), "--auth-root-authentication-method=normal",
		"--skip-test-db", "--innodb-log-file-size=8M", "--innodb-buffer-pool-size=16M"}
	if os.Geteuid() == 0 {
		args = append(args, "--user=root")
	}
	if out, err := exec.CommandContext(ctx, install, args...).CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("mariadb-install-db: %w\n%s", err, out)
	}
	// A port picked by the kernel can be taken by someone else before mariadbd
	// binds it; try a few.
	for attempt := 0; ; attempt++ {
		m.Port, err = freePort()
		if err == nil {
			err = m.Start(ctx)
		}
		if err == nil {
			return m, nil
		}
		if attempt == 4 || !strings.Contains(m.LogTail(5), "Address already in use") {
			m.Close()
			return nil, err
		}
	}
}

func (m *MariaDB) dataDir() string { return filepath.Join(m.Dir, "data") }

func (m *MariaDB) tmpDir() string { return filepath.Join(m.Dir, "tmp") }

// Socket is the path of the server's unix socket.
func (m *MariaDB) Socket() string { return filepath.Join(m.Dir, "mariadbd.sock") }

// DSN is sluice's URL form for the root account (empty password).
func (m *MariaDB) DSN() string { return fmt.Sprintf("mysql://root@127.0.0.1:%d", m.Port) }

// UserDSN is the URL for another account.
func (m *MariaDB) UserDSN(user, password string) string {
	return fmt.Sprintf("mysql://%s:%s@127.0.0.1:%d", user, password, m.Port)
}

// DriverDSN is a go-sql-driver DSN for root, with the given database.
func (m *MariaDB) DriverDSN(db string) string {
	return fmt.Sprintf("root@tcp(127.0.0.1:%d)/%s?multiStatements=true&interpolateParams=true", m.Port, db)
}

// Start starts mariadbd on the instance's port and data directory and waits
// until it answers queries. It is used again after Stop or Kill.
func (m *MariaDB) Start(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd != nil {
		return fmt.Errorf("mariadbd on port %d is already running", m.Port)
	}
	bin, _ := lookBin("mariadbd")
	args := []string{
		"--no-defaults",
		"--datadir=" + m.dataDir(),
		"--tmpdir=" + m.tmpDir(),
		"--port=" + strconv.Itoa(m.Port),
		"--bind-address=127.0.0.1",
		"--socket=" + m.Socket(),
		"--pid-file=" + filepath.Join(m.Dir, "mariadbd.pid"),
		"--log-error=" + filepath.Join(m.Dir, "mariadbd.err"),
		"--log-bin=bin",
		"--binlog-format=ROW",
		"--server-id=" + strconv.FormatUint(uint64(m.ServerID), 10),
		"--gtid-domain-id=" + strconv.FormatUint(uint64(m.opts.DomainID), 10),
		"--innodb-log-file-size=8M",
		"--innodb-buffer-pool-size=32M",
		// Throwaway data: durability costs fsyncs that only slow tests down.
		"--innodb-flush-log-at-trx-commit=2",
		"--sync-binlog=0",
		"--skip-name-resolve",
		"--max-connections=500",
		"--performance-schema=OFF",
	}
	if os.Geteuid() == 0 {
		args = append(args, "--user=root")
	}
	args = append(args, m.opts.Args...)
	cmd := exec.Command(bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start mariadbd: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	m.cmd, m.done = cmd, done

	// A hang guard: InnoDB start-up on a loaded 2-core machine can be slow.
	deadline := time.Now().Add(3 * time.Minute)
	for {
		db, err := sql.Open("mysql", m.DriverDSN(""))
		if err == nil {
			err = db.PingContext(ctx)
			db.Close()
		}
		if err == nil {
			return nil
		}
		select {
		case <-done:
			m.cmd = nil
			return fmt.Errorf("mariadbd on port %d exited during start-up:\n%s", m.Port, m.LogTail(15))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(30 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("mariadbd on port %d not ready after 3 minutes: %v\n%s", m.Port, err, m.LogTail(15))
		}
	}
}

// Stop shuts the server down cleanly and waits for it to exit.
func (m *MariaDB) Stop() error { return m.signal(syscall.SIGTERM, 60*time.Second) }

// Kill stops the server with SIGKILL, as a crash or power loss would.
func (m *MariaDB) Kill() error { return m.signal(syscall.SIGKILL, 30*time.Second) }

// Pause freezes the server with SIGSTOP: its port still accepts
// connections (the kernel completes the TCP handshake) but nothing
// answers, as with a hung server or a black-holed network. Resume undoes it;
// Close works on a paused server.
func (m *MariaDB) Pause() error {
	if err := m.sendSignal(syscall.SIGSTOP); err != nil {
		return err
	}
	// The stop is asynchronous: wait until every thread is stopped.
	m.mu.Lock()
	pid := m.cmd.Process.Pid
	m.mu.Unlock()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", pid))
		stopped := len(tasks) > 0
		for _, f := range tasks {
			b, err := os.ReadFile(f)
			if i := bytes.LastIndexByte(b, ')'); err != nil || i < 0 || i+2 >= len(b) || b[i+2] != 'T' {
				stopped = false
				break
			}
		}
		if stopped {
			return nil
		}
	}
	return fmt.Errorf("mariadbd on port %d: not stopped 10s after SIGSTOP", m.Port)
}

// Resume continues a paused server.
func (m *MariaDB) Resume() error { return m.sendSignal(syscall.SIGCONT) }

func (m *MariaDB) sendSignal(sig syscall.Signal) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return fmt.Errorf("mariadbd on port %d is not running", m.Port)
	}
	return m.cmd.Process.Signal(sig)
}

func (m *MariaDB) signal(sig syscall.Signal, wait time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return nil
	}
	_ = m.cmd.Process.Signal(sig)
	_ = m.cmd.Process.Signal(syscall.SIGCONT) // a paused server handles SIGTERM only once continued
	select {
	case <-m.done:
	case <-time.After(wait):
		_ = m.cmd.Process.Kill()
		<-m.done
	}
	m.cmd = nil
	return nil
}

// Close stops the server and removes its files. It is safe to call twice.
func (m *MariaDB) Close() {
	for _, db := range m.dbs {
		db.Close()
	}
	m.dbs = nil
	_ = m.Kill()
	if m.Dir != "" {
		os.RemoveAll(m.Dir)
	}
}

// LogTail returns the last n lines of the server's error log.
func (m *MariaDB) LogTail(n int) string {
	b, _ := os.ReadFile(filepath.Join(m.Dir, "mariadbd.err"))
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// CPU is the CPU time (user + system) the running mariadbd has used so
// far, read from /proc: what a tool's work costs the server, whatever else
// runs on the machine.
func (m *MariaDB) CPU(t testing.TB) time.Duration {
	t.Helper()
	pid, err := os.ReadFile(filepath.Join(m.Dir, "mariadbd.pid"))
	if err != nil {
		t.Fatal(err)
	}
	stat, err := os.ReadFile("/proc/" + strings.TrimSpace(string(pid)) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	// The fields after the command name, which is in parentheses: utime
	// and stime are the 12th and 13th of them, in clock ticks (100 a
	// second on Linux).
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// DB opens a database/sql handle as root with multi-statements enabled. The
// handle is closed with the instance.
func (m *MariaDB) DB(t testing.TB) *sql.DB {
	t.Helper()
	db, err := sql.Open("mysql", m.DriverDSN(""))
	if err != nil {
		t.Fatal(err)
	}
	m.dbs = append(m.dbs, db)
	return db
}

// Exec runs each statement on a fresh root connection and fails the test on
// error. Statements run in one session, in order.
func (m *MariaDB) Exec(t testing.TB, stmts ...string) {
	t.Helper()
	if err := m.ExecErr(stmts...); err != nil {
		t.Fatal(err)
	}
}

// ExecErr is Exec without a test: it returns the first error.
func (m *MariaDB) ExecErr(stmts ...string) error {
	db, err := sql.Open("mysql", m.DriverDSN(""))
	if err != nil {
		return err
	}
	defer db.Close()
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	for _, s := range stmts {
		if _, err := conn.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("port %d: %s: %w", m.Port, s, err)
		}
	}
	return nil
}

// QueryString returns the first column of the first row of q, as text.
func (m *MariaDB) QueryString(t testing.TB, q string, args ...any) string {
	t.Helper()
	db, err := sql.Open("mysql", m.DriverDSN(""))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var s sql.NullString
	if err := db.QueryRow(q, args...).Scan(&s); err != nil {
		t.Fatalf("port %d: %s: %v", m.Port, q, err)
	}
	return s.String
}

// Checksums returns "table=checksum ..." for tables (CHECKSUM TABLE
// EXTENDED), "table=missing" for a table that does not exist.
func (m *MariaDB) Checksums(t testing.TB, tables ...string) string {
	t.Helper()
	db, err := sql.Open("mysql", m.DriverDSN(""))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var out []string
	for _, tb := range tables {
		var name string
		var sum *int64
		if err := db.QueryRow("CHECKSUM TABLE "+tb+" EXTENDED").Scan(&name, &sum); err != nil {
			t.Fatal(err)
		}
		if sum == nil {
			out = append(out, tb+"=missing")
			continue
		}
		out = append(out, fmt.Sprintf("%s=%d", tb, *sum))
	}
	return strings.Join(out, " ")
}

// BinlogFiles lists the server's binary logs (SHOW BINARY LOGS).
func (m *MariaDB) BinlogFiles(t testing.TB) []string {
	t.Helper()
	db, err := sql.Open("mysql", m.DriverDSN(""))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query("SHOW BINARY LOGS")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var files []string
	for rows.Next() {
		var name, size string
		if err := rows.Scan(&name, &size); err != nil {
			t.Fatal(err)
		}
		files = append(files, name)
	}
	return files
}

// BinlogPos is the server's current binlog position, file:pos.
func (m *MariaDB) BinlogPos(t testing.TB) string {
	t.Helper()
	var file, pos string
	var doDB, ignoreDB any
	if err := m.DB(t).QueryRow("SHOW MASTER STATUS").Scan(&file, &pos, &doDB, &ignoreDB); err != nil {
		t.Fatal(err)
	}
	return file + ":" + pos
}

// PurgeBinlogsTo purges the binary logs before file and waits until they
// are gone: MariaDB keeps a log until its binlog checkpoint is written, so a
// PURGE right after FLUSH BINARY LOGS may leave it in place.
func (m *MariaDB) PurgeBinlogsTo(t testing.TB, file string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		m.Exec(t, "PURGE BINARY LOGS TO '"+file+"'")
		if files := m.BinlogFiles(t); len(files) > 0 && files[0] >= file {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("binary logs before %s not purged after 30s", file)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func lookBin(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, d := range []string{"/usr/sbin", "/usr/local/sbin", "/usr/bin"} {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	return "", errors.New("not in PATH, /usr/sbin or /usr/local/sbin")
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Rows runs q on db and returns each row as its cells joined by ",",
// each cell written by cell (NULL as "NULL"), in the order the server
// returns them.
func Rows(t testing.TB, db *sql.DB, q string, cell func([]byte) string) []string {
	t.Helper()
	r, err := db.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cols, _ := r.Columns()
	var out []string
	for r.Next() {
		vals := make([][]byte, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := r.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		parts := make([]string, len(vals))
		for i, v := range vals {
			if v == nil {
				parts[i] = "NULL"
			} else {
				parts[i] = cell(v)
			}
		}
		out = append(out, strings.Join(parts, ","))
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
