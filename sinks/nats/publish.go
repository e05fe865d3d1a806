package nats

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"strconv"
	"strings"
	"syscall"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluice-cdc/sluice/backoff"
	"github.com/sluice-cdc/sluice/binlog"
	"github.com/sluice-cdc/sluice/checkpoint"
)

// maxAtomicBatch is nats-server's default limit of messages in one atomic
// batch (jetstream max_batch_size); a transaction with more rows is
// published as several consecutive atomic batches.
const maxAtomicBatch = 1000

// stallWait is how long a publish waits while 1,024 acknowledgements are
// pending (a transaction or snapshot chunk of more rows in mode row):
// backpressure, not a failure (the client's default, 200ms, fails it).
// (A slice of options made once: a variadic argument would be a new
// slice per publish.)
var stallWait = []jetstream.PublishOpt{jetstream.WithStallWait(30 * time.Second)}

// Apply publishes one transaction. See ApplyBatch.
func (s *Sink) Apply(ctx context.Context, source string, t *binlog.Txn) error {
	_, err := s.ApplyBatch(ctx, source, []*binlog.Txn{t})
	return err
}

// ApplyBatch publishes transactions in order and returns how many are
// published (acknowledged by JetStream). A lost connection, a NATS restart
// or a timeout is retried until ctx ends; after any failure the stream says
// what is already in it, and only the rest is published again.
func (s *Sink) ApplyBatch(ctx context.Context, source string, txns []*binlog.Txn) (int, error) {
	defer func() {
		s.mu.Lock()
		if st := s.stats[source]; st != nil {
			st.failing = nil
		}
		s.mu.Unlock()
	}()
	s.mu.Lock()
	run := s.run(source)
	run.wrote = nil
	s.mu.Unlock()
	done := 0
	wait := backoff.Policy{Initial: 200 * time.Millisecond, Max: 10 * time.Second}.Timer()
	failed := false
	for done < len(txns) {
		// After a reconnection the stream may have lost what it had
		// acknowledged (a server killed before it wrote to disk): then the
		// source must be read again from what the stream really holds.
		// Checked before every retry, not only when the reconnect callback
		// has run: it runs asynchronously, and publishing later
		// transactions ahead of the lost ones would break their order.
		if s.takeReconnected(source) || failed {
			if err := s.verifyNotBehind(ctx, source); err != nil {
				return done, err
			}
		}
		if failed {
			// Publishes whose acknowledgement timed out may be stored
			// all the same. JetStream drops a repeat by its Msg-Id only
			// within the stream's duplicate window (2 minutes by default),
			// and a long outage outlasts it: so what the stream already
			// holds is read from it, as after a restart (scan), and not
			// published again.
			if st, found, err := s.scan(ctx, source); err == nil && found {
				skipped := 0
				for done < len(txns) && st.Covers(txns[done]) {
					done++
					skipped++
				}
				if skipped > 0 {
					s.acked(source, txns[done-1])
					s.log.Info("the stream holds transactions whose acknowledgement was lost: not publishing them again",
						"source", source, "transactions", skipped)
				}
				if done == len(txns) {
					break
				}
			}
		}
		failedAt, err := s.publishRun(ctx, source, txns[done:])
		if err == nil {
			// What the stream holds now ends with the last transaction
			// that published messages (a filtered one publishes none).
			s.mu.Lock()
			last := run.wrote
			s.mu.Unlock()
			if last != nil {
				s.acked(source, last)
			}
			done = len(txns)
			break
		}
		// Everything before the first failed transaction is acknowledged;
		// the rest goes out again (JetStream drops what it already has by
		// Nats-Msg-Id).
		if failedAt > 0 {
			s.acked(source, txns[done+failedAt-1])
		}
		done += failedAt
		failed = true
		if !Retryable(err) || ctx.Err() != nil {
			return done, err
		}
		s.mu.Lock()
		st := s.stats[source]
		if st == nil {
			st = &stats{}
			s.stats[source] = st
		}
		st.retries++
		st.failing = err
		s.mu.Unlock()
		d := wait.Next()
		s.log.Warn("publish failed, retrying", "source", source, "error", err.Error(), "in", d)
		if err := backoff.Sleep(ctx, d); err != nil {
			return done, err
		}
	}
	if err := s.keepPosition(ctx, source, run, txns[len(txns)-1]); err != nil {
		return done, err
	}
	if err := s.saveKV(ctx, source, txns[len(txns)-1]); err != nil {
		return done, err
	}
	if s.outbox != nil {
		s.outbox.deleteRelayed(ctx, source, txns)
	}
	return done, nil
}

// acked records the last transaction JetStream acknowledged for a source.
func (s *Sink) acked(source string, t *binlog.Txn) {
	s.mu.Lock()
	s.lastAcked[source] = checkpoint.After(t)
	s.mu.Unlock()
}

// takeReconnected reports whether the connection was replaced since the
// stream was last checked for this source, and marks it checked.
func (s *Sink) takeReconnected(source string) bool {
	n := s.nc.Stats().Reconnects
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.run(source)
	changed := r.checkedConn != n
	r.checkedConn = n
	return changed
}

