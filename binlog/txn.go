package binlog

import (
	"fmt"
	"iter"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-cdc/sluice/binlog/schema"
)

// Position is a place in a server's binary log: the file and the byte
// offset of the next event.
type Position struct {
	File string `json:"file"`
	Pos  uint64 `json:"pos"`
}

func (p Position) String() string { return p.File + ":" + strconv.FormatUint(uint64(p.Pos), 10) }

// IsZero reports whether p names no position.
func (p Position) IsZero() bool { return p.File == "" }

// Compare orders positions by binlog file sequence number, then offset.
// Files are compared by their numeric extension, as the server names them.
func (p Position) Compare(o Position) int {
	if c := compareFile(p.File, o.File); c != 0 {
		return c
	}
	return cmpU64(uint64(p.Pos), uint64(o.Pos))
}

func compareFile(a, b string) int {
	if a == b {
		return 0
	}
	ai, aok := fileSeq(a)
	bi, bok := fileSeq(b)
	if aok && bok && ai != bi {
		return cmpU64(ai, bi)
	}
	return strings.Compare(a, b)
}

func fileSeq(name string) (uint64, bool) {
	i := strings.LastIndexByte(name, '.')
	if i < 0 {
		return 0, false
	}
	n, err := strconv.ParseUint(name[i+1:], 10, 64)
	return n, err == nil
}

// Op is the kind of a row change.
type Op uint8

const (
	Insert Op = iota + 1
	Update
	Delete
)

func (o Op) String() string {
	switch o {
	case Insert:
		return "insert"
	case Update:
		return "update"
	case Delete:
		return "delete"
	}
	return "op(" + strconv.Itoa(int(o)) + ")"
}

// ParseOp parses "insert", "update" or "delete".
func ParseOp(s string) (Op, error) {
	switch strings.ToLower(s) {
	case "insert":
		return Insert, nil
	case "update":
		return Update, nil
	case "delete":
		return Delete, nil
	}
	return 0, fmt.Errorf("unknown operation %q: want insert, update or delete", s)
}

// Change is one row change. Before is set for updates and deletes, After for
// inserts and updates. Both are indexed like Table.Columns; a column the row
// image did not carry (binlog_row_image=MINIMAL or NOBLOB) holds Absent.
type Change struct {
	Table  *Table
	Op     Op
	Before []Value
	After  []Value
	// Query numbers the statement of Txn.Queries that made the change,
	// from 1 (0: none logged, or not asked for). See Txn.QueryOf.
	Query int
	// NoFKChecks: the source ran the change with foreign_key_checks=0
	// (the rows event's NO_FOREIGN_KEY_CHECKS flag). A replica applies it
	// the same way; other changes with the checks on, so that the
	// cascades the source did not log (ON DELETE/UPDATE CASCADE, SET
	// NULL: MariaDB and MySQL's InnoDB foreign keys log only the parent
	// row) happen on the target too.
	NoFKChecks bool
}

// Image returns the after image for inserts and updates, the before image
// for deletes: the row as it is once the change is applied, or as it was.
func (c *Change) Image() []Value {
	if c.Op == Delete {
		return c.Before
	}
	return c.After
}

// DDL is a statement that is not a row change: schema changes, and the
// other statements a server logs as text (GRANT, CREATE USER, ...).
type DDL struct {
	Schema string // the session's default database when it ran
	SQL    string
	// Session is the source session's state when the statement ran (its
	// time, sql_mode, time zone, ...); nil when unknown.
	Session *Session
	// Merged is set by routing when several source tables feed the table
	// the statement changes: it may arrive once per source, so a repeat
	// already in effect is not an error, and a destructive one needs a
	// person.
	Merged bool
	// RouteColumns are the columns routing adds to the rows of the table
	// (the source name, original schema or table): a CREATE TABLE from
	// the source lacks them.
	RouteColumns []string
	// StoresLower: the source stores database and table names in lower
	// case (lower_case_table_names 1) and logs rows under those names,
	// while the statement names them as it was typed (CREATE TABLE Orders
	// made the table orders).
	StoresLower bool
}

