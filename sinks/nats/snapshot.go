package nats

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"sync"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluice-cdc/sluice/binlog"
	"github.com/sluice-cdc/sluice/checkpoint"
	"github.com/sluice-cdc/sluice/sqltext"
)

// The initial snapshot (snapshot: initial) publishes every row of each
// table as a read event, the table copied inside one consistent snapshot
// of its own at position P_T (package snapshot), before streaming starts.
// The sink implements snapshot.Target:
//
//   - Progress is kept in the stream: on "<subject prefix>_snapshot.
//     <pipeline>.<source>.<table hash>" a "begin" record when a table's
//     copy starts and a "done" record once all its read events are
//     acknowledged. The last record of each table's subject is its state.
//   - Read events go out a chunk at a time (the rows the snapshot read with
//     one query), each chunk acknowledged before the next is taken, so no
//     more than a chunk per table is held. Each table's last row is held
//     back until the copy ends and goes out last, marked "last".
//   - A table whose copy was interrupted (a begin record, no done record)
//     is copied again whole, from a new snapshot at a new position: first a
//     TRUNCATE of the table is published (as a source TRUNCATE TABLE would
//     be), so that a consumer drops what it got of the interrupted copy;
//     rows may have changed or gone since. Msg-Ids carry the begin
//     record's sequence, so the new copy is never taken for a repeat of
//     the old one.
//   - Read events carry Sluice-Snapshot and no Sluice-Checkpoint: recovery
//     (scan) skips them. (An incremental snapshot's read events carry the
//     stream's checkpoint: see WriteIncrementalChunk.)

// HdrSnapshot marks what the initial snapshot publishes: "true" on read
// events, "last" on a table's last read event, "truncate" on the TRUNCATE
// before a table copied again, "begin" and "done" on progress records.
const HdrSnapshot = "Sluice-Snapshot"

// snapTable is a table being copied.
type snapTable struct {
	ts      checkpoint.TableSnapshot
	target  *binlog.Table
	begin   uint64 // the stream sequence of its begin record
	msgs    int    // chunks published
	at      time.Time
	pending *binlog.Change // the last row read, published last
}

// snapState is the sink's snapshot bookkeeping.
type snapState struct {
	mu     sync.Mutex // one chunk published at a time
	tables map[string]*snapTable
	// interrupted are target tables (schema.table) whose copy began and
	// did not finish, per SnapshotTables.
	interrupted map[string]bool
}

// progressRecord is a progress record's body.
type progressRecord struct {
	Schema       string `json:"schema"`
	Table        string `json:"table"`
	TargetSchema string `json:"target_schema"`
	TargetTable  string `json:"target_table"`
	GTID         string `json:"gtid"`
	File         string `json:"file"`
	Pos          uint64 `json:"pos"`
	Rows         uint64 `json:"rows"`
	Done         bool   `json:"done"`
}

// snapshotSubjects are a source's progress subjects' prefix ("….") and
// one table's subject.
func (s *Sink) snapshotSubjects(source, schema, table string) (prefix, subject string) {
	prefix = subjectPrefix(s.cfg.Subject) + "_snapshot." + tokenCleaner.Replace(s.cfg.Pipeline) + "." + tokenCleaner.Replace(source) + "."
	h := fnv.New64a()
	h.Write([]byte(schema + "." + table))
	return prefix, prefix + strconv.FormatUint(h.Sum64(), 36)
}

// SnapshotTables is the snapshot progress of the source's tables, read
// from the last record of each table's progress subject.
func (s *Sink) SnapshotTables(ctx context.Context, source string) ([]checkpoint.TableSnapshot, error) {
	prefix, _ := s.snapshotSubjects(source, "", "")
	if s.streamTakes(progressSubject, prefix+"x") != nil {
		// No progress can be there (every pipeline's streams are asked,
		// with snapshot: initial or not); BeginSnapshotTable says what to
		// add to the stream.
		return nil, nil
	}
	info, err := s.stream.Info(ctx, jetstream.WithSubjectFilter(prefix+"*"))
	if err != nil {
		return nil, fmt.Errorf("stream %q: %w", s.cfg.Stream, explainJS(err))
	}
	var out []checkpoint.TableSnapshot
	interrupted := map[string]bool{}
	for subj := range info.State.Subjects {
		msg, err := s.stream.GetLastMsgForSubject(ctx, subj)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read snapshot progress %s from stream %q: %w", subj, s.cfg.Stream, explainJS(err))
		}
		var rec progressRecord
		if err := json.Unmarshal(msg.Data, &rec); err != nil {
			return nil, fmt.Errorf("snapshot progress %s (stream %q, sequence %d): %w", subj, s.cfg.Stream, msg.Sequence, err)
		}
		ts := checkpoint.TableSnapshot{Schema: rec.Schema, Table: rec.Table, Rows: rec.Rows, Done: rec.Done,
			At: checkpoint.State{Pos: binlog.Position{File: rec.File, Pos: rec.Pos}, Updated: msg.Time}}
		if ts.At.GTID, err = binlog.ParseGTIDSet(rec.GTID); err != nil {
			return nil, fmt.Errorf("snapshot progress %s (stream %q, sequence %d): %w", subj, s.cfg.Stream, msg.Sequence, err)
		}
		if !rec.Done {
			interrupted[rec.TargetSchema+"."+rec.TargetTable] = true
		}
		out = append(out, ts)
	}
	s.snap.mu.Lock()
	s.snap.interrupted = interrupted
	s.snap.mu.Unlock()
	return out, nil
}

