package nats

import (
	"context"
	"fmt"
	"time"

	natsgo "github.com/nats-io/nats.go"

	"github.com/sluice-cdc/sluice/backoff"
	"github.com/sluice-cdc/sluice/binlog"
	"github.com/sluice-cdc/sluice/checkpoint"
)

// With checkpoint: stream, where a source resumes is its last message in
// the stream. A source whose transactions publish nothing (every change
// filtered out, or no change since the pipeline started) would leave
// nothing to resume from: a restart would take start: again (current:
// the end of the binlog, skipping whatever was written meanwhile), or
// resume from an old message and re-read binlogs that may be purged by
// then. So the sink publishes a position record, as Debezium publishes
// heartbeats: once a run ends while the stream holds nothing of the
// source, and at most every positionEvery while the source's runs publish
// nothing else. It goes on "<subject prefix>_position.<pipeline>.<source>"
// with Sluice-Op: position and the checkpoint headers of a transaction's
// last message, which is all recovery reads (scan); consumers skip it as
// they skip lease markers. With checkpoint: kv the bucket already holds
// every run's end.
var positionEvery = time.Minute

// positionSubject is where a source's position records go.
func (s *Sink) positionSubject(source string) string {
	return subjectPrefix(s.cfg.Subject) + "_position." + tokenCleaner.Replace(s.cfg.Pipeline) + "." + tokenCleaner.Replace(source)
}

// keepPosition runs at the end of a run whose transactions are all
// acknowledged; t is the run's last transaction.
func (s *Sink) keepPosition(ctx context.Context, source string, run *sourceRun, t *binlog.Txn) error {
	now := time.Now()
	st := checkpoint.After(t)
	st.GTID = st.GTID.Clone()
	s.mu.Lock()
	wrote, holds, recorded := run.wrote != nil, run.holds, run.recorded
	run.wrote = nil
	run.unrecorded = nil
	if wrote {
		run.holds, run.recorded = true, now
	} else if s.kv == nil {
		run.unrecorded = &st
	}
	s.mu.Unlock()
	if wrote || s.kv != nil || holds && now.Sub(recorded) < positionEvery {
		return nil
	}
	return s.recordPosition(ctx, source, run, st)
}

// recordPosition publishes a position record, retrying what can be
// retried until ctx ends.
func (s *Sink) recordPosition(ctx context.Context, source string, run *sourceRun, st checkpoint.State) error {
	subj := s.positionSubject(source)
	if err := s.streamTakes("position subject", subj); err != nil {
		return err
	}
	gtid := st.GTID.String()
	m := natsgo.NewMsg(subj)
	m.Data = fmt.Appendf(nil, `{"gtid":%q,"file":%q,"pos":%d}`, gtid, st.Pos.File, st.Pos.Pos)
	m.Header.Set(HdrPipeline, s.cfg.Pipeline)
	m.Header.Set(HdrSource, source)
	m.Header.Set(HdrOp, "position")
	m.Header.Set(HdrCheckpoint, gtid)
	m.Header.Set(HdrResumePos, st.Pos.String())
	wait := backoff.Policy{Initial: time.Second, Max: 10 * time.Second}.Timer()
	for {
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := s.publishFenced(pctx, m)
		cancel()
		if err == nil {
			break
		}
		s.mu.Lock()
		perm := s.permErr
		s.mu.Unlock()
		if perm != nil {
			// A permissions violation never gets an acknowledgement.
			err = s.checkErrs(source)
		}
		if !Retryable(err) || ctx.Err() != nil {
			return fmt.Errorf("publish the position of source %s on %s: %w", source, subj, err)
		}
		if err := wait.Wait(ctx); err != nil {
			return err
		}
	}
	s.mu.Lock()
	run.holds, run.recorded = true, time.Now()
	if run.unrecorded != nil && run.unrecorded.GTID.String() == gtid && run.unrecorded.Pos == st.Pos {
		run.unrecorded = nil
	}
	s.lastAcked[source] = st
	s.mu.Unlock()
	return nil
}

// flushPositions records, as the sink closes, where each source whose
// last runs published nothing has read to: a pipeline restarted (or
// reloaded with another filter) resumes from there and does not read
// those transactions again. Best effort, briefly: a process that lost its
// lease is refused by the fence, and a kill -9 skips it (the source then
// reads them again, publishing nothing new).
func (s *Sink) flushPositions() {
	s.mu.Lock()
	pending := map[string]*sourceRun{}
	for source, r := range s.runs {
		if r.unrecorded != nil {
			pending[source] = r
		}
	}
	s.mu.Unlock()
	for source, r := range pending {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		s.mu.Lock()
		st := r.unrecorded
		s.mu.Unlock()
		if st != nil {
			if err := s.recordPosition(ctx, source, r, *st); err != nil {
				s.log.Warn("could not record the source's position on closing: it will read its last transactions again on restart", "source", source, "error", err.Error())
			}
		}
		cancel()
	}
}
