package binlog

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// AppendJSON appends the transaction as one JSON object (no newline), the
// format of `sluice dump --format json`:
//
//	{"gtid":"...","server_id":1,"timestamp":"RFC3339","file":"bin.000001","pos":1234,
//	 "changes":[{"schema":"shop","table":"orders","type":"insert","pk":["id"],"before":{...},"after":{...}}]}
//
// A statement transaction has "ddl":{"schema":"...","sql":"..."} instead of
// changes. Integers are exact JSON numbers, DECIMAL a string, temporal values
// strings in MySQL's text form, JSON columns embedded JSON, binary values
// base64, NULL null; columns missing from the row image are left out.
//
// It is hand-written rather than built on encoding/json because it is the
// hot path of `sluice dump` and of the NATS sink: it writes straight from
// the column slices without building maps or reflecting.
func AppendJSON(dst []byte, t *Txn) ([]byte, error) { return appendJSON(dst, t, nil) }

// JSONEncoder appends transactions exactly as AppendJSON does, with the
// JSON form of each table's names (schema, table, key and column names)
// made once per table rather than once per row. The tables of the changes
// it encodes must not change afterwards (the decoder's never do). One
// encoder is used by one goroutine.
type JSONEncoder struct {
	tables map[*Table]*tableJSON // its keys keep the tables alive: no address is reused
	last   *Table
	lastJS *tableJSON
	buf    []byte // WriteJSON's
	// ts is the last commit time AppendTxnHeader formatted, as tsText.
	ts     time.Time
	tsText []byte
}

// tableJSON is a table's names as AppendChangeJSON writes them.
type tableJSON struct {
	head [Delete + 1][]byte // {"schema":...,"pk":[...], by Op
	keys [][]byte           // "name": by column
}

// AppendJSON is AppendJSON.
func (e *JSONEncoder) AppendJSON(dst []byte, t *Txn) ([]byte, error) { return appendJSON(dst, t, e) }

func (e *JSONEncoder) table(t *Table) *tableJSON {
	if t == e.last {
		return e.lastJS
	}
	if tj := e.tables[t]; tj != nil {
		e.last, e.lastJS = t, tj
		return tj
	}
	if e.tables == nil || len(e.tables) > 10000 {
		e.tables = map[*Table]*tableJSON{}
	}
	tj := &tableJSON{keys: make([][]byte, len(t.Columns))}
	for op := Insert; op <= Delete; op++ {
		tj.head[op] = appendChangeHead(nil, t, op)
	}
	for i := range t.Columns {
		tj.keys[i] = append(appendString(nil, t.Columns[i].Name), ':')
	}
	e.tables[t] = tj
	e.last, e.lastJS = t, tj
	return tj
}

// WriteJSON writes the transaction to w exactly as AppendJSON appends it.
// The changes of a transaction decoded with DecodeOptions.RenderJSON are
// written from where they are, without being copied into one buffer
// first: a transaction spilled to disk is copied from its file, in
// bounded memory. Should reading that file fail, what was written so far
// ends inside the transaction's changes, and the error says so.
func (e *JSONEncoder) WriteJSON(w io.Writer, t *Txn) error {
	if t.parent != nil || t.rendered == nil || (t.Len() == 0 && t.DDL != nil) {
		var err error
		if e.buf, err = appendJSON(e.buf[:0], t, e); err != nil {
			return err
		}
		_, err = w.Write(e.buf)
		return err
	}
	r := t.rendered
	if r.file != nil {
		// Anything that failed writing the file fails here, before a
		// byte of the transaction is written.
		if err := r.flush(); err != nil {
			return err
		}
	}
	e.buf = append(appendJSONHead(e.buf[:0], t), `,"changes":[`...)
	if r.file != nil {
		if _, err := w.Write(e.buf); err != nil {
			return err
		}
		if _, err := io.CopyN(w, io.NewSectionReader(r.file, 0, r.length), r.length); err != nil {
			return fmt.Errorf("read spilled transaction (the JSON written so far ends inside its changes): %w", err)
		}
		_, err := io.WriteString(w, "]}")
		return err
	}
	// Small parts are gathered into buf, large ones written as they are.
	const direct = 4 << 10
	for i, p := range r.parts {
		if i > 0 {
			e.buf = append(e.buf, ',')
		}
		if len(p) < direct {
			e.buf = append(e.buf, p...)
			continue
		}
		if _, err := w.Write(e.buf); err != nil {
			return err
		}
		if _, err := w.Write(p); err != nil {
			return err
		}
		e.buf = e.buf[:0]
	}
	e.buf = append(e.buf, "]}"...)
	_, err := w.Write(e.buf)
	return err
}

