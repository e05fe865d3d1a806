package mysql

import (
	"context"
	"time"

	"github.com/sluice-cdc/sluice/binlog"
)

// PlanForTest returns how the parallel applier of source cuts txns into
// items: for each item the indexes in txns of its transactions, of its
// dependent ones, and its dependency.
func (s *Sink) PlanForTest(ctx context.Context, source string, txns []*binlog.Txn) (items, dependent [][]int, deps []int, err error) {
	index := map[*binlog.Txn]int{}
	for i, t := range txns {
		index[t] = i
	}
	its, err := s.applierFor(source).plan(ctx, txns)
	if err != nil {
		return nil, nil, nil, err
	}
	for _, it := range its {
		var all, dep []int
		for _, t := range it.txns {
			all = append(all, index[t])
		}
		for _, t := range it.dependent {
			dep = append(dep, index[t])
		}
		items, dependent, deps = append(items, all), append(dependent, dep), append(deps, it.dep)
	}
	return items, dependent, deps, nil
}

// SetPatienceForTest sets how long source's items wait for the items
// before them, holding their locks, before they give them up (within
// minPatience and maxPatience; items applied since move it).
func (s *Sink) SetPatienceForTest(source string, d time.Duration) {
	s.applierFor(source).itemNanos.Store(int64(d / 4))
}

// YieldsForTest is how many items of source gave their locks up to the
// items before them and ran again.
func (s *Sink) YieldsForTest(source string) int64 { return s.applierFor(source).yields.Load() }

// SetMinItemForTest sets the fewest transactions an item of source's runs
// holds when a run is cut (minItemTxns).
func (s *Sink) SetMinItemForTest(source string, n int) { s.applierFor(source).minItem = n }

// RowsSessionForTest reports the character set, sql_log_bin and
// binlog_annotate_row_events of the sessions the initial snapshot's rows
// are written on.
func (s *Sink) RowsSessionForTest(ctx context.Context) (charset string, logBin, annotate int, err error) {
	db, err := s.rowsDB(ctx)
	if err != nil {
		return "", 0, 0, err
	}
	err = db.QueryRowContext(ctx, "SELECT @@SESSION.character_set_client, @@SESSION.sql_log_bin, @@SESSION.binlog_annotate_row_events").Scan(&charset, &logBin, &annotate)
	return charset, logBin, annotate, err
}

// WithoutBulkForTest opens the rows pool and forgets which of its
// connections run the bulk command: its chunks then go as prepared
// multi-row INSERTs, as on an encrypted connection.
func (s *Sink) WithoutBulkForTest(ctx context.Context) error {
	_, err := s.rowsDB(ctx)
	s.snapMu.Lock()
	s.rowsBulk = nil
	s.snapMu.Unlock()
	return err
}
