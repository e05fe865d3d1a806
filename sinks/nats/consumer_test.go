package nats_test

// A consumer written from Canal's and Debezium's documented formats, not
// from sluice's code: it decodes what sluice published, rebuilds each
// table from the messages on that table's subject alone, and compares the
// result with the source server's own rows, read with SQL that computes
// each value's canonical form on the server.
//
// Canal's semantics (FlatMessage.java, MQMessageUtils.messageConverter):
// values are strings or null; ENUM is the member index and SET the bitmask
// unless labels are asked for, both resolved here from mysqlType; binary
// values are ISO-8859-1 strings; TIMESTAMP is local time in the configured
// zone; data[] holds the new rows, old[] for updates the values before of
// the updated columns; pkNames names the key.
//
// Debezium's (Kafka Connect JsonConverter with schemas.enable=true): each
// body is {"schema","payload"}; values are decoded by their schema's Connect
// type (int8..int64, float, double, boolean, string, bytes as base64,
// struct) and logical name (org.apache.kafka.connect.data.Decimal with its
// scale parameter, io.debezium.time.*, io.debezium.data.*). With schemas
// off, the consumer knows the logical types out of band, as Debezium's
// documentation tells such consumers to.

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluice-cdc/sluice/internal/testenv"
	"github.com/sluice-cdc/sluice/sinks/nats/assembly"
)

// kind is how a column's value is compared.
type kind int

const (
	kInt kind = iota
	kFloat32
	kFloat64
	kDecimal
	kDate
	kTime     // canonical: microseconds
	kDatetime // canonical: microseconds since the epoch
	kTimestamp
	kYear
	kText
	kBinary
	kBinaryFixed // BINARY(n): compared without trailing zero bytes
	kEnum
	kSet
	kBit
	kJSON
	kPoint
)

// col is one column of the workload's tables: its definition, the SQL
// that gives its canonical form on the server, and its kind.
type col struct {
	name, def string
	kind      kind
	expr      string // canonical form on the server; default CAST(name AS CHAR)
}

var typesCols = []col{
	{"id", "INT PRIMARY KEY", kInt, ""},
	{"ti", "TINYINT", kInt, ""}, {"tiu", "TINYINT UNSIGNED", kInt, ""},
	{"si", "SMALLINT", kInt, ""}, {"siu", "SMALLINT UNSIGNED", kInt, ""},
	{"mi", "MEDIUMINT", kInt, ""}, {"miu", "MEDIUMINT UNSIGNED", kInt, ""},
	{"i", "INT", kInt, ""}, {"iu", "INT UNSIGNED", kInt, ""},
	{"bi", "BIGINT", kInt, ""}, {"biu", "BIGINT UNSIGNED", kInt, ""},
	{"f", "FLOAT", kFloat32, ""}, {"d", "DOUBLE", kFloat64, ""},
	{"dec1", "DECIMAL(10,2)", kDecimal, ""}, {"dec2", "DECIMAL(30,10)", kDecimal, ""},
	{"dt", "DATE", kDate, ""},
	{"tm", "TIME", kTime, "CAST(TRUNCATE(TIME_TO_SEC(tm), 0) AS SIGNED)*1000000"},
	{"tm3", "TIME(3)", kTime, "CAST(TRUNCATE(TIME_TO_SEC(tm3), 0) AS SIGNED)*1000000 + SIGN(TIME_TO_SEC(tm3))*MICROSECOND(tm3)"},
	{"dtm", "DATETIME", kDatetime, "TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', dtm)"},
	{"dtm6", "DATETIME(6)", kDatetime, "TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', dtm6)"},
	{"ts", "TIMESTAMP NULL", kTimestamp, "CAST(UNIX_TIMESTAMP(ts)*1000000 AS SIGNED)"},
	{"ts3", "TIMESTAMP(3) NULL", kTimestamp, "CAST(UNIX_TIMESTAMP(ts3)*1000000 AS SIGNED)"},
	{"yr", "YEAR", kYear, ""},
	{"c", "CHAR(5)", kText, ""}, {"vc", "VARCHAR(50)", kText, ""}, {"tx", "TEXT", kText, ""}, {"tt", "TINYTEXT", kText, ""},
	{"bin", "BINARY(4)", kBinaryFixed, "HEX(bin)"}, {"vbin", "VARBINARY(10)", kBinary, "HEX(vbin)"}, {"bl", "BLOB", kBinary, "HEX(bl)"},
	{"e", "ENUM('new','paid','shipped')", kEnum, ""}, {"s", "SET('a','b','c')", kSet, ""},
	{"b1", "BIT(1)", kBit, "CAST(b1+0 AS CHAR)"}, {"b12", "BIT(12)", kBit, "CAST(b12+0 AS CHAR)"},
	{"j", "JSON", kJSON, ""},
	{"g", "POINT", kPoint, "HEX(ST_AsBinary(g))"},
}

var kCols = []col{{"id", "INT PRIMARY KEY", kInt, ""}, {"v", "VARCHAR(20)", kText, ""}}
var tCols = []col{{"id", "INT PRIMARY KEY", kInt, ""}, {"v", "VARCHAR(20)", kText, ""}, {"n", "DECIMAL(8,3)", kDecimal, ""}}
var bigCols = []col{{"id", "INT PRIMARY KEY", kInt, ""}, {"v", "VARCHAR(300)", kText, ""}}

// afterDDL: columns the workload's DDL adds.
var tExtra = col{"extra", "INT", kInt, ""}
var nCols = []col{{"id", "BIGINT UNSIGNED PRIMARY KEY", kInt, ""}, {"at", "DATETIME(3)", kDatetime, "TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', at)"}}

