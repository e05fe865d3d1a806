package nats

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"sort"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluice-cdc/sluice/binlog"
	"github.com/sluice-cdc/sluice/checkpoint"
	"github.com/sluice-cdc/sluice/sqltext"
)

// The incremental snapshot (replicator/incremental.go) on a NATS sink: a
// table is published as read events, a chunk at a time, while the
// pipeline streams. Its request and progress live in the stream, as the
// initial snapshot's do, one record a message on
// "<subject prefix>_snapshot.<pipeline>.<source>.<table hash>.incremental"
// (header Sluice-Op: snapshot, Sluice-Snapshot: incremental); the last
// record of a table's subject is its state. So the trigger needs nothing
// but the stream: sluice snapshot --incremental publishes a "requested"
// record, the process running the pipeline reads the records every 2s.
//
// A chunk's read events (Sluice-Snapshot: incremental; Debezium op "r"
// with source.snapshot "incremental") go out between two streamed
// transactions, then, once JetStream acknowledged all of them, the
// table's progress record (the chunk's last key, fenced by the lease like
// every publish). A kill between the two publishes the chunk again on
// resume: its Msg-Ids carry a hash of its rows, so JetStream drops a
// repeat of the same rows (within the stream's duplicate window); rows
// that changed meanwhile go out again, each read event still the row's
// state at its place in the stream. Chunks whose progress record is in
// the stream are never read again.

// incrementalRecord is an incremental snapshot record's body.
type incrementalRecord struct {
	Schema        string `json:"schema"`
	Table         string `json:"table"`
	State         string `json:"state"`
	After         []byte `json:"after,omitempty"` // the SQL condition selecting the rows not copied yet
	Chunks        uint64 `json:"chunks"`
	RowsRead      uint64 `json:"rows_read"`
	RowsWritten   uint64 `json:"rows_written"`
	TolerateUntil string `json:"tolerate_until,omitempty"`
	Message       string `json:"message,omitempty"`
	// Request is the stream sequence of the "requested" record this copy
	// answers: the copy's Msg-Ids carry it.
	Request uint64 `json:"request,omitempty"`
}

// incrementalSubject is a table's incremental snapshot subject, and the
// filter matching every table's of the source.
func (s *Sink) incrementalSubject(source, schema, table string) (subject, filter string) {
	prefix, subj := s.snapshotSubjects(source, schema, table)
	return subj + ".incremental", prefix + "*.incremental"
}

// RequestIncrementalSnapshot records a request to copy a source table
// incrementally (a "requested" record in the stream), for the process
// running the pipeline to pick up. It returns the state the table's
// snapshot had ("" for none); a requested or running one is left as it is.
func (s *Sink) RequestIncrementalSnapshot(ctx context.Context, source, schemaName, table string) (string, error) {
	subj, _ := s.incrementalSubject(source, schemaName, table)
	if err := s.streamTakes(progressSubject, subj); err != nil {
		return "", err
	}
	prev, _, err := s.lastIncremental(ctx, subj)
	if err != nil {
		return "", err
	}
	if prev.State == checkpoint.IncrementalRequested || prev.State == checkpoint.IncrementalRunning {
		return prev.State, nil
	}
	rec := incrementalRecord{Schema: schemaName, Table: table, State: checkpoint.IncrementalRequested}
	if _, err := s.publishIncremental(ctx, source, subj, rec, ""); err != nil {
		return "", err
	}
	return prev.State, nil
}

// lastIncremental reads a subject's last record (zero when none).
func (s *Sink) lastIncremental(ctx context.Context, subj string) (incrementalRecord, uint64, error) {
	var rec incrementalRecord
	msg, err := s.stream.GetLastMsgForSubject(ctx, subj)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return rec, 0, nil
	}
	if err != nil {
		return rec, 0, fmt.Errorf("read incremental snapshot record %s from stream %q: %w", subj, s.cfg.Stream, explainJS(err))
	}
	if err := json.Unmarshal(msg.Data, &rec); err != nil {
		return rec, 0, fmt.Errorf("incremental snapshot record %s (stream %q, sequence %d): %w", subj, s.cfg.Stream, msg.Sequence, err)
	}
	if rec.State == checkpoint.IncrementalRequested {
		rec.Request = msg.Sequence
	}
	return rec, msg.Sequence, nil
}

