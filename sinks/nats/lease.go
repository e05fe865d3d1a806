package nats

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sluice-cdc/sluice/checkpoint"
)

// A pipeline's lease, for NATS sinks, has two parts (Kleppmann's fencing
// tokens, with the token checked by the server that stores the writes):
//
//   - Liveness: a key in the KV bucket sluice_leases, written with a
//     per-message TTL (nats-server 2.11+). The active process rewrites it
//     every third of the TTL with a revision-checked update (expected last
//     subject sequence = its last revision). A process that dies or freezes
//     stops rewriting; the server removes the key after the TTL, and a
//     standby's Create (revision 0, or the delete marker's revision) takes it.
//     Two standbys cannot both create it, and a resumed process's renewal
//     fails because the revision moved.
//   - Fencing: each epoch starts with a marker message on the pipeline's
//     lease subject in the data stream itself ("<subject prefix>_lease.
//     <pipeline>", header Sluice-Op: lease); the epoch is the marker's
//     stream sequence, so it grows with every takeover, also across purges.
//     A new holder writes its marker, conditioned on the previous marker's
//     sequence, before it reads the checkpoint. Every message it publishes from then on (single
//     publishes and each message of an atomic batch) carries
//     Nats-Expected-Last-Subject-Sequence: <its marker's sequence> with
//     Nats-Expected-Last-Subject-Sequence-Subject: <lease subject>. The stream
//     checks that, under its lock, as it stores the message. So once another
//     process has written its marker, nothing the old holder publishes is
//     stored (error 10071), however long it was frozen and whatever it still
//     had buffered; the old holder stands down with ErrFenced. Everything the
//     old holder got stored came before the new marker in the stream, so the
//     new holder's recovery (which reads the stream after writing its marker)
//     sees it: nothing is lost, nothing repeated, and the stream's per-source
//     position never goes backwards. (A message the stream holds already is
//     acknowledged as a duplicate by its Msg-Id instead: not stored again
//     either.) The guarantee rests on the stream checking the header and
//     storing the message in one step, which a single-replica stream does
//     under its lock.
//
// What this does not cover: a stream whose limits (max_age, max_msgs,
// max_bytes) remove the marker fences its own holder (it stands down and
// takes the lease again with a new marker: safe, but a pause); streams with
// replicas > 1 reject pipelined conditional publishes while an earlier one
// is being replicated (nats-server 2.15, jetstream_batching.go,
// expectedPerSubjectInProcess), so leases are used only on single-replica
// streams (LeaseSupport). A checkpoint: kv position is written compare-and-set and
// only forwards (saveKV), so a late write cannot move it back.
const leaseBucket = "sluice_leases"

// ErrFenced means another process holds the pipeline's lease: this one
// must not publish anything more, and should wait as a standby.
var ErrFenced = fmt.Errorf("%w (it took over, or this process could not renew its lease within the TTL: paused, or cut off from NATS)", checkpoint.ErrFenced)

// Header names of the fence on every published message.
const (
	hdrExpectSubjSeq  = jetstream.ExpectedLastSubjSeqHeader
	hdrExpectSubjSubj = jetstream.ExpectedLastSubjSeqSubjHeader
)

// LeaseSupport says whether this sink can hold a lease, and if not why:
// the server must be 2.11+ (per-message TTL, expected last sequence of
// another subject), the stream single-replica and its subjects must take
// the lease subject.
func (s *Sink) LeaseSupport() error {
	if v := s.nc.ConnectedServerVersion(); !serverAtLeast(v, 2, 11) {
		return fmt.Errorf("nats-server %s: leases need 2.11 or later", v)
	}
	cfg := s.stream.CachedInfo().Config
	if cfg.Replicas > 1 {
		return fmt.Errorf("stream %q has %d replicas: leases are implemented for single-replica streams (a replicated stream rejects pipelined conditional publishes)", cfg.Name, cfg.Replicas)
	}
	for _, f := range cfg.Subjects {
		if subjectMatches(f, s.leaseSubject) {
			return nil
		}
	}
	return fmt.Errorf("the lease subject %s is not among stream %q's subjects %v: add it to the stream", s.leaseSubject, cfg.Name, cfg.Subjects)
}

// subjectMatches reports whether filter (with * and >) matches subject.
func subjectMatches(filter, subject string) bool {
	f, s := strings.Split(filter, "."), strings.Split(subject, ".")
	for i, t := range f {
		if t == ">" {
			return len(s) > i
		}
		if i >= len(s) || t != "*" && t != s[i] {
			return false
		}
	}
	return len(f) == len(s)
}

// leaseKey is the pipeline's key in the lease bucket.
func (s *Sink) leaseKey() string {
	h := sha256.Sum256([]byte(s.cfg.Pipeline))
	return keyCleaner.Replace(s.cfg.Pipeline) + "_" + hex.EncodeToString(h[:8])
}

