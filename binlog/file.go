package binlog

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/sluice-cdc/sluice/binlog/schema"
)

// Source yields committed transactions in binlog order.
type Source interface {
	// Next returns the next transaction. It returns io.EOF when the source
	// is exhausted (end of the files, or --stop-at-end reached). The caller
	// closes each Txn when done with it.
	Next(ctx context.Context) (*Txn, error)
	// Catalog is the tracked schema after the last transaction returned.
	Catalog() *schema.Catalog
	Close() error
}

var binlogMagic = []byte{0xfe, 'b', 'i', 'n'}

// FileSource reads binlog (or relay log) files from disk, in the order given.
type FileSource struct {
	paths  []string
	asm    *assembler
	parser *replication.BinlogParser

	idx      int
	f        *os.File
	r        *chunkReader
	checksum checksummer
	size     int64 // of the current file
	queue    []*Txn
	queued   int64 // binlog bytes of the transactions in queue
	err      error // to return once queue is empty
	closed   bool
}

// OpenFiles reads the given binlog files in order.
func OpenFiles(paths []string, opts DecodeOptions) (*FileSource, error) {
	if len(paths) == 0 {
		return nil, errors.New("no binlog files given")
	}
	for _, p := range paths {
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("binlog file: %w", err)
		}
	}
	s := &FileSource{paths: paths, asm: newAssembler(opts), idx: -1}
	s.parser = newParser(opts)
	if opts.Workers > 0 {
		s.asm.pool = newDecodePool(opts.Workers, opts.RenderJSON)
	}
	return s, nil
}

// newParser configures go-mysql's event decoder the way sluice needs it:
// exact decimals as strings, temporal values as MySQL text (TIMESTAMP in
// UTC), JSON in MySQL's own text form, checksums verified, and no row
// decoding for tables the filter drops (as gh-ost does).
func newParser(opts DecodeOptions) *replication.BinlogParser {
	p := replication.NewBinlogParser()
	p.SetUseDecimal(false)
	p.SetParseTime(false)
	p.SetTimestampStringLocation(time.UTC)
	p.SetRenderJSONAsMySQLText(true)
	// Checksums are verified by the readers themselves: go-mysql fails the
	// FORMAT_DESCRIPTION event of a binlog the server still has open,
	// because the server sets LOG_EVENT_BINLOG_IN_USE_F after computing the
	// event's checksum (mysqlbinlog clears the flag before checking).
	p.SetVerifyChecksum(false)
	p.SetPayloadDecoderConcurrency(1)
	p.SetRowsEventDecodeFunc(rowsDecodeFunc(opts))
	return p
}

func rowsDecodeFunc(opts DecodeOptions) func(*replication.RowsEvent, []byte) error {
	f, marker := opts.Filter, opts.Marker
	return func(e *replication.RowsEvent, data []byte) (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("corrupt row event: %s", describePanic(r))
			}
		}()
		pos, err := e.DecodeHeader(data)
		if err != nil {
			return err
		}
		if f != nil && e.Table != nil && !f.Match(string(e.Table.Schema), string(e.Table.Table)) &&
			(marker == nil || !marker.Watches(string(e.Table.Schema), string(e.Table.Table))) {
			return nil
		}
		// Decoded later, by the assembler, with the schema of this point in
		// the stream: see deferredRows.
		e.Rows = [][]any{{deferredRows{data: data, pos: pos}}}
		return nil
	}
}

// chunkReader reads a file in large chunks and hands out its events as
// slices of them, without copying: a chunk is never written again once
// read, so what is handed out may be kept (decoded values point into it;
// see arena.alias). It lives as long as anything handed out from it.
//
// With pool set (DecodeOptions.RenderJSON), the chunks come from it and
// are counted (see refBuf): cur is the chunk buf is in, and the reader
// holds a reference to it until it moves on to the next.
type chunkReader struct {
	f    *os.File
	buf  []byte // buf[off:] has been read and not handed out
	off  int
	n    int64 // file offset of buf[off]
	eof  bool
	pool *refPool
	cur  *refBuf
}

const readChunk = 128 << 10

// peek returns the next n bytes without consuming them, or fewer at the
// end of the file.
func (r *chunkReader) peek(n int) ([]byte, error) {
	for len(r.buf)-r.off < n && !r.eof {
		if cap(r.buf)-r.off < n {
			// A new chunk, with the bytes not handed out yet at its start.
			var nb []byte
			var ref *refBuf
			if r.pool != nil {
				ref = r.pool.get(n)
				nb = ref.b[:len(r.buf)-r.off]
			} else {
				nb = make([]byte, len(r.buf)-r.off, max(readChunk, n))
			}
			copy(nb, r.buf[r.off:])
			r.cur.release()
			r.buf, r.off, r.cur = nb, 0, ref
		}
		m, err := r.f.Read(r.buf[len(r.buf):cap(r.buf)])
		r.buf = r.buf[:len(r.buf)+m]
		if errors.Is(err, io.EOF) {
			r.eof = true
		} else if err != nil {
			return nil, err
		}
	}
	return r.buf[r.off:min(len(r.buf), r.off+n)], nil
}

