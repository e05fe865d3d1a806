package mysqlconn

import (
	"bufio"
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"strings"
	"sync"
	"time"

	drv "github.com/go-sql-driver/mysql"
)

// MariaDB's bulk command, COM_STMT_BULK_EXECUTE (MariaDB 10.2 and later):
// one prepared single-row INSERT executed for many rows' parameters in
// one command, which the server runs as one statement. Against prepared
// multi-row INSERTs it spares the server the text of the statement with
// its values, which it builds for its binlog for every execution
// (Item_param::append_for_log: 9% of a target's CPU in a snapshot), and
// a round trip per few hundred rows.
//
// go-sql-driver/mysql has no bulk command, and no other maintained Go
// client has one, hence this code. A pool opened with OpenBulk keeps the
// driver for everything, and lets its connections also run the bulk
// command, from inside sql.Conn.Raw, directly on their socket: between
// two of the driver's commands a connection holds no unread byte, so the
// driver never sees the exchange. The connection asks for the command at
// its handshake (the MariaDB capability MARIADB_CLIENT_STMT_BULK_OPERATIONS,
// which the driver does not ask for), only when the server offers it and
// the connection is neither encrypted nor compressed (the bytes on the
// socket are then not the protocol's).

// Protocol constants (MariaDB's "client/server protocol" pages).
const (
	comStmtPrepare     = 0x16
	comStmtClose       = 0x19
	comStmtBulkExecute = 0xfa

	capMySQL        = 1 << 0 // CLIENT_MYSQL (CLIENT_LONG_PASSWORD): not a MariaDB client
	capProtocol41   = 1 << 9
	capSSL          = 1 << 11
	capDeprecateEOF = 1 << 24
	extBulk         = 1 << 2 // MARIADB_CLIENT_STMT_BULK_OPERATIONS (1 << 34), in the extended word

	bulkSendTypes = 128 // the command carries the parameters' types

	maxPacket = 1<<24 - 1
)

// Parameter types, as the driver sends them in COM_STMT_EXECUTE: the
// type, and 0x80 in the second byte for an unsigned integer.
const (
	TypeDouble   uint16 = 5
	TypeLongLong uint16 = 8
	TypeUnsigned uint16 = TypeLongLong | 0x8000
	TypeString   uint16 = 254
)

// Bulk knows the connections of a pool opened with OpenBulk that run the
// bulk command.
type Bulk struct{ conns sync.Map } // driver connection → *BulkConn

// OpenBulk is Open, for a pool whose connections run MariaDB's bulk
// command where the server offers it (Bulk.Conn).
func OpenBulk(ctx context.Context, d DSN, tweak func(*drv.Config)) (*sql.DB, *Bulk, error) {
	b := &Bulk{}
	db, err := open(ctx, d, tweak, b)
	if err != nil {
		return nil, nil, err
	}
	return db, b, nil
}

// Conn is the connection under the driver's connection dc (in
// sql.Conn.Raw) when it runs the bulk command, and nil otherwise.
func (b *Bulk) Conn(dc any) *BulkConn {
	if b == nil {
		return nil
	}
	if c, ok := b.conns.Load(dc); ok {
		return c.(*BulkConn)
	}
	return nil
}

// bulkable reports whether the connections of cfg can run the bulk
// command: what the driver writes to their sockets is the protocol.
func bulkable(cfg *drv.Config) bool {
	return cfg.TLS == nil && cfg.TLSConfig == "" && !strings.Contains(cfg.FormatDSN(), "compress=true")
}

type dialedKey struct{}

// bulkConnector records which socket each new driver connection has.
type bulkConnector struct {
	driver.Connector
	bulk *Bulk
}

func (c bulkConnector) Connect(ctx context.Context) (driver.Conn, error) {
	var dialed *BulkConn
	dc, err := c.Connector.Connect(context.WithValue(ctx, dialedKey{}, &dialed))
	if err == nil && dialed != nil && dialed.bulk {
		c.bulk.conns.Store(dc, dialed)
		dialed.forget = func() { c.bulk.conns.Delete(dc) }
	}
	return dc, err
}