func createTable(name string, cols []col) string {
	defs := make([]string, len(cols))
	for i, c := range cols {
		defs[i] = "`" + c.name + "` " + c.def
	}
	return "CREATE TABLE app." + name + " (" + strings.Join(defs, ", ") + ")"
}

// workload writes every type, inserts, updates and deletes, multi-table
// transactions (k, t, k), DDL and a 5,000-row transaction.
func workload(t *testing.T, src *testenv.MariaDB) {
	src.Exec(t, "CREATE DATABASE app CHARACTER SET utf8mb4", createTable("types", typesCols), createTable("k", kCols), createTable("t", tCols), createTable("big", bigCols))
	full := func(id int, sign int) string {
		return fmt.Sprintf(`(%d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %s, %s, %s, %s, %s, '2024-03-01', '%s', '12:34:56.789', '2024-03-01 10:20:30', '2024-03-01 10:20:30.123456',
			'2024-03-01 10:20:31', '2024-03-01 10:20:31.500', 2024, 'ab', 'vé✓ %d', 'long text %d', 'tiny', 0x61620000, 0x00ff01, 0x0001ff, 'paid', 'a,c', b'1', b'101010111100',
			'{"k": [1, "a", 2.5], "n": null, "id": %d}', ST_GeomFromText('POINT(1.5 -2)'))`,
			id, sign*100, 200, sign*30000, 60000, sign*8000000, 16000000, sign*2000000000, uint32(4000000000), sign*9000000000000000000,
			"18446744073709551615", strconv.FormatFloat(1.5*float64(sign), 'g', -1, 32), "0.1", fmt.Sprintf("%d12345.67", sign), "-12345678901234567890.0123456789",
			map[int]string{1: "-01:02:03", -1: "838:59:59"}[sign], id, id, id)
	}
	cols := make([]string, len(typesCols))
	for i, c := range typesCols {
		cols[i] = "`" + c.name + "`"
	}
	ins := "INSERT INTO app.types (" + strings.Join(cols, ",") + ") VALUES "
	src.Exec(t,
		// One statement, several rows: one rows event.
		ins+full(1, 1)+","+full(2, -1)+","+full(3, 1),
		"INSERT INTO app.types (id) VALUES (4)", // every other column NULL
		"INSERT INTO app.types (id, tiu, biu, e, s, b12, f, d, ts) VALUES (5, 127, 9223372036854775807, 'new', '', b'0', 1e10, 1e-5, '2038-01-19 00:00:00')",
		// Updates: one row, then several in one statement.
		"UPDATE app.types SET vc = 'changed', e = 'shipped', s = 'b', tiu = 255, biu = 9223372036854775808, ts3 = '2030-12-31 23:59:59.999' WHERE id = 1",
		"UPDATE app.types SET dec1 = dec1 + 1, j = JSON_OBJECT('x', 1) WHERE id IN (2, 3)",
		"UPDATE app.types SET dt = '1969-07-20', dtm = '1900-01-01 00:00:00', tm = '-00:00:01', yr = 1901 WHERE id = 4",
		"DELETE FROM app.types WHERE id = 3",
		// A transaction touching k, t, k.
		"BEGIN", "INSERT INTO app.k VALUES (1, 'k1')", "INSERT INTO app.t VALUES (1, 't1', 1.5)", "INSERT INTO app.k VALUES (2, 'k2')", "COMMIT",
		"BEGIN", "UPDATE app.t SET v = 't1b' WHERE id = 1", "DELETE FROM app.k WHERE id = 1", "UPDATE app.k SET v = 'k2b' WHERE id = 2", "COMMIT",
		// DDL, and rows after it.
		"ALTER TABLE app.t ADD COLUMN extra INT",
		"INSERT INTO app.t VALUES (2, 't2', -0.001, 7)",
		createTable("n", nCols),
		"INSERT INTO app.n VALUES (18446744073709551615, '2024-01-01 00:00:00.5')",
		// 5,000 rows in one transaction.
		"USE app",
		"INSERT INTO app.big SELECT seq, CONCAT(REPEAT('x', 200), seq) FROM seq_1_to_5000",
	)
}

var appTables = map[string][]col{"types": typesCols, "k": kCols, "t": append(append([]col{}, tCols...), tExtra), "big": bigCols, "n": nCols}

// serverRows reads a table's rows in canonical form: id -> column -> value
// ("NULL" for NULL).
func serverRows(t *testing.T, db *sql.DB, table string) map[string]map[string]string {
	cols := appTables[table]
	exprs := make([]string, len(cols))
	for i, c := range cols {
		e := c.expr
		if e == "" {
			e = "CAST(`" + c.name + "` AS CHAR)"
		}
		exprs[i] = e
	}
	rows, err := db.Query("SELECT " + strings.Join(exprs, ", ") + " FROM app." + table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]map[string]string{}
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		r := map[string]string{}
		for i, c := range cols {
			v := "NULL"
			if vals[i].Valid {
				v = canonical(c.kind, vals[i].String)
			}
			r[c.name] = v
		}
		out[r["id"]] = r
	}
	return out
}

// canonical normalizes text both sides agree on: floats by value, JSON by
// structure, BINARY(n) without its padding, hex in upper case.
func canonical(k kind, s string) string {
	switch k {
	case kFloat32:
		f, err := strconv.ParseFloat(s, 32)
		if err != nil {
			return "bad float " + s
		}
		return strconv.FormatFloat(f, 'g', -1, 32)
	case kFloat64:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return "bad double " + s
		}
		return strconv.FormatFloat(f, 'g', -1, 64)
	case kJSON:
		var v any
		if err := json.Unmarshal([]byte(s), &v); err != nil {
			return "bad json " + s
		}
		b, _ := json.Marshal(v)
		return string(b)
	case kBinaryFixed:
		return strings.ToUpper(strings.TrimRight(strings.ToUpper(s), "0")) // trailing 00 bytes (and a trailing 0 nibble pair) removed
	case kBinary, kPoint:
		return strings.ToUpper(s)
	}
	return s
}

