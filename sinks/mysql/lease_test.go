package mysql_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sluice-cdc/sluice/checkpoint"
	"github.com/sluice-cdc/sluice/internal/testenv"
	mysqlsink "github.com/sluice-cdc/sluice/sinks/mysql"
)

// TestLeaseFencing: two sinks of one pipeline on one target. Only one holds
// the lease; once the other takes it over (the first one's lease
// connection died: a crash or a freeze past the TTL), the first one can
// commit nothing, its checkpoint write is refused, and the checkpoint never
// goes backwards.
func TestLeaseFencing(t *testing.T) {
	servers := testenv.StartMariaDBs(t, 2)
	src, dst := servers[0], servers[1]
	ctx := context.Background()
	txns := sourceTxns(t, src,
		"CREATE DATABASE shop", "CREATE TABLE shop.t (id INT PRIMARY KEY, v INT)",
		"INSERT INTO shop.t VALUES (1, 1)", "INSERT INTO shop.t VALUES (2, 2)", "INSERT INTO shop.t VALUES (3, 3)")
	a, b := openSink(t, dst, "apply", "stop"), openSink(t, dst, "apply", "stop")
	const ttl = 2 * time.Second

	la, err := a.TryAcquire(ctx, "a", ttl)
	if err != nil || !la.Mine || la.Epoch != 1 || la.Holder != "a" {
		t.Fatalf("first acquire: %+v, %v", la, err)
	}
	lb, err := b.TryAcquire(ctx, "b", ttl)
	if err != nil || lb.Mine || lb.Holder != "a" || lb.Epoch != 1 {
		t.Fatalf("second acquire while a holds the lease: %+v, %v", lb, err)
	}
	if err := a.Renew(ctx); err != nil {
		t.Fatalf("renew: %v", err)
	}
	if err := applyAll(t, a, txns[:3]); err != nil {
		t.Fatalf("a applies while it holds the lease: %v", err)
	}

	// a's lease connection dies (as when the server closes a frozen
	// process's idle session); b takes over with a new epoch.
	holder := dst.QueryString(t, "SELECT IS_USED_LOCK(CONCAT('sluice:', LEFT(SHA2('t', 256), 40)))")
	dst.Exec(t, "KILL "+holder)
	var lb2 = lb
	deadline := time.Now().Add(time.Minute)
	for !lb2.Mine && time.Now().Before(deadline) {
		if lb2, err = b.TryAcquire(ctx, "b", ttl); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !lb2.Mine || lb2.Epoch != 2 || lb2.Holder != "b" {
		t.Fatalf("takeover: %+v", lb2)
	}
	before, _, _ := b.Checkpoint(ctx, "src")
	if err := applyAll(t, a, txns[3:]); !errors.Is(err, mysqlsink.ErrFenced) {
		t.Fatalf("a applied after losing its lease: %v", err)
	}
	if got := rows(t, dst, "SELECT id FROM shop.t ORDER BY id"); got != "1" {
		t.Fatalf("target rows after a fenced apply: %q", got)
	}
	after, _, _ := b.Checkpoint(ctx, "src")
	if after.GTID.String() != before.GTID.String() {
		t.Fatalf("a fenced apply moved the checkpoint: %s -> %s", before.GTID, after.GTID)
	}
	if err := a.Renew(ctx); !errors.Is(err, mysqlsink.ErrFenced) {
		t.Fatalf("a renews a lease it lost: %v", err)
	}
	if err := applyAll(t, b, txns[3:]); err != nil {
		t.Fatalf("b resumes: %v", err)
	}
	if got := rows(t, dst, "SELECT id FROM shop.t ORDER BY id"); got != "1 2 3" {
		t.Fatalf("target rows after b resumed: %q", got)
	}
	// A clean release hands over at once.
	if err := b.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if la, err = a.TryAcquire(ctx, "a", ttl); err != nil || !la.Mine || la.Epoch != 3 {
		t.Fatalf("acquire after release: %+v, %v", la, err)
	}
}

// TestLeaseConcurrentAcquire: processes racing for a free lease; exactly
// one wins, with a non-zero epoch, whatever the interleaving.
func TestLeaseConcurrentAcquire(t *testing.T) {
	dst := testenv.StartMariaDBs(t, 1)[0]
	for round := range 10 {
		var sinks []*mysqlsink.Sink
		for range 3 {
			sinks = append(sinks, openSink(t, dst, "apply", "stop"))
		}
		if round%2 == 0 {
			// A first run: no lease row yet.
			dst.Exec(t, "DELETE FROM sluice.lease")
		}
		var wg sync.WaitGroup
		res := make([]checkpoint.Lease, len(sinks))
		for i, s := range sinks {
			wg.Add(1)
			go func() {
				defer wg.Done()
				l, err := s.TryAcquire(context.Background(), fmt.Sprint("p", i), 3*time.Second)
				if err != nil {
					t.Error(err)
				}
				res[i] = l
			}()
		}
		wg.Wait()
		mine := 0
		for i, l := range res {
			if l.Mine {
				mine++
				if l.Epoch == 0 || l.Holder != fmt.Sprint("p", i) || sinks[i].Epoch() != l.Epoch {
					t.Fatalf("round %d: winner %d has %+v, sink epoch %d", round, i, l, sinks[i].Epoch())
				}
			} else if sinks[i].Epoch() != 0 {
				t.Fatalf("round %d: loser %d has epoch %d", round, i, sinks[i].Epoch())
			}
		}
		if mine != 1 {
			t.Fatalf("round %d: %d winners: %+v", round, mine, res)
		}
		for _, s := range sinks {
			s.Release(context.Background())
			s.Close()
		}
	}
}
