package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/sluice-cdc/sluice/binlog"
	"github.com/sluice-cdc/sluice/mysqlconn"
	mysqlsink "github.com/sluice-cdc/sluice/sinks/mysql"
	"github.com/sluice-cdc/sluice/sqltext"
)

const dumpUsage = `usage:
  sluice dump --source mysql://USER:PASS@HOST:PORT [--from-start | --start-gtid SET | --start-file F --start-pos N]
              [--stop-at-end] [--limit N] [--include PAT] [--exclude PAT] [--format json|sql [--reverse]]
  sluice dump [--format json|sql [--reverse]] [--include PAT] [--exclude PAT] FILE...

Prints every committed transaction, one per line (json) or as SQL.
Without a start flag a live dump starts at the server's current position.

flags:
`

type dumpOptions struct {
	source    string
	fromStart bool
	startGTID string
	startFile string
	startPos  uint
	stopAtEnd bool
	limit     int
	include   listFlag
	exclude   listFlag
	format    string
	reverse   bool
	serverID  uint
	skipDDL   listFlag
	logLevel  string
	logFormat string
	spillDir  string
	query     bool
}

func runDump(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o dumpOptions
	fs := newFlags("dump", dumpUsage, stderr)
	fs.StringVar(&o.source, "source", "", "live server DSN: mysql://USER:PASS@HOST:PORT")
	fs.BoolVar(&o.fromStart, "from-start", false, "start at the oldest binlog the server has")
	fs.StringVar(&o.startGTID, "start-gtid", "", "start after this GTID set (every transaction not in it)")
	fs.StringVar(&o.startFile, "start-file", "", "start in this binlog file (with --start-pos)")
	fs.UintVar(&o.startPos, "start-pos", 4, "start at this offset of --start-file")
	fs.BoolVar(&o.stopAtEnd, "stop-at-end", false, "exit 0 once everything the server had at start is printed")
	fs.IntVar(&o.limit, "limit", 0, "stop after N transactions (0: no limit)")
	fs.Var(&o.include, "include", "only tables matching db.table (globs with *, or ~regex); repeatable")
	fs.Var(&o.exclude, "exclude", "leave out tables matching db.table; repeatable")
	fs.StringVar(&o.format, "format", "json", "output format: json (one line per transaction) or sql")
	fs.BoolVar(&o.reverse, "reverse", false, "with --format sql: print the SQL that undoes each transaction, newest first (flashback)")
	fs.UintVar(&o.serverID, "server-id", 0, "replica server id to register with (default: a random id above 1000000000)")
	fs.Var(&o.skipDDL, "skip-ddl", "skip a DDL statement the schema tracker cannot parse, named by its GTID or file:pos; repeatable")
	fs.StringVar(&o.logLevel, "log-level", "warn", "log level: debug, info, warn, error")
	fs.StringVar(&o.logFormat, "log-format", "text", "log format: text or json")
	fs.BoolVar(&o.query, "include-query", false, "print the statement the application ran with its rows (when the source logs it: binlog_annotate_row_events, binlog_rows_query_log_events)")
	fs.StringVar(&o.spillDir, "spill-dir", "", "directory for large transactions' temporary files (default: the system's)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	files := fs.Args()
	tuneGC(400)
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(1 << 30)
	}
	if err := o.validate(files); err != nil {
		return err
	}
	log, err := newLogger(stderr, o.logLevel, o.logFormat)
	if err != nil {
		return err
	}
	filter, err := dumpFilter(o.include, o.exclude)
	if err != nil {
		return usagef("%v", err)
	}
	dec := binlog.DecodeOptions{Filter: filter, SkipDDL: o.skipDDL, SpillDir: o.spillDir, Logger: log, IncludeQuery: o.query,
		// Account statements concern no table: shown when nothing is
		// filtered, left out (as a pipeline does) with --include.
		AccountStatements: len(o.include) == 0}

	var src binlog.Source
	live := o.source != ""
	if live {
		dsn, err := mysqlconn.ParseDSN(o.source)
		if err != nil {
			return &mysqlconn.UserError{Msg: err.Error()}
		}
		cfg := binlog.LiveConfig{DSN: dsn, ServerID: uint32(o.serverID), StopAtEnd: o.stopAtEnd, Decode: dec, Logger: log, MaxRetries: 5}
		if cfg.ServerID == 0 {
			cfg.ServerID = 1_000_000_000 + rand.Uint32N(3_000_000_000)
		}
		switch {
		case o.fromStart:
			cfg.Start = binlog.Start{Mode: binlog.StartOldest}
		case o.startGTID != "":
			set, err := binlog.ParseGTIDSet(o.startGTID)
			if err != nil {
				return usagef("--start-gtid: %v", err)
			}
			cfg.Start = binlog.Start{Mode: binlog.StartGTID, GTID: set}
		case o.startFile != "":
			cfg.Start = binlog.Start{Mode: binlog.StartPosition, Pos: binlog.Position{File: o.startFile, Pos: uint64(o.startPos)}}
		}
		ls, err := binlog.Connect(ctx, cfg)
		if err != nil {
			return err
		}
		src = ls
	} else {
		// Row events decode on every core; transactions stay in order.
		// For JSON, the workers also render the changes (nothing else
		// needs their values).
		dec.Workers = runtime.GOMAXPROCS(0)
		dec.RenderJSON = o.format == "json"
		fsrc, err := binlog.OpenFiles(files, dec)
		if err != nil {
			return &mysqlconn.UserError{Msg: err.Error()}
		}
		src = fsrc
	}
	defer src.Close()

	w := bufio.NewWriterSize(stdout, 1<<20)
	defer w.Flush()
	var out txnWriter
	switch {
	case o.format == "json":
		out = &jsonWriter{w: w}
	case o.reverse:
		rw, err := newReverseWriter(o.spillDir)
		if err != nil {
			return err
		}
		defer rw.close()
		out = rw
	default:
		out = &sqlWriter{w: w}
	}
	if err := out.begin(w); err != nil {
		return err
	}
	// A live dump that follows the server shows each transaction as it
	// comes; a dump that reads to an end flushes only when its buffer fills.
	flushEach := live && !o.stopAtEnd
	rctx, cancel := context.WithCancel(ctx)
	items := readAhead(rctx, src, o.limit)
	defer func() {
		// Stop the reader and wait for it before src.Close runs.
		cancel()
		for item := range items {
			if item.txn != nil {
				item.txn.Close()
			}
		}
	}()
	for item := range items {
		if item.err != nil {
			w.Flush()
			return item.err
		}
		err := out.write(item.txn)
		item.txn.Close()
		if err != nil {
			return err
		}
		if flushEach {
			if err := w.Flush(); err != nil {
				return err
			}
		}
	}
	if err := out.end(w); err != nil {
		return err
	}
	return w.Flush()
}

