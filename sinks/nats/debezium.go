package nats

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/sluice-cdc/sluice/binlog"
	"github.com/sluice-cdc/sluice/binlog/schema"
)

// DebeziumOptions tune format: debezium. The names follow Debezium's own
// settings.
type DebeziumOptions struct {
	// Schemas is JsonConverter's schemas.enable: each body is
	// {"schema":…,"payload":…}. Debezium's default is true.
	Schemas bool
	// TopicPrefix is Debezium's topic.prefix: source.name, and the prefix
	// of the schema names (<prefix>.<db>.<table>.Value). Empty means the
	// pipeline's name.
	TopicPrefix string
	// DecimalMode is decimal.handling.mode: precise (default: base64 of the
	// unscaled value with a org.apache.kafka.connect.data.Decimal schema),
	// string, or double.
	DecimalMode string
	// BigintUnsignedMode is bigint.unsigned.handling.mode: long (default: a
	// Java long, so values above 2^63-1 wrap to negative numbers, as
	// Debezium gives them) or precise (a Decimal of scale 0).
	BigintUnsignedMode string
	// TransactionMetadata is provide.transaction.metadata: the transaction
	// block in every event, and BEGIN/END events on the transaction
	// subject. Debezium's default is false.
	TransactionMetadata bool
	// Tombstones is tombstones.on.delete: an empty message with the key
	// follows every delete (Debezium Server's NATS sink drops them, so the
	// default is false).
	Tombstones bool
	// KeySubject, a subject template, also publishes each event's key
	// (the record key) as a message of its own there; empty: only the
	// Sluice-Key header carries it.
	KeySubject string
}

// The version sluice writes in source.version.
const debeziumVersion = "sluice"

// debeziumEncoder writes Debezium's MySQL connector change events as
// Debezium Server publishes them through Kafka Connect's JsonConverter
// (schemas.enable=true by default): the envelope (Envelope.java), the
// source block (BinlogSourceInfoStructMaker), values as
// BinlogValueConverters and JdbcValueConverters convert them with
// time.precision.mode=adaptive_time_microseconds, binary.handling.mode=
// bytes and the configured decimal and BIGINT UNSIGNED modes.
type debeziumEncoder struct {
	opt    DebeziumOptions
	mu     *sync.Mutex
	schema map[*binlog.Table]*dbzTable // per table layout
}

// dbzTable is what the encoder keeps of a table: its schema JSON.
type dbzTable struct {
	envelope []byte // the value's schema part
	key      []byte // the key's schema part (nil without a key)
	fields   []dbzField
}

func newDebeziumEncoder(o DebeziumOptions, pipeline string) debeziumEncoder {
	if o.TopicPrefix == "" {
		o.TopicPrefix = pipeline
	}
	if o.DecimalMode == "" {
		o.DecimalMode = "precise"
	}
	if o.BigintUnsignedMode == "" {
		o.BigintUnsignedMode = "long"
	}
	return debeziumEncoder{opt: o, mu: &sync.Mutex{}, schema: map[*binlog.Table]*dbzTable{}}
}

func (debeziumEncoder) maxRun() int { return 1 }

// table returns the table's schema parts, built once per table definition
// (a *binlog.Table never changes; a DDL gives a new one).
func (e debeziumEncoder) table(tb *binlog.Table) *dbzTable {
	e.mu.Lock()
	defer e.mu.Unlock()
	if d, ok := e.schema[tb]; ok {
		return d
	}
	if len(e.schema) > 4096 {
		clear(e.schema)
	}
	d := &dbzTable{fields: make([]dbzField, len(tb.Columns))}
	for i := range tb.Columns {
		d.fields[i] = e.field(&tb.Columns[i])
	}
	name := e.opt.TopicPrefix + "." + tb.Schema + "." + tb.Name
	row := func(optional bool, suffix string, cols []int) []byte {
		b := []byte(`{"type":"struct","fields":[`)
		for n, i := range cols {
			if n > 0 {
				b = append(b, ',')
			}
			b = d.fields[i].appendSchema(b, tb.Columns[i].Name)
		}
		b = fmt.Appendf(b, `],"optional":%t,"name":`, optional)
		return appendJSONString(b, name+suffix)
	}
	all := make([]int, len(tb.Columns))
	for i := range all {
		all[i] = i
	}
	value := row(true, ".Value", all)
	env := []byte(`{"type":"struct","fields":[`)
	env = append(env, value...)
	env = append(env, `,"field":"before"},`...)
	env = append(env, value...)
	env = append(env, `,"field":"after"},`...)
	env = append(env, dbzSourceSchema...)
	env = append(env, `,"field":"source"},`...)
	env = append(env, dbzBlockSchema...)
	env = append(env, `,{"type":"string","optional":false,"field":"op"},{"type":"int64","optional":true,"field":"ts_ms"},{"type":"int64","optional":true,"field":"ts_us"},{"type":"int64","optional":true,"field":"ts_ns"}],"optional":false,"name":`...)
	env = appendJSONString(env, name+".Envelope")
	d.envelope = append(env, `,"version":2}`...)
	if len(tb.PK) > 0 {
		d.key = append(row(false, ".Key", tb.PK), '}')
	}
	return d
}

