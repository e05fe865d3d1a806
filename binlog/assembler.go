package binlog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/go-mysql-org/go-mysql/replication"
	"github.com/google/uuid"

	"github.com/sluice-cdc/sluice/binlog/schema"
)

// MariaDB GTID event flags go-mysql does not name.
const (
	mariaFlPreparedXA  = 0x40
	mariaFlCompletedXA = 0x80
)

// eventXAPrepare is MySQL's XA_PREPARE_LOG_EVENT, which go-mysql leaves
// undecoded.
const eventXAPrepare replication.EventType = 38

// DecodeOptions configure how events become transactions.
type DecodeOptions struct {
	// Filter selects the tables whose changes are kept (nil keeps all but
	// the server's own schemas). Transactions left empty are not emitted
	// unless EmitEmpty is set.
	Filter *Filter
	// Catalog is the schema at the start position. Nil starts empty and
	// learns tables from the CREATE TABLE statements of the stream.
	Catalog *schema.Catalog
	// StrictColumns makes a table whose columns cannot be named an error
	// rather than naming them @1, @2, ... (an applier needs names).
	StrictColumns bool
	// SkipDDL lists statements that the schema tracker cannot parse and the
	// operator chose to skip, each named by its GTID or "file:pos" end
	// position.
	SkipDDL []string
	// SpillBytes is the in-memory budget per transaction before changes go
	// to a temporary file in SpillDir. Zero means DefaultSpillBytes;
	// negative means never spill.
	SpillBytes int64
	SpillDir   string
	// StartSet: transactions in this set were already processed and are
	// not emitted (the reader resumes after a checkpoint with it).
	StartSet GTIDSet
	// SkipUntil: transactions ending at or before this position are not
	// emitted (used to start at a file position while still reading the
	// file from its start, to learn the exact executed GTID set).
	SkipUntil Position
	// EmitEmpty emits transactions whose changes were all filtered out (an
	// applier needs them to advance its checkpoint).
	EmitEmpty bool
	// AccountStatements passes statements that change accounts and
	// privileges (CREATE USER, GRANT, SET PASSWORD, ...). They concern no
	// table, so no filter selects them, and they are dropped by default:
	// replicating them creates accounts, with their passwords, on the
	// target.
	AccountStatements bool
	// Marker recognises transactions a sink wrote into this server (nil:
	// none are).
	Marker Marker
	// Resolve reads a table's definition from the source, for a DDL the
	// tracker cannot parse (nil when there is no source to ask: files).
	Resolve func(db, table string) (*schema.Table, error)
	// IncludeQuery keeps the statement text the source logs with row
	// events (Txn.Queries, Change.Query).
	IncludeQuery bool
	Logger       *slog.Logger
	// Workers decodes row events in this many goroutines, keeping the
	// order of transactions and changes (0: in the reader's). Files only.
	Workers int
	// RenderJSON keeps each transaction's changes only as the JSON text
	// AppendJSON writes for them, rendered as they are decoded (by the
	// Workers when there are some): Txn.Changes yields an error. For
	// `sluice dump --format json`, which needs nothing else.
	RenderJSON bool
}

// assembler turns a stream of binlog events into committed transactions.
// It is the one place that knows how each flavor frames a transaction:
// BEGIN/GTID ... XID or COMMIT, ROLLBACK, XA PREPARE ... XA COMMIT, DDL.
type assembler struct {
	opts DecodeOptions
	dec  *decoder
	log  *slog.Logger

	file    string // current binlog file
	lastPos uint64 // end of the last event seen

	// The transaction being read, and what preceded it.
	cur        *Txn
	curSize    int64
	savepoints map[string]changeMark
	// ddlMarks are the sluice marks a server thread logged for the next
	// DDL it runs (see Marker).
	ddlMarks   map[uint32]Mark
	pending    GTID // GTID event seen, transaction not started yet
	pendingTS  time.Time
	pendingSrv uint32
	pendingAt  uint64 // where the pending GTID event starts
	maria      byte   // flags of the pending MariaDB GTID event
	hasPending bool

	held     map[string]*Txn // XA transactions prepared and not yet committed, by xid
	mariadb  bool            // the source is MariaDB (its format description says so)
	executed GTIDSet

	out []*Txn // transactions completed by the last event

	// pool decodes row events in other goroutines (nil: here); asyncErr
	// is the first error it reported, path and start locate the event
	// being read in it (FileSource sets them).
	pool     *decodePool
	asyncErr error
	// chunk is the read chunk (see refBuf) of the event being handled,
	// with DecodeOptions.RenderJSON: a row event sent to the pool holds a
	// reference to it until its rows are rendered.
	chunk *refBuf
	// jsonEnc renders the changes decoded here, with RenderJSON.
	jsonEnc JSONEncoder
	path    string
	start   int64
}