func appendJSON(dst []byte, t *Txn, enc *JSONEncoder) ([]byte, error) {
	dst = appendJSONHead(dst, t)
	if t.Len() > 0 || t.DDL == nil {
		dst = append(dst, `,"changes":[`...)
		if t.parent == nil && t.rendered != nil {
			dst, err := t.rendered.appendTo(dst)
			if err != nil {
				return dst, err
			}
			return append(dst, "]}"...), nil
		}
		i := 0
		for c, err := range t.Changes() {
			if err != nil {
				return dst, err
			}
			if i > 0 {
				dst = append(dst, ',')
			}
			if enc != nil {
				dst = enc.appendChange(dst, c)
			} else {
				dst = AppendChangeJSON(dst, c)
			}
			i++
		}
		dst = append(dst, ']')
	}
	return append(dst, '}'), nil
}

// appendJSONHead appends a transaction object up to its changes: the
// header, and its DDL and statements.
func appendJSONHead(dst []byte, t *Txn) []byte {
	dst = AppendTxnHeader(dst, t)
	if t.DDL != nil {
		dst = append(dst, `,"ddl":{"schema":`...)
		dst = appendString(dst, t.DDL.Schema)
		dst = append(dst, `,"sql":`...)
		dst = appendString(dst, t.DDL.SQL)
		dst = append(dst, '}')
	}
	return appendStringList(dst, `,"statements":[`, t.Statements)
}

// appendStringList appends field (the key and the opening bracket) and
// the strings of list as a JSON array, nothing when list is empty.
func appendStringList(dst []byte, field string, list []string) []byte {
	if len(list) == 0 {
		return dst
	}
	dst = append(dst, field...)
	for i, s := range list {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, s)
	}
	return append(dst, ']')
}

// AppendTxnHeader appends the opening brace and the transaction's own
// fields (gtid, server_id, timestamp, file, pos, xid), for callers that
// write the changes themselves.
func AppendTxnHeader(dst []byte, t *Txn) []byte { return appendTxnHeader(dst, t, nil) }

// AppendTxnHeader is AppendTxnHeader, the commit time formatted once for
// consecutive transactions that share it (binlog times are whole seconds).
func (e *JSONEncoder) AppendTxnHeader(dst []byte, t *Txn) []byte { return appendTxnHeader(dst, t, e) }

func appendTxnHeader(dst []byte, t *Txn, e *JSONEncoder) []byte {
	dst = append(dst, `{"gtid":"`...)
	// A GTID's text is digits, dashes, a UUID and a tag: written as it is,
	// unless it has a byte a JSON string escapes.
	start := len(dst)
	dst = t.GTID.AppendText(dst)
	if !plainJSONText(dst[start:]) {
		dst = appendString(dst[:start-1], t.GTID.String())
	} else {
		dst = append(dst, '"')
	}
	dst = append(dst, `,"server_id":`...)
	dst = strconv.AppendUint(dst, uint64(t.ServerID), 10)
	dst = append(dst, `,"timestamp":"`...)
	if e != nil {
		if e.tsText == nil || !t.Timestamp.Equal(e.ts) {
			e.ts, e.tsText = t.Timestamp, t.Timestamp.UTC().AppendFormat(e.tsText[:0], time.RFC3339Nano)
		}
		dst = append(dst, e.tsText...)
	} else {
		dst = t.Timestamp.UTC().AppendFormat(dst, time.RFC3339Nano)
	}
	dst = append(dst, `","file":`...)
	dst = appendString(dst, t.Pos.File)
	dst = append(dst, `,"pos":`...)
	dst = strconv.AppendUint(dst, uint64(t.Pos.Pos), 10)
	if t.XID != "" {
		dst = append(dst, `,"xid":`...)
		dst = appendString(dst, t.XID)
	}
	return appendStringList(dst, `,"queries":[`, t.Queries)
}

