package snapshot

import (
	"database/sql"
	"strings"
	"testing"

	"github.com/sluice-cdc/sluice/binlog"
)

// TestLockedPosition: the global-lock path reads the position from the
// binlog status statement the server has (MySQL 8.2 renamed SHOW MASTER
// STATUS, 8.4 removed it) and takes File, Position and MySQL's
// Executed_Gtid_Set from its row by name.
func TestLockedPosition(t *testing.T) {
	for _, c := range []struct {
		version, statement string
		mariadb            bool
	}{
		{"8.4.3", "SHOW BINARY LOG STATUS", false},
		{"8.2.0", "SHOW BINARY LOG STATUS", false},
		{"9.1.0-commercial", "SHOW BINARY LOG STATUS", false},
		{"8.0.36-28", "SHOW MASTER STATUS", false}, // Percona Server
		{"8.1.0", "SHOW MASTER STATUS", false},
		{"5.7.44-log", "SHOW MASTER STATUS", false},
		{"10.11.6-MariaDB-log", "SHOW MASTER STATUS", true},
		{"11.4.2-MariaDB", "SHOW MASTER STATUS", true},
	} {
		srv := parseVersion(c.version)
		if got := srv.statusStatement(); got != c.statement || srv.mariadb != c.mariadb {
			t.Errorf("%s: %s (mariadb %v), want %s (mariadb %v)", c.version, got, srv.mariadb, c.statement, c.mariadb)
		}
	}

	str := func(v ...string) []sql.NullString {
		out := make([]sql.NullString, len(v))
		for i, s := range v {
			out[i] = sql.NullString{String: s, Valid: true}
		}
		return out
	}
	for _, c := range []struct {
		name     string
		cols     []string
		row      []sql.NullString
		pos      binlog.Position
		executed string
		hasGTID  bool
		err      string
	}{
		{name: "mysql 8.4", cols: []string{"File", "Position", "Binlog_Do_DB", "Binlog_Ignore_DB", "Executed_Gtid_Set"},
			row: str("binlog.000012", "4711", "", "", "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-77,\n4e11fa47-71ca-11e1-9e33-c80aa9429562:1-5"),
			pos: binlog.Position{File: "binlog.000012", Pos: 4711}, executed: "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-77,\n4e11fa47-71ca-11e1-9e33-c80aa9429562:1-5", hasGTID: true},
		{name: "mysql, gtid_mode off", cols: []string{"File", "Position", "Binlog_Do_DB", "Binlog_Ignore_DB", "Executed_Gtid_Set"},
			row: str("mysql-bin.000003", "157", "", "", ""), pos: binlog.Position{File: "mysql-bin.000003", Pos: 157}, hasGTID: true},
		{name: "mariadb", cols: []string{"File", "Position", "Binlog_Do_DB", "Binlog_Ignore_DB"},
			row: str("mariadb-bin.000002", "342", "", ""), pos: binlog.Position{File: "mariadb-bin.000002", Pos: 342}},
		{name: "columns in another order", cols: []string{"Position", "File"},
			row: str("99", "b.000001"), pos: binlog.Position{File: "b.000001", Pos: 99}},
		{name: "no binlog file", cols: []string{"File", "Position"}, row: []sql.NullString{{}, {}}, err: "log_bin"},
		{name: "bad position", cols: []string{"File", "Position"}, row: str("b.000001", "x"), err: `position "x"`},
	} {
		pos, executed, hasGTID, err := parseStatus(c.cols, c.row)
		switch {
		case c.err != "":
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: got %v, want an error saying %q", c.name, err, c.err)
			}
		case err != nil:
			t.Errorf("%s: %v", c.name, err)
		case pos != c.pos || executed != c.executed || hasGTID != c.hasGTID:
			t.Errorf("%s: got %v %q %v, want %v %q %v", c.name, pos, executed, hasGTID, c.pos, c.executed, c.hasGTID)
		}
		if c.hasGTID && c.executed != "" {
			// The set as MySQL prints it (a newline after each comma) parses.
			if g, err := binlog.ParseGTIDSet(executed); err != nil || g.IsEmpty() {
				t.Errorf("%s: the executed set %q parses to %v, %v", c.name, executed, g, err)
			}
		}
	}
}