// table state rebuilt by a consumer: id -> column -> canonical value.
type state map[string]map[string]string

func compareState(t *testing.T, what, table string, got state, want map[string]map[string]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: table %s: %d rows rebuilt, the server has %d", what, table, len(got), len(want))
	}
	ids := make([]string, 0, len(want))
	for id := range want {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	errs := 0
	for _, id := range ids {
		w, g := want[id], got[id]
		if g == nil {
			t.Errorf("%s: table %s: row %s missing", what, table, id)
			continue
		}
		for c, wv := range w {
			gv, ok := g[c]
			if !ok {
				gv = "NULL" // a column added after the row was written
			}
			if gv != wv && errs < 20 {
				errs++
				t.Errorf("%s: table %s row %s column %s: consumer decoded %q, the server has %q", what, table, id, c, gv, wv)
			}
		}
	}
}

// readSubject returns the messages of one subject filter, in stream order.
func readSubject(t *testing.T, url, stream, filter string, all []stored) []stored {
	t.Helper()
	var out []stored
	for _, m := range all {
		if subjectMatches(filter, m.subject) {
			out = append(out, m)
		}
	}
	// The same through a JetStream consumer filtered on the subject, as a
	// per-table subscriber reads it.
	nc, js := connectJS(t, url)
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for n < len(out) {
		batch, err := cons.Fetch(min(1000, len(out)-n), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for m := range batch.Messages() {
			md, _ := m.Metadata()
			if md.Sequence.Stream != out[n].seq {
				t.Fatalf("filtered consumer on %s: message %d is stream sequence %d, want %d", filter, n, md.Sequence.Stream, out[n].seq)
			}
			n++
			got++
		}
		if got == 0 {
			t.Fatalf("filtered consumer on %s: %d of %d messages", filter, n, len(out))
		}
	}
	return out
}

func subjectMatches(filter, subject string) bool {
	f, s := strings.Split(filter, "."), strings.Split(subject, ".")
	for i, p := range f {
		if p == ">" {
			return len(s) > i
		}
		if i >= len(s) || p != "*" && p != s[i] {
			return false
		}
	}
	return len(f) == len(s)
}

// joined joins chunked bodies with the consumer library.
func joined(t *testing.T, msgs []stored) []assembly.Message {
	t.Helper()
	a := assembly.New()
	var out []assembly.Message
	for _, m := range msgs {
		lm, ok, err := a.Add(m.subject, m.header, []byte(m.data))
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			out = append(out, lm)
		}
	}
	if a.Pending() != 0 {
		t.Fatalf("%d bodies missing chunks", a.Pending())
	}
	return out
}

// ---- Canal ----

// flatMessage is com.alibaba.otter.canal.protocol.FlatMessage.
type flatMessage struct {
	ID        int64                `json:"id"`
	Database  string               `json:"database"`
	Table     string               `json:"table"`
	PkNames   []string             `json:"pkNames"`
	IsDdl     bool                 `json:"isDdl"`
	Type      string               `json:"type"`
	Es        int64                `json:"es"`
	Ts        int64                `json:"ts"`
	SQL       string               `json:"sql"`
	SQLType   map[string]int       `json:"sqlType"`
	MysqlType map[string]string    `json:"mysqlType"`
	Data      []map[string]*string `json:"data"`
	Old       []map[string]*string `json:"old"`
	Gtid      string               `json:"gtid"`
}

func decodeFlat(t *testing.T, b []byte) flatMessage {
	t.Helper()
	var fm flatMessage
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&fm); err != nil {
		t.Fatalf("not a FlatMessage: %v\n%s", err, b)
	}
	return fm
}

// canalConsumer applies FlatMessages to tables.
type canalConsumer struct {
	zone     *time.Location
	labels   bool
	tables   map[string]state
	ddl      []string
	rowsSeen int
}

func (cc *canalConsumer) apply(t *testing.T, fm flatMessage) {
	t.Helper()
	if fm.IsDdl {
		if fm.SQL == "" || fm.Data != nil || fm.Type == "" {
			t.Fatalf("DDL FlatMessage without sql/type or with data: %+v", fm)
		}
		cc.ddl = append(cc.ddl, fm.Type+" "+fm.Database+"."+fm.Table)
		return
	}
	if fm.Database != "app" || len(fm.PkNames) == 0 || len(fm.Data) == 0 || fm.Es <= 0 || fm.Ts < fm.Es || fm.SQLType == nil || fm.MysqlType == nil {
		t.Fatalf("FlatMessage fields: %+v", fm)
	}
	cols := appTables[fm.Table]
	tb := cc.tables[fm.Table]
	if tb == nil {
		tb = state{}
		cc.tables[fm.Table] = tb
	}
	if fm.Type == "UPDATE" && len(fm.Old) != len(fm.Data) {
		t.Fatalf("UPDATE with %d data rows and %d old rows", len(fm.Data), len(fm.Old))
	}
	for i, raw := range fm.Data {
		cc.rowsSeen++
		row := map[string]string{}
		for name, v := range raw {
			c := findCol(cols, name)
			if c == nil {
				t.Fatalf("FlatMessage for %s has unknown column %s", fm.Table, name)
			}
			row[name] = cc.value(t, *c, fm.MysqlType[name], v)
		}
		id := row[fm.PkNames[0]]
		switch fm.Type {
		case "INSERT":
			tb[id] = row
		case "UPDATE":
			prev := tb[id]
			if prev == nil {
				t.Fatalf("UPDATE of %s row %s the consumer never saw", fm.Table, id)
			}
			// old holds the values before of the updated columns: every
			// column whose value changed is in it, with its value before.
			for name, nv := range row {
				pv, had := prev[name]
				if !had {
					pv = "NULL"
				}
				ov, inOld := fm.Old[i][name]
				if pv != nv && !inOld {
					t.Errorf("UPDATE of %s row %s: column %s changed (%s -> %s) but is not in old", fm.Table, id, name, pv, nv)
				}
				if inOld {
					c := findCol(cols, name)
					if got := cc.value(t, *c, fm.MysqlType[name], ov); got != pv {
						t.Errorf("UPDATE of %s row %s: old.%s = %s, the consumer had %s", fm.Table, id, name, got, pv)
					}
				}
			}
			tb[id] = row
		case "DELETE":
			delete(tb, id)
		default:
			t.Fatalf("FlatMessage type %q", fm.Type)
		}
	}
}

