package nats_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"

	"github.com/sluice-cdc/sluice/internal/testenv"
	natssink "github.com/sluice-cdc/sluice/sinks/nats"
)

// TestUnacknowledgedRunNotCounted: a run whose wait for its
// acknowledgements ends with a publish still pending, and none failed, is
// not counted as published. The sink's transaction subject is outside its
// stream and a core NATS subscriber takes the messages and never answers,
// so no acknowledgement, and no "no responders" failure, comes back.
//
//   - deadline: the wait's limit (60s, here shortened) expires; the run
//     must be published again, not returned as done, and the expired
//     publish must not stay pending (the client has no acknowledgement
//     timeout of its own);
//   - cancel: ctx ends during the wait (a pipeline stopping); ApplyBatch
//     must return 0 transactions done, or the replicator records the run
//     as applied.
func TestUnacknowledgedRunNotCounted(t *testing.T) {
	for _, c := range []struct {
		name string
		// limit is the wait's limit; receipts is how many copies of the
		// message the subscriber takes before ctx is cancelled.
		limit    time.Duration
		receipts int
	}{
		// A second copy is the retry after the first wait expired.
		{name: "deadline", limit: 100 * time.Millisecond, receipts: 2},
		{name: "cancel", limit: time.Hour, receipts: 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			defer natssink.SetAsyncWaitLimit(c.limit)()
			n := testenv.StartNATS(t)
			nc, err := natsgo.Connect(n.URL())
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			got := make(chan *natsgo.Msg, 16)
			if _, err := nc.ChanSubscribe("cdc._txn", got); err != nil {
				t.Fatal(err)
			}
			if err := nc.Flush(); err != nil {
				t.Fatal(err)
			}
			sink, err := natssink.Open(context.Background(), natssink.Config{URL: n.URL(), Pipeline: "p", Stream: "S", CreateStream: true,
				StreamSubjects: []string{"other.>"}, Subject: "cdc.{schema}.{table}", Format: "sluice", Mode: "transaction",
				Checkpoint: "stream", Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			defer sink.Close()

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			type result struct {
				n   int
				err error
			}
			done := make(chan result, 1)
			go func() {
				n, err := sink.ApplyBatch(ctx, "primary", benchTxns(1, 3))
				done <- result{n, err}
			}()
			for range c.receipts {
				select {
				case <-got:
				case r := <-done:
					t.Fatalf("ApplyBatch returned (%d, %v) with its publish never acknowledged", r.n, r.err)
				}
			}
			// Once a wait expired, what it waited for is failed, not left
			// pending: only the retry's publish is.
			if c.receipts > 1 {
				if n := sink.PendingAcks(); n != 1 {
					t.Errorf("%d publishes pending after the retry's, want 1 (the expired wait's abandoned)", n)
				}
			}
			cancel()
			r := <-done
			if r.n != 0 || !errors.Is(r.err, context.Canceled) {
				t.Fatalf("ApplyBatch returned (%d, %v) for a run never acknowledged; want 0 done and context.Canceled", r.n, r.err)
			}
		})
	}
}
