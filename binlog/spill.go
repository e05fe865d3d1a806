package binlog

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"iter"
	"math"
	"os"
)

// DefaultSpillBytes is how many bytes of decoded changes a transaction holds
// in memory before the rest goes to a temporary file.
const DefaultSpillBytes = 32 << 20

// changeBuffer holds a transaction's changes: in memory up to a budget, then
// in a temporary file. Canal and others hold whole transactions in the heap
// and run out of memory on large ones (canal#726, #4135); a binlog
// transaction can be gigabytes, so this one never holds more than the budget.
//
// The file format is private and short-lived: a stream of records written
// with encodeChange and read back with decodeChange. A generic encoder (gob,
// JSON) would cost more and need type registration for the Value union.
type changeBuffer struct {
	mem    []*Change
	bytes  int64 // estimated size of mem
	budget int64 // 0 means no limit
	dir    string
	n      int

	tables  []*Table
	tableIx map[*Table]int
	last    *Table // the table of the last change added, in tableIx

	file *os.File
	w    *bufio.Writer
	scr  []byte
}

func newChangeBuffer(budget int64, dir string) *changeBuffer {
	return &changeBuffer{budget: budget, dir: dir, tableIx: map[*Table]int{}}
}

func (b *changeBuffer) add(c *Change) error {
	b.n++
	b.noteTable(c.Table)
	if b.file == nil {
		b.mem = append(b.mem, c)
		b.bytes += changeSize(c)
		if b.budget <= 0 || b.bytes <= b.budget {
			return nil
		}
		// Over budget: move everything so far to disk, in order.
		f, w, err := createSpillFile(b.dir)
		if err != nil {
			return err
		}
		b.file, b.w = f, w
		mem := b.mem
		b.mem, b.bytes = nil, 0
		for _, m := range mem {
			if err := b.write(m); err != nil {
				return err
			}
		}
		return nil
	}
	return b.write(c)
}

// createSpillFile creates a transaction's temporary file in dir, unlinked
// at once on Linux-like systems: it disappears with the process even
// after a crash.
func createSpillFile(dir string) (*os.File, *bufio.Writer, error) {
	f, err := os.CreateTemp(dir, "sluice-txn-*.spill")
	if err != nil {
		return nil, nil, fmt.Errorf("spill large transaction to disk: %w", err)
	}
	_ = os.Remove(f.Name())
	return f, bufio.NewWriterSize(f, 256<<10), nil
}

func (b *changeBuffer) noteTable(t *Table) {
	if t == b.last {
		return
	}
	if _, ok := b.tableIx[t]; !ok {
		b.tableIx[t] = len(b.tables)
		b.tables = append(b.tables, t)
	}
	b.last = t
}

// addAll adds changes whose changeSize adds up to size (computed where
// they were decoded).
func (b *changeBuffer) addAll(cs []*Change, size int64) error {
	if b.file != nil || b.budget > 0 && b.bytes+size > b.budget {
		for _, c := range cs {
			if err := b.add(c); err != nil {
				return err
			}
		}
		return nil
	}
	for _, c := range cs {
		b.noteTable(c.Table)
	}
	b.mem = append(b.mem, cs...)
	b.bytes += size
	b.n += len(cs)
	return nil
}

func (b *changeBuffer) write(c *Change) error {
	b.scr = encodeChange(b.scr[:0], c, b.tableIx[c.Table])
	var hdr [binary.MaxVarintLen64]byte
	n := binary.PutUvarint(hdr[:], uint64(len(b.scr)))
	if _, err := b.w.Write(hdr[:n]); err != nil {
		return fmt.Errorf("spill transaction: %w", err)
	}
	if _, err := b.w.Write(b.scr); err != nil {
		return fmt.Errorf("spill transaction: %w", err)
	}
	return nil
}

// truncate drops the changes after the first n (ROLLBACK TO SAVEPOINT).
func (b *changeBuffer) truncate(n int) error {
	if n >= b.n {
		return nil
	}
	if b.file == nil {
		b.mem = b.mem[:n]
		b.n = n
		b.bytes = 0
		for _, c := range b.mem {
			b.bytes += changeSize(c)
		}
		return nil
	}
	// Rare: rewrite the first n records into a new buffer.
	nb := newChangeBuffer(b.budget, b.dir)
	i := 0
	for c, err := range b.all() {
		if err != nil {
			return err
		}
		if i == n {
			break
		}
		if err := nb.add(c); err != nil {
			return err
		}
		i++
	}
	b.close()
	*b = *nb
	return nil
}

