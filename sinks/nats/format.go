package nats

import (
	"encoding/base64"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/sluice-cdc/sluice/binlog"
	"github.com/sluice-cdc/sluice/binlog/schema"
)

// encoder turns transactions into message bodies in one wire format.
type encoder interface {
	// txnStart, txnChange and txnEnd write a whole transaction as one body
	// (mode: transaction), one change at a time so that a large
	// transaction is never held whole in memory.
	txnStart(dst []byte, t *binlog.Txn, m meta) []byte
	txnChange(dst []byte, t *binlog.Txn, c *binlog.Change, i int, m meta) []byte
	txnEnd(dst []byte, t *binlog.Txn, m meta) []byte
	// row is one change as a body of its own (mode: row); i counts from 0.
	row(dst []byte, t *binlog.Txn, c *binlog.Change, i int, m meta) []byte
	// ddl is a statement transaction.
	ddl(dst []byte, t *binlog.Txn, m meta) []byte
}

// meta is what a body knows beyond the transaction.
type meta struct {
	pipeline, source string
	now              time.Time // when the message is built (Canal's ts, Debezium's ts_ms)
	count            int       // changes in the transaction
}

func newEncoder(format string) encoder {
	switch format {
	case "canal":
		return rowArray{canalEncoder{}}
	case "debezium":
		return rowArray{debeziumEncoder{}}
	}
	return sluiceEncoder{}
}

// rowEncoder is a format built around one event per row change.
type rowEncoder interface {
	row(dst []byte, t *binlog.Txn, c *binlog.Change, i int, m meta) []byte
	ddl(dst []byte, t *binlog.Txn, m meta) []byte
}

// rowArray writes a row format's transaction body: a JSON array of its
// rows' events.
type rowArray struct{ rowEncoder }

func (rowArray) txnStart(dst []byte, _ *binlog.Txn, _ meta) []byte { return append(dst, '[') }

func (a rowArray) txnChange(dst []byte, t *binlog.Txn, c *binlog.Change, i int, m meta) []byte {
	if i > 0 {
		dst = append(dst, ',')
	}
	return a.row(dst, t, c, i, m)
}

func (rowArray) txnEnd(dst []byte, _ *binlog.Txn, _ meta) []byte { return append(dst, ']') }

// sluiceEncoder writes the `sluice dump` JSON: a transaction object, or in
// row mode the change object with the transaction's fields and its place
// in the transaction (seq counts from 1 to count).
type sluiceEncoder struct{}

func (sluiceEncoder) txnStart(dst []byte, t *binlog.Txn, _ meta) []byte {
	return append(binlog.AppendTxnHeader(dst, t), `,"changes":[`...)
}

func (sluiceEncoder) txnChange(dst []byte, _ *binlog.Txn, c *binlog.Change, i int, _ meta) []byte {
	if i > 0 {
		dst = append(dst, ',')
	}
	return binlog.AppendChangeJSON(dst, c)
}

func (sluiceEncoder) txnEnd(dst []byte, _ *binlog.Txn, _ meta) []byte { return append(dst, "]}"...) }

func (sluiceEncoder) row(dst []byte, t *binlog.Txn, c *binlog.Change, i int, m meta) []byte {
	dst = binlog.AppendTxnHeader(dst, t)
	dst = fmt.Appendf(dst, `,"seq":%d,"count":%d,`, i+1, m.count)
	ch := binlog.AppendChangeJSON(nil, c)
	return append(dst, ch[1:]...)
}

func (sluiceEncoder) ddl(dst []byte, t *binlog.Txn, _ meta) []byte {
	b, _ := binlog.AppendJSON(dst, t)
	return b
}

// canalEncoder writes Alibaba Canal's FlatMessage JSON, so that Canal MQ
// consumers only change their connection: values as strings, `old` holding
// the changed columns only, sqlType as java.sql.Types codes, mysqlType with
// the full column type. A transaction body is an array of FlatMessages, one
// per run of changes of one table and type (as Canal batches a row event).
type canalEncoder struct{}

