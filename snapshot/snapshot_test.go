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
