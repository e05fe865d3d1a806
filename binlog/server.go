package binlog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	drv "github.com/go-sql-driver/mysql"
	"github.com/sluice-cdc/sluice/mysqlconn"
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

// Inspect reads the server's version, binlog settings and position.
func Inspect(ctx context.Context, db *sql.DB, d mysqlconn.DSN) (*ServerInfo, error) {
	info := &ServerInfo{}
	var logBin, serverID sql.NullString
	if err := db.QueryRowContext(ctx, "SELECT VERSION(), @@log_bin, @@server_id, @@binlog_format, @@binlog_row_image").
		Scan(&info.Version, &logBin, &serverID, &info.BinlogFormat, &info.RowImage); err != nil {
		return nil, mysqlconn.ExplainConnError(d, err)
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
		return nil, mysqlconn.UserErrorf("%s: binary logging is off: start the server with --log-bin (and --binlog-format=ROW)", d)
	}
	if !strings.EqualFold(info.BinlogFormat, "ROW") {
		return nil, mysqlconn.UserErrorf("%s: binlog_format is %s: sluice needs ROW; run SET GLOBAL binlog_format=ROW and set it in the server's configuration", d, info.BinlogFormat)
	}

	// SHOW MASTER STATUS became SHOW BINARY LOG STATUS in MySQL 8.4.
	rows, err := db.QueryContext(ctx, "SHOW MASTER STATUS")
	var me *drv.MySQLError
	if errors.As(err, &me) && me.Number == 1064 {
		rows, err = db.QueryContext(ctx, "SHOW BINARY LOG STATUS")
	}
	if err != nil {
		return nil, mysqlconn.ExplainPrivilege(d, err, "SHOW MASTER STATUS")
	}
	status, cols, err := scanAll(rows)
	if err != nil {
		return nil, err
	}
	if len(status) > 0 {
		row := status[0]
		var pos uint64
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
		return nil, mysqlconn.ExplainPrivilege(d, err, "SHOW BINARY LOGS")
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
