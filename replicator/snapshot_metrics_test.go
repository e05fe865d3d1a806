package replicator

import (
	"testing"

	"github.com/sluice-cdc/sluice/snapshot"
)

// TestSnapshotMetrics: the rows counter adds what each progress report
// adds, and the tables gauge is what remains.
func TestSnapshotMetrics(t *testing.T) {
	m := NewMetrics()
	m.init("p", "s")
	var counted uint64
	for _, tc := range []struct {
		p                snapshot.Progress
		rows, tablesLeft float64
	}{
		{snapshot.Progress{Tables: 3}, 0, 3},
		{snapshot.Progress{Tables: 3, TablesDone: 1, Rows: 1500}, 1500, 2},
		{snapshot.Progress{Tables: 3, TablesDone: 3, Rows: 4000}, 4000, 0},
		{snapshot.Progress{Tables: 3, TablesDone: 3, Rows: 4000}, 4000, 0}, // the final report again
	} {
		m.snapshot.update("p", "s", tc.p, &counted)
		if got := metricValue(t, m, "sluice_snapshot_rows_copied_total"); got != tc.rows {
			t.Errorf("rows %v, want %v", got, tc.rows)
		}
		if got := metricValue(t, m, "sluice_snapshot_tables_remaining"); got != tc.tablesLeft {
			t.Errorf("tables remaining %v, want %v", got, tc.tablesLeft)
		}
	}
}

// metricValue is the value of the one series of a family.
func metricValue(t *testing.T, m *Metrics, name string) float64 {
	t.Helper()
	families, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name || len(f.GetMetric()) != 1 {
			continue
		}
		s := f.GetMetric()[0]
		return s.GetCounter().GetValue() + s.GetGauge().GetValue()
	}
	t.Fatalf("no single series %s", name)
	return 0
}
