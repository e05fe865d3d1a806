package binlog_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/sluice-cdc/sluice/binlog"
	"github.com/sluice-cdc/sluice/internal/testenv"
	"github.com/sluice-cdc/sluice/mysqlconn"
)

func connect(t *testing.T, dsn string, start binlog.Start) (*binlog.LiveSource, error) {
	t.Helper()
	d, err := mysqlconn.ParseDSN(dsn)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return binlog.Connect(ctx, binlog.LiveConfig{DSN: d, ServerID: 7777, Start: start, StopAtEnd: true, MaxRetries: 1})
}

// TestConnectErrors: each operator mistake gives one line that says what to
// change, as a *mysqlconn.UserError (exit code 2 in the CLI), and never the
// password.
func TestConnectErrors(t *testing.T) {
	m := testenv.StartMariaDB(t, testenv.MariaDBOptions{})
	m.Exec(t,
		"CREATE USER 'reader'@'%' IDENTIFIED BY 's3cret-pw'", "GRANT SELECT ON *.* TO 'reader'@'%'",
		"CREATE USER 'monitor'@'%' IDENTIFIED BY 's3cret-pw'", "GRANT SELECT, BINLOG MONITOR ON *.* TO 'monitor'@'%'",
	)
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	closedPort := closed.Addr().(*net.TCPAddr).Port
	closed.Close()

	tests := []struct {
		name, dsn, want string
	}{
		{"malformed DSN", "root@127.0.0.1:3306", "want mysql://USER:PASSWORD@HOST:PORT"},
		{"unreachable server", fmt.Sprintf("mysql://root:s3cret-pw@127.0.0.1:%d", closedPort), "cannot connect to 127.0.0.1"},
		{"unknown host", "mysql://root:s3cret-pw@no-such-host.invalid:3306", "unknown host"},
		{"wrong password", fmt.Sprintf("mysql://reader:wrong-s3cret@127.0.0.1:%d", m.Port), "access denied for user \"reader\""},
		{"no REPLICATION CLIENT", m.UserDSN("reader", "s3cret-pw"), "REPLICATION CLIENT"},
		{"no REPLICATION SLAVE", m.UserDSN("monitor", "s3cret-pw"), "REPLICATION SLAVE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, err := connect(t, tt.dsn, binlog.Start{Mode: binlog.StartOldest})
			if err == nil {
				// The dump itself is refused: the error comes with the first read.
				_, err = src.Next(context.Background())
				src.Close()
			}
			checkUserError(t, err, tt.want)
		})
	}
}

func checkUserError(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one containing %q", want)
	}
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not say %q", err, want)
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("error shows the password: %q", err)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Fatalf("error is not one line: %q", err)
	}
	if !strings.HasPrefix(want, "want mysql://") {
		var ue *mysqlconn.UserError
		if !errors.As(err, &ue) {
			t.Fatalf("error %q is not a UserError", err)
		}
	}
}

func TestBinlogFormatNotRow(t *testing.T) {
	m := testenv.StartMariaDB(t, testenv.MariaDBOptions{Args: []string{"--binlog-format=STATEMENT"}})
	_, err := connect(t, m.DSN(), binlog.Start{})
	checkUserError(t, err, "binlog_format is STATEMENT: sluice needs ROW")
}

func TestPurgedStart(t *testing.T) {
	m := testenv.StartMariaDB(t, testenv.MariaDBOptions{})
	m.Exec(t, "CREATE DATABASE p", "CREATE TABLE p.t (id INT PRIMARY KEY)", "INSERT INTO p.t VALUES (1)",
		"FLUSH BINARY LOGS", "INSERT INTO p.t VALUES (2)", "FLUSH BINARY LOGS")
	m.PurgeBinlogsTo(t, "bin.000003")
	start, err := binlog.ParseGTIDSet(fmt.Sprintf("0-%d-1", m.ServerID))
	if err != nil {
		t.Fatal(err)
	}
	src, err := connect(t, m.DSN(), binlog.Start{Mode: binlog.StartGTID, GTID: start})
	if err == nil {
		_, err = src.Next(context.Background())
		src.Close()
	}
	checkUserError(t, err, "purged")

	src, err = connect(t, m.DSN(), binlog.Start{Mode: binlog.StartPosition, Pos: binlog.Position{File: "bin.000001", Pos: 4}})
	if err == nil {
		_, err = src.Next(context.Background())
		src.Close()
	}
	checkUserError(t, err, "purged")
}
