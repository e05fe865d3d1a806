package nats

import (
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-cdc/sluice/binlog"
	"github.com/sluice-cdc/sluice/binlog/schema"
)

// encoder turns transactions into message bodies in one wire format.
//
// In mode row a message carries one unit: one row change, or for Canal
// with rows: event a run of changes of one table and operation (Canal's
// FlatMessage of one rows event). In mode transaction a message carries a
// whole transaction in sluice's own transaction envelope, whatever the
// format: the sluice format's changes, or the format's events in "events".
type encoder interface {
	// txnStart, txnUnit and txnEnd write a whole transaction as one body
	// (mode: transaction), one unit at a time so that a large transaction
	// is never held whole in memory. txnUnit writes the separating comma.
	txnStart(dst []byte, t *binlog.Txn, m meta) []byte
	txnUnit(dst []byte, t *binlog.Txn, u unit, m meta) []byte
	txnEnd(dst []byte, t *binlog.Txn, m meta) []byte
	// unit is one unit as a body of its own (mode: row).
	unit(dst []byte, t *binlog.Txn, u unit, m meta) []byte
	// ddl is a statement transaction.
	ddl(dst []byte, t *binlog.Txn, m meta) []byte
	// maxRun is the most changes a unit holds (1: one change per unit).
	maxRun() int
}

// unit is what one event of a format describes: one change, or a run of
// consecutive changes of one table and operation.
type unit struct {
	changes []*binlog.Change
	// row is the first change's place among the transaction's rows, from 0.
	row int
	// tableRow is its place among the transaction's rows of its table, from
	// 0 (Debezium's data_collection_order is tableRow+1).
	tableRow int
}

// meta is what a body knows beyond the transaction.
type meta struct {
	pipeline, source string
	now              time.Time // when the message is built (Canal's ts, Debezium's ts_ms)
	count            int       // changes in the transaction
	// snapshot marks the rows of an initial snapshot (read events): "true",
	// or "last" on a table's last row; "" for changes from the binlog.
	snapshot string
	// json is the source's change encoder (its tables' names made once);
	// nil: binlog.AppendChangeJSON.
	json *binlog.JSONEncoder
}

// appendChange appends a change object as binlog.AppendChangeJSON does.
func (m meta) appendChange(dst []byte, c *binlog.Change) []byte {
	if m.json != nil {
		return m.json.AppendChange(dst, c)
	}
	return binlog.AppendChangeJSON(dst, c)
}

// Formats are the names format takes.
const (
	FormatSluice   = "sluice"
	FormatCanal    = "canal"
	FormatDebezium = "debezium"
)

func newEncoder(cfg Config) encoder {
	switch cfg.Format {
	case FormatCanal:
		return txnEnvelope{format: FormatCanal, eventEncoder: newCanalEncoder(cfg.Canal)}
	case FormatDebezium:
		return txnEnvelope{format: FormatDebezium, eventEncoder: newDebeziumEncoder(cfg.Debezium, cfg.Pipeline)}
	}
	return sluiceEncoder{}
}

// eventEncoder is a format built around events of its own (Canal's
// FlatMessage, Debezium's change event).
type eventEncoder interface {
	unit(dst []byte, t *binlog.Txn, u unit, m meta) []byte
	ddl(dst []byte, t *binlog.Txn, m meta) []byte
	maxRun() int
}

// txnEnvelope writes a format's transaction body (mode: transaction):
// sluice's transaction object, its own fields followed by "format" and
// "events", the format's events in order:
//
//	{"gtid":…,"server_id":…,"timestamp":…,"file":…,"pos":…,"format":"canal","events":[…]}
type txnEnvelope struct {
	format string
	eventEncoder
}

func (e txnEnvelope) txnStart(dst []byte, t *binlog.Txn, m meta) []byte {
	dst = appendSnapshotFlag(binlog.AppendTxnHeader(dst, t), m)
	return append(append(append(dst, `,"format":"`...), e.format...), `","events":[`...)
}

func (e txnEnvelope) txnUnit(dst []byte, t *binlog.Txn, u unit, m meta) []byte {
	if u.row > 0 {
		dst = append(dst, ',')
	}
	return e.unit(dst, t, u, m)
}

func (txnEnvelope) txnEnd(dst []byte, _ *binlog.Txn, _ meta) []byte { return append(dst, "]}"...) }

// sluiceEncoder writes the `sluice dump` JSON: a transaction object, or in
// row mode the change object with the transaction's fields and its place
// in the transaction (seq counts from 1 to count).
type sluiceEncoder struct{}

func (sluiceEncoder) maxRun() int { return 1 }

func (sluiceEncoder) txnStart(dst []byte, t *binlog.Txn, m meta) []byte {
	if m.json != nil {
		dst = m.json.AppendTxnHeader(dst, t)
	} else {
		dst = binlog.AppendTxnHeader(dst, t)
	}
	return append(appendSnapshotFlag(dst, m), `,"changes":[`...)
}

// appendSnapshotFlag writes sluice's "snapshot":true on a snapshot's rows.
func appendSnapshotFlag(dst []byte, m meta) []byte {
	if m.snapshot == "" {
		return dst
	}
	return append(dst, `,"snapshot":true`...)
}

func (sluiceEncoder) txnUnit(dst []byte, _ *binlog.Txn, u unit, m meta) []byte {
	for i, c := range u.changes {
		if u.row+i > 0 {
			dst = append(dst, ',')
		}
		dst = m.appendChange(dst, c)
	}
	return dst
}

func (sluiceEncoder) txnEnd(dst []byte, _ *binlog.Txn, _ meta) []byte { return append(dst, "]}"...) }

