package testenv

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// NATS is a throwaway NATS server with JetStream: embedded from the
// nats-server module (a current version, with atomic batch publish), or the
// machine's nats-server binary run as a process (whatever version Debian
// ships), which a test can kill and restart.
type NATS struct {
	Port int
	Dir  string

	embedded *server.Server
	cmd      *exec.Cmd
	done     chan struct{}
	config   string // extra configuration for the binary
	binary   bool
}

// URL is the server's client URL.
func (n *NATS) URL() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.Port) }

// StartNATS starts an embedded nats-server with JetStream.
func StartNATS(t testing.TB) *NATS {
	t.Helper()
	n := &NATS{Dir: t.TempDir()}
	if err := n.startEmbedded(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Stop)
	return n
}

func (n *NATS) startEmbedded() error {
	opts := &server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: n.Dir, NoLog: true, NoSigs: true}
	if n.Port != 0 {
		opts.Port = n.Port
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return fmt.Errorf("nats-server: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(20 * time.Second) {
		return fmt.Errorf("nats-server not ready")
	}
	n.embedded = s
	n.Port = s.Addr().(*net.TCPAddr).Port
	return nil
}

// StartNATSBinary runs the nats-server binary with JetStream. config, if
// not empty, is added to its configuration file (e.g. accounts and
// permissions).
func StartNATSBinary(t testing.TB, config string) *NATS {
	t.Helper()
	if _, err := lookBin("nats-server"); err != nil {
		t.Fatalf("nats-server not found (install nats-server, or run `make test`, which does): %v", err)
	}
	n := &NATS{Dir: t.TempDir(), config: config, binary: true}
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	n.Port = port
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Stop)
	return n
}

// Start starts the server again after Stop or Kill, on the same port and
// store.
func (n *NATS) Start() error {
	if !n.binary {
		return n.startEmbedded()
	}
	bin, _ := lookBin("nats-server")
	conf := filepath.Join(n.Dir, "nats.conf")
	body := fmt.Sprintf("listen: 127.0.0.1:%d\njetstream { store_dir: %q }\n%s\n", n.Port, filepath.Join(n.Dir, "js"), n.config)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		return err
	}
	cmd := exec.Command(bin, "-c", conf)
	log, _ := os.OpenFile(filepath.Join(n.Dir, "nats.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("nats-server: %w", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); log.Close(); close(done) }()
	n.cmd, n.done = cmd, done
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(n.Port), time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-done:
			b, _ := os.ReadFile(filepath.Join(n.Dir, "nats.log"))
			return fmt.Errorf("nats-server exited: %s", b)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nats-server not ready on port %d", n.Port)
		}
	}
}

// Stop shuts the server down.
func (n *NATS) Stop() {
	if n.embedded != nil {
		n.embedded.Shutdown()
		n.embedded.WaitForShutdown()
		n.embedded = nil
		return
	}
	n.signal(syscall.SIGTERM)
}

// Kill stops a binary server with SIGKILL.
func (n *NATS) Kill() { n.signal(syscall.SIGKILL) }

func (n *NATS) signal(sig syscall.Signal) {
	if n.cmd == nil {
		return
	}
	_ = n.cmd.Process.Signal(sig)
	select {
	case <-n.done:
	case <-time.After(20 * time.Second):
		_ = n.cmd.Process.Kill()
		<-n.done
	}
	n.cmd = nil
}