// dialBulk is dialBuffered, for a BulkConn.
func dialBulk(cfg *drv.Config) func(context.Context, string, string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dialBuffered(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		bc := &BulkConn{bufferedConn: c.(*bufferedConn), readTimeout: cfg.ReadTimeout, writeTimeout: cfg.WriteTimeout}
		if p, ok := ctx.Value(dialedKey{}).(**BulkConn); ok {
			*p = bc
		}
		return bc, nil
	}
}

// BulkConn is a connection's socket, which also runs the bulk command.
// Its methods are only called inside sql.Conn.Raw (the driver is then
// idle on the connection); they fail with driver.ErrBadConn among their
// errors when the connection cannot be used again, which makes Raw drop
// it.
type BulkConn struct {
	*bufferedConn
	greeted, answered bool // the server's greeting read, the handshake response written
	offered           bool // the server offers the bulk command
	bulk              bool // the handshake asked for it
	deprecateEOF      bool
	readTimeout       time.Duration
	writeTimeout      time.Duration
	forget            func()
	seq               byte // the next packet's sequence number
}

// Read reads as the buffered connection does, noting first whether the
// server's greeting offers the bulk command.
func (c *BulkConn) Read(p []byte) (int, error) {
	if !c.greeted {
		c.greeted = true
		c.offered = offersBulk(c.r)
	}
	return c.r.Read(p)
}

// offersBulk reads, without consuming it, the server's greeting (Initial
// Handshake Packet): a MariaDB server leaves CLIENT_MYSQL out of its
// capabilities and puts its extended ones in the last 4 of the 10
// reserved bytes.
func offersBulk(r *bufio.Reader) bool {
	h, err := r.Peek(4)
	if err != nil {
		return false
	}
	n := int(h[0]) | int(h[1])<<8 | int(h[2])<<16
	if n > r.Size()-4 {
		return false
	}
	p, err := r.Peek(4 + n)
	if err != nil {
		return false
	}
	p = p[4:]
	if len(p) < 1 || p[0] != 10 {
		return false
	}
	end := 1
	for end < len(p) && p[end] != 0 {
		end++
	}
	pos := end + 1 + 4 + 8 + 1 // version, NUL, connection id, scramble, filler
	if len(p) < pos+2+1+2+2+1+10 {
		return false
	}
	caps := uint32(binary.LittleEndian.Uint16(p[pos:]))
	pos += 2 + 1 + 2 // capabilities (low), collation, status
	caps |= uint32(binary.LittleEndian.Uint16(p[pos:])) << 16
	pos += 2 + 1 + 6 // capabilities (high), auth data length, reserved
	ext := binary.LittleEndian.Uint32(p[pos:])
	return caps&capMySQL == 0 && ext&extBulk != 0
}

// Write writes as the connection does, adding the bulk command to the
// MariaDB capabilities the driver's handshake response asks for, when
// the server offers it. The response (sequence 1) starts with the
// capabilities; as a MariaDB client's (no CLIENT_MYSQL), its bytes 28 to
// 31 are the extended ones.
func (c *BulkConn) Write(p []byte) (int, error) {
	if !c.answered {
		c.answered = true
		if c.offered && len(p) >= 4+32 && p[3] == 1 {
			caps := binary.LittleEndian.Uint32(p[4:])
			if caps&capMySQL == 0 && caps&capProtocol41 != 0 && caps&capSSL == 0 {
				q := append([]byte(nil), p...)
				binary.LittleEndian.PutUint32(q[4+28:], binary.LittleEndian.Uint32(q[4+28:])|extBulk)
				c.bulk, c.deprecateEOF = true, caps&capDeprecateEOF != 0
				return c.Conn.Write(q)
			}
		}
	}
	return c.Conn.Write(p)
}

// Close forgets the connection and closes it.
func (c *BulkConn) Close() error {
	if c.forget != nil {
		c.forget()
	}
	return c.bufferedConn.Close()
}

