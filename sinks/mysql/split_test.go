package mysql_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	drv "github.com/go-sql-driver/mysql"

	"github.com/sluice-cdc/sluice/binlog"
	"github.com/sluice-cdc/sluice/internal/testenv"
	"github.com/sluice-cdc/sluice/mysqlconn"
	mysqlsink "github.com/sluice-cdc/sluice/sinks/mysql"
)

// splitLoad is 32 source transactions, four items of eight when four
// workers apply them as one run (parallel.go's plan). Each statement
// appends the transaction's number to the row it changes, so a row's final
// value shows the order its changes were applied in. x1 is changed first
// by item 0 only; h holds hot rows that items 1-3 change again and again
// (dependent transactions), interleaved with rows of y that no earlier
// item changes (independent ones), and chains within an item (y11 in item
// 1, y20 in item 2, y31 in item 3) that become dependent through an
// earlier dependent transaction of their own item.
var splitLoad = [][]string{
	// item 0
	{"UPDATE x SET v = CONCAT(v, ' 0') WHERE id = 1"},
	{"UPDATE h SET v = CONCAT(v, ' 1') WHERE id = 1"},
	{"UPDATE y SET v = CONCAT(v, ' 2') WHERE id = 1"},
	{"UPDATE h SET v = CONCAT(v, ' 3') WHERE id = 2"},
	{"UPDATE y SET v = CONCAT(v, ' 4') WHERE id = 2"},
	{"UPDATE y SET v = CONCAT(v, ' 5') WHERE id = 3"},
	{"UPDATE h SET v = CONCAT(v, ' 6') WHERE id = 4"},
	{"UPDATE y SET v = CONCAT(v, ' 7') WHERE id = 4"},
	// item 1
	{"UPDATE y SET v = CONCAT(v, ' 8') WHERE id = 10"},
	{"UPDATE h SET v = CONCAT(v, ' 9') WHERE id = 1"},
	{"UPDATE y SET v = CONCAT(v, ' 10') WHERE id = 11"},
	{"UPDATE h SET v = CONCAT(v, ' 11') WHERE id = 1"},
	{"UPDATE y SET v = CONCAT(v, ' 12') WHERE id = 11", "UPDATE h SET v = CONCAT(v, ' 12') WHERE id = 1"},
	{"UPDATE y SET v = CONCAT(v, ' 13') WHERE id = 11"},
	{"UPDATE y SET v = CONCAT(v, ' 14') WHERE id = 12"},
	{"DELETE FROM h WHERE id = 2", "INSERT INTO h VALUES (2, 'again 15')"},
	// item 2
	{"UPDATE h SET v = CONCAT(v, ' 16') WHERE id = 1"},
	{"UPDATE y SET v = CONCAT(v, ' 17') WHERE id = 20"},
	{"UPDATE y SET v = CONCAT(v, ' 18') WHERE id = 11"},
	{"INSERT INTO y VALUES (200, '19')"},
	{"UPDATE y SET v = CONCAT(v, ' 20') WHERE id = 200"},
	{"UPDATE y SET v = CONCAT(v, ' 21') WHERE id = 20", "UPDATE h SET v = CONCAT(v, ' 21') WHERE id = 4"},
	{"UPDATE y SET v = CONCAT(v, ' 22') WHERE id = 20"},
	{"DELETE FROM y WHERE id = 200"},
	// item 3
	{"UPDATE h SET v = CONCAT(v, ' 24') WHERE id = 1"},
	{"UPDATE y SET v = CONCAT(v, ' 25') WHERE id = 30"},
	{"UPDATE y SET v = CONCAT(v, ' 26') WHERE id = 20", "UPDATE y SET v = CONCAT(v, ' 26') WHERE id = 31"},
	{"UPDATE y SET v = CONCAT(v, ' 27') WHERE id = 31"},
	{"UPDATE h SET v = CONCAT(v, ' 28') WHERE id = 2"},
	{"UPDATE y SET v = CONCAT(v, ' 29') WHERE id = 32"},
	{"UPDATE y SET v = CONCAT(v, ' 30') WHERE id = 11"},
	{"UPDATE y SET v = CONCAT(v, ' 31') WHERE id = 33"},
}