// close drops the reader's reference to its chunk.
func (r *chunkReader) close() {
	r.cur.release()
	r.buf, r.off, r.cur = nil, 0, nil
}

// take consumes n bytes that peek returned, capacity n.
func (r *chunkReader) take(n int) []byte {
	b := r.buf[r.off : r.off+n : r.off+n]
	r.off += n
	r.n += int64(n)
	return b
}

func (s *FileSource) openNext() error {
	s.closeFile()
	s.idx++
	if s.idx >= len(s.paths) {
		return io.EOF
	}
	path := s.paths[s.idx]
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("binlog file: %w", err)
	}
	magic := make([]byte, 4)
	if _, err := io.ReadFull(f, magic); err != nil || !bytes.Equal(magic, binlogMagic) {
		f.Close()
		return fmt.Errorf("%s is not a binlog file (it does not start with the bytes fe 62 69 6e)", path)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("binlog file: %w", err)
	}
	s.size = st.Size()
	s.f = f
	s.r = &chunkReader{f: f, n: 4}
	if s.asm.opts.RenderJSON && s.asm.pool != nil {
		// Nothing decoded by the workers outlives its rendering: the
		// chunks are reused (see refBuf).
		s.r.pool = readChunks
	}
	s.asm.file = filepath.Base(path)
	s.asm.lastPos = 4
	s.parser.Reset()
	s.checksum = checksummer{}
	return nil
}

// Read-ahead bounds: with a decoding pool, the reader goes on reading while
// the oldest transaction's rows are decoded, up to this many transactions
// or binlog bytes (a larger transaction is returned once it is decoded).
const (
	maxQueuedTxns  = 64
	maxQueuedBytes = 16 << 20
)

// Next implements Source.
func (s *FileSource) Next(ctx context.Context) (*Txn, error) {
	for {
		if len(s.queue) > 0 {
			t := s.queue[0]
			if t.settled() || s.closed || s.err != nil || !s.mayReadAhead() {
				s.queue[0] = nil
				s.queue = s.queue[1:]
				s.queued -= t.Size
				if err := t.settle(); err != nil {
					t.Close()
					return nil, err
				}
				if t.Len() == 0 && t.DDL == nil && len(t.Statements) == 0 && !s.asm.opts.EmitEmpty {
					t.Close() // its row events held no rows after all
					continue
				}
				return t, nil
			}
		} else if s.err != nil {
			err := s.err
			s.err = nil
			return nil, err
		}
		if s.closed {
			return nil, io.EOF
		}
		if err := s.asm.asyncErr; err != nil {
			// The transaction being read lost rows: nothing after the
			// error is read.
			return nil, err
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if s.f == nil {
			if err := s.openNext(); err != nil {
				if errors.Is(err, io.EOF) {
					s.closed = true
					if s.asm.cur != nil {
						s.asm.log.Warn("binlog ends inside a transaction; it was not committed", "gtid", s.asm.cur.GTID.String())
					}
					continue
				}
				s.err = err
				continue
			}
		}
		if err := s.readEvent(); err != nil {
			if errors.Is(err, io.EOF) {
				s.closeFile()
				continue
			}
			s.err = err
			continue
		}
		if s.asm.asyncErr != nil {
			s.err = s.asm.asyncErr
			continue
		}
		for _, t := range s.asm.take() {
			s.queue = append(s.queue, t)
			s.queued += t.Size
		}
	}
}

// mayReadAhead reports whether the reader may read on while the oldest
// transaction is being decoded.
func (s *FileSource) mayReadAhead() bool {
	return s.asm.pool != nil && len(s.queue) < maxQueuedTxns && s.queued < maxQueuedBytes
}

// maxEventSize bounds one event: the server's limit is 1 GiB
// (max_allowed_packet), so anything larger is corruption, not data.
const maxEventSize = 1 << 30

func (s *FileSource) readEvent() (err error) {
	start := s.r.n
	path := s.paths[s.idx]
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%s: corrupt event at offset %d: %s", path, start, describePanic(r))
		}
	}()
	hdr, err := s.r.peek(replication.EventHeaderSize)
	if err != nil {
		return fmt.Errorf("%s: read at offset %d: %w", path, start, err)
	}
	if len(hdr) < replication.EventHeaderSize {
		if len(hdr) == 0 {
			return io.EOF
		}
		return fmt.Errorf("%s: truncated event header at offset %d", path, start)
	}
	size := binary.LittleEndian.Uint32(hdr[9:13])
	if int64(size) > s.size-start {
		return fmt.Errorf("%s: truncated event at offset %d: %d bytes announced, the file has %d left", path, start, size, s.size-start)
	}
	if size < replication.EventHeaderSize || size > maxEventSize {
		return fmt.Errorf("%s: corrupt event at offset %d: event size %d", path, start, size)
	}
	body, err := s.r.peek(int(size))
	if err != nil {
		return fmt.Errorf("%s: read at offset %d: %w", path, start, err)
	}
	if len(body) < int(size) {
		return fmt.Errorf("%s: truncated event at offset %d: %d bytes announced, file ends first", path, start, size)
	}
	raw := s.r.take(int(size))
	if !isRowsEvent(replication.EventType(raw[4])) {
		// Kept by what it decodes to (a table map by its table's
		// decoder): a copy of its own, not a reference to the chunk.
		raw = bytes.Clone(raw)
	}
	if err := s.checksum.verify(raw); err != nil {
		return fmt.Errorf("%s: event at offset %d: %w", path, start, err)
	}
	ev, perr := s.parser.Parse(raw)
	if perr != nil {
		return fmt.Errorf("%s: cannot decode the event at offset %d: %s", path, start, libraryError(perr))
	}
	if fde, ok := ev.Event.(*replication.FormatDescriptionEvent); ok {
		s.checksum.crc = fde.ChecksumAlgorithm == replication.BINLOG_CHECKSUM_ALG_CRC32
	}
	end := uint64(s.r.n)
	if _, ok := ev.Event.(*replication.RotateEvent); ok {
		// A rotate at the end of a file names the next file; the next file
		// is whatever comes next on the command line.
		return nil
	}
	s.asm.path, s.asm.start, s.asm.chunk = path, start, s.r.cur
	err = s.asm.safeHandle(ev, end)
	s.asm.chunk = nil
	if err != nil {
		return fileEventError(path, start, err)
	}
	return nil
}

