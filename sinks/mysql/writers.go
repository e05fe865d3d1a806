package mysql

import (
	"sync"

	"github.com/sluice-cdc/sluice/binlog"
	"github.com/sluice-cdc/sluice/sqltext"
)

// writerLog remembers which source transaction last wrote each of the most
// recently written target keys, so that a conflict between two sources
// feeding one target names both transactions. MySQL's multi-source
// replication has no such record; the cost (a map entry per written row,
// bounded) is paid only by pipelines with several sources or a reverse
// pipeline.
type writerLog struct {
	mu   sync.Mutex
	m    map[string]writer
	ring []string // keys in insertion order, for eviction
	next int
}

type writer struct{ source, txn string }

// writerLogSize bounds the keys remembered.
const writerLogSize = 65536

func newWriterLog() *writerLog {
	return &writerLog{m: make(map[string]writer, writerLogSize), ring: make([]string, writerLogSize)}
}

// rowKey names the target row c leaves behind (its after image) or, for a
// delete, the row it removes.
func rowKey(c *binlog.Change, img []binlog.Value) string {
	b := make([]byte, 0, 64)
	b = append(b, c.Table.Schema...)
	b = append(b, '.')
	b = append(b, c.Table.Name...)
	for _, i := range sqltext.KeyColumns(c.Table, img) {
		b = append(b, 0)
		b = sqltext.AppendLiteral(b, &c.Table.Columns[i], img[i])
	}
	return string(b)
}

// record notes that source's transaction t wrote c. A nil log records
// nothing.
func (w *writerLog) record(c *binlog.Change, source string, t *binlog.Txn) {
	if w == nil {
		return
	}
	img := c.After
	if c.Op == binlog.Delete {
		img = c.Before
	}
	k := rowKey(c, img)
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.m[k]; !ok {
		if old := w.ring[w.next]; old != "" {
			delete(w.m, old)
		}
		w.ring[w.next] = k
		w.next = (w.next + 1) % len(w.ring)
	}
	w.m[k] = writer{source: source, txn: t.ID()}
}

// last returns the last recorded writer of the row c conflicts on: the
// key it inserts, or the key it updates or deletes.
func (w *writerLog) last(c *binlog.Change) writer {
	if w == nil {
		return writer{}
	}
	img := c.Before
	if c.Op == binlog.Insert {
		img = c.After
	}
	k := rowKey(c, img)
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.m[k]
}
