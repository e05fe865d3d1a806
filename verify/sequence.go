package verify

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/sluice-cdc/sluice/backoff"
)

// sequenceColumns are a MariaDB sequence's columns: its definition and its
// state (the next value not handed out to a cache, and the cycle count),
// which replication keeps equal (sinks/mysql/sequence.go).
var sequenceColumns = []string{"next_not_cached_value", "minimum_value", "maximum_value", "start_value",
	"increment", "cache_size", "cycle_option", "cycle_count"}

// sequence compares a sequence's row with the target's, which must be a
// sequence too. A differing row is read again Retries times, as the
// target may be catching up.
func (c *comparison) sequence(ctx context.Context) error {
	if c.t.TargetWhere != "" {
		return fmt.Errorf("sequence %s is routed with source, schema or table columns, which a sequence cannot have", c.res.Source)
	}
	var typ string
	err := c.dst.QueryRowContext(ctx, "SELECT TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
		c.t.TargetSchema, c.t.TargetTable).Scan(&typ)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		c.res.FirstDiff = "missing on target"
		return nil
	case err != nil:
		return fmt.Errorf("read the target table's type: %w", err)
	case typ != "SEQUENCE":
		c.res.FirstDiff = "not a sequence on the target (" + strings.ToLower(typ) + ")"
		return nil
	}
	diff, err := c.sequenceDiff(ctx)
	for i := 0; err == nil && diff != "" && i < c.opts.Retries; i++ {
		if err = backoff.Sleep(ctx, c.opts.RetryWait); err == nil {
			diff, err = c.sequenceDiff(ctx)
		}
	}
	if err != nil {
		return err
	}
	c.res.Rows, c.res.Chunks, c.res.Match = 1, 1, diff == ""
	if diff != "" {
		c.res.FirstDiff = "sequence " + diff
	}
	if c.opts.Progress != nil {
		c.opts.Progress(Progress{Table: c.res.Source, Chunk: 1, RowsChecked: 1, RowsTotal: 1})
	}
	return nil
}

// sequenceDiff reads the sequence's row on both sides and describes the
// columns that differ ("" when none does).
func (c *comparison) sequenceDiff(ctx context.Context) (string, error) {
	q := "SELECT " + strings.Join(sequenceColumns, ", ") + " FROM "
	s, err := sequenceRow(ctx, c.src, q+qualified(c.t.SourceSchema, c.t.SourceTable))
	if err != nil {
		return "", fmt.Errorf("source: %w", err)
	}
	d, err := sequenceRow(ctx, c.dst, q+qualified(c.t.TargetSchema, c.t.TargetTable))
	if err != nil {
		return "", fmt.Errorf("target: %w", err)
	}
	var diffs []string
	for i, name := range sequenceColumns {
		if s[i] != d[i] {
			diffs = append(diffs, fmt.Sprintf("%s: source %s, target %s", name, s[i], d[i]))
		}
	}
	return strings.Join(diffs, "; "), nil
}

// sequenceRow is the values of sequenceColumns in a sequence's row.
func sequenceRow(ctx context.Context, conn *sql.Conn, q string) ([]string, error) {
	vals := make([]sql.NullString, len(sequenceColumns))
	dest := make([]any, len(vals))
	for i := range vals {
		dest[i] = &vals[i]
	}
	if err := conn.QueryRowContext(ctx, q).Scan(dest...); err != nil {
		return nil, fmt.Errorf("read the sequence: %w", err)
	}
	out := make([]string, len(vals))
	for i, v := range vals {
		out[i] = v.String
	}
	return out, nil
}
