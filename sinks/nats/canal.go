package nats

import (
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/sluice-cdc/sluice/binlog"
)

// CanalOptions tune format: canal.
type CanalOptions struct {
	// TimeZone is the zone TIMESTAMP values are printed in: Canal prints
	// them in its JVM's zone. Nil means UTC.
	TimeZone *time.Location
	// EnumSet is "index" (Canal's form: the ENUM member's index, the SET
	// value's bitmask, in decimal) or "label" (the member names, SET
	// members comma-separated). Empty means index.
	EnumSet string
	// Rows is "event" (Canal's form: a FlatMessage per run of consecutive
	// changes of one table and operation, up to MaxRun, all its rows in
	// data[]) or "row" (one row per FlatMessage). Empty means event.
	Rows string
	// MaxRun bounds the rows of one FlatMessage with rows: event; 0 means
	// 1000.
	MaxRun int
}

// canalEncoder writes Alibaba Canal 1.1.8's FlatMessage JSON as its MQ
// producers send it (fastjson2 with WriteNulls: fields in alphabetical
// order, nulls written), so that Canal MQ consumers only change their
// connection. The reference for every field is cited beside the code that
// writes it; canal_test.go pins the result.
type canalEncoder struct {
	opt CanalOptions
}

func newCanalEncoder(o CanalOptions) canalEncoder {
	if o.TimeZone == nil {
		o.TimeZone = time.UTC
	}
	if o.EnumSet == "" {
		o.EnumSet = "index"
	}
	if o.Rows == "" {
		o.Rows = "event"
	}
	if o.MaxRun <= 0 {
		o.MaxRun = 1000
	}
	return canalEncoder{opt: o}
}

func (e canalEncoder) maxRun() int {
	if e.opt.Rows == "row" {
		return 1
	}
	return e.opt.MaxRun
}

// canalEventType is Canal's EventType name of a row operation.
func canalEventType(op binlog.Op) string {
	switch op {
	case binlog.Insert:
		return "INSERT"
	case binlog.Update:
		return "UPDATE"
	}
	return "DELETE"
}

// canalGTID is FlatMessage.gtid: Canal's LogHeader carries the GTID set
// executed so far (gtidSetStr), empty without GTIDs.
func canalGTID(t *binlog.Txn) string {
	if s := t.Executed.String(); s != "" {
		return s
	}
	return t.GTID.String()
}

// canalCol is one column of one row as Canal's CanalEntry.Column holds it.
type canalCol struct {
	idx     int
	value   string
	null    bool
	sqlType int
	updated bool
}

