package mysql_test

import (
	"context"
	"fmt"
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
	// A failed restart is reported, not ignored: a target left down would
	// otherwise surface later as "connection refused" in an unrelated query.
	// ctx ends the retrying if a restart fails (the target stays down) and
	// is a generous hang guard otherwise.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	restarted := make(chan error, 1)
	go func() {
		for i := 0; i < 4; i++ {
			if i > 0 {
				time.Sleep(700 * time.Millisecond)
				if err := dst.Stop(); err != nil {
					restarted <- err
					cancel()
					return
				}
			}
			time.Sleep(300 * time.Millisecond)
			if err := dst.Start(context.Background()); err != nil {
				restarted <- fmt.Errorf("restart %d of the target: %w", i+1, err)
				cancel()
				return
			}
		}
		restarted <- nil
	}()
	done := 0
	for done < len(txns) {
		end := min(done+64, len(txns))
		n, err := s.ApplyBatch(ctx, "src", txns[done:end])
		done += n
		if err != nil {
			select {
			case rerr := <-restarted:
				if rerr != nil {
					t.Fatal(rerr)
				}
			default:
			}
			st, _, _ := s.Checkpoint(context.Background(), "src")
			t.Fatalf("after %d (%s): %v; checkpoint %s", done, txns[done].GTID, err, st.GTID)
		}
	}
	// The target is up (Start waited for it to answer) before it is counted.
	if err := <-restarted; err != nil {
		t.Fatal(err)
	}
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
