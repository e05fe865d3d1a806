package binlog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"strings"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	drv "github.com/go-sql-driver/mysql"
)

// Flavor is the server family.
type Flavor string

const (
	MySQL   Flavor = "mysql"
	MariaDB Flavor = "mariadb"
)

// ServerInfo is what sluice checks on a source before replicating from it.
type ServerInfo struct {
	Version      string
	Flavor       Flavor
	ServerID     uint32
	LogBin       bool
	BinlogFormat string
	RowImage     string
	GTIDMode     bool    // MySQL gtid_mode=ON; always true for MariaDB
	Executed     GTIDSet // gtid_executed (MySQL) or gtid_binlog_pos (MariaDB)
	Current      Position
	Files        []string // SHOW BINARY LOGS
}

// UserError is an error the operator fixes (a wrong DSN, a missing
// privilege, a server setting): its message says what to change.
type UserError struct{ Msg string }

func (e *UserError) Error() string { return e.Msg }

func userErrorf(format string, args ...any) error {
	return &UserError{Msg: fmt.Sprintf(format, args...)}
}

// OpenDB opens a database/sql handle for the DSN and checks that it
// connects, turning connection failures into messages that say what to fix.
func OpenDB(ctx context.Context, d DSN) (*sql.DB, error) {
	conn, err := drv.NewConnector(d.DriverConfig())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", d, err)
	}
	db := sql.OpenDB(conn)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, ExplainConnError(d, err)
	}
	return db, nil
}

// explainDumpError explains a failure to start the binlog dump. The
// credentials already worked for a plain connection, so an access error
// here means a missing REPLICATION SLAVE privilege, whatever the server's
// message says (MariaDB answers "Access denied for user").
func explainDumpError(d DSN, err error) error {
	var gme *gomysql.MyError
	if errors.As(err, &gme) && (gme.Code == 1045 || gme.Code == 1227) {
		return userErrorf("%s: the server refused the binlog dump (%s): GRANT REPLICATION SLAVE ON *.* TO %q", d, gme.Message, d.User)
	}
	return ExplainConnError(d, err)
}

// ExplainConnError rewrites a connection error into one line that names
// the server and what to change.
func ExplainConnError(d DSN, err error) error {
	var me *drv.MySQLError
	if errors.As(err, &me) {
		switch me.Number {
		case 1045:
			return userErrorf("%s: access denied for user %q: check the user and password in the DSN", d, d.User)
		case 1049:
			return userErrorf("%s: unknown database %q: fix the database in the DSN or create it", d, d.Database)
		case 1044, 1227, 1142:
			return userErrorf("%s: %s: grant the missing privilege to %q", d, me.Message, d.User)
		}
		return fmt.Errorf("%s: %w", d, err)
	}
	var gme *gomysql.MyError
	if errors.As(err, &gme) {
		switch gme.Code {
		case 1045:
			return userErrorf("%s: access denied for user %q: check the user and password in the DSN", d, d.User)
		case 1227, 1044:
			return userErrorf("%s: %s: grant REPLICATION SLAVE, REPLICATION CLIENT (MariaDB: also BINLOG MONITOR) ON *.* TO %q", d, gme.Message, d.User)
		case 1236:
			return userErrorf("%s: the source cannot serve the requested start position: %s. "+
				"The binlogs holding it were purged (or the position does not exist); start from an available position (--from-start, or start: oldest) after re-seeding the target", d, gme.Message)
		}
		return fmt.Errorf("%s: %w", d, err)
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return userErrorf("%s: unknown host %q: check the host in the DSN", d, d.Host)
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) || strings.Contains(err.Error(), "connection refused") {
		return userErrorf("%s: cannot connect to %s (%v): is the server running and the port right?", d, d.Addr(), rootCause(err))
	}
	if errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "i/o timeout") {
		return userErrorf("%s: timed out connecting to %s: check the host, port and firewall", d, d.Addr())
	}
	return fmt.Errorf("%s: %w", d, err)
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