// Mark names a sluice pipeline and source that applied a transaction.
type Mark struct {
	Pipeline, Source string
}

// Marker recognises the transactions a sink wrote into the server being
// read (a pipeline replicating the other way must not send them back). The
// sink that writes the marks owns their form: the decoder knows no sink's
// tables. It shows the Marker the rows of the tables it watches, whatever
// the filter, and every statement; a statement that carries a mark marks
// itself and the next DDL its server thread logs.
type Marker interface {
	// Watches reports whether rows of schema.table carry marks.
	Watches(schema, table string) bool
	// RowMark returns the mark a row image of a watched table carries.
	RowMark(schema, table string, img []Value) (Mark, bool)
	// StatementMark returns the mark a statement carries.
	StatementMark(sql string) (Mark, bool)
}

// Txn is one committed source transaction. Rolled-back transactions never
// become a Txn; XA transactions become one when XA COMMIT is read.
type Txn struct {
	GTID     GTID
	ServerID uint32
	// Timestamp is the commit time on the originating server (MySQL 8's
	// original_commit_timestamp when present, otherwise the event header's).
	Timestamp time.Time
	// Pos is the end position: the offset just after the committing event.
	Pos Position
	// StartPos is where the transaction begins (its GTID or BEGIN event):
	// resuming there reads it again.
	StartPos Position
	// XID is the XA transaction id, for XA transactions.
	XID string
	// DDL is set for statement transactions (and for CREATE TABLE ... SELECT,
	// which also carries rows).
	DDL *DDL
	// Queries are the statements the application ran, as the source logs
	// them with the row events (MySQL binlog_rows_query_log_events,
	// MariaDB binlog_annotate_row_events), in order. Empty unless the
	// source logs them and DecodeOptions.IncludeQuery asks for them: they
	// may carry secrets.
	Queries []string
	// Statements holds statement-based DML (binlog_format=STATEMENT/MIXED).
	// Only offline dumps of such logs see them; live sources must be ROW.
	Statements []string
	// MariaDBDDL: MariaDB flagged the transaction as DDL (FL_DDL). A
	// sequence's row in it was written whole (INSERT INTO s VALUES (…));
	// elsewhere it is NEXTVAL's or SETVAL's (Table.Sequence).
	MariaDBDDL bool
	// PrepareGTID is the GTID of XA PREPARE for XA transactions committed in
	// two phases. Checkpoints must record it too.
	PrepareGTID GTID
	// Size is the number of binlog bytes the transaction occupied.
	Size int64
	// Executed is the source's GTID set once this transaction is applied,
	// as a replica would record it. Empty when the source has no GTIDs.
	Executed GTIDSet
	// Marks name the sluice pipelines that applied this transaction to the
	// server it was read from (their checkpoint row is in it, or their
	// comment heads its DDL): a pipeline replicating the other way uses them
	// to avoid sending it back.
	Marks []Mark
	// Catalog is the tracked schema after a DDL that changed a table
	// definition (nil otherwise), for persisting the schema history.
	Catalog *schema.Catalog

	changes *changeBuffer
	// rendered holds the changes instead, as JSON text, with
	// DecodeOptions.RenderJSON.
	rendered *renderedChanges
	// A view made by Map: parent's changes, filtered by keep and replaced
	// by fn; mapped counts them.
	parent *Txn
	keep   func(*Change) bool
	fn     func(*Change) *Change
	mapped int
	// Row events still being decoded (see decodePool), oldest first, and
	// their size.
	pending      []*rowsJob
	pendingBytes int64
}

// Len is the number of row changes.
func (t *Txn) Len() int {
	switch {
	case t.parent != nil:
		return t.mapped
	case t.rendered != nil:
		return t.rendered.n
	case t.changes == nil:
		return 0
	}
	return t.changes.n
}

