package binlog

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
	"github.com/pingcap/tidb/pkg/parser/charset"

	"github.com/sluice-cdc/sluice/binlog/schema"
)

// ErrPartialJSON is returned for PARTIAL_UPDATE_ROWS_EVENT: with
// binlog_row_value_options=PARTIAL_JSON the server logs only a diff of JSON
// columns, which cannot be turned into a row without the full before image.
var ErrPartialJSON = errors.New("partial JSON update (PARTIAL_UPDATE_ROWS_EVENT): the source logs JSON changes as diffs; " +
	"set binlog_row_value_options='' (the default) on the source so that full JSON values are logged")

// UnknownColumnsError is returned in strict mode when a table's columns
// cannot be named.
type UnknownColumnsError struct {
	Schema, Table string
	Reason        string
	// Resolved describes the DDL after which the table's definition was
	// read from the source, when it was ("" otherwise).
	Resolved string
}

func (e *UnknownColumnsError) Error() string {
	msg := fmt.Sprintf("cannot name the columns of %s.%s: %s", e.Schema, e.Table, e.Reason)
	if e.Resolved != "" {
		msg += fmt.Sprintf(". Its definition was read from the source after %s, which the schema tracker cannot parse; "+
			"that is the table as it is now, and a later DDL has changed it, so the rows logged in between cannot be decoded by name. "+
			"To go on: re-copy the table to the target and restart the pipeline from a position after that later DDL, "+
			"or skip these transactions (sink.skip); set binlog_row_metadata=FULL on the source (MariaDB 10.5+, MySQL 8.0) "+
			"so that row events name their columns from now on", e.Resolved)
	}
	return msg
}

// decoder turns TABLE_MAP and row events into Tables and Changes.
type decoder struct {
	catalog *schema.Catalog
	strict  bool // fail instead of naming columns @1, @2, ...
	log     *slog.Logger
	tables  map[uint64]*tableDecoder // by table id
	// resolved notes the definitions read from the source for a DDL the
	// tracker cannot parse: the DDL and its position.
	resolved map[*schema.Table]string
	warned   map[string]bool
	// goMySQLRows decodes every row with go-mysql, for the differential
	// test of sluice's own row decoder.
	goMySQLRows bool
	// arena holds the values decoded in this goroutine.
	arena arena
}

// tableDecoder is a Table with one value decoder per column.
type tableDecoder struct {
	tm    *replication.TableMapEvent
	def   *schema.Table
	table *Table
	dec   []colDecoder
	// goMySQL: the table has MySQL binary JSON columns, whose values
	// go-mysql renders (see mergeJSON).
	goMySQL bool
	// conv converts the values of rows go-mysql decoded whole: only for
	// the differential test of this decoder (decoder.goMySQLRows).
	conv []func(Value) (Value, error)
}

func newDecoder(cat *schema.Catalog, strict bool, log *slog.Logger) *decoder {
	if cat == nil {
		cat = schema.NewCatalog("")
	}
	return &decoder{catalog: cat, strict: strict, log: log, tables: map[uint64]*tableDecoder{}, warned: map[string]bool{}}
}

// tableFor returns the decoder for a TABLE_MAP, reusing the previous one
// when neither the map nor the tracked definition changed. TABLE_MAP events
// precede every row event, so this is on the hot path.
func (d *decoder) tableFor(tm *replication.TableMapEvent) (*tableDecoder, error) {
	def := d.catalog.Table(string(tm.Schema), string(tm.Table))
	if td := d.tables[tm.TableID]; td != nil && td.def == def && sameTableMap(td.tm, tm) {
		return td, nil
	}
	td, err := d.buildTable(tm, def)
	if err != nil {
		return nil, err
	}
	d.tables[tm.TableID] = td
	return td, nil
}

func sameTableMap(a, b *replication.TableMapEvent) bool {
	if a == b {
		return true
	}
	if !bytes.Equal(a.Schema, b.Schema) || !bytes.Equal(a.Table, b.Table) || !bytes.Equal(a.ColumnType, b.ColumnType) ||
		len(a.ColumnMeta) != len(b.ColumnMeta) || len(a.ColumnName) != len(b.ColumnName) {
		return false
	}
	for i := range a.ColumnMeta {
		if a.ColumnMeta[i] != b.ColumnMeta[i] {
			return false
		}
	}
	return true
}

