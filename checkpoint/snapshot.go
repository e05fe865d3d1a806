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
// A table is copied entirely inside one consistent snapshot of the source,
// taken at At: the table's rows on the target are the source's rows at At.
// Streaming then starts at the earliest At of all tables, and a change to
// this table in a transaction At already contains is dropped (it is in the
// copy).
type TableSnapshot struct {
	Schema, Table string // the source table
	At            State  // the snapshot's position
	Rows          uint64 // rows copied so far
	Done          bool   // every row copied
}

// Name is schema.table.
func (t TableSnapshot) Name() string { return t.Schema + "." + t.Table }

// Earliest is the position from which streaming covers every table's
// snapshot: per MariaDB replication domain, the lowest sequence number of
// all of them (each position is "everything up to"), and the earliest
// binlog position. ok is false when there is no table.
func Earliest(tables []TableSnapshot) (State, bool) {
	if len(tables) == 0 {
		return State{}, false
	}
	out := tables[0].At
	for _, t := range tables[1:] {
		if t.At.Pos.Compare(out.Pos) < 0 {
			out.Pos = t.At.Pos
		}
		switch {
		case t.At.GTID.ContainsSet(out.GTID):
		case out.GTID.ContainsSet(t.At.GTID):
			out.GTID = t.At.GTID.Clone()
		default:
			out.GTID = meet(out.GTID, t.At.GTID)
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
