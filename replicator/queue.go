package replicator

import (
	"context"
	"sync"
)

// The transactions decoded ahead of the sink are bounded by their memory
// (binlog.Txn.HeapBytes; a transaction larger than the spill threshold
// holds only its file's buffer) and, for many tiny ones, by count.
const (
	queueBytes = 256 << 20
	queueSize  = 4096
)

// byteBudget bounds the bytes in a queue: the reader acquires a
// transaction's bytes before queueing it, the applier releases them when it
// takes it. A transaction larger than the whole budget passes alone.
type byteBudget struct {
	mu      sync.Mutex
	used    int64
	limit   int64
	changed chan struct{}
}

func newByteBudget(limit int64) *byteBudget {
	return &byteBudget{limit: limit, changed: make(chan struct{})}
}

func (b *byteBudget) acquire(ctx context.Context, n int64) error {
	for {
		b.mu.Lock()
		if b.used == 0 || b.used+n <= b.limit {
			b.used += n
			b.mu.Unlock()
			return nil
		}
		ch := b.changed
		b.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (b *byteBudget) release(n int64) {
	b.mu.Lock()
	b.used -= n
	close(b.changed)
	b.changed = make(chan struct{})
	b.mu.Unlock()
}
