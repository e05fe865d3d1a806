package mysql_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/sluice-cdc/sluice/binlog"
	"github.com/sluice-cdc/sluice/internal/testenv"
	"github.com/sluice-cdc/sluice/mysqlconn"
	mysqlsink "github.com/sluice-cdc/sluice/sinks/mysql"
)

// readAll reads every transaction of src's bank tables.
func readAll(t *testing.T, src *testenv.MariaDB) []*binlog.Txn {
	t.Helper()
	d, _ := mysqlconn.ParseDSN(src.DSN())
	ctx := context.Background()
	s, err := binlog.Connect(ctx, binlog.LiveConfig{DSN: d, ServerID: 5152, Start: binlog.Start{Mode: binlog.StartOldest}, StopAtEnd: true,
		Decode: binlog.DecodeOptions{StrictColumns: true, Filter: mustFilter()}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var txns []*binlog.Txn
	for {
		tx, err := s.Next(ctx)
		if errors.Is(err, io.EOF) {
			return txns
		}
		if err != nil {
			t.Fatal(err)
		}
		txns = append(txns, tx)
	}
}

// TestParallelApply applies a backlog of the test load (transfers on few
// accounts that conflict often, changes of random items, a keyless table)
// in runs of 64 with 1, 2 and 8 workers: every run ends with the target
// equal to the source and the checkpoint at the last transaction.
func TestParallelApply(t *testing.T) {
	servers := testenv.StartMariaDBs(t, 2)
	src, dst := servers[0], servers[1]
	src.Exec(t, testenv.LoadSchema("bank", 500)...)
	load := testenv.StartLoad(t, src, "bank", 4)
	time.Sleep(3 * time.Second)
	load.Stop()
	txns := readAll(t, src)
	t.Logf("%d transactions", len(txns))
	tables := testenv.LoadTables("bank")
	for _, workers := range []int{1, 2, 8} {
		dst.Exec(t, "DROP DATABASE IF EXISTS bank", "DROP DATABASE IF EXISTS sluice")
		d, _ := mysqlconn.ParseDSN(dst.DSN())
		s, err := mysqlsink.Open(context.Background(), mysqlsink.Config{DSN: d, Pipeline: "t", DDL: "apply", OnConflict: "stop",
			Workers: workers, Logger: testenv.Logger()})
		if err != nil {
			t.Fatal(err)
		}
		done := 0
		for done < len(txns) {
			end := done + 1
			if txns[done].DDL == nil {
				for end < len(txns) && end-done < 64 && txns[end].DDL == nil {
					end++
				}
			}
			n, err := s.ApplyBatch(context.Background(), "src", txns[done:end])
			done += n
			if err != nil {
				t.Fatalf("workers %d: after %d: %v", workers, done, err)
			}
		}
		if a, b := src.Checksums(t, tables...), dst.Checksums(t, tables...); a != b {
			t.Fatalf("workers %d: source %s, target %s", workers, a, b)
		}
		st, ok, err := s.Checkpoint(context.Background(), "src")
		if err != nil || !ok || !st.Covers(txns[len(txns)-1]) {
			t.Fatalf("workers %d: checkpoint %v %v %v", workers, st.GTID, ok, err)
		}
		s.Close()
	}
}

// TestBatchedUpdates: updates batched as one INSERT … ON DUPLICATE KEY
// UPDATE (update.go) store exactly the source's values, and a row the
// target lacks is still a conflict.
func TestBatchedUpdates(t *testing.T) {
	servers := testenv.StartMariaDBs(t, 2)
	src, dst := servers[0], servers[1]
	src.Exec(t, "CREATE DATABASE bank",
		`CREATE TABLE bank.u (id INT PRIMARY KEY, d DECIMAL(12,3), l VARCHAR(20) CHARACTER SET latin1, s VARCHAR(20) CHARACTER SET utf8mb4,
			c CHAR(10) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci, n INT NULL, big BIGINT UNSIGNED, ts TIMESTAMP(3) NULL, f FLOAT, j JSON)`,
		"INSERT INTO bank.u SELECT seq, seq / 7, CONCAT('caf', CHAR(233), seq), CONCAT('x ', seq, '  '), 'Ab', seq, 18446744073709551615 - seq, '2024-02-03 04:05:06.789', seq / 3, '{\"a\": 1}' FROM bank.seq_1_to_2000",
		"UPDATE bank.u SET d = -d, l = CONCAT(l, 'ü'), s = NULL, c = 'aB ', n = IF(id % 2, NULL, n * 3), big = big - 1",
		"UPDATE bank.u SET d = 0.001, s = '😀 ', f = f * 1.5, j = JSON_SET(j, '$.b', id) WHERE id % 3 = 0",
		"UPDATE bank.u SET n = 7 WHERE id < 10")
	txns := readAll(t, src)
	d, _ := mysqlconn.ParseDSN(dst.DSN())
	s, err := mysqlsink.Open(context.Background(), mysqlsink.Config{DSN: d, Pipeline: "t", DDL: "apply", OnConflict: "stop", Logger: testenv.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := applyAll(t, s, txns[:len(txns)-3]); err != nil {
		t.Fatal(err)
	}
	dst.Exec(t, "DELETE FROM bank.u WHERE id = 1500")
	err = applyAll(t, s, txns[len(txns)-3:len(txns)-2])
	var ce *mysqlsink.ConflictError
	if !errors.As(err, &ce) || ce.Key != "id=1500" {
		t.Fatalf("a batched update of a row the target lacks: %v", err)
	}
	updates := func() int {
		n, _ := strconv.Atoi(dst.QueryString(t, "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'COM_UPDATE'"))
		return n
	}
	before := updates() // the careful path's, up to the conflict
	// The row as the source had it, made the same way; then the rest.
	dst.Exec(t, "INSERT INTO bank.u SELECT seq, seq / 7, CONCAT('caf', CHAR(233), seq), CONCAT('x ', seq, '  '), 'Ab', seq, 18446744073709551615 - seq, '2024-02-03 04:05:06.789', seq / 3, '{\"a\": 1}' FROM bank.seq_1500_to_1500")
	if err := applyAll(t, s, txns[len(txns)-3:]); err != nil {
		t.Fatal(err)
	}
	if a, b := src.Checksums(t, "bank.u"), dst.Checksums(t, "bank.u"); a != b {
		t.Fatalf("source %s, target %s", a, b)
	}
	if a, b := rows(t, src, "SELECT * FROM bank.u ORDER BY id"), rows(t, dst, "SELECT * FROM bank.u ORDER BY id"); a != b {
		t.Fatal("the rows differ")
	}
	// 2,676 rows updated since; one statement per row would be
	// thousands of UPDATEs.
	if n := updates() - before; n > 100 {
		t.Fatalf("%d UPDATE statements: the updates were not batched", n)
	}
}

// TestPlanItemSizes: how runs of each length are cut into items with four
// workers. A run shorter than twice minItemTxns (10) is one item; longer
// ones are cut into one item per worker, of at least 10 and at most 128
// transactions.
func TestPlanItemSizes(t *testing.T) {
	servers := testenv.StartMariaDBs(t, 2)
	src, dst := servers[0], servers[1]
	setup := sourceTxns(t, src, "CREATE DATABASE s", "CREATE TABLE s.t (id INT PRIMARY KEY, v INT NOT NULL)")
	stmts := []string{"USE s"}
	for i := range 600 {
		stmts = append(stmts, fmt.Sprintf("INSERT INTO t VALUES (%d, 0)", i))
	}
	load := sourceTxns(t, src, stmts...)
	if len(load) != 600 {
		t.Fatalf("%d source transactions, want 600", len(load))
	}
	s := openWorkers(t, dst, setup)
	for _, c := range []struct {
		run  int
		want []int
	}{
		{2, []int{2}},
		{5, []int{5}},
		{19, []int{19}},
		{20, []int{10, 10}},
		{33, []int{10, 10, 10, 3}},
		{40, []int{10, 10, 10, 10}},
		{100, []int{25, 25, 25, 25}},
		{512, []int{128, 128, 128, 128}},
		{600, []int{128, 128, 128, 128, 88}},
	} {
		items, _, _, err := s.PlanForTest(context.Background(), "src", load[:c.run])
		if err != nil {
			t.Fatal(err)
		}
		var got []int
		for _, it := range items {
			got = append(got, len(it))
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("run of %d: items of %v transactions, want %v", c.run, got, c.want)
		}
	}
}