type changeMark struct {
	n        int
	rendered renderedMark // with RenderJSON
}

func newAssembler(opts DecodeOptions) *assembler {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	switch {
	case opts.SpillBytes == 0:
		opts.SpillBytes = DefaultSpillBytes
	case opts.SpillBytes < 0:
		opts.SpillBytes = 0
	}
	cat := opts.Catalog
	if cat == nil {
		cat = schema.NewCatalog("")
	}
	a := &assembler{opts: opts, log: log, dec: newDecoder(cat, opts.StrictColumns, log), held: map[string]*Txn{}, ddlMarks: map[uint32]Mark{}}
	a.executed = opts.StartSet.Clone()
	return a
}

// Catalog returns the current schema.
func (a *assembler) Catalog() *schema.Catalog { return a.dec.catalog }

// EventError locates a decoding error in the binlog.
type EventError struct {
	Pos  Position
	GTID GTID
	Err  error
}

func (e *EventError) Error() string {
	where := "at " + e.Pos.String()
	if !e.GTID.IsZero() {
		where += " (GTID " + e.GTID.String() + ")"
	}
	return fmt.Sprintf("binlog %s: %v", where, e.Err)
}

func (e *EventError) Unwrap() error { return e.Err }

// handle processes one event whose end position is endPos.
func (a *assembler) handle(ev *replication.BinlogEvent, endPos uint64) error {
	if err := a.event(ev, endPos); err != nil {
		g := a.pending
		if a.cur != nil {
			g = a.cur.GTID
		}
		return &EventError{Pos: Position{a.file, endPos}, GTID: g, Err: err}
	}
	return nil
}