func (b *changeBuffer) all() iter.Seq2[*Change, error] {
	return func(yield func(*Change, error) bool) {
		if b.file == nil {
			for _, c := range b.mem {
				if !yield(c, nil) {
					return
				}
			}
			return
		}
		if err := b.w.Flush(); err != nil {
			yield(nil, fmt.Errorf("spill transaction: %w", err))
			return
		}
		r := bufio.NewReaderSize(io.NewSectionReader(b.file, 0, math.MaxInt64), 256<<10)
		var buf []byte
		for range b.n {
			size, err := binary.ReadUvarint(r)
			if err == nil {
				if cap(buf) < int(size) {
					buf = make([]byte, size)
				}
				buf = buf[:size]
				_, err = io.ReadFull(r, buf)
			}
			if err != nil {
				yield(nil, fmt.Errorf("read spilled transaction: %w", err))
				return
			}
			c, err := decodeChange(buf, b.tables)
			if !yield(c, err) || err != nil {
				return
			}
		}
	}
}

func (b *changeBuffer) close() error {
	b.mem = nil
	if b.file == nil {
		return nil
	}
	err := b.file.Close()
	b.file = nil
	return err
}

// HeapBytes estimates the bytes c's images hold (a rendered statement's
// literals are at most about twice that: hex or escaped text).
func (c *Change) HeapBytes() int64 { return changeSize(c) }

// changeSize estimates the heap bytes a change holds.
func changeSize(c *Change) int64 {
	n := int64(64)
	for _, img := range [2][]Value{c.Before, c.After} {
		n += int64(len(img)) * 16
		for _, v := range img {
			switch x := v.(type) {
			case string:
				n += int64(len(x))
			case []byte:
				n += int64(len(x))
			case JSON:
				n += int64(len(x))
			case Decimal:
				n += int64(len(x))
			case []float32:
				n += int64(len(x)) * 4
			}
		}
	}
	return n
}

// Value tags in the spill format.
const (
	tagNull byte = iota
	tagInt
	tagUint
	tagFloat32
	tagFloat64
	tagString
	tagBytes
	tagDecimal
	tagJSON
	tagVector
	tagAbsent
	tagRawText
	tagEnum
	tagSet
	tagUUID
	tagInet4
	tagInet6
)

// spillNoFKChecks is Change.NoFKChecks in the operation's byte.
const spillNoFKChecks = 0x80

func encodeChange(dst []byte, c *Change, table int) []byte {
	dst = binary.AppendUvarint(dst, uint64(table))
	op := byte(c.Op)
	if c.NoFKChecks {
		op |= spillNoFKChecks
	}
	dst = append(dst, op)
	dst = binary.AppendUvarint(dst, uint64(c.Query))
	dst = encodeImage(dst, c.Before)
	return encodeImage(dst, c.After)
}

func encodeImage(dst []byte, img []Value) []byte {
	if img == nil {
		return binary.AppendUvarint(dst, 0)
	}
	dst = binary.AppendUvarint(dst, uint64(len(img))+1)
	for _, v := range img {
		switch x := v.(type) {
		case nil:
			dst = append(dst, tagNull)
		case int64:
			dst = binary.AppendVarint(append(dst, tagInt), x)
		case uint64:
			dst = binary.AppendUvarint(append(dst, tagUint), x)
		case float32:
			dst = binary.LittleEndian.AppendUint32(append(dst, tagFloat32), math.Float32bits(x))
		case float64:
			dst = binary.LittleEndian.AppendUint64(append(dst, tagFloat64), math.Float64bits(x))
		case string:
			dst = appendBytes(append(dst, tagString), []byte(x))
		case []byte:
			dst = appendBytes(append(dst, tagBytes), x)
		case Decimal:
			dst = appendBytes(append(dst, tagDecimal), []byte(x))
		case JSON:
			dst = appendBytes(append(dst, tagJSON), x)
		case []float32:
			dst = binary.AppendUvarint(append(dst, tagVector), uint64(len(x)))
			for _, f := range x {
				dst = binary.LittleEndian.AppendUint32(dst, math.Float32bits(f))
			}
		case AbsentValue:
			dst = append(dst, tagAbsent)
		case RawText:
			dst = appendBytes(append(dst, tagRawText), x.Bytes)
			dst = appendBytes(dst, []byte(x.Charset))
		case Enum:
			dst = binary.AppendUvarint(append(dst, tagEnum), uint64(x.Index))
			dst = appendBytes(dst, []byte(x.Name))
		case Set:
			dst = binary.AppendUvarint(append(dst, tagSet), x.Bits)
			dst = appendBytes(dst, []byte(x.Names))
		case UUID:
			dst = append(append(dst, tagUUID), x[:]...)
		case Inet4:
			dst = append(append(dst, tagInet4), x[:]...)
		case Inet6:
			dst = append(append(dst, tagInet6), x[:]...)
		default:
			panic(fmt.Sprintf("binlog: value of unexpected type %T", v))
		}
	}
	return dst
}