// dbzSourceSchema is io.debezium.connector.mysql.Source as JsonConverter
// writes it (SchemaFactory.sourceInfoSchemaBuilder, then
// BinlogSourceInfoStructMaker), without the closing brace.
const dbzSourceSchema = `{"type":"struct","fields":[` +
	`{"type":"string","optional":false,"field":"version"},` +
	`{"type":"string","optional":false,"field":"connector"},` +
	`{"type":"string","optional":false,"field":"name"},` +
	`{"type":"int64","optional":false,"field":"ts_ms"},` +
	`{"type":"string","optional":true,"name":"io.debezium.data.Enum","version":1,"parameters":{"allowed":"true,first,first_in_data_collection,last_in_data_collection,last,false,incremental"},"default":"false","field":"snapshot"},` +
	`{"type":"string","optional":false,"field":"db"},` +
	`{"type":"string","optional":true,"field":"sequence"},` +
	`{"type":"int64","optional":true,"field":"ts_us"},` +
	`{"type":"int64","optional":true,"field":"ts_ns"},` +
	`{"type":"string","optional":true,"field":"table"},` +
	`{"type":"int64","optional":false,"field":"server_id"},` +
	`{"type":"string","optional":true,"field":"gtid"},` +
	`{"type":"string","optional":false,"field":"file"},` +
	`{"type":"int64","optional":false,"field":"pos"},` +
	`{"type":"int32","optional":false,"field":"row"},` +
	`{"type":"int64","optional":true,"field":"thread"},` +
	`{"type":"string","optional":true,"field":"query"}` +
	`],"optional":false,"name":"io.debezium.connector.mysql.Source","version":1`

// dbzBlockSchema is the transaction block (SchemaFactory.
// transactionBlockSchema).
const dbzBlockSchema = `{"type":"struct","fields":[{"type":"string","optional":false,"field":"id"},{"type":"int64","optional":false,"field":"total_order"},{"type":"int64","optional":false,"field":"data_collection_order"}],"optional":true,"name":"event.block","version":1,"field":"transaction"}`

// dbzField is how one column is typed and written.
type dbzField struct {
	typ      string // Kafka Connect type: int16, int32, int64, float32, float64, boolean, string, bytes, struct
	name     string // logical name, if any
	params   [][2]string
	doc      string
	fields   string // struct fields' schemas (geometry)
	optional bool
	kind     dbzKind
	fsp      int
}

type dbzKind uint8

const (
	dbzPlain dbzKind = iota
	dbzDate
	dbzTime
	dbzTimestampMs
	dbzTimestampUs
	dbzZoned
	dbzBool
	dbzBits
	dbzDecimalPrecise
	dbzDecimalString
	dbzDecimalDouble
	dbzUnsignedLong
	dbzUnsignedPrecise
	dbzEnum
	dbzSet
	dbzJSON
	dbzGeometry
	dbzPoint
	dbzBinary
	dbzFloat32
	dbzFloat64
	dbzVector
)

func (f dbzField) appendSchema(dst []byte, field string) []byte {
	dst = append(dst, `{"type":"`...)
	dst = append(dst, f.typ...)
	dst = append(dst, '"')
	if f.fields != "" {
		dst = append(dst, `,"fields":[`...)
		dst = append(dst, f.fields...)
		dst = append(dst, ']')
	}
	if f.kind == dbzVector {
		dst = append(dst, `,"items":{"type":"float","optional":false}`...)
	}
	dst = fmt.Appendf(dst, `,"optional":%t`, f.optional)
	if f.name != "" {
		dst = append(dst, `,"name":`...)
		dst = appendJSONString(dst, f.name)
		dst = append(dst, `,"version":1`...)
	}
	if f.doc != "" {
		dst = append(dst, `,"doc":`...)
		dst = appendJSONString(dst, f.doc)
	}
	if len(f.params) > 0 {
		dst = append(dst, `,"parameters":{`...)
		for i, p := range f.params {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONString(dst, p[0])
			dst = append(dst, ':')
			dst = appendJSONString(dst, p[1])
		}
		dst = append(dst, '}')
	}
	dst = append(dst, `,"field":`...)
	dst = appendJSONString(dst, field)
	return append(dst, '}')
}

// precisionScale reads "decimal(10,2)" or "bit(5)".
func precisionScale(sqlType string) (int, int, bool) {
	open := strings.IndexByte(sqlType, '(')
	end := strings.IndexByte(sqlType, ')')
	if open < 0 || end < open {
		return 0, 0, false
	}
	a, b, _ := strings.Cut(sqlType[open+1:end], ",")
	p, err := strconv.Atoi(strings.TrimSpace(a))
	if err != nil {
		return 0, 0, false
	}
	s, _ := strconv.Atoi(strings.TrimSpace(b))
	return p, s, true
}

// baseType is the column type's first word, lower case: "int",
// "decimal", "point".
func baseType(c *binlog.Column) string {
	t := strings.ToLower(c.SQLType)
	if i := strings.IndexAny(t, "( "); i >= 0 {
		t = t[:i]
	}
	if t == "" {
		t = binlog.TypeName(c.Type)
	}
	return t
}