func (a *assembler) event(ev *replication.BinlogEvent, endPos uint64) error {
	h := ev.Header
	if endPos != 0 {
		a.lastPos = endPos
	}
	if a.cur != nil {
		a.curSize += int64(h.EventSize)
	}
	switch e := ev.Event.(type) {
	case *replication.RotateEvent:
		a.file = string(e.NextLogName)
		a.lastPos = e.Position
	case *replication.FormatDescriptionEvent:
		// A new file, or a server restart within the stream: a transaction
		// left open was never committed (the server crashed mid-write).
		clear(a.ddlMarks) // thread ids start again after a restart
		a.mariadb = strings.Contains(strings.ToLower(e.ServerVersion), "mariadb")
		if a.cur != nil && h.LogPos != 0 {
			a.log.Warn("binlog transaction without commit dropped at server restart", "gtid", a.cur.GTID.String(), "pos", a.position())
			a.dropCurrent()
		}
	case *replication.PreviousGTIDsEvent:
		if e.GTIDSets != "" {
			prev, err := ParseGTIDSet(e.GTIDSets)
			if err != nil {
				return fmt.Errorf("PREVIOUS_GTIDS: %w", err)
			}
			a.executed.Union(prev)
		}
	case *replication.MariadbGTIDListEvent:
		for _, g := range e.GTIDs {
			if g.SequenceNumber > 0 {
				a.executed.AdvanceTo(GTID{MariaDB: true, Domain: g.DomainID, Server: g.ServerID, Seq: g.SequenceNumber})
			}
		}
	case *replication.GtidTaggedLogEvent:
		a.setPendingMySQL(&e.GTIDEvent, e.Tag.String(), h)
		a.pendingAt = startOf(endPos, h)
	case *replication.GTIDEvent:
		a.setPendingMySQL(e, "", h)
		a.pendingAt = startOf(endPos, h)
	case *replication.MariadbGTIDEvent:
		a.pendingAt = startOf(endPos, h)
		a.setPending(GTID{MariaDB: true, Domain: e.GTID.DomainID, Server: h.ServerID, Seq: e.GTID.SequenceNumber}, time.Unix(int64(h.Timestamp), 0), h.ServerID)
		a.maria = e.Flags
		if e.Flags&(replication.BINLOG_MARIADB_FL_STANDALONE|mariaFlCompletedXA) == 0 {
			a.begin(h) // MariaDB's GTID event is the BEGIN
		}
	case *replication.QueryEvent:
		return a.query(e, h, endPos)
	case *replication.TableMapEvent:
		if !a.keep(string(e.Schema), string(e.Table)) {
			return nil
		}
		if _, err := a.dec.tableFor(e); err != nil {
			return err
		}
	case *replication.RowsEvent:
		if a.cur == nil {
			a.begin(h) // rows without BEGIN (a few DDL-with-rows forms)
		}
		if e.Table != nil && a.opts.Marker != nil && a.opts.Marker.Watches(string(e.Table.Schema), string(e.Table.Table)) {
			return a.mark(e, h.EventType)
		}
		if e.Table == nil || !a.keep(string(e.Table.Schema), string(e.Table.Table)) {
			return nil
		}
		if a.pool != nil {
			if ok, err := a.submitRows(e, h.EventType); ok || err != nil {
				return err
			}
		}
		changes, err := a.dec.decodeRows(e, h.EventType)
		if err != nil {
			return err
		}
		noFK := e.Flags&rowsNoFKChecks != 0
		for _, c := range changes {
			c.Query = len(a.cur.Queries)
			c.NoFKChecks = noFK
		}
		return a.addDecoded(changes)
	case *replication.XIDEvent:
		if a.cur == nil {
			return nil
		}
		return a.commit(h, endPos)
	case *replication.TransactionPayloadEvent:
		// MySQL 8 compressed transaction: the inner events have no positions
		// of their own; the transaction ends where the payload event ends.
		for _, inner := range e.Events {
			if err := a.event(inner, 0); err != nil {
				return err
			}
		}
	case *replication.RowsQueryEvent:
		a.rowsQuery(e.Query)
	case *replication.MariadbAnnotateRowsEvent:
		a.rowsQuery(e.Query)
	case *replication.HeartbeatEvent, *replication.MariadbBinlogCheckPointEvent, *replication.IntVarEvent, *replication.BeginLoadQueryEvent:
	case *replication.ExecuteLoadQueryEvent:
		return fmt.Errorf("LOAD DATA logged as a statement (EXECUTE_LOAD_QUERY): statement-based events are not supported; set binlog_format=ROW on the source")
	case *replication.GenericEvent:
		return a.generic(h, e.Data)
	}
	return nil
}

// rowsNoFKChecks is the rows event flag of a statement run with
// foreign_key_checks=0 (NO_FOREIGN_KEY_CHECKS_F in the server's
// log_event.h, the same in MySQL and MariaDB).
const rowsNoFKChecks = 0x0002

// position is the current position: the end of the last event seen.
func (a *assembler) position() Position { return Position{a.file, a.lastPos} }

func (a *assembler) generic(h *replication.EventHeader, body []byte) error {
	switch h.EventType {
	case eventXAPrepare:
		if a.cur == nil {
			return nil
		}
		if a.cur.XID == "" {
			a.cur.XID = xidOfPrepare(body)
		}
		if len(body) > 0 && body[0] != 0 { // one_phase: committed here
			return a.commit(h, a.lastPos)
		}
		a.hold(h)
		return nil
	case replication.INCIDENT_EVENT:
		return errors.New("INCIDENT event: the source reports that changes may be missing from its binlog (e.g. a failed non-transactional statement); " +
			"the replica must be re-seeded from a snapshot")
	case replication.STOP_EVENT, replication.UNKNOWN_EVENT, replication.SLAVE_EVENT, replication.IGNORABLE_EVENT,
		replication.RAND_EVENT, replication.USER_VAR_EVENT, replication.APPEND_BLOCK_EVENT, replication.DELETE_FILE_EVENT,
		replication.MARIADB_START_ENCRYPTION_EVENT, replication.VIEW_CHANGE_EVENT:
		if h.EventType == replication.MARIADB_START_ENCRYPTION_EVENT {
			return errors.New("the binlog is encrypted (START_ENCRYPTION_EVENT); read it from the live server, which decrypts it, instead of from the file")
		}
		return nil
	}
	if h.Flags&replication.LOG_EVENT_IGNORABLE_F != 0 {
		return nil // e.g. Aurora's padding: the server marks it safe to skip
	}
	return fmt.Errorf("unsupported event type %d (%s) that is not marked ignorable; upgrade sluice or report it", byte(h.EventType), h.EventType)
}

