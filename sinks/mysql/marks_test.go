package mysql

import (
	"testing"

	"github.com/sluice-cdc/sluice/binlog"
)

// The marks the sink writes are the marks its Marker reads back.
func TestMarker(t *testing.T) {
	var m Marker
	want := binlog.Mark{Pipeline: "p-1", Source: "src.a"}
	if got, ok := m.StatementMark(ddlMarkStatement(want.Pipeline, want.Source)); !ok || got != want {
		t.Errorf("StatementMark = %v, %v", got, ok)
	}
	if _, ok := m.StatementMark("CREATE DATABASE IF NOT EXISTS `sluice`"); ok {
		t.Error("an unmarked statement has a mark")
	}
	if !m.Watches(markSchema, markTable) || m.Watches("sluice", "ddl_pending") || m.Watches("app", "checkpoint") {
		t.Error("Watches picks the wrong tables")
	}
	if got, ok := m.RowMark(markSchema, markTable, []binlog.Value{"p-1", "src.a", "0-1-5"}); !ok || got != want {
		t.Errorf("RowMark = %v, %v", got, ok)
	}
}
