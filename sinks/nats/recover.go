package nats

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluice-cdc/sluice/binlog"
	"github.com/sluice-cdc/sluice/checkpoint"
)

// scanLimit bounds how far back Checkpoint looks for the source's last
// message; with checkpoint: kv the bucket covers streams whose retention
// removes messages, or that many publishers share.
const scanLimit = 10000

// Checkpoint returns where the source stopped: what its last message in
// the stream says (and, with checkpoint: kv, the bucket when it is newer).
// A transaction a crash left half-published is remembered, so that only
// its missing messages go out when it is published again.
func (s *Sink) Checkpoint(ctx context.Context, source string) (checkpoint.State, bool, error) {
	scanned, found, err := s.scan(ctx, source)
	if err != nil {
		return scanned, false, err
	}
	s.mu.Lock()
	run := s.run(source)
	run.holds, run.recorded = found, scanned.Updated
	if _, ok := s.lastAcked[source]; found && !ok {
		// What the stream holds of the source, until this process
		// publishes: an incremental snapshot chunk written before then
		// carries it (WriteIncrementalChunk).
		s.lastAcked[source] = scanned
	}
	s.mu.Unlock()
	if s.kv == nil {
		return scanned, found, nil
	}
	kv, kvFound, err := s.loadKV(ctx, source)
	if err != nil {
		return kv, false, err
	}
	switch {
	case !kvFound:
		return scanned, found, nil
	case !found:
		return kv, true, nil
	case newer(kv, scanned):
		s.mu.Lock()
		delete(s.partial, source)
		s.mu.Unlock()
		return kv, true, nil
	}
	return scanned, true, nil
}

// newer reports whether a is strictly ahead of b.
func newer(a, b checkpoint.State) bool {
	if !a.GTID.IsEmpty() || !b.GTID.IsEmpty() {
		return a.GTID.ContainsSet(b.GTID) && !b.GTID.ContainsSet(a.GTID)
	}
	return a.Pos.Compare(b.Pos) > 0
}

// scan reads the stream backwards to the source's last message.
func (s *Sink) scan(ctx context.Context, source string) (checkpoint.State, bool, error) {
	info, err := s.stream.Info(ctx)
	if err != nil {
		return checkpoint.State{}, false, fmt.Errorf("stream %q: %w", s.cfg.Stream, explainJS(err))
	}
	first, last := info.State.FirstSeq, info.State.LastSeq
	for seq, n := last, 0; seq >= first && seq > 0 && n < scanLimit; seq, n = seq-1, n+1 {
		msg, err := s.stream.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return checkpoint.State{}, false, fmt.Errorf("read message %d of stream %q: %w", seq, s.cfg.Stream, explainJS(err))
		}
		h := msg.Header
		snap := h.Get(HdrSnapshot) != ""
		if h.Get(HdrPipeline) != s.cfg.Pipeline || h.Get(HdrSource) != source || snap && h.Get(HdrCheckpoint) == "" {
			// Another pipeline's or source's, or a snapshot's message that
			// is not a place to resume from: the initial snapshot's, and
			// progress records.
			continue
		}
		st := checkpoint.State{Updated: msg.Time}
		if st.GTID, err = binlog.ParseGTIDSet(h.Get(HdrCheckpoint)); err != nil {
			return st, false, fmt.Errorf("message %d: %s header: %w", seq, HdrCheckpoint, err)
		}
		st.Pos = parsePos(h.Get(HdrResumePos))
		if snap {
			// An incremental snapshot chunk's read event: the stream's
			// position when it was published (its rows are no transaction
			// that could be published in part).
			return st, true, nil
		}
		i, n := fraction(h.Get(HdrMsg))
		k, m := fraction(h.Get(HdrChunk))
		if i < n || k < m {
			id := h.Get(HdrGTID)
			if id == "" {
				id = h.Get(HdrPos)
			}
			phys, _ := strconv.Atoi(h.Get(hdrPart))
			s.mu.Lock()
			s.partial[source] = part{txnID: id, published: phys}
			s.mu.Unlock()
			s.log.Info("the last transaction was published in part; its missing messages will follow", "source", source, "txn", id, "published", phys)
		}
		return st, true, nil
	}
	if last >= first && last > 0 {
		s.log.Warn("no message of this source among the stream's last messages: starting from the configured start; use checkpoint: kv for streams whose retention removes messages or that many pipelines share",
			"source", source, "stream", s.cfg.Stream, "scanned", min(last-first+1, scanLimit))
	}
	return checkpoint.State{}, false, nil
}