// AppendChangeJSON appends one change object.
func AppendChangeJSON(dst []byte, c *Change) []byte {
	return appendChangeRest(appendChangeHead(dst, c.Table, c.Op), c, nil)
}

// AppendChange appends one change object exactly as AppendChangeJSON
// does, with its table's names made once.
func (e *JSONEncoder) AppendChange(dst []byte, c *Change) []byte { return e.appendChange(dst, c) }

func (e *JSONEncoder) appendChange(dst []byte, c *Change) []byte {
	if c.Op < Insert || c.Op > Delete {
		return AppendChangeJSON(dst, c)
	}
	tj := e.table(c.Table)
	return appendChangeRest(append(dst, tj.head[c.Op]...), c, tj.keys)
}

// appendChangeHead appends a change object's opening: its table, type and
// key names.
func appendChangeHead(dst []byte, t *Table, op Op) []byte {
	dst = append(dst, `{"schema":`...)
	dst = appendString(dst, t.Schema)
	dst = append(dst, `,"table":`...)
	dst = appendString(dst, t.Name)
	dst = append(dst, `,"type":"`...)
	dst = append(dst, op.String()...)
	dst = append(dst, `","pk":[`...)
	for i, k := range t.PK {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, t.Columns[k].Name)
	}
	return append(dst, ']')
}

// appendChangeRest appends the rest of a change object: keys, when not
// nil, are its table's column names as JSON object keys.
func appendChangeRest(dst []byte, c *Change, keys [][]byte) []byte {
	if c.Query > 0 {
		// The statement that made the change: an index into the
		// transaction's "queries".
		dst = append(dst, `,"query":`...)
		dst = strconv.AppendInt(dst, int64(c.Query-1), 10)
	}
	if c.Before != nil {
		dst = append(dst, `,"before":`...)
		dst = appendImageJSON(dst, c.Table, c.Before, keys)
	}
	if c.After != nil {
		dst = append(dst, `,"after":`...)
		dst = appendImageJSON(dst, c.Table, c.After, keys)
	}
	return append(dst, '}')
}

// AppendImageJSON appends a row image as an object keyed by column name.
func AppendImageJSON(dst []byte, t *Table, img []Value) []byte {
	return appendImageJSON(dst, t, img, nil)
}