func findCol(cols []col, name string) *col {
	for i := range cols {
		if cols[i].name == name {
			return &cols[i]
		}
	}
	return nil
}

// members parses enum('a','b') or set('a','b') from mysqlType.
func members(mysqlType string) []string {
	open, end := strings.IndexByte(mysqlType, '('), strings.LastIndexByte(mysqlType, ')')
	var out []string
	for _, p := range strings.Split(mysqlType[open+1:end], ",") {
		out = append(out, strings.Trim(p, "'"))
	}
	return out
}

// value turns a Canal value into the canonical form.
func (cc *canalConsumer) value(t *testing.T, c col, mysqlType string, v *string) string {
	if v == nil {
		return "NULL"
	}
	s := *v
	latin1 := func() string {
		b := make([]byte, 0, len(s))
		for _, r := range s {
			if r > 255 {
				t.Fatalf("column %s: binary value with character %U", c.name, r)
			}
			b = append(b, byte(r))
		}
		return strings.ToUpper(hex.EncodeToString(b))
	}
	switch c.kind {
	case kEnum:
		if cc.labels {
			return s
		}
		i, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("ENUM %s: %q is not an index", c.name, s)
		}
		ms := members(mysqlType)
		if i < 0 || i > len(ms) {
			t.Fatalf("ENUM %s: index %d of %d members", c.name, i, len(ms))
		}
		if i == 0 {
			return ""
		}
		return ms[i-1]
	case kSet:
		if cc.labels {
			return s
		}
		bits, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("SET %s: %q is not a bitmask", c.name, s)
		}
		var out []string
		for i, m := range members(mysqlType) {
			if bits&(1<<i) != 0 {
				out = append(out, m)
			}
		}
		return strings.Join(out, ",")
	case kTime:
		return strconv.FormatInt(parseTimeMicros(t, s), 10)
	case kDatetime:
		tm, err := time.ParseInLocation("2006-01-02 15:04:05.999999", s, time.UTC)
		if err != nil {
			t.Fatalf("DATETIME %s: %v", c.name, err)
		}
		return strconv.FormatInt(tm.UnixMicro(), 10)
	case kTimestamp:
		tm, err := time.ParseInLocation("2006-01-02 15:04:05.999999", s, cc.zone)
		if err != nil {
			t.Fatalf("TIMESTAMP %s: %v", c.name, err)
		}
		return strconv.FormatInt(tm.UnixMicro(), 10)
	case kBinary, kBinaryFixed:
		return canonical(c.kind, latin1())
	case kPoint:
		return latin1()[8:] // SRID, then WKB
	}
	return canonical(c.kind, s)
}

func parseTimeMicros(t *testing.T, s string) int64 {
	neg := strings.HasPrefix(s, "-")
	p := strings.Split(strings.TrimPrefix(s, "-"), ":")
	if len(p) != 3 {
		t.Fatalf("TIME %q", s)
	}
	h, _ := strconv.ParseInt(p[0], 10, 64)
	m, _ := strconv.ParseInt(p[1], 10, 64)
	sec, frac, _ := strings.Cut(p[2], ".")
	ss, _ := strconv.ParseInt(sec, 10, 64)
	us, _ := strconv.ParseInt((frac + "000000")[:6], 10, 64)
	v := ((h*60+m)*60+ss)*1e6 + us
	if neg {
		v = -v
	}
	return v
}

// ---- Debezium ----

// connectSchema is a Kafka Connect schema as JsonConverter writes it.
type connectSchema struct {
	Type       string            `json:"type"`
	Optional   bool              `json:"optional"`
	Name       string            `json:"name"`
	Version    int               `json:"version"`
	Parameters map[string]string `json:"parameters"`
	Fields     []connectSchema   `json:"fields"`
	Items      *connectSchema    `json:"items"`
	Field      string            `json:"field"`
	Default    any               `json:"default"`
	Doc        string            `json:"doc"`
}

// dbzConsumer applies change events to tables.
type dbzConsumer struct {
	schemas    bool
	decimal    string // precise, string, double (with schemas off)
	bigintMode string
	tables     map[string]state
	ddl        []map[string]any
	rowsSeen   int
}

