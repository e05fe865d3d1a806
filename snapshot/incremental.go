package snapshot

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"reflect"

	"github.com/sluice-cdc/sluice/binlog"
	"github.com/sluice-cdc/sluice/binlog/schema"
	"github.com/sluice-cdc/sluice/checkpoint"
	"github.com/sluice-cdc/sluice/sqltext"
)

// An incremental snapshot copies one table while its pipeline streams
// (Netflix DBLog's watermark algorithm, read-only on the source, as
// Debezium's read-only incremental snapshot): the table is read in key
// chunks, each with one SELECT inside a consistent snapshot of its own,
// and each chunk is written to the target between two streamed
// transactions, without the rows the stream changed meanwhile. The
// stream's side (the window of changed keys, the point where a chunk is
// written) is in replicator/incremental.go; this file reads the chunks.

// ErrDefinitionChanged: the table's definition changed since the chunk
// reader read it (DDL); a new reader must be made.
var ErrDefinitionChanged = errors.New("the table's definition changed on the source")

// Chunk is one chunk of an incremental snapshot.
type Chunk struct {
	// Rows are the source table's rows (not routed), as Insert changes.
	Rows []*binlog.Change
	// At is the position of the consistent snapshot the rows were read
	// in: the rows are the table's at At.GTID, every transaction it holds
	// and none after (the high watermark: once the stream has applied it,
	// the chunk can be written).
	At checkpoint.State
	// After selects the rows after this chunk (its last row's key), for
	// the next chunk; Last: this chunk read the table's last rows.
	After []byte
	Last  bool
}

// ChunkReader reads one source table in key chunks for an incremental
// snapshot. One chunk is in memory at a time.
type ChunkReader struct {
	db  *sql.DB
	r   *reader
	def *schema.Table
	c   *copier
}

// NewChunkReader reads the definition of a source table and opens a
// connection to read it. A table without a primary key or unique NOT
// NULL key is read whole, as one chunk of at most MaxKeylessBytes. The
// source must be MariaDB (the binlog position of a consistent snapshot).
func NewChunkReader(ctx context.Context, db *sql.DB, schemaName, table string) (*ChunkReader, error) {
	srv, err := detectServer(ctx, db)
	if err != nil {
		return nil, err
	}
	if !srv.mariadb {
		return nil, fmt.Errorf("the source is MySQL %s: the incremental snapshot needs a MariaDB source, as it reads each chunk in a consistent snapshot whose binlog position only MariaDB reports "+
			"(sluice takes a MySQL source's position under a global read lock, once per initial snapshot, never per chunk)", srv.version)
	}
	def, err := schema.LoadTable(ctx, db, schemaName, table)
	if err != nil {
		return nil, fmt.Errorf("read the definition of %s.%s: %w", schemaName, table, err)
	}
	if def == nil {
		return nil, fmt.Errorf("table %s.%s does not exist on the source", schemaName, table)
	}
	t := binlog.TableFromSchema(def)
	r, err := newReader(ctx, db)
	if err != nil {
		return nil, err
	}
	c := newCopier(r.conn, t, nil)
	if len(t.PK) == 0 {
		c.maxBytes = MaxKeylessBytes
	}
	return &ChunkReader{db: db, r: r, def: def, c: c}, nil
}

// MaxKeylessBytes bounds a table without a primary key or unique NOT NULL
// key that an incremental snapshot copies: such a table is one chunk,
// read whole into memory (no key to resume after, nor to tell the rows a
// change meets).
var MaxKeylessBytes = 64 << 20 // a variable for tests

// ErrKeylessTooLarge: a keyless table holds more than MaxKeylessBytes.
var ErrKeylessTooLarge = errors.New("too large for one chunk")

// Table is the source table's definition the chunks are read with.
func (cr *ChunkReader) Table() *binlog.Table { return cr.c.table }

// Close closes the reader's connection.
func (cr *ChunkReader) Close() { cr.r.close() }