// realType resolves the type a STRING column really has (ENUM, SET) from
// its metadata, as the server's table_def::type does.
func realType(tm *replication.TableMapEvent, i int) byte {
	t := tm.ColumnType[i]
	if t == mysql.MYSQL_TYPE_STRING && tm.ColumnMeta[i] >= 256 {
		b0 := byte(tm.ColumnMeta[i] >> 8)
		if b0&0x30 != 0x30 {
			return b0 | 0x30
		}
		return b0
	}
	if t == mysql.MYSQL_TYPE_DATE {
		return mysql.MYSQL_TYPE_NEWDATE
	}
	return t
}

func (d *decoder) buildTable(tm *replication.TableMapEvent, def *schema.Table) (*tableDecoder, error) {
	n := int(tm.ColumnCount)
	t := &Table{Schema: string(tm.Schema), Name: string(tm.Table), Columns: make([]Column, n)}
	for i := range n {
		t.Columns[i].Type = realType(tm, i)
		switch t.Columns[i].Type {
		case mysql.MYSQL_TYPE_TIME2, mysql.MYSQL_TYPE_DATETIME2, mysql.MYSQL_TYPE_TIMESTAMP2:
			t.Columns[i].FSP = int(tm.ColumnMeta[i])
		}
		if ok, null := tm.Nullable(i); ok {
			t.Columns[i].Nullable = null
		}
	}

	// Names from the server's own metadata (binlog_row_metadata=FULL) win.
	names := tm.ColumnNameString()
	useDef := def != nil && len(def.Columns) == n
	t.Sequence = def != nil && def.Sequence
	reason := ""
	if useDef {
		if i, ok := compatible(def, t); !ok {
			useDef = false
			reason = fmt.Sprintf("column %d (%s) is %s in the tracked schema but the binlog logs a %s (binlog type %d); "+
				"the tracked schema does not match this position", i+1, def.Columns[i].Name, def.Columns[i].SQLType, TypeName(t.Columns[i].Type), t.Columns[i].Type)
		} else if i, ok := sameNames(def, names); !ok {
			// The server's own names say the definition is of another
			// point in the stream: its attributes are not used either.
			useDef = false
			reason = fmt.Sprintf("column %d is %s in the tracked schema but %s in the binlog's metadata; "+
				"the tracked schema does not match this position", i+1, def.Columns[i].Name, names[i])
			key := t.QualifiedName() + "|" + reason
			if !d.warned[key] && d.log != nil {
				d.warned[key] = true
				d.log.Warn("the binlog's column names differ from the tracked schema; using the binlog's", "table", t.QualifiedName(), "reason", reason)
			}
		}
	} else if def == nil {
		reason = "the table is not in the tracked schema (created before the start position and not in information_schema)"
	} else {
		reason = fmt.Sprintf("the binlog has %d columns but the tracked schema has %d; the tracked schema does not match this position", n, len(def.Columns))
	}
	switch {
	case len(names) == n:
		t.NamesKnown = true
		for i, nm := range names {
			t.Columns[i].Name = nm
		}
	case useDef:
		t.NamesKnown = true
		for i := range def.Columns {
			t.Columns[i].Name = def.Columns[i].Name
		}
	default:
		for i := range t.Columns {
			t.Columns[i].Name = unknownColumnName(i)
		}
		if d.strict {
			return nil, &UnknownColumnsError{Schema: t.Schema, Table: t.Name, Reason: reason, Resolved: d.resolved[def]}
		}
		if r := d.resolved[def]; r != "" {
			reason += "; the definition was read from the source after " + r + " and a later DDL has changed the table"
		}
		key := t.QualifiedName() + "|" + reason
		if !d.warned[key] && d.log != nil {
			d.warned[key] = true
			d.log.Warn("column names unknown, using @1, @2, ...", "table", t.QualifiedName(), "reason", reason)
		}
	}

	// Per-column attributes: the tracked definition first, then what the
	// server's optional metadata states.
	if useDef {
		for i, c := range def.Columns {
			col := &t.Columns[i]
			col.SQLType, col.BaseType, col.Unsigned, col.Charset, col.Elems = c.SQLType, c.Type, c.Unsigned, c.Charset, c.Elems
			col.Binary = c.Charset == "binary" && !c.JSON
			col.JSON, col.Generated, col.Invisible, col.Length = c.JSON, c.Generated, c.Invisible, c.Length
			col.Nullable = c.Nullable
		}
		for _, name := range def.RowKey() {
			if i := def.ColumnIndex(name); i >= 0 {
				t.PK = append(t.PK, i)
			}
		}
	}
	for i, u := range tm.UnsignedMap() {
		t.Columns[i].Unsigned = u
	}
	for i, coll := range tm.CollationMap() {
		setCollation(&t.Columns[i], coll)
	}
	for i, coll := range tm.EnumSetCollationMap() {
		setCollation(&t.Columns[i], coll)
	}
	for i, e := range tm.EnumStrValueMap() {
		t.Columns[i].Elems = e
	}
	for i, e := range tm.SetStrValueMap() {
		t.Columns[i].Elems = e
	}
	for i, vis := range tm.VisibilityMap() {
		t.Columns[i].Invisible = !vis
	}
	if len(tm.PrimaryKey) > 0 {
		t.PK = t.PK[:0]
		for _, k := range tm.PrimaryKey {
			if int(k) < n {
				t.PK = append(t.PK, int(k))
			}
		}
	}
	for i := range t.Columns {
		if t.Columns[i].Type == mysql.MYSQL_TYPE_JSON {
			t.Columns[i].JSON, t.Columns[i].Binary = true, false
		}
	}

	td := &tableDecoder{tm: tm, def: def, table: t, dec: make([]colDecoder, n)}
	for i := range t.Columns {
		if t.Columns[i].Type == mysql.MYSQL_TYPE_JSON {
			td.goMySQL = true
		}
		var err error
		if td.dec[i], err = decoderFor(tm, i, &t.Columns[i]); err != nil {
			return nil, fmt.Errorf("%s: %w", t.QualifiedName(), err)
		}
	}
	return td, nil
}