// logicalOf is what a consumer without schemas knows of each column.
func (dc *dbzConsumer) logicalOf(c col) connectSchema {
	switch c.kind {
	case kDecimal:
		switch dc.decimal {
		case "string":
			return connectSchema{Type: "string"}
		case "double":
			return connectSchema{Type: "double", Name: "decimal-as-double"}
		}
		_, scale, _ := strings.Cut(strings.TrimSuffix(strings.TrimPrefix(c.def, "DECIMAL("), ")"), ",")
		return connectSchema{Type: "bytes", Name: "org.apache.kafka.connect.data.Decimal", Parameters: map[string]string{"scale": scale}}
	case kDate:
		return connectSchema{Type: "int32", Name: "io.debezium.time.Date"}
	case kYear:
		return connectSchema{Type: "int32", Name: "io.debezium.time.Year"}
	case kTime:
		return connectSchema{Type: "int64", Name: "io.debezium.time.MicroTime"}
	case kDatetime:
		if strings.Contains(c.def, "(6)") || strings.Contains(c.def, "(4)") || strings.Contains(c.def, "(5)") {
			return connectSchema{Type: "int64", Name: "io.debezium.time.MicroTimestamp"}
		}
		return connectSchema{Type: "int64", Name: "io.debezium.time.Timestamp"}
	case kTimestamp:
		return connectSchema{Type: "string", Name: "io.debezium.time.ZonedTimestamp"}
	case kBinary, kBinaryFixed:
		return connectSchema{Type: "bytes"}
	case kBit:
		if c.def == "BIT(1)" {
			return connectSchema{Type: "boolean"}
		}
		return connectSchema{Type: "bytes", Name: "io.debezium.data.Bits"}
	case kPoint:
		return connectSchema{Type: "struct", Name: "io.debezium.data.geometry.Point"}
	case kFloat32:
		return connectSchema{Type: "float"}
	case kFloat64:
		return connectSchema{Type: "double"}
	case kInt:
		if c.def == "BIGINT UNSIGNED" || strings.HasPrefix(c.def, "BIGINT UNSIGNED") {
			if dc.bigintMode == "precise" {
				return connectSchema{Type: "bytes", Name: "org.apache.kafka.connect.data.Decimal", Parameters: map[string]string{"scale": "0"}}
			}
			return connectSchema{Type: "int64", Name: "unsigned-long"}
		}
		return connectSchema{Type: "int64"}
	}
	return connectSchema{Type: "string"}
}

// envelope is Debezium's change event payload.
type envelope struct {
	Before      map[string]json.RawMessage `json:"before"`
	After       map[string]json.RawMessage `json:"after"`
	Source      map[string]any             `json:"source"`
	Transaction *struct {
		ID                  string `json:"id"`
		TotalOrder          int64  `json:"total_order"`
		DataCollectionOrder int64  `json:"data_collection_order"`
	} `json:"transaction"`
	Op   string `json:"op"`
	TsMs int64  `json:"ts_ms"`
	TsUs int64  `json:"ts_us"`
	TsNs int64  `json:"ts_ns"`
}