// unit writes one FlatMessage for a run of changes of one table and
// operation, as MQMessageUtils.messageConverter builds it from one rows
// event's RowChange.
func (e canalEncoder) unit(dst []byte, t *binlog.Txn, u unit, m meta) []byte {
	first := u.changes[0]
	tb := first.Table
	sqlTypes := make([]int, len(tb.Columns))
	present := make([]bool, len(tb.Columns))
	// updateSet accumulates over the rows of the message, as in
	// messageConverter: a row's "old" holds every column updated in it or
	// in an earlier row of the same message.
	updateSet := make([]bool, len(tb.Columns))
	data := make([]byte, 0, 256)
	old := make([]byte, 0, 128)
	var pk []string
	for r, c := range u.changes {
		img := c.Image()
		var before []canalCol
		if c.Op == binlog.Update {
			before = e.columns(tb, c.Before, nil)
		}
		cols := e.columns(tb, img, before)
		if r == 0 {
			for _, col := range cols {
				if isKey(tb, col.idx) {
					pk = append(pk, tb.Columns[col.idx].Name)
				}
			}
		}
		if r > 0 {
			data = append(data, ',')
		}
		data = append(data, '{')
		for i, col := range cols {
			sqlTypes[col.idx], present[col.idx] = col.sqlType, true
			if col.updated {
				updateSet[col.idx] = true
			}
			if i > 0 {
				data = append(data, ',')
			}
			data = appendCanalPair(data, tb.Columns[col.idx].Name, col)
		}
		data = append(data, '}')
		if c.Op == binlog.Update {
			if r > 0 {
				old = append(old, ',')
			}
			old = append(old, '{')
			n := 0
			for _, col := range before {
				if !updateSet[col.idx] {
					continue
				}
				if n > 0 {
					old = append(old, ',')
				}
				n++
				old = appendCanalPair(old, tb.Columns[col.idx].Name, col)
			}
			old = append(old, '}')
		}
	}
	// Fields in fastjson2's order (alphabetical), nulls written.
	dst = append(dst, `{"data":[`...)
	dst = append(dst, data...)
	dst = append(dst, `],"database":`...)
	dst = appendJSONString(dst, tb.Schema)
	// es: the binlog event header's time, in seconds, times 1000
	// (LogEventConvert.createHeader: logHeader.getWhen() * 1000L).
	dst = fmt.Appendf(dst, `,"es":%d,"gtid":`, t.Timestamp.Unix()*1000)
	dst = appendJSONString(dst, canalGTID(t))
	dst = fmt.Appendf(dst, `,"id":%d,"isDdl":false,"mysqlType":{`, t.Pos.Pos)
	dst = appendColumnMap(dst, tb, present, func(dst []byte, i int) []byte {
		return appendJSONString(dst, canalMySQLType(&tb.Columns[i]))
	})
	dst = append(dst, `},"old":`...)
	if first.Op == binlog.Update {
		dst = append(append(append(dst, '['), old...), ']')
	} else {
		dst = append(dst, "null"...)
	}
	dst = append(dst, `,"pkNames":`...)
	if len(pk) == 0 {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, '[')
		for i, k := range pk {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONString(dst, k)
		}
		dst = append(dst, ']')
	}
	dst = append(dst, `,"sql":"","sqlType":{`...)
	dst = appendColumnMap(dst, tb, present, func(dst []byte, i int) []byte {
		return strconv.AppendInt(dst, int64(sqlTypes[i]), 10)
	})
	dst = append(dst, `},"table":`...)
	dst = appendJSONString(dst, tb.Name)
	dst = fmt.Appendf(dst, `,"ts":%d,"type":"%s"}`, m.now.UnixMilli(), canalEventType(first.Op))
	return dst
}

func isKey(tb *binlog.Table, i int) bool {
	for _, k := range tb.PK {
		if k == i {
			return true
		}
	}
	return false
}

func appendCanalPair(dst []byte, name string, col canalCol) []byte {
	dst = appendJSONString(dst, name)
	dst = append(dst, ':')
	if col.null {
		return append(dst, "null"...)
	}
	return appendJSONString(dst, col.value)
}

// columns converts the columns a row image carries, as
// LogEventConvert.parseOneRow does; with before set (an update's after
// image), each column is marked updated unless its before value is the
// same (LogEventConvert.isUpdate; a column missing from the before image
// counts as updated).
func (e canalEncoder) columns(tb *binlog.Table, img []binlog.Value, before []canalCol) []canalCol {
	out := make([]canalCol, 0, len(img))
	for i, v := range img {
		if binlog.IsAbsent(v) || i >= len(tb.Columns) {
			continue
		}
		s, typ, null := e.value(&tb.Columns[i], v)
		col := canalCol{idx: i, value: s, null: null, sqlType: typ}
		if before != nil {
			col.updated = true
			for _, b := range before {
				if b.idx == i {
					col.updated = !(b.null && null || !b.null && !null && b.value == s)
					break
				}
			}
		}
		out = append(out, col)
	}
	return out
}