// verifyNotBehind checks that the stream still holds the last transaction
// it acknowledged; if not, it returns checkpoint.ErrBehind.
func (s *Sink) verifyNotBehind(ctx context.Context, source string) error {
	s.mu.Lock()
	last, ok := s.lastAcked[source]
	s.mu.Unlock()
	if !ok {
		return nil
	}
	wait := backoff.Policy{Initial: time.Second, Max: 10 * time.Second}.Timer()
	for {
		st, found, err := s.scan(ctx, source)
		if err == nil {
			covered := found && (last.GTID.IsEmpty() && last.Pos.Compare(st.Pos) <= 0 || !last.GTID.IsEmpty() && st.GTID.ContainsSet(last.GTID))
			if !covered {
				return fmt.Errorf("%w: stream %q lost messages it had acknowledged (the NATS server restarted before writing them to disk); "+
					"reading the source again from %s", checkpoint.ErrBehind, s.cfg.Stream, st.GTID)
			}
			return nil
		}
		if !Retryable(err) {
			return err
		}
		if err := wait.Wait(ctx); err != nil {
			return err
		}
	}
}

// Retryable: the connection, the server or JetStream may come back.
func Retryable(err error) bool {
	if errors.Is(err, ErrFenced) || errors.Is(err, errPermission) || errors.Is(err, errTooLarge) || errors.Is(err, context.Canceled) {
		return false
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return apiErr.Code >= 500 || apiErr.Code == 408 || apiErr.Code == 503
	}
	var opErr *net.OpError
	return errors.Is(err, errReconnected) || errors.Is(err, natsgo.ErrReconnectBufExceeded) || errors.As(err, &opErr) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, natsgo.ErrConnectionClosed) || errors.Is(err, natsgo.ErrTimeout) || errors.Is(err, natsgo.ErrNoResponders) ||
		errors.Is(err, natsgo.ErrDisconnected) || errors.Is(err, natsgo.ErrConnectionReconnecting) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, jetstream.ErrAsyncPublishTimeout) || errors.Is(err, jetstream.ErrJetStreamPublisherClosed) ||
		errors.Is(err, jetstream.ErrTooManyStalledMsgs) || errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, natsgo.ErrStaleConnection) ||
		strings.Contains(err.Error(), "timeout") || strings.Contains(err.Error(), "connection")
}

var (
	errPermission  = errors.New("permission denied")
	errTooLarge    = errors.New("too large")
	errReconnected = errors.New("reconnected to NATS during a run of publishes")
)

// sameConn fails once the connection the current run started on was
// replaced.
func (s *Sink) sameConn(source string) error {
	s.mu.Lock()
	start := s.run(source).runConn
	s.mu.Unlock()
	if s.nc.Stats().Reconnects != start {
		return errReconnected
	}
	return nil
}

// publishRun publishes transactions, asynchronously where it can, and
// waits until JetStream acknowledged everything. On failure it returns the
// index of the first transaction not wholly acknowledged.
func (s *Sink) publishRun(ctx context.Context, source string, txns []*binlog.Txn) (int, error) {
	s.mu.Lock()
	run := s.run(source)
	run.asyncErr = nil
	run.failed = map[string]bool{}
	run.runConn = s.nc.Stats().Reconnects
	s.mu.Unlock()
	firstFailed := func(upTo int) int {
		s.mu.Lock()
		defer s.mu.Unlock()
		if len(run.failed) == 0 {
			return upTo
		}
		for i, t := range txns[:upTo] {
			if run.failed[t.ID()] {
				return i
			}
		}
		return upTo
	}
	// acked is how many of the first upTo transactions are wholly
	// acknowledged, once the pending publishes are settled. When the wait
	// for them ends with some still pending (its deadline, ctx, a
	// permissions violation), none of the run is known to be: without a
	// failure recorded, firstFailed would count the pending ones as
	// acknowledged (the retry then skips what the stream does hold).
	acked := func(upTo int) (int, error) {
		if err := s.waitAsync(ctx, source); err != nil {
			return 0, err
		}
		return firstFailed(upTo), nil
	}
	ok := false
	defer func() { run.endRun(ok) }()
	for i, t := range txns {
		if err := s.publishTxn(ctx, source, t); err != nil {
			n, _ := acked(i)
			return n, err
		}
		if err := s.checkErrs(source); err != nil {
			n, _ := acked(i + 1)
			return n, err
		}
	}
	if n, err := acked(len(txns)); err != nil {
		return n, err
	}
	if err := s.checkErrs(source); err != nil {
		return firstFailed(len(txns)), err
	}
	ok = true
	return len(txns), nil
}

// asyncWaitLimit bounds how long waitAsync waits for acknowledgements.
var asyncWaitLimit = 60 * time.Second