// sameNames checks the tracked definition's column names against the
// names the binlog logs (binlog_row_metadata=FULL), when it logs them. It
// returns the first column that differs.
func sameNames(def *schema.Table, names []string) (int, bool) {
	if len(names) != len(def.Columns) {
		return 0, true
	}
	for i, n := range names {
		if !strings.EqualFold(n, def.Columns[i].Name) {
			return i, false
		}
	}
	return 0, true
}

func setCollation(c *Column, id uint64) {
	if id == 63 {
		c.Charset, c.Binary = "binary", true
		return
	}
	if coll, err := charset.GetCollationByID(int(id)); err == nil {
		c.Charset = coll.CharsetName
	}
	c.Binary = false
}

// compatible checks that the tracked definition has the types the binlog
// shows, so that a stale definition is never used to name columns. It
// returns the first mismatching column.
func compatible(def *schema.Table, t *Table) (int, bool) {
	for i, c := range def.Columns {
		if !typeMatches(c.Type, t.Columns[i].Type) {
			return i, false
		}
	}
	return 0, true
}

// jsonValue is the Value of a JSON column go-mysql decoded (MySQL's
// binary JSON, rendered by go-mysql as text).
func jsonValue(v Value) (Value, error) {
	if _, ok := v.(*replication.JsonDiff); ok {
		return nil, ErrPartialJSON
	}
	return toJSON(v), nil
}

func toJSON(v Value) Value {
	switch x := v.(type) {
	case string:
		if x == "" {
			return JSON("null")
		}
		return JSON(x)
	case []byte:
		if len(x) == 0 {
			// An empty document (INSERT IGNORE of NULL into NOT NULL): MySQL
			// reads it as JSON null.
			return JSON("null")
		}
		return JSON(x)
	}
	return v
}

// decodeRows decodes one row event into changes.
func (d *decoder) decodeRows(e *replication.RowsEvent, eventType replication.EventType) (out []*Change, err error) {
	if e.Table == nil || len(e.Rows) == 0 {
		return nil, nil
	}
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("corrupt row event for %s.%s: %s", e.Table.Schema, e.Table.Table, describePanic(r))
		}
	}()
	td, err := d.tableFor(e.Table)
	if err != nil {
		return nil, err
	}
	if eventType == replication.PARTIAL_UPDATE_ROWS_EVENT {
		return nil, ErrPartialJSON
	}
	if len(e.Rows[0]) == 1 {
		if dr, ok := e.Rows[0][0].(deferredRows); ok {
			if out, done, err := d.decodeDeferredRows(td, e, dr, eventType, rowOp(e)); done || err != nil {
				return out, err
			}
		}
	}
	op := rowOp(e)
	if op == 0 {
		return nil, fmt.Errorf("unsupported row event %s", eventType)
	}
	step := 1
	if op == Update {
		step = 2
	}
	out = make([]*Change, 0, len(e.Rows)/step)
	for r := 0; r+step <= len(e.Rows); r += step {
		c := &Change{Table: td.table, Op: op}
		img, err := td.image(e.Rows[r], e.SkippedColumns[r])
		if err != nil {
			return nil, err
		}
		switch op {
		case Insert:
			c.After = img
		case Delete:
			c.Before = img
		case Update:
			c.Before = img
			if c.After, err = td.image(e.Rows[r+1], e.SkippedColumns[r+1]); err != nil {
				return nil, err
			}
		}
		out = append(out, c)
	}
	return out, nil
}

