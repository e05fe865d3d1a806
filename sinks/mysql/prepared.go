package mysql

import (
	"context"
	"database/sql/driver"
	"sync"

	"github.com/sluice-cdc/sluice/binlog"
	"github.com/sluice-cdc/sluice/sqltext"
)

// maxParams is the most parameter markers a prepared statement may have.
const maxParams = 65535

// stmtParams holds one statement's parameters, reused from statement to
// statement: at most maxParams of them, whatever the chunk's size.
type stmtParams struct {
	vals []any
	args []driver.NamedValue
}

var paramPool = sync.Pool{New: func() any { return new(stmtParams) }}

// appendParams appends the parameters of r's columns cols to dst and
// returns their size in bytes, or false when a value is left to the
// literal writer (sqltext.Param).
func appendParams(dst []any, r *binlog.Change, cols []int) ([]any, int, bool) {
	size := 0
	for _, i := range cols {
		v, n, ok := sqltext.Param(&r.Table.Columns[i], r.After[i])
		if !ok {
			return dst, 0, false
		}
		dst = append(dst, v)
		size += n + 1
	}
	return dst, size, true
}

// convert makes rows (of one table, every after image with the columns
// cols) one statement's parameters and returns their size in bytes, or
// false when a value is left to the literal writer (sqltext.Param).
func (p *stmtParams) convert(rows []*binlog.Change, cols []int) (int, bool) {
	p.vals = p.vals[:0]
	size := 0
	for _, r := range rows {
		var n int
		var ok bool
		if p.vals, n, ok = appendParams(p.vals, r, cols); !ok {
			return 0, false
		}
		size += n
	}
	p.args = p.args[:0]
	for i, v := range p.vals {
		p.args = append(p.args, driver.NamedValue{Ordinal: i + 1, Value: v})
	}
	return size, true
}

// release forgets the values (they belong to the chunk) and returns p to
// the pool.
func (p *stmtParams) release() {
	clear(p.vals)
	clear(p.args)
	paramPool.Put(p)
}

// insertPrepared inserts rows, in the transaction begin opens (when it
// inserts any), as prepared INSERTs executed in the binary protocol, and
// returns how many it inserted: statements of the same number of rows
// each (one statement, prepared once for the chunk), then one statement
// of the rows left, prepared for them. The rows from the first statement
// with a value sqltext.Param leaves to the literal writer, or whose rows
// reach s.maxBatch bytes, or that the server cannot prepare (it may be out
// of prepared statements: max_prepared_stmt_count; the literals then say
// what else is wrong, if anything is), are left to the literal INSERTs.
//
// Only on the rows pool's binary sessions (rowsBinary), where parameters
// store what literals store. The server then neither lexes nor parses each
// value, nor names it, which was a fifth of its CPU for a snapshot; what
// it still does per value is build the statement's text for its binlog.
func (s *Sink) insertPrepared(ctx context.Context, a *applier, rows []*binlog.Change, begin func() error) (int, error) {
	t := rows[0].Table
	cols := sqltext.InsertColumns(t, rows[0].After)
	if len(cols) == 0 {
		return 0, nil
	}
	per := min(maxInsertRows, maxParams/len(cols))
	p := paramPool.Get().(*stmtParams)
	defer p.release()
	var stmt driver.Stmt
	prepared := 0 // the rows stmt inserts
	closeStmt := func() {
		if stmt != nil && a.conn != nil {
			_ = a.conn.Raw(func(any) error { return stmt.Close() })
		}
		stmt = nil
	}
	defer closeStmt()
	done := 0
	for done < len(rows) {
		n := min(per, len(rows)-done)
		size, ok := p.convert(rows[done:done+n], cols)
		if !ok || size > s.maxBatch {
			break
		}
		if done == 0 {
			if err := begin(); err != nil {
				return 0, err
			}
		}
		if n != prepared {
			closeStmt()
		}
		var unprepared error
		err := a.conn.Raw(func(dc any) error {
			if stmt == nil {
				q := sqltext.AppendInsertMarks(nil, t, cols, n)
				st, err := dc.(driver.ConnPrepareContext).PrepareContext(ctx, string(q))
				if err != nil {
					unprepared = err
					return nil
				}
				stmt, prepared = st, n
			}
			res, err := stmt.(driver.StmtExecContext).ExecContext(ctx, p.args)
			if err != nil {
				return err
			}
			got, err := res.RowsAffected()
			if err != nil {
				return err
			}
			if got != int64(n) {
				return unwritten(t, got, int64(n))
			}
			return nil
		})
		if err != nil {
			return done, err
		}
		if unprepared != nil {
			s.log.Debug("snapshot rows as literals: prepare failed", "table", t.QualifiedName(), "error", unprepared)
			break
		}
		done += n
	}
	return done, nil
}
