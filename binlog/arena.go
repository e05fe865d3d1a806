package binlog

import "unsafe"

// arena hands out the memory of decoded values in chunks, so that decoding
// a row costs a few allocations per event instead of two per value (the
// bytes of a string, then its box in the Value interface). Profiles of
// `sluice dump` showed allocation as a third of its CPU before.
//
// Everything handed out is written once and never again: strings point
// into an append-only byte chunk, boxed values into slots of typed chunks,
// images into a chunk of Values. A chunk lives as long as any value in it
// (at most a chunk's size kept alive by one value). An arena belongs to one
// goroutine; a nil *arena allocates each value on its own.
//
// With alias set, the row data being decoded is never written again and
// may be kept (FileSource's chunks, see chunkReader): text and bytes point
// into it instead of being copied.
type arena struct {
	alias   bool
	buf     []byte
	vals    []Value
	changes []Change
	strs    slab[string]
	decs    slab[Decimal]
	ints    slab[int64]
	uints   slab[uint64]
	jsons   slab[JSON]
	blobs   slab[[]byte]
}

const (
	arenaText    = 32 << 10 // bytes per text chunk
	arenaMaxText = 1 << 10  // longer values get their own allocation
	arenaVals    = 1024     // Values per image chunk
	arenaChanges = 128      // Changes per chunk
	arenaSlots   = 256      // boxed values per slab chunk
)

// bytes returns a copy of b, never nil. Its capacity is its length, so
// an append to it never writes into the chunk.
func (a *arena) bytes(b []byte) []byte {
	if a == nil || len(b) > arenaMaxText || len(b) == 0 {
		return append(make([]byte, 0, len(b)), b...)
	}
	if cap(a.buf)-len(a.buf) < len(b) {
		a.buf = make([]byte, 0, arenaText)
	}
	start := len(a.buf)
	a.buf = append(a.buf, b...)
	return a.buf[start:len(a.buf):len(a.buf)]
}

// string returns a copy of b as a string.
func (a *arena) string(b []byte) string {
	if a == nil || len(b) > arenaMaxText || len(b) == 0 {
		return string(b)
	}
	c := a.bytes(b)
	return unsafe.String(unsafe.SliceData(c), len(c))
}

// text boxes a copy of b as a string Value.
func (a *arena) text(b []byte) Value {
	if a == nil {
		return string(b)
	}
	return a.strs.box(a.string(b))
}

// scratch returns an empty slice with room for n bytes (n at most
// arenaMaxText) at the end of the arena's text chunk, for a value to be
// formatted in place and kept with keepText.
func (a *arena) scratch(n int) []byte {
	if a == nil {
		return make([]byte, 0, n)
	}
	if cap(a.buf)-len(a.buf) < n {
		a.buf = make([]byte, 0, arenaText)
	}
	return a.buf[len(a.buf):len(a.buf)]
}

// keepText boxes b, appended to what scratch returned, as a string Value.
func (a *arena) keepText(b []byte) Value {
	if a == nil {
		return string(b)
	}
	if len(b) == 0 || unsafe.SliceData(b) != unsafe.SliceData(a.buf[len(a.buf):cap(a.buf)]) {
		return a.text(b) // it outgrew its room (not expected): a copy
	}
	a.buf = a.buf[:len(a.buf)+len(b)]
	return a.strs.box(unsafe.String(unsafe.SliceData(b), len(b)))
}

// keepDecimal is keepText for a Decimal.
func (a *arena) keepDecimal(b []byte) Value {
	if a == nil {
		return Decimal(b)
	}
	if len(b) == 0 || unsafe.SliceData(b) != unsafe.SliceData(a.buf[len(a.buf):cap(a.buf)]) {
		return a.decimal(b)
	}
	a.buf = a.buf[:len(a.buf)+len(b)]
	return a.decs.box(Decimal(unsafe.String(unsafe.SliceData(b), len(b))))
}