// java.sql.Types codes.
const (
	typeBit           = -7
	typeTinyInt       = -6
	typeSmallInt      = 5
	typeInteger       = 4
	typeBigInt        = -5
	typeReal          = 7
	typeDouble        = 8
	typeDecimal       = 3
	typeChar          = 1
	typeVarchar       = 12
	typeDate          = 91
	typeTime          = 92
	typeTimestamp     = 93
	typeBinary        = -2
	typeVarbinary     = -3
	typeLongVarbinary = -4
	typeBlob          = 2004
	typeClob          = 2005
	typeOther         = 1111
)

// canalMySQLType is FlatMessage.mysqlType: the column type as Canal's
// table meta holds it (MemoryTableMeta.processTableElement: the type name
// with its arguments, " unsigned", " zerofill"), which is the column type
// as SHOW CREATE TABLE prints it.
func canalMySQLType(c *binlog.Column) string {
	if c.SQLType != "" {
		return c.SQLType
	}
	return binlog.TypeName(c.Type)
}

// canalBinary is LogEventConvert's isBinary: the column type contains
// BINARY (BINARY, VARBINARY).
func canalBinary(c *binlog.Column) bool {
	return strings.Contains(strings.ToLower(canalMySQLType(c)), "binary")
}

// canalText is LogEventConvert.isText: the column type is one of the TEXT
// types exactly.
func canalText(c *binlog.Column) bool {
	switch strings.ToLower(canalMySQLType(c)) {
	case "longtext", "mediumtext", "text", "tinytext":
		return true
	}
	return false
}

// canalNullType is the sqlType Canal gives a NULL value: the binlog
// type's JDBC type (RowsLogBuffer.mysqlToJavaType), not converted as
// values are.
func canalNullType(c *binlog.Column) int {
	switch c.Type {
	case mysql.MYSQL_TYPE_LONG, mysql.MYSQL_TYPE_INT24, mysql.MYSQL_TYPE_ENUM:
		return typeInteger
	case mysql.MYSQL_TYPE_TINY:
		return typeTinyInt
	case mysql.MYSQL_TYPE_SHORT:
		return typeSmallInt
	case mysql.MYSQL_TYPE_LONGLONG:
		return typeBigInt
	case mysql.MYSQL_TYPE_DECIMAL, mysql.MYSQL_TYPE_NEWDECIMAL:
		return typeDecimal
	case mysql.MYSQL_TYPE_FLOAT:
		return typeReal
	case mysql.MYSQL_TYPE_DOUBLE:
		return typeDouble
	case mysql.MYSQL_TYPE_BIT:
		return typeBit
	case mysql.MYSQL_TYPE_TIMESTAMP, mysql.MYSQL_TYPE_TIMESTAMP2, mysql.MYSQL_TYPE_DATETIME, mysql.MYSQL_TYPE_DATETIME2:
		return typeTimestamp
	case mysql.MYSQL_TYPE_TIME, mysql.MYSQL_TYPE_TIME2:
		return typeTime
	case mysql.MYSQL_TYPE_DATE, mysql.MYSQL_TYPE_NEWDATE:
		return typeDate
	case mysql.MYSQL_TYPE_YEAR:
		return typeVarchar
	case mysql.MYSQL_TYPE_SET, mysql.MYSQL_TYPE_GEOMETRY:
		return typeBinary
	case mysql.MYSQL_TYPE_BLOB:
		if t := strings.ToLower(canalMySQLType(c)); t == "tinyblob" || t == "tinytext" {
			return typeVarbinary // meta 1
		}
		return typeLongVarbinary
	case mysql.MYSQL_TYPE_VARCHAR, mysql.MYSQL_TYPE_VAR_STRING:
		if canalBinary(c) {
			return typeVarbinary
		}
		return typeVarchar
	case mysql.MYSQL_TYPE_STRING:
		if canalBinary(c) {
			return typeBinary
		}
		return typeChar
	}
	return typeOther // JSON and types Canal does not know
}

