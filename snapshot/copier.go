package snapshot

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/sluice-cdc/sluice/binlog"
	"github.com/sluice-cdc/sluice/sqltext"
)

// Chunk sizes: a chunk is read with one query and written as one target
// transaction. Its row count adapts so that a chunk holds about
// chunkBytes of values, whatever the rows' width.
const (
	chunkBytes     = 1 << 20
	minChunkRows   = 10
	maxChunkRows   = 20000
	firstChunkRows = minChunkRows // then sized by the first chunk's bytes
	blockRows      = 256          // rows allocated at once
)

// chunk is rows of one table on their way to the target.
type chunk struct {
	job   *tableJob
	seq   uint64 // the chunk's place in its table's copy (from 0 in each run)
	rows  []*binlog.Change
	after []byte // selects the rows after this chunk (nil: a table without a key)
}

// copier reads one table, inside the reader's snapshot, in chunks: by its
// key (primary, or unique NOT NULL), each chunk the next rows after the
// last key read (keyset pagination, which no concurrent write can make
// skip or repeat a row, as the snapshot does not move); a table without
// such a key as one ordered stream, cut into chunks as it is read. Either
// way no more than a chunk of a table is in memory per reader, plus what
// waits for the writers.
type copier struct {
	conn  *sql.Conn
	table *binlog.Table // the source table
	route func(*binlog.Change) *binlog.Change
	cells *binlog.Cells // converts cells to values, their memory in blocks
	cols  []byte        // the select list
	size  int           // rows of the next chunk
	// maxBytes, when above 0, fails a read past it (ErrKeylessTooLarge).
	maxBytes int
}

func newCopier(conn *sql.Conn, t *binlog.Table, route func(*binlog.Change) *binlog.Change) *copier {
	c := &copier{conn: conn, table: t, route: route, cells: binlog.NewCells(t.Columns), size: firstChunkRows}
	for i := range t.Columns {
		if i > 0 {
			c.cols = append(c.cols, ',')
		}
		c.cols = append(c.cols, binlog.SelectExpr(&t.Columns[i])...)
	}
	return c
}

// copy sends the table's rows matching after (every row when nil) to
// emit, chunk by chunk, each with the condition selecting the rows after
// it (nil for a table without a key), and returns how many it read.
func (c *copier) copy(ctx context.Context, after []byte, emit func(rows []*binlog.Change, after []byte) error) (uint64, error) {
	if len(c.table.PK) == 0 {
		return c.stream(ctx, func(rows []*binlog.Change) error { return emit(rows, nil) })
	}
	var total uint64
	for {
		rows, bytes, err := c.read(ctx, c.queryAfter(after), 0, nil)
		if err != nil {
			return total, err
		}
		total += uint64(len(rows))
		full := len(rows) == c.size
		if len(rows) > 0 {
			after = appendAfter(nil, c.table, rows[len(rows)-1].After)
			c.adapt(len(rows), bytes)
			if err := emit(c.routed(rows), after); err != nil {
				return total, err
			}
		}
		if !full {
			return total, nil
		}
	}
}

// queryAfter is the next chunk's SELECT: rows matching after (every row
// when nil) in key order.
func (c *copier) queryAfter(after []byte) string {
	t := c.table
	q := append([]byte("SELECT "), c.cols...)
	q = append(q, " FROM "...)
	q = append(q, sqltext.QualifiedName(t.Schema, t.Name)...)
	if after != nil {
		q = append(q, " WHERE "...)
		q = append(q, after...)
	}
	q = append(q, " ORDER BY "...)
	for i, k := range t.PK {
		if i > 0 {
			q = append(q, ',')
		}
		q = sqltext.AppendIdent(q, t.Columns[k].Name)
	}
	q = append(q, " LIMIT "...)
	q = fmt.Appendf(q, "%d", c.size)
	return string(q)
}