func (a *assembler) setPendingMySQL(e *replication.GTIDEvent, tag string, h *replication.EventHeader) {
	g := GTID{}
	if e.GNO > 0 && !bytes.Equal(e.SID, make([]byte, 16)) {
		if u, err := uuid.FromBytes(e.SID); err == nil {
			g = GTID{UUID: u.String(), Tag: tag, Seq: uint64(e.GNO)}
		}
	}
	ts := time.Unix(int64(h.Timestamp), 0)
	if e.OriginalCommitTimestamp > 0 {
		ts = e.OriginalCommitTime()
	}
	a.setPending(g, ts, h.ServerID)
	a.maria = 0
}

func (a *assembler) setPending(g GTID, ts time.Time, server uint32) {
	if a.cur != nil {
		// A new transaction starts while one is open: the open one was
		// never committed (a truncated binlog after a crash).
		a.log.Warn("binlog transaction without commit dropped", "gtid", a.cur.GTID.String(), "pos", a.position())
		a.dropCurrent()
	}
	a.pending, a.pendingTS, a.pendingSrv, a.hasPending = g, ts, server, true
}

func (a *assembler) begin(h *replication.EventHeader) {
	if a.cur != nil {
		return
	}
	t := &Txn{ServerID: h.ServerID, Timestamp: time.Unix(int64(h.Timestamp), 0)}
	if a.opts.RenderJSON {
		t.rendered = newRenderedChanges(a.opts.SpillBytes, a.opts.SpillDir, &a.jsonEnc)
	} else {
		t.changes = newChangeBuffer(a.opts.SpillBytes, a.opts.SpillDir)
	}
	if a.hasPending {
		t.GTID, t.Timestamp, t.ServerID = a.pending, a.pendingTS, a.pendingSrv
	}
	t.StartPos = Position{a.file, startOf(a.lastPos, h)}
	if a.hasPending && a.pendingAt != 0 {
		t.StartPos.Pos = a.pendingAt
	}
	t.MariaDBDDL = a.hasPending && a.maria&replication.BINLOG_MARIADB_FL_DDL != 0
	a.cur, a.curSize = t, int64(h.EventSize)
	a.savepoints = nil
}

// startOf is where an event ending at end begins.
func startOf(end uint64, h *replication.EventHeader) uint64 {
	if end >= uint64(h.EventSize) {
		return end - uint64(h.EventSize)
	}
	return 0
}

func (a *assembler) dropCurrent() {
	if a.cur != nil {
		a.cur.Close()
	}
	a.cur = nil
	a.hasPending = false
}

var (
	reXAStart    = regexp.MustCompile(`(?is)^\s*XA\s+(?:START|BEGIN)\s+(.+?)\s*(?:JOIN|RESUME)?\s*$`)
	reXAPrepare  = regexp.MustCompile(`(?is)^\s*XA\s+PREPARE\s+(.+?)\s*$`)
	reXACommit   = regexp.MustCompile(`(?is)^\s*XA\s+COMMIT\s+(.+?)(\s+ONE\s+PHASE)?\s*$`)
	reXARollback = regexp.MustCompile(`(?is)^\s*XA\s+ROLLBACK\s+(.+?)\s*$`)
	reXAEnd      = regexp.MustCompile(`(?is)^\s*XA\s+END\b`)
	reSavepoint  = regexp.MustCompile("(?is)^\\s*SAVEPOINT\\s+`?([^`]+?)`?\\s*$")
	reRollbackTo = regexp.MustCompile("(?is)^\\s*ROLLBACK\\s+(?:WORK\\s+)?TO\\s+(?:SAVEPOINT\\s+)?`?([^`]+?)`?\\s*$")
)

