package nats_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluice-cdc/sluice/binlog"
	"github.com/sluice-cdc/sluice/checkpoint"
	"github.com/sluice-cdc/sluice/internal/testenv"
	natssink "github.com/sluice-cdc/sluice/sinks/nats"
)

func openLeaseSink(t *testing.T, url, mode, checkpoint string) *natssink.Sink {
	t.Helper()
	s, err := natssink.Open(context.Background(), natssink.Config{URL: url, Pipeline: "leased", Stream: "CDC", CreateStream: true,
		Subject: "cdc.{schema}.{table}", DDLSubject: "cdc._ddl", Format: "sluice", Mode: mode, Checkpoint: checkpoint, KVBucket: "sluice_checkpoints",
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.LeaseSupport(); err != nil {
		t.Fatal(err)
	}
	return s
}

// waitAcquire polls TryAcquire until s holds the lease (the key of a
// holder that stopped renewing expires on the server after its TTL).
func waitAcquire(t *testing.T, s *natssink.Sink, holder string, ttl time.Duration) checkpoint.Lease {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(ttl + 30*time.Second)
	for {
		l, err := s.TryAcquire(ctx, holder, ttl)
		if err != nil {
			t.Fatal(err)
		}
		if l.Mine {
			return l
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never got the lease; held by %s epoch %d", holder, l.Holder, l.Epoch)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestLeaseAcquireRenewRelease: one holder at a time, renewals keep it,
// a release hands it over at once with the next epoch.
func TestLeaseAcquireRenewRelease(t *testing.T) {
	n := testenv.StartNATS(t)
	ctx := context.Background()
	a, b := openLeaseSink(t, n.URL(), "transaction", "stream"), openLeaseSink(t, n.URL(), "transaction", "stream")
	la, err := a.TryAcquire(ctx, "a", time.Minute)
	if err != nil || !la.Mine || la.Epoch == 0 || la.Holder != "a" {
		t.Fatalf("first acquire: %+v %v", la, err)
	}
	lb, err := b.TryAcquire(ctx, "b", time.Minute)
	if err != nil || lb.Mine || lb.Holder != "a" || lb.Epoch != la.Epoch {
		t.Fatalf("second process: %+v %v, want a standby seeing a at epoch %d", lb, err, la.Epoch)
	}
	if err := b.Renew(ctx); !errors.Is(err, natssink.ErrFenced) {
		t.Fatalf("renew without the lease: %v", err)
	}
	for range 3 {
		if err := a.Renew(ctx); err != nil {
			t.Fatalf("renew: %v", err)
		}
	}
	if l, ok, err := b.LeaseHolder(ctx); err != nil || !ok || l.Holder != "a" || l.Mine {
		t.Fatalf("LeaseHolder: %+v %v %v", l, ok, err)
	}
	if err := a.Release(ctx); err != nil {
		t.Fatal(err)
	}
	lb, err = b.TryAcquire(ctx, "b", time.Minute)
	if err != nil || !lb.Mine || lb.Epoch <= la.Epoch {
		t.Fatalf("after a release: %+v %v, want b at an epoch after %d", lb, err, la.Epoch)
	}
	if err := a.Renew(ctx); !errors.Is(err, natssink.ErrFenced) {
		t.Fatalf("renew after release: %v", err)
	}
}

// TestLeaseFencing freezes a holder (it stops renewing, as a paused
// process does), lets its key expire and another sink take over, then
// lets the old one publish. The sink checks nothing before publishing: the
// stream itself refuses every message of the old epoch, in single
// publishes, atomic batches and the KV checkpoint, and the new holder
// resumes exactly after what the old one got stored.
func TestLeaseFencing(t *testing.T) {
	for _, c := range []struct{ mode, checkpoint string }{
		{"transaction", "stream"},
		{"row", "kv"}, // rows of a transaction as one atomic batch
	} {
		t.Run(c.mode+"/"+c.checkpoint, func(t *testing.T) {
			n := testenv.StartNATS(t)
			ctx := context.Background()
			all := benchTxns(9, 3)
			txns := all[:8]
			old := openLeaseSink(t, n.URL(), c.mode, c.checkpoint)
			first := waitAcquire(t, old, "old", time.Second)
			if _, err := old.ApplyBatch(ctx, "primary", txns[:3]); err != nil {
				t.Fatal(err)
			}
			// old is frozen now: no renewals. Its key expires.
			next := openLeaseSink(t, n.URL(), c.mode, c.checkpoint)
			if l := waitAcquire(t, next, "next", time.Minute); l.Epoch <= first.Epoch {
				t.Fatalf("takeover epoch %d, want more than %d", l.Epoch, first.Epoch)
			}
			st, ok, err := next.Checkpoint(ctx, "primary")
			if err != nil || !ok || st.GTID.String() != txns[2].Executed.String() {
				t.Fatalf("the new holder resumes at %s (%v %v), want %s", st.GTID, ok, err, txns[2].Executed)
			}
			// The old process wakes up and publishes what it had queued.
			_, err = old.ApplyBatch(ctx, "primary", txns[3:5])
			if !errors.Is(err, natssink.ErrFenced) {
				t.Fatalf("a fenced publish: %v, want ErrFenced", err)
			}
			if err := old.Renew(ctx); !errors.Is(err, natssink.ErrFenced) {
				t.Fatalf("the old holder renewed: %v", err)
			}
			if _, err := next.ApplyBatch(ctx, "primary", txns[3:]); err != nil {
				t.Fatal(err)
			}
			// Late, the old one publishes again: what is ahead is refused;
			// what is in the stream already stays once (by its Msg-Id, or
			// refused), and its checkpoint does not go back.
			if _, err := old.ApplyBatch(ctx, "primary", all[8:]); !errors.Is(err, natssink.ErrFenced) {
				t.Fatalf("a fenced publish: %v, want ErrFenced", err)
			}
			if _, err := old.ApplyBatch(ctx, "primary", txns[1:2]); err != nil && !errors.Is(err, natssink.ErrFenced) {
				t.Fatal(err)
			}
			checkExactlyOnce(t, readStreamAll(t, n.URL(), "CDC"), txns, 3)
			if c.checkpoint == "kv" {
				nc, js := connectJS(t, n.URL())
				defer nc.Close()
				kv, err := js.KeyValue(ctx, "sluice_checkpoints")
				if err != nil {
					t.Fatal(err)
				}
				e, err := kv.Get(ctx, "leased.primary")
				if err != nil || !strings.Contains(string(e.Value()), `"0-1-8"`) {
					t.Fatalf("the KV checkpoint went back: %s %v", e.Value(), err)
				}
			}
			st, _, err = next.Checkpoint(ctx, "primary")
			if err != nil || st.GTID.String() != txns[7].Executed.String() {
				t.Fatalf("checkpoint %s %v, want %s", st.GTID, err, txns[7].Executed)
			}
		})
	}
}

// checkExactlyOnce requires every transaction's rows once, in order, and
// exactly two epoch markers.
func checkExactlyOnce(t *testing.T, msgs []stored, txns []*binlog.Txn, rows int) {
	t.Helper()
	got := map[string]int{}
	var order []string
	markers := 0
	for _, m := range msgs {
		switch m.header.Get(natssink.HdrOp) {
		case "lease":
			markers++
			continue
		case "position":
			continue
		case "transaction":
			got[m.header.Get(natssink.HdrGTID)] += rows
		default:
			got[m.header.Get(natssink.HdrGTID)]++
		}
		if g := m.header.Get(natssink.HdrGTID); len(order) == 0 || order[len(order)-1] != g {
			order = append(order, g)
		}
	}
	if markers != 2 {
		t.Errorf("%d epoch markers, want 2", markers)
	}
	for i, tx := range txns {
		g := tx.GTID.String()
		if got[g] != rows {
			t.Errorf("transaction %s: %d rows in the stream, want %d", g, got[g], rows)
		}
		if i >= len(order) || order[i] != g {
			t.Errorf("order: %v", order)
			break
		}
	}
	if len(order) != len(txns) {
		t.Errorf("%d transactions in the stream, want %d", len(order), len(txns))
	}
}

// TestLeaseSupport: a stream whose subjects do not take the lease subject
// gets no lease (the pipeline then runs unleased, with a warning), and
// says what to add.
func TestLeaseSupport(t *testing.T) {
	n := testenv.StartNATS(t)
	ctx := context.Background()
	nc, js := connectJS(t, n.URL())
	defer nc.Close()
	for i, c := range []struct {
		prefix   string
		subjects []string
		want     string // "" for supported
	}{
		{"a", []string{"a.>"}, ""},
		{"b", []string{"b.*.*", "b._txn"}, ""},
		{"c", []string{"c.shop.>", "c._txn"}, "the lease subject c._lease.leased is not among stream"},
	} {
		name := fmt.Sprintf("S%d", i)
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: c.subjects}); err != nil {
			t.Fatal(err)
		}
		s, err := natssink.Open(ctx, natssink.Config{URL: n.URL(), Pipeline: "leased", Stream: name, Subject: c.prefix + ".{schema}.{table}",
			Format: "sluice", Checkpoint: "stream", Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		err = s.LeaseSupport()
		s.Close()
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("subjects %v: %v, want %q", c.subjects, err, c.want)
		}
	}
}