func (o *dumpOptions) validate(files []string) error {
	live := o.source != ""
	switch {
	case live && len(files) > 0:
		return usagef("give either --source or binlog files, not both")
	case !live && len(files) == 0:
		return usagef("give --source mysql://USER:PASS@HOST:PORT or binlog files (see sluice dump -h)")
	case o.format != "json" && o.format != "sql":
		return usagef("--format %q: want json or sql", o.format)
	case o.reverse && o.format != "sql":
		return usagef("--reverse needs --format sql")
	case o.limit < 0:
		return usagef("--limit must be positive")
	}
	starts := 0
	for _, set := range []bool{o.fromStart, o.startGTID != "", o.startFile != ""} {
		if set {
			starts++
		}
	}
	if starts > 1 {
		return usagef("--from-start, --start-gtid and --start-file exclude each other")
	}
	if !live && (starts > 0 || o.stopAtEnd) {
		return usagef("--from-start, --start-gtid, --start-file and --stop-at-end apply to --source only")
	}
	return nil
}

// dumpFilter: a dump shows every schema, the server's own included, as
// mysqlbinlog does, unless --include narrows it.
func dumpFilter(include, exclude []string) (*binlog.Filter, error) {
	if len(include) == 0 {
		include = []string{"*"}
	}
	return binlog.NewFilter(include, exclude)
}

