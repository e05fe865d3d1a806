package nats

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/sluice-cdc/sluice/binlog"
)

// The statement the application ran (include_query) reaches the sluice
// format's "queries" and Debezium's source.query; without it, query is
// null (issue 14 item 15).
func TestQueryField(t *testing.T) {
	tb := &binlog.Table{Schema: "shop", Name: "o", NamesKnown: true, PK: []int{0},
		Columns: []binlog.Column{{Name: "id", Type: mysql.MYSQL_TYPE_LONG, SQLType: "int(11)"}}}
	m := meta{pipeline: "p", source: "s", now: time.Unix(0, 0), count: 2}
	for _, with := range []bool{false, true} {
		changes := []*binlog.Change{{Table: tb, Op: binlog.Insert, After: []binlog.Value{int64(1)}},
			{Table: tb, Op: binlog.Delete, Before: []binlog.Value{int64(2)}}}
		if with {
			changes[0].Query, changes[1].Query = 1, 2
		}
		txn := binlog.NewTxn(changes)
		if with {
			txn.Queries = []string{"INSERT INTO o VALUES (1)", "DELETE FROM o WHERE id = 2"}
		}
		i := 0
		for c := range txn.Changes() {
			var body struct {
				Source struct {
					Query *string `json:"query"`
				} `json:"source"`
			}
			b := newEncoder(Config{Format: FormatDebezium}).unit(nil, txn, unit{changes: []*binlog.Change{c}, row: i}, m)
			if err := json.Unmarshal(b, &body); err != nil {
				t.Fatalf("%v: %s", err, b)
			}
			switch {
			case !with && body.Source.Query != nil:
				t.Errorf("query without include_query: %s", b)
			case with && (body.Source.Query == nil || *body.Source.Query != txn.Queries[i]):
				t.Errorf("row %d: query %v, want %q: %s", i, body.Source.Query, txn.Queries[i], b)
			}
			i++
		}
		enc := newEncoder(Config{Format: "sluice"})
		b := enc.txnStart(nil, txn, m)
		var head struct {
			Queries []string `json:"queries"`
		}
		if err := json.Unmarshal(append(b[:len(b):len(b)], "]}"...), &head); err != nil {
			t.Fatalf("%v: %s", err, b)
		}
		if with != (len(head.Queries) == 2) {
			t.Errorf("sluice format queries %q (include_query %v)", head.Queries, with)
		}
	}
}
