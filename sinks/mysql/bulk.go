package mysql

import (
	"context"
	"errors"
	"sync"

	drv "github.com/go-sql-driver/mysql"

	"github.com/sluice-cdc/sluice/binlog"
	"github.com/sluice-cdc/sluice/mysqlconn"
	"github.com/sluice-cdc/sluice/sqltext"
)

// insertBinary inserts rows (of one table) as parameters on the rows
// pool's binary sessions, in the transaction begin opens (when it inserts
// any), and returns how many it inserted; the rest are left to the
// literal INSERTs. It uses MariaDB's bulk command where the connection
// runs it (insertBulk), and prepared multi-row INSERTs otherwise
// (insertPrepared: an encrypted connection).
func (s *Sink) insertBinary(ctx context.Context, a *applier, rows []*binlog.Change, begin func() error) (int, error) {
	var bc *mysqlconn.BulkConn
	if s.rowsBulk != nil && a.conn != nil {
		_ = a.conn.Raw(func(dc any) error {
			bc = s.rowsBulk.Conn(dc)
			return nil
		})
	}
	if bc == nil || s.bulkRefused.Load() {
		return s.insertPrepared(ctx, a, rows, begin)
	}
	n, err := s.insertBulk(ctx, a, bc, rows, begin)
	var me *drv.MySQLError
	if errors.As(err, &me) && (me.Number == erBulkNeedsRowFormat || me.Number == erUnsupportedPS) {
		// Refused as a whole (binlog_format = STATEMENT): the transaction
		// is open, and holds the rows before.
		if !s.bulkRefused.Swap(true) {
			s.log.Info("the target refuses MariaDB's bulk command for the snapshot's rows: they go as prepared INSERTs", "error", me.Message)
		}
		if n == len(rows) {
			return n, nil
		}
		m, err := s.insertPrepared(ctx, a, rows[n:], func() error { return nil })
		return n + m, err
	}
	return n, err
}

// Errors of a bulk command the server refuses: "Only row based
// replication supported for bulk operations" (the session's
// binlog_format is STATEMENT), and a statement it cannot run in bulk.
const (
	erBulkNeedsRowFormat = 4033
	erUnsupportedPS      = 1295
)

// bulkRows is the memory of one chunk's bulk commands, reused from chunk
// to chunk: the command (up to s.maxBatch bytes) and one row's parameters.
type bulkRows struct {
	cmd   mysqlconn.BulkCommand
	vals  []any
	types []uint16
}

var bulkPool = sync.Pool{New: func() any { return new(bulkRows) }}

// params sets b.vals to r's parameters for columns cols (appendParams).
func (b *bulkRows) params(r *binlog.Change, cols []int) (size int, ok bool) {
	b.vals, size, ok = appendParams(b.vals[:0], r, cols)
	return size, ok
}

// start begins a command for statement id whose parameters have the
// types of b.vals (a NULL's: text).
func (b *bulkRows) start(id uint32) {
	b.types = b.types[:0]
	for _, v := range b.vals {
		t, ok := mysqlconn.BulkType(v)
		if !ok {
			t = mysqlconn.TypeString
		}
		b.types = append(b.types, t)
	}
	b.cmd.Start(id, b.types)
}

func (b *bulkRows) release() {
	clear(b.vals)
	b.vals = b.vals[:0]
	bulkPool.Put(b)
}

// insertBulk is insertBinary with MariaDB's bulk command on bc: one
// single-row INSERT prepared for the chunk, executed for all its rows in
// commands of up to s.maxBatch bytes (a new one also where a column's
// values change type). The server runs each as one statement; unlike a
// prepared statement's execution, it does not write the statement's text
// with its values for its binlog. The rows from the first one with a
// value sqltext.Param leaves to the literal writer or of s.maxBatch bytes
// or more, and a chunk the server cannot prepare
// (max_prepared_stmt_count), are left to the literal INSERTs.
func (s *Sink) insertBulk(ctx context.Context, a *applier, bc *mysqlconn.BulkConn, rows []*binlog.Change, begin func() error) (int, error) {
	t := rows[0].Table
	cols := sqltext.InsertColumns(t, rows[0].After)
	if len(cols) == 0 {
		return 0, nil
	}
	b := bulkPool.Get().(*bulkRows)
	defer b.release()
	size, ok := b.params(rows[0], cols)
	if !ok || size > s.maxBatch {
		return 0, nil
	}
	if err := begin(); err != nil {
		return 0, err
	}
	done := 0
	var unprepared error
	err := a.conn.Raw(func(any) error {
		id, _, err := bc.Prepare(ctx, string(sqltext.AppendInsertMarks(nil, t, cols, 1)))
		var me *drv.MySQLError
		if errors.As(err, &me) {
			unprepared = err
			return nil
		}
		if err != nil {
			return err
		}
		defer bc.CloseStmt(context.WithoutCancel(ctx), id)
		flush := func() error {
			n, err := bc.Execute(ctx, &b.cmd)
			if err != nil {
				return err
			}
			if n != uint64(b.cmd.Rows) {
				return unwritten(t, int64(n), int64(b.cmd.Rows))
			}
			done += b.cmd.Rows
			return nil
		}
		b.start(id)
		for i := 0; ; {
			if b.cmd.Rows > 0 && (!b.cmd.Fits(b.vals) || b.cmd.Len()+size > s.maxBatch) {
				if err := flush(); err != nil {
					return err
				}
				b.start(id)
			}
			b.cmd.Add(b.vals)
			if i++; i == len(rows) {
				break
			}
			if size, ok = b.params(rows[i], cols); !ok || size > s.maxBatch {
				break
			}
		}
		return flush()
	})
	if err != nil {
		return done, err
	}
	if unprepared != nil {
		s.log.Debug("snapshot rows as literals: prepare failed", "table", t.QualifiedName(), "error", unprepared)
	}
	return done, nil
}
