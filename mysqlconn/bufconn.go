package mysqlconn

import (
	"bufio"
	"context"
	"errors"
	"net"
	"syscall"
)

// readBufferSize is how much a connection reads from its socket at once.
const readBufferSize = 64 << 10

// dialBuffered dials as the driver would, and reads through a buffer of
// readBufferSize. The driver (go-sql-driver/mysql) reads into a 4 KiB
// buffer, one system call each time it runs dry: reading a snapshot's
// result sets that way was a tenth of sluice's CPU. It has no setting for
// the size, hence this wrapper.
func dialBuffered(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return &bufferedConn{Conn: c, r: bufio.NewReaderSize(c, readBufferSize)}, nil
}

// bufferedConn is a net.Conn whose reads go through r.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

var errBuffered = errors.New("unread bytes from the server on an idle connection")

// SyscallConn gives the driver the socket for its check of an idle
// connection (a pooled one the server closed): with bytes already
// buffered, the connection is not idle, and the check fails as it would
// on reading them.
func (c *bufferedConn) SyscallConn() (syscall.RawConn, error) {
	if c.r.Buffered() > 0 {
		return nil, errBuffered
	}
	sc, ok := c.Conn.(syscall.Conn)
	if !ok {
		return nil, errors.New("no socket to check")
	}
	return sc.SyscallConn()
}