func (canalEncoder) row(dst []byte, t *binlog.Txn, c *binlog.Change, _ int, m meta) []byte {
	tb := c.Table
	dst = fmt.Appendf(dst, `{"id":%d,"database":`, t.Pos.Pos)
	dst = appendJSONString(dst, tb.Schema)
	dst = append(dst, `,"table":`...)
	dst = appendJSONString(dst, tb.Name)
	dst = append(dst, `,"pkNames":`...)
	if len(tb.PK) == 0 {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, '[')
		for i, k := range tb.PK {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONString(dst, tb.Columns[k].Name)
		}
		dst = append(dst, ']')
	}
	dst = fmt.Appendf(dst, `,"isDdl":false,"type":"%s","es":%d,"ts":%d,"sql":"","sqlType":{`,
		strings.ToUpper(c.Op.String()), t.Timestamp.UnixMilli(), m.now.UnixMilli())
	img := c.Image()
	dst = canalColumns(dst, tb, img, func(dst []byte, col *binlog.Column) []byte { return fmt.Appendf(dst, "%d", javaSQLType(col)) })
	dst = append(dst, `},"mysqlType":{`...)
	dst = canalColumns(dst, tb, img, func(dst []byte, col *binlog.Column) []byte { return appendJSONString(dst, mysqlTypeName(col)) })
	dst = append(dst, `},"data":[`...)
	dst = canalRow(dst, tb, img, nil)
	dst = append(dst, `],"old":`...)
	if c.Op == binlog.Update {
		// Only the columns the update changed, as Canal does.
		dst = append(dst, '[')
		dst = canalRow(dst, tb, c.Before, c.After)
		dst = append(dst, ']')
	} else {
		dst = append(dst, "null"...)
	}
	dst = append(dst, `,"gtid":`...)
	dst = appendJSONString(dst, t.GTID.String())
	return append(dst, '}')
}