// unwrap splits {"schema","payload"} (or takes the payload as is).
func (dc *dbzConsumer) unwrap(t *testing.T, b []byte) (*connectSchema, json.RawMessage) {
	t.Helper()
	if !dc.schemas {
		return nil, b
	}
	var w struct {
		Schema  *connectSchema  `json:"schema"`
		Payload json.RawMessage `json:"payload"`
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil || w.Schema == nil {
		t.Fatalf("not a JsonConverter message with schema: %v\n%.300s", err, b)
	}
	return w.Schema, w.Payload
}

func (dc *dbzConsumer) apply(t *testing.T, m assembly.Message, table string) {
	t.Helper()
	if len(m.Data) == 0 {
		if m.Header.Get("Sluice-Key") == "" {
			t.Fatal("tombstone without a key")
		}
		return // a tombstone
	}
	sch, payload := dc.unwrap(t, m.Data)
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(payload, &probe); err != nil {
		t.Fatal(err)
	}
	if _, ok := probe["ddl"]; ok {
		var ev map[string]any
		json.Unmarshal(payload, &ev)
		dc.ddl = append(dc.ddl, ev)
		return
	}
	var ev envelope
	dec := json.NewDecoder(strings.NewReader(string(payload)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ev); err != nil {
		t.Fatalf("not a Debezium envelope: %v\n%.300s", err, payload)
	}
	if ev.Source["connector"] != "mysql" || ev.Source["db"] != "app" || ev.Source["table"] != table || ev.TsUs/1000 != ev.TsMs || ev.TsNs/1000 != ev.TsUs {
		t.Fatalf("source or timestamps: %+v", ev)
	}
	var rowSchema *connectSchema
	if sch != nil {
		if sch.Name != "p."+"app."+table+".Envelope" || len(sch.Fields) != 8 {
			t.Fatalf("envelope schema %q with %d fields", sch.Name, len(sch.Fields))
		}
		rowSchema = &sch.Fields[1]
	}
	cols := appTables[table]
	decodeRow := func(r map[string]json.RawMessage) map[string]string {
		out := map[string]string{}
		for name, raw := range r {
			c := findCol(cols, name)
			if c == nil {
				t.Fatalf("event for %s has unknown column %s", table, name)
			}
			var fs connectSchema
			if rowSchema != nil {
				found := false
				for _, f := range rowSchema.Fields {
					if f.Field == name {
						fs, found = f, true
					}
				}
				if !found {
					t.Fatalf("column %s not in the value schema", name)
				}
			} else {
				fs = dc.logicalOf(*c)
			}
			out[name] = dc.value(t, *c, fs, raw)
		}
		return out
	}
	tb := dc.tables[table]
	if tb == nil {
		tb = state{}
		dc.tables[table] = tb
	}
	dc.rowsSeen++
	switch ev.Op {
	case "c", "u":
		if ev.After == nil || ev.Op == "c" && ev.Before != nil || ev.Op == "u" && ev.Before == nil {
			t.Fatalf("op %s with before %v after %v", ev.Op, ev.Before != nil, ev.After != nil)
		}
		row := decodeRow(ev.After)
		tb[row["id"]] = row
	case "d":
		row := decodeRow(ev.Before)
		delete(tb, row["id"])
	default:
		t.Fatalf("op %q", ev.Op)
	}
	// The key header is the row's key.
	ks, kp := dc.unwrap(t, []byte(m.Header.Get("Sluice-Key")))
	var key map[string]json.RawMessage
	json.Unmarshal(kp, &key)
	img := ev.After
	if img == nil {
		img = ev.Before
	}
	if string(key["id"]) != string(img["id"]) || ks != nil && ks.Name != "p.app."+table+".Key" {
		t.Fatalf("key %s for row id %s", kp, img["id"])
	}
}

// value converts a value as JsonConverter.convertToConnect and the
// logical types' converters would, then to the canonical form.
func (dc *dbzConsumer) value(t *testing.T, c col, s connectSchema, raw json.RawMessage) string {
	t.Helper()
	if string(raw) == "null" {
		if dc.schemas && !s.Optional {
			t.Fatalf("column %s: null in a required field", c.name)
		}
		return "NULL"
	}
	num := func() json.Number {
		var n json.Number
		dec := json.NewDecoder(strings.NewReader(string(raw)))
		dec.UseNumber()
		if err := dec.Decode(&n); err != nil {
			t.Fatalf("column %s (%s): %s is not a number", c.name, s.Type, raw)
		}
		return n
	}
	integer := func(bits int) int64 {
		v, err := strconv.ParseInt(num().String(), 10, bits)
		if err != nil {
			t.Fatalf("column %s: %s does not fit %s", c.name, raw, s.Type)
		}
		return v
	}
	str := func() string {
		var v string
		if err := json.Unmarshal(raw, &v); err != nil {
			t.Fatalf("column %s: %s is not a string", c.name, raw)
		}
		return v
	}
	bytesOf := func() []byte {
		b, err := base64.StdEncoding.DecodeString(str())
		if err != nil {
			t.Fatalf("column %s: bytes not base64: %v", c.name, err)
		}
		return b
	}
	switch s.Name {
	case "org.apache.kafka.connect.data.Decimal":
		scale, _ := strconv.Atoi(s.Parameters["scale"])
		b := bytesOf()
		n := new(big.Int).SetBytes(b)
		if len(b) > 0 && b[0]&0x80 != 0 {
			n.Sub(n, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
		}
		return new(big.Rat).SetFrac(n, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(scale)), nil)).FloatString(scale)
	case "decimal-as-double":
		f, _ := strconv.ParseFloat(num().String(), 64)
		return "double:" + strconv.FormatFloat(f, 'g', -1, 64)
	case "unsigned-long":
		v := integer(64)
		return strconv.FormatUint(uint64(v), 10) // a Java long: the consumer reads it back as unsigned
	case "io.debezium.time.Date":
		return time.Unix(integer(32)*86400, 0).UTC().Format("2006-01-02")
	case "io.debezium.time.MicroTime":
		return strconv.FormatInt(integer(64), 10)
	case "io.debezium.time.Timestamp":
		return strconv.FormatInt(integer(64)*1000, 10)
	case "io.debezium.time.MicroTimestamp":
		return strconv.FormatInt(integer(64), 10)
	case "io.debezium.time.ZonedTimestamp":
		tm, err := time.Parse(time.RFC3339Nano, str())
		if err != nil {
			t.Fatalf("column %s: %v", c.name, err)
		}
		return strconv.FormatInt(tm.UnixMicro(), 10)
	case "io.debezium.time.Year":
		return strconv.FormatInt(integer(32), 10)
	case "io.debezium.data.Bits":
		var v uint64
		for i, b := range bytesOf() { // little-endian
			v |= uint64(b) << (8 * i)
		}
		return strconv.FormatUint(v, 10)
	case "io.debezium.data.geometry.Point":
		var p map[string]json.RawMessage
		json.Unmarshal(raw, &p)
		var w string
		json.Unmarshal(p["wkb"], &w)
		b, _ := base64.StdEncoding.DecodeString(w)
		return strings.ToUpper(hex.EncodeToString(b))
	}
	switch s.Type {
	case "int8":
		return strconv.FormatInt(integer(8), 10)
	case "int16":
		return strconv.FormatInt(integer(16), 10)
	case "int32":
		return strconv.FormatInt(integer(32), 10)
	case "int64":
		if strings.HasPrefix(c.def, "BIGINT UNSIGNED") {
			// bigint.unsigned.handling.mode=long: a Java long; a consumer
			// of an unsigned column reads it as unsigned
			// (Long.toUnsignedString).
			return strconv.FormatUint(uint64(integer(64)), 10)
		}
		return strconv.FormatInt(integer(64), 10)
	case "float", "double":
		return canonical(c.kind, num().String())
	case "boolean":
		var b bool
		if err := json.Unmarshal(raw, &b); err != nil {
			t.Fatalf("column %s: %s is not a boolean", c.name, raw)
		}
		if b {
			return "1"
		}
		return "0"
	case "bytes":
		return canonical(c.kind, strings.ToUpper(hex.EncodeToString(bytesOf())))
	case "string":
		return canonical(c.kind, str())
	}
	t.Fatalf("column %s: schema type %q", c.name, s.Type)
	return ""
}

// ---- the test ----

// TestConsumersDecodeEveryMessage: the workload published with each
// format and option; the consumers rebuild every table from its own
// subject and find the server's rows.
func TestConsumersDecodeEveryMessage(t *testing.T) {
	src := testenv.StartMariaDB(t, testenv.MariaDBOptions{})
	workload(t, src)
	db := src.DB(t)
	want := map[string]map[string]map[string]string{}
	for table := range appTables {
		want[table] = serverRows(t, db, table)
	}
	if len(want["big"]) != 5000 || len(want["types"]) != 4 {
		t.Fatalf("workload: %d big rows, %d types rows", len(want["big"]), len(want["types"]))
	}
	n := testenv.StartNATS(t)
	cases := []struct {
		name, sink string
	}{
		{"canal", "format: canal"},
		{"canal-options", "format: canal\ncanal: {timezone: Asia/Shanghai, enum_set: label, rows: row}"},
		{"canal-transaction", "format: canal\nmode: transaction"},
		{"debezium", "format: debezium"},
		{"debezium-options", "format: debezium\ndebezium: {schemas: false, decimal_handling_mode: string, bigint_unsigned_handling_mode: precise, transaction_metadata: true, tombstones: true, key_subject: \"KEYS.{schema}.{table}\"}"},
		{"debezium-double", "format: debezium\ndebezium: {schemas: false, decimal_handling_mode: double}"},
		{"debezium-transaction", "format: debezium\nmode: transaction"},
		{"sluice-transaction", "format: sluice"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			stream := fmt.Sprintf("C%d", i)
			sink := fmt.Sprintf("stream: {name: %s, subjects: [\"%s.>\", \"KEYS.>\"]}\nsubject: \"%s.{schema}.{table}\"\nddl_subject: \"%s.{schema}.{table}\"\n%s",
				stream, stream, stream, stream, tc.sink)
			if !strings.Contains(tc.sink, "KEYS") {
				sink = strings.Replace(sink, `, "KEYS.>"`, "", 1)
			}
			cfg := natsPipeline(t, src, n.URL(), sink)
			cfg.Pipelines[0].Name = "p"
			runToEnd(t, cfg)
			switch {
			case strings.Contains(tc.sink, "mode: transaction") || tc.name == "sluice-transaction":
				checkTransactionMode(t, n.URL(), stream, tc.name, want)
			case strings.HasPrefix(tc.name, "canal"):
				checkCanal(t, n.URL(), stream, tc.name, want)
			default:
				checkDebezium(t, n.URL(), stream, tc.name, want)
			}
		})
	}
}

