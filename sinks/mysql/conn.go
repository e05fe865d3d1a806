package mysql

import (
	"context"
	"database/sql/driver"
	"strconv"
	"time"

	drv "github.com/go-sql-driver/mysql"
)

// reset drops the connection after a failure; the next attempt opens
// another.
func (a *applier) reset() {
	a.fkKnown = false
	if a.conn != nil {
		_ = a.conn.Raw(func(any) error { return driver.ErrBadConn })
		a.conn.Close()
		a.conn = nil
	}
}

func (a *applier) ensureConn(ctx context.Context) error {
	a.lastUsed = time.Now()
	if a.conn != nil {
		return nil
	}
	c, err := a.s.db.Conn(ctx)
	if err != nil {
		return err
	}
	// The fence (lease.go) relies on the checkpoint's INSERT … SELECT
	// locking the lease row it reads, which READ COMMITTED would not do.
	setup := []string{"SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ"}
	if a.s.epoch.Load() > 0 {
		// A frozen process's open transaction must not hold the lease row
		// past the TTL: the server closes an idle session after this.
		setup = append(setup, "SET SESSION wait_timeout = "+strconv.FormatInt(ttlSeconds(a.s.ttl), 10))
	}
	for _, q := range setup {
		if _, err := c.ExecContext(ctx, q); err != nil {
			c.Close()
			return err
		}
	}
	a.conn = c
	return nil
}

// exec runs one or more statements in one round trip and returns each
// statement's affected-row count.
func (a *applier) exec(ctx context.Context, query string) ([]int64, error) {
	if err := a.ensureConn(ctx); err != nil {
		return nil, err
	}
	var affected []int64
	err := a.conn.Raw(func(dc any) error {
		res, err := dc.(driver.ExecerContext).ExecContext(ctx, query, nil)
		if err != nil {
			return err
		}
		affected = res.(drv.Result).AllRowsAffected()
		return nil
	})
	return affected, err
}

func (a *applier) rollback(ctx context.Context) {
	if a.conn != nil {
		if _, err := a.exec(context.WithoutCancel(ctx), "ROLLBACK"); err != nil {
			a.reset()
		}
	}
}