// safeHandle is handle, with a panic of the decoder turned into an error.
func (a *assembler) safeHandle(ev *replication.BinlogEvent, endPos uint64) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("corrupt %s event: %s", ev.Header.EventType, describePanic(r))
		}
	}()
	return a.handle(ev, endPos)
}

// libraryError is the message of a go-mysql decoding error, without the
// Go runtime text and struct dumps it carries when it recovered a panic.
func libraryError(err error) string {
	msg := err.Error()
	if strings.Contains(msg, "runtime error") || strings.Contains(msg, "panic") {
		return "a length, count or offset in the event points past its end"
	}
	if i := strings.IndexAny(msg, "\n"); i >= 0 {
		msg = msg[:i]
	}
	if len(msg) > 200 {
		msg = msg[:200] + "..."
	}
	return msg
}

// describePanic says what a recovered panic of the decoder means, without
// Go runtime text: the decoder checks lengths against the event, so an
// index out of range is data that lies about its own size.
func describePanic(r any) string {
	if _, ok := r.(runtime.Error); ok {
		return "a length, count or offset in the event points past its end"
	}
	if err, ok := r.(error); ok {
		return err.Error()
	}
	return fmt.Sprint(r)
}

// isRowsEvent reports whether events of type t are row events, whose data
// is only kept until its rows are decoded.
func isRowsEvent(t replication.EventType) bool {
	switch t {
	case replication.WRITE_ROWS_EVENTv0, replication.UPDATE_ROWS_EVENTv0, replication.DELETE_ROWS_EVENTv0,
		replication.WRITE_ROWS_EVENTv1, replication.UPDATE_ROWS_EVENTv1, replication.DELETE_ROWS_EVENTv1,
		replication.WRITE_ROWS_EVENTv2, replication.UPDATE_ROWS_EVENTv2, replication.DELETE_ROWS_EVENTv2,
		replication.MARIADB_WRITE_ROWS_COMPRESSED_EVENT_V1, replication.MARIADB_UPDATE_ROWS_COMPRESSED_EVENT_V1,
		replication.MARIADB_DELETE_ROWS_COMPRESSED_EVENT_V1:
		return true
	}
	return false
}

// Catalog implements Source.
func (s *FileSource) Catalog() *schema.Catalog { return s.asm.Catalog() }

// closeFile closes the current file, if one is open.
func (s *FileSource) closeFile() {
	if s.f == nil {
		return
	}
	s.f.Close()
	s.f = nil
	s.r.close()
}

// Close implements Source.
func (s *FileSource) Close() error {
	s.closeFile()
	s.asm.close()
	if s.asm.pool != nil {
		s.asm.pool.close()
		s.asm.pool = nil
	}
	for _, t := range s.queue {
		t.Close()
	}
	s.queue = nil
	s.closed = true
	return nil
}