// Prepare prepares query (COM_STMT_PREPARE) and returns the statement's
// id and number of parameters.
func (c *BulkConn) Prepare(ctx context.Context, query string) (id uint32, params int, err error) {
	err = c.command(ctx, func() error {
		p, err := c.exchange(append([]byte{comStmtPrepare}, query...))
		if err != nil {
			return err
		}
		if len(p) < 12 {
			return errMalformed
		}
		id = binary.LittleEndian.Uint32(p[1:])
		columns := int(binary.LittleEndian.Uint16(p[5:]))
		params = int(binary.LittleEndian.Uint16(p[7:]))
		// The definitions of the parameters, then of the columns, each
		// list ended by an EOF packet unless CLIENT_DEPRECATE_EOF.
		for _, n := range []int{params, columns} {
			if n == 0 {
				continue
			}
			if !c.deprecateEOF {
				n++
			}
			for range n {
				if _, err := c.readPacket(); err != nil {
					return err
				}
			}
		}
		return nil
	})
	return id, params, err
}

// Execute runs a bulk command cmd holds (BulkCommand) and returns the
// rows it affected.
func (c *BulkConn) Execute(ctx context.Context, cmd *BulkCommand) (affected uint64, err error) {
	err = c.command(ctx, func() error {
		p, err := c.exchange(cmd.b)
		if err != nil {
			return err
		}
		n, _, ok := lenenc(p[1:])
		if !ok {
			return errMalformed
		}
		affected = n
		return nil
	})
	return affected, err
}

// CloseStmt deallocates statement id (COM_STMT_CLOSE: the server does
// not answer).
func (c *BulkConn) CloseStmt(ctx context.Context, id uint32) error {
	return c.command(ctx, func() error {
		return c.writeCommand(binary.LittleEndian.AppendUint32([]byte{comStmtClose}, id))
	})
}

var errMalformed = errors.New("malformed packet from the server")

// command runs f, one command and its answer, within the connection's
// timeouts and ctx. An error other than the server's refusal (an ERR
// packet) leaves the connection in an unknown state: it is marked bad.
func (c *BulkConn) command(ctx context.Context, f func() error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { _ = c.Conn.SetDeadline(time.Unix(1, 0)) })
	err := f()
	if !stop() {
		err = context.Cause(ctx)
	}
	_ = c.Conn.SetDeadline(time.Time{})
	var me *drv.MySQLError
	if err != nil && !errors.As(err, &me) {
		err = badConn{err}
	}
	return err
}

// badConn is an error after which the connection cannot be used again:
// it is also driver.ErrBadConn, for which database/sql drops a connection
// whose Raw returns it. Its message is its cause's.
type badConn struct{ err error }

func (e badConn) Error() string   { return e.err.Error() }
func (e badConn) Unwrap() []error { return []error{e.err, driver.ErrBadConn} }

// exchange writes a command and reads the first packet of its answer,
// which must be an OK one (0x00; an ERR packet is the server's error).
func (c *BulkConn) exchange(payload []byte) ([]byte, error) {
	if err := c.writeCommand(payload); err != nil {
		return nil, err
	}
	p, err := c.readPacket()
	if err != nil {
		return nil, err
	}
	if p[0] != 0 {
		return nil, serverError(p)
	}
	return p, nil
}

// writeCommand writes payload as a command's one packet (sequence 0).
// Its callers' commands are far below a packet's limit: a bulk command is
// at most the sink's batch (4 MiB) and one row under it.
func (c *BulkConn) writeCommand(payload []byte) error {
	if len(payload) >= maxPacket {
		return fmt.Errorf("a command of %d bytes: more than one packet", len(payload))
	}
	if c.writeTimeout > 0 {
		_ = c.Conn.SetWriteDeadline(time.Now().Add(c.writeTimeout))
	}
	n := len(payload)
	h := [4]byte{byte(n), byte(n >> 8), byte(n >> 16), 0}
	c.seq = 1
	_, err := (&net.Buffers{h[:], payload}).WriteTo(c.Conn)
	return err
}

// readPacket reads the next packet's payload. The answers read here (OK,
// ERR, a statement's definitions) are each one packet.
func (c *BulkConn) readPacket() ([]byte, error) {
	if c.readTimeout > 0 {
		_ = c.Conn.SetReadDeadline(time.Now().Add(c.readTimeout))
	}
	var h [4]byte
	if _, err := io.ReadFull(c.r, h[:]); err != nil {
		return nil, err
	}
	n := int(h[0]) | int(h[1])<<8 | int(h[2])<<16
	if h[3] != c.seq || n == 0 || n == maxPacket {
		return nil, errMalformed
	}
	c.seq++
	p := make([]byte, n)
	if _, err := io.ReadFull(c.r, p); err != nil {
		return nil, err
	}
	return p, nil
}

