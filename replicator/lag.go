package replicator

import (
	"context"
	"time"

	"github.com/sluice-cdc/sluice/binlog"
)

// pollLag compares the source's executed set and position with what is
// applied, every few seconds.
func (r *sourceRunner) pollLag(ctx context.Context, src *binlog.LiveSource) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(2 * time.Second)
		defer tick.Stop()
		for {
			// Bounded: a source that stops answering must not hold up the
			// state refresh below.
			ictx, cancel := context.WithTimeout(ctx, 5*time.Second)
			info, err := binlog.Inspect(ictx, src.DB(), r.cfg.Conn)
			cancel()
			if err == nil {
				r.mu.Lock()
				r.status.SourceGTID = info.Executed.String()
				r.status.SourcePos = info.Current.String()
				if info.GTIDMode {
					r.status.LagTransactions = r.applied.GTID.CountMissing(info.Executed)
				} else if r.applied.Pos.Compare(info.Current) >= 0 {
					r.status.LagTransactions = 0
				}
				r.mu.Unlock()
			}
			r.mu.Lock()
			if src.State() == "reconnecting" {
				r.status.State = "reconnecting"
			} else if r.status.State == "reconnecting" {
				r.status.State = "streaming"
			}
			r.mu.Unlock()
			r.updateGauges()
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return done
}

// updateGauges computes lag and checkpoint age.
func (r *sourceRunner) updateGauges() {
	r.mu.Lock()
	lag := 0.0
	if r.status.LagTransactions > 0 && !r.lastTxnTS.IsZero() {
		lag = max(time.Since(r.lastTxnTS).Seconds(), 0)
	}
	r.status.LagSeconds = lag
	// How long the checkpoint has stood while the source has transactions
	// it does not cover: 0 on an idle pipeline that is caught up, so an
	// alert on it fires only when work is waiting.
	age := 0.0
	if r.status.LagTransactions > 0 && !r.applied.Updated.IsZero() {
		age = time.Since(r.applied.Updated).Seconds()
	}
	lagTxns := float64(r.status.LagTransactions)
	r.mu.Unlock()
	labels := []string{r.pipeline.Name, r.cfg.Name}
	r.metrics.lagSeconds.WithLabelValues(labels...).Set(lag)
	r.metrics.lagTxns.WithLabelValues(labels...).Set(lagTxns)
	r.metrics.ckptAge.WithLabelValues(labels...).Set(age)
	sinkUp := 1.0
	if h, ok := r.sink.(sinkHealth); ok && h.Health(r.cfg.Name) != nil {
		sinkUp = 0
	}
	r.metrics.sinkUp.WithLabelValues(labels...).Set(sinkUp)
	if st, ok := r.sink.(sinkStats); ok {
		retries, conflicts := st.Stats(r.cfg.Name)
		r.mu.Lock()
		dr, dc := retries-r.seenRetries, conflicts-r.seenConflicts
		r.seenRetries, r.seenConflicts = retries, conflicts
		r.mu.Unlock()
		r.metrics.retries.WithLabelValues(labels...).Add(float64(dr))
		r.metrics.conflicts.WithLabelValues(labels...).Add(float64(dc))
	}
}