func appendImageJSON(dst []byte, t *Table, img []Value, keys [][]byte) []byte {
	dst = append(dst, '{')
	first := true
	for i, v := range img {
		if _, absent := v.(AbsentValue); absent {
			continue
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		switch {
		case i < len(keys):
			dst = append(dst, keys[i]...)
		case i < len(t.Columns):
			dst = appendString(dst, t.Columns[i].Name)
			dst = append(dst, ':')
		default:
			dst = appendString(dst, unknownColumnName(i))
			dst = append(dst, ':')
		}
		dst = AppendValueJSON(dst, v)
	}
	return append(dst, '}')
}

// AppendValueJSON appends one value as JSON.
func AppendValueJSON(dst []byte, v Value) []byte {
	switch x := v.(type) {
	case nil:
		return append(dst, "null"...)
	case int64:
		return strconv.AppendInt(dst, x, 10)
	case uint64:
		return strconv.AppendUint(dst, x, 10)
	case float32:
		return appendFloat(dst, float64(x), 32)
	case float64:
		return appendFloat(dst, x, 64)
	case Decimal:
		return appendString(dst, string(x))
	case string:
		return appendString(dst, x)
	case []byte:
		dst = append(dst, '"')
		dst = base64.StdEncoding.AppendEncode(dst, x)
		return append(dst, '"')
	case JSON:
		// JSON values are valid JSON: rendered by the JSON decoder, or
		// checked when read from MariaDB's text JSON columns. They are
		// embedded, except the document null, which would read as SQL NULL,
		// and documents that would read as that marker.
		if len(x) == 0 || needsJSONMarker(x) {
			dst = append(dst, `{"$json":`...)
			if len(x) == 0 {
				x = JSON("null")
			}
			dst = appendString(dst, string(x))
			return append(dst, '}')
		}
		return append(dst, x...)
	case RawText:
		// Text whose bytes are not valid in its character set (or in a
		// character set sluice does not convert): the bytes, marked.
		dst = append(dst, `{"$base64":"`...)
		dst = base64.StdEncoding.AppendEncode(dst, x.Bytes)
		dst = append(dst, `","$charset":`...)
		dst = appendString(dst, x.Charset)
		return append(dst, '}')
	case Enum:
		return appendString(dst, x.Name)
	case Set:
		return appendString(dst, x.Names)
	case UUID:
		return appendString(dst, x.String())
	case Inet4:
		return appendString(dst, x.String())
	case Inet6:
		return appendString(dst, x.String())
	case []float32:
		dst = append(dst, '[')
		for i, f := range x {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendFloat(dst, float64(f), 32)
		}
		return append(dst, ']')
	}
	b, _ := json.Marshal(v)
	return append(dst, b...)
}

// needsJSONMarker reports whether a JSON document must be written as
// {"$json":"<text>"}: the document null (which would read as SQL NULL),
// and objects whose first key is "$json" (which would read as the marker).
func needsJSONMarker(doc JSON) bool {
	t := []byte(doc)
	for len(t) > 0 && (t[0] == ' ' || t[0] == '\t' || t[0] == '\r' || t[0] == '\n') {
		t = t[1:] // bytes.TrimLeft builds its set of bytes on every call
	}
	switch {
	case len(t) == 0:
		return false
	case t[0] == 'n':
		return true
	case t[0] != '{' || (!bytes.ContainsRune(t, '$') && !bytes.Contains(t, []byte(`\u`))):
		return false
	}
	d := json.NewDecoder(bytes.NewReader(doc))
	tok, err := d.Token()
	if err != nil {
		return false
	}
	if tok == nil {
		return true
	}
	if tok != json.Delim('{') {
		return false
	}
	key, err := d.Token()
	return err == nil && key == "$json"
}

// AppendFloat appends f as the shortest text that reads back as the same
// float of the given size; NaN and infinities (which MySQL cannot store)
// as null.
func AppendFloat(dst []byte, f float64, bits int) []byte { return appendFloat(dst, f, bits) }

func appendFloat(dst []byte, f float64, bits int) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(dst, "null"...)
	}
	return strconv.AppendFloat(dst, f, 'g', -1, bits)
}

const hexDigits = "0123456789abcdef"

// AppendJSONString appends s as a JSON string; invalid UTF-8 becomes
// U+FFFD as with encoding/json.
func AppendJSONString(dst []byte, s string) []byte { return appendString(dst, s) }

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// plain8 reports whether none of the 8 bytes of x needs escaping in a JSON
// string: no control character, quote, backslash or non-ASCII byte.
func plain8(x uint64) bool {
	hasLess := (x - lsb*0x20) & ^x & msb
	q := x ^ (lsb * '"')
	b := x ^ (lsb * '\\')
	hasQuote := (q - lsb) & ^q & msb
	hasBackslash := (b - lsb) & ^b & msb
	return hasLess|hasQuote|hasBackslash|(x&msb) == 0
}

// plainJSONText reports whether b needs no escaping in a JSON string.
func plainJSONText(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// appendString appends s as a JSON string, replacing invalid UTF-8 as
// encoding/json does. Plain ASCII is skipped eight bytes at a time.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		for i+8 <= len(s) && plain8(binary.LittleEndian.Uint64([]byte(s[i:i+8]))) {
			i += 8
		}
		if i >= len(s) {
			break
		}
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
