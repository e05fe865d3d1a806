package replicator

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/sluice-cdc/sluice/checkpoint"
	natssink "github.com/sluice-cdc/sluice/sinks/nats"
)

// leaser is implemented by sinks that hold a pipeline's lease, so that one
// process at a time writes it (sinks/mysql/lease.go). Any number of
// processes may run the same pipeline: one is active, the others stand by
// without connecting to the sources, and one of them takes over once the
// active one dies, freezes or shuts down.
type leaser interface {
	TryAcquire(ctx context.Context, holder string, ttl time.Duration) (checkpoint.Lease, error)
	Renew(ctx context.Context) error
	Release(ctx context.Context) error
}

// holderName names this process in the lease: host, pid and a random part,
// so that a restarted process is a new holder.
func holderName() string {
	host, _ := os.Hostname()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s:%d:%s", host, os.Getpid(), hex.EncodeToString(b))
}

// superviseLeased runs a pipeline's sources while this process holds the
// pipeline's lease, and stands by while another process does. It returns
// when ctx ends or the sources stop for another reason than a lost lease.
func (r *Replicator) superviseLeased(ctx context.Context, l leaser, ttl time.Duration, runners []*sourceRunner, log *slog.Logger) []error {
	for {
		if !r.standBy(ctx, l, ttl, runners, log) {
			return nil
		}
		active, lose := context.WithCancelCause(ctx)
		renewed := make(chan struct{})
		go func() {
			defer close(renewed)
			keepLease(active, l, ttl, lose, log)
			if isFenced(context.Cause(active)) {
				// At once, while the sources wind down: nothing they
				// still send can commit.
				for _, sr := range runners {
					sr.setRole("standby", "", 0)
				}
			}
		}()
		errs := runSources(active, runners, func(err error) bool {
			if isFenced(err) {
				lose(err)
				return true
			}
			return false
		})
		cause := context.Cause(active)
		lose(nil)
		<-renewed
		if !isFenced(cause) {
			rel, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			if err := l.Release(rel); err != nil {
				log.Warn("could not release the lease; a standby takes over after lease_ttl", "error", err.Error())
			}
			cancel()
			return errs
		}
		log.Warn("lost the pipeline's lease: standing by", "reason", cause.Error())
	}
}

// standBy waits until this process holds the lease (true) or ctx ends
// (false), showing the holder in every source's status meanwhile.
func (r *Replicator) standBy(ctx context.Context, l leaser, ttl time.Duration, runners []*sourceRunner, log *slog.Logger) bool {
	poll := min(time.Second, ttl/4)
	var last checkpoint.Lease
	for {
		lease, err := l.TryAcquire(ctx, r.holder, ttl)
		if err == nil && lease.Mine {
			log.Info("holding the pipeline's lease: active", "holder", r.holder, "epoch", lease.Epoch)
			for _, sr := range runners {
				sr.setRole("active", lease.Holder, lease.Epoch)
			}
			return true
		}
		switch {
		case ctx.Err() != nil:
		case err != nil:
			log.Warn("cannot reach the sink to take the pipeline's lease, retrying", "error", err.Error(), "in", poll)
			for _, sr := range runners {
				sr.setState("reconnecting", err)
			}
		default:
			if lease.Holder != last.Holder || lease.Epoch != last.Epoch {
				log.Info("standing by: another process holds the pipeline", "holder", lease.Holder, "epoch", lease.Epoch)
				last = lease
			}
			for _, sr := range runners {
				sr.setRole("standby", lease.Holder, lease.Epoch)
				sr.setState("standby", nil)
			}
		}
		select {
		case <-ctx.Done():
			for _, sr := range runners {
				sr.setState("stopped", nil)
			}
			return false
		case <-time.After(poll):
		}
	}
}

// keepLease renews the lease every third of its TTL until ctx ends, and
// cancels ctx with ErrFenced once it cannot.
func keepLease(ctx context.Context, l leaser, ttl time.Duration, lose context.CancelCauseFunc, log *slog.Logger) {
	tick := time.NewTicker(ttl / 3)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		rctx, cancel := context.WithTimeout(ctx, ttl/3)
		err := l.Renew(rctx)
		cancel()
		if err != nil && ctx.Err() == nil {
			log.Warn("could not renew the pipeline's lease: stopping the sources", "error", err.Error())
			if !isFenced(err) {
				err = fmt.Errorf("%w: %w", checkpoint.ErrFenced, err)
			}
			lose(err)
			return
		}
	}
}

// runSources runs a pipeline's sources until each has stopped and returns
// their errors, except those that handled claims (a lost lease).
func runSources(ctx context.Context, runners []*sourceRunner, handled func(error) bool) []error {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for _, sr := range runners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := sr.run(ctx)
			if err == nil || (handled != nil && handled(err)) {
				return
			}
			sr.log.Error("source stopped", "error", err.Error())
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return errs
}

// isFenced reports whether err means another process holds the pipeline's
// lease, whichever sink said so (each sink's ErrFenced wraps checkpoint's).
func isFenced(err error) bool { return errors.Is(err, checkpoint.ErrFenced) }

// sinkLeaser returns the sink's lease, or false when it has none: a NATS
// sink on a server or stream that cannot fence publishes runs unleased,
// as one process, with a warning.
func sinkLeaser(sink Sink, log *slog.Logger) (leaser, bool) {
	if ns, ok := sink.(*natssink.Sink); ok {
		if err := ns.LeaseSupport(); err != nil {
			log.Warn("no lease for this NATS pipeline, so no standbys or fencing: run one process for it", "reason", err.Error())
			return nil, false
		}
		return ns, true
	}
	l, ok := sink.(leaser)
	return l, ok
}
