package nats

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/sluice-cdc/sluice/binlog"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// goldenTxn is a transaction with most column types, an insert, an update
// and a delete, built by hand so that the golden files are stable.
func goldenTxn() (*binlog.Txn, *binlog.Txn) {
	tb := &binlog.Table{Schema: "shop", Name: "orders", NamesKnown: true, PK: []int{0}, Columns: []binlog.Column{
		{Name: "id", Type: mysql.MYSQL_TYPE_LONG, SQLType: "int(11)"},
		{Name: "qty", Type: mysql.MYSQL_TYPE_SHORT, SQLType: "smallint(5) unsigned", Unsigned: true},
		{Name: "total", Type: mysql.MYSQL_TYPE_NEWDECIMAL, SQLType: "decimal(10,2)"},
		{Name: "ratio", Type: mysql.MYSQL_TYPE_DOUBLE, SQLType: "double"},
		{Name: "status", Type: mysql.MYSQL_TYPE_ENUM, SQLType: "enum('new','paid')", Elems: []string{"new", "paid"}},
		{Name: "created", Type: mysql.MYSQL_TYPE_DATETIME2, SQLType: "datetime(6)", FSP: 6},
		{Name: "updated", Type: mysql.MYSQL_TYPE_TIMESTAMP2, SQLType: "timestamp(3)", FSP: 3},
		{Name: "day", Type: mysql.MYSQL_TYPE_NEWDATE, SQLType: "date"},
		{Name: "dur", Type: mysql.MYSQL_TYPE_TIME2, SQLType: "time"},
		{Name: "flag", Type: mysql.MYSQL_TYPE_BIT, SQLType: "bit(1)"},
		{Name: "note", Type: mysql.MYSQL_TYPE_VARCHAR, SQLType: "varchar(50)", Charset: "utf8mb4"},
		{Name: "raw", Type: mysql.MYSQL_TYPE_BLOB, SQLType: "blob", Binary: true, Charset: "binary"},
		{Name: "doc", Type: mysql.MYSQL_TYPE_JSON, SQLType: "json", JSON: true},
	}}
	row := func(id int64, qty uint64, total, status, note string) []binlog.Value {
		return []binlog.Value{id, qty, binlog.Decimal(total), 0.25, status, "2024-03-01 10:20:30.123456", "2024-03-01 10:20:31.500",
			"2024-03-01", "-01:02:03", uint64(1), note, []byte{0, 1, 0xff}, binlog.JSON(`{"k":[1,"a"]}`)}
	}
	t := binlog.NewTxn([]*binlog.Change{
		{Table: tb, Op: binlog.Insert, After: row(1, 2, "10.50", "new", "first ✓")},
		{Table: tb, Op: binlog.Update, Before: row(1, 2, "10.50", "new", "first ✓"), After: row(1, 3, "15.75", "paid", "first ✓")},
		{Table: tb, Op: binlog.Delete, Before: row(2, 1, "-0.01", "new", `quote " and \`)},
	})
	t.GTID = binlog.GTID{MariaDB: true, Domain: 0, Server: 1, Seq: 42}
	t.ServerID = 1
	t.Timestamp = time.Date(2024, 3, 1, 10, 20, 32, 0, time.UTC)
	t.Pos = binlog.Position{File: "bin.000003", Pos: 1234}
	ddl := &binlog.Txn{GTID: binlog.GTID{MariaDB: true, Domain: 0, Server: 1, Seq: 43}, ServerID: 1, Timestamp: t.Timestamp,
		Pos: binlog.Position{File: "bin.000003", Pos: 1500}, DDL: &binlog.DDL{Schema: "shop", SQL: "ALTER TABLE orders ADD COLUMN x INT"}}
	return t, ddl
}

// TestFormatsGolden pins each format's bodies, per transaction and per row,
// in testdata/golden/*.json (go test -run Golden -update rewrites them).
func TestFormatsGolden(t *testing.T) {
	txn, ddl := goldenTxn()
	m := meta{pipeline: "orders", source: "primary", now: time.Date(2024, 3, 1, 10, 20, 33, 0, time.UTC), count: txn.Len()}
	for _, format := range []string{"sluice", "canal", "debezium"} {
		enc := newEncoder(format)
		var out bytes.Buffer
		// One transaction body.
		b := enc.txnStart(nil, txn, m)
		i := 0
		for c := range txn.Changes() {
			b = enc.txnChange(b, txn, c, i, m)
			i++
		}
		b = enc.txnEnd(b, txn, m)
		writeIndented(t, &out, "transaction", b)
		// One body per row.
		i = 0
		for c := range txn.Changes() {
			writeIndented(t, &out, "row", enc.row(nil, txn, c, i, m))
			i++
		}
		writeIndented(t, &out, "ddl", enc.ddl(nil, ddl, m))

		path := filepath.Join("testdata", "golden", format+".json")
		if *update {
			os.MkdirAll(filepath.Dir(path), 0o755)
			if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test ./sinks/nats -run Golden -update)", err)
		}
		if !bytes.Equal(out.Bytes(), want) {
			t.Errorf("%s format differs from %s:\n%s", format, path, out.String())
		}
	}
}

func writeIndented(t *testing.T, w *bytes.Buffer, label string, body []byte) {
	t.Helper()
	var v bytes.Buffer
	if err := json.Indent(&v, body, "", "  "); err != nil {
		t.Fatalf("%s body is not JSON: %v\n%s", label, err, body)
	}
	w.WriteString("// " + label + "\n")
	w.Write(v.Bytes())
	w.WriteString("\n")
}

func TestDefaultSubjects(t *testing.T) {
	got := DefaultSubjects("cdc.{schema}.{table}", "cdc._ddl", "outbox.", "{schema}.x", "fixed.subject")
	want := []string{"cdc.>", "outbox.>", ">"}
	if len(got) < 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("DefaultSubjects = %v", got)
	}
}

func TestTimeMicros(t *testing.T) {
	for s, want := range map[string]int64{"00:00:01": 1e6, "-01:02:03.5": -(3723*1e6 + 500000), "838:59:59.000001": (838*3600+59*60+59)*1e6 + 1} {
		if got, ok := timeMicros(s); !ok || got != want {
			t.Errorf("timeMicros(%q) = %d, %v", s, got, ok)
		}
	}
}
