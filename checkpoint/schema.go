package checkpoint

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/sluice-cdc/sluice/binlog"
	"github.com/sluice-cdc/sluice/binlog/schema"
)

// SchemaVersion is the tracked schema of a source right after a point of
// its stream: the start, or a DDL.
type SchemaVersion struct {
	GTID    binlog.GTIDSet  `json:"gtid"`
	Pos     binlog.Position `json:"pos"`
	Catalog *schema.Catalog `json:"catalog"`
}

// SchemaHistory persists a source's schema versions, so that a restart
// decodes rows with the definitions their tables had at the checkpoint,
// not with today's information_schema (Canal's "column size is not match"
// after a restart past a DDL). A version is written before its DDL is
// delivered, so the history is never behind the checkpoint; At picks the
// version the checkpoint covers.
type SchemaHistory struct {
	path     string
	versions []SchemaVersion
}

// keepVersions bounds the history: older versions are only needed when a
// checkpoint is older than the last few DDLs, which a running pipeline's
// never is for long.
const keepVersions = 20

func schemaHistoryPath(dir, pipeline, source string) string {
	return filepath.Join(dir, pipeline+"."+source+".schema.json")
}

// RemoveSchemaHistory forgets a source's schema versions (sluice reset):
// the next run records the schema it starts with.
func RemoveSchemaHistory(dir, pipeline, source string) error {
	err := os.Remove(schemaHistoryPath(dir, pipeline, source))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// OpenSchemaHistory loads the history of a source (empty if there is none).
func OpenSchemaHistory(dir, pipeline, source string) (*SchemaHistory, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	h := &SchemaHistory{path: schemaHistoryPath(dir, pipeline, source)}
	b, err := os.ReadFile(h.path)
	if errors.Is(err, os.ErrNotExist) {
		return h, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read schema history: %w", err)
	}
	if err := json.Unmarshal(b, &h.versions); err != nil {
		return nil, fmt.Errorf("schema history %s is corrupt: %w; remove it to reload the schema from information_schema", h.path, err)
	}
	return h, nil
}

// At returns the newest version that the checkpoint covers; the first
// (the one recorded when the pipeline first started) when none is covered
// by GTID or position, and nil when there is no history. It is a copy:
// the decoder changes it as DDL comes, while the history keeps (and writes
// out) the version as recorded.
func (h *SchemaHistory) At(s State) *schema.Catalog {
	if len(h.versions) == 0 {
		return nil
	}
	for i := len(h.versions) - 1; i >= 0; i-- {
		v := h.versions[i]
		switch {
		case !v.GTID.IsEmpty() && s.GTID.ContainsSet(v.GTID):
			return v.Catalog.Clone()
		case v.GTID.IsEmpty() && !v.Pos.IsZero() && v.Pos.Compare(s.Pos) <= 0:
			return v.Catalog.Clone()
		}
	}
	return h.versions[0].Catalog.Clone()
}

// Reset drops every version (the pipeline starts over from its
// configured start) and records a first one.
func (h *SchemaHistory) Reset(v SchemaVersion) error {
	h.versions = nil
	return h.Add(v)
}

// Add records a version durably.
func (h *SchemaHistory) Add(v SchemaVersion) error {
	h.versions = append(h.versions, v)
	if len(h.versions) > keepVersions {
		h.versions = h.versions[len(h.versions)-keepVersions:]
	}
	b, err := json.Marshal(h.versions)
	if err != nil {
		return err
	}
	return WriteFileAtomic(h.path, b)
}

// Len is the number of versions kept.
func (h *SchemaHistory) Len() int { return len(h.versions) }