// Read reads the chunk of rows matching after (every row when nil), in
// key order, with one SELECT in a consistent snapshot.
func (cr *ChunkReader) Read(ctx context.Context, after []byte) (Chunk, error) {
	var ch Chunk
	name := cr.c.table.QualifiedName()
	at, err := cr.r.begin(ctx)
	if err != nil {
		return ch, fmt.Errorf("read %s: %w", name, err)
	}
	defer cr.r.end(ctx)
	q := cr.c.queryAfter(after)
	if len(cr.c.table.PK) == 0 {
		// The whole table, one chunk (MaxKeylessBytes).
		q = "SELECT " + string(cr.c.cols) + " FROM " + sqltext.QualifiedName(cr.c.table.Schema, cr.c.table.Name)
	}
	rows, bytes, err := cr.c.read(ctx, q, 0, nil)
	if err != nil {
		return ch, err
	}
	// The definition, read while the SELECT's metadata lock is held, must
	// be the one the rows were selected with.
	now, err := schema.LoadTable(ctx, cr.db, cr.def.Schema, cr.def.Name)
	if err != nil {
		return ch, fmt.Errorf("read %s: %w", name, err)
	}
	if now == nil || !reflect.DeepEqual(now, cr.def) {
		return ch, ErrDefinitionChanged
	}
	if err := cr.r.end(ctx); err != nil {
		return ch, fmt.Errorf("read %s: %w", name, err)
	}
	ch.Rows, ch.At = rows, at
	ch.Last = len(rows) < cr.c.size || len(cr.c.table.PK) == 0
	if len(rows) > 0 && len(cr.c.table.PK) > 0 {
		ch.After = appendAfter(nil, cr.c.table, rows[len(rows)-1].After)
		cr.c.adapt(len(rows), bytes)
	}
	return ch, nil
}

// Routed points rows at their target table with route (nil keeps them).
func Routed(rows []*binlog.Change, route func(*binlog.Change) *binlog.Change) []*binlog.Change {
	return (&copier{route: route}).routed(rows)
}

// KeyOf is the key of a row image of t (its primary key, or unique NOT
// NULL key, as SQL literals), the same for a streamed change and a row
// read by a chunk.
func KeyOf(dst []byte, t *binlog.Table, img []binlog.Value) []byte {
	for i, k := range t.PK {
		if i > 0 {
			dst = append(dst, ',')
		}
		var v binlog.Value
		if k < len(img) {
			v = img[k]
		}
		dst = sqltext.AppendLiteral(dst, &t.Columns[k], v)
	}
	return dst
}

// PrepareTarget creates a source table's target table (dst, routed) from
// the source's definition when the target lacks it.
func PrepareTarget(ctx context.Context, db *sql.DB, target Target, src, dst *binlog.Table) (created bool, err error) {
	exists, _, err := target.TargetTable(ctx, dst.Schema, dst.Name)
	if err != nil || exists {
		return false, err
	}
	if len(dst.Columns) != len(src.Columns) {
		return false, fmt.Errorf("table %s is routed to %s with added columns, which does not exist on the target: create it with the route's columns in its key", src.QualifiedName(), dst.QualifiedName())
	}
	createDB, createTable, err := createStatements(ctx, db, src, dst)
	if err != nil {
		return false, err
	}
	return true, target.CreateTable(ctx, dst.Schema, createDB, createTable)
}

// AppendClear appends the DELETE of a chunk's key range on its target
// table t (the routed source table, with the source's key columns): the
// rows after lo (nil: from the first) and not after hi (nil: to the last),
// except the keys in keep (KeyOf strings: rows the stream wrote). A re-seed
// thus removes target rows the source no longer has; the chunk's rows are
// written after it.
func AppendClear(dst []byte, t *binlog.Table, lo, hi []byte, keep []string) []byte {
	dst = append(dst, "DELETE FROM "...)
	dst = append(dst, sqltext.QualifiedName(t.Schema, t.Name)...)
	dst = append(dst, " WHERE 1"...)
	if lo != nil {
		dst = append(dst, " AND ("...)
		dst = append(dst, lo...)
		dst = append(dst, ')')
	}
	if hi != nil {
		dst = append(dst, " AND NOT ("...)
		dst = append(dst, hi...)
		dst = append(dst, ')')
	}
	if len(keep) > 0 {
		dst = append(dst, " AND ("...)
		for i, k := range t.PK {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = sqltext.AppendIdent(dst, t.Columns[k].Name)
		}
		dst = append(dst, ") NOT IN ("...)
		for i, k := range keep {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, '(')
			dst = append(dst, k...)
			dst = append(dst, ')')
		}
		dst = append(dst, ')')
	}
	return dst
}