var keyCleaner = strings.NewReplacer(".", "_", " ", "_", "*", "_", ">", "_", "\t", "_", "\r", "_", "\n", "_", ":", "_", "|", "_")

// leaseKV opens the lease bucket, creating it when it is missing.
func (s *Sink) leaseKV(ctx context.Context) (jetstream.KeyValue, error) {
	if s.lease.kv != nil {
		return s.lease.kv, nil
	}
	kv, err := s.js.KeyValue(ctx, leaseBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = s.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: leaseBucket, Description: "sluice pipeline leases",
			History: 1, LimitMarkerTTL: time.Minute})
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = s.js.KeyValue(ctx, leaseBucket)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("lease KV bucket %q: %w", leaseBucket, explainJS(err))
	}
	st, err := kv.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("lease KV bucket %q: %w", leaseBucket, explainJS(err))
	}
	if st.(*jetstream.KeyValueBucketStatus).LimitMarkerTTL() == 0 {
		return nil, fmt.Errorf("lease KV bucket %q has no limit_marker_ttl, so its keys cannot expire: delete the bucket and let sluice create it", leaseBucket)
	}
	s.lease.kv = kv
	return kv, nil
}

// TryAcquire takes the pipeline's lease for holder when no live process
// holds it, with a new epoch; from then on every message this sink
// publishes is fenced by that epoch's marker. It returns the lease as it
// stands, with Mine set when this sink now has it.
func (s *Sink) TryAcquire(ctx context.Context, holder string, ttl time.Duration) (checkpoint.Lease, error) {
	s.lease.mu.Lock()
	defer s.lease.mu.Unlock()
	if err := s.LeaseSupport(); err != nil {
		return checkpoint.Lease{}, err
	}
	kv, err := s.leaseKV(ctx)
	if err != nil {
		return checkpoint.Lease{}, err
	}
	key := s.leaseKey()
	if s.lease.rev != 0 {
		return checkpoint.Lease{Holder: s.lease.holder, Epoch: s.lease.epoch, Acquired: s.lease.acquired, Mine: true}, nil
	}
	cur, live, err := s.readLease(ctx, kv, key)
	if err != nil || live {
		return cur, err
	}
	// Free: take the key, then write this epoch's marker, conditioned on
	// the last one: if another process wrote one since (this one was
	// frozen past the TTL after Create), that process holds the pipeline.
	_, prevSeq, err := s.lastMarker(ctx)
	if err != nil {
		return checkpoint.Lease{}, err
	}
	l := checkpoint.Lease{Holder: holder, Acquired: time.Now().UTC()}
	body, _ := json.Marshal(l)
	rev, err := kv.Create(ctx, key, body, jetstream.KeyTTL(ttl))
	if errors.Is(err, jetstream.ErrKeyExists) {
		cur, _, err := s.readLease(ctx, kv, key)
		return cur, err
	}
	if err != nil {
		return checkpoint.Lease{}, s.leaseErr(err)
	}
	m := natsgo.NewMsg(s.leaseSubject)
	m.Data = body
	m.Header[HdrPipeline] = []string{s.cfg.Pipeline}
	m.Header[HdrOp] = []string{"lease"}
	ack, err := s.js.PublishMsg(ctx, m, jetstream.WithExpectLastSequencePerSubject(prevSeq))
	if wrongLastSeq(err) {
		cur, _, err := s.readLease(ctx, kv, key)
		return cur, err
	}
	if err == nil {
		// The epoch is the marker's stream sequence: it only grows, also
		// across purges, and it is the fence itself.
		l.Epoch = ack.Sequence
		body, _ = json.Marshal(l)
		rev, err = s.updateLease(ctx, body, rev, ttl)
	}
	if err != nil {
		// Let a standby have it rather than wait for the TTL.
		_ = kv.Delete(ctx, key, jetstream.LastRevision(rev))
		return checkpoint.Lease{}, s.leaseErr(err)
	}
	s.lease.rev, s.lease.ttl, s.lease.holder, s.lease.epoch, s.lease.acquired = rev, ttl, holder, l.Epoch, l.Acquired
	s.fence.Store(ack.Sequence)
	// What this sink knew of the stream is another epoch's: recovery
	// (Checkpoint) reads it again.
	s.mu.Lock()
	clear(s.partial)
	clear(s.lastAcked)
	s.mu.Unlock()
	l.Mine = true
	return l, nil
}

// readLease reads the lease key: live is false when no process holds it
// (missing, deleted, expired).
func (s *Sink) readLease(ctx context.Context, kv jetstream.KeyValue, key string) (checkpoint.Lease, bool, error) {
	e, err := kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return checkpoint.Lease{}, false, nil
	}
	if err != nil {
		return checkpoint.Lease{}, false, s.leaseErr(err)
	}
	var l checkpoint.Lease
	if err := json.Unmarshal(e.Value(), &l); err != nil {
		return checkpoint.Lease{}, false, s.leaseErr(fmt.Errorf("key %s: %w", key, err))
	}
	return l, true, nil
}