// decodeDeferredRows decodes the row data rowsDecodeFunc left: with
// sluice's decoder (done), or into e.Rows with go-mysql's for the caller to
// convert (not done). The column bitmaps are checked against the data
// first: go-mysql's decoder never ends on an empty one.
func (d *decoder) decodeDeferredRows(td *tableDecoder, e *replication.RowsEvent, dr deferredRows, eventType replication.EventType, op Op) ([]*Change, bool, error) {
	if dr.pos > len(dr.data) {
		return nil, true, fmt.Errorf("row event header of %d bytes is longer than the event (%d)", dr.pos, len(dr.data))
	}
	if d.goMySQLRows {
		if err := checkBitmaps(e, len(td.dec), len(dr.data)-dr.pos, op); err != nil {
			return nil, true, err
		}
		e.Rows = nil
		if err := e.DecodeData(dr.pos, dr.data); err != nil {
			return nil, true, fmt.Errorf("malformed row data: %s", libraryError(err))
		}
		return nil, false, nil
	}
	data := dr.data[dr.pos:]
	switch eventType {
	case replication.MARIADB_WRITE_ROWS_COMPRESSED_EVENT_V1, replication.MARIADB_UPDATE_ROWS_COMPRESSED_EVENT_V1,
		replication.MARIADB_DELETE_ROWS_COMPRESSED_EVENT_V1:
		var err error
		if data, err = mysql.DecompressMariadbData(data); err != nil {
			return nil, true, fmt.Errorf("decompress row event: %w", err)
		}
	}
	out, err := td.decodeDeferred(e, data, op, &d.arena, nil)
	if err != nil || !td.goMySQL {
		return out, true, err
	}
	// MySQL's binary JSON: its values are go-mysql's.
	e.Rows = nil
	if err := e.DecodeData(dr.pos, dr.data); err != nil {
		return nil, true, fmt.Errorf("malformed row data: %s", libraryError(err))
	}
	return out, true, td.mergeJSON(out, e.Rows)
}

// mergeJSON puts go-mysql's values of the JSON columns of rows (every
// image of the event, in order) into the changes sluice's decoder made.
func (td *tableDecoder) mergeJSON(out []*Change, rows [][]any) error {
	r := 0
	set := func(img []Value) error {
		if r >= len(rows) {
			return fmt.Errorf("%s: go-mysql decoded %d row images, sluice more", td.table.QualifiedName(), len(rows))
		}
		for i, v := range img {
			if _, ok := v.(binaryJSON); !ok {
				continue
			}
			jv, err := jsonValue(rows[r][i])
			if err != nil {
				return fmt.Errorf("%s column %s: %w", td.table.QualifiedName(), td.table.Columns[i].Name, err)
			}
			img[i] = jv
		}
		r++
		return nil
	}
	for _, c := range out {
		for _, img := range [][]Value{c.Before, c.After} {
			if img == nil {
				continue
			}
			if err := set(img); err != nil {
				return err
			}
		}
	}
	return nil
}

func rowOp(e *replication.RowsEvent) Op {
	switch e.Type() {
	case replication.EnumRowsEventTypeInsert:
		return Insert
	case replication.EnumRowsEventTypeUpdate:
		return Update
	case replication.EnumRowsEventTypeDelete:
		return Delete
	}
	return 0
}

// convertGoMySQL makes the converters of the values go-mysql decodes, for
// the differential test of this decoder; set by the tests.
var convertGoMySQL func(*Column) func(Value) (Value, error)

func (td *tableDecoder) image(row []any, skipped []int) ([]Value, error) {
	if td.conv == nil {
		if convertGoMySQL == nil {
			return nil, fmt.Errorf("%s: rows decoded by go-mysql, which only the tests do", td.table.QualifiedName())
		}
		for i := range td.table.Columns {
			td.conv = append(td.conv, convertGoMySQL(&td.table.Columns[i]))
		}
	}
	for _, i := range skipped {
		row[i] = Absent
	}
	for i, v := range row {
		if v == nil || i >= len(td.conv) {
			continue
		}
		if _, ok := v.(AbsentValue); ok {
			continue
		}
		nv, err := td.conv[i](v)
		if err != nil {
			return nil, fmt.Errorf("%s column %s: %w", td.table.QualifiedName(), td.table.Columns[i].Name, err)
		}
		row[i] = nv
	}
	return row, nil
}