// xidOfPrepare reads the XA id of an XA_PREPARE_LOG_EVENT (one_phase,
// formatID, gtrid length, bqual length, data) in the form the server logs
// XA COMMIT with: X'gtrid',X'bqual',formatID.
func xidOfPrepare(b []byte) string {
	if len(b) < 13 {
		return ""
	}
	format := binary.LittleEndian.Uint32(b[1:5])
	gl := binary.LittleEndian.Uint32(b[5:9])
	bl := binary.LittleEndian.Uint32(b[9:13])
	if uint64(len(b)) < 13+uint64(gl)+uint64(bl) {
		return ""
	}
	data := b[13:]
	return normalizeXID(fmt.Sprintf("X'%x',X'%x',%d", data[:gl], data[gl:gl+bl], format))
}

// normalizeXID makes the two spellings of an XA id comparable:
// MySQL logs X'..',X'..',1 and MariaDB logs the id as the user typed it.
func normalizeXID(s string) string {
	return strings.Join(strings.Fields(strings.ToLower(s)), "")
}

func (a *assembler) query(e *replication.QueryEvent, h *replication.EventHeader, endPos uint64) error {
	q := strings.TrimSpace(string(e.Query))
	upper := strings.ToUpper(q)
	switch {
	case upper == "BEGIN" || upper == "START TRANSACTION":
		a.begin(h)
		return nil
	case upper == "COMMIT":
		if a.cur == nil {
			return nil
		}
		return a.commit(h, endPos)
	case upper == "ROLLBACK":
		// Only logged when non-transactional tables were changed; the
		// transactional part never happened. Dropped, as a replica would.
		a.dropCurrent()
		return nil
	case strings.HasPrefix(upper, "XA "):
		return a.xa(q, h, endPos)
	}
	if m := reSavepoint.FindStringSubmatch(q); m != nil && a.cur != nil {
		if err := a.cur.settle(); err != nil {
			a.asyncErr = err
			return nil
		}
		if a.savepoints == nil {
			a.savepoints = map[string]changeMark{}
		}
		mk := changeMark{n: a.cur.Len()}
		if a.cur.rendered != nil {
			mk.rendered = a.cur.rendered.mark()
		}
		a.savepoints[strings.ToLower(m[1])] = mk
		return nil
	}
	if m := reRollbackTo.FindStringSubmatch(q); m != nil && a.cur != nil {
		mk, ok := a.savepoints[strings.ToLower(m[1])]
		if !ok {
			return fmt.Errorf("ROLLBACK TO SAVEPOINT %s without its SAVEPOINT", m[1])
		}
		if err := a.cur.settle(); err != nil {
			a.asyncErr = err
			return nil
		}
		if a.cur.rendered != nil {
			return a.cur.rendered.truncate(mk.rendered, mk.n)
		}
		return a.cur.changes.truncate(mk.n)
	}

	db := string(e.Schema)
	if a.cur != nil && !schema.ChangesSchema(q) {
		// A statement inside a transaction: statement-based DML.
		a.cur.Statements = append(a.cur.Statements, q)
		return nil
	}
	// A DDL or other statement: applied to the tracked schema at once, so
	// the rows that follow decode with the new definition.
	ddlTxn := a.cur
	if ddlTxn == nil {
		a.begin(h)
		ddlTxn = a.cur
	}
	sess := parseSession(e.StatusVars, h.Timestamp, a.mariadb)
	mode := schema.SQLMode(sess.SQLMode)
	ddlTxn.DDL = &DDL{Schema: db, SQL: schema.StripStartTransaction(q), Session: sess, StoresLower: a.dec.catalog.StoresLower}
	if m, ok := a.ddlMarks[e.SlaveProxyID]; ok {
		ddlTxn.Marks = append(ddlTxn.Marks, m)
		delete(a.ddlMarks, e.SlaveProxyID)
	}
	if mark, ok := a.statementMark(q); ok {
		ddlTxn.Marks = append(ddlTxn.Marks, mark)
		if len(a.ddlMarks) > 1000 { // marks whose DDL never came (a crash)
			clear(a.ddlMarks)
		}
		a.ddlMarks[e.SlaveProxyID] = mark
	}
	if err := a.applyDDL(db, q, mode, endPos); err != nil {
		return err
	}
	if ddlTxn.DDL.SQL != q {
		// MySQL 8.0.21+'s CREATE TABLE ... SELECT: "... START TRANSACTION",
		// then the rows, then XID.
		return nil
	}
	if a.maria&replication.BINLOG_MARIADB_FL_STANDALONE != 0 || a.maria == 0 && !ddlTxn.hasRows() {
		return a.commit(h, endPos)
	}
	return nil // CREATE TABLE ... SELECT: rows and a commit follow
}

