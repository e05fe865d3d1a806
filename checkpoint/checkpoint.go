// Package checkpoint keeps where each (pipeline, source) stopped: the GTID
// set applied and the binlog position after it.
//
// The set is a GTID *set*, as MySQL's mysql.gtid_executed is, not a single
// position: an applier that commits transactions out of order can record
// exactly which are done without a format change.
//
// The sinks keep the checkpoint with the data, written atomically with it
// (the MySQL sink in the target's sluice.checkpoint table, the NATS sink in
// the stream or a KV bucket); this package holds its model and the schema
// history, kept in files.
package checkpoint

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/sluice-cdc/sluice/binlog"
)

// ErrBehind is returned by a sink whose checkpoint went backwards (a
// server lost what it had acknowledged): the source must be read again
// from the sink's checkpoint.
var ErrBehind = errors.New("the sink's checkpoint went back")

// State is a source's checkpoint.
type State struct {
	GTID    binlog.GTIDSet  `json:"gtid"`
	Pos     binlog.Position `json:"pos"`
	Updated time.Time       `json:"updated"`
}

// Covers reports whether the transaction t is already part of the state:
// by GTID when t has one, otherwise by position.
func (s State) Covers(t *binlog.Txn) bool {
	if !t.GTID.IsZero() {
		return s.GTID.Contains(t.GTID)
	}
	return !s.Pos.IsZero() && t.Pos.Compare(s.Pos) <= 0
}

// After is the state once t is applied.
func After(t *binlog.Txn) State {
	return State{GTID: t.Executed, Pos: t.Pos, Updated: time.Now().UTC()}
}

// WriteFileAtomic replaces path with data so that a crash at any point
// leaves the old or the new content.
func WriteFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("write %s: sync directory: %w", path, err)
	}
	return nil
}
