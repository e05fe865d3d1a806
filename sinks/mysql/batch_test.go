package mysql_test

import (
	"context"
	"testing"
	"time"

	"github.com/sluice-cdc/sluice/binlog"
	"github.com/sluice-cdc/sluice/internal/testenv"
)

// TestApplyBatchAcrossTargetRestarts applies a backlog of transfers in
// batches while the target restarts again and again: every transaction
// lands exactly once (a ledger row per transfer would collide otherwise)
// and the checkpoint never moves backwards.
func TestApplyBatchAcrossTargetRestarts(t *testing.T) {
	servers := testenv.StartMariaDBs(t, 2)
	src, dst := servers[0], servers[1]
	src.Exec(t, testenv.LoadSchema("bank", 50)...)
	load := testenv.StartLoad(t, src, "bank", 3)
	time.Sleep(2 * time.Second)
	load.Stop()
	txns := readAll(t, src)
	t.Logf("%d txns", len(txns))
	s := openSink(t, dst, "apply", "stop")
	// The target is down when applying starts (so that applying and the
	// restarts overlap however fast applying is), then restarts 3 times.
	dst.Stop()
	restarted := make(chan struct{})
	go func() {
		defer close(restarted)
		for i := 0; i < 4; i++ {
			if i > 0 {
				time.Sleep(700 * time.Millisecond)
				dst.Stop()
			}
			time.Sleep(300 * time.Millisecond)
			dst.Start(context.Background())
		}
	}()
	done := 0
	for done < len(txns) {
		end := min(done+64, len(txns))
		n, err := s.ApplyBatch(context.Background(), "src", txns[done:end])
		done += n
		if err != nil {
			st, _, _ := s.Checkpoint(context.Background(), "src")
			t.Fatalf("after %d (%s): %v; checkpoint %s", done, txns[done].GTID, err, st.GTID)
		}
	}
	<-restarted
	for _, tb := range testenv.LoadTables("bank") {
		if a, b := src.QueryString(t, "SELECT COUNT(*) FROM "+tb), dst.QueryString(t, "SELECT COUNT(*) FROM "+tb); a != b {
			t.Fatalf("%s: %s rows on the source, %s on the target", tb, a, b)
		}
	}
	if r, _ := s.Stats("src"); r == 0 {
		t.Fatal("no retries: did the target restart during the run?")
	}
}

func mustFilter() *binlog.Filter {
	f, _ := binlog.NewFilter([]string{"bank.*"}, nil)
	return f
}
