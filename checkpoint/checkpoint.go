// Package checkpoint keeps where each (pipeline, source) stopped: the GTID
// set applied and the binlog position after it.
//
// The set is a GTID *set*, as MySQL's mysql.gtid_executed is, not a single
// position: an applier that commits transactions out of order can record
// exactly which are done without a format change.
//
// Sinks that can (the MySQL sink, the NATS sink) keep the checkpoint with
// the data, written atomically with it; FileStore is for the rest and for
// the schema history.
package checkpoint

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
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

// Store keeps checkpoints.
type Store interface {
	// Load returns the checkpoint of a source; ok is false when there is none.
	Load(ctx context.Context, pipeline, source string) (s State, ok bool, err error)
	// Save records a checkpoint durably before returning.
	Save(ctx context.Context, pipeline, source string, s State) error
}

// FileStore keeps checkpoints in one JSON file per pipeline in a
// directory, replaced atomically (write a temporary file, fsync, rename,
// fsync the directory) so that a crash leaves either the old or the new
// checkpoint, never an empty or partial file (canal#3631, #4312).
type FileStore struct {
	dir string
	mu  sync.Mutex
}

// NewFileStore keeps checkpoints under dir, which it creates.
func NewFileStore(dir string) (*FileStore, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("checkpoint directory: %w", err)
	}
	return &FileStore{dir: dir}, nil
}

func (f *FileStore) path(pipeline string) string {
	return filepath.Join(f.dir, pipeline+".checkpoint.json")
}

type fileContent struct {
	Sources map[string]State `json:"sources"`
}

func (f *FileStore) read(pipeline string) (fileContent, error) {
	c := fileContent{Sources: map[string]State{}}
	b, err := os.ReadFile(f.path(pipeline))
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, fmt.Errorf("read checkpoint: %w", err)
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("checkpoint file %s is corrupt: %w; restore it from a backup or remove it to start from the configured start position", f.path(pipeline), err)
	}
	if c.Sources == nil {
		c.Sources = map[string]State{}
	}
	return c, nil
}

// Load implements Store.
func (f *FileStore) Load(_ context.Context, pipeline, source string) (State, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.read(pipeline)
	if err != nil {
		return State{}, false, err
	}
	s, ok := c.Sources[source]
	return s, ok, nil
}

// Save implements Store.
func (f *FileStore) Save(_ context.Context, pipeline, source string, s State) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.read(pipeline)
	if err != nil {
		return err
	}
	c.Sources[source] = s
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return WriteFileAtomic(f.path(pipeline), b)
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