// field types a column as BinlogValueConverters.schemaBuilder and
// JdbcValueConverters.schemaBuilder do for the MySQL connector (the JDBC
// types its DDL parser gives: MySqlAntlrDdlParser.initDataTypes).
func (e debeziumEncoder) field(c *binlog.Column) dbzField {
	f := dbzField{optional: c.Nullable, fsp: c.FSP}
	switch c.Type {
	case mysql.MYSQL_TYPE_TINY:
		f.typ = "int16"
	case mysql.MYSQL_TYPE_SHORT:
		f.typ = "int16"
		if c.Unsigned {
			f.typ = "int32"
		}
	case mysql.MYSQL_TYPE_INT24:
		f.typ = "int32"
	case mysql.MYSQL_TYPE_LONG:
		f.typ = "int32"
		if c.Unsigned {
			f.typ = "int64"
		}
	case mysql.MYSQL_TYPE_LONGLONG:
		f.typ = "int64"
		if c.Unsigned {
			f.kind = dbzUnsignedLong
			if e.opt.BigintUnsignedMode == "precise" {
				f.typ, f.name, f.kind = "bytes", "org.apache.kafka.connect.data.Decimal", dbzUnsignedPrecise
				f.params = [][2]string{{"scale", "0"}, {"connect.decimal.precision", "20"}}
			}
		}
	case mysql.MYSQL_TYPE_FLOAT:
		f.typ, f.kind = "float32", dbzFloat32
	case mysql.MYSQL_TYPE_DOUBLE:
		f.typ, f.kind = "float64", dbzFloat64
	case mysql.MYSQL_TYPE_NEWDECIMAL, mysql.MYSQL_TYPE_DECIMAL:
		switch e.opt.DecimalMode {
		case "string":
			f.typ, f.kind = "string", dbzDecimalString
		case "double":
			f.typ, f.kind = "float64", dbzDecimalDouble
		default:
			p, s, _ := precisionScale(c.SQLType)
			f.typ, f.name, f.kind = "bytes", "org.apache.kafka.connect.data.Decimal", dbzDecimalPrecise
			f.params = [][2]string{{"scale", strconv.Itoa(s)}, {"connect.decimal.precision", strconv.Itoa(p)}}
		}
	case mysql.MYSQL_TYPE_DATE, mysql.MYSQL_TYPE_NEWDATE:
		f.typ, f.name, f.kind = "int32", "io.debezium.time.Date", dbzDate
	case mysql.MYSQL_TYPE_TIME, mysql.MYSQL_TYPE_TIME2:
		f.typ, f.name, f.kind = "int64", "io.debezium.time.MicroTime", dbzTime
	case mysql.MYSQL_TYPE_DATETIME, mysql.MYSQL_TYPE_DATETIME2:
		f.typ, f.name, f.kind = "int64", "io.debezium.time.Timestamp", dbzTimestampMs
		if c.FSP > 3 {
			f.name, f.kind = "io.debezium.time.MicroTimestamp", dbzTimestampUs
		}
	case mysql.MYSQL_TYPE_TIMESTAMP, mysql.MYSQL_TYPE_TIMESTAMP2:
		f.typ, f.name, f.kind = "string", "io.debezium.time.ZonedTimestamp", dbzZoned
	case mysql.MYSQL_TYPE_YEAR:
		f.typ, f.name = "int32", "io.debezium.time.Year"
	case mysql.MYSQL_TYPE_BIT:
		n, _, ok := precisionScale(c.SQLType)
		if !ok {
			n = 1
		}
		if n == 1 {
			f.typ, f.kind = "boolean", dbzBool
		} else {
			f.typ, f.name, f.kind = "bytes", "io.debezium.data.Bits", dbzBits
			f.params = [][2]string{{"length", strconv.Itoa(n)}}
		}
	case mysql.MYSQL_TYPE_ENUM:
		f.typ, f.name, f.kind = "string", "io.debezium.data.Enum", dbzEnum
		f.params = [][2]string{{"allowed", strings.Join(c.Elems, ",")}}
	case mysql.MYSQL_TYPE_SET:
		f.typ, f.name, f.kind = "string", "io.debezium.data.EnumSet", dbzSet
		f.params = [][2]string{{"allowed", strings.Join(c.Elems, ",")}}
	case mysql.MYSQL_TYPE_JSON:
		f.typ, f.name, f.kind = "string", "io.debezium.data.Json", dbzJSON
	case mysql.MYSQL_TYPE_GEOMETRY:
		if baseType(c) == "point" {
			f.typ, f.name, f.doc, f.kind = "struct", "io.debezium.data.geometry.Point", "Geometry (POINT)", dbzPoint
			f.fields = `{"type":"double","optional":false,"field":"x"},{"type":"double","optional":false,"field":"y"},{"type":"bytes","optional":true,"field":"wkb"},{"type":"int32","optional":true,"field":"srid"}`
		} else {
			f.typ, f.name, f.doc, f.kind = "struct", "io.debezium.data.geometry.Geometry", "Geometry", dbzGeometry
			f.fields = `{"type":"bytes","optional":false,"field":"wkb"},{"type":"int32","optional":true,"field":"srid"}`
		}
	default:
		switch {
		case c.Binary || c.Charset == "binary":
			f.typ, f.kind = "bytes", dbzBinary
		case baseType(c) == "vector":
			f.typ, f.name, f.kind = "array", "io.debezium.data.FloatVector", dbzVector
		default:
			f.typ = "string" // CHAR, VARCHAR, TEXT, MariaDB's JSON (a LONGTEXT)
		}
	}
	// Kafka Connect's float32/float64 are "float"/"double" in JSON schemas.
	switch f.typ {
	case "float32":
		f.typ = "float"
	case "float64":
		f.typ = "double"
	}
	return f
}

