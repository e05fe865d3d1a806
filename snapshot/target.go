package snapshot

import (
	"context"
	"fmt"
	"strings"

	"github.com/sluice-cdc/sluice/binlog"
	"github.com/sluice-cdc/sluice/binlog/schema"
	"github.com/sluice-cdc/sluice/checkpoint"
	"github.com/sluice-cdc/sluice/sqltext"
)

// Target is where a snapshot's rows go, with its progress in the same
// transactions (sinks/mysql.Sink).
type Target interface {
	// SnapshotTables is the progress recorded for the source's tables.
	SnapshotTables(ctx context.Context, source string) ([]checkpoint.TableSnapshot, error)
	// TargetTable reports whether a target table exists and has rows.
	TargetTable(ctx context.Context, db, table string) (exists, hasRows bool, err error)
	// CreateTable creates a table (createTable names its database),
	// creating the database with createDatabase when it is missing.
	CreateTable(ctx context.Context, db, createDatabase, createTable string) error
	// BeginSnapshotTable records that ts is being copied into target,
	// emptying target first with truncate (ts as it is: a resumed copy's
	// From, After, Chunks and Rows are kept).
	BeginSnapshotTable(ctx context.Context, source string, ts checkpoint.TableSnapshot, target *binlog.Table, truncate bool) error
	// WriteSnapshotRows inserts rows and counts them in ts's progress,
	// with ts.After (the chunk's end) for a resume, in one transaction;
	// before committing it waits for turn (not nil), which returns once
	// the table's earlier chunks are committed.
	WriteSnapshotRows(ctx context.Context, source string, ts checkpoint.TableSnapshot, rows []*binlog.Change, turn func(context.Context) error) error
	// FinishSnapshotTable records that ts is copied.
	FinishSnapshotTable(ctx context.Context, source string, ts checkpoint.TableSnapshot) error
	// SeedSequence copies the sequence ts, whose earlier copy was
	// interrupted when interrupted: it records ts as being copied,
	// creates the target sequence with createSequence (creating the
	// database with createDatabase when it is missing), moves it to the
	// source's row (row, an insert into the routed sequence) as the
	// applier applies a sequence's row, and records the copy done.
	SeedSequence(ctx context.Context, source string, ts checkpoint.TableSnapshot, createDatabase, createSequence string, interrupted bool, row *binlog.Change) error
}

// renameCreate points the source's SHOW CREATE TABLE (or SHOW CREATE
// DATABASE) statement, which starts with CREATE TABLE and the quoted
// name, at another name.
func renameCreate(stmt, keyword, newName string) (string, error) {
	prefix := "CREATE " + keyword + " "
	if !strings.HasPrefix(stmt, prefix) {
		return "", fmt.Errorf("unexpected SHOW CREATE %s output %q", keyword, schema.Shorten(stmt, 80))
	}
	rest := stmt[len(prefix):]
	if keyword == "DATABASE" {
		rest = strings.TrimPrefix(rest, "IF NOT EXISTS ")
	}
	if !strings.HasPrefix(rest, "`") {
		return "", fmt.Errorf("unexpected SHOW CREATE %s output %q (sql_quote_show_create off?)", keyword, schema.Shorten(stmt, 80))
	}
	// The quoted name ends at the first backquote not doubled.
	i := 1
	for i < len(rest) {
		if rest[i] == '`' {
			if i+1 < len(rest) && rest[i+1] == '`' {
				i += 2
				continue
			}
			break
		}
		i++
	}
	if i >= len(rest) {
		return "", fmt.Errorf("unexpected SHOW CREATE %s output %q", keyword, schema.Shorten(stmt, 80))
	}
	if keyword == "DATABASE" {
		prefix += "IF NOT EXISTS "
	}
	return prefix + newName + rest[i+1:], nil
}

// createStatements reads the source's definition of a table and its
// database, named for the target table.
func createStatements(ctx context.Context, q queryer, src, dst *binlog.Table) (createDB, createTable string, err error) {
	return createStatementsOf(ctx, q, "TABLE", src, dst)
}

// createStatementsOf is createStatements for a TABLE or a SEQUENCE.
func createStatementsOf(ctx context.Context, q queryer, keyword string, src, dst *binlog.Table) (createDB, createTable string, err error) {
	var name, stmt string
	if err := q.QueryRowContext(ctx, "SHOW CREATE "+keyword+" "+sqltext.QualifiedName(src.Schema, src.Name)).Scan(&name, &stmt); err != nil {
		return "", "", fmt.Errorf("SHOW CREATE %s %s: %w", keyword, src.QualifiedName(), err)
	}
	if createTable, err = renameCreate(stmt, keyword, sqltext.QualifiedName(dst.Schema, dst.Name)); err != nil {
		return "", "", err
	}
	if err := q.QueryRowContext(ctx, "SHOW CREATE DATABASE "+sqltext.QuoteIdent(src.Schema)).Scan(&name, &stmt); err != nil {
		return "", "", fmt.Errorf("SHOW CREATE DATABASE %s: %w", src.Schema, err)
	}
	if createDB, err = renameCreate(stmt, "DATABASE", sqltext.QuoteIdent(dst.Schema)); err != nil {
		return "", "", err
	}
	return createDB, createTable, nil
}