// tuneGC makes the collector run at percent (GOGC) unless the user set
// GOGC. sluice keeps little alive for what it allocates (rows pass
// through, in chunks and batches bounded in bytes), so the default
// GOGC=100 collects very often for a small heap: a quarter of a
// snapshot's CPU went to the collector. dump uses 400; run and snapshot,
// which hold a few chunks or batches in flight, 200 (peak RSS of a
// 1,000,000-row snapshot under load about 190 MiB instead of 140).
// Only dump also sets a soft memory limit (1 GiB, unless GOMEMLIMIT is
// set): it reads one source, while a daemon's queues may legitimately
// hold more than that (256 MiB per source), and a limit under the live
// heap would keep the collector running.
func tuneGC(percent int) {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(percent)
	}
}

type txnOrErr struct {
	txn *binlog.Txn
	err error
}

// readAhead decodes transactions in a goroutine of its own, so that
// decoding and formatting use two cores. The channel's small buffer bounds
// how many decoded transactions wait (large ones are spilled to disk).
func readAhead(ctx context.Context, src binlog.Source, limit int) <-chan txnOrErr {
	ch := make(chan txnOrErr, 32)
	go func() {
		defer close(ch)
		for n := 0; limit == 0 || n < limit; n++ {
			t, err := src.Next(ctx)
			if errors.Is(err, io.EOF) || errors.Is(err, context.Canceled) {
				return
			}
			select {
			case ch <- txnOrErr{t, err}:
			case <-ctx.Done():
				if t != nil {
					t.Close()
				}
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return ch
}

type txnWriter interface {
	begin(w *bufio.Writer) error
	write(t *binlog.Txn) error
	end(w *bufio.Writer) error
}

type jsonWriter struct {
	w   *bufio.Writer
	enc binlog.JSONEncoder
}

func (j *jsonWriter) begin(*bufio.Writer) error { return nil }
func (j *jsonWriter) end(*bufio.Writer) error   { return nil }

func (j *jsonWriter) write(t *binlog.Txn) error {
	if err := j.enc.WriteJSON(j.w, t); err != nil {
		return fmt.Errorf("transaction %s: %w", t.ID(), err)
	}
	return j.w.WriteByte('\n')
}

const sqlPreamble = "/* sluice dump: TIMESTAMP values are in UTC */\nSET NAMES utf8mb4;\nSET time_zone = '+00:00';\n"

type sqlWriter struct {
	w   *bufio.Writer
	buf []byte
}

func (s *sqlWriter) begin(w *bufio.Writer) error {
	_, err := w.WriteString(sqlPreamble)
	return err
}

func (s *sqlWriter) end(*bufio.Writer) error { return nil }

func (s *sqlWriter) write(t *binlog.Txn) error {
	var err error
	s.buf, err = appendTxnSQL(s.buf[:0], t, false)
	if err != nil {
		return err
	}
	_, err = s.w.Write(s.buf)
	return err
}

func appendTxnSQL(dst []byte, t *binlog.Txn, reverse bool) ([]byte, error) {
	dst = fmt.Appendf(dst, "# at %s", t.Pos)
	if !t.GTID.IsZero() {
		dst = fmt.Appendf(dst, " gtid %s", t.GTID)
	}
	dst = fmt.Appendf(dst, " %s\n", t.Timestamp.UTC().Format(time.RFC3339))
	for _, q := range t.Queries {
		dst = fmt.Appendf(dst, "-- query: %s\n", strings.ReplaceAll(oneLine(q), "\r", " "))
	}
	if t.DDL != nil && t.Len() == 0 {
		if reverse {
			dst = fmt.Appendf(dst, "-- DDL cannot be reversed, undo it by hand: %s\n", oneLine(t.DDL.SQL))
			return dst, nil
		}
		dst = appendDDLSQL(dst, t.DDL)
		return append(dst, '\n'), nil
	}
	dst = append(dst, "BEGIN;\n"...)
	if t.DDL != nil && !reverse {
		dst = appendDDLSQL(dst, t.DDL)
		dst = append(dst, '\n')
	}
	for _, st := range t.Statements {
		if reverse {
			dst = fmt.Appendf(dst, "-- statement-based change cannot be reversed: %s\n", oneLine(st))
			continue
		}
		dst = append(dst, st...)
		dst = append(dst, ";\n"...)
	}
	if !reverse {
		for c, err := range t.Changes() {
			if err != nil {
				return dst, err
			}
			dst = mysqlsink.AppendChangeSQL(dst, t, c)
			dst = append(dst, '\n')
		}
	} else {
		// Undo the changes last to first. The changes of one transaction
		// are read into memory here; flashback is for recovering from a
		// mistake, not for bulk volumes.
		var changes []*binlog.Change
		for c, err := range t.Changes() {
			if err != nil {
				return dst, err
			}
			changes = append(changes, c)
		}
		for i := len(changes) - 1; i >= 0; i-- {
			if changes[i].Table.Sequence {
				dst = fmt.Appendf(dst, "-- the row of sequence %s cannot be reversed: set it by hand (SETVAL)\n", sqltext.QualifiedName(changes[i].Table.Schema, changes[i].Table.Name))
				continue
			}
			dst = sqltext.AppendChange(dst, changes[i], true, false)
			dst = append(dst, '\n')
		}
	}
	return append(dst, "COMMIT;\n"...), nil
}

// reverseWriter prints transactions newest first. Each transaction's SQL
// goes to a temporary file as it is read; the offsets stay in memory and
// the file is read back from the end.
type reverseWriter struct {
	f    *os.File
	offs []int64
	size int64
	buf  []byte
}

func newReverseWriter(dir string) (*reverseWriter, error) {
	f, err := os.CreateTemp(dir, "sluice-reverse-*.sql")
	if err != nil {
		return nil, err
	}
	os.Remove(f.Name())
	return &reverseWriter{f: f}, nil
}

func (r *reverseWriter) begin(*bufio.Writer) error { return nil }

func (r *reverseWriter) write(t *binlog.Txn) error {
	var err error
	r.buf, err = appendTxnSQL(r.buf[:0], t, true)
	if err != nil {
		return err
	}
	if _, err := r.f.Write(r.buf); err != nil {
		return err
	}
	r.offs = append(r.offs, r.size)
	r.size += int64(len(r.buf))
	return nil
}

func (r *reverseWriter) end(w *bufio.Writer) error {
	if _, err := w.WriteString(sqlPreamble); err != nil {
		return err
	}
	end := r.size
	for i := len(r.offs) - 1; i >= 0; i-- {
		if _, err := io.Copy(w, io.NewSectionReader(r.f, r.offs[i], end-r.offs[i])); err != nil {
			return err
		}
		end = r.offs[i]
	}
	return nil
}

func (r *reverseWriter) close() { r.f.Close() }

// appendDDLSQL appends a statement with the source session's time,
// sql_mode and time zone around it, as mariadb-binlog prints them, so that
// replaying it has the source's result (DEFAULT CURRENT_TIMESTAMP fills
// rows with the source's time; ANSI_QUOTES reads "x" as a name). The
// replaying session's own settings are restored after it.
func appendDDLSQL(dst []byte, d *binlog.DDL) []byte {
	ss := d.Session
	if ss == nil {
		return mysqlsink.AppendDDLSQL(dst, d)
	}
	dst = append(dst, "SET @sluice_sql_mode = @@SESSION.sql_mode, @sluice_time_zone = @@SESSION.time_zone;\n"...)
	dst = fmt.Appendf(dst, "SET TIMESTAMP = %d.%06d", ss.Timestamp.Unix(), ss.Timestamp.Nanosecond()/1000)
	if ss.HasSQLMode {
		dst = append(dst, ", @@SESSION.sql_mode = "...)
		dst = sqltext.AppendString(dst, ss.SQLModeNames)
	}
	if ss.TimeZone != "" {
		dst = append(dst, ", @@SESSION.time_zone = "...)
		dst = sqltext.AppendString(dst, ss.TimeZone)
	}
	dst = append(dst, ";\n"...)
	dst = mysqlsink.AppendDDLSQL(dst, d)
	return append(dst, "\nSET TIMESTAMP = DEFAULT, @@SESSION.sql_mode = @sluice_sql_mode, @@SESSION.time_zone = @sluice_time_zone;"...)
}
