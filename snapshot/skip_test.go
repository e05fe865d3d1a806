package snapshot

import (
	"testing"

	"github.com/sluice-cdc/sluice/binlog"
	"github.com/sluice-cdc/sluice/checkpoint"
)

func gtidSet(t *testing.T, s string) binlog.GTIDSet {
	t.Helper()
	g, err := binlog.ParseGTIDSet(s)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// TestSkip: streaming from the earliest table's position drops what each
// table's copy has: its rows and its DDL up to its own position, nothing
// after, nothing of other tables.
func TestSkip(t *testing.T) {
	tables := []checkpoint.TableSnapshot{
		{Schema: "app", Table: "a", Done: true},
		{Schema: "app", Table: "b", Done: true},
		{Schema: "app", Table: "c", Done: false}, // not copied: nothing dropped
	}
	tables[0].At.GTID = gtidSet(t, "0-1-10")
	tables[1].At.GTID = gtidSet(t, "0-1-20")
	tables[2].At.GTID = gtidSet(t, "0-1-30")
	from, ok := checkpoint.Earliest(tables[:2])
	if !ok || from.GTID.String() != "0-1-10" {
		t.Fatalf("earliest %v", from.GTID)
	}
	skip := NewSkip(tables, from.GTID)
	ta, tb, tc := &binlog.Table{Schema: "app", Name: "a"}, &binlog.Table{Schema: "app", Name: "b"}, &binlog.Table{Schema: "app", Name: "c"}
	for _, tc := range []struct {
		name   string
		seq    uint64
		tables []*binlog.Table
		ddl    string
		want   int  // rows kept
		keeps  bool // DDL kept
	}{
		{"a after its copy", 15, []*binlog.Table{ta}, "", 1, false},
		{"b inside its copy", 15, []*binlog.Table{tb}, "", 0, false},
		{"both: b's row dropped", 15, []*binlog.Table{ta, tb, tb}, "", 1, false},
		{"b after its copy", 21, []*binlog.Table{tb}, "", 1, false},
		{"c, not copied", 15, []*binlog.Table{tc}, "", 1, false},
		{"DDL on b inside its copy", 15, nil, "ALTER TABLE b ADD x INT", 0, false},
		{"DDL on a after its copy", 15, nil, "ALTER TABLE a ADD x INT", 0, true},
		{"DDL on a and b", 15, nil, "RENAME TABLE a TO a2, b TO b2", 0, true},
		{"DDL on b after its copy", 25, nil, "ALTER TABLE b ADD x INT", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var changes []*binlog.Change
			for _, tbl := range tc.tables {
				changes = append(changes, &binlog.Change{Table: tbl, Op: binlog.Insert, After: []binlog.Value{int64(1)}})
			}
			txn := binlog.NewTxn(changes)
			txn.GTID = binlog.GTID{MariaDB: true, Domain: 0, Server: 1, Seq: tc.seq}
			if tc.ddl != "" {
				txn.DDL = &binlog.DDL{Schema: "app", SQL: tc.ddl}
			}
			out, err := skip.Filter(txn)
			if err != nil {
				t.Fatal(err)
			}
			if out.Len() != tc.want {
				t.Errorf("%d rows kept, want %d", out.Len(), tc.want)
			}
			if (out.DDL != nil) != tc.keeps {
				t.Errorf("DDL kept: %v, want %v", out.DDL != nil, tc.keeps)
			}
		})
	}
}

// TestEarliest: per MariaDB domain the lowest position, and the earliest
// binlog position.
func TestEarliest(t *testing.T) {
	for _, tc := range []struct {
		sets []string
		want string
	}{
		{[]string{"0-1-5"}, "0-1-5"},
		{[]string{"0-1-9", "0-1-5", "0-1-7"}, "0-1-5"},
		{[]string{"0-1-9,1-2-3", "0-1-5,1-2-8"}, "0-1-5,1-2-3"},
		{[]string{"0-1-9,1-2-3", "0-1-5"}, "0-1-5"},
	} {
		var tables []checkpoint.TableSnapshot
		for i, s := range tc.sets {
			ts := checkpoint.TableSnapshot{Done: true}
			ts.At.GTID = gtidSet(t, s)
			ts.At.Pos = binlog.Position{File: "bin.000002", Pos: uint64(1000 - i)}
			tables = append(tables, ts)
		}
		got, _ := checkpoint.Earliest(tables)
		if got.GTID.String() != tc.want {
			t.Errorf("%v: %s, want %s", tc.sets, got.GTID, tc.want)
		}
		if got.Pos.Pos != uint64(1000-len(tc.sets)+1) {
			t.Errorf("%v: position %s", tc.sets, got.Pos)
		}
	}
}

// TestResumedSkip: a table copied in two parts (P at 0-1-10, the rest at
// 0-1-25 after a resume) starts the stream at P, drops only what P has,
// and is a window (changes applied as upserts) until the stream is at its
// last part's position.
func TestResumedSkip(t *testing.T) {
	tables := []checkpoint.TableSnapshot{
		{Schema: "app", Table: "a", Done: true},
		{Schema: "app", Table: "b", Done: true},
	}
	tables[0].From.GTID, tables[0].At.GTID = gtidSet(t, "0-1-10"), gtidSet(t, "0-1-25")
	tables[1].At.GTID = gtidSet(t, "0-1-20")
	from, ok := checkpoint.Earliest(tables)
	if !ok || from.GTID.String() != "0-1-10" {
		t.Fatalf("earliest %v, want the resumed table's first part", from.GTID)
	}
	// Streaming from 0-1-10 reads nothing a's first part has.
	if s := NewSkip(tables, from.GTID); len(s) != 1 || s["app.b"].String() != "0-1-20" {
		t.Fatalf("skip %v", s)
	}
	if s := NewSkip(tables, gtidSet(t, "0-1-5")); s["app.a"].String() != "0-1-10" {
		t.Fatalf("from 0-1-5: skip %v, want app.a's first part", s)
	}
	for _, tc := range []struct {
		from string
		want int
	}{{"0-1-10", 1}, {"0-1-24", 1}, {"0-1-25", 0}, {"0-1-30", 0}} {
		w := Windows(tables, gtidSet(t, tc.from))
		if len(w) != tc.want || len(w) == 1 && w[0].Name() != "app.a" {
			t.Errorf("from %s: windows %v, want %d", tc.from, w, tc.want)
		}
	}
}