func (sluiceEncoder) unit(dst []byte, t *binlog.Txn, u unit, m meta) []byte {
	dst = appendSnapshotFlag(binlog.AppendTxnHeader(dst, t), m)
	dst = strconv.AppendInt(append(dst, `,"seq":`...), int64(u.row+1), 10)
	dst = strconv.AppendInt(append(dst, `,"count":`...), int64(m.count), 10)
	dst = append(dst, ',')
	// The change object's fields, without its opening brace.
	start := len(dst)
	dst = m.appendChange(dst, u.changes[0])
	return append(dst[:start], dst[start+1:]...)
}

func (sluiceEncoder) ddl(dst []byte, t *binlog.Txn, _ meta) []byte {
	b, _ := binlog.AppendJSON(dst, t)
	return b
}

// runs cuts a transaction's changes into units of at most max changes,
// each a run of one table, operation and subject (subject may be nil).
type runs struct {
	max      int
	subject  func(*binlog.Change) string
	cur      unit
	curSubj  string
	rows     int
	perTable map[string]int // nil: units' tableRow not counted (their encoder has no use for it)
	// The last change's table and its qualified name, computed once per
	// table rather than per change (and kept from one transaction to the
	// next: a table's names never change).
	lastTable *binlog.Table
	lastName  string
	// reuse: a unit's changes are used before add or flush is called
	// again, so units take turns with two slices instead of a new one
	// each.
	reuse bool
	bufs  [2][]*binlog.Change
	turn  int
}

func newRuns(max int, subject func(*binlog.Change) string) *runs {
	return &runs{max: max, subject: subject, perTable: map[string]int{}}
}

// reset empties r for the next transaction.
func (r *runs) reset() {
	r.cur, r.curSubj, r.rows = unit{}, "", 0
	clear(r.perTable)
}

// add takes the next change; it returns a complete unit when c starts a
// new one.
func (r *runs) add(c *binlog.Change) (unit, string, bool) {
	subj := ""
	if r.subject != nil {
		subj = r.subject(c)
	}
	name := r.lastName
	if c.Table != r.lastTable {
		name = c.Table.QualifiedName()
	}
	var done unit
	var doneSubj string
	flushed := false
	if n := len(r.cur.changes); n > 0 {
		last := r.cur.changes[n-1]
		if n >= r.max || last.Op != c.Op || name != r.lastName || subj != r.curSubj {
			done, doneSubj, flushed = r.cur, r.curSubj, true
			r.cur = unit{}
		}
	}
	if len(r.cur.changes) == 0 {
		var cs []*binlog.Change
		if r.reuse {
			r.turn ^= 1
			cs = r.bufs[r.turn][:0]
		} else {
			cs = make([]*binlog.Change, 0, min(r.max, 4))
		}
		r.cur = unit{row: r.rows, changes: cs}
		if r.perTable != nil {
			r.cur.tableRow = r.perTable[name]
		}
		r.curSubj = subj
	}
	r.lastTable, r.lastName = c.Table, name
	r.cur.changes = append(r.cur.changes, c)
	if r.reuse {
		r.bufs[r.turn] = r.cur.changes
	}
	if r.perTable != nil {
		r.perTable[name]++
	}
	r.rows++
	return done, doneSubj, flushed
}

// flush returns the last unit, if any.
func (r *runs) flush() (unit, string, bool) {
	if len(r.cur.changes) == 0 {
		return unit{}, "", false
	}
	u, s := r.cur, r.curSubj
	r.cur = unit{}
	return u, s, true
}

// timeMicros parses MySQL's TIME text ("-838:59:59.000001") into
// microseconds.
func timeMicros(s string) (int64, bool) {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return 0, false
	}
	h, err1 := strconv.ParseInt(parts[0], 10, 64)
	m, err2 := strconv.ParseInt(parts[1], 10, 64)
	secs, frac, _ := strings.Cut(parts[2], ".")
	sec, err3 := strconv.ParseInt(secs, 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return 0, false
	}
	var us int64
	if frac != "" {
		frac = (frac + "000000")[:6]
		us, _ = strconv.ParseInt(frac, 10, 64)
	}
	total := ((h*60+m)*60+sec)*1_000_000 + us
	if neg {
		total = -total
	}
	return total, true
}

// appendJSONString appends s as a JSON string.
func appendJSONString(dst []byte, s string) []byte { return binlog.AppendJSONString(dst, s) }

// indexHead finds the table of CREATE/DROP INDEX ... ON table.
var indexHead = regexp.MustCompile("(?is)^\\s*(?:/\\*.*?\\*/\\s*)*(?:create|drop)\\s+(?:online\\s+|unique\\s+|fulltext\\s+|spatial\\s+)*index\\s+(?:if\\s+(?:not\\s+)?exists\\s+)?(?:`[^`]+`|[\\w$]+)\\s+on\\s+(`[^`]+`|[\\w$]+)(?:\\s*\\.\\s*(`[^`]+`|[\\w$]+))?")

// ddlTable is the database and table a DDL statement changes (the table
// empty for database statements and statements that name none): a table's
// DDL goes to its subject, and the formats name it.
func ddlTable(t *binlog.Txn) (db, table string) {
	db, table, _ = schema.TableOf(t.DDL.Schema, t.DDL.SQL)
	if table == "" {
		if m := indexHead.FindStringSubmatch(t.DDL.SQL); m != nil {
			unq := func(s string) string { return strings.ReplaceAll(strings.Trim(s, "`"), "``", "`") }
			if m[2] == "" {
				db, table = t.DDL.Schema, unq(m[1])
			} else {
				db, table = unq(m[1]), unq(m[2])
			}
		}
	}
	if db == "" {
		db = t.DDL.Schema
	}
	return db, table
}
