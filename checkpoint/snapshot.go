package checkpoint

import (
	"strconv"
	"strings"

	"github.com/sluice-cdc/sluice/binlog"
)

// TableSnapshot is one source table's snapshot progress, kept by the sink
// with the checkpoint (sinks/mysql: sluice.snapshot), written in the same
// target transaction as each chunk of rows it counts.
//
// A table is copied in key chunks inside one consistent snapshot of the
// source, taken at At. A copy interrupted after some chunks were committed
// resumes after the last one (After) in a new snapshot at a new At: the
// rows copied before are the source's at From, the rest at At. Streaming
// then starts at the earliest From of all tables; a change to this table
// in a transaction From contains is dropped (every part of the copy has
// it), and one between From and At is applied as an upsert (a part of the
// copy may have it already), which brings every row to At.
type TableSnapshot struct {
	Schema, Table string // the source table
	At            State  // the position of the snapshot the copy (or its last part) reads in
	// From is the position of the copy's first part; zero when the copy
	// ran in one snapshot (From is At).
	From State
	// After is the SQL condition on the source table's key selecting the
	// rows after the last chunk committed; nil: no chunk committed yet, or
	// a table without a key (whose copy cannot resume).
	After      []byte
	Chunks     uint64 // chunks committed
	Rows       uint64 // rows copied so far
	Done       bool   // every row copied
	Definition string // the fingerprint of the source table's definition the copy began with
}

// Start is the position of the copy's first part.
func (t TableSnapshot) Start() State {
	if t.From.GTID.IsEmpty() && t.From.Pos.File == "" {
		return t.At
	}
	return t.From
}

// Name is schema.table.
func (t TableSnapshot) Name() string { return t.Schema + "." + t.Table }

// Earliest is the position from which streaming covers every table's
// snapshot (their Start): per MariaDB replication domain, the lowest sequence number of
// all of them (each position is "everything up to"), and the earliest
// binlog position. ok is false when there is no table.
func Earliest(tables []TableSnapshot) (State, bool) {
	if len(tables) == 0 {
		return State{}, false
	}
	out := tables[0].Start()
	for _, t := range tables[1:] {
		at := t.Start()
		if at.Pos.Compare(out.Pos) < 0 {
			out.Pos = at.Pos
		}
		switch {
		case at.GTID.ContainsSet(out.GTID):
		case out.GTID.ContainsSet(at.GTID):
			out.GTID = at.GTID.Clone()
		default:
			out.GTID = meet(out.GTID, at.GTID)
		}
	}
	return out, true
}

// meet is, per MariaDB domain, the lower of two positions; a domain one
// of them lacks is left out (nothing of it is covered by both).
func meet(a, b binlog.GTIDSet) binlog.GTIDSet {
	inB := map[string]string{}
	for _, part := range strings.Split(b.MariaDBPos(), ",") {
		if p := strings.Split(part, "-"); len(p) == 3 {
			inB[p[0]] = part
		}
	}
	var parts []string
	for _, part := range strings.Split(a.MariaDBPos(), ",") {
		p := strings.Split(part, "-")
		if len(p) != 3 {
			continue
		}
		other, ok := inB[p[0]]
		if !ok {
			continue
		}
		if seq(other) < seq(part) {
			part = other
		}
		parts = append(parts, part)
	}
	set, _ := binlog.ParseGTIDSet(strings.Join(parts, ","))
	return set
}

// seq is the sequence number of a MariaDB GTID domain-server-seq.
func seq(gtid string) uint64 {
	n, _ := strconv.ParseUint(gtid[strings.LastIndexByte(gtid, '-')+1:], 10, 64)
	return n
}
