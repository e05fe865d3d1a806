package binlog

import (
	"fmt"
	"sync"
	"sync/atomic"
)

// With DecodeOptions.RenderJSON, nothing decoded from a row event outlives
// its rendering: the read chunks the events point into (chunkReader) and
// the chunks the workers render JSON into (decodePool) can be reused
// rather than left to the collector. Profiles of `sluice dump --format
// json` showed the page faults of fresh chunks, and the collections they
// cause, as most of what was left of its cost: each chunk now comes from a
// pool and goes back to it once nothing points into it.
//
// A refBuf counts its holders: the reader or worker that fills it, and
// each row event or rendered part that points into it. Each holder
// releases its reference once; the last one returns the chunk to its pool.
// A holder must not touch the bytes after it released its reference.

// refBuf is a chunk of bytes with a count of its holders.
type refBuf struct {
	b    []byte
	refs atomic.Int32
	pool *sync.Pool // nil: an odd size, left to the collector
}

// refPool hands out chunks of one size.
type refPool struct {
	size int
	pool sync.Pool
}

func newRefPool(size int) *refPool {
	p := &refPool{size: size}
	p.pool.New = func() any { return &refBuf{b: make([]byte, size), pool: &p.pool} }
	return p
}

// get returns a chunk of at least n bytes with one reference, the
// caller's: the pool's size, or an unpooled one for more.
func (p *refPool) get(n int) *refBuf {
	var r *refBuf
	if n > p.size {
		r = &refBuf{b: make([]byte, n)}
	} else {
		r = p.pool.Get().(*refBuf)
	}
	r.refs.Store(1)
	return r
}

// acquire adds a holder. A nil refBuf (memory the collector owns) needs
// no counting.
func (r *refBuf) acquire() {
	if r == nil {
		return
	}
	if r.refs.Add(1) <= 1 {
		panic("binlog: refBuf acquired after its release")
	}
}

// release drops a holder's reference; the last one returns the chunk to
// its pool.
func (r *refBuf) release() {
	if r == nil {
		return
	}
	switch n := r.refs.Add(-1); {
	case n > 0:
		return
	case n < 0:
		panic(fmt.Sprintf("binlog: refBuf released %d times too often", -n))
	}
	if poisonReleased {
		for i := range r.b {
			r.b[i] = poisonByte
		}
	}
	if r.pool != nil {
		r.pool.Put(r)
	}
}

// poisonReleased overwrites a chunk's bytes when its last holder releases
// it, so that a read of released memory shows in the output instead of
// reading stale bytes by luck. The package's tests set it.
var poisonReleased bool

// poisonByte is not valid UTF-8 and not JSON: it shows in any output.
const poisonByte = 0xfe

// The pools of DecodeOptions.RenderJSON's chunks, shared by every reader.
var (
	readChunks   = newRefPool(readChunk)
	renderChunks = newRefPool(renderChunk)
)
