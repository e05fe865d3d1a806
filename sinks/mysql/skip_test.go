package mysql_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/sluice-cdc/sluice/internal/testenv"
	"github.com/sluice-cdc/sluice/mysqlconn"
	mysqlsink "github.com/sluice-cdc/sluice/sinks/mysql"
)

// TestSkip: a transaction listed in skip stops the pipeline no more: it is
// recorded in the checkpoint without being applied, loudly, and the ones
// around it (in the same batch) are applied.
func TestSkip(t *testing.T) {
	servers := testenv.StartMariaDBs(t, 2)
	src, dst := servers[0], servers[1]
	txns := sourceTxns(t, src,
		"CREATE DATABASE shop", "CREATE TABLE shop.t (id INT PRIMARY KEY, v INT)",
		"INSERT INTO shop.t VALUES (1, 1)", "INSERT INTO shop.t VALUES (2, 2)", "INSERT INTO shop.t VALUES (3, 3)")
	stuck := txns[3].GTID.String()
	// The target already has row 2 with another value: the insert conflicts.
	dst.Exec(t, "CREATE DATABASE shop", "CREATE TABLE shop.t (id INT PRIMARY KEY, v INT)", "INSERT INTO shop.t VALUES (2, 20)")
	var logs strings.Builder
	d, _ := mysqlconn.ParseDSN(dst.DSN())
	s, err := mysqlsink.Open(context.Background(), mysqlsink.Config{DSN: d, Pipeline: "t", DDL: "apply", OnConflict: "stop",
		Skip: []string{stuck}, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	n, err := s.ApplyBatch(context.Background(), "src", txns)
	if err != nil || n != len(txns) {
		t.Fatalf("applied %d of %d: %v", n, len(txns), err)
	}
	if got := rows(t, dst, "SELECT id, v FROM shop.t ORDER BY id"); got != "1,1 2,20 3,3" {
		t.Fatalf("target rows: %q", got)
	}
	st, _, _ := s.Checkpoint(context.Background(), "src")
	if !st.Covers(txns[4]) || !st.Covers(txns[3]) {
		t.Fatalf("checkpoint %s does not cover the skipped and later transactions", st.GTID)
	}
	if !strings.Contains(logs.String(), "SKIPPING a transaction") || !strings.Contains(logs.String(), stuck) {
		t.Fatalf("the skip was not logged:\n%s", logs.String())
	}
}