// dataBytes is bytes for a slice of the row data: with alias, the data
// itself.
func (a *arena) dataBytes(b []byte) []byte {
	if a != nil && a.alias && len(b) > 0 {
		return b[:len(b):len(b)]
	}
	return a.bytes(b)
}

// dataJSON boxes dataBytes(b) as a JSON Value.
func (a *arena) dataJSON(b []byte) Value {
	if a == nil {
		return JSON(a.dataBytes(b))
	}
	return a.jsons.box(JSON(a.dataBytes(b)))
}

// dataBlob boxes dataBytes(b) as a []byte Value.
func (a *arena) dataBlob(b []byte) Value {
	if a == nil {
		return a.dataBytes(b)
	}
	return a.blobs.box(a.dataBytes(b))
}

// dataText is text for a slice of the row data: with alias, a string
// that points into the data.
func (a *arena) dataText(b []byte) Value {
	if a != nil && a.alias && len(b) > 0 {
		return a.strs.box(unsafe.String(unsafe.SliceData(b), len(b)))
	}
	return a.text(b)
}

// decimal boxes b as a Decimal Value.
func (a *arena) decimal(b []byte) Value {
	if a == nil {
		return Decimal(b)
	}
	return a.decs.box(Decimal(a.string(b)))
}

func (a *arena) int(v int64) Value {
	if a == nil || (v >= 0 && v < 256) { // small values are boxed without allocating
		return v
	}
	return a.ints.box(v)
}

func (a *arena) uint(v uint64) Value {
	if a == nil || v < 256 {
		return v
	}
	return a.uints.box(v)
}

// image returns n zero Values (nil: SQL NULL), capacity n.
func (a *arena) image(n int) []Value {
	if a == nil || n > arenaVals/4 {
		return make([]Value, n)
	}
	if cap(a.vals)-len(a.vals) < n {
		a.vals = make([]Value, 0, arenaVals)
	}
	start := len(a.vals)
	a.vals = a.vals[:start+n]
	return a.vals[start : start+n : start+n]
}

func (a *arena) change() *Change {
	if a == nil {
		return &Change{}
	}
	if len(a.changes) == cap(a.changes) {
		a.changes = make([]Change, 0, arenaChanges)
	}
	a.changes = a.changes[:len(a.changes)+1]
	return &a.changes[len(a.changes)-1]
}

// reset makes the memory of everything handed out so far available
// again: nothing it handed out may be used afterwards. The current chunks
// are kept, cleared where a zero value is relied on (NULL in an image, the
// fields of a Change).
func (a *arena) reset() {
	a.buf = a.buf[:0]
	clear(a.vals)
	a.vals = a.vals[:0]
	clear(a.changes)
	a.changes = a.changes[:0]
	a.strs.reset()
	a.decs.reset()
	a.ints.reset()
	a.uints.reset()
	a.jsons.reset()
	a.blobs.reset()
}

// slab boxes values of type T into a Value without an allocation each: the
// value is stored in a slot of a chunk and the interface points at the
// slot, as the runtime's own boxing points at a fresh allocation. T must
// not be pointer-shaped (pointers, maps, channels, functions, and structs
// or arrays of one of those), whose interfaces hold the pointer itself:
// slab is only used with string, Decimal, int64, uint64, JSON and []byte.
type slab[T any] struct {
	buf []T
	typ unsafe.Pointer // T's type word in an interface
}

// eface is the layout of an interface value with no methods (runtime.eface).
type eface struct {
	typ, data unsafe.Pointer
}

func (s *slab[T]) box(v T) Value {
	if s.typ == nil {
		var z T
		var i any = z
		s.typ = (*eface)(unsafe.Pointer(&i)).typ
	}
	if len(s.buf) == cap(s.buf) {
		s.buf = make([]T, 0, arenaSlots)
	}
	s.buf = append(s.buf, v)
	var out Value
	e := (*eface)(unsafe.Pointer(&out))
	e.typ, e.data = s.typ, unsafe.Pointer(&s.buf[len(s.buf)-1])
	return out
}

func (s *slab[T]) reset() { s.buf = s.buf[:0] }
