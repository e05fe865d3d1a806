package mysqlconn

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	drv "github.com/go-sql-driver/mysql"
)

// UserError is an error the operator fixes (a wrong DSN, a missing
// privilege, a server setting): its message says what to change.
type UserError struct{ Msg string }

func (e *UserError) Error() string { return e.Msg }

// UserErrorf formats a UserError.
func UserErrorf(format string, args ...any) error {
	return &UserError{Msg: fmt.Sprintf(format, args...)}
}

// ErrorNumber returns the server error number of err (from either MySQL
// client library), or 0.
func ErrorNumber(err error) uint16 {
	var me *drv.MySQLError
	if errors.As(err, &me) {
		return me.Number
	}
	var gme *gomysql.MyError
	if errors.As(err, &gme) {
		return gme.Code
	}
	return 0
}

// ExplainDumpError explains a failure to start the binlog dump. The
// credentials already worked for a plain connection, so an access error
// here means a missing REPLICATION SLAVE privilege, whatever the server's
// message says (MariaDB answers "Access denied for user").
func ExplainDumpError(d DSN, err error) error {
	var gme *gomysql.MyError
	if errors.As(err, &gme) && (gme.Code == 1045 || gme.Code == 1227) {
		return UserErrorf("%s: the server refused the binlog dump (%s): GRANT REPLICATION SLAVE ON *.* TO %q", d, gme.Message, d.User)
	}
	return ExplainConnError(d, err)
}

// ExplainPrivilege explains a failure of a replication-monitoring
// statement (what), naming the privilege to grant.
func ExplainPrivilege(d DSN, err error, what string) error {
	var me *drv.MySQLError
	if errors.As(err, &me) && (me.Number == 1227 || me.Number == 1044 || me.Number == 1142) {
		return UserErrorf("%s: %s needs REPLICATION CLIENT (MariaDB 10.5+: BINLOG MONITOR): GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO %q", d, what, d.User)
	}
	return ExplainConnError(d, err)
}

// ExplainConnError rewrites a connection error into one line that names
// the server and what to change.
func ExplainConnError(d DSN, err error) error {
	var ue *UserError
	if errors.As(err, &ue) {
		return err
	}
	var me *drv.MySQLError
	if errors.As(err, &me) {
		switch me.Number {
		case 1045:
			return UserErrorf("%s: access denied for user %q: check the user and password in the DSN%s", d, d.User, tlsHint(d))
		case 1049:
			return UserErrorf("%s: unknown database %q: fix the database in the DSN or create it", d, d.Database)
		case 1044, 1227, 1142:
			return UserErrorf("%s: %s: grant the missing privilege to %q", d, me.Message, d.User)
		case 3159:
			return UserErrorf("%s: the server requires a secure transport: set tls (tls=required in the DSN or the tls: block)", d)
		}
		return fmt.Errorf("%s: %w", d, err)
	}
	var gme *gomysql.MyError
	if errors.As(err, &gme) {
		switch gme.Code {
		case 1045:
			return UserErrorf("%s: access denied for user %q: check the user and password in the DSN", d, d.User)
		case 1227, 1044:
			return UserErrorf("%s: %s: grant REPLICATION SLAVE, REPLICATION CLIENT (MariaDB: also BINLOG MONITOR) ON *.* TO %q", d, gme.Message, d.User)
		case 1236:
			return UserErrorf("%s: the source cannot serve the requested start position: %s. "+
				"The binlogs holding it were purged (or the position does not exist); start from an available position (--from-start, or start: oldest) after re-seeding the target", d, gme.Message)
		case 3159:
			return UserErrorf("%s: the server requires a secure transport: set tls (tls=required in the DSN or the tls: block)", d)
		}
		return fmt.Errorf("%s: %w", d, err)
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return UserErrorf("%s: unknown host %q: check the host in the DSN", d, d.Host)
	}
	if isTimeout(err) {
		return &UnreachableError{Msg: fmt.Sprintf("%s: timed out talking to %s (no answer within the connect timeout): check the host, the port (is it a MySQL/MariaDB port?) and the firewall", d, d.Addr())}
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) || strings.Contains(err.Error(), "connection refused") {
		return &UnreachableError{Msg: fmt.Sprintf("%s: cannot connect to %s (%v): is the server running and the port right?", d, d.Addr(), rootCause(err))}
	}
	if errors.Is(err, drv.ErrInvalidConn) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, gomysql.ErrBadConn) {
		return &UnreachableError{Msg: fmt.Sprintf("%s: the connection to %s broke during the handshake (%v): is it a MySQL/MariaDB server, and does it want TLS?", d, d.Addr(), rootCause(err))}
	}
	return fmt.Errorf("%s: %w", d, err)
}

// tlsHint: MariaDB answers a plain-text client of a server with
// require_secure_transport=ON with "access denied", and a user created
// with REQUIRE SSL/X509 gets the same.
func tlsHint(d DSN) string {
	if !d.TLS.enabled() {
		return " (and, if the server or the user requires TLS, set tls=required or stricter)"
	}
	if d.TLS.Cert == "" {
		return " (and, if the user requires a client certificate, set tls_cert and tls_key)"
	}
	return ""
}

// UnreachableError is a server that could not be reached or did not
// answer. It is a UserError too (the message says what to check), and
// retryable: the server may come back.
type UnreachableError struct{ Msg string }

func (e *UnreachableError) Error() string { return e.Msg }

// As lets errors.As(err, **UserError) match: the CLI exits 2 for it.
func (e *UnreachableError) As(target any) bool {
	if t, ok := target.(**UserError); ok {
		*t = &UserError{Msg: e.Msg}
		return true
	}
	return false
}

func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "i/o timeout") {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func rootCause(err error) error {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err
		}
		err = u
	}
}

// Retryable reports whether trying again can succeed: the server could
// not be reached or went away (down, restarting, network loss), a
// deadlock or lock timeout, a read-only server during a failover. A server
// that refused what was asked (access, syntax, missing table) is not.
// The decision is by error number, never by message (gh-ost and Vitess do
// the same). It is the one list sluice uses, for sources and targets.
func Retryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	var ur *UnreachableError
	if errors.As(err, &ur) {
		return true
	}
	var ue *UserError
	if errors.As(err, &ue) {
		return false
	}
	if n := ErrorNumber(err); n != 0 {
		return RetryableCode(n)
	}
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, driver.ErrBadConn) || errors.Is(err, drv.ErrInvalidConn) ||
		errors.Is(err, gomysql.ErrBadConn) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// RetryableCode lists the server errors after which trying again (on a
// new connection if needed) can succeed.
func RetryableCode(code uint16) bool {
	switch code {
	case 1205, // lock wait timeout
		1213,                                                 // deadlock
		1040,                                                 // too many connections
		1053,                                                 // server shutdown in progress
		1077,                                                 // normal shutdown
		1152, 1154, 1155, 1156, 1157, 1158, 1159, 1160, 1161, // aborted connection, packet errors, net timeouts (not 1153: a packet over max_allowed_packet stays too large)
		1290,       // --read-only (a failover in progress)
		1836,       // running in read-only mode
		1927,       // connection killed
		2006, 2013, // gone away, lost connection
		4031: // idle connection closed by the server
		return true
	}
	return false
}
