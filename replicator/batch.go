package replicator

import (
	"context"

	"github.com/sluice-cdc/sluice/binlog"
	"github.com/sluice-cdc/sluice/checkpoint"
)

// maxBatch and maxBatchBytes bound a run of transactions handed to the
// sink at once (the MySQL sink applies a run on several connections, and
// waits for the run's end before the next).
const (
	maxBatch      = 512
	maxBatchBytes = 32 << 20
)

// endsRun: a DDL, or a transaction after which the schema changed (its
// DDL may have been filtered out), is handed to the sink alone, after its
// schema version is saved.
func endsRun(t *binlog.Txn) bool { return t.DDL != nil || t.Catalog != nil }

func closeAll(txns []*binlog.Txn) {
	for _, t := range txns {
		t.Close()
	}
}

// applyRun applies a run of transactions. Filtered-out (empty) ones only
// move the checkpoint: those followed by a real transaction are covered by
// its checkpoint; a trailing one is kept in *pendingEmpty and written when
// the source goes idle.
func (r *sourceRunner) applyRun(ctx context.Context, batch []*binlog.Txn, pendingEmpty **binlog.Txn) error {
	var real []*binlog.Txn
	for _, t := range batch {
		if t.Len() == 0 && t.DDL == nil {
			if *pendingEmpty != nil {
				(*pendingEmpty).Close()
			}
			*pendingEmpty = t
			continue
		}
		if *pendingEmpty != nil { // covered by t's checkpoint
			(*pendingEmpty).Close()
			*pendingEmpty = nil
		}
		real = append(real, t)
	}
	if len(real) == 0 {
		return nil
	}
	defer closeAll(real)
	return r.applyBatch(ctx, real)
}

// batchSink is implemented by sinks that apply runs of transactions.
type batchSink interface {
	ApplyBatch(ctx context.Context, source string, txns []*binlog.Txn) (int, error)
}

func (r *sourceRunner) applyBatch(ctx context.Context, txns []*binlog.Txn) error {
	if bs, ok := r.sink.(batchSink); ok {
		n, err := bs.ApplyBatch(ctx, r.cfg.Name, txns)
		for _, t := range txns[:n] {
			r.applied1(t)
		}
		return err
	}
	for _, t := range txns {
		if err := r.sink.Apply(ctx, r.cfg.Name, t); err != nil {
			return err
		}
		r.applied1(t)
	}
	return nil
}

// applied1 records one applied transaction in the metrics and status.
func (r *sourceRunner) applied1(t *binlog.Txn) {
	labels := []string{r.pipeline.Name, r.cfg.Name}
	if t.DDL != nil {
		r.metrics.ddl.WithLabelValues(labels...).Inc()
	}
	if t.Len() > 0 || t.DDL != nil {
		r.metrics.txns.WithLabelValues(labels...).Inc()
		r.metrics.rows.WithLabelValues(labels...).Add(float64(t.Len()))
	}
	r.metrics.bytes.WithLabelValues(labels...).Add(float64(t.Size))
	r.mu.Lock()
	r.applied = checkpoint.After(t)
	r.lastTxnTS = t.Timestamp
	if t.Len() > 0 || t.DDL != nil {
		r.status.Applied++
		r.status.Rows += uint64(t.Len())
	}
	r.mu.Unlock()
}

// handledQuiet counts the last quiet transaction as handled, when nothing
// read before it waits (the queue is empty) and no checkpoint covers it.
func (r *sourceRunner) handledQuiet() {
	q := r.lastQuiet.Swap(nil)
	if q == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.applied.Covers(q) {
		r.applied = checkpoint.After(q)
	}
}
