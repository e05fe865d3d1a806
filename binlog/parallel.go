package binlog

import (
	"fmt"
	"unsafe"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
)

// Decoding row images is most of the work of reading a binlog. With
// DecodeOptions.Workers, a FileSource hands each row event to a pool of
// goroutines: the reader still frames events, tracks the schema and
// assembles transactions in order, and only the row data (with the table
// decoder of that point in the stream) goes to the pool. The decoded rows
// are put back into their transaction in binlog order (settle), and a
// transaction is returned once all of its rows are decoded.

// decodePool decodes row events in worker goroutines, each with its own
// arena.
type decodePool struct {
	jobs chan *rowsJob
}

func newDecodePool(workers int, render bool) *decodePool {
	p := &decodePool{jobs: make(chan *rowsJob, 4*workers)}
	for range workers {
		go func() {
			// The row data comes from FileSource's chunks, which are
			// never written again while a job holds them: values may
			// point into them.
			a := arena{alias: true}
			var r renderer
			var outs []*Change // the changes of the job being rendered
			for j := range p.jobs {
				if render {
					// Rendered and forgotten: the slice is reused.
					j.out = outs[:0]
				}
				j.decode(&a, render)
				if render {
					if j.err == nil {
						outs = j.out
						r.render(j)
					}
					clear(outs)
					j.out = nil
					a.reset()
				}
				// Nothing points into the row data any more (with
				// RenderJSON; without, the data has no counted chunk).
				j.chunk.release()
				j.chunk = nil
				close(j.done)
			}
			r.ref.release()
		}()
	}
	return p
}

// renderer renders the changes of a worker's jobs as JSON (see
// rendered.go), into pooled chunks (see refBuf) that are never written
// again below their length: a job's JSON holds a reference to its chunk.
type renderer struct {
	enc JSONEncoder
	out []byte  // the tail of ref's chunk the JSON goes to
	ref *refBuf // the worker's own reference
}

func (r *renderer) render(j *rowsJob) {
	if need := 2*len(j.data) + 1024; cap(r.out)-len(r.out) < need {
		r.ref.release()
		r.ref = renderChunks.get(need)
		r.out = r.ref.b[:0]
	}
	start := len(r.out)
	out := r.out
	for i, c := range j.out {
		if i > 0 {
			out = append(out, ',')
		}
		out = r.enc.appendChange(out, c)
	}
	j.n, j.out = len(j.out), nil
	j.json = out[start:len(out):len(out)]
	j.size = int64(len(j.json))
	// Unless it outgrew the room left (the JSON is then in memory of its
	// own, and the chunk's bytes past start are not used), the JSON is in
	// the chunk and holds a reference to it.
	if unsafe.SliceData(out) == unsafe.SliceData(r.out) {
		r.out = out
		j.jsonRef = r.ref
		r.ref.acquire()
	}
}

// renderChunk is the size of the chunks the workers render JSON into
// (DecodeOptions.RenderJSON).
const renderChunk = 256 << 10

// close stops the workers once the jobs sent so far are done. No job may
// be sent after it.
func (p *decodePool) close() { close(p.jobs) }

// rowsJob is one row event to decode.
type rowsJob struct {
	td         *tableDecoder
	e          *replication.RowsEvent
	data       []byte // the row data, after the event's header
	compressed bool   // MariaDB's compressed row event
	op         Op
	query      int
	noFK       bool
	// where locates the event in errors, as the reader would have.
	path  string
	start int64
	pos   Position
	gtid  GTID

	done chan struct{} // closed when out or err is set
	out  []*Change
	size int64 // of out, by changeSize
	err  error
	// With RenderJSON: the n changes as JSON, out nil; jsonRef is the
	// chunk json is in, nil if it has memory of its own.
	json    []byte
	jsonRef *refBuf
	n       int
	// chunk is the read chunk data is in (see refBuf), with RenderJSON:
	// released once the rows are rendered.
	chunk *refBuf
}

func (j *rowsJob) ready() bool {
	select {
	case <-j.done:
		return true
	default:
		return false
	}
}

// decode decodes the job's rows, and sizes them unless they are to be
// rendered as JSON.
func (j *rowsJob) decode(a *arena, rendered bool) {
	defer func() {
		if r := recover(); r != nil {
			j.out = nil
			j.fail(fmt.Errorf("corrupt row event for %s.%s: %s", j.e.Table.Schema, j.e.Table.Table, describePanic(r)))
		}
	}()
	data := j.data
	if j.compressed {
		var err error
		if data, err = mysql.DecompressMariadbData(data); err != nil {
			j.fail(fmt.Errorf("decompress row event: %w", err))
			return
		}
	}
	out, err := j.td.decodeDeferred(j.e, data, j.op, a, j.out)
	if err != nil {
		j.fail(err)
		return
	}
	for _, c := range out {
		c.Query, c.NoFKChecks = j.query, j.noFK
		if !rendered {
			j.size += changeSize(c)
		}
	}
	j.out = out
}

// fail sets the job's error as the reader reports an event's error.
func (j *rowsJob) fail(err error) {
	j.err = fileEventError(j.path, j.start, &EventError{Pos: j.pos, GTID: j.gtid, Err: err})
}

