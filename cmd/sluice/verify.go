package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/sluice-cdc/sluice/config"
	"github.com/sluice-cdc/sluice/mysqlconn"
	"github.com/sluice-cdc/sluice/verify"
)

const verifyUsage = `usage: sluice verify -c FILE [--pipeline NAME] [--chunk N]

Compares each source table of the pipelines (MySQL sinks) with the target,
in primary-key chunks with checksums (a MariaDB sequence by its row: its
definition and state), honouring include/exclude and routes
(a routed table is compared with the rows of the target table that its
route's source_column, schema_column and table_column attribute to it). Prints one
line per table, MATCH or MISMATCH with the first differing key range, and
exits 1 when a table differs. Run it once the target has caught up (e.g.
after sluice run --stop-at-end): a differing chunk is re-checked 3 times,
1s apart, to let replication finish.

flags:
`

func runVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("verify", verifyUsage, stderr)
	path := configFlag(fs)
	var pipelines listFlag
	fs.Var(&pipelines, "pipeline", "verify only this pipeline; repeatable")
	chunk := fs.Int("chunk", 1000, "rows per chunk")
	quiet := fs.Bool("quiet", false, "no progress lines on stderr")
	fs.BoolVar(quiet, "q", false, "same as --quiet")
	logs := addLogFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if _, err := logs.oneShot(stderr); err != nil {
		return err
	}
	// With --log-format json every stderr line is JSON, progress included.
	progress := func(table string, rows, total int64, chunks int) {
		if total > 0 {
			fmt.Fprintf(stderr, "  %s: %d of ~%d rows (%d chunks)\n", table, rows, total, chunks)
		} else {
			fmt.Fprintf(stderr, "  %s: %d rows (%d chunks)\n", table, rows, chunks)
		}
	}
	if logs.format == "json" {
		plog := slog.New(slog.NewJSONHandler(stderr, nil))
		progress = func(table string, rows, total int64, chunks int) {
			plog.Info("verify progress", "table", table, "rows_checked", rows, "rows_estimated", total, "chunks", chunks)
		}
	}
	cfg, err := loadConfig(fs, *path)
	if err != nil {
		return err
	}
	if err := checkPipelines(cfg, pipelines); err != nil {
		return err
	}
	mismatches, compared, skipped := 0, 0, 0
	var uncomparable []string
	for _, p := range cfg.Pipelines {
		if len(pipelines) > 0 && !slices.Contains(pipelines, p.Name) {
			continue
		}
		if p.Sink.Type != "mysql" {
			fmt.Fprintf(stdout, "%s: sink type %s: nothing to compare\n", p.Name, p.Sink.Type)
			uncomparable = append(uncomparable, p.Name+" ("+p.Sink.Type+")")
			continue
		}
		dst, err := mysqlconn.Open(ctx, p.Sink.Conn, nil)
		if err != nil {
			return err
		}
		for _, s := range p.Sources {
			src, err := mysqlconn.Open(ctx, s.Conn, nil)
			if err != nil {
				dst.Close()
				return err
			}
			all, err := verify.Tables(ctx, src, s.Filter.Match)
			if err != nil {
				src.Close()
				dst.Close()
				return fmt.Errorf("%s: %w", s.Conn, err)
			}
			var tables []verify.Table
			for _, t := range all {
				if why := routeTable(p, s, &t); why != "" {
					skipped++
					fmt.Fprintf(stdout, "SKIPPED   %s/%s %s.%s: %s\n", p.Name, s.Name, t.SourceSchema, t.SourceTable, why)
					continue
				}
				tables = append(tables, t)
			}
			lastProgress := time.Now()
			opts := verify.Options{ChunkSize: *chunk, Progress: func(pr verify.Progress) {
				if *quiet || time.Since(lastProgress) < 2*time.Second {
					return
				}
				lastProgress = time.Now()
				progress(pr.Table, pr.RowsChecked, pr.RowsTotal, pr.Chunk)
			}}
			results, err := verify.Compare(ctx, src, dst, tables, opts)
			for _, r := range results {
				compared++
				switch {
				case r.Err != nil:
					mismatches++
					fmt.Fprintf(stdout, "ERROR     %s/%s %s: %v\n", p.Name, s.Name, r.Source, r.Err)
				case r.Match:
					fmt.Fprintf(stdout, "MATCH     %s/%s %s (%d rows, %d chunks)\n", p.Name, s.Name, r.Source, r.Rows, r.Chunks)
				default:
					mismatches++
					fmt.Fprintf(stdout, "MISMATCH  %s/%s %s -> %s: %s\n", p.Name, s.Name, r.Source, r.Target, r.FirstDiff)
				}
			}
			src.Close()
			if err != nil {
				dst.Close()
				return err
			}
		}
		dst.Close()
	}
	fmt.Fprintf(stdout, "%d table(s) compared, %d differ", compared, mismatches)
	if skipped > 0 {
		fmt.Fprintf(stdout, ", %d skipped", skipped)
	}
	fmt.Fprintln(stdout)
	if mismatches > 0 {
		return exitWith{1}
	}
	if compared == 0 && len(uncomparable) > 0 {
		return usagef("nothing compared: verify compares MySQL/MariaDB targets, and the sinks of %s cannot be compared", strings.Join(uncomparable, ", "))
	}
	return nil
}

// routeTable points t at the target table the pipeline's routes send it
// to, comparing only the rows the route's columns say came from it. It
// returns why the table cannot be compared, if it cannot.
func routeTable(p *config.Pipeline, s *config.Source, t *verify.Table) string {
	if len(s.Ops) < 3 {
		return "the pipeline keeps only some operations (operations:), so the target is not meant to equal the source"
	}
	r := p.Route(t.SourceSchema, t.SourceTable)
	if r == nil {
		return ""
	}
	t.TargetSchema, t.TargetTable = r.Schema, r.Table
	var conds []string
	for _, c := range []struct{ col, val string }{{r.SourceColumn, s.Name}, {r.SchemaColumn, t.SourceSchema}, {r.TableColumn, t.SourceTable}} {
		if c.col != "" {
			conds = append(conds, "`"+strings.ReplaceAll(c.col, "`", "``")+"` = ?")
			t.TargetArgs = append(t.TargetArgs, c.val)
		}
	}
	if len(conds) == 0 && r.Merging(p) {
		return fmt.Sprintf("route %q merges several tables into %s without source_column, schema_column or table_column, so the rows of this table cannot be told apart there", r.Match, r.To)
	}
	t.TargetWhere = strings.Join(conds, " AND ")
	return ""
}