// canalRow writes a row as {"col":"value"}; with after set, only the
// columns whose value differs from after.
func canalRow(dst []byte, tb *binlog.Table, img, after []binlog.Value) []byte {
	dst = append(dst, '{')
	first := true
	for i, v := range img {
		if binlog.IsAbsent(v) || i >= len(tb.Columns) {
			continue
		}
		if after != nil && i < len(after) && canalString(v) == canalString(after[i]) && (v == nil) == (after[i] == nil) {
			continue
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = appendJSONString(dst, tb.Columns[i].Name)
		dst = append(dst, ':')
		if v == nil {
			dst = append(dst, "null"...)
			continue
		}
		dst = appendJSONString(dst, canalString(v))
	}
	return append(dst, '}')
}

// canalColumns appends "name":value for each column present in img, the
// value written by val.
func canalColumns(dst []byte, tb *binlog.Table, img []binlog.Value, val func([]byte, *binlog.Column) []byte) []byte {
	first := true
	for i := range tb.Columns {
		if binlog.IsAbsent(img[i]) {
			continue
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = appendJSONString(dst, tb.Columns[i].Name)
		dst = append(dst, ':')
		dst = val(dst, &tb.Columns[i])
	}
	return dst
}

// canalString is Canal's text form of a value. Binary strings become one
// character per byte (ISO-8859-1), as Canal and TiCDC encode them.
func canalString(v binlog.Value) string {
	switch x := v.(type) {
	case nil:
		return ""
	case int64:
		return strconv.FormatInt(x, 10)
	case uint64:
		return strconv.FormatUint(x, 10)
	case float32:
		return strconv.FormatFloat(float64(x), 'g', -1, 32)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case binlog.Decimal:
		return string(x)
	case string:
		return x
	case binlog.JSON:
		return string(x)
	case []byte:
		r := make([]rune, len(x))
		for i, b := range x {
			r[i] = rune(b)
		}
		return string(r)
	case binlog.RawText: // text invalid in its charset: bytes, as binary strings
		return canalString(x.Bytes)
	case []float32:
		return string(binlog.AppendValueJSON(nil, x))
	}
	return fmt.Sprint(v)
}

func (canalEncoder) ddl(dst []byte, t *binlog.Txn, m meta) []byte {
	db, table, _ := schema.TableOf(t.DDL.Schema, t.DDL.SQL)
	if db == "" {
		db = t.DDL.Schema
	}
	dst = fmt.Appendf(dst, `{"id":%d,"database":`, t.Pos.Pos)
	dst = appendJSONString(dst, db)
	dst = append(dst, `,"table":`...)
	dst = appendJSONString(dst, table)
	dst = fmt.Appendf(dst, `,"pkNames":null,"isDdl":true,"type":"%s","es":%d,"ts":%d,"sql":`, canalDDLType(t.DDL.SQL), t.Timestamp.UnixMilli(), m.now.UnixMilli())
	dst = appendJSONString(dst, t.DDL.SQL)
	dst = append(dst, `,"sqlType":null,"mysqlType":null,"data":null,"old":null,"gtid":`...)
	dst = appendJSONString(dst, t.GTID.String())
	return append(dst, '}')
}

// canalDDLType names a statement as Canal's EventType does.
func canalDDLType(sql string) string {
	f := strings.Fields(strings.ToUpper(sql))
	has := func(w string) bool {
		for _, x := range f[:min(len(f), 6)] {
			if x == w {
				return true
			}
		}
		return false
	}
	switch {
	case len(f) == 0:
		return "QUERY"
	case f[0] == "CREATE" && has("INDEX"):
		return "CINDEX"
	case f[0] == "DROP" && has("INDEX"):
		return "DINDEX"
	case f[0] == "CREATE" && has("TABLE"):
		return "CREATE"
	case f[0] == "ALTER" && has("TABLE"):
		return "ALTER"
	case f[0] == "DROP" && has("TABLE"):
		return "ERASE"
	case f[0] == "RENAME":
		return "RENAME"
	case f[0] == "TRUNCATE":
		return "TRUNCATE"
	}
	return "QUERY"
}

// javaSQLType is the java.sql.Types code Canal gives a column.
func javaSQLType(c *binlog.Column) int {
	switch c.Type {
	case mysql.MYSQL_TYPE_TINY:
		if c.Unsigned {
			return 5
		}
		return -6
	case mysql.MYSQL_TYPE_SHORT:
		if c.Unsigned {
			return 4
		}
		return 5
	case mysql.MYSQL_TYPE_INT24:
		return 4
	case mysql.MYSQL_TYPE_LONG:
		if c.Unsigned {
			return -5
		}
		return 4
	case mysql.MYSQL_TYPE_LONGLONG:
		if c.Unsigned {
			return 3
		}
		return -5
	case mysql.MYSQL_TYPE_FLOAT:
		return 7
	case mysql.MYSQL_TYPE_DOUBLE:
		return 8
	case mysql.MYSQL_TYPE_NEWDECIMAL, mysql.MYSQL_TYPE_DECIMAL:
		return 3
	case mysql.MYSQL_TYPE_DATE, mysql.MYSQL_TYPE_NEWDATE:
		return 91
	case mysql.MYSQL_TYPE_TIME, mysql.MYSQL_TYPE_TIME2:
		return 92
	case mysql.MYSQL_TYPE_DATETIME, mysql.MYSQL_TYPE_DATETIME2, mysql.MYSQL_TYPE_TIMESTAMP, mysql.MYSQL_TYPE_TIMESTAMP2:
		return 93
	case mysql.MYSQL_TYPE_YEAR, mysql.MYSQL_TYPE_JSON:
		return 12
	case mysql.MYSQL_TYPE_ENUM:
		return 4
	case mysql.MYSQL_TYPE_SET, mysql.MYSQL_TYPE_BIT:
		return -7
	case mysql.MYSQL_TYPE_STRING:
		if c.Binary {
			return 2004
		}
		return 1
	case mysql.MYSQL_TYPE_VARCHAR, mysql.MYSQL_TYPE_VAR_STRING:
		if c.Binary {
			return 2004
		}
		return 12
	case mysql.MYSQL_TYPE_BLOB:
		if c.JSON {
			return 12
		}
		if c.Binary || c.Charset == "" {
			return 2004
		}
		return 2005
	}
	return 2004
}

// mysqlTypeName is the column type as SHOW CREATE TABLE prints it.
func mysqlTypeName(c *binlog.Column) string {
	if c.SQLType != "" {
		return c.SQLType
	}
	switch c.Type {
	case mysql.MYSQL_TYPE_TINY:
		return "tinyint"
	case mysql.MYSQL_TYPE_SHORT:
		return "smallint"
	case mysql.MYSQL_TYPE_INT24:
		return "mediumint"
	case mysql.MYSQL_TYPE_LONG:
		return "int"
	case mysql.MYSQL_TYPE_LONGLONG:
		return "bigint"
	case mysql.MYSQL_TYPE_FLOAT:
		return "float"
	case mysql.MYSQL_TYPE_DOUBLE:
		return "double"
	case mysql.MYSQL_TYPE_NEWDECIMAL:
		return "decimal"
	case mysql.MYSQL_TYPE_DATE, mysql.MYSQL_TYPE_NEWDATE:
		return "date"
	case mysql.MYSQL_TYPE_TIME, mysql.MYSQL_TYPE_TIME2:
		return "time"
	case mysql.MYSQL_TYPE_DATETIME, mysql.MYSQL_TYPE_DATETIME2:
		return "datetime"
	case mysql.MYSQL_TYPE_TIMESTAMP, mysql.MYSQL_TYPE_TIMESTAMP2:
		return "timestamp"
	case mysql.MYSQL_TYPE_YEAR:
		return "year"
	case mysql.MYSQL_TYPE_JSON:
		return "json"
	case mysql.MYSQL_TYPE_ENUM:
		return "enum"
	case mysql.MYSQL_TYPE_SET:
		return "set"
	case mysql.MYSQL_TYPE_BIT:
		return "bit"
	case mysql.MYSQL_TYPE_STRING:
		return "char"
	case mysql.MYSQL_TYPE_VARCHAR, mysql.MYSQL_TYPE_VAR_STRING:
		return "varchar"
	case mysql.MYSQL_TYPE_BLOB:
		return "blob"
	case mysql.MYSQL_TYPE_GEOMETRY:
		return "geometry"
	}
	return "unknown"
}

// debeziumEncoder writes Debezium's change-event envelope (the payload,
// without the schema part): before, after, source, op (c, u, d), ts_ms.
// Values follow Debezium's MySQL connector with decimal.handling.mode=string
// and the default time.precision.mode (adaptive_time_microseconds): DATE as
// days since the epoch, DATETIME as epoch milliseconds (precision 0-3) or
// microseconds (4-6), TIMESTAMP as an ISO-8601 UTC string, TIME as
// microseconds, binary values as base64, BIT(1) as a boolean. A transaction
// body is an array of envelopes.
type debeziumEncoder struct{}

func (debeziumEncoder) row(dst []byte, t *binlog.Txn, c *binlog.Change, i int, m meta) []byte {
	dst = append(dst, `{"before":`...)
	dst = debeziumRow(dst, c.Table, c.Before)
	dst = append(dst, `,"after":`...)
	dst = debeziumRow(dst, c.Table, c.After)
	dst = append(dst, `,"source":`...)
	dst = debeziumSource(dst, t, c.Table.Schema, c.Table.Name, i, m, t.QueryOf(c))
	op := map[binlog.Op]string{binlog.Insert: "c", binlog.Update: "u", binlog.Delete: "d"}[c.Op]
	dst = fmt.Appendf(dst, `,"op":"%s","ts_ms":%d,"transaction":`, op, m.now.UnixMilli())
	if t.GTID.IsZero() {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, `{"id":`...)
		dst = appendJSONString(dst, t.GTID.String())
		dst = fmt.Appendf(dst, `,"total_order":%d,"data_collection_order":%d}`, i+1, i+1)
	}
	return append(dst, '}')
}

func debeziumSource(dst []byte, t *binlog.Txn, db, table string, row int, m meta, query string) []byte {
	dst = append(dst, `{"version":"sluice","connector":"mysql","name":`...)
	dst = appendJSONString(dst, m.pipeline)
	dst = fmt.Appendf(dst, `,"ts_ms":%d,"snapshot":"false","db":`, t.Timestamp.UnixMilli())
	dst = appendJSONString(dst, db)
	dst = append(dst, `,"table":`...)
	dst = appendJSONString(dst, table)
	dst = fmt.Appendf(dst, `,"server_id":%d,"gtid":`, t.ServerID)
	if t.GTID.IsZero() {
		dst = append(dst, "null"...)
	} else {
		dst = appendJSONString(dst, t.GTID.String())
	}
	dst = append(dst, `,"file":`...)
	dst = appendJSONString(dst, t.Pos.File)
	dst = fmt.Appendf(dst, `,"pos":%d,"row":%d,"thread":null,"query":`, t.Pos.Pos, row)
	if query == "" {
		return append(dst, "null}"...)
	}
	return append(appendJSONString(dst, query), '}')
}

func (debeziumEncoder) ddl(dst []byte, t *binlog.Txn, m meta) []byte {
	db, table, _ := schema.TableOf(t.DDL.Schema, t.DDL.SQL)
	if db == "" {
		db = t.DDL.Schema
	}
	dst = append(dst, `{"source":`...)
	dst = debeziumSource(dst, t, db, table, 0, m, "")
	dst = append(dst, `,"databaseName":`...)
	dst = appendJSONString(dst, db)
	dst = append(dst, `,"ddl":`...)
	dst = appendJSONString(dst, t.DDL.SQL)
	dst = fmt.Appendf(dst, `,"ts_ms":%d,"tableChanges":[]}`, m.now.UnixMilli())
	return dst
}

func debeziumRow(dst []byte, tb *binlog.Table, img []binlog.Value) []byte {
	if img == nil {
		return append(dst, "null"...)
	}
	dst = append(dst, '{')
	first := true
	for i, v := range img {
		if binlog.IsAbsent(v) || i >= len(tb.Columns) {
			continue
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = appendJSONString(dst, tb.Columns[i].Name)
		dst = append(dst, ':')
		dst = debeziumValue(dst, &tb.Columns[i], v)
	}
	return append(dst, '}')
}

func debeziumValue(dst []byte, c *binlog.Column, v binlog.Value) []byte {
	if v == nil {
		return append(dst, "null"...)
	}
	s, isString := v.(string)
	switch c.Type {
	case mysql.MYSQL_TYPE_DATE, mysql.MYSQL_TYPE_NEWDATE:
		if t, err := time.Parse("2006-01-02", s); isString && err == nil {
			return strconv.AppendInt(dst, t.Unix()/86400, 10)
		}
		return append(dst, "null"...) // zero dates: Debezium emits null
	case mysql.MYSQL_TYPE_DATETIME, mysql.MYSQL_TYPE_DATETIME2:
		t, err := time.Parse("2006-01-02 15:04:05.999999", s)
		if !isString || err != nil {
			return append(dst, "null"...)
		}
		if c.FSP > 3 {
			return strconv.AppendInt(dst, t.UnixMicro(), 10)
		}
		return strconv.AppendInt(dst, t.UnixMilli(), 10)
	case mysql.MYSQL_TYPE_TIMESTAMP, mysql.MYSQL_TYPE_TIMESTAMP2:
		t, err := time.Parse("2006-01-02 15:04:05.999999", s)
		if !isString || err != nil {
			return append(dst, "null"...)
		}
		return appendJSONString(dst, t.UTC().Format("2006-01-02T15:04:05.999999Z"))
	case mysql.MYSQL_TYPE_TIME, mysql.MYSQL_TYPE_TIME2:
		if us, ok := timeMicros(s); isString && ok {
			return strconv.AppendInt(dst, us, 10)
		}
	case mysql.MYSQL_TYPE_BIT:
		if u, ok := v.(uint64); ok {
			if c.SQLType == "bit(1)" {
				return strconv.AppendBool(dst, u == 1)
			}
			n := (bitsOf(c.SQLType) + 7) / 8
			b := make([]byte, max(n, 1))
			for i := range b { // little-endian, as io.debezium.data.Bits
				b[i] = byte(u >> (8 * i))
			}
			return appendJSONString(dst, base64.StdEncoding.EncodeToString(b))
		}
	case mysql.MYSQL_TYPE_GEOMETRY:
		if b, ok := v.([]byte); ok && len(b) >= 4 {
			srid := uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
			return fmt.Appendf(dst, `{"wkb":"%s","srid":%d}`, base64.StdEncoding.EncodeToString(b[4:]), srid)
		}
	}
	switch x := v.(type) {
	case binlog.JSON:
		return appendJSONString(dst, string(x)) // io.debezium.data.Json is a string
	case binlog.Decimal:
		return appendJSONString(dst, string(x))
	case float32:
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return append(dst, "null"...)
		}
	}
	return binlog.AppendValueJSON(dst, v)
}

func bitsOf(sqlType string) int {
	var n int
	if _, err := fmt.Sscanf(sqlType, "bit(%d)", &n); err != nil {
		return 64
	}
	return n
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