// appendValue writes one value as JsonConverter writes what the
// converters give it. Every value goes through here, so new value types
// need only this function.
func (e debeziumEncoder) appendValue(dst []byte, f *dbzField, v binlog.Value) []byte {
	if v == nil {
		return append(dst, "null"...)
	}
	s, isString := v.(string)
	zero := func() []byte {
		// A zero date is null in an optional column and the epoch in a
		// required one (JdbcValueConverters' fallback).
		if f.optional {
			return append(dst, "null"...)
		}
		if f.kind == dbzZoned {
			return append(dst, `"1970-01-01T00:00:00Z"`...)
		}
		return append(dst, '0')
	}
	switch f.kind {
	case dbzDate:
		t, err := time.Parse("2006-01-02", s)
		if !isString || err != nil {
			return zero()
		}
		return strconv.AppendInt(dst, floorDiv(t.Unix(), 86400), 10)
	case dbzTimestampMs, dbzTimestampUs:
		t, err := time.Parse("2006-01-02 15:04:05.999999", s)
		if !isString || err != nil {
			return zero()
		}
		if f.kind == dbzTimestampUs {
			return strconv.AppendInt(dst, t.UnixMicro(), 10)
		}
		return strconv.AppendInt(dst, t.UnixMilli(), 10)
	case dbzZoned:
		t, err := time.Parse("2006-01-02 15:04:05.999999", s)
		if !isString || err != nil {
			return zero()
		}
		// ZonedTimestamp.toIsoString with the column's fsp as the exact
		// fraction width; ISO_OFFSET_DATE_TIME (no zero fraction) for
		// TIMESTAMP(0).
		layout := "2006-01-02T15:04:05Z07:00"
		if f.fsp > 0 {
			layout = "2006-01-02T15:04:05." + strings.Repeat("0", f.fsp) + "Z07:00"
		}
		return appendJSONString(dst, t.UTC().Format(layout))
	case dbzTime:
		if us, ok := timeMicros(s); isString && ok {
			return strconv.AppendInt(dst, us, 10)
		}
	case dbzBool:
		if u, ok := v.(uint64); ok {
			return strconv.AppendBool(dst, u != 0)
		}
	case dbzBits:
		if u, ok := v.(uint64); ok {
			n, _ := strconv.Atoi(f.params[0][1])
			b := make([]byte, max((n+7)/8, 1))
			for i := range b { // little-endian, as BinlogValueConverters gives Bits
				b[i] = byte(u >> (8 * i))
			}
			return appendBase64(dst, b)
		}
	case dbzDecimalPrecise:
		if d, ok := v.(binlog.Decimal); ok {
			return appendBase64(dst, unscaledBytes(string(d)))
		}
	case dbzDecimalString:
		if d, ok := v.(binlog.Decimal); ok {
			return appendJSONString(dst, string(d))
		}
	case dbzDecimalDouble:
		if d, ok := v.(binlog.Decimal); ok {
			f, _ := strconv.ParseFloat(string(d), 64)
			return appendJavaFloat(dst, f, 64)
		}
	case dbzUnsignedLong:
		if u, ok := v.(uint64); ok {
			return strconv.AppendInt(dst, int64(u), 10) // a Java long: wraps above 2^63-1
		}
	case dbzUnsignedPrecise:
		if u, ok := v.(uint64); ok {
			return appendBase64(dst, unscaledBytes(strconv.FormatUint(u, 10)))
		}
	case dbzEnum, dbzSet:
		return appendJSONString(dst, canalString(v))
	case dbzJSON:
		if j, ok := v.(binlog.JSON); ok {
			return appendJSONString(dst, string(compactJSON(j)))
		}
	case dbzFloat32:
		if x, ok := v.(float32); ok {
			return appendJavaFloat(dst, float64(x), 32)
		}
	case dbzFloat64:
		if x, ok := v.(float64); ok {
			return appendJavaFloat(dst, x, 64)
		}
	case dbzGeometry, dbzPoint:
		if b, ok := v.([]byte); ok && len(b) >= 4 {
			srid := binary.LittleEndian.Uint32(b)
			wkb := b[4:]
			if f.kind == dbzPoint && len(wkb) >= 21 {
				x := math.Float64frombits(binary.LittleEndian.Uint64(wkb[5:]))
				y := math.Float64frombits(binary.LittleEndian.Uint64(wkb[13:]))
				dst = append(dst, `{"x":`...)
				dst = appendJavaFloat(dst, x, 64)
				dst = append(dst, `,"y":`...)
				dst = appendJavaFloat(dst, y, 64)
				dst = append(dst, `,"wkb":`...)
			} else {
				dst = append(dst, `{"wkb":`...)
			}
			dst = appendBase64(dst, wkb)
			return fmt.Appendf(dst, `,"srid":%d}`, srid)
		}
	case dbzVector:
		if vec, ok := v.([]float32); ok {
			dst = append(dst, '[')
			for i, x := range vec {
				if i > 0 {
					dst = append(dst, ',')
				}
				dst = appendJavaFloat(dst, float64(x), 32)
			}
			return append(dst, ']')
		}
	}
	switch x := v.(type) {
	case []byte:
		return appendBase64(dst, x)
	case binlog.JSON:
		return appendJSONString(dst, string(x)) // MariaDB's JSON: the text as stored
	}
	return binlog.AppendValueJSON(dst, v)
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// appendBase64 writes bytes as JsonConverter does: a base64 string. Extra
// bytes after b are appended to it first (a convenience for callers that
// build the bytes in place).
func appendBase64(dst []byte, b []byte, more ...byte) []byte {
	b = append(b, more...)
	dst = append(dst, '"')
	dst = base64.StdEncoding.AppendEncode(dst, b)
	return append(dst, '"')
}

// unscaledBytes is a decimal's unscaled value as Java's
// BigInteger.toByteArray gives it (Kafka Connect's Decimal): big-endian
// two's complement, in as few bytes as hold the sign.
func unscaledBytes(d string) []byte {
	neg := strings.HasPrefix(d, "-")
	digits := strings.Replace(strings.TrimLeft(d, "-+"), ".", "", 1)
	n, ok := new(big.Int).SetString(digits, 10)
	if !ok {
		return nil
	}
	if neg {
		n.Neg(n)
	}
	if n.Sign() >= 0 {
		b := n.Bytes()
		if len(b) == 0 || b[0]&0x80 != 0 {
			b = append([]byte{0}, b...)
		}
		return b
	}
	// Two's complement of a negative number: 2^(8k) + n for the smallest k
	// that keeps the sign bit set.
	k := (n.BitLen() + 8) / 8
	m := new(big.Int).Lsh(big.NewInt(1), uint(8*k))
	m.Add(m, n)
	b := m.Bytes()
	for len(b) < k {
		b = append([]byte{0xff}, b...)
	}
	for len(b) > 1 && b[0] == 0xff && b[1]&0x80 != 0 {
		b = b[1:]
	}
	return b
}

// compactJSON removes the whitespace between JSON tokens, as
// mysql-binlog-connector's JsonStringFormatter prints MySQL's JSON.
func compactJSON(j []byte) []byte { return reprintJSON(j, ",", ":", true) }

// appendRow writes a row image as the Value struct, every column of the
// table (a column the image does not carry is null).
func (e debeziumEncoder) appendRow(dst []byte, tb *binlog.Table, d *dbzTable, img []binlog.Value) []byte {
	if img == nil {
		return append(dst, "null"...)
	}
	return e.appendStruct(dst, tb, d, img, nil)
}

// appendStruct writes {"column":value,...} for the columns cols of img, in
// that order (every column when cols is nil); a column the image does not
// carry is null.
func (e debeziumEncoder) appendStruct(dst []byte, tb *binlog.Table, d *dbzTable, img []binlog.Value, cols []int) []byte {
	n := len(tb.Columns)
	if cols != nil {
		n = len(cols)
	}
	dst = append(dst, '{')
	for k := range n {
		i := k
		if cols != nil {
			i = cols[k]
		}
		if k > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONString(dst, tb.Columns[i].Name)
		dst = append(dst, ':')
		if i >= len(img) || binlog.IsAbsent(img[i]) {
			dst = append(dst, "null"...)
			continue
		}
		dst = e.appendValue(dst, &d.fields[i], img[i])
	}
	return append(dst, '}')
}

// wrap writes {"schema":…,"payload": and returns the closing to append,
// or nothing without schemas.
func (e debeziumEncoder) wrap(dst, schema []byte) ([]byte, string) {
	if !e.opt.Schemas {
		return dst, ""
	}
	dst = append(dst, `{"schema":`...)
	dst = append(dst, schema...)
	return append(dst, `,"payload":`...), "}"
}

// appendTs writes ts_ms, ts_us and ts_ns of an instant.
func appendTs(dst []byte, t time.Time) []byte {
	return fmt.Appendf(dst, `"ts_ms":%d,"ts_us":%d,"ts_ns":%d`, t.UnixMilli(), t.UnixMicro(), t.UnixNano())
}

// source writes the source block (BinlogSourceInfoStructMaker.struct).
// query is the statement that made the change (include_query), or "".
// snap is source.snapshot: "" (false) outside a snapshot, else "true"
// or "last".
func (e debeziumEncoder) source(dst []byte, t *binlog.Txn, db, table string, row int, query, snap string) []byte {
	dst = append(dst, `{"version":"`+debeziumVersion+`","connector":"mysql","name":`...)
	dst = appendJSONString(dst, e.opt.TopicPrefix)
	if snap == "" {
		snap = "false"
	}
	dst = fmt.Appendf(dst, `,"ts_ms":%d,"snapshot":"%s","db":`, t.Timestamp.UnixMilli(), snap)
	dst = appendJSONString(dst, db)
	dst = fmt.Appendf(dst, `,"sequence":null,"ts_us":%d,"ts_ns":%d,"table":`, t.Timestamp.UnixMicro(), t.Timestamp.UnixNano())
	if table == "" {
		dst = append(dst, "null"...)
	} else {
		dst = appendJSONString(dst, table)
	}
	dst = fmt.Appendf(dst, `,"server_id":%d,"gtid":`, t.ServerID)
	if t.GTID.IsZero() {
		dst = append(dst, "null"...)
	} else {
		dst = appendJSONString(dst, t.GTID.String())
	}
	dst = append(dst, `,"file":`...)
	pos := t.StartPos
	if pos.File == "" {
		pos = t.Pos
	}
	dst = appendJSONString(dst, pos.File)
	dst = fmt.Appendf(dst, `,"pos":%d,"row":%d,"thread":null,"query":`, pos.Pos, row)
	if query == "" {
		return append(dst, "null}"...)
	}
	return append(appendJSONString(dst, query), '}')
}

// debeziumOp is Envelope.Operation's code.
func debeziumOp(op binlog.Op) string {
	switch op {
	case binlog.Insert:
		return "c"
	case binlog.Update:
		return "u"
	}
	return "d"
}

// unit writes one change event (Envelope.create/update/delete).
func (e debeziumEncoder) unit(dst []byte, t *binlog.Txn, u unit, m meta) []byte {
	c := u.changes[0]
	tb := c.Table
	d := e.table(tb)
	dst, end := e.wrap(dst, d.envelope)
	dst = append(dst, `{"before":`...)
	dst = e.appendRow(dst, tb, d, c.Before)
	dst = append(dst, `,"after":`...)
	dst = e.appendRow(dst, tb, d, c.After)
	dst = append(dst, `,"source":`...)
	dst = e.source(dst, t, tb.Schema, tb.Name, u.row, t.QueryOf(c), m.snapshot)
	dst = append(dst, `,"transaction":`...)
	if e.opt.TransactionMetadata && m.snapshot == "" {
		dst = append(dst, `{"id":`...)
		dst = appendJSONString(dst, t.ID())
		dst = fmt.Appendf(dst, `,"total_order":%d,"data_collection_order":%d}`, u.row+1, u.tableRow+1)
	} else {
		dst = append(dst, "null"...)
	}
	op := debeziumOp(c.Op)
	if m.snapshot != "" {
		op = "r" // a read event: a row of the initial snapshot
	}
	dst = fmt.Appendf(dst, `,"op":"%s",`, op)
	dst = appendTs(dst, m.now)
	return append(append(dst, '}'), end...)
}

// key writes the record key: the key columns as <prefix>.<db>.<table>.Key,
// or nil for a table without a key (Debezium's key is null then).
func (e debeziumEncoder) key(t *binlog.Txn, c *binlog.Change) []byte {
	tb := c.Table
	d := e.table(tb)
	if d.key == nil {
		return nil
	}
	dst, end := e.wrap(nil, d.key)
	dst = e.appendStruct(dst, tb, d, c.Image(), tb.PK)
	return append(dst, end...)
}

// Transaction metadata schemas (SchemaFactory.transactionKeySchema,
// transactionValueSchema).
const (
	dbzTxnKeySchema   = `{"type":"struct","fields":[{"type":"string","optional":false,"field":"id"}],"optional":false,"name":"io.debezium.connector.common.TransactionMetadataKey","version":1}`
	dbzTxnValueSchema = `{"type":"struct","fields":[{"type":"string","optional":false,"field":"status"},{"type":"string","optional":false,"field":"id"},{"type":"int64","optional":true,"field":"event_count"},{"type":"array","items":{"type":"struct","fields":[{"type":"string","optional":false,"field":"data_collection"},{"type":"int64","optional":false,"field":"event_count"}],"optional":true,"name":"event.collection","version":1},"optional":true,"field":"data_collections"},{"type":"int64","optional":false,"field":"ts_ms"}],"optional":false,"name":"io.debezium.connector.common.TransactionMetadataValue","version":1}`
)

// txnKey is a transaction metadata event's key.
func (e debeziumEncoder) txnKey(t *binlog.Txn) []byte {
	dst, end := e.wrap(nil, []byte(dbzTxnKeySchema))
	dst = append(dst, `{"id":`...)
	dst = appendJSONString(dst, t.ID())
	return append(append(dst, '}'), end...)
}

// collectionCount is one table's events in a transaction.
type collectionCount struct {
	name  string
	count int
}

// txnMeta writes a BEGIN (counts nil) or END event
// (AbstractTransactionStructMaker.buildBegin/EndTransactionValue).
// data_collections lists the tables in the order of their first event.
func (e debeziumEncoder) txnMeta(t *binlog.Txn, end bool, total int, counts []collectionCount) []byte {
	dst, closing := e.wrap(nil, []byte(dbzTxnValueSchema))
	status := "BEGIN"
	if end {
		status = "END"
	}
	dst = fmt.Appendf(dst, `{"status":"%s","id":`, status)
	dst = appendJSONString(dst, t.ID())
	if !end {
		dst = append(dst, `,"event_count":null,"data_collections":null`...)
	} else {
		dst = fmt.Appendf(dst, `,"event_count":%d,"data_collections":[`, total)
		for i, c := range counts {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"data_collection":`...)
			dst = appendJSONString(dst, c.name)
			dst = fmt.Appendf(dst, `,"event_count":%d}`, c.count)
		}
		dst = append(dst, ']')
	}
	dst = fmt.Appendf(dst, `,"ts_ms":%d}`, t.Timestamp.UnixMilli())
	return append(dst, closing...)
}

// Schema change event schemas (SchemaFactory.schemaHistoryConnector*,
// schemaHistoryChangeSchema, schemaHistoryTableSchema,
// schemaHistoryColumnSchema).
const (
	dbzDDLKeySchema = `{"type":"struct","fields":[{"type":"string","optional":false,"field":"databaseName"}],"optional":false,"name":"io.debezium.connector.mysql.SchemaChangeKey","version":1}`
	dbzColumnSchema = `{"type":"struct","fields":[` +
		`{"type":"string","optional":false,"field":"name"},` +
		`{"type":"int32","optional":false,"field":"jdbcType"},` +
		`{"type":"int32","optional":true,"field":"nativeType"},` +
		`{"type":"string","optional":false,"field":"typeName"},` +
		`{"type":"string","optional":true,"field":"typeExpression"},` +
		`{"type":"string","optional":true,"field":"charsetName"},` +
		`{"type":"int32","optional":true,"field":"length"},` +
		`{"type":"int32","optional":true,"field":"scale"},` +
		`{"type":"int32","optional":false,"field":"position"},` +
		`{"type":"boolean","optional":true,"field":"optional"},` +
		`{"type":"boolean","optional":true,"field":"autoIncremented"},` +
		`{"type":"boolean","optional":true,"field":"generated"},` +
		`{"type":"string","optional":true,"field":"comment"},` +
		`{"type":"string","optional":true,"field":"defaultValueExpression"},` +
		`{"type":"array","items":{"type":"string","optional":false},"optional":true,"field":"enumValues"}` +
		`],"optional":false,"name":"io.debezium.connector.schema.Column","version":1}`
	dbzTableSchema = `{"type":"struct","fields":[` +
		`{"type":"string","optional":true,"field":"defaultCharsetName"},` +
		`{"type":"array","items":{"type":"string","optional":false},"optional":true,"field":"primaryKeyColumnNames"},` +
		`{"type":"array","items":` + dbzColumnSchema + `,"optional":false,"field":"columns"},` +
		`{"type":"string","optional":true,"field":"comment"}` +
		`],"optional":true,"name":"io.debezium.connector.schema.Table","version":1,"field":"table"}`
	dbzDDLValueSchemaHead = `{"type":"struct","fields":[`
	dbzDDLValueSchemaTail = `,"field":"source"},` +
		`{"type":"int64","optional":false,"field":"ts_ms"},` +
		`{"type":"string","optional":true,"field":"databaseName"},` +
		`{"type":"string","optional":true,"field":"schemaName"},` +
		`{"type":"string","optional":true,"field":"ddl"},` +
		`{"type":"array","items":{"type":"struct","fields":[` +
		`{"type":"string","optional":false,"field":"type"},` +
		`{"type":"string","optional":false,"field":"id"},` + dbzTableSchema +
		`],"optional":false,"name":"io.debezium.connector.schema.Change","version":1},"optional":false,"field":"tableChanges"}` +
		`],"optional":false,"name":"io.debezium.connector.mysql.SchemaChangeValue","version":1}`
)

// ddlKey is a schema change event's key: the database.
func (e debeziumEncoder) ddlKey(t *binlog.Txn) []byte {
	db, _ := ddlTable(t)
	dst, end := e.wrap(nil, []byte(dbzDDLKeySchema))
	dst = append(dst, `{"databaseName":`...)
	dst = appendJSONString(dst, db)
	return append(append(dst, '}'), end...)
}

// ddl writes a schema change event: the statement and, from the schema
// tracker, the definition of the table it created or changed
// (ConnectTableChangeSerializer).
func (e debeziumEncoder) ddl(dst []byte, t *binlog.Txn, m meta) []byte {
	db, table := ddlTable(t)
	var sch []byte
	if e.opt.Schemas {
		sch = append([]byte(dbzDDLValueSchemaHead), dbzSourceSchema...)
		sch = append(sch, dbzDDLValueSchemaTail...)
	}
	dst, end := e.wrap(dst, sch)
	dst = append(dst, `{"source":`...)
	dst = e.source(dst, t, db, table, 0, "", m.snapshot)
	dst = append(dst, `,"ts_ms":`...)
	dst = strconv.AppendInt(dst, m.now.UnixMilli(), 10)
	dst = append(dst, `,"databaseName":`...)
	dst = appendJSONString(dst, db)
	dst = append(dst, `,"schemaName":null,"ddl":`...)
	dst = appendJSONString(dst, t.DDL.SQL)
	dst = append(dst, `,"tableChanges":[`...)
	dst = e.tableChange(dst, t, db, table)
	return append(append(dst, "]}"...), end...)
}

// tableChange writes the DDL's table change: CREATE, ALTER (also for a
// rename, under the new name) or DROP, with the table as the tracker has
// it after the statement. Statements that change no table have none.
func (e debeziumEncoder) tableChange(dst []byte, t *binlog.Txn, db, table string) []byte {
	if table == "" {
		return dst
	}
	words := strings.Fields(strings.ToUpper(t.DDL.SQL))
	if len(words) < 2 {
		return dst
	}
	var typ string
	switch words[0] {
	case "CREATE":
		typ = "CREATE"
	case "ALTER", "RENAME":
		typ = "ALTER"
	case "DROP":
		typ = "DROP"
	default:
		return dst
	}
	if strings.Contains(strings.Join(words[:min(len(words), 4)], " "), "INDEX") {
		typ = "ALTER" // CREATE/DROP INDEX changes the table
	}
	var def *schema.Table
	if t.Catalog != nil {
		def = t.Catalog.Table(db, table)
		if def == nil && typ == "ALTER" {
			// ALTER TABLE ... RENAME TO: the table under its new name.
			if nd, nt, ok := renamedTo(t.DDL.SQL, db); ok {
				db, table, def = nd, nt, t.Catalog.Table(nd, nt)
			}
		}
	}
	if def == nil && typ != "DROP" {
		return dst // the tracker does not have the table: nothing to describe
	}
	dst = fmt.Appendf(dst, `{"type":"%s","id":`, typ)
	dst = appendJSONString(dst, `"`+db+`"."`+table+`"`)
	dst = append(dst, `,"table":`...)
	if def == nil {
		return append(dst, "null}"...)
	}
	dst = append(dst, `{"defaultCharsetName":`...)
	dst = appendNullString(dst, def.Charset)
	dst = append(dst, `,"primaryKeyColumnNames":[`...)
	for _, k := range def.Keys {
		if k.Primary {
			for i, c := range k.Columns {
				if i > 0 {
					dst = append(dst, ',')
				}
				dst = appendJSONString(dst, c)
			}
		}
	}
	dst = append(dst, `],"columns":[`...)
	for i, c := range def.Columns {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = dbzColumn(dst, c, i+1)
	}
	return append(dst, `],"comment":null}}`...)
}

// renamedTo finds the new name in ALTER TABLE ... RENAME [TO|AS] x.
func renamedTo(sql, db string) (string, string, bool) {
	words := strings.Fields(sql)
	for i := 0; i+1 < len(words); i++ {
		if strings.EqualFold(words[i], "RENAME") {
			n := words[i+1]
			if (strings.EqualFold(n, "TO") || strings.EqualFold(n, "AS")) && i+2 < len(words) {
				n = words[i+2]
			}
			n = strings.TrimRight(n, ";")
			name := strings.ReplaceAll(n, "`", "")
			if d, t, ok := strings.Cut(name, "."); ok {
				return d, t, true
			}
			return db, name, true
		}
	}
	return "", "", false
}

func appendNullString(dst []byte, s string) []byte {
	if s == "" {
		return append(dst, "null"...)
	}
	return appendJSONString(dst, s)
}

// dbzJDBCTypes are the JDBC types Debezium's MySQL DDL parser gives the
// column types (MySqlAntlrDdlParser.initDataTypes).
var dbzJDBCTypes = map[string]int{
	"char": 1, "varchar": 12, "tinytext": 12, "text": 12, "mediumtext": 12, "longtext": 12,
	"tinyint": 5, "smallint": 5, "mediumint": 4, "int": 4, "integer": 4, "bigint": -5,
	"real": 7, "double": 8, "float": 6, "decimal": 3, "numeric": 2, "bit": -7,
	"time": 92, "timestamp": 2014, "datetime": 93, "date": 91, "year": 4,
	"binary": -2, "varbinary": -3, "blob": 2004, "tinyblob": 2004, "mediumblob": 2004, "longblob": 2004,
	"bool": 16, "boolean": 16, "enum": 1, "set": 1, "json": 1111,
	"geometry": 1111, "point": 1111, "linestring": 1111, "polygon": 1111, "multipoint": 1111,
	"multilinestring": 1111, "multipolygon": 1111, "geometrycollection": 1111, "vector": 1111,
}

// dbzColumn writes one column of a table change.
func dbzColumn(dst []byte, c schema.Column, pos int) []byte {
	base := strings.ToLower(c.Type)
	typeName := strings.ToUpper(base)
	if c.Unsigned {
		typeName += " UNSIGNED"
	}
	jdbc, ok := dbzJDBCTypes[base]
	if !ok {
		jdbc = 1111
	}
	dst = append(dst, `{"name":`...)
	dst = appendJSONString(dst, c.Name)
	dst = fmt.Appendf(dst, `,"jdbcType":%d,"nativeType":null,"typeName":`, jdbc)
	dst = appendJSONString(dst, typeName)
	dst = append(dst, `,"typeExpression":`...)
	dst = appendJSONString(dst, typeName)
	dst = append(dst, `,"charsetName":`...)
	if c.Charset == "binary" {
		dst = append(dst, "null"...)
	} else {
		dst = appendNullString(dst, c.Charset)
	}
	dst = append(dst, `,"length":`...)
	p, s, hasArgs := precisionScale(c.SQLType)
	if hasArgs && base != "enum" && base != "set" {
		dst = strconv.AppendInt(dst, int64(p), 10)
	} else {
		dst = append(dst, "null"...)
	}
	dst = append(dst, `,"scale":`...)
	if hasArgs && (base == "decimal" || base == "numeric" || base == "double" || base == "float") && strings.Contains(c.SQLType, ",") {
		dst = strconv.AppendInt(dst, int64(s), 10)
	} else {
		dst = append(dst, "null"...)
	}
	dst = fmt.Appendf(dst, `,"position":%d,"optional":%t,"autoIncremented":false,"generated":%t,"comment":null,"defaultValueExpression":null,"enumValues":`,
		pos, c.Nullable, c.Generated)
	if len(c.Elems) == 0 {
		return append(dst, "null}"...)
	}
	dst = append(dst, '[')
	for i, e := range c.Elems {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONString(dst, "'"+strings.ReplaceAll(e, "'", "''")+"'")
	}
	return append(dst, "]}"...)
}