// Map returns a view of the transaction: the changes keep accepts, each
// replaced by fn's result (either may be nil: all kept, unchanged). The
// view shares t's changes (closing either closes both). keep runs now, to
// count what is kept, and again as the view is iterated; fn only as it is
// iterated (a sink that retries iterates more than once), so both must
// give the same result each time.
func (t *Txn) Map(keep func(*Change) bool, fn func(*Change) *Change) (*Txn, error) {
	m := *t
	m.parent, m.keep, m.fn, m.mapped = t, keep, fn, t.Len()
	if keep != nil {
		m.mapped = 0
		for c, err := range t.Changes() {
			if err != nil {
				return nil, err
			}
			if keep(c) {
				m.mapped++
			}
		}
	}
	return &m, nil
}

// ID names the transaction in messages: its GTID, or its end position
// in the binlog.
func (t *Txn) ID() string {
	if !t.GTID.IsZero() {
		return t.GTID.String()
	}
	return t.Pos.String()
}

// Changes iterates over the row changes in binlog order. It can be called
// more than once (a sink that retries a transaction does). Changes spilled
// to disk are read back one at a time, so the iteration's memory stays
// bounded. A transaction decoded with DecodeOptions.RenderJSON has its
// changes only as JSON text (AppendJSON): Changes yields an error.
func (t *Txn) Changes() iter.Seq2[*Change, error] {
	switch {
	case t.parent != nil:
		return t.view
	case t.rendered != nil && t.rendered.n > 0:
		return func(yield func(*Change, error) bool) { yield(nil, errRenderedOnly) }
	case t.changes == nil:
		return func(func(*Change, error) bool) {}
	}
	return t.changes.all()
}

// MemChanges returns the changes when they are all in memory, in binlog
// order, for callers that would rather not iterate through a function:
// not for a filtered or transformed view, a transaction decoded with
// DecodeOptions.RenderJSON, or one spilled to disk (ok false: use
// Changes). The slice is the transaction's own: it must not be changed.
func (t *Txn) MemChanges() (changes []*Change, ok bool) {
	switch {
	case t.parent != nil, t.rendered != nil && t.rendered.n > 0:
		return nil, false
	case t.changes == nil:
		return nil, true
	case t.changes.file != nil:
		return nil, false
	}
	return t.changes.mem, true
}

func (t *Txn) view(yield func(*Change, error) bool) {
	for c, err := range t.parent.Changes() {
		if err != nil {
			yield(nil, err)
			return
		}
		if t.keep != nil && !t.keep(c) {
			continue
		}
		if t.fn != nil {
			c = t.fn(c)
		}
		if !yield(c, nil) {
			return
		}
	}
}

// HeapBytes estimates the memory the transaction's changes hold: what is
// in memory, or, once spilled to disk, the file's buffer.
func (t *Txn) HeapBytes() int64 {
	switch {
	case t.parent != nil:
		return t.parent.HeapBytes()
	case t.rendered != nil:
		return t.rendered.heapBytes()
	case t.changes == nil:
		return 0
	case t.changes.file != nil:
		return 256 << 10
	}
	return t.changes.bytes
}

// Close releases the transaction's spill file, if it has one.
func (t *Txn) Close() error {
	if t.rendered != nil {
		return t.rendered.close()
	}
	if t.changes == nil {
		return nil
	}
	return t.changes.close()
}

// QueryOf returns the statement the application ran that made c, as the
// source logged it (DecodeOptions.IncludeQuery), or "".
func (t *Txn) QueryOf(c *Change) string {
	if c.Query < 1 || c.Query > len(t.Queries) {
		return ""
	}
	return t.Queries[c.Query-1]
}

// IsDDL reports whether the transaction is a statement rather than rows.
func (t *Txn) IsDDL() bool { return t.DDL != nil }

// NewTxn builds a transaction from changes held in memory, for tests and
// for sinks that synthesize transactions.
func NewTxn(changes []*Change) *Txn {
	t := &Txn{changes: newChangeBuffer(0, "")}
	for _, c := range changes {
		if err := t.changes.add(c); err != nil {
			panic(err) // in-memory buffers do not fail
		}
	}
	return t
}
