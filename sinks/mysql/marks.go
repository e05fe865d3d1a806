package mysql

import (
	"regexp"

	"github.com/sluice-cdc/sluice/binlog"
)

// Loop prevention. Every transaction the sink applies writes its
// checkpoint row (a snapshot's chunk: its progress row in sluice.snapshot
// or sluice.snapshot_incremental, whose first columns are the same), and
// every DDL it runs (a snapshot's CREATE and TRUNCATE too) is preceded, on
// the same connection, by a marker statement: a pipeline reading the
// target (the other direction of a bidirectional pair) recognises both,
// through Marker, and does not send them back.

// The table whose row the sink writes in every transaction it applies:
// its first two columns are the pipeline and the source. The lease table
// (lease.go) has one row per pipeline, written at each takeover: it marks
// the pipeline as a whole (a Mark with no Source).
const (
	markSchema = "sluice"
	markTable  = "checkpoint"
	leaseName  = "lease"
)

// ddlMarkStatement is what the sink runs just before each DDL, on the same
// connection: DDL cannot carry a checkpoint row, and a comment in the DDL
// itself does not survive the servers rewriting some statements (DROP
// TABLE) as they log them. This statement is logged as written, and the
// thread id of its event marks the DDL that follows from that thread.
func ddlMarkStatement(pipeline, source string) string {
	return "/* sluice: pipeline=" + pipeline + " source=" + source + " */ CREATE DATABASE IF NOT EXISTS `" + markSchema + "`"
}

// A snapshot's CREATE TABLE has no source: its mark names the pipeline as
// a whole.
var reDDLMark = regexp.MustCompile(`^/\* sluice: pipeline=(\S+) source=(\S*) \*/`)

// Marker recognises, in a server's binlog, the transactions a MySQL sink
// applied to that server: give it to the decoder (binlog.DecodeOptions).
type Marker struct{}

var _ binlog.Marker = Marker{}

// Watches reports whether schema.table is the sink's checkpoint, lease
// or snapshot progress table.
func (Marker) Watches(schema, table string) bool {
	return schema == markSchema && (table == markTable || table == leaseName || table == snapshotName || table == incrementalName)
}

// RowMark reads the pipeline and source of a checkpoint row, and the
// pipeline of a lease row.
func (Marker) RowMark(_, table string, img []binlog.Value) (binlog.Mark, bool) {
	if table == leaseName && len(img) >= 1 {
		p, _ := img[0].(string)
		return binlog.Mark{Pipeline: p}, true
	}
	if len(img) < 2 {
		return binlog.Mark{}, false
	}
	p, _ := img[0].(string)
	s, _ := img[1].(string)
	return binlog.Mark{Pipeline: p, Source: s}, true
}

// StatementMark reads the marker statement the sink runs before a DDL.
func (Marker) StatementMark(sql string) (binlog.Mark, bool) {
	m := reDDLMark.FindStringSubmatch(sql)
	if m == nil {
		return binlog.Mark{}, false
	}
	return binlog.Mark{Pipeline: m[1], Source: m[2]}, true
}
