package checkpoint

import (
	"testing"

	"github.com/sluice-cdc/sluice/binlog"
	"github.com/sluice-cdc/sluice/binlog/schema"
)

func gset(t *testing.T, s string) binlog.GTIDSet {
	t.Helper()
	g, err := binlog.ParseGTIDSet(s)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestCovers(t *testing.T) {
	st := State{GTID: gset(t, "0-1-100"), Pos: binlog.Position{File: "bin.000002", Pos: 400}}
	tests := []struct {
		txn  binlog.Txn
		want bool
	}{
		{binlog.Txn{GTID: binlog.GTID{MariaDB: true, Domain: 0, Server: 1, Seq: 100}}, true},
		{binlog.Txn{GTID: binlog.GTID{MariaDB: true, Domain: 0, Server: 1, Seq: 101}}, false},
		{binlog.Txn{Pos: binlog.Position{File: "bin.000002", Pos: 400}}, true},
		{binlog.Txn{Pos: binlog.Position{File: "bin.000002", Pos: 401}}, false},
		{binlog.Txn{Pos: binlog.Position{File: "bin.000001", Pos: 9999}}, true},
	}
	for _, tt := range tests {
		if got := st.Covers(&tt.txn); got != tt.want {
			t.Errorf("Covers(%+v) = %v", tt.txn, got)
		}
	}
}

func TestSchemaHistory(t *testing.T) {
	dir := t.TempDir()
	h, err := OpenSchemaHistory(dir, "p", "s")
	if err != nil {
		t.Fatal(err)
	}
	if h.At(State{}) != nil {
		t.Fatal("empty history")
	}
	cat := func(ddl string) *schema.Catalog {
		c := schema.NewCatalog("utf8mb4")
		if _, err := c.Apply("d", ddl); err != nil {
			t.Fatal(err)
		}
		return c
	}
	h.Reset(SchemaVersion{GTID: gset(t, "0-1-10"), Catalog: cat("CREATE TABLE t (a INT)")})
	h.Add(SchemaVersion{GTID: gset(t, "0-1-20"), Catalog: cat("CREATE TABLE t (a INT, b INT)")})
	h.Add(SchemaVersion{GTID: gset(t, "0-1-30"), Catalog: cat("CREATE TABLE t (a INT, b INT, c INT)")})
	// Reopened from disk, the version a checkpoint covers comes back.
	h, err = OpenSchemaHistory(dir, "p", "s")
	if err != nil {
		t.Fatal(err)
	}
	for ckpt, cols := range map[string]int{"0-1-10": 1, "0-1-25": 2, "0-1-30": 3, "0-1-99": 3, "0-1-5": 1} {
		c := h.At(State{GTID: gset(t, ckpt)})
		if n := len(c.Table("d", "t").Columns); n != cols {
			t.Errorf("checkpoint %s: %d columns, want %d", ckpt, n, cols)
		}
	}
	for range keepVersions + 5 {
		h.Add(SchemaVersion{GTID: gset(t, "0-1-40"), Catalog: cat("CREATE TABLE t (a INT)")})
	}
	if h.Len() != keepVersions {
		t.Fatalf("%d versions kept", h.Len())
	}
}