// serverError is an ERR packet's error, as the driver reports it.
func serverError(p []byte) error {
	if p[0] != 0xff || len(p) < 3 {
		return errMalformed
	}
	e := &drv.MySQLError{Number: binary.LittleEndian.Uint16(p[1:])}
	msg := p[3:]
	if len(msg) >= 6 && msg[0] == '#' {
		copy(e.SQLState[:], msg[1:6])
		msg = msg[6:]
	}
	e.Message = string(msg)
	return e
}

// lenenc reads a length-encoded integer.
func lenenc(b []byte) (v uint64, n int, ok bool) {
	if len(b) == 0 {
		return 0, 0, false
	}
	switch b[0] {
	case 0xfc:
		if len(b) < 3 {
			return 0, 0, false
		}
		return uint64(binary.LittleEndian.Uint16(b[1:])), 3, true
	case 0xfd:
		if len(b) < 4 {
			return 0, 0, false
		}
		return uint64(b[1]) | uint64(b[2])<<8 | uint64(b[3])<<16, 4, true
	case 0xfe:
		if len(b) < 9 {
			return 0, 0, false
		}
		return binary.LittleEndian.Uint64(b[1:]), 9, true
	case 0xfb, 0xff:
		return 0, 0, false
	}
	return uint64(b[0]), 1, true
}

// BulkCommand builds one bulk command: a prepared statement's
// parameters for several rows, each parameter of one type in every row
// (or NULL).
type BulkCommand struct {
	b     []byte
	types []uint16
	Rows  int // the rows it holds
}

// BulkType is the type a value is sent as, as the driver sends it in
// COM_STMT_EXECUTE: ok is false for NULL (nil) and for a value of
// another Go type than int64, uint64, float64, string and []byte.
func BulkType(v any) (t uint16, ok bool) {
	switch v.(type) {
	case int64:
		return TypeLongLong, true
	case uint64:
		return TypeUnsigned, true
	case float64:
		return TypeDouble, true
	case string, []byte:
		return TypeString, true
	}
	return 0, false
}

// Start empties c for statement id, its parameters of types.
func (c *BulkCommand) Start(id uint32, types []uint16) {
	c.b = binary.LittleEndian.AppendUint32(append(c.b[:0], comStmtBulkExecute), id)
	c.b = binary.LittleEndian.AppendUint16(c.b, bulkSendTypes)
	for _, t := range types {
		c.b = binary.LittleEndian.AppendUint16(c.b, t)
	}
	c.types, c.Rows = append(c.types[:0], types...), 0
}

// Fits reports whether vals, one row's parameters, are of the command's
// types (or NULL).
func (c *BulkCommand) Fits(vals []any) bool {
	for i, v := range vals {
		if v == nil {
			continue
		}
		if t, ok := BulkType(v); !ok || t != c.types[i] {
			return false
		}
	}
	return true
}

// Add appends one row's parameters, which Fits.
func (c *BulkCommand) Add(vals []any) {
	for _, v := range vals {
		switch x := v.(type) {
		case nil:
			c.b = append(c.b, 1) // NULL
		case int64:
			c.b = binary.LittleEndian.AppendUint64(append(c.b, 0), uint64(x))
		case uint64:
			c.b = binary.LittleEndian.AppendUint64(append(c.b, 0), x)
		case float64:
			c.b = binary.LittleEndian.AppendUint64(append(c.b, 0), math.Float64bits(x))
		case string:
			c.b = append(appendLenenc(append(c.b, 0), uint64(len(x))), x...)
		case []byte:
			c.b = append(appendLenenc(append(c.b, 0), uint64(len(x))), x...)
		}
	}
	c.Rows++
}

// Len is the command's size in bytes.
func (c *BulkCommand) Len() int { return len(c.b) }

func appendLenenc(b []byte, n uint64) []byte {
	switch {
	case n < 251:
		return append(b, byte(n))
	case n < 1<<16:
		return append(b, 0xfc, byte(n), byte(n>>8))
	case n < 1<<24:
		return append(b, 0xfd, byte(n), byte(n>>8), byte(n>>16))
	}
	return binary.LittleEndian.AppendUint64(append(b, 0xfe), n)
}
