// Package verify compares tables between a source and a target MySQL or
// MariaDB server in primary-key chunks with checksums, the way
// pt-table-checksum and sync-diff-inspector do, for `sluice verify`.
//
// Both servers run the same checksum query over the same key range, so only
// two numbers per chunk cross the network. The chunk bounds come from the
// source; a target that was fed by replication may still be catching up, so
// a differing chunk is checked again a few times before it counts.
package verify

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sluice-cdc/sluice/backoff"
	"github.com/sluice-cdc/sluice/sqltext"
)

// Table is one table to compare. Routes can merge several source tables into
// one target table, so the target side may have a different name, extra
// columns (ignored: only the source's columns are compared), and a filter
// selecting the rows that came from this source table.
type Table struct {
	SourceSchema, SourceTable string
	TargetSchema, TargetTable string
	// TargetWhere, if set, is an extra SQL condition on the target side
	// (e.g. "`src` = ?"), with TargetArgs as its arguments.
	TargetWhere string
	TargetArgs  []any
	// Sequence: the source table is a MariaDB sequence, compared by its
	// row (its definition and state) with a sequence on the target.
	Sequence bool
}

// Options tunes Compare. The zero value is usable.
type Options struct {
	ChunkSize int // rows per chunk, default 1000
	// Retries is how many times a mismatching chunk is re-checked before it
	// counts, default 3; negative means none.
	Retries int
	// RetryWait is the wait between re-checks, default 1s (replication may
	// be catching up); negative means none.
	RetryWait time.Duration
	// Progress, if set, is called after each chunk of each table.
	Progress func(p Progress)
}

// Progress reports how far the comparison of one table is.
type Progress struct {
	Table       string // "schema.table" of the source
	Chunk       int    // chunks done
	RowsChecked int64
	RowsTotal   int64 // estimate from information_schema.TABLES.TABLE_ROWS (may be 0)
}

// TableResult is the outcome for one Table.
type TableResult struct {
	Source, Target string // "schema.table"
	Rows           int64  // rows compared on the source side
	Chunks         int
	Match          bool
	// FirstDiff describes the first differing key range when Match is false,
	// e.g. "`id` > 1000 AND `id` <= 2000: source 1000 rows checksum 8f3a..., target 999 rows checksum 12bc..."
	// or "whole table: ..." for tables without a usable key, or "missing on target".
	FirstDiff string
	Err       error // a table-level error (missing table, permissions); Match is false
}

// systemSchemas hold the servers' own tables, which differ between any two
// servers and are never replicated as data.
var systemSchemas = []string{"mysql", "sys", "information_schema", "performance_schema"}

// Tables lists the base tables and sequences of the source that pass
// match (schema, table), excluding the servers' own schemas (mysql, sys,
// information_schema, performance_schema), sorted by schema and table.
// A nil match selects every table.
func Tables(ctx context.Context, src *sql.DB, match func(schema, table string) bool) ([]Table, error) {
	// MariaDB reports system-versioned tables with their own type; they hold
	// data like any base table.
	rows, err := src.QueryContext(ctx, `SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE = 'SEQUENCE' FROM information_schema.TABLES
		WHERE TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED', 'SEQUENCE')
		AND TABLE_SCHEMA NOT IN ('mysql', 'sys', 'information_schema', 'performance_schema')`)
	if err != nil {
		return nil, fmt.Errorf("list source tables: %w", err)
	}
	defer rows.Close()
	var out []Table
	for rows.Next() {
		var schema, table string
		var seq bool
		if err := rows.Scan(&schema, &table, &seq); err != nil {
			return nil, fmt.Errorf("list source tables: %w", err)
		}
		// The NOT IN above compares with the server's collation; this keeps
		// out differently-cased spellings on case-sensitive file systems too.
		if slices.Contains(systemSchemas, strings.ToLower(schema)) {
			continue
		}
		if match != nil && !match(schema, table) {
			continue
		}
		out = append(out, Table{SourceSchema: schema, SourceTable: table, TargetSchema: schema, TargetTable: table, Sequence: seq})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list source tables: %w", err)
	}
	// Sorted here rather than by ORDER BY: information_schema's collation is
	// case-insensitive, and the order should not depend on the server.
	slices.SortFunc(out, func(a, b Table) int {
		if c := strings.Compare(a.SourceSchema, b.SourceSchema); c != 0 {
			return c
		}
		return strings.Compare(a.SourceTable, b.SourceTable)
	})
	return out, nil
}

// Compare compares each table and returns one result per table, in order.
// It returns an error only for a failure that stops everything (ctx
// cancelled, a server unreachable); per-table problems go in
// TableResult.Err. With an error, the results of the tables finished before
// it are returned too.
func Compare(ctx context.Context, src, dst *sql.DB, tables []Table, opts Options) ([]TableResult, error) {
	opts = opts.withDefaults()
	out := make([]TableResult, 0, len(tables))
	for _, t := range tables {
		if err := ctx.Err(); err != nil {
			return out, fmt.Errorf("verify: %w", err)
		}
		res, err := compareTable(ctx, src, dst, t, opts)
		if err != nil {
			return out, err
		}
		if res.Err != nil && ctx.Err() != nil {
			// The table failed because everything is being cancelled, not
			// because of the table.
			return out, fmt.Errorf("verify: %w", ctx.Err())
		}
		out = append(out, res)
	}
	return out, nil
}

