package replicator

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/sluice-cdc/sluice/binlog"
	"github.com/sluice-cdc/sluice/config"
)

func testRoute(t testing.TB, match, to, sourceCol, tableCol string) *config.Route {
	f, err := binlog.NewFilter([]string{match}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := &config.Route{Match: match, To: to, SourceColumn: sourceCol, TableColumn: tableCol, Matcher: f}
	r.Schema, r.Table, _ = strings.Cut(to, ".")
	return r
}

var ordersTable = &binlog.Table{Schema: "shop_1", Name: "orders", NamesKnown: true, PK: []int{0},
	Columns: []binlog.Column{{Name: "id", Type: 3}, {Name: "qty", Type: 3}}}

func TestRouter(t *testing.T) {
	p := &config.Pipeline{Name: "agg", Sources: []*config.Source{{Name: "s1"}, {Name: "s2"}},
		Routes: []*config.Route{testRoute(t, "shop_*.orders", "agg.orders", "src", "tbl")}}
	all := map[binlog.Op]bool{binlog.Insert: true, binlog.Update: true, binlog.Delete: true}
	noDeletes := map[binlog.Op]bool{binlog.Insert: true, binlog.Update: true}
	other := &binlog.Table{Schema: "shop_1", Name: "customers", NamesKnown: true, Columns: []binlog.Column{{Name: "id"}}}
	changes := func() []*binlog.Change {
		return []*binlog.Change{
			{Table: ordersTable, Op: binlog.Insert, After: []binlog.Value{int64(1), int64(5)}},
			{Table: ordersTable, Op: binlog.Delete, Before: []binlog.Value{int64(2), int64(6)}},
			{Table: other, Op: binlog.Insert, After: []binlog.Value{int64(3)}},
		}
	}
	reverse := binlog.Mark{Pipeline: "back", Source: "agg-target"}
	tests := []struct {
		name  string
		ops   map[binlog.Op]bool
		marks []binlog.Mark
		ddl   *binlog.DDL
		quiet bool
		want  []string // schema.table op images
		ddlTo string
	}{
		{name: "routed with columns", ops: all, want: []string{
			"agg.orders insert [1 5 s1 orders] pk [0 2 3]", "agg.orders delete [2 6 s1 orders] pk [0 2 3]", "shop_1.customers insert [3] pk []"}},
		{name: "deletes dropped", ops: noDeletes, want: []string{
			"agg.orders insert [1 5 s1 orders] pk [0 2 3]", "shop_1.customers insert [3] pk []"}},
		{name: "applied by the reverse pipeline", ops: all, marks: []binlog.Mark{reverse}, want: nil},
		{name: "another pipeline's mark", ops: all, marks: []binlog.Mark{{Pipeline: "x", Source: "y"}}, want: []string{
			"agg.orders insert [1 5 s1 orders] pk [0 2 3]", "agg.orders delete [2 6 s1 orders] pk [0 2 3]", "shop_1.customers insert [3] pk []"}},
		{name: "DDL routed and merged", ops: all, ddl: &binlog.DDL{Schema: "shop_1", SQL: "ALTER TABLE orders ADD COLUMN x INT"},
			ddlTo: "ALTER TABLE `agg`.`orders` ADD COLUMN x INT merged [src tbl]"},
		// Every routed table of a multi-table RENAME, not only the first
		// (issue 14 item 8), and a quoted name with a backtick in it.
		{name: "multi-table RENAME routed", ops: all, ddl: &binlog.DDL{Schema: "shop_1", SQL: "RENAME TABLE orders TO o_old, o_new TO orders"},
			ddlTo: "RENAME TABLE `agg`.`orders` TO o_old, o_new TO `agg`.`orders` merged [src tbl]"},
		{name: "RENAME of another table", ops: all, ddl: &binlog.DDL{Schema: "shop_1", SQL: "RENAME TABLE a TO b, c TO d"},
			ddlTo: "RENAME TABLE a TO b, c TO d"},
		{name: "quoted name with a backtick", ops: all, ddl: &binlog.DDL{Schema: "x", SQL: "ALTER TABLE `shop_``2`.`orders` ADD y INT"},
			ddlTo: "ALTER TABLE `agg`.`orders` ADD y INT merged [src tbl]"},
		{name: "DDL applied by the reverse pipeline", ops: all, marks: []binlog.Mark{reverse},
			ddl: &binlog.DDL{Schema: "shop_1", SQL: "DROP TABLE orders"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRouter(p, &config.Source{Name: "s1", Ops: tt.ops}, map[binlog.Mark]bool{reverse: true}, slog.New(slog.DiscardHandler))
			in := binlog.NewTxn(changes())
			if tt.ddl != nil {
				in = binlog.NewTxn(nil)
				in.DDL = tt.ddl
			}
			in.Marks = tt.marks
			out, quiet, err := r.route(in)
			if err != nil {
				t.Fatal(err)
			}
			if quiet != tt.quiet {
				t.Fatalf("quiet %v", quiet)
			}
			var got []string
			for c, err := range out.Changes() {
				if err != nil {
					t.Fatal(err)
				}
				img := c.Image()
				got = append(got, fmt.Sprintf("%s %s %v pk %v", c.Table.QualifiedName(), c.Op, img, c.Table.PK))
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) || out.Len() != len(tt.want) {
				t.Fatalf("got %q (Len %d), want %q", got, out.Len(), tt.want)
			}
			var ddl string
			if out.DDL != nil {
				ddl = out.DDL.SQL
				if out.DDL.Merged {
					ddl += fmt.Sprintf(" merged %v", out.DDL.RouteColumns)
				}
			}
			if ddl != tt.ddlTo {
				t.Fatalf("DDL %q, want %q", ddl, tt.ddlTo)
			}
		})
	}
	// A transaction holding nothing but the reverse pipeline's checkpoint
	// is quiet: not even checkpointed.
	r := newRouter(p, &config.Source{Name: "s1", Ops: all}, map[binlog.Mark]bool{reverse: true}, slog.New(slog.DiscardHandler))
	ck := binlog.NewTxn(nil)
	ck.Marks = []binlog.Mark{reverse}
	if _, quiet, _ := r.route(ck); !quiet {
		t.Fatal("a checkpoint-only transaction of the reverse pipeline is not quiet")
	}
}

// BenchmarkRoute: routing a 1000-row transaction (rename, two added
// columns) and iterating it, as a sink does.
func BenchmarkRoute(b *testing.B) {
	p := &config.Pipeline{Name: "agg", Sources: []*config.Source{{Name: "s1"}},
		Routes: []*config.Route{testRoute(b, "shop_*.orders", "agg.orders", "src", "tbl")}}
	all := map[binlog.Op]bool{binlog.Insert: true, binlog.Update: true, binlog.Delete: true}
	r := newRouter(p, &config.Source{Name: "s1", Ops: all}, nil, slog.New(slog.DiscardHandler))
	var changes []*binlog.Change
	for i := range 1000 {
		changes = append(changes, &binlog.Change{Table: ordersTable, Op: binlog.Update,
			Before: []binlog.Value{int64(i), int64(1)}, After: []binlog.Value{int64(i), int64(2)}})
	}
	b.ReportAllocs()
	for b.Loop() {
		out, _, err := r.route(binlog.NewTxn(changes))
		if err != nil {
			b.Fatal(err)
		}
		for _, err := range out.Changes() {
			if err != nil {
				b.Fatal(err)
			}
		}
	}
}
