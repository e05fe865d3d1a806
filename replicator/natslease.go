package replicator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	mysqlsink "github.com/sluice-cdc/sluice/sinks/mysql"
	natssink "github.com/sluice-cdc/sluice/sinks/nats"
)

// natsLeaser gives a NATS sink's lease (sinks/nats/lease.go: a KV key with
// a TTL, and epoch markers in the stream that fence every publish) the
// leaser interface.
type natsLeaser struct{ s *natssink.Sink }

func (n natsLeaser) TryAcquire(ctx context.Context, holder string, ttl time.Duration) (mysqlsink.Lease, error) {
	l, err := n.s.TryAcquire(ctx, holder, ttl)
	return mysqlsink.Lease{Holder: l.Holder, Epoch: l.Epoch, Acquired: l.Acquired, Mine: l.Mine}, asFenced(err)
}

func (n natsLeaser) Renew(ctx context.Context) error   { return asFenced(n.s.Renew(ctx)) }
func (n natsLeaser) Release(ctx context.Context) error { return n.s.Release(ctx) }

// asFenced makes the NATS sink's ErrFenced one the lease loop knows.
func asFenced(err error) error {
	if errors.Is(err, natssink.ErrFenced) && !errors.Is(err, mysqlsink.ErrFenced) {
		return fmt.Errorf("%w: %w", mysqlsink.ErrFenced, err)
	}
	return err
}

// isFenced reports whether err means another process holds the pipeline's
// lease, whichever sink said so.
func isFenced(err error) bool {
	return errors.Is(err, mysqlsink.ErrFenced) || errors.Is(err, natssink.ErrFenced)
}

// sinkLeaser returns the sink's lease, or false when it has none: a NATS
// sink on a server or stream that cannot fence publishes runs unleased,
// as one process, with a warning.
func sinkLeaser(sink Sink, log *slog.Logger) (leaser, bool) {
	if ns, ok := sink.(*natssink.Sink); ok {
		if err := ns.LeaseSupport(); err != nil {
			log.Warn("no lease for this NATS pipeline, so no standbys or fencing: run one process for it", "reason", err.Error())
			return nil, false
		}
		return natsLeaser{ns}, true
	}
	l, ok := sink.(leaser)
	return l, ok
}