func (o Options) withDefaults() Options {
	if o.ChunkSize <= 0 {
		o.ChunkSize = 1000
	}
	switch {
	case o.Retries == 0:
		o.Retries = 3
	case o.Retries < 0:
		o.Retries = 0
	}
	switch {
	case o.RetryWait == 0:
		o.RetryWait = time.Second
	case o.RetryWait < 0:
		o.RetryWait = 0
	}
	return o
}

// compareTable returns an error only when a server cannot be reached; every
// other problem is the table's and goes in TableResult.Err.
func compareTable(ctx context.Context, src, dst *sql.DB, t Table, opts Options) (TableResult, error) {
	res := TableResult{Source: t.SourceSchema + "." + t.SourceTable, Target: t.TargetSchema + "." + t.TargetTable}
	sconn, err := openSession(ctx, src)
	if err != nil {
		return res, fmt.Errorf("verify: source: %w", err)
	}
	defer sconn.close()
	dconn, err := openSession(ctx, dst)
	if err != nil {
		return res, fmt.Errorf("verify: target: %w", err)
	}
	defer dconn.close()

	c := &comparison{t: t, opts: opts, src: sconn.conn, dst: dconn.conn, res: &res}
	if err := c.run(ctx); err != nil {
		res.Match = false
		res.Err = err
	}
	return res, nil
}

// session is a connection with the session settings the checksums need,
// remembering what to put back before it returns to the caller's pool.
type session struct {
	conn   *sql.Conn
	prevTZ string
}

func openSession(ctx context.Context, db *sql.DB) (*session, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	var tz string
	if err := conn.QueryRowContext(ctx, "SELECT @@session.time_zone").Scan(&tz); err != nil {
		conn.Close()
		return nil, fmt.Errorf("read time_zone: %w", err)
	}
	// TIMESTAMP values are stored in UTC but shown in the session's zone;
	// servers in different zones would otherwise checksum different text.
	if _, err := conn.ExecContext(ctx, "SET SESSION time_zone = '+00:00'"); err != nil {
		conn.Close()
		return nil, fmt.Errorf("set time_zone: %w", err)
	}
	return &session{conn: conn, prevTZ: tz}, nil
}

func (s *session) close() {
	// The caller's pool gets the connection back: restore its zone even
	// when the comparison was cancelled. A failure means the connection is
	// broken, and the pool discards broken connections on next use.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _ = s.conn.ExecContext(ctx, "SET SESSION time_zone = ?", s.prevTZ)
	s.conn.Close()
}

// comparison is the state of comparing one table.
type comparison struct {
	t        Table
	opts     Options
	src, dst *sql.Conn
	res      *TableResult

	key      []column // empty: compared as one chunk
	srcFrom  string   // FROM clause on the source, with the index hint
	dstFrom  string
	sumExpr  string // the select list of the checksum query
	total    int64
	diffSeen bool
}

func (c *comparison) run(ctx context.Context) error {
	if c.t.Sequence {
		return c.sequence(ctx)
	}
	cols, key, keyIndex, err := sourceShape(ctx, c.src, c.t.SourceSchema, c.t.SourceTable)
	if err != nil {
		return err
	}
	missing, found, err := missingOnTarget(ctx, c.dst, c.t.TargetSchema, c.t.TargetTable, cols)
	if err != nil {
		return err
	}
	if !found {
		c.res.FirstDiff = "missing on target"
		return nil
	}
	if len(missing) > 0 {
		c.res.FirstDiff = "columns missing on target: " + strings.Join(missing, ", ")
		return nil
	}
	c.key = key
	c.sumExpr = checksumSelect(cols)
	c.srcFrom = qualified(c.t.SourceSchema, c.t.SourceTable)
	if len(key) > 0 {
		// The optimizer sometimes prefers a full scan for a secondary key
		// when it needs every column; chunks are only cheap on the key.
		c.srcFrom += " FORCE INDEX (" + sqltext.QuoteIdent(keyIndex) + ")"
	}
	c.dstFrom = qualified(c.t.TargetSchema, c.t.TargetTable)
	c.total = estimateRows(ctx, c.src, c.t.SourceSchema, c.t.SourceTable)
	c.res.Match = true

	if len(key) == 0 {
		return c.chunk(ctx, nil, nil)
	}
	var lower []keyValue
	for {
		upper, err := c.nextBound(ctx, lower)
		if err != nil {
			return err
		}
		if err := c.chunk(ctx, lower, upper); err != nil {
			return err
		}
		if upper == nil {
			return nil
		}
		lower = upper
	}
}