// Canal's unsigned adjustments (LogEventConvert.parseOneRow): the binlog
// value is read signed; a negative one gets 2^n added and the next wider
// JDBC type.
var canalUnsignedWider = map[byte]struct {
	max uint64
	typ int
}{
	mysql.MYSQL_TYPE_TINY:     {1<<7 - 1, typeSmallInt},
	mysql.MYSQL_TYPE_SHORT:    {1<<15 - 1, typeInteger},
	mysql.MYSQL_TYPE_INT24:    {1<<23 - 1, typeInteger},
	mysql.MYSQL_TYPE_LONG:     {1<<31 - 1, typeBigInt},
	mysql.MYSQL_TYPE_LONGLONG: {1<<63 - 1, typeDecimal},
}

// value is Canal's text form of one value and the sqlType Canal gives it
// (RowsLogBuffer.fetchValue, then LogEventConvert.parseOneRow). Every
// value goes through here, so new value types need only this function.
func (e canalEncoder) value(c *binlog.Column, v binlog.Value) (s string, sqlType int, null bool) {
	if v == nil {
		return "", canalNullType(c), true
	}
	switch c.Type {
	case mysql.MYSQL_TYPE_TINY, mysql.MYSQL_TYPE_SHORT, mysql.MYSQL_TYPE_INT24, mysql.MYSQL_TYPE_LONG, mysql.MYSQL_TYPE_LONGLONG:
		typ := canalNullType(c)
		switch x := v.(type) {
		case uint64:
			if w := canalUnsignedWider[c.Type]; x > w.max {
				typ = w.typ
			}
			return strconv.FormatUint(x, 10), typ, false
		case int64:
			return strconv.FormatInt(x, 10), typ, false
		}
	case mysql.MYSQL_TYPE_FLOAT:
		if f, ok := v.(float32); ok {
			return string(appendJavaFloat(nil, float64(f), 32)), typeReal, false
		}
	case mysql.MYSQL_TYPE_DOUBLE:
		if f, ok := v.(float64); ok {
			return string(appendJavaFloat(nil, f, 64)), typeDouble, false
		}
	case mysql.MYSQL_TYPE_NEWDECIMAL, mysql.MYSQL_TYPE_DECIMAL:
		return canalString(v), typeDecimal, false // BigDecimal.toPlainString: MySQL's text form
	case mysql.MYSQL_TYPE_BIT:
		return canalString(v), typeBit, false // the bits as an unsigned number
	case mysql.MYSQL_TYPE_TIMESTAMP, mysql.MYSQL_TYPE_TIMESTAMP2:
		if s, ok := v.(string); ok {
			return e.timestamp(s, c.FSP), typeTimestamp, false
		}
	case mysql.MYSQL_TYPE_DATETIME, mysql.MYSQL_TYPE_DATETIME2:
		return canalString(v), typeTimestamp, false
	case mysql.MYSQL_TYPE_TIME, mysql.MYSQL_TYPE_TIME2:
		return canalString(v), typeTime, false
	case mysql.MYSQL_TYPE_DATE, mysql.MYSQL_TYPE_NEWDATE:
		return canalString(v), typeDate, false
	case mysql.MYSQL_TYPE_YEAR:
		if y, ok := v.(int64); ok && y == 0 {
			return "0000", typeVarchar, false
		}
		return canalString(v), typeVarchar, false
	case mysql.MYSQL_TYPE_ENUM:
		if e.opt.EnumSet == "label" {
			return canalString(v), typeInteger, false
		}
		return strconv.Itoa(enumIndex(c, v)), typeInteger, false
	case mysql.MYSQL_TYPE_SET:
		if e.opt.EnumSet == "label" {
			return canalString(v), typeBit, false
		}
		return strconv.FormatUint(setBits(c, v), 10), typeBit, false
	case mysql.MYSQL_TYPE_JSON:
		if j, ok := v.(binlog.JSON); ok {
			return string(mysqlJSONText(j)), typeVarchar, false
		}
	case mysql.MYSQL_TYPE_BLOB:
		if canalText(c) {
			return canalString(v), typeClob, false
		}
		return canalString(v), typeBlob, false // bytes as ISO-8859-1
	case mysql.MYSQL_TYPE_VARCHAR, mysql.MYSQL_TYPE_VAR_STRING:
		if canalBinary(c) {
			return canalString(v), typeBlob, false
		}
		return canalString(v), typeVarchar, false
	case mysql.MYSQL_TYPE_STRING:
		if canalBinary(c) {
			// BINARY(n): Canal reads the bytes the binlog holds, without
			// the trailing zero bytes MySQL strips from them.
			if b, ok := v.([]byte); ok {
				end := len(b)
				for end > 0 && b[end-1] == 0 {
					end--
				}
				v = b[:end]
			}
			return canalString(v), typeBlob, false
		}
		return canalString(v), typeChar, false
	case mysql.MYSQL_TYPE_GEOMETRY:
		return canalString(v), typeBlob, false
	}
	return canalString(v), canalNullType(c), false
}