// deferRows prepares a row event for the pool: the table decoder of this
// point in the stream and the row data. It returns nil for an event to
// decode here with decodeRows: one without rows, MySQL's binary JSON
// (rendered by go-mysql), partial JSON (an error), and all of them in the
// differential test of the decoder.
func (d *decoder) deferRows(e *replication.RowsEvent, eventType replication.EventType) (j *rowsJob, err error) {
	if e.Table == nil || len(e.Rows) != 1 || len(e.Rows[0]) != 1 || d.goMySQLRows || eventType == replication.PARTIAL_UPDATE_ROWS_EVENT {
		return nil, nil
	}
	dr, ok := e.Rows[0][0].(deferredRows)
	op := rowOp(e)
	if !ok || dr.pos >= len(dr.data) || op == 0 {
		return nil, nil
	}
	defer func() {
		if r := recover(); r != nil {
			j, err = nil, fmt.Errorf("corrupt row event for %s.%s: %s", e.Table.Schema, e.Table.Table, describePanic(r))
		}
	}()
	td, err := d.tableFor(e.Table)
	if err != nil || td.goMySQL {
		return nil, err
	}
	j = &rowsJob{td: td, e: e, data: dr.data[dr.pos:], op: op, done: make(chan struct{})}
	switch eventType {
	case replication.MARIADB_WRITE_ROWS_COMPRESSED_EVENT_V1, replication.MARIADB_UPDATE_ROWS_COMPRESSED_EVENT_V1,
		replication.MARIADB_DELETE_ROWS_COMPRESSED_EVENT_V1:
		j.compressed = true
	}
	return j, nil
}

// Bounds on the row data waiting in the pool for the transaction being
// read: past them the reader waits for the oldest event to be decoded, and
// moves its rows into the transaction (which spills to disk past its
// budget), so a transaction of any size is read in bounded memory.
const (
	maxPendingJobs  = 256
	maxPendingBytes = 8 << 20
)

// submitRows hands a row event of the current transaction to the pool. It
// returns false for an event to decode here.
func (a *assembler) submitRows(e *replication.RowsEvent, eventType replication.EventType) (bool, error) {
	j, err := a.dec.deferRows(e, eventType)
	if err != nil || j == nil {
		return false, err
	}
	j.query, j.noFK = len(a.cur.Queries), e.Flags&rowsNoFKChecks != 0
	j.path, j.start, j.pos, j.gtid = a.path, a.start, Position{a.file, a.lastPos}, a.cur.GTID
	if a.opts.RenderJSON {
		j.chunk = a.chunk
		j.chunk.acquire()
	}
	t := a.cur
	t.pending = append(t.pending, j)
	t.pendingBytes += int64(len(j.data))
	a.pool.jobs <- j
	// Move what is decoded into the transaction; wait when too much is not.
	for len(t.pending) > 0 && (t.pending[0].ready() || len(t.pending) > maxPendingJobs || t.pendingBytes > maxPendingBytes) {
		if err := t.settleOne(); err != nil {
			a.asyncErr = err
			return true, nil
		}
	}
	return true, nil
}

// addDecoded adds changes decoded here to the current transaction, after
// the rows of its events still in the pool.
func (a *assembler) addDecoded(changes []*Change) error {
	t := a.cur
	if len(t.pending) == 0 {
		if t.rendered != nil {
			return t.rendered.addChanges(changes)
		}
		for _, c := range changes {
			if err := t.changes.add(c); err != nil {
				return err
			}
		}
		return nil
	}
	j := &rowsJob{out: changes, size: -1, done: make(chan struct{})}
	if t.rendered != nil {
		// Rendered now: the values may point into the event's data,
		// which is not kept (see refBuf).
		j.json, j.n, j.out = t.rendered.render(changes), len(changes), nil
	}
	close(j.done)
	t.pending = append(t.pending, j)
	return nil
}

// settleOne waits for the transaction's oldest event in the pool and moves
// its rows into the transaction.
func (t *Txn) settleOne() error {
	j := t.pending[0]
	<-j.done
	t.pending[0] = nil
	t.pending = t.pending[1:]
	t.pendingBytes -= int64(len(j.data))
	if j.err != nil {
		j.jsonRef.release()
		return j.err
	}
	if t.rendered != nil {
		return t.rendered.add(j.json, j.n, j.jsonRef)
	}
	if j.size >= 0 {
		return t.changes.addAll(j.out, j.size)
	}
	for _, c := range j.out {
		if err := t.changes.add(c); err != nil {
			return err
		}
	}
	return nil
}

// settle waits for all of the transaction's rows.
func (t *Txn) settle() error {
	for len(t.pending) > 0 {
		if err := t.settleOne(); err != nil {
			return err
		}
	}
	t.pending = nil
	return nil
}

// settled reports whether none of the transaction's rows is in the pool.
func (t *Txn) settled() bool {
	for _, j := range t.pending {
		if !j.ready() {
			return false
		}
	}
	return true
}

// hasRows reports whether the transaction has row changes, decoded or in
// the pool (an event in the pool has row data, so at least one row).
func (t *Txn) hasRows() bool { return t.Len() > 0 || len(t.pending) > 0 }

// fileEventError locates an error of the event at offset start of a
// binlog file.
func fileEventError(path string, start int64, err error) error {
	return fmt.Errorf("%s: event at offset %d: %w", path, start, err)
}