// nextBound returns the key of the row that ends the chunk after lower
// (nil: the start), or nil when fewer than a chunk's rows remain.
func (c *comparison) nextBound(ctx context.Context, lower []keyValue) ([]keyValue, error) {
	var exprs []string
	for _, k := range c.key {
		exprs = append(exprs, k.boundExprs()...)
	}
	var b strings.Builder
	b.WriteString("SELECT " + strings.Join(exprs, ", ") + " FROM " + c.srcFrom)
	if lower != nil {
		b.WriteString(" WHERE " + keyAfter(c.key, lower))
	}
	b.WriteString(" ORDER BY ")
	for i, k := range c.key {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(sqltext.QuoteIdent(k.name))
	}
	fmt.Fprintf(&b, " LIMIT 1 OFFSET %d", c.opts.ChunkSize-1)

	raw := make([]sql.NullString, len(exprs))
	dest := make([]any, len(raw))
	for i := range raw {
		dest[i] = &raw[i]
	}
	err := c.src.QueryRowContext(ctx, b.String()).Scan(dest...)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("find chunk bound: %w", err)
	}
	upper := make([]keyValue, len(c.key))
	for i, k := range c.key {
		n := len(k.boundExprs())
		vals := make([]string, n)
		for j := range vals {
			if !raw[j].Valid {
				return nil, fmt.Errorf("key column %s is NULL", sqltext.QuoteIdent(k.name))
			}
			vals[j] = raw[j].String
		}
		raw = raw[n:]
		if upper[i], err = k.value(vals); err != nil {
			return nil, err
		}
	}
	// A bound that does not sort after the previous one would make the walk
	// loop forever; it means a value did not survive the round trip as a
	// literal.
	if lower != nil && sameKey(lower, upper) {
		return nil, fmt.Errorf("key walk stuck at %s", keyTuple(lower))
	}
	return upper, nil
}

type checksum struct {
	rows int64
	sum  uint64
}

// chunk compares the rows with lower < key <= upper (nil: unbounded).
func (c *comparison) chunk(ctx context.Context, lower, upper []keyValue) error {
	where := rangeCond(c.key, lower, upper)
	var s, d checksum
	var err error
	if c.diffSeen {
		// The table is already a mismatch and only the first diff is
		// reported: the source's row count is all that is left to learn,
		// and re-checks would only add waits.
		s, err = rangeQuery(ctx, c.src, "COUNT(*), 0", c.srcFrom, where, "", nil)
	} else {
		s, d, err = c.checksumBoth(ctx, where)
		for i := 0; err == nil && s != d && i < c.opts.Retries; i++ {
			if err = backoff.Sleep(ctx, c.opts.RetryWait); err == nil {
				s, d, err = c.checksumBoth(ctx, where)
			}
		}
		if err == nil && s != d {
			c.diffSeen = true
			c.res.Match = false
			c.res.FirstDiff = fmt.Sprintf("%s: source %d rows checksum %08x, target %d rows checksum %08x",
				describeRange(c.key, lower, upper), s.rows, s.sum, d.rows, d.sum)
		}
	}
	if err != nil {
		return err
	}
	c.res.Rows += s.rows
	c.res.Chunks++
	if c.opts.Progress != nil {
		c.opts.Progress(Progress{Table: c.res.Source, Chunk: c.res.Chunks, RowsChecked: c.res.Rows, RowsTotal: c.total})
	}
	return nil
}

// checksumBoth runs the two sides at once: they are different servers, and
// the target's answer is then as close in time to the source's as it gets.
func (c *comparison) checksumBoth(ctx context.Context, where string) (s, d checksum, err error) {
	type answer struct {
		sum checksum
		err error
	}
	ch := make(chan answer, 1)
	go func() {
		sum, err := rangeQuery(ctx, c.dst, c.sumExpr, c.dstFrom, where, c.t.TargetWhere, c.t.TargetArgs)
		ch <- answer{sum, err}
	}()
	s, serr := rangeQuery(ctx, c.src, c.sumExpr, c.srcFrom, where, "", nil)
	a := <-ch
	if serr != nil {
		return s, a.sum, fmt.Errorf("source: %w", serr)
	}
	if a.err != nil {
		return s, a.sum, fmt.Errorf("target: %w", a.err)
	}
	return s, a.sum, nil
}

// rangeQuery runs SELECT list FROM from WHERE where AND (extra), where list
// yields a count and a checksum.
func rangeQuery(ctx context.Context, conn *sql.Conn, list, from, where, extra string, args []any) (checksum, error) {
	var conds []string
	if where != "" {
		conds = append(conds, where)
	}
	if extra != "" {
		conds = append(conds, "("+extra+")")
	}
	q := "SELECT " + list + " FROM " + from
	if len(conds) > 0 {
		q += " WHERE " + strings.Join(conds, " AND ")
	}
	var sum checksum
	if err := conn.QueryRowContext(ctx, q, args...).Scan(&sum.rows, &sum.sum); err != nil {
		return sum, fmt.Errorf("checksum: %w", err)
	}
	return sum, nil
}

// estimateRows is only for progress reports, so a failure just means no
// estimate.
func estimateRows(ctx context.Context, conn *sql.Conn, schema, table string) int64 {
	var n sql.NullInt64
	_ = conn.QueryRowContext(ctx, `SELECT TABLE_ROWS FROM information_schema.TABLES
		WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?`, schema, table).Scan(&n)
	return n.Int64
}