func appendBytes(dst, b []byte) []byte {
	return append(binary.AppendUvarint(dst, uint64(len(b))), b...)
}

var errCorruptSpill = errors.New("corrupt spill record")

type spillReader struct {
	b   []byte
	err error
}

func (r *spillReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errCorruptSpill
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *spillReader) bytes(n uint64) []byte {
	if uint64(len(r.b)) < n {
		r.err = errCorruptSpill
		return nil
	}
	out := make([]byte, n)
	copy(out, r.b)
	r.b = r.b[n:]
	return out
}

func decodeChange(b []byte, tables []*Table) (*Change, error) {
	r := &spillReader{b: b}
	ti := r.uvarint()
	if r.err != nil || ti >= uint64(len(tables)) || len(r.b) == 0 {
		return nil, errCorruptSpill
	}
	c := &Change{Table: tables[ti], Op: Op(r.b[0] &^ spillNoFKChecks), NoFKChecks: r.b[0]&spillNoFKChecks != 0}
	r.b = r.b[1:]
	c.Query = int(r.uvarint())
	c.Before = r.image()
	c.After = r.image()
	if r.err != nil {
		return nil, r.err
	}
	return c, nil
}

func (r *spillReader) image() []Value {
	n := r.uvarint()
	if n == 0 || r.err != nil {
		return nil
	}
	img := make([]Value, n-1)
	for i := range img {
		if len(r.b) == 0 {
			r.err = errCorruptSpill
			return nil
		}
		tag := r.b[0]
		r.b = r.b[1:]
		switch tag {
		case tagNull:
		case tagInt:
			v, k := binary.Varint(r.b)
			if k <= 0 {
				r.err = errCorruptSpill
				return nil
			}
			r.b = r.b[k:]
			img[i] = v
		case tagUint:
			img[i] = r.uvarint()
		case tagFloat32:
			if raw := r.bytes(4); r.err == nil {
				img[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw))
			}
		case tagFloat64:
			if raw := r.bytes(8); r.err == nil {
				img[i] = math.Float64frombits(binary.LittleEndian.Uint64(raw))
			}
		case tagString:
			img[i] = string(r.bytes(r.uvarint()))
		case tagBytes:
			img[i] = r.bytes(r.uvarint())
		case tagDecimal:
			img[i] = Decimal(r.bytes(r.uvarint()))
		case tagJSON:
			img[i] = JSON(r.bytes(r.uvarint()))
		case tagVector:
			n := r.uvarint()
			raw := r.bytes(n * 4)
			if r.err != nil {
				return nil
			}
			vec := make([]float32, n)
			for j := range vec {
				vec[j] = math.Float32frombits(binary.LittleEndian.Uint32(raw[j*4:]))
			}
			img[i] = vec
		case tagAbsent:
			img[i] = Absent
		case tagRawText:
			b := r.bytes(r.uvarint())
			img[i] = RawText{Bytes: b, Charset: string(r.bytes(r.uvarint()))}
		case tagEnum:
			idx := r.uvarint()
			img[i] = Enum{Index: uint16(idx), Name: string(r.bytes(r.uvarint()))}
		case tagSet:
			bits := r.uvarint()
			img[i] = Set{Bits: bits, Names: string(r.bytes(r.uvarint()))}
		case tagUUID:
			if b := r.bytes(16); r.err == nil {
				img[i] = UUID(b)
			}
		case tagInet4:
			if b := r.bytes(4); r.err == nil {
				img[i] = Inet4(b)
			}
		case tagInet6:
			if b := r.bytes(16); r.err == nil {
				img[i] = Inet6(b)
			}
		default:
			r.err = errCorruptSpill
		}
		if r.err != nil {
			return nil
		}
	}
	return img
}