func (a *assembler) applyDDL(db, q string, mode schema.SQLMode, endPos uint64) error {
	changed, err := a.dec.catalog.ApplyMode(db, q, mode)
	if len(changed) > 0 && a.cur != nil {
		a.cur.Catalog = a.dec.catalog.Clone()
	}
	if err != nil {
		var me *schema.MismatchError
		if errors.As(err, &me) {
			// Tables this DDL touches may decode as @1, @2, ... (or, for an
			// applier, fail) until a definition matches the binlog again.
			a.log.Warn("DDL does not fit the tracked schema, which is newer than this point of the stream; definition kept",
				"sql", schema.Redact(q), "reason", me.Msg, "pos", Position{a.file, endPos}.String())
			return nil
		}
		var pe *schema.ParseError
		if !errors.As(err, &pe) {
			return err
		}
		if a.skipDDL(endPos) {
			a.log.Warn("DDL the schema tracker cannot parse skipped as configured; rows of the table it changes may decode with the old columns",
				"sql", schema.Redact(q), "pos", Position{a.file, endPos}.String())
			return nil
		}
		st := schema.Classify(db, q, mode)
		if len(st.Tables) > 0 && !a.anyKept(st.Tables) {
			a.log.Debug("DDL on a filtered-out table not parsed", "sql", schema.Redact(q))
			return nil
		}
		if ok, rerr := a.resolve(st, q, endPos); ok || rerr != nil {
			return rerr
		}
		id := Position{a.file, endPos}.String()
		if !a.pending.IsZero() {
			id = a.pending.String()
		}
		return fmt.Errorf("%w; if this statement does not change a table you replicate, skip it with --skip-ddl %s (or skip_ddl in the pipeline)", err, id)
	}
	return nil
}

// resolve handles a table statement the tracker cannot parse by reading
// the table's definition from the source. That is the definition as it is
// now, so it is used only when it has the column types the next row events
// log (the decoder checks every TABLE_MAP against it, and names from
// binlog_row_metadata=FULL win); otherwise the table's rows stop the
// pipeline with the reason, never decode as @1, @2, ... silently.
func (a *assembler) resolve(st schema.Statement, q string, endPos uint64) (bool, error) {
	if a.opts.Resolve == nil || st.Kind != schema.TableStatement || len(st.Tables) != 1 {
		return false, nil
	}
	tr := st.Tables[0]
	def, err := a.opts.Resolve(tr.Schema, tr.Name)
	if err != nil {
		return false, fmt.Errorf("read the definition of %s.%s from the source after a DDL the schema tracker cannot parse: %w", tr.Schema, tr.Name, err)
	}
	if def == nil {
		return false, nil
	}
	a.dec.catalog.PutTable(def)
	if a.dec.resolved == nil {
		a.dec.resolved = map[*schema.Table]string{}
	}
	a.dec.resolved[def] = fmt.Sprintf("the DDL %.200q at %s", schema.Redact(q), Position{a.file, endPos})
	if a.cur != nil {
		a.cur.Catalog = a.dec.catalog.Clone()
	}
	a.log.Warn("DDL the schema tracker cannot parse: the table's definition was read from the source instead (its definition now, checked against the column types of every row event)",
		"table", tr.Schema+"."+tr.Name, "sql", schema.Redact(q), "pos", Position{a.file, endPos}.String())
	return true, nil
}

func (a *assembler) skipDDL(endPos uint64) bool {
	id := Position{a.file, endPos}.String()
	for _, s := range a.opts.SkipDDL {
		if s == id || (!a.pending.IsZero() && s == a.pending.String()) {
			return true
		}
	}
	return false
}