// progressSubject names a snapshot's progress subject in streamTakes's error.
const progressSubject = "snapshot's progress subject"

// streamTakes checks that the stream's subjects include subject.
func (s *Sink) streamTakes(what, subject string) error {
	cfg := s.stream.CachedInfo().Config
	for _, f := range cfg.Subjects {
		if subjectMatches(f, subject) {
			return nil
		}
	}
	return fmt.Errorf("the %s %s is not among stream %q's subjects %v: add %s> to the stream",
		what, subject, cfg.Name, cfg.Subjects, subject[:strings.LastIndexByte(subject, '.')+1])
}

// TargetTable: a NATS sink has no tables; one whose copy was interrupted
// "has rows" (its read events), which makes the snapshot copy it again
// with truncate.
func (s *Sink) TargetTable(_ context.Context, db, table string) (exists, hasRows bool, err error) {
	s.snap.mu.Lock()
	defer s.snap.mu.Unlock()
	return true, s.snap.interrupted[db+"."+table], nil
}

// CreateTable does nothing: a stream has no tables (TargetTable reports
// every table as existing).
func (s *Sink) CreateTable(context.Context, string, string, string) error { return nil }

// BeginSnapshotTable publishes a TRUNCATE of the target table when an
// earlier copy was interrupted (truncate), then the table's begin record.
func (s *Sink) BeginSnapshotTable(ctx context.Context, source string, ts checkpoint.TableSnapshot, target *binlog.Table, truncate bool) error {
	s.snap.mu.Lock()
	defer s.snap.mu.Unlock()
	if _, subj := s.snapshotSubjects(source, ts.Schema, ts.Table); s.streamTakes(progressSubject, subj) != nil {
		return s.streamTakes(progressSubject, subj)
	}
	st := &snapTable{ts: ts, target: target, at: time.Now()}
	if truncate {
		t := &binlog.Txn{DDL: &binlog.DDL{Schema: target.Schema, SQL: "TRUNCATE TABLE " + sqltext.QualifiedName(target.Schema, target.Name)},
			Executed: ts.At.GTID, Pos: ts.At.Pos, Timestamp: st.at}
		h := fnv.New64a()
		h.Write([]byte(ts.At.GTID.String() + " " + ts.At.Pos.String()))
		// Unique per attempt: the position it truncates for, and the time.
		id := fmt.Sprintf("%s|%s|snapshot|%s|truncate|%x.%d|", s.cfg.Pipeline, source, ts.Name(), h.Sum64(), st.at.UnixNano())
		if err := s.publishSnapshot(ctx, source, t, &snapshotPub{idPrefix: id, header: "truncate", flag: "true"}); err != nil {
			return fmt.Errorf("publish the TRUNCATE before copying %s again: %w", ts.Name(), err)
		}
	}
	seq, err := s.progress(ctx, source, ts, target, "begin")
	if err != nil {
		return err
	}
	st.begin = seq
	if s.snap.tables == nil {
		s.snap.tables = map[string]*snapTable{}
	}
	s.snap.tables[source+"\x00"+ts.Name()] = st
	return nil
}

// WriteSnapshotRows publishes rows as read events and waits for their
// acknowledgement; the chunk's last row waits for the next chunk or the
// table's end. It first waits for turn (the table's earlier chunks
// published), so that a table's rows go out in key order.
func (s *Sink) WriteSnapshotRows(ctx context.Context, source string, ts checkpoint.TableSnapshot, rows []*binlog.Change, turn func(context.Context) error) error {
	if turn != nil {
		if err := turn(ctx); err != nil {
			return err
		}
	}
	if len(rows) == 0 {
		return nil
	}
	s.snap.mu.Lock()
	defer s.snap.mu.Unlock()
	st := s.snap.tables[source+"\x00"+ts.Name()]
	if st == nil {
		return fmt.Errorf("snapshot of %s: rows before BeginSnapshotTable", ts.Name())
	}
	out := make([]*binlog.Change, 0, len(rows))
	if st.pending != nil {
		out = append(out, st.pending)
	}
	out = append(out, rows[:len(rows)-1]...)
	st.pending = rows[len(rows)-1]
	if len(out) == 0 {
		return nil
	}
	return s.publishChunk(ctx, source, st, out, "true")
}

// FinishSnapshotTable publishes the table's last row and, once every read
// event is acknowledged, its done record.
func (s *Sink) FinishSnapshotTable(ctx context.Context, source string, ts checkpoint.TableSnapshot) error {
	s.snap.mu.Lock()
	defer s.snap.mu.Unlock()
	key := source + "\x00" + ts.Name()
	st := s.snap.tables[key]
	if st == nil {
		return fmt.Errorf("snapshot of %s: finished before BeginSnapshotTable", ts.Name())
	}
	if st.pending != nil {
		if err := s.publishChunk(ctx, source, st, []*binlog.Change{st.pending}, "last"); err != nil {
			return err
		}
		st.pending = nil
	}
	if _, err := s.progress(ctx, source, ts, st.target, "done"); err != nil {
		return err
	}
	delete(s.snap.tables, key)
	delete(s.snap.interrupted, st.target.QualifiedName())
	return nil
}