// appendColumnMap writes "column":value pairs, comma-separated, for the
// present columns of tb, value written by val.
func appendColumnMap(dst []byte, tb *binlog.Table, present []bool, val func(dst []byte, i int) []byte) []byte {
	n := 0
	for i := range tb.Columns {
		if !present[i] {
			continue
		}
		if n > 0 {
			dst = append(dst, ',')
		}
		n++
		dst = appendJSONString(dst, tb.Columns[i].Name)
		dst = append(dst, ':')
		dst = val(dst, i)
	}
	return dst
}

// timestamp converts a TIMESTAMP from UTC text to the configured zone,
// printed as RowsLogBuffer does: "yyyy-MM-dd HH:mm:ss" and exactly fsp
// fraction digits; the zero value stays "0000-00-00 00:00:00".
func (e canalEncoder) timestamp(s string, fsp int) string {
	sec, frac, _ := strings.Cut(s, ".")
	frac = (frac + "000000")[:min(max(fsp, 0), 6)]
	if strings.HasPrefix(sec, "0000-00-00") {
		sec = "0000-00-00 00:00:00"
	} else if t, err := time.ParseInLocation("2006-01-02 15:04:05", sec, time.UTC); err == nil {
		sec = t.In(e.opt.TimeZone).Format("2006-01-02 15:04:05")
	}
	if fsp > 0 {
		return sec + "." + frac
	}
	return sec
}

// enumIndex is an ENUM value's index (1-based; 0 for the empty "invalid"
// value), which is what the binlog holds and Canal prints.
func enumIndex(c *binlog.Column, v binlog.Value) int {
	switch x := v.(type) {
	case binlog.Enum:
		return int(x.Index)
	case int64:
		return int(x)
	case string:
		for i, e := range c.Elems {
			if e == x {
				return i + 1
			}
		}
	}
	return 0
}

// setBits is a SET value's bitmask, which is what the binlog holds and
// Canal prints.
func setBits(c *binlog.Column, v binlog.Value) uint64 {
	switch x := v.(type) {
	case binlog.Set:
		return x.Bits
	case int64:
		return uint64(x)
	case uint64:
		return x
	case string:
		var bits uint64
		if x == "" {
			return 0
		}
		for _, m := range strings.Split(x, ",") {
			for i, e := range c.Elems {
				if e == m {
					bits |= 1 << uint(i)
					break
				}
			}
		}
		return bits
	}
	return 0
}

// canalString is Canal's text form of a value. Binary strings become one
// character per byte (ISO-8859-1), as LogEventConvert decodes them.
func canalString(v binlog.Value) string {
	switch x := v.(type) {
	case nil:
		return ""
	case int64:
		return strconv.FormatInt(x, 10)
	case uint64:
		return strconv.FormatUint(x, 10)
	case float32:
		return string(appendJavaFloat(nil, float64(x), 32))
	case float64:
		return string(appendJavaFloat(nil, x, 64))
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
	case binlog.RawText: // text invalid in its charset: its bytes, as binary strings
		return canalString(x.Bytes)
	case binlog.Enum:
		return x.Name
	case binlog.Set:
		return x.Names
	case []float32:
		return string(binlog.AppendValueJSON(nil, x))
	}
	return fmt.Sprint(v) // UUID, INET4, INET6: their text form
}

