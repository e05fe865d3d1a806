package replicator_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/sluice-cdc/sluice/internal/testenv"
)

// BenchmarkReplicateVsNativeReplica applies the same backlog of a mixed
// OLTP write load (transfers, random changes over 4 tables) with sluice and
// with MariaDB's own replication (a replica's SQL thread), in one run, and
// reports both rates and their ratio (> 1: sluice is faster):
//
//	go test ./replicator -run '^$' -bench ReplicateVsNativeReplica -benchtime 1x
func BenchmarkReplicateVsNativeReplica(b *testing.B) {
	const seconds = 15
	t := &testing.T{}
	_ = t
	servers := testenv.StartMariaDBs(b, 3)
	src, dstSluice, dstNative := servers[0], servers[1], servers[2]
	src.Exec(b, testenv.LoadSchema("bank", 200)...)
	load := testenv.StartLoad(b, src, "bank", 4)
	time.Sleep(seconds * time.Second)
	load.Stop()
	txns := load.Txns.Load()
	target := src.QueryString(b, "SELECT @@gtid_binlog_pos")

	for b.Loop() {
		// MariaDB's replica: the IO thread fetches the whole backlog first,
		// then the SQL thread's apply is timed alone.
		dstNative.Exec(b, "SET GLOBAL gtid_slave_pos = ''",
			fmt.Sprintf("CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=%d, MASTER_USER='root', MASTER_USE_GTID=slave_pos", src.Port),
			"START SLAVE IO_THREAD")
		waitFor(b, func() bool {
			return dstNative.QueryString(b, "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME='SLAVE_RECEIVED_HEARTBEATS'") != "" &&
				relayComplete(b, dstNative, target)
		})
		start := time.Now()
		dstNative.Exec(b, "START SLAVE SQL_THREAD")
		waitFor(b, func() bool { return dstNative.QueryString(b, "SELECT @@gtid_slave_pos") == target })
		native := time.Since(start)

		cfg := testenv.LoadConfig(b, fmt.Sprintf(`
http: {listen: "off"}
pipelines:
  - name: bench
    sources: [{name: primary, dsn: "%s", start: oldest, include: ["bank.*"]}]
    sink: {type: mysql, dsn: "%s"}
`, src.DSN(), dstSluice.DSN()))
		start = time.Now()
		if err := testenv.RunToEnd(b, cfg); err != nil {
			b.Fatal(err)
		}
		sluice := time.Since(start)

		if a, c := src.Checksums(b, testenv.LoadTables("bank")...), dstSluice.Checksums(b, testenv.LoadTables("bank")...); a != c {
			b.Fatalf("sluice's target differs: %s vs %s", a, c)
		}
		b.ReportMetric(float64(txns)/sluice.Seconds(), "sluice-txn/s")
		b.ReportMetric(float64(txns)/native.Seconds(), "native-txn/s")
		b.ReportMetric(native.Seconds()/sluice.Seconds(), "ratio")
		fmt.Printf("backlog %d transactions: sluice %.2fs (%.0f txn/s), MariaDB replica SQL thread %.2fs (%.0f txn/s); ratio %.2f\n",
			txns, sluice.Seconds(), float64(txns)/sluice.Seconds(), native.Seconds(), float64(txns)/native.Seconds(), native.Seconds()/sluice.Seconds())
	}
}

func relayComplete(b *testing.B, m *testenv.MariaDB, target string) bool {
	rows, err := m.DB(b).Query("SHOW SLAVE STATUS")
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	if !rows.Next() {
		return false
	}
	vals := make([]*string, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	rows.Scan(ptrs...)
	for i, c := range cols {
		if c == "Gtid_IO_Pos" && vals[i] != nil {
			return *vals[i] == target
		}
	}
	return false
}

func waitFor(b *testing.B, cond func() bool) {
	deadline := time.Now().Add(10 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			b.Fatal("timed out")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
