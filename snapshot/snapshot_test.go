package snapshot_test

import (
	"testing"

	"github.com/sluice-cdc/sluice/binlog"
	"github.com/sluice-cdc/sluice/internal/testenv"
)

func mustFilter(t testing.TB, include ...string) *binlog.Filter {
	t.Helper()
	f, err := binlog.NewFilter(include, nil)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestSnapshotMillionRows copies 1,000,000 rows (about 200 MB of values)
// with the heap in use staying far below the table's size: chunks are
// streamed, never a table held.
func TestSnapshotMillionRows(t *testing.T) {
	servers := testenv.StartMariaDBs(t, 2)
	src, dst := servers[0], servers[1]
	benchTables(t, src, "big", 1000000)
	_, peak := runSnapshot(t, src, dst, "big", "million", 4, 4)
	tables := []string{"big.sbtest1", "big.sbtest2", "big.sbtest3", "big.sbtest4"}
	if a, b := src.Checksums(t, tables...), dst.Checksums(t, tables...); a != b {
		t.Fatalf("checksums differ:\nsource %s\ntarget %s", a, b)
	}
	t.Logf("peak heap in use: %d MiB", peak>>20)
	if limit := uint64(128 << 20); peak > limit {
		t.Fatalf("peak heap in use %d MiB during the snapshot of 1,000,000 rows, want under %d MiB", peak>>20, limit>>20)
	}
}

// TestSnapshotWideRows copies rows of 2 MB, which a chunk of the minimum
// row count and a multi-row INSERT could not carry under the target's
// max_allowed_packet: statements are split to fit.
func TestSnapshotWideRows(t *testing.T) {
	servers := testenv.StartMariaDBs(t, 2)
	src, dst := servers[0], servers[1]
	src.Exec(t, "CREATE DATABASE wide", "CREATE TABLE wide.blobs (id INT PRIMARY KEY, b LONGBLOB, t LONGTEXT)",
		"INSERT INTO wide.blobs SELECT seq, REPEAT(UNHEX(LPAD(HEX(seq), 2, '0')), 1 << 21), REPEAT('é', seq * 1000) FROM wide.seq_1_to_30")
	runSnapshot(t, src, dst, "wide", "wide", 2, 2)
	if a, b := src.Checksums(t, "wide.blobs"), dst.Checksums(t, "wide.blobs"); a != b {
		t.Fatalf("checksums differ:\nsource %s\ntarget %s", a, b)
	}
}

// TestSnapshotGTIDPosOnce copies 4 tables of an idle source, so that
// their snapshots share one binlog position: the source runs
// BINLOG_GTID_POS, which reads the binlog file up to the position, once
// (its general log counts the calls), not once per table.
func TestSnapshotGTIDPosOnce(t *testing.T) {
	servers := testenv.StartMariaDBs(t, 2)
	src, dst := servers[0], servers[1]
	benchTables(t, src, "idle", 4000)
	src.Exec(t, "SET GLOBAL log_output = 'TABLE'", "TRUNCATE mysql.general_log", "SET GLOBAL general_log = 1")
	runSnapshot(t, src, dst, "idle", "idle", 4, 4)
	src.Exec(t, "SET GLOBAL general_log = 0")
	tables := []string{"idle.sbtest1", "idle.sbtest2", "idle.sbtest3", "idle.sbtest4"}
	if a, b := src.Checksums(t, tables...), dst.Checksums(t, tables...); a != b {
		t.Fatalf("checksums differ:\nsource %s\ntarget %s", a, b)
	}
	if n := src.QueryString(t, "SELECT COUNT(*) FROM mysql.general_log WHERE command_type IN ('Query', 'Execute') AND argument LIKE 'SELECT BINLOG_GTID_POS%'"); n != "1" {
		t.Fatalf("the source ran BINLOG_GTID_POS %s times for 4 tables at one position, want 1", n)
	}
}