func (a *assembler) xa(q string, h *replication.EventHeader, endPos uint64) error {
	switch {
	case reXAStart.MatchString(q):
		a.begin(h)
		a.cur.XID = normalizeXID(reXAStart.FindStringSubmatch(q)[1])
	case reXAEnd.MatchString(q):
		// MariaDB logs no XA START: the id comes with XA END.
		if a.cur != nil && a.cur.XID == "" {
			a.cur.XID = normalizeXID(strings.TrimSpace(q[strings.Index(strings.ToUpper(q), "END")+3:]))
		}
	case reXAPrepare.MatchString(q):
		if a.cur != nil {
			if a.cur.XID == "" {
				a.cur.XID = normalizeXID(reXAPrepare.FindStringSubmatch(q)[1])
			}
			a.hold(h)
		}
	case reXACommit.MatchString(q):
		m := reXACommit.FindStringSubmatch(q)
		xid := normalizeXID(m[1])
		if a.cur != nil && m[2] != "" { // XA COMMIT ... ONE PHASE
			return a.commit(h, endPos)
		}
		t, ok := a.held[xid]
		if !ok {
			a.log.Warn("XA COMMIT for a transaction prepared before the start position: its rows were not read", "xid", xid, "pos", Position{a.file, endPos}.String())
			a.dropCurrent()
			a.recordExecuted(a.pending, GTID{})
			a.hasPending = false
			return nil
		}
		delete(a.held, xid)
		t.PrepareGTID = t.GTID
		if a.hasPending {
			t.GTID = a.pending
			t.Timestamp = a.pendingTS
		}
		t.Size += int64(h.EventSize)
		a.dropCurrent()
		a.cur = t
		return a.commit(h, endPos)
	case reXARollback.MatchString(q):
		xid := normalizeXID(reXARollback.FindStringSubmatch(q)[1])
		if t, ok := a.held[xid]; ok {
			delete(a.held, xid)
			t.Close()
			a.recordExecuted(t.GTID, GTID{})
		}
		if a.cur != nil && a.cur.XID == xid {
			a.dropCurrent()
			return nil
		}
		// The rollback is a transaction of its own (with a GTID).
		g := a.pending
		a.dropCurrent()
		a.recordExecuted(g, GTID{})
	}
	return nil
}

func (a *assembler) statementMark(q string) (Mark, bool) {
	if a.opts.Marker == nil {
		return Mark{}, false
	}
	return a.opts.Marker.StatementMark(q)
}

// mark records the marks the rows of a watched table carry.
func (a *assembler) mark(e *replication.RowsEvent, et replication.EventType) error {
	strict := a.dec.strict
	a.dec.strict = false // the mark table's names need not be known: positions suffice
	changes, err := a.dec.decodeRows(e, et)
	a.dec.strict = strict
	if err != nil {
		return err
	}
	for _, c := range changes {
		m, ok := a.opts.Marker.RowMark(string(e.Table.Schema), string(e.Table.Table), c.Image())
		if !ok {
			continue
		}
		if !slices.Contains(a.cur.Marks, m) {
			a.cur.Marks = append(a.cur.Marks, m)
		}
	}
	return nil
}

// hold parks an XA transaction at XA PREPARE until XA COMMIT or ROLLBACK.
func (a *assembler) hold(h *replication.EventHeader) {
	t := a.cur
	t.Size = a.curSize
	a.held[t.XID] = t
	a.cur = nil
	a.hasPending = false
	// The prepared transaction's GTID is not recorded as executed: until it
	// commits downstream, a restart must read it again.
}

func (a *assembler) commit(h *replication.EventHeader, endPos uint64) error {
	t := a.cur
	a.cur = nil
	a.hasPending = false
	if endPos == 0 {
		endPos = a.lastPos
	}
	t.Pos = Position{a.file, endPos}
	if t.Size == 0 {
		t.Size = a.curSize
	}
	if t.Timestamp.IsZero() || t.Timestamp.Unix() == 0 {
		t.Timestamp = time.Unix(int64(h.Timestamp), 0)
	}
	already := a.opts.StartSet.Contains(t.GTID) || (!a.opts.SkipUntil.IsZero() && t.Pos.Compare(a.opts.SkipUntil) <= 0)
	a.recordExecuted(t.GTID, t.PrepareGTID)
	t.Executed = a.executed.Clone()
	if already || (!t.hasRows() && t.DDL == nil && len(t.Statements) == 0 && !a.opts.EmitEmpty) {
		t.Close()
		return nil
	}
	if t.DDL != nil && !t.hasRows() && !a.ddlKept(t.DDL) {
		if !a.opts.EmitEmpty {
			t.Close()
			return nil
		}
		t.DDL = nil // an empty transaction: it only advances the checkpoint
	}
	a.out = append(a.out, t)
	return nil
}