// IncrementalSnapshots returns a source's incremental snapshots, from the
// last record of each table's subject.
func (s *Sink) IncrementalSnapshots(ctx context.Context, source string) ([]checkpoint.IncrementalSnapshot, error) {
	subj0, filter := s.incrementalSubject(source, "", "")
	if s.streamTakes(progressSubject, subj0) != nil {
		return nil, nil // no request can be there; RequestIncrementalSnapshot says what to add to the stream
	}
	info, err := s.stream.Info(ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		return nil, fmt.Errorf("stream %q: %w", s.cfg.Stream, explainJS(err))
	}
	var out []checkpoint.IncrementalSnapshot
	for subj := range info.State.Subjects {
		rec, seq, err := s.lastIncremental(ctx, subj)
		if err != nil {
			return nil, err
		}
		if seq == 0 {
			continue
		}
		st := checkpoint.IncrementalSnapshot{Schema: rec.Schema, Table: rec.Table, State: rec.State, After: rec.After, Chunks: rec.Chunks,
			RowsRead: rec.RowsRead, RowsWritten: rec.RowsWritten, Message: rec.Message}
		if st.TolerateUntil, err = binlog.ParseGTIDSet(rec.TolerateUntil); err != nil {
			return nil, fmt.Errorf("incremental snapshot record %s (stream %q, sequence %d): %w", subj, s.cfg.Stream, seq, err)
		}
		s.mu.Lock()
		if s.incrRequest == nil {
			s.incrRequest = map[string]uint64{}
		}
		s.incrRequest[source+"\x00"+st.Name()] = rec.Request
		s.mu.Unlock()
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	return out, nil
}

// WriteIncrementalChunk publishes rows (full rows of target table dst) as
// read events and waits for their acknowledgement, then publishes the
// table's progress st. With clear (given only for a table without a key,
// copied whole: ClearsRanges is false) a TRUNCATE of dst goes first, as
// the initial snapshot publishes one before a table copied again. With no
// rows and no clear it records st alone.
func (s *Sink) WriteIncrementalChunk(ctx context.Context, source string, st checkpoint.IncrementalSnapshot, dst *binlog.Table, clear []byte, rows []*binlog.Change) error {
	subj, _ := s.incrementalSubject(source, st.Schema, st.Table)
	s.mu.Lock()
	req := s.incrRequest[source+"\x00"+st.Name()]
	at := s.lastAcked[source]
	s.mu.Unlock()
	if req == 0 {
		rec, _, err := s.lastIncremental(ctx, subj)
		if err != nil {
			return err
		}
		req = rec.Request
	}
	reqText := strconv.FormatUint(req, 10)
	now := time.Now()
	// A chunk is written between runs, all of them acknowledged: the
	// stream holds the source up to at, so each of its messages is a
	// place to resume from (recover.go's scan). Without it, a chunk of
	// more than scanLimit rows published last hid the source's last
	// transaction, and a restart went back to the configured start,
	// publishing everything again.
	resume := !at.GTID.IsEmpty() || at.Pos.File != ""
	attempt := "" // the rows' Msg-Ids after a TRUNCATE are this attempt's own
	if clear != nil && dst != nil {
		t := &binlog.Txn{DDL: &binlog.DDL{Schema: dst.Schema, SQL: "TRUNCATE TABLE " + sqltext.QualifiedName(dst.Schema, dst.Name)},
			Executed: at.GTID, Pos: at.Pos, Timestamp: now}
		attempt = "." + strconv.FormatInt(now.UnixNano(), 36)
		id := s.cfg.Pipeline + "|" + source + "|incremental|" + reqText + "|truncate" + attempt + "|"
		if err := s.publishSnapshot(ctx, source, t, &snapshotPub{idPrefix: id, header: "truncate", flag: "incremental", resume: resume}); err != nil {
			return fmt.Errorf("publish the TRUNCATE before the copy of %s: %w", st.Name(), err)
		}
	}
	if len(rows) > 0 {
		// The rows' hash: the same rows published again (a chunk read
		// again after a kill) have the same Msg-Ids.
		h := fnv.New64a()
		h.Write(sqltext.AppendInsert(nil, "INSERT", rows))
		t := binlog.NewTxn(rows)
		t.Executed, t.Pos, t.Timestamp = at.GTID, at.Pos, now
		id := s.cfg.Pipeline + "|" + source + "|incremental|" + reqText + "|" + strconv.FormatUint(st.Chunks, 10) + "." + strconv.FormatUint(h.Sum64(), 36) + attempt + "|"
		if err := s.publishSnapshot(ctx, source, t, &snapshotPub{idPrefix: id, header: "incremental", flag: "incremental", resume: resume}); err != nil {
			return fmt.Errorf("publish a chunk of %s: %w", rows[0].Table.QualifiedName(), err)
		}
	}
	rec := incrementalRecord{Schema: st.Schema, Table: st.Table, State: st.State, After: st.After, Chunks: st.Chunks, RowsRead: st.RowsRead,
		RowsWritten: st.RowsWritten, TolerateUntil: st.TolerateUntil.String(), Message: st.Message, Request: req}
	_, err := s.publishIncremental(ctx, source, subj, rec, s.cfg.Pipeline+"|"+source+"|incremental|"+reqText+"|"+strconv.FormatUint(st.Chunks, 10)+"|"+st.State)
	return err
}

// publishIncremental publishes a table's incremental snapshot record,
// fenced by the lease when this sink holds it, with msgID as its Nats-Msg-Id
// (none when empty), and returns its stream sequence.
func (s *Sink) publishIncremental(ctx context.Context, source, subj string, rec incrementalRecord, msgID string) (uint64, error) {
	seq, err := s.publishRecord(ctx, source, subj, "incremental", msgID, rec)
	if err != nil {
		return 0, fmt.Errorf("record the incremental snapshot of %s.%s (%s) on %s: %w", rec.Schema, rec.Table, rec.State, subj, err)
	}
	return seq, nil
}

// SetSeeding does nothing: a stream has no rows for a change to miss (a
// consumer applies the changes of a table being seeded as upserts).
func (s *Sink) SetSeeding(string, string, string, bool) {}

// ClearsRanges is false: a stream cannot delete the rows of a key range
// (replicator/incremental.go asks it to clear only a keyless table whole).
func (s *Sink) ClearsRanges() bool { return false }