// Inspect reads the server's version, binlog settings and position.
func Inspect(ctx context.Context, db *sql.DB, d DSN) (*ServerInfo, error) {
	info := &ServerInfo{}
	var logBin, serverID sql.NullString
	if err := db.QueryRowContext(ctx, "SELECT VERSION(), @@log_bin, @@server_id, @@binlog_format, @@binlog_row_image").
		Scan(&info.Version, &logBin, &serverID, &info.BinlogFormat, &info.RowImage); err != nil {
		return nil, ExplainConnError(d, err)
	}
	info.LogBin = logBin.String == "1" || strings.EqualFold(logBin.String, "ON")
	var id uint64
	fmt.Sscan(serverID.String, &id)
	info.ServerID = uint32(id)
	info.Flavor = MySQL
	if strings.Contains(strings.ToLower(info.Version), "mariadb") {
		info.Flavor = MariaDB
	}
	if !info.LogBin {
		return nil, userErrorf("%s: binary logging is off: start the server with --log-bin (and --binlog-format=ROW)", d)
	}
	if !strings.EqualFold(info.BinlogFormat, "ROW") {
		return nil, userErrorf("%s: binlog_format is %s: sluice needs ROW; run SET GLOBAL binlog_format=ROW and set it in the server's configuration", d, info.BinlogFormat)
	}

	// SHOW MASTER STATUS became SHOW BINARY LOG STATUS in MySQL 8.4.
	rows, err := db.QueryContext(ctx, "SHOW MASTER STATUS")
	var me *drv.MySQLError
	if errors.As(err, &me) && me.Number == 1064 {
		rows, err = db.QueryContext(ctx, "SHOW BINARY LOG STATUS")
	}
	if err != nil {
		return nil, explainPrivilege(d, err, "SHOW MASTER STATUS")
	}
	status, cols, err := scanAll(rows)
	if err != nil {
		return nil, err
	}
	if len(status) > 0 {
		row := status[0]
		var pos uint32
		fmt.Sscan(row[1], &pos)
		info.Current = Position{File: row[0], Pos: pos}
		for i, c := range cols {
			if strings.EqualFold(c, "Executed_Gtid_Set") && row[i] != "" {
				if info.Executed, err = ParseGTIDSet(row[i]); err != nil {
					return nil, fmt.Errorf("%s: gtid_executed: %w", d, err)
				}
				info.GTIDMode = true
			}
		}
	}

	if info.Flavor == MariaDB {
		info.GTIDMode = true
		var pos string
		if err := db.QueryRowContext(ctx, "SELECT @@gtid_binlog_pos").Scan(&pos); err != nil {
			return nil, fmt.Errorf("%s: read gtid_binlog_pos: %w", d, err)
		}
		if info.Executed, err = ParseGTIDSet(pos); err != nil {
			return nil, fmt.Errorf("%s: gtid_binlog_pos: %w", d, err)
		}
	} else if !info.GTIDMode {
		var mode sql.NullString
		if db.QueryRowContext(ctx, "SELECT @@gtid_mode").Scan(&mode) == nil && strings.EqualFold(mode.String, "ON") {
			info.GTIDMode = true
		}
	}

	rows, err = db.QueryContext(ctx, "SHOW BINARY LOGS")
	if err != nil {
		return nil, explainPrivilege(d, err, "SHOW BINARY LOGS")
	}
	logs, _, err := scanAll(rows)
	if err != nil {
		return nil, err
	}
	for _, row := range logs {
		info.Files = append(info.Files, row[0])
	}
	return info, nil
}

// scanAll reads every row of a result whose columns vary between server
// versions as text, and closes it.
func scanAll(rows *sql.Rows) ([][]string, []string, error) {
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, nil, err
	}
	var out [][]string
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, nil, err
		}
		row := make([]string, len(cols))
		for i, v := range vals {
			row[i] = v.String
		}
		out = append(out, row)
	}
	return out, cols, rows.Err()
}

func explainPrivilege(d DSN, err error, what string) error {
	var me *drv.MySQLError
	if errors.As(err, &me) && (me.Number == 1227 || me.Number == 1044 || me.Number == 1142) {
		return userErrorf("%s: %s needs REPLICATION CLIENT (MariaDB 10.5+: BINLOG MONITOR): GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO %q", d, what, d.User)
	}
	return ExplainConnError(d, err)
}
