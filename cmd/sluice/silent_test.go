package main

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// silentListener accepts connections and never says anything, like a
// black-holed proxy or a port of another protocol that waits for the
// client to speak first.
func silentListener(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String()
}

// TestDumpSilentServer: a dump against a port that accepts the connection
// but never answers ends with exit 2 and a message naming the address,
// within the connect timeout (default 10s), instead of hanging.
func TestDumpSilentServer(t *testing.T) {
	addr := silentListener(t)
	for _, dsn := range []string{
		"mysql://root:s3cret@" + addr,                 // default timeout
		"mysql://root:s3cret@" + addr + "?timeout=1s", // explicit
	} {
		t.Run(dsn, func(t *testing.T) {
			type result struct {
				errOut string
				code   int
			}
			res := make(chan result, 1)
			go func() {
				_, errOut, code := run(t, "dump", "--source", dsn, "--stop-at-end")
				res <- result{errOut, code}
			}()
			var r result
			select {
			case r = <-res:
			case <-time.After(2 * time.Minute): // a hang guard, not a timing assertion
				t.Fatal("sluice dump against a silent server did not return")
			}
			if r.code != exitUsage {
				t.Errorf("exit %d, want %d; stderr: %s", r.code, exitUsage, r.errOut)
			}
			if !strings.Contains(r.errOut, addr) || !strings.Contains(r.errOut, "timed out") {
				t.Errorf("stderr %q does not name %s and the timeout", r.errOut, addr)
			}
			if strings.Contains(r.errOut, "s3cret") {
				t.Errorf("stderr shows the password: %s", r.errOut)
			}
			fmt.Fprint(testWriter{t}, r.errOut)
		})
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
