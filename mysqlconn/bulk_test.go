package mysqlconn_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	drv "github.com/go-sql-driver/mysql"

	"github.com/sluice-cdc/sluice/internal/testenv"
	"github.com/sluice-cdc/sluice/mysqlconn"
)

// TestBulk runs MariaDB's bulk command on a pool's connection, between
// the driver's own statements on it: rows of each parameter type with
// NULLs and long strings, a refused command (the connection stays
// usable), a canceled one (the connection is dropped), and a connection
// over TLS, which does not run it.
func TestBulk(t *testing.T) {
	c := newCerts(t)
	m := testenv.StartMariaDB(t, testenv.MariaDBOptions{Args: []string{"--ssl-ca=" + c.ca, "--ssl-cert=" + c.serverCert, "--ssl-key=" + c.serverKey}})
	m.Exec(t, "CREATE DATABASE b", "CREATE TABLE b.t (id BIGINT PRIMARY KEY, u BIGINT UNSIGNED, d DOUBLE, s LONGBLOB, n INT)")
	ctx := context.Background()
	open := func(dsn string) (*sql.DB, *mysqlconn.Bulk) {
		d, err := mysqlconn.ParseDSN(dsn)
		if err != nil {
			t.Fatal(err)
		}
		db, bulk, err := mysqlconn.OpenBulk(ctx, d, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db, bulk
	}
	db, bulk := open(m.DSN())
	long := strings.Repeat("x", 70000) // a length of 3 bytes
	var cmd mysqlconn.BulkCommand
	insert := func(ctx context.Context, conn *sql.Conn, rows ...[]any) (uint64, error) {
		var n uint64
		err := conn.Raw(func(dc any) error {
			bc := bulk.Conn(dc)
			if bc == nil {
				return errors.New("the connection does not run the bulk command")
			}
			id, params, err := bc.Prepare(context.Background(), "INSERT INTO b.t VALUES (?, ?, ?, ?, ?)")
			if err != nil {
				return err
			}
			defer bc.CloseStmt(context.Background(), id)
			if params != 5 {
				return fmt.Errorf("%d parameters", params)
			}
			cmd.Start(id, []uint16{mysqlconn.TypeLongLong, mysqlconn.TypeUnsigned, mysqlconn.TypeDouble, mysqlconn.TypeString, mysqlconn.TypeString})
			for _, r := range rows {
				if !cmd.Fits(r) {
					return fmt.Errorf("%v does not fit", r)
				}
				cmd.Add(r)
			}
			n, err = bc.Execute(ctx, &cmd)
			return err
		})
		return n, err
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "START TRANSACTION"); err != nil {
		t.Fatal(err)
	}
	n, err := insert(ctx, conn,
		[]any{int64(-1), uint64(18446744073709551615), 0.1, []byte{0, 0xff, '\''}, nil},
		[]any{int64(2), nil, nil, long, nil},
		[]any{int64(3), uint64(0), -4.9e-324, strings.Repeat("y", 300), nil})
	if err != nil || n != 3 {
		t.Fatalf("bulk insert: %d rows, %v", n, err)
	}
	// The driver's statements go on around it, in the same transaction.
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		t.Fatal(err)
	}
	var got string
	if err := conn.QueryRowContext(ctx, "SELECT GROUP_CONCAT(CONCAT_WS('|', id, IFNULL(u, 'N'), IFNULL(d, 'N'), HEX(LEFT(s, 3)), LENGTH(s), IFNULL(n, 'N')) ORDER BY id) FROM b.t").Scan(&got); err != nil {
		t.Fatal(err)
	}
	if want := "-1|18446744073709551615|0.1|00FF27|3|N,2|N|N|787878|70000|N,3|0|-5e-324|797979|300|N"; got != want {
		t.Errorf("rows %s, want %s", got, want)
	}

	// The server refuses a command: its error, and the connection goes on.
	_, err = insert(ctx, conn, []any{int64(2), nil, nil, "again", nil})
	var me *drv.MySQLError
	if !errors.As(err, &me) || me.Number != 1062 || string(me.SQLState[:]) != "23000" {
		t.Errorf("duplicate key: %v, want error 1062 (23000)", err)
	}
	if err := conn.QueryRowContext(ctx, "SELECT COUNT(*) FROM b.t").Scan(&got); err != nil || got != "3" {
		t.Errorf("after the refused command: %s rows, %v", got, err)
	}

	// Canceled while the server works on it (waiting for a row lock):
	// the connection, in an unknown state, is dropped.
	other, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.ExecContext(ctx, "START TRANSACTION"); err != nil {
		t.Fatal(err)
	}
	if _, err := other.ExecContext(ctx, "INSERT INTO b.t (id) VALUES (4)"); err != nil {
		t.Fatal(err)
	}
	// (In a transaction: the server finishes the statement once the lock
	// is free, then rolls it back for the connection gone.)
	if _, err := conn.ExecContext(ctx, "START TRANSACTION"); err != nil {
		t.Fatal(err)
	}
	waiting, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if _, err := insert(waiting, conn, []any{int64(4), nil, nil, nil, nil}); !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, driver.ErrBadConn) {
		t.Errorf("canceled: %v", err)
	}
	if err := conn.PingContext(ctx); !errors.Is(err, sql.ErrConnDone) {
		t.Errorf("the canceled connection: %v, want it dropped", err)
	}
	if _, err := other.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}

	// Over TLS the bytes on the socket are not the protocol's: no bulk
	// command, the pool works as Open's.
	tlsDB, tlsBulk := open(m.DSN() + "?tls=required")
	tconn, err := tlsDB.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tconn.Close()
	_ = tconn.Raw(func(dc any) error {
		if tlsBulk.Conn(dc) != nil {
			t.Error("a TLS connection runs the bulk command")
		}
		return nil
	})
	if err := tconn.QueryRowContext(ctx, "SELECT COUNT(*) FROM b.t").Scan(&got); err != nil || got != "3" {
		t.Errorf("over TLS: %s rows, %v", got, err)
	}
}