// lastMarker returns the last epoch marker on the lease subject and its
// stream sequence (0 when there is none).
func (s *Sink) lastMarker(ctx context.Context) (checkpoint.Lease, uint64, error) {
	m, err := s.stream.GetLastMsgForSubject(ctx, s.leaseSubject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return checkpoint.Lease{}, 0, nil
	}
	if err != nil {
		return checkpoint.Lease{}, 0, s.leaseErr(fmt.Errorf("read the last marker on %s: %w", s.leaseSubject, explainJS(err)))
	}
	var l checkpoint.Lease
	if err := json.Unmarshal(m.Data, &l); err != nil {
		return checkpoint.Lease{}, 0, s.leaseErr(fmt.Errorf("marker %d on %s: %w", m.Sequence, s.leaseSubject, err))
	}
	return l, m.Sequence, nil
}

// Renew rewrites the lease key, revision-checked, with a fresh TTL. It
// returns ErrFenced when the key is no longer this sink's (it expired, or
// another process holds it) or cannot be written; this sink then publishes
// nothing more that the stream would store, and TryAcquire may be called
// again.
func (s *Sink) Renew(ctx context.Context) error {
	s.lease.mu.Lock()
	defer s.lease.mu.Unlock()
	if s.lease.rev == 0 {
		return ErrFenced
	}
	body, _ := json.Marshal(checkpoint.Lease{Holder: s.lease.holder, Epoch: s.lease.epoch, Acquired: s.lease.acquired})
	rev, err := s.updateLease(ctx, body, s.lease.rev, s.lease.ttl)
	if err == nil {
		s.lease.rev = rev
		return nil
	}
	s.lease.rev = 0
	if wrongLastSeq(err) {
		return ErrFenced
	}
	return fmt.Errorf("%w: %w", ErrFenced, s.leaseErr(err))
}

// updateLease rewrites the lease key if its revision is still rev, with a
// new TTL (KeyValue.Update keeps none), and returns the new revision.
func (s *Sink) updateLease(ctx context.Context, body []byte, rev uint64, ttl time.Duration) (uint64, error) {
	m := natsgo.NewMsg("$KV." + leaseBucket + "." + s.leaseKey())
	m.Data = body
	ack, err := s.js.PublishMsg(ctx, m, jetstream.WithExpectLastSequencePerSubject(rev), jetstream.WithMsgTTL(ttl))
	if err != nil {
		return 0, err
	}
	return ack.Sequence, nil
}

// Release gives the lease up at once (a clean shutdown), so that a standby
// takes over without waiting for the TTL. The fence stays: whatever this
// sink might still publish is refused once another process holds it.
func (s *Sink) Release(ctx context.Context) error {
	s.lease.mu.Lock()
	defer s.lease.mu.Unlock()
	if s.lease.rev == 0 || s.lease.kv == nil {
		return nil
	}
	err := s.lease.kv.Delete(ctx, s.leaseKey(), jetstream.LastRevision(s.lease.rev))
	s.lease.rev = 0
	if wrongLastSeq(err) {
		return nil // expired, or taken over already
	}
	return s.leaseErr(err)
}

// LeaseHolder returns the pipeline's lease as NATS has it; ok is false when
// no process holds it.
func (s *Sink) LeaseHolder(ctx context.Context) (checkpoint.Lease, bool, error) {
	s.lease.mu.Lock()
	defer s.lease.mu.Unlock()
	kv, err := s.leaseKV(ctx)
	if err != nil {
		return checkpoint.Lease{}, false, err
	}
	l, ok, err := s.readLease(ctx, kv, s.leaseKey())
	l.Mine = ok && s.lease.rev != 0 && l.Epoch == s.lease.epoch
	return l, ok, err
}

// Epoch is the epoch this sink's publishes are fenced with: that of the
// last lease it held, 0 when it never held one (and publishes unfenced).
func (s *Sink) Epoch() uint64 {
	s.lease.mu.Lock()
	defer s.lease.mu.Unlock()
	return s.lease.epoch
}

func (s *Sink) leaseErr(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: pipeline %s: lease: %w", redactURL(s.cfg.URL), s.cfg.Pipeline, err)
}

// wrongLastSeq reports whether err is JetStream's refusal of a conditional
// publish (a fenced publish, a lost revision check).
func wrongLastSeq(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// fenceSeq is the fence header value for messages published now.
func (s *Sink) fenceSeq() string {
	if f := s.fence.Load(); f != 0 {
		return strconv.FormatUint(f, 10)
	}
	return ""
}

// fencedErr marks a refused fenced publish as ErrFenced.
func (s *Sink) fencedErr(err error) error {
	if err != nil && s.fence.Load() != 0 && wrongLastSeq(err) && !errors.Is(err, ErrFenced) {
		return fmt.Errorf("%w: %w", ErrFenced, err)
	}
	return err
}