// waitAsync waits until no publish is pending: each acknowledged, or
// failed (a failure is recorded in the source's run). An error means some
// may still be pending, except after its time limit or a permissions
// violation: then what is pending will not be acknowledged, and is failed
// (abandonPending).
func (s *Sink) waitAsync(ctx context.Context, source string) error {
	deadline := time.After(asyncWaitLimit)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-s.js.PublishAsyncComplete():
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline:
			err := fmt.Errorf("%w: %d publishes not acknowledged after %s", natsgo.ErrTimeout, s.js.PublishAsyncPending(), asyncWaitLimit)
			s.abandonPending()
			return err
		case <-tick.C:
			// A permissions violation never gets an acknowledgement: stop
			// waiting as soon as the server reports it.
			s.mu.Lock()
			perm := s.permErr
			s.mu.Unlock()
			if perm != nil {
				s.abandonPending()
				return s.checkErrs(source)
			}
		}
	}
}

// abandonPending fails every publish still waiting for its
// acknowledgement (each source's run records its failures, and retries):
// the JetStream context has no acknowledgement timeout per publish (a
// timer per message cost the publishing path a few percent of its CPU), so
// a lost acknowledgement would otherwise stay pending, and every later
// wait would run into its limit. Publishes of other sources pending at the
// same time fail too, and are retried (de-duplicated by Msg-Id, or found
// in the stream).
func (s *Sink) abandonPending() {
	if s.js.PublishAsyncPending() > 0 {
		s.js.CleanupPublisher()
	}
}

func (s *Sink) checkErrs(source string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.permErr != nil {
		err := fmt.Errorf("%w: %v; grant this NATS user publish permission on the subjects sluice writes (sink.subject, sink.ddl_subject, outbox subjects, and the _lease, _snapshot and _position subjects beside the subject prefix)", errPermission, s.permErr)
		return err
	}
	if r := s.run(source); r.asyncErr != nil {
		err := r.asyncErr
		r.asyncErr = nil
		return err
	}
	return nil
}

// logical is one message before chunking: a transaction body, a row (or
// a run of rows), a DDL, an outbox message, or one of Debezium's extra
// messages (transaction BEGIN/END, key, tombstone).
type logical struct {
	subject string
	op      string // the Sluice-Op header: insert, update, delete, transaction, ddl, outbox, begin, end, key, tombstone
	change  *binlog.Change
	row     int  // the change's place among the transaction's rows, from 0
	unit    unit // what a row message describes
	outbox  *outboxMsg
	// counts are Debezium's END event's data_collections.
	counts []collectionCount
}

// publishTxn publishes t's messages: everything but a half-published
// transaction's head, which recovery found in the stream already.
func (s *Sink) publishTxn(ctx context.Context, source string, t *binlog.Txn) error {
	return s.publishTxnAs(ctx, source, t, nil)
}

// snapshotPub is how a snapshot's pseudo-transaction (a chunk of read
// events, or the TRUNCATE before a table copied again) is published: with
// Msg-Ids of its own and the Sluice-Snapshot header, without checkpoint
// headers (recovery skips it).
type snapshotPub struct {
	idPrefix string // Nats-Msg-Id before the message's number
	header   string // Sluice-Snapshot: true, last or truncate
	flag     string // meta.snapshot: true or last
	// resume: each message carries the transaction's checkpoint headers,
	// the stream's position as it is published (see WriteIncrementalChunk).
	resume bool
}