// hdrPart is a message's physical place among its transaction's messages,
// from 1 (chunks counted).
const hdrPart = "Sluice-Part"

func fraction(s string) (int, int) {
	if s == "" {
		return 1, 1
	}
	a, b, _ := strings.Cut(s, "/")
	i, _ := strconv.Atoi(a)
	n, _ := strconv.Atoi(b)
	return i, n
}

func parsePos(s string) binlog.Position {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return binlog.Position{}
	}
	p, _ := strconv.ParseUint(s[i+1:], 10, 64)
	return binlog.Position{File: s[:i], Pos: p}
}

func (s *Sink) loadKV(ctx context.Context, source string) (checkpoint.State, bool, error) {
	e, err := s.kv.Get(ctx, kvKey(s.cfg.Pipeline, source))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return checkpoint.State{}, false, nil
	}
	if err != nil {
		return checkpoint.State{}, false, fmt.Errorf("checkpoint KV bucket %q: %w", s.cfg.KVBucket, explainJS(err))
	}
	st, err := s.decodeKV(e)
	if err != nil {
		return st, false, err
	}
	s.mu.Lock()
	s.run(source).kvRev = e.Revision()
	s.mu.Unlock()
	return st, true, nil
}

func (s *Sink) decodeKV(e jetstream.KeyValueEntry) (checkpoint.State, error) {
	var v struct {
		GTID string `json:"gtid"`
		File string `json:"file"`
		Pos  uint64 `json:"pos"`
	}
	if err := json.Unmarshal(e.Value(), &v); err != nil {
		return checkpoint.State{}, fmt.Errorf("checkpoint KV bucket %q key %s: %w", s.cfg.KVBucket, e.Key(), err)
	}
	st := checkpoint.State{Pos: binlog.Position{File: v.File, Pos: v.Pos}, Updated: e.Created()}
	var err error
	if st.GTID, err = binlog.ParseGTIDSet(v.GTID); err != nil {
		return st, fmt.Errorf("checkpoint KV bucket %q key %s: %w", s.cfg.KVBucket, e.Key(), err)
	}
	return st, nil
}

// putForward writes a source's checkpoint to the KV bucket only forwards:
// a compare-and-set on the key's revision, and a value already as far or
// further is left as it is. A process that lost its lease and writes late
// (it was frozen) therefore cannot move the checkpoint back.
func (s *Sink) putForward(ctx context.Context, source string, st checkpoint.State, b []byte) error {
	key := kvKey(s.cfg.Pipeline, source)
	s.mu.Lock()
	rev := s.run(source).kvRev
	s.mu.Unlock()
	for {
		var err error
		var next uint64
		if rev == 0 {
			next, err = s.kv.Create(ctx, key, b)
		} else {
			next, err = s.kv.Update(ctx, key, b, rev)
		}
		if err == nil {
			s.mu.Lock()
			s.run(source).kvRev = next
			s.mu.Unlock()
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !wrongLastSeq(err) {
			return err
		}
		// Written since: by a process that held the lease before (or
		// after) this one.
		e, err := s.kv.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			rev = 0
			continue
		case err != nil:
			return err
		}
		cur, err := s.decodeKV(e)
		if err == nil && !newer(st, cur) {
			s.mu.Lock()
			s.run(source).kvRev = e.Revision()
			s.mu.Unlock()
			return nil
		}
		rev = e.Revision()
	}
}
