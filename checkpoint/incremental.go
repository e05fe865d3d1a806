package checkpoint

import (
	"time"

	"github.com/sluice-cdc/sluice/binlog"
)

// Incremental snapshot states.
const (
	IncrementalRequested = "requested" // recorded by sluice snapshot --incremental; the running process starts it
	IncrementalRunning   = "running"
	IncrementalDone      = "done"
	IncrementalFailed    = "failed"
)

// IncrementalSnapshot is one source table's incremental snapshot (the
// DBLog watermark copy of a table while its pipeline streams), kept by the
// sink with the checkpoint (sinks/mysql: sluice.snapshot_incremental) and
// written in the same target transaction as each chunk of rows it counts.
type IncrementalSnapshot struct {
	Schema, Table string // the source table
	State         string // requested, running, done or failed
	// After is the SQL condition (on the source table's key) selecting the
	// rows not copied yet; nil selects every row.
	After            []byte
	Chunks, RowsRead uint64 // chunks committed, rows they read
	RowsWritten      uint64 // rows they wrote (those changed in a chunk's window are left to the stream)
	// TolerateUntil, once the copy is done, is the stream position up to
	// which the table's changes may still meet rows the copy left to them:
	// until the stream has applied it they are applied as upserts.
	TolerateUntil binlog.GTIDSet
	Message       string // why it failed
	Updated       time.Time
}

// Name is schema.table.
func (t IncrementalSnapshot) Name() string { return t.Schema + "." + t.Table }