// recordExecuted adds a finished transaction's GTIDs to the executed set.
func (a *assembler) recordExecuted(g, prepare GTID) {
	a.executed.Add(prepare)
	if g.IsZero() {
		return
	}
	if g.MariaDB && a.heldInDomain(g.Domain) {
		a.executed.Add(g) // keep the held prepare's hole open
		return
	}
	a.executed.AdvanceTo(g)
}

func (a *assembler) heldInDomain(d uint32) bool {
	for _, t := range a.held {
		if t.GTID.MariaDB && t.GTID.Domain == d {
			return true
		}
	}
	return false
}

func (a *assembler) keep(db, table string) bool { return a.opts.Filter.Match(db, table) }

// keepName filters a name as a statement writes it: on a server that
// compares names without case (lower_case_table_names), ALTER TABLE
// Shop.Orders is about shop.orders.
func (a *assembler) keepName(db, table string) bool {
	if a.keep(db, table) {
		return true
	}
	return a.dec.catalog.FoldCase && a.keep(strings.ToLower(db), strings.ToLower(table))
}

// ddlKept reports whether a statement concerns a table (or database) the
// filter keeps. A table statement is kept when the filter keeps one of the
// tables it names (a RENAME from or to a kept table); account statements
// only with AccountStatements; any other statement by the session's
// default database, so that a statement that names no database passes
// only a filter that keeps everything.
func (a *assembler) ddlKept(d *DDL) bool {
	var mode schema.SQLMode
	if d.Session != nil {
		mode = schema.SQLMode(d.Session.SQLMode)
	}
	st := schema.Classify(d.Schema, d.SQL, mode)
	switch {
	case st.Kind == schema.AccountStatement:
		if !a.opts.AccountStatements {
			a.log.Info("account statement not replicated (set account_statements to replicate them)", "sql", schema.Redact(d.SQL))
		}
		return a.opts.AccountStatements
	case st.Kind == schema.DatabaseStatement:
		return a.keepName(st.Database, "")
	case len(st.Tables) > 0:
		return a.anyKept(st.Tables)
	}
	return a.keep(d.Schema, "")
}

func (a *assembler) anyKept(tables []schema.TableRef) bool {
	for _, t := range tables {
		if a.keepName(t.Schema, t.Name) {
			return true
		}
	}
	return false
}

// rowsQuery records the statement text the server logs before row events
// (binlog_rows_query_log_events / binlog_annotate_row_events).
func (a *assembler) rowsQuery(q []byte) {
	if a.cur == nil || len(q) == 0 || !a.opts.IncludeQuery {
		return
	}
	a.cur.Queries = append(a.cur.Queries, string(q))
}

// resume prepares for a stream restarted after the last returned
// transaction: partial state is dropped, and with GTIDs the transactions
// in set are skipped when the server sends them again.
func (a *assembler) resume(set GTIDSet, useGTID bool) {
	a.dropCurrent()
	for _, t := range a.out {
		t.Close()
	}
	a.out = nil
	if useGTID {
		a.executed = set.Clone()
		a.opts.StartSet = set.Clone()
		// Prepared XA transactions are re-read: their GTIDs are not in set.
		for x, t := range a.held {
			t.Close()
			delete(a.held, x)
		}
	}
}

// take returns and clears the transactions completed so far.
func (a *assembler) take() []*Txn {
	out := a.out
	a.out = nil
	return out
}

// inTxn reports whether a transaction is open or pending.
func (a *assembler) inTxn() bool { return a.cur != nil || a.hasPending }

// close releases held and open transactions.
func (a *assembler) close() {
	a.dropCurrent()
	for _, t := range a.held {
		t.Close()
	}
	a.held = map[string]*Txn{}
	for _, t := range a.out {
		t.Close()
	}
	a.out = nil
}