// mysqlJSONText prints a JSON document the way MySQL and Canal's
// JsonConversion.toJsonString do: ", " between members and elements, ": "
// after keys. Numbers are copied as they are (an integral DOUBLE inside a
// JSON document, which Canal prints as "1.0", is printed as the binlog
// decoder wrote it).
func mysqlJSONText(j []byte) []byte { return reprintJSON(j, ", ", ": ", false) }

// reprintJSON re-prints JSON text token by token: whitespace between
// tokens dropped, comma and colon written as given, numbers through
// appendJSONNumber (javaDouble as it says).
func reprintJSON(j []byte, comma, colon string, javaDouble bool) []byte {
	out := make([]byte, 0, len(j)+len(j)/4)
	inStr := false
	for i := 0; i < len(j); i++ {
		c := j[i]
		if inStr {
			out = append(out, c)
			switch c {
			case '\\':
				if i+1 < len(j) {
					i++
					out = append(out, j[i])
				}
			case '"':
				inStr = false
			}
			continue
		}
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		case '"':
			inStr = true
			out = append(out, c)
		case ',':
			out = append(out, comma...)
		case ':':
			out = append(out, colon...)
		case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
			k := i
			for k < len(j) && strings.IndexByte("+-0123456789.eE", j[k]) >= 0 {
				k++
			}
			out = appendJSONNumber(out, j[i:k], javaDouble)
			i = k - 1
		default:
			out = append(out, c)
		}
	}
	return out
}

// appendJSONNumber copies a JSON number; a DOUBLE (a number with a
// fraction or an exponent) is printed as Java's Double.toString, or with
// exact set, as mysql-binlog-connector's JsonStringFormatter prints it
// (Double.toString, or new BigDecimal(d).toPlainString() when that has an
// exponent).
func appendJSONNumber(dst, num []byte, exact bool) []byte {
	if !strings.ContainsAny(string(num), ".eE") {
		return append(dst, num...)
	}
	f, err := strconv.ParseFloat(string(num), 64)
	if err != nil {
		return append(dst, num...)
	}
	s := appendJavaFloat(nil, f, 64)
	if !exact || !strings.Contains(string(s), "E") {
		return append(dst, s...)
	}
	// The double's exact decimal expansion: a binary fraction of k bits
	// has exactly k decimal fraction digits.
	r := new(big.Rat).SetFloat64(f)
	k := r.Denom().BitLen() - 1
	t := r.FloatString(k)
	if strings.Contains(t, ".") {
		t = strings.TrimRight(strings.TrimRight(t, "0"), ".")
	}
	return append(dst, t...)
}

// ddl writes a DDL's FlatMessage (LogEventConvert.parseQueryEvent:
// isDdl, the statement in sql, the type Canal's DDL parser gives it, no
// rows).
func (e canalEncoder) ddl(dst []byte, t *binlog.Txn, m meta) []byte {
	db, table := ddlTable(t)
	dst = fmt.Appendf(dst, `{"data":null,"database":`)
	dst = appendJSONString(dst, db)
	dst = fmt.Appendf(dst, `,"es":%d,"gtid":`, t.Timestamp.Unix()*1000)
	dst = appendJSONString(dst, canalGTID(t))
	dst = fmt.Appendf(dst, `,"id":%d,"isDdl":true,"mysqlType":null,"old":null,"pkNames":null,"sql":`, t.Pos.Pos)
	dst = appendJSONString(dst, t.DDL.SQL)
	dst = append(dst, `,"sqlType":null,"table":`...)
	dst = appendJSONString(dst, table)
	return fmt.Appendf(dst, `,"ts":%d,"type":"%s"}`, m.now.UnixMilli(), canalDDLType(t.DDL.SQL))
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