func checkCanal(t *testing.T, url, stream, name string, want map[string]map[string]map[string]string) {
	all := readStream(t, url, stream)
	cc := &canalConsumer{zone: time.UTC, tables: map[string]state{}}
	if name == "canal-options" {
		cc.zone, _ = time.LoadLocation("Asia/Shanghai")
		cc.labels = true
	}
	for table := range appTables {
		msgs := joined(t, readSubject(t, url, stream, stream+".app."+table, all))
		for _, m := range msgs {
			fm := decodeFlat(t, m.Data)
			if !fm.IsDdl && fm.Table != table {
				t.Fatalf("FlatMessage of table %s on %s's subject", fm.Table, table)
			}
			if name == "canal-options" && len(fm.Data) > 1 {
				t.Fatalf("rows: row gave %d rows in one FlatMessage", len(fm.Data))
			}
			cc.apply(t, fm)
		}
		compareState(t, name, table, cc.tables[table], want[table])
	}
	bigMsgs := 0
	for _, m := range readSubject(t, url, stream, stream+".app.big", all) {
		if m.header.Get("Sluice-Op") != "ddl" {
			bigMsgs++
		}
	}
	if name == "canal" && bigMsgs > 10 || name == "canal-options" && bigMsgs != 5000 {
		t.Fatalf("%s published the 5,000-row insert as %d FlatMessages", name, bigMsgs)
	}
	if !containsPrefix(cc.ddl, "ALTER app.t") || !containsPrefix(cc.ddl, "CREATE app.n") {
		t.Fatalf("DDL FlatMessages on the tables' subjects: %v", cc.ddl)
	}
}