// appendAfter appends the condition selecting the rows after last in t's
// key order: (k1 > v1) OR (k1 = v1 AND k2 > v2) OR ..., ranges MariaDB's
// optimizer reads from the index (a row comparison it may not).
func appendAfter(q []byte, t *binlog.Table, last []binlog.Value) []byte {
	for i := range t.PK {
		if i > 0 {
			q = append(q, " OR "...)
		}
		q = append(q, '(')
		for j, k := range t.PK[:i+1] {
			if j > 0 {
				q = append(q, " AND "...)
			}
			col := &t.Columns[k]
			q = sqltext.AppendIdent(q, col.Name)
			if j < i {
				q = append(q, '=')
			} else {
				q = append(q, '>')
			}
			q = sqltext.AppendLiteral(q, col, last[k])
		}
		q = append(q, ')')
	}
	return q
}

// adapt sizes the next chunk from the bytes this one's rows had.
func (c *copier) adapt(rows, bytes int) {
	if bytes <= 0 {
		return
	}
	c.size = min(max(rows*chunkBytes/bytes, minChunkRows), maxChunkRows)
}

// stream reads a table without a key as one query, emitting a chunk
// whenever enough rows are read.
func (c *copier) stream(ctx context.Context, emit func([]*binlog.Change) error) (uint64, error) {
	t := c.table
	q := "SELECT " + string(c.cols) + " FROM " + sqltext.QualifiedName(t.Schema, t.Name)
	var total uint64
	_, _, err := c.read(ctx, q, chunkBytes, func(rows []*binlog.Change) error {
		total += uint64(len(rows))
		return emit(c.routed(rows))
	})
	return total, err
}

// read runs q and converts its rows. With flushAt > 0 it hands them to
// flush each time they reach flushAt bytes (and at the end), otherwise it
// returns them with their size in bytes.
func (c *copier) read(ctx context.Context, q string, flushAt int, flush func([]*binlog.Change) error) ([]*binlog.Change, int, error) {
	res, err := c.conn.QueryContext(ctx, q)
	if err != nil {
		return nil, 0, fmt.Errorf("read %s: %w", c.table.QualifiedName(), err)
	}
	defer res.Close()
	n := len(c.table.Columns)
	cells := make([]sql.RawBytes, n)
	ptrs := make([]any, n)
	for i := range cells {
		ptrs[i] = &cells[i]
	}
	var out []*binlog.Change
	// Rows and their values are allocated in blocks, not one by one: a
	// snapshot is millions of rows, and the allocator and the collector
	// are much of its cost.
	var changes []binlog.Change
	var values []binlog.Value
	size := 0
	for res.Next() {
		if err := res.Scan(ptrs...); err != nil {
			return nil, 0, fmt.Errorf("read %s: %w", c.table.QualifiedName(), err)
		}
		if len(changes) == cap(changes) {
			changes = make([]binlog.Change, 0, blockRows)
		}
		if cap(values)-len(values) < n {
			values = make([]binlog.Value, 0, n*blockRows)
		}
		img := values[len(values) : len(values)+n : len(values)+n]
		values = values[:len(values)+n]
		for i, b := range cells {
			size += len(b) + 1
			if b == nil {
				continue // NULL
			}
			v, err := c.cells.Value(i, b)
			if err != nil {
				return nil, 0, fmt.Errorf("read %s column %s: %w", c.table.QualifiedName(), c.table.Columns[i].Name, err)
			}
			img[i] = v
		}
		if c.maxBytes > 0 && size > c.maxBytes {
			return nil, 0, fmt.Errorf("read %s: %w (more than %d MiB)", c.table.QualifiedName(), ErrKeylessTooLarge, c.maxBytes>>20)
		}
		changes = append(changes, binlog.Change{Table: c.table, Op: binlog.Insert, After: img})
		out = append(out, &changes[len(changes)-1])
		if flushAt > 0 && size >= flushAt {
			if err := flush(out); err != nil {
				return nil, 0, err
			}
			out, size = nil, 0
		}
	}
	if err := res.Err(); err != nil {
		return nil, 0, fmt.Errorf("read %s: %w", c.table.QualifiedName(), err)
	}
	if flushAt > 0 && len(out) > 0 {
		return nil, 0, flush(out)
	}
	return out, size, nil
}

// routed points the rows at their target table (the pipeline's routes).
func (c *copier) routed(rows []*binlog.Change) []*binlog.Change {
	if c.route == nil {
		return rows
	}
	for i, r := range rows {
		rows[i] = c.route(r)
	}
	return rows
}