// The plan splitLoad must get: each item's dependent transactions and
// dependency.
var (
	splitDependent = [][]int{nil, {9, 11, 12, 13, 15}, {16, 18, 21, 22}, {24, 26, 27, 28, 30}}
	splitDeps      = []int{-1, 0, 1, 2}
)

var splitTables = []string{"s.x", "s.h", "s.y"}

// runSplit applies splitLoad with four workers while the test holds the
// target's row x1, on which item 0 blocks at its first change, so that
// item 1 starts while item 0 has not committed. during runs, polled,
// until it returns true; then x1 is released and the run finishes.
func runSplit(t *testing.T, during func(ctx context.Context, obs *mysqlLocks) bool) (src, dst *testenv.MariaDB) {
	t.Helper()
	servers := testenv.StartMariaDBs(t, 2)
	src, dst = servers[0], servers[1]
	setup := sourceTxns(t, src, "CREATE DATABASE s",
		"CREATE TABLE s.x (id INT PRIMARY KEY, v VARCHAR(200) NOT NULL)",
		"CREATE TABLE s.h (id INT PRIMARY KEY, v VARCHAR(200) NOT NULL)",
		"CREATE TABLE s.y (id INT PRIMARY KEY, v VARCHAR(200) NOT NULL)",
		"INSERT INTO s.x SELECT seq, 'x' FROM s.seq_1_to_4",
		"INSERT INTO s.h SELECT seq, 'h' FROM s.seq_1_to_4",
		"INSERT INTO s.y SELECT seq, 'y' FROM s.seq_1_to_100")
	var stmts []string
	for _, txn := range splitLoad {
		stmts = append(append(append(stmts, "BEGIN"), txn...), "COMMIT")
	}
	load := sourceTxns(t, src, append([]string{"USE s"}, stmts...)...)
	if len(load) != len(splitLoad) {
		t.Fatalf("%d source transactions, want %d", len(load), len(splitLoad))
	}

	s := openWorkers(t, dst, setup)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// Items of eight: a run this short is otherwise one item or items of
	// minItemTxns (TestPlanItemSizes).
	s.SetMinItemForTest("src", 1)
	items, dependent, deps, err := s.PlanForTest(ctx, "src", load)
	if err != nil {
		t.Fatal(err)
	}
	for i := range items {
		if len(items) != 4 || len(items[i]) != 8 || !slices.Equal(dependent[i], splitDependent[i]) || deps[i] != splitDeps[i] {
			t.Fatalf("plan: items %v, dependent %v, dependencies %v; want items of 8, dependent %v, dependencies %v",
				items, dependent, deps, splitDependent, splitDeps)
		}
	}
	// Items wait up to a second, holding their locks, before they give
	// them up and run in source order (parallel.go's patience).
	s.SetPatienceForTest("src", time.Second)

	obs := &mysqlLocks{t: t, db: dst.DB(t)}
	blocker, err := obs.db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer blocker.Close()
	if _, err := blocker.ExecContext(ctx, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	if _, err := blocker.ExecContext(ctx, "SELECT * FROM s.x WHERE id = 1 FOR UPDATE"); err != nil {
		t.Fatal(err)
	}
	applied := make(chan error, 1)
	go func() {
		n, err := s.ApplyBatch(ctx, "src", load)
		if err == nil && n != len(load) {
			err = fmt.Errorf("applied %d of %d", n, len(load))
		}
		applied <- err
	}()
	for !during(ctx, obs) {
		if ctx.Err() != nil {
			t.Fatal("timed out")
		}
		time.Sleep(2 * time.Millisecond)
	}
	if _, err := blocker.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	if err := <-applied; err != nil {
		t.Fatal(err)
	}
	if y := s.YieldsForTest("src"); y != 0 {
		t.Fatalf("%d items gave their locks up and ran again in source order: the run did not take the path under test", y)
	}
	st, ok, err := s.Checkpoint(ctx, "src")
	if err != nil || !ok || !st.Covers(load[len(load)-1]) {
		t.Fatalf("checkpoint %v %v %v", st.GTID, ok, err)
	}
	return src, dst
}

// mysqlLocks looks at the target's row locks from another session.
type mysqlLocks struct {
	t  *testing.T
	db *sql.DB
}

// locked reports whether a row of table that where selects is locked by
// another transaction.
func (o *mysqlLocks) locked(ctx context.Context, table, where string) bool {
	o.t.Helper()
	rows, err := o.db.QueryContext(ctx, "SELECT id FROM "+table+" WHERE "+where+" FOR UPDATE NOWAIT")
	if err == nil {
		// A lock met after the first rows ends the result.
		for rows.Next() {
		}
		err = rows.Err()
		rows.Close()
	}
	if err == nil {
		return false
	}
	if me := (*drv.MySQLError)(nil); errors.As(err, &me) && me.Number == 1205 {
		return true
	}
	o.t.Fatal(err)
	return false
}

// TestParallelDependentWaits: a dependent transaction runs only once the
// item it depends on has committed. Item 1's independent transaction
// (y10) runs while item 0 waits for x1, and its dependent ones (on hot
// rows of h, which item 0 changes after x1) do not: no row of h is locked
// until x1 is released.
func TestParallelDependentWaits(t *testing.T) {
	var indepAt time.Time
	runSplit(t, func(ctx context.Context, obs *mysqlLocks) bool {
		if obs.locked(ctx, "s.h", "TRUE") {
			t.Fatal("a row of s.h is locked while item 0 waits for x1: a dependent transaction of item 1 ran before item 0 committed")
		}
		if indepAt.IsZero() && obs.locked(ctx, "s.y", "id = 10") {
			indepAt = time.Now() // item 1 is waiting for item 0
		}
		// Give a dependent transaction that does not wait time to run.
		return !indepAt.IsZero() && time.Since(indepAt) > 200*time.Millisecond
	})
}

// TestParallelSplitSourceOrder: items that run their independent
// transactions first and their dependent ones once the item before has
// committed leave the target as the source is: every hot row's changes,
// and every chain through an earlier dependent transaction of the same
// item, applied in source order.
func TestParallelSplitSourceOrder(t *testing.T) {
	src, dst := runSplit(t, func(ctx context.Context, obs *mysqlLocks) bool {
		return obs.locked(ctx, "s.y", "id = 10") // item 1 has sent its independent transactions
	})
	if a, b := src.Checksums(t, splitTables...), dst.Checksums(t, splitTables...); a != b {
		t.Errorf("source %s, target %s", a, b)
	}
	for _, table := range splitTables {
		q := "SELECT id, v FROM " + table + " ORDER BY id"
		if a, b := rows(t, src, q), rows(t, dst, q); a != b {
			t.Errorf("%s:\nsource %s\ntarget %s", table, a, b)
		}
	}
	if got := strings.Fields(dst.QueryString(t, "SELECT v FROM s.h WHERE id = 1")); !slices.Equal(got, strings.Fields("h 1 9 11 12 16 24")) {
		t.Errorf("h1 = %q on the target", got)
	}
}

// openWorkers opens a sink with four workers on dst (closed when the test
// ends) and applies setup through it.
func openWorkers(t *testing.T, dst *testenv.MariaDB, setup []*binlog.Txn) *mysqlsink.Sink {
	t.Helper()
	d, _ := mysqlconn.ParseDSN(dst.DSN())
	s, err := mysqlsink.Open(context.Background(), mysqlsink.Config{DSN: d, Pipeline: "t", DDL: "apply", OnConflict: "stop",
		Workers: 4, Logger: testenv.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := applyAll(t, s, setup); err != nil {
		t.Fatal(err)
	}
	return s
}
