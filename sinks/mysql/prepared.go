package mysql

import (
	"context"
	"database/sql/driver"
	"fmt"
	"sync"

	"github.com/sluice-cdc/sluice/binlog"
	"github.com/sluice-cdc/sluice/sqltext"
)

// maxParams is the most parameter markers a prepared statement may have.
const maxParams = 65535

// chunkParams holds a snapshot chunk's values as prepared-statement
// parameters, reused from chunk to chunk.
type chunkParams struct {
	args  []driver.NamedValue
	sizes []int // each row's bytes
}

var paramPool = sync.Pool{New: func() any { return new(chunkParams) }}

// convert makes rows (of one table, every after image with the columns
// cols) parameters of statements of per rows, or returns false when a
// value is left to the literal writer (sqltext.Param).
func (p *chunkParams) convert(rows []*binlog.Change, cols []int, per int) bool {
	t := rows[0].Table
	p.args, p.sizes = p.args[:0], p.sizes[:0]
	for _, r := range rows {
		size := 0
		for _, i := range cols {
			v, n, ok := sqltext.Param(&t.Columns[i], r.After[i])
			if !ok {
				return false
			}
			p.args = append(p.args, driver.NamedValue{Ordinal: len(p.args)%(per*len(cols)) + 1, Value: v})
			size += n + 1
		}
		p.sizes = append(p.sizes, size)
	}
	return true
}

// release forgets the values (they belong to the chunk) and returns p to
// the pool.
func (p *chunkParams) release() {
	clear(p.args)
	paramPool.Put(p)
}

// insertPrepared inserts rows, in the transaction begin opens (when it
// inserts any), as prepared INSERTs
// of the same number of rows each (one statement, prepared once for the
// chunk, executed in the binary protocol), and returns how many it
// inserted: the rows after them (the tail shorter than a statement, or
// rows with a value sqltext.Param leaves to the literal writer) are left
// to the text INSERTs.
//
// Only on the rows pool's binary sessions (rowsBinary), where parameters
// store what literals store. The server then neither lexes nor parses each
// value, nor names it, which was a fifth of its CPU for a snapshot; what
// it still does per value is build the statement's text for its binlog.
// A statement's rows stop short of s.maxBatch bytes; a group cut short by
// that goes as text.
func (s *Sink) insertPrepared(ctx context.Context, a *applier, rows []*binlog.Change, begin func() error) (int, error) {
	t := rows[0].Table
	cols := sqltext.InsertColumns(t, rows[0].After)
	if len(cols) == 0 {
		return 0, nil
	}
	per := min(maxInsertRows, maxParams/len(cols))
	if len(rows) < per {
		return 0, nil
	}
	p := paramPool.Get().(*chunkParams)
	defer p.release()
	if !p.convert(rows, cols, per) {
		return 0, nil
	}
	if err := begin(); err != nil {
		return 0, err
	}
	var stmt driver.Stmt
	defer func() {
		if stmt != nil && a.conn != nil {
			_ = a.conn.Raw(func(any) error { return stmt.Close() })
		}
	}()
	done := 0
	for len(rows)-done >= per {
		size := 0
		for _, n := range p.sizes[done : done+per] {
			size += n
		}
		if size > s.maxBatch {
			break
		}
		var unprepared error
		err := a.conn.Raw(func(dc any) error {
			if stmt == nil {
				q := sqltext.AppendInsertMarks(nil, t, cols, per)
				st, err := dc.(driver.ConnPrepareContext).PrepareContext(ctx, string(q))
				if err != nil {
					unprepared = err
					return nil
				}
				stmt = st
			}
			res, err := stmt.(driver.StmtExecContext).ExecContext(ctx, p.args[done*len(cols):(done+per)*len(cols)])
			if err != nil {
				return err
			}
			n, err := res.RowsAffected()
			if err != nil {
				return err
			}
			if n != int64(per) {
				return fmt.Errorf("%s: the target table wrote %d of %d rows: it has rows the snapshot did not write", t.QualifiedName(), n, per)
			}
			return nil
		})
		if err != nil {
			return done, err
		}
		if unprepared != nil {
			// The literals say what is wrong, if anything is (the server
			// may be out of prepared statements: max_prepared_stmt_count).
			s.log.Debug("snapshot rows as literals: prepare failed", "table", t.QualifiedName(), "error", unprepared)
			return done, nil
		}
		done += per
	}
	return done, nil
}