// publishChunk publishes rows of a table as one pseudo-transaction (one
// message in mode transaction, one per row in mode row).
func (s *Sink) publishChunk(ctx context.Context, source string, st *snapTable, rows []*binlog.Change, flag string) error {
	st.msgs++
	t := binlog.NewTxn(rows)
	t.Executed, t.Pos, t.Timestamp = st.ts.At.GTID, st.ts.At.Pos, st.at
	id := s.cfg.Pipeline + "|" + source + "|snapshot|" + strconv.FormatUint(st.begin, 10) + "." + strconv.Itoa(st.msgs) + "|"
	if err := s.publishSnapshot(ctx, source, t, &snapshotPub{idPrefix: id, header: flag, flag: flag}); err != nil {
		return fmt.Errorf("publish the snapshot of %s: %w", st.ts.Name(), err)
	}
	return nil
}

// publishSnapshot publishes one pseudo-transaction and waits until
// JetStream acknowledged all of it.
func (s *Sink) publishSnapshot(ctx context.Context, source string, t *binlog.Txn, snap *snapshotPub) error {
	s.mu.Lock()
	run := s.run(source)
	run.asyncErr = nil
	run.failed = map[string]bool{}
	run.runConn = s.nc.Stats().Reconnects
	s.mu.Unlock()
	ok := false
	defer func() { run.endRun(ok) }()
	if err := s.publishTxnAs(ctx, source, t, snap); err != nil {
		s.waitAsync(ctx, source)
		return err
	}
	if err := s.waitAsync(ctx, source); err != nil {
		return err
	}
	if err := s.checkErrs(source); err != nil {
		return err
	}
	ok = true
	return nil
}

// progress publishes a table's progress record and returns its stream
// sequence.
func (s *Sink) progress(ctx context.Context, source string, ts checkpoint.TableSnapshot, target *binlog.Table, state string) (uint64, error) {
	_, subj := s.snapshotSubjects(source, ts.Schema, ts.Table)
	rec := progressRecord{Schema: ts.Schema, Table: ts.Table, TargetSchema: target.Schema, TargetTable: target.Name,
		GTID: ts.At.GTID.String(), File: ts.At.Pos.File, Pos: ts.At.Pos.Pos, Rows: ts.Rows, Done: state == "done"}
	seq, err := s.publishRecord(ctx, source, subj, state, "", rec)
	if err != nil {
		return 0, fmt.Errorf("record the snapshot of %s (%s) on %s: %w", ts.Name(), state, subj, err)
	}
	return seq, nil
}

// publishRecord publishes rec, a snapshot's progress record, as JSON on
// subj (Sluice-Snapshot: snapshot; msgID, when set, de-duplicates it),
// fenced by the lease, and returns its stream sequence.
func (s *Sink) publishRecord(ctx context.Context, source, subj, snapshot, msgID string, rec any) (uint64, error) {
	body, err := json.Marshal(rec)
	if err != nil {
		return 0, err
	}
	m := natsgo.NewMsg(subj)
	m.Data = body
	m.Header.Set(HdrPipeline, s.cfg.Pipeline)
	m.Header.Set(HdrSource, source)
	m.Header.Set(HdrSnapshot, snapshot)
	m.Header.Set(HdrOp, "snapshot")
	if msgID != "" {
		m.Header.Set(hdrMsgID, msgID)
	}
	return s.publishFenced(ctx, m)
}

// publishFenced publishes m and waits for its acknowledgement, under the
// lease's fence when there is one.
func (s *Sink) publishFenced(ctx context.Context, m *natsgo.Msg) (uint64, error) {
	if fence := s.fenceSeq(); fence != "" {
		m.Header.Set(hdrExpectSubjSeq, fence)
		m.Header.Set(hdrExpectSubjSubj, s.leaseSubject)
	}
	ack, err := s.js.PublishMsg(ctx, m)
	if err != nil {
		return 0, explainJS(s.fencedErr(err))
	}
	return ack.Sequence, nil
}

// SeedSequence publishes a sequence's row as the read event of a table of
// one row (a stream has no sequence to create).
func (s *Sink) SeedSequence(ctx context.Context, source string, ts checkpoint.TableSnapshot, _, _ string, interrupted bool, row *binlog.Change) error {
	_, hasRows, err := s.TargetTable(ctx, row.Table.Schema, row.Table.Name)
	if err != nil {
		return err
	}
	if err := s.BeginSnapshotTable(ctx, source, ts, row.Table, interrupted && hasRows); err != nil {
		return err
	}
	if err := s.WriteSnapshotRows(ctx, source, ts, []*binlog.Change{row}, nil); err != nil {
		return err
	}
	return s.FinishSnapshotTable(ctx, source, ts)
}