func containsPrefix(list []string, p string) bool {
	for _, s := range list {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

func checkDebezium(t *testing.T, url, stream, name string, want map[string]map[string]map[string]string) {
	all := readStream(t, url, stream)
	dc := &dbzConsumer{schemas: name == "debezium", decimal: "precise", bigintMode: "long", tables: map[string]state{}}
	switch name {
	case "debezium-options":
		dc.decimal, dc.bigintMode = "string", "precise"
	case "debezium-double":
		dc.decimal = "double"
		exact := want
		want = map[string]map[string]map[string]string{}
		for table, rows := range exact {
			want[table] = map[string]map[string]string{}
			for id, r := range rows {
				c2 := map[string]string{}
				for k, v := range r {
					c2[k] = v
				}
				for _, c := range appTables[table] {
					if c.kind == kDecimal && r[c.name] != "NULL" {
						f, _ := strconv.ParseFloat(r[c.name], 64)
						c2[c.name] = "double:" + strconv.FormatFloat(f, 'g', -1, 64)
					}
				}
				want[table][id] = c2
			}
		}
	}
	for table := range appTables {
		for _, m := range joined(t, readSubject(t, url, stream, stream+".app."+table, all)) {
			dc.apply(t, m, table)
		}
		compareState(t, name, table, dc.tables[table], want[table])
	}
	var alter map[string]any
	for _, ev := range dc.ddl {
		if strings.HasPrefix(fmt.Sprint(ev["ddl"]), "ALTER TABLE app.t") {
			alter = ev
		}
	}
	if alter == nil {
		t.Fatalf("no schema change event for ALTER TABLE app.t: %v", dc.ddl)
	}
	changes, _ := alter["tableChanges"].([]any)
	if len(changes) != 1 || !strings.Contains(fmt.Sprint(changes[0]), "name:extra") {
		t.Fatalf("ALTER TABLE's tableChanges lack the new column: %v", changes)
	}
	if name != "debezium-options" {
		return
	}
	// Transaction metadata: BEGIN/END around each transaction's events, and
	// data_collection_order counting per table.
	everything := joined(t, all)
	var open map[string]int64
	var total int64
	for _, m := range everything {
		switch m.Header.Get("Sluice-Op") {
		case "begin":
			var v map[string]any
			json.Unmarshal(m.Data, &v)
			if v["status"] != "BEGIN" || open != nil {
				t.Fatalf("BEGIN: %s (open %v)", m.Data, open)
			}
			open, total = map[string]int64{}, 0
		case "end":
			var v struct {
				Status          string `json:"status"`
				EventCount      int64  `json:"event_count"`
				DataCollections []struct {
					DataCollection string `json:"data_collection"`
					EventCount     int64  `json:"event_count"`
				} `json:"data_collections"`
			}
			json.Unmarshal(m.Data, &v)
			if v.Status != "END" || v.EventCount != total || len(v.DataCollections) != len(open) {
				t.Fatalf("END %s after %d events in %v", m.Data, total, open)
			}
			for _, dcn := range v.DataCollections {
				if open[dcn.DataCollection] != dcn.EventCount {
					t.Fatalf("END %s: %s had %d events", m.Data, dcn.DataCollection, open[dcn.DataCollection])
				}
			}
			open = nil
		case "insert", "update", "delete":
			var ev envelope
			json.Unmarshal(m.Data, &ev)
			tbl := fmt.Sprint(ev.Source["db"]) + "." + fmt.Sprint(ev.Source["table"])
			open[tbl]++
			total++
			if ev.Transaction == nil || ev.Transaction.TotalOrder != total || ev.Transaction.DataCollectionOrder != open[tbl] {
				t.Fatalf("event %d of %s in its transaction: transaction block %+v", total, tbl, ev.Transaction)
			}
		}
	}
	// Key messages: one per event, the same key as the header.
	keys := readSubject(t, url, stream, "KEYS.app.k", all)
	if len(keys) != 4 {
		t.Fatalf("%d key messages for app.k, want 4", len(keys))
	}
}

// checkTransactionMode: every transaction is on the transaction subject,
// once, joined from its chunks by the consumer library, in sluice's
// envelope; the events inside are the format's.
func checkTransactionMode(t *testing.T, url, stream, name string, want map[string]map[string]map[string]string) {
	all := readStream(t, url, stream)
	for table := range appTables {
		for _, m := range readSubject(t, url, stream, stream+".app."+table, all) {
			if m.header.Get("Sluice-Op") != "ddl" {
				t.Fatalf("mode transaction published a %s message on table %s's subject", m.header.Get("Sluice-Op"), table)
			}
		}
	}
	raw := readSubject(t, url, stream, stream+"._txn", all)
	chunks := 0
	for _, m := range raw {
		if m.header.Get("Sluice-Chunk") != "" {
			chunks++
		}
	}
	if chunks < 2 {
		t.Fatalf("the 5,000-row transaction was not split into chunks (%d)", chunks)
	}
	cc := &canalConsumer{zone: time.UTC, tables: map[string]state{}}
	dc := &dbzConsumer{schemas: true, decimal: "precise", bigintMode: "long", tables: map[string]state{}}
	sluiceState := map[string]state{}
	for _, m := range joined(t, raw) {
		tx, err := assembly.DecodeTransaction(m)
		if err != nil {
			t.Fatal(err)
		}
		switch name {
		case "canal-transaction":
			for _, ev := range tx.Events {
				cc.apply(t, decodeFlat(t, ev))
			}
		case "debezium-transaction":
			for _, ev := range tx.Events {
				var probe struct {
					Payload struct {
						Source struct {
							Table string `json:"table"`
						} `json:"source"`
						After  map[string]json.RawMessage `json:"after"`
						Before map[string]json.RawMessage `json:"before"`
					} `json:"payload"`
				}
				json.Unmarshal(ev, &probe)
				img := probe.Payload.After
				if img == nil {
					img = probe.Payload.Before
				}
				// The envelope carries no key header per event: give the key
				// the event's own id.
				hdr := map[string][]string{"Sluice-Key": {`{"schema":{"type":"struct","name":"p.app.` + probe.Payload.Source.Table + `.Key"},"payload":{"id":` + string(img["id"]) + `}}`}}
				dc.apply(t, assembly.Message{Header: hdr, Data: ev}, probe.Payload.Source.Table)
			}
		default:
			if tx.Format != "" || len(tx.Events) > 0 {
				t.Fatalf("sluice format transaction with format %q", tx.Format)
			}
			for _, ch := range tx.Changes {
				var c struct {
					Table  string         `json:"table"`
					Type   string         `json:"type"`
					Before map[string]any `json:"before"`
					After  map[string]any `json:"after"`
				}
				json.Unmarshal(ch, &c)
				if sluiceState[c.Table] == nil {
					sluiceState[c.Table] = state{}
				}
				img := c.After
				if img == nil {
					img = c.Before
				}
				id := fmt.Sprint(img["id"])
				if c.Type == "delete" {
					delete(sluiceState[c.Table], id)
				} else {
					sluiceState[c.Table][id] = map[string]string{}
				}
			}
		}
	}
	for table := range appTables {
		switch name {
		case "canal-transaction":
			compareState(t, name, table, cc.tables[table], want[table])
		case "debezium-transaction":
			compareState(t, name, table, dc.tables[table], want[table])
		default:
			if len(sluiceState[table]) != len(want[table]) {
				t.Errorf("%s: table %s: %d rows, the server has %d", name, table, len(sluiceState[table]), len(want[table]))
			}
		}
	}
}

func connectJS(t *testing.T, url string) (*natsgo.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := natsgo.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}
