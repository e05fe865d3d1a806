package mysqlconn

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"time"

	drv "github.com/go-sql-driver/mysql"
)

// Open opens a database/sql handle for the DSN and checks that it
// connects, turning connection failures into messages that say what to fix.
// Every connection of the pool (also ones opened later) must finish its
// handshake within the DSN's connect timeout. tweak, if not nil, adjusts the
// driver configuration (session variables, flags).
func Open(ctx context.Context, d DSN, tweak func(*drv.Config)) (*sql.DB, error) {
	return open(ctx, d, tweak, nil)
}

// open is Open, whose connections run the bulk command when bulk is set
// (OpenBulk).
func open(ctx context.Context, d DSN, tweak func(*drv.Config), bulk *Bulk) (*sql.DB, error) {
	cfg, err := d.DriverConfig()
	if err != nil {
		return nil, err
	}
	if tweak != nil {
		tweak(cfg)
	}
	if cfg.DialFunc != nil || !bulkable(cfg) {
		bulk = nil
	}
	switch {
	case bulk != nil:
		cfg.DialFunc = dialBulk(cfg)
	case cfg.DialFunc == nil:
		cfg.DialFunc = dialBuffered
	}
	conn, err := drv.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", d, err)
	}
	var connector driver.Connector = timeoutConnector{conn, d.ConnectTimeout()}
	if bulk != nil {
		connector = bulkConnector{connector, bulk}
	}
	db := sql.OpenDB(connector)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, ExplainConnError(d, err)
	}
	return db, nil
}

// timeoutConnector bounds each new connection's dial and handshake: the
// driver's own Timeout covers only the dial, and a port that accepts but
// never answers would otherwise hold the handshake until the read timeout.
type timeoutConnector struct {
	driver.Connector
	timeout time.Duration
}

func (c timeoutConnector) Connect(ctx context.Context) (driver.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	return c.Connector.Connect(ctx)
}

// Encrypted reports whether db's connections use TLS.
func Encrypted(ctx context.Context, db *sql.DB) (bool, error) {
	var name, cipher string
	if err := db.QueryRowContext(ctx, "SHOW SESSION STATUS LIKE 'Ssl_cipher'").Scan(&name, &cipher); err != nil {
		return false, err
	}
	return cipher != "", nil
}