func (s *Sink) publishTxnAs(ctx context.Context, source string, t *binlog.Txn, snap *snapshotPub) error {
	s.mu.Lock()
	run := s.run(source)
	s.mu.Unlock()
	// The transaction's own header values (its id, position and
	// checkpoint, and its first message's Msg-Id) are cut from one string.
	vals := run.txnValues(s.cfg.Pipeline, source, t)
	id := vals.id
	skip := 0
	if snap == nil {
		s.mu.Lock()
		if p, ok := s.partial[source]; ok && p.txnID == id {
			skip = p.published
			delete(s.partial, source)
		}
		s.mu.Unlock()
	}

	msgs, rows, err := s.planAs(run, t, source, snap != nil)
	if err != nil {
		return err
	}
	if len(msgs) == 0 {
		return nil // filtered out entirely: nothing to publish
	}
	if snap == nil {
		s.mu.Lock()
		run.wrote = t
		s.mu.Unlock()
	}
	m := meta{pipeline: s.cfg.Pipeline, source: source, count: rows, json: &run.json}
	if _, own := s.enc.(sluiceEncoder); !own {
		m.now = s.cfg.Now() // Canal's and Debezium's build time (sluice's format has none)
	}
	if snap != nil {
		m.snapshot = snap.flag
	}
	// Header values shared by the transaction's messages, computed once.
	gtid, pos, commitTS := "", vals.pos, run.commitTS(t.Timestamp)
	if !t.GTID.IsZero() {
		gtid = id
	}
	rowCount := strconv.Itoa(rows)
	after := vals.after
	// The checkpoint before t, carried by all but its last message.
	before := ""
	beforeSet := func() string {
		if before == "" {
			b := t.Executed.Clone()
			b.Remove(t.GTID)
			b.Remove(t.PrepareGTID)
			run.text = b.AppendText(run.text[:0])
			before = string(run.text)
		}
		return before
	}
	idPrefix, firstID := vals.idPrefix, vals.firstID
	if snap != nil {
		idPrefix, firstID = snap.idPrefix, snap.idPrefix+"1"
	}
	fence := s.fenceSeq()
	common := func(v *hdrVals) {
		if fence != "" {
			v.set(hdrExpectSubjSeq, fence)
			v.set(hdrExpectSubjSubj, s.leaseSubject)
		}
		v.set(HdrPipeline, s.cfg.Pipeline)
		v.set(HdrSource, source)
		if gtid != "" {
			v.set(HdrGTID, gtid)
		}
		v.set(HdrPos, pos)
		v.set(HdrCommitTS, commitTS)
		if snap != nil {
			v.set(HdrSnapshot, snap.header)
		}
	}

	var batch []*natsgo.Msg // atomic batch being gathered
	// Several messages of one transaction commit as atomic batches when the
	// stream allows them; a single message is atomic by itself and goes out
	// asynchronously, pipelined with the next transactions.
	useBatch := s.atomic && len(msgs) > 1 && snap == nil
	phys := 0 // physical messages so far
	flushBatch := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := s.publishAtomic(ctx, source, id, phys, batch)
		batch = batch[:0]
		return err
	}
	for i, lm := range msgs {
		body, err := s.body(run, t, lm, m)
		if err != nil {
			return err
		}
		if s.atomic && body.size > int64(s.chunk) {
			useBatch = true
		}
		key := s.key(t, lm)
		err = body.chunks(s.chunk, func(k, n int, b []byte) error {
			phys++
			if phys <= skip {
				return nil // in the stream already
			}
			msg, v := run.newMsg(lm.subject, b)
			common(v)
			v.set(HdrMsg, place(i+1, len(msgs)))
			v.set(hdrPart, strconv.Itoa(phys))
			if n > 1 {
				v.set(HdrChunk, place(k+1, n))
			}
			v.set(HdrOp, lm.op)
			v.set(HdrTxnCount, rowCount)
			if c := lm.change; c != nil {
				v.set(HdrSchema, c.Table.Schema)
				v.set(HdrTable, c.Table.Name)
				v.set(HdrTxnSeq, strconv.Itoa(lm.row+1))
			}
			if lm.op == "transaction" {
				v.set(HdrBody, "transaction")
			}
			if key != nil {
				v.set(HdrKey, string(key))
			}
			switch {
			case snap != nil && snap.resume:
				v.set(HdrCheckpoint, after)
				v.set(HdrResumePos, pos)
			case snap != nil: // not a place to resume from
			case i == len(msgs)-1 && k == n-1:
				v.set(HdrCheckpoint, after)
				v.set(HdrResumePos, pos)
			default:
				v.set(HdrCheckpoint, beforeSet())
				v.set(HdrResumePos, t.StartPos.String())
			}
			msgID := firstID
			if i > 0 {
				msgID = idPrefix + strconv.Itoa(i+1)
			}
			if n > 1 {
				msgID += "." + strconv.Itoa(k+1)
			}
			if lm.outbox != nil {
				msgID = lm.outbox.id // the application's own id: de-duplicated across restarts of the relay
				v.set(HdrOutbox, lm.outbox.table)
				for k, val := range lm.outbox.headers {
					v.set(k, val)
				}
			}
			v.set(hdrMsgID, msgID)
			v.done()
			if useBatch {
				v.extra = true // the batch's headers are set on it
				batch = append(batch, msg)
				if len(batch) == maxAtomicBatch {
					return flushBatch()
				}
				return nil
			}
			if err := s.sameConn(source); err != nil {
				return err
			}
			if _, err := s.js.PublishMsgAsync(msg, stallWait...); err != nil {
				return s.explainPublish(source, lm.subject, err)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return flushBatch()
}

// txnVals are a transaction's own header values.
type txnVals struct {
	id       string // t.ID(): its GTID, or without one its end position
	pos      string // its end position (Sluice-Pos, Sluice-Resume-Pos)
	after    string // the executed GTID set after it (Sluice-Checkpoint)
	idPrefix string // its messages' Nats-Msg-Id before their number
	firstID  string // its first message's Nats-Msg-Id
}

// txnValues makes t's header values, as one string cut into its parts:
// one allocation rather than one each.
func (r *sourceRun) txnValues(pipeline, source string, t *binlog.Txn) txnVals {
	b := r.text[:0]
	b = strconv.AppendUint(append(append(b, t.Pos.File...), ':'), t.Pos.Pos, 10)
	posEnd := len(b)
	idStart, idEnd := 0, posEnd
	if !t.GTID.IsZero() {
		idStart = len(b)
		b = t.GTID.AppendText(b)
		idEnd = len(b)
	}
	afterStart := len(b)
	b = t.Executed.AppendText(b)
	prefixStart := len(b)
	b = append(append(append(append(b, pipeline...), '|'), source...), '|')
	b = append(b, b[idStart:idEnd]...)
	b = append(b, '|')
	prefixEnd := len(b)
	b = append(b, '1')
	r.text = b
	all := string(b)
	return txnVals{id: all[idStart:idEnd], pos: all[:posEnd], after: all[afterStart:prefixStart],
		idPrefix: all[prefixStart:prefixEnd], firstID: all[prefixStart:]}
}

// place is "i/n", a message's or chunk's place among n, made without
// concatenating for a transaction's one message.
func place(i, n int) string {
	if i == 1 && n == 1 {
		return "1/1"
	}
	return strconv.Itoa(i) + "/" + strconv.Itoa(n)
}

// commitTS is ts as the Sluice-Commit-Ts header, formatted once per
// distinct time (binlog timestamps have whole seconds: consecutive
// transactions share them).
func (r *sourceRun) commitTS(ts time.Time) string {
	if r.lastTSText == "" || !ts.Equal(r.lastTS) {
		r.lastTS, r.lastTSText = ts, ts.UTC().Format(time.RFC3339Nano)
	}
	return r.lastTSText
}

// hdrSlots is how many header values a pooled message holds in place.
const hdrSlots = 24

// hdrVals sets a pooled message's headers. A message is built with the
// same keys in the same order as the one it was before (the same kind of
// message, from the same source): then each value is written into its
// slot, which the header map already points to, and the map is neither
// cleared nor assigned to (its hashing and clearing cost more than the
// body's encoding). A key out of that order makes the map again from the
// keys set so far, as assignments in that order would.
type hdrVals struct {
	h natsgo.Header
	// keys are the keys set, in order: the layout of h.
	keys []string
	// vals are their values, the first hdrSlots of them; h's one-value
	// slices for those keys point into it.
	vals [hdrSlots]string
	n    int // keys set so far for the message being built
	// distinct is len(h) once built; slow: h holds a key beyond
	// hdrSlots; extra: headers were set on the message outside hdrVals
	// (an atomic batch's). Either, or another length, and the next build
	// starts from an empty map.
	distinct    int
	slow, extra bool
}

// pooledMsg is a message with its header values, reused once JetStream
// has acknowledged it: a message's header map and body cost more to
// allocate than its body costs to encode.
type pooledMsg struct {
	msg *natsgo.Msg
	hv  hdrVals
}

// newMsg returns a message for the current run of publishes, with a copy
// of data as its body; its headers are set with the hdrVals returned, and
// done.
func (r *sourceRun) newMsg(subject string, data []byte) (*natsgo.Msg, *hdrVals) {
	var p *pooledMsg
	if n := len(r.free); n > 0 {
		p = r.free[n-1]
		r.free = r.free[:n-1]
		// Only the fields a message built here sets (publishing copies
		// the message, leaving it as it was).
		m := p.msg
		m.Subject, m.Reply, m.Data = subject, "", append(m.Data[:0], data...)
		p.hv.reuse()
	} else {
		// No size hint: a map grown to its keys is iterated faster (twice
		// per publish, by nats.go) than one made for more.
		h := natsgo.Header{}
		p = &pooledMsg{msg: &natsgo.Msg{Subject: subject, Header: h, Data: append([]byte(nil), data...)}, hv: hdrVals{h: h}}
	}
	r.msgs = append(r.msgs, p)
	return p.msg, &p.hv
}

// reuse starts building the next message's headers.
func (v *hdrVals) reuse() {
	if v.slow || v.extra || len(v.h) != v.distinct {
		clear(v.h)
		v.keys = v.keys[:0]
		v.slow, v.extra = false, false
	}
	v.n = 0
}

// endRun recycles the run's messages when JetStream acknowledged them all
// (ok); otherwise some may still be referenced by pending publishes, and
// they are left to the garbage collector.
func (r *sourceRun) endRun(ok bool) {
	if ok {
		// At most 1,024 kept (the publishes JetStream may have pending),
		// bodies up to 16 KiB: what a source holds stays under 16 MiB.
		for _, p := range r.msgs {
			if len(r.free) >= 1024 {
				break
			}
			if cap(p.msg.Data) > 16<<10 {
				p.msg.Data = nil
			}
			r.free = append(r.free, p)
		}
		clear(r.msgs)
		r.msgs = r.msgs[:0]
		return
	}
	r.msgs = nil
}

// set sets the next header.
func (v *hdrVals) set(key, val string) {
	i := v.n
	v.n++
	if v.slow {
		v.h[key] = []string{val}
		return
	}
	if i < len(v.keys) && v.keys[i] == key {
		v.vals[i] = val // h[key] is vals[i:i+1] already
		return
	}
	if i < len(v.keys) {
		// Another layout from here on.
		v.keys = v.keys[:i]
		v.remake()
	}
	if i >= hdrSlots {
		v.slow = true
		v.h[key] = []string{val}
		return
	}
	v.keys = append(v.keys, key)
	v.vals[i] = val
	v.h[key] = v.vals[i : i+1 : i+1]
}

// remake makes h hold exactly the keys set, in order.
func (v *hdrVals) remake() {
	clear(v.h)
	for i, k := range v.keys {
		v.h[k] = v.vals[i : i+1 : i+1]
	}
}

// done ends a message's headers: keys the message before had beyond
// those set now are removed.
func (v *hdrVals) done() {
	if !v.slow && v.n < len(v.keys) {
		v.keys = v.keys[:v.n]
		v.remake()
	}
	v.distinct = len(v.h)
}

// publishAtomic commits msgs as one atomic batch: every message but the
// last published without an acknowledgement, the last one committing.
func (s *Sink) publishAtomic(ctx context.Context, source, txn string, upTo int, msgs []*natsgo.Msg) error {
	if len(msgs) == 1 {
		_, err := s.js.PublishMsg(ctx, msgs[0])
		return s.explainPublish(source, msgs[0].Subject, err)
	}
	batchID := fmt.Sprintf("%s-%d", strings.NewReplacer("|", "-", ":", "-").Replace(txn), upTo)
	if len(batchID) > 64 {
		h := fnv.New64a()
		h.Write([]byte(batchID))
		batchID = strconv.FormatUint(h.Sum64(), 36)
	}
	if err := s.sameConn(source); err != nil {
		return err
	}
	for i, msg := range msgs {
		msg.Header.Set(hdrBatchID, batchID)
		msg.Header.Set(hdrBatchSeq, strconv.Itoa(i+1))
		if i < len(msgs)-1 {
			if err := s.nc.PublishMsg(msg); err != nil {
				return s.explainPublish(source, msg.Subject, err)
			}
			continue
		}
		// The commit's acknowledgement comes back asynchronously, like any
		// other publish: batches of consecutive transactions are pipelined.
		msg.Header.Set(hdrBatchEnd, "1")
		if _, err := s.js.PublishMsgAsync(msg, stallWait...); err != nil {
			return s.explainPublish(source, msg.Subject, err)
		}
	}
	return nil
}

func (s *Sink) explainPublish(source, subject string, err error) error {
	if err == nil {
		return nil
	}
	if err := s.fencedErr(err); errors.Is(err, ErrFenced) {
		return fmt.Errorf("publish to %s: %w", subject, err)
	}
	if errors.Is(err, natsgo.ErrReconnectBufExceeded) {
		return fmt.Errorf("publish to %s: disconnected from NATS, reconnecting: %w", subject, err)
	}
	if errors.Is(err, natsgo.ErrMaxPayload) {
		return fmt.Errorf("%w: message on %s exceeds the server's max_payload: %v", errTooLarge, subject, err)
	}
	if errors.Is(err, natsgo.ErrNoResponders) {
		if perr := s.checkErrs(source); perr != nil {
			return perr
		}
		return fmt.Errorf("publish to %s: %w; is the subject part of stream %q (sink.stream.subjects)?", subject, err, s.cfg.Stream)
	}
	return fmt.Errorf("publish to %s: %w", subject, err)
}

// plan lists a transaction's messages and counts its rows.
func (s *Sink) plan(t *binlog.Txn, source string) ([]logical, int, error) {
	s.mu.Lock()
	run := s.run(source)
	s.mu.Unlock()
	return s.planAs(run, t, source, false)
}

// planAs is plan, for the source's run; a snapshot's rows get no Debezium
// transaction metadata.
func (s *Sink) planAs(run *sourceRun, t *binlog.Txn, source string, snapshot bool) ([]logical, int, error) {
	if t.DDL != nil && t.Len() == 0 {
		db, table := ddlTable(t)
		subj := s.subject(s.cfg.DDLSubject, db, table, "ddl", "", source)
		return []logical{{subject: subj, op: "ddl"}}, 0, nil
	}
	if s.cfg.Mode != "row" && s.outbox == nil {
		// One message, the whole transaction, when it has rows.
		if t.Len() == 0 {
			return nil, 0, nil
		}
		if run.txnSubject == "" {
			run.txnSubject = s.subject(s.cfg.TransactionSubject, "", "", "transaction", "", source)
		}
		run.plan1[0] = logical{subject: run.txnSubject, op: "transaction"}
		return run.plan1[:], t.Len(), nil
	}
	return s.planRows(t, source, snapshot)
}

// planRows is planAs for mode row and for outboxes: a message per row
// (or run of rows, or outbox row), and Debezium's extra messages. Apart
// from planAs, whose one-message plan then allocates nothing.
func (s *Sink) planRows(t *binlog.Txn, source string, snapshot bool) ([]logical, int, error) {
	var msgs []logical
	rows := 0
	dbz, isDbz := s.debezium()
	txnMeta := isDbz && dbz.opt.TransactionMetadata && s.cfg.Mode == "row" && !snapshot
	var counts []collectionCount
	var seen map[string]int
	if txnMeta {
		seen = map[string]int{}
	}
	r := newRuns(s.enc.maxRun(), func(c *binlog.Change) string { return s.changeSubject(c, source) })
	emit := func(u unit, subj string) {
		c := u.changes[0]
		if isDbz && dbz.opt.KeySubject != "" {
			msgs = append(msgs, logical{subject: s.subject(dbz.opt.KeySubject, c.Table.Schema, c.Table.Name, c.Op.String(), "", source),
				op: "key", change: c, row: u.row, unit: u})
		}
		msgs = append(msgs, logical{subject: subj, op: c.Op.String(), change: c, row: u.row, unit: u})
		if isDbz && dbz.opt.Tombstones && c.Op == binlog.Delete {
			msgs = append(msgs, logical{subject: subj, op: "tombstone", change: c, row: u.row, unit: u})
		}
	}
	flush := func() {
		if u, subj, ok := r.flush(); ok {
			emit(u, subj)
		}
	}
	for c, err := range t.Changes() {
		if err != nil {
			return nil, 0, err
		}
		if s.outbox != nil {
			if ob, ok := s.outbox.route(c); ok {
				if ob != nil && ob.err != nil {
					return nil, 0, ob.err
				}
				if ob != nil {
					flush()
					msgs = append(msgs, logical{subject: ob.subject, op: "outbox", outbox: ob})
				}
				continue
			}
		}
		if txnMeta {
			name := c.Table.QualifiedName()
			i, ok := seen[name]
			if !ok {
				i = len(counts)
				seen[name] = i
				counts = append(counts, collectionCount{name: name})
			}
			counts[i].count++
		}
		if s.cfg.Mode == "row" {
			if u, subj, ok := r.add(c); ok {
				emit(u, subj)
			}
		}
		rows++
	}
	flush()
	if rows == 0 || s.cfg.Mode == "row" && !txnMeta {
		return msgs, rows, nil
	}
	txnSubj := s.subject(s.cfg.TransactionSubject, "", "", "transaction", "", source)
	if s.cfg.Mode != "row" {
		// A whole transaction goes to the transaction subject: a
		// transaction touching several tables is never on one table's
		// subject only.
		msgs = append([]logical{{subject: txnSubj, op: "transaction"}}, msgs...)
	}
	if txnMeta {
		msgs = append([]logical{{subject: txnSubj, op: "begin"}}, msgs...)
		msgs = append(msgs, logical{subject: txnSubj, op: "end", counts: counts})
	}
	return msgs, rows, nil
}

// debezium returns the Debezium encoder when the format is debezium.
func (s *Sink) debezium() (debeziumEncoder, bool) {
	if env, ok := s.enc.(txnEnvelope); ok {
		d, ok := env.eventEncoder.(debeziumEncoder)
		return d, ok
	}
	return debeziumEncoder{}, false
}

// key is a message's Sluice-Key header: Debezium's record key.
func (s *Sink) key(t *binlog.Txn, lm logical) []byte {
	dbz, ok := s.debezium()
	if !ok {
		return nil
	}
	switch {
	case lm.op == "begin" || lm.op == "end":
		return dbz.txnKey(t)
	case lm.op == "ddl":
		return dbz.ddlKey(t)
	case lm.change != nil:
		return dbz.key(t, lm.change)
	}
	return nil
}

// body encodes one logical message into the source's spool.
func (s *Sink) body(run *sourceRun, t *binlog.Txn, lm logical, m meta) (*spool, error) {
	sp := run.spool
	sp.reset()
	switch lm.op {
	case "outbox":
		return sp, sp.write(lm.outbox.payload)
	case "ddl":
		return sp, sp.write(s.enc.ddl(nil, t, m))
	case "begin", "end":
		dbz, _ := s.debezium()
		return sp, sp.write(dbz.txnMeta(t, lm.op == "end", m.count, lm.counts))
	case "tombstone":
		return sp, sp.write(nil)
	case "key":
		dbz, _ := s.debezium()
		return sp, sp.write(dbz.key(t, lm.change))
	}
	// Encoded into the source's own buffer, kept between transactions.
	buf := run.enc[:0]
	if lm.change != nil {
		buf = s.enc.unit(buf, t, lm.unit, m)
		run.keepEnc(buf)
		return sp, sp.write(buf)
	}
	// The whole transaction, unit by unit.
	buf = s.enc.txnStart(buf, t, m)
	r := run.bodyRuns
	if r == nil || r.max != s.enc.maxRun() {
		r = newRuns(s.enc.maxRun(), nil)
		r.reuse = true // each unit is encoded before the next is made
		if _, own := s.enc.(sluiceEncoder); own {
			r.perTable = nil // sluice's format has no per-table order
		}
		run.bodyRuns = r
	}
	r.reset()
	var err error
	if cs, ok := t.MemChanges(); ok {
		for _, c := range cs {
			if buf, err = s.bodyChange(sp, r, buf, t, c, m); err != nil {
				return nil, err
			}
		}
	} else if buf, err = s.bodyChanges(sp, r, buf, t, m); err != nil {
		return nil, err
	}
	if u, _, ok := r.flush(); ok {
		if buf, err = s.bodyUnit(sp, buf, t, u, m); err != nil {
			return nil, err
		}
	}
	buf = s.enc.txnEnd(buf, t, m)
	run.keepEnc(buf)
	return sp, sp.write(buf)
}

// bodyChanges adds the changes of a transaction not held in memory to its
// body (a function of its own: the iteration's closure would move body's
// variables to the heap).
func (s *Sink) bodyChanges(sp *spool, r *runs, buf []byte, t *binlog.Txn, m meta) ([]byte, error) {
	var err error
	for c, cerr := range t.Changes() {
		if cerr != nil {
			return buf, cerr
		}
		if buf, err = s.bodyChange(sp, r, buf, t, c, m); err != nil {
			return buf, err
		}
	}
	return buf, nil
}

// bodyChange adds a change to a transaction's body: it encodes the unit
// the change completes, if any.
func (s *Sink) bodyChange(sp *spool, r *runs, buf []byte, t *binlog.Txn, c *binlog.Change, m meta) ([]byte, error) {
	if s.outbox != nil {
		if _, ok := s.outbox.route(c); ok {
			return buf, nil
		}
	}
	if u, _, ok := r.add(c); ok {
		return s.bodyUnit(sp, buf, t, u, m)
	}
	return buf, nil
}

// bodyUnit encodes a unit of a transaction's body, moving what is
// encoded to the spool once it passes 1 MiB.
func (s *Sink) bodyUnit(sp *spool, buf []byte, t *binlog.Txn, u unit, m meta) ([]byte, error) {
	buf = s.enc.txnUnit(buf, t, u, m)
	if len(buf) > 1<<20 {
		if err := sp.write(buf); err != nil {
			return buf, err
		}
		buf = buf[:0]
	}
	return buf, nil
}

// keepEnc keeps the encoder's buffer for the next body, unless it grew
// past 4 MiB.
func (r *sourceRun) keepEnc(buf []byte) {
	if cap(buf) <= 4<<20 {
		r.enc = buf[:0]
	}
}

func (s *Sink) changeSubject(c *binlog.Change, source string) string {
	pk := ""
	if strings.Contains(s.cfg.Subject, "{pk}") {
		h := fnv.New32a()
		img := c.Image()
		for _, k := range c.Table.PK {
			h.Write(binlog.AppendValueJSON(nil, img[k]))
			h.Write([]byte{0})
		}
		pk = strconv.Itoa(int(h.Sum32() % uint32(max(s.cfg.PKBuckets, 1))))
	}
	return s.subject(s.cfg.Subject, c.Table.Schema, c.Table.Name, c.Op.String(), pk, source)
}

var tokenCleaner = strings.NewReplacer(".", "_", " ", "_", "*", "_", ">", "_", "\t", "_", "\r", "_", "\n", "_")

// subject fills a subject template. Names become single subject tokens.
// One pass, left to right; filled-in values are not scanned again.
func (s *Sink) subject(tmpl, schema, table, op, pk, source string) string {
	if strings.IndexByte(tmpl, '{') < 0 {
		return tmpl
	}
	clean := func(v string) string {
		if v == "" {
			return "_"
		}
		return tokenCleaner.Replace(v)
	}
	var b strings.Builder
	b.Grow(len(tmpl) + len(schema) + len(table) + len(source) + 16)
	for {
		i := strings.IndexByte(tmpl, '{')
		if i < 0 {
			b.WriteString(tmpl)
			return b.String()
		}
		b.WriteString(tmpl[:i])
		tmpl = tmpl[i:]
		var v string
		switch {
		case strings.HasPrefix(tmpl, "{schema}"):
			v, tmpl = clean(schema), tmpl[len("{schema}"):]
		case strings.HasPrefix(tmpl, "{table}"):
			v, tmpl = clean(table), tmpl[len("{table}"):]
		case strings.HasPrefix(tmpl, "{op}"):
			v, tmpl = op, tmpl[len("{op}"):]
		case strings.HasPrefix(tmpl, "{pk}"):
			v, tmpl = pk, tmpl[len("{pk}"):]
		case strings.HasPrefix(tmpl, "{pipeline}"):
			v, tmpl = clean(s.cfg.Pipeline), tmpl[len("{pipeline}"):]
		case strings.HasPrefix(tmpl, "{source}"):
			v, tmpl = clean(source), tmpl[len("{source}"):]
		default:
			v, tmpl = "{", tmpl[1:]
		}
		b.WriteString(v)
	}
}

// saveKV records the checkpoint in the KV bucket (checkpoint: kv).
func (s *Sink) saveKV(ctx context.Context, source string, t *binlog.Txn) error {
	if s.kv == nil {
		return nil
	}
	st := checkpoint.After(t)
	b := fmt.Appendf(nil, `{"gtid":%q,"file":%q,"pos":%d}`, st.GTID.String(), st.Pos.File, st.Pos.Pos)
	wait := backoff.Policy{Initial: time.Second, Max: 10 * time.Second}.Timer()
	for {
		err := s.putForward(ctx, source, st, b)
		if err == nil || !Retryable(err) || ctx.Err() != nil {
			if err != nil {
				return fmt.Errorf("checkpoint KV bucket %q: %w", s.cfg.KVBucket, explainJS(err))
			}
			return nil
		}
		if err := wait.Wait(ctx); err != nil {
			return err
		}
	}
}

func kvKey(pipeline, source string) string {
	return tokenCleaner.Replace(pipeline) + "." + tokenCleaner.Replace(source)
}
