package binlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
)

// Row images are decoded here rather than by go-mysql for two reasons:
//
//   - correctness: go-mysql decodes unsigned columns as signed without the
//     server's signedness metadata (MariaDB never sends it), drops the
//     fraction of a zero TIME(n), and hands ENUM/SET back as numbers; the
//     column types the schema tracker knows fix all three at the source.
//   - speed: go-mysql allocates a map per row (UnsignedMap), boxes every
//     value twice (its own type, then ours) and formats temporal values
//     with fmt. This decoder writes each value once, in its final type. It
//     is the hot path of every sluice command.
//
// This is the one decoder of row values. Only MySQL's binary JSON is taken
// from go-mysql, whose JSON renderer is used as it is (see mergeJSON);
// go-mysql's decoding of the other values serves only as the tests' oracle.

// deferredRows is what rowsDecodeFunc leaves in RowsEvent.Rows: the row
// data, decoded later by the assembler with the schema of that point in the
// stream. (go-mysql's parser may run ahead of the assembler, in its own
// goroutine, so decoding at parse time could use a stale schema.)
type deferredRows struct {
	data []byte
	pos  int
}

var errShort = errors.New("row data ends inside a value")

// binaryJSON stands for a MySQL binary JSON value until go-mysql's
// rendering of it replaces it (mergeJSON).
type binaryJSON struct{}

// colDecoder decodes one non-NULL value from the start of b, returning it
// and the bytes it used; the value's memory comes from a (see arena).
type colDecoder func(b []byte, a *arena) (Value, int, error)

// decoderFor builds the decoder of column i of a table map.
func decoderFor(tm *replication.TableMapEvent, i int, c *Column) (colDecoder, error) {
	meta := tm.ColumnMeta[i]
	switch c.Type {
	case mysql.MYSQL_TYPE_TINY:
		return intDecoder(1, c.Unsigned), nil
	case mysql.MYSQL_TYPE_SHORT:
		return intDecoder(2, c.Unsigned), nil
	case mysql.MYSQL_TYPE_INT24:
		return intDecoder(3, c.Unsigned), nil
	case mysql.MYSQL_TYPE_LONG:
		return intDecoder(4, c.Unsigned), nil
	case mysql.MYSQL_TYPE_LONGLONG:
		return intDecoder(8, c.Unsigned), nil
	case mysql.MYSQL_TYPE_YEAR:
		return func(b []byte, a *arena) (Value, int, error) {
			if len(b) < 1 {
				return nil, 0, errShort
			}
			if b[0] == 0 {
				return int64(0), 1, nil
			}
			return a.int(int64(b[0]) + 1900), 1, nil
		}, nil
	case mysql.MYSQL_TYPE_FLOAT:
		return func(b []byte, a *arena) (Value, int, error) {
			if len(b) < 4 {
				return nil, 0, errShort
			}
			return math.Float32frombits(binary.LittleEndian.Uint32(b)), 4, nil
		}, nil
	case mysql.MYSQL_TYPE_DOUBLE:
		return func(b []byte, a *arena) (Value, int, error) {
			if len(b) < 8 {
				return nil, 0, errShort
			}
			return math.Float64frombits(binary.LittleEndian.Uint64(b)), 8, nil
		}, nil
	case mysql.MYSQL_TYPE_NEWDECIMAL:
		prec, scale := int(meta>>8), int(meta&0xff)
		if prec == 0 || prec > 65 || scale > 30 || scale > prec {
			return nil, fmt.Errorf("DECIMAL(%d,%d) metadata out of range", prec, scale)
		}
		return func(b []byte, a *arena) (Value, int, error) { return decodeDecimal(b, prec, scale, a) }, nil
	case mysql.MYSQL_TYPE_BIT:
		nbits := int(meta>>8)*8 + int(meta&0xff)
		n := (nbits + 7) / 8
		if n > 8 {
			return nil, fmt.Errorf("BIT(%d) metadata out of range", nbits)
		}
		return func(b []byte, a *arena) (Value, int, error) {
			if len(b) < n {
				return nil, 0, errShort
			}
			var v uint64
			for _, x := range b[:n] {
				v = v<<8 | uint64(x)
			}
			return a.uint(v), n, nil
		}, nil
	case mysql.MYSQL_TYPE_DATE, mysql.MYSQL_TYPE_NEWDATE:
		return func(b []byte, a *arena) (Value, int, error) {
			if len(b) < 3 {
				return nil, 0, errShort
			}
			v := uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16
			return a.keepText(appendDate(a.scratch(10), int(v>>9), int(v>>5&15), int(v&31))), 3, nil
		}, nil
	case mysql.MYSQL_TYPE_DATETIME:
		return func(b []byte, a *arena) (Value, int, error) {
			if len(b) < 8 {
				return nil, 0, errShort
			}
			v := binary.LittleEndian.Uint64(b)
			d, t := v/1000000, v%1000000
			out := appendDate(a.scratch(19), int(d/10000), int(d%10000/100), int(d%100))
			out = append(out, ' ')
			return a.keepText(appendClock(out, int(t/10000), int(t%10000/100), int(t%100))), 8, nil
		}, nil
	case mysql.MYSQL_TYPE_DATETIME2:
		if meta > 6 {
			return nil, fmt.Errorf("column %s: DATETIME fractional-seconds precision %d in the table map (at most 6)", c.Name, meta)
		}
		return datetime2Decoder(int(meta)), nil
	case mysql.MYSQL_TYPE_TIMESTAMP:
		return func(b []byte, a *arena) (Value, int, error) {
			if len(b) < 4 {
				return nil, 0, errShort
			}
			return formatTimestamp(a, int64(binary.LittleEndian.Uint32(b)), 0, 0), 4, nil
		}, nil
	case mysql.MYSQL_TYPE_TIMESTAMP2:
		if meta > 6 {
			return nil, fmt.Errorf("column %s: TIMESTAMP fractional-seconds precision %d in the table map (at most 6)", c.Name, meta)
		}
		dec := int(meta)
		n := 4 + (dec+1)/2
		return func(b []byte, a *arena) (Value, int, error) {
			if len(b) < n {
				return nil, 0, errShort
			}
			sec := int64(binary.BigEndian.Uint32(b))
			return formatTimestamp(a, sec, fracMicros(b[4:n], dec), dec), n, nil
		}, nil
	case mysql.MYSQL_TYPE_TIME:
		return func(b []byte, a *arena) (Value, int, error) {
			if len(b) < 3 {
				return nil, 0, errShort
			}
			v := int32(uint32(b[0])|uint32(b[1])<<8|uint32(b[2])<<16) << 8 >> 8
			neg := v < 0
			if neg {
				v = -v
			}
			return formatTime(a, neg, int64(v/10000), int64(v%10000/100), int64(v%100), 0, 0), 3, nil
		}, nil
	case mysql.MYSQL_TYPE_TIME2:
		if meta > 6 {
			return nil, fmt.Errorf("column %s: TIME fractional-seconds precision %d in the table map (at most 6)", c.Name, meta)
		}
		return time2Decoder(int(meta)), nil
	case mysql.MYSQL_TYPE_ENUM:
		size := int(meta & 0xff)
		if size != 1 && size != 2 {
			return nil, fmt.Errorf("ENUM pack length %d", size)
		}
		conv := enumValue(c.Elems)
		// The members' Values, boxed once: an ENUM costs no allocation.
		boxed := make([]Value, 0, len(c.Elems)+1)
		for i := range len(c.Elems) + 1 {
			v, _ := conv(uint64(i))
			boxed = append(boxed, v)
		}
		return func(b []byte, a *arena) (Value, int, error) {
			if len(b) < size {
				return nil, 0, errShort
			}
			idx := uint64(b[0])
			if size == 2 {
				idx = uint64(binary.LittleEndian.Uint16(b))
			}
			if idx < uint64(len(boxed)) {
				return boxed[idx], size, nil
			}
			v, err := conv(idx)
			return v, size, err
		}, nil
	case mysql.MYSQL_TYPE_SET:
		size := int(meta & 0xff)
		if size < 1 || size > 8 {
			return nil, fmt.Errorf("SET pack length %d", size)
		}
		conv := setValue(c.Elems)
		return func(b []byte, a *arena) (Value, int, error) {
			if len(b) < size {
				return nil, 0, errShort
			}
			var v uint64
			for i := size - 1; i >= 0; i-- {
				v = v<<8 | uint64(b[i])
			}
			return conv(v), size, nil
		}, nil
	case mysql.MYSQL_TYPE_STRING, mysql.MYSQL_TYPE_VARCHAR, mysql.MYSQL_TYPE_VAR_STRING:
		maxLen := int(meta)
		if c.Type == mysql.MYSQL_TYPE_STRING && meta >= 256 {
			// The length's high bits are folded into the type byte.
			b0, b1 := int(meta>>8), int(meta&0xff)
			maxLen = b1 | ((b0&0x30)^0x30)<<4
		}
		prefix := 1
		if maxLen >= 256 {
			prefix = 2
		}
		return stringDecoder(prefix, c), nil
	case mysql.MYSQL_TYPE_BLOB, mysql.MYSQL_TYPE_GEOMETRY, mysql.MYSQL_TYPE_VECTOR, mysql.MYSQL_TYPE_TINY_BLOB,
		mysql.MYSQL_TYPE_MEDIUM_BLOB, mysql.MYSQL_TYPE_LONG_BLOB:
		prefix := int(meta)
		if prefix < 1 || prefix > 4 {
			return nil, fmt.Errorf("BLOB pack length %d", prefix)
		}
		return stringDecoder(prefix, c), nil
	case mysql.MYSQL_TYPE_JSON:
		// MySQL's binary JSON: skipped here, and rendered by go-mysql
		// (mergeJSON).
		prefix := int(meta)
		if prefix < 1 || prefix > 4 {
			return nil, fmt.Errorf("JSON pack length %d", prefix)
		}
		return prefixedDecoder(prefix, func([]byte, *arena) (Value, error) { return binaryJSON{}, nil }), nil
	}
	return nil, fmt.Errorf("column %s has binlog type %d, which sluice cannot decode", c.Name, c.Type)
}

func intDecoder(size int, unsigned bool) colDecoder {
	return func(b []byte, a *arena) (Value, int, error) {
		if len(b) < size {
			return nil, 0, errShort
		}
		var u uint64
		for i := size - 1; i >= 0; i-- {
			u = u<<8 | uint64(b[i])
		}
		if unsigned {
			return a.uint(u), size, nil
		}
		shift := uint(64 - 8*size)
		return a.int(int64(u<<shift) >> shift), size, nil
	}
}

// stringDecoder reads a length-prefixed value and makes it text, bytes,
// JSON or a vector according to the column.
func stringDecoder(prefix int, c *Column) colDecoder { return prefixedDecoder(prefix, bytesValueIn(c)) }

// prefixedDecoder reads a value of a little-endian length of prefix bytes
// and that many bytes, which conv turns into a Value.
func prefixedDecoder(prefix int, conv func([]byte, *arena) (Value, error)) colDecoder {
	return func(b []byte, a *arena) (Value, int, error) {
		if len(b) < prefix {
			return nil, 0, errShort
		}
		var n int
		for i := prefix - 1; i >= 0; i-- {
			n = n<<8 | int(b[i])
		}
		if n > len(b)-prefix {
			return nil, 0, errShort
		}
		v, err := conv(b[prefix:prefix+n], a)
		return v, prefix + n, err
	}
}

var decimalDigitBytes = [10]int{0, 1, 1, 2, 2, 3, 3, 4, 4, 4}

// decodeDecimal decodes MySQL's packed DECIMAL into its exact text form,
// e.g. "-12.340" for DECIMAL(5,3).
func decodeDecimal(b []byte, prec, scale int, a *arena) (Value, int, error) {
	intg := prec - scale
	intFull, intRest := intg/9, intg%9
	fracFull, fracRest := scale/9, scale%9
	size := intFull*4 + decimalDigitBytes[intRest] + fracFull*4 + decimalDigitBytes[fracRest]
	if len(b) < size {
		return nil, 0, errShort
	}
	var tmp [32]byte
	d := append(tmp[:0], b[:size]...)
	neg := d[0]&0x80 == 0
	d[0] ^= 0x80
	if neg {
		for i := range d {
			d[i] = ^d[i]
		}
	}
	out := a.scratch(prec + 3)
	if neg {
		out = append(out, '-')
	}
	read := func(n int) uint32 {
		var v uint32
		for _, x := range d[:n] {
			v = v<<8 | uint32(x)
		}
		d = d[n:]
		return v
	}
	started := false
	if n := decimalDigitBytes[intRest]; n > 0 {
		if v := read(n); v != 0 {
			out = strconv.AppendUint(out, uint64(v), 10)
			started = true
		}
	}
	for range intFull {
		v := read(4)
		if started {
			out = appendPadded(out, uint64(v), 9)
		} else if v != 0 {
			out = strconv.AppendUint(out, uint64(v), 10)
			started = true
		}
	}
	if !started {
		out = append(out, '0')
	}
	if scale > 0 {
		out = append(out, '.')
		for range fracFull {
			out = appendPadded(out, uint64(read(4)), 9)
		}
		if n := decimalDigitBytes[fracRest]; n > 0 {
			out = appendPadded(out, uint64(read(n)), fracRest)
		}
	}
	if neg && isZeroDecimal(out[1:]) {
		return a.decimal(out[1:]), size, nil // -0.00 prints as 0.00
	}
	return a.keepDecimal(out), size, nil
}

func isZeroDecimal(s []byte) bool {
	for _, c := range s {
		if c != '0' && c != '.' {
			return false
		}
	}
	return true
}

func appendPadded(dst []byte, v uint64, width int) []byte {
	var buf [20]byte
	s := strconv.AppendUint(buf[:0], v, 10)
	for i := len(s); i < width; i++ {
		dst = append(dst, '0')
	}
	return append(dst, s...)
}

func append2(dst []byte, v int) []byte { return append(dst, byte('0'+v/10%10), byte('0'+v%10)) }

func appendDate(dst []byte, y, m, d int) []byte {
	dst = append(dst, byte('0'+y/1000%10), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10), '-')
	dst = append2(dst, m)
	dst = append(dst, '-')
	return append2(dst, d)
}

func appendClock(dst []byte, h, m, s int) []byte {
	dst = append2(dst, h)
	dst = append(dst, ':')
	dst = append2(dst, m)
	dst = append(dst, ':')
	return append2(dst, s)
}

// appendFrac appends ".ffffff" cut to dec digits.
func appendFrac(dst []byte, micros int64, dec int) []byte {
	if dec <= 0 {
		return dst
	}
	var buf [6]byte
	for i := 5; i >= 0; i-- {
		buf[i] = byte('0' + micros%10)
		micros /= 10
	}
	dst = append(dst, '.')
	return append(dst, buf[:dec]...)
}

// fracMicros reads the fractional-seconds bytes of a temporal2 value.
func fracMicros(b []byte, dec int) int64 {
	switch dec {
	case 1, 2:
		return int64(b[0]) * 10000
	case 3, 4:
		return int64(binary.BigEndian.Uint16(b)) * 100
	case 5, 6:
		return int64(b[0])<<16 | int64(b[1])<<8 | int64(b[2])
	}
	return 0
}

func formatTimestamp(a *arena, sec, micros int64, dec int) Value {
	out := a.scratch(26)
	if sec == 0 && micros == 0 {
		// 0 is the zero timestamp; 1970-01-01 00:00:00.5 UTC is sec 0 with
		// a fraction, a real time.
		out = append(out, "0000-00-00 00:00:00"...)
	} else {
		t := time.Unix(sec, 0).UTC()
		y, mo, d := t.Date()
		h, mi, s := t.Clock()
		out = appendDate(out, y, int(mo), d)
		out = append(out, ' ')
		out = appendClock(out, h, mi, s)
	}
	return a.keepText(appendFrac(out, micros, dec))
}

func datetime2Decoder(dec int) colDecoder {
	n := 5 + (dec+1)/2
	return func(b []byte, a *arena) (Value, int, error) {
		if len(b) < n {
			return nil, 0, errShort
		}
		v := int64(b[0])<<32 | int64(b[1])<<24 | int64(b[2])<<16 | int64(b[3])<<8 | int64(b[4])
		ip := v - 0x8000000000
		if ip < 0 {
			ip = -ip
		}
		ymd, hms := ip>>17, ip%(1<<17)
		ym := ymd >> 5
		out := appendDate(a.scratch(26), int(ym/13), int(ym%13), int(ymd%(1<<5)))
		out = append(out, ' ')
		out = appendClock(out, int(hms>>12), int(hms>>6%(1<<6)), int(hms%(1<<6)))
		return a.keepText(appendFrac(out, fracMicros(b[5:n], dec), dec)), n, nil
	}
}

// time2Decoder decodes TIME(n) (MySQL 5.6.4+), including negative values
// and hours beyond 24, whose fractional part is stored complemented.
func time2Decoder(dec int) colDecoder {
	n := 3 + (dec+1)/2
	return func(b []byte, a *arena) (Value, int, error) {
		if len(b) < n {
			return nil, 0, errShort
		}
		var packed int64 // microsecond-scaled packed value: intpart<<24 | micros
		ip := int64(b[0])<<16 | int64(b[1])<<8 | int64(b[2])
		switch dec {
		case 0:
			packed = (ip - 0x800000) << 24
		case 1, 2:
			intPart, frac := ip-0x800000, int64(b[3])
			if intPart < 0 && frac != 0 {
				intPart++
				frac -= 0x100
			}
			packed = intPart<<24 + frac*10000
		case 3, 4:
			intPart, frac := ip-0x800000, int64(binary.BigEndian.Uint16(b[3:]))
			if intPart < 0 && frac != 0 {
				intPart++
				frac -= 0x10000
			}
			packed = intPart<<24 + frac*100
		default:
			packed = (ip<<24 | int64(b[3])<<16 | int64(b[4])<<8 | int64(b[5])) - 0x800000000000
		}
		neg := packed < 0
		if neg {
			packed = -packed
		}
		hms := packed >> 24
		return formatTime(a, neg, hms>>12%(1<<10), hms>>6%(1<<6), hms%(1<<6), packed%(1<<24), dec), n, nil
	}
}

func formatTime(a *arena, neg bool, h, m, s, micros int64, dec int) Value {
	out := a.scratch(24)
	if neg {
		out = append(out, '-')
	}
	if h >= 100 {
		out = strconv.AppendInt(out, h, 10)
	} else {
		out = append2(out, int(h))
	}
	out = append(out, ':')
	out = append2(out, int(m))
	out = append(out, ':')
	out = append2(out, int(s))
	return a.keepText(appendFrac(out, micros, dec))
}

// decodeImage decodes one row image: a NULL bitmap over the columns the
// image carries, then their values.
func (td *tableDecoder) decodeImage(data []byte, present []byte, a *arena) ([]Value, int, error) {
	n := len(td.dec)
	count := 0
	for i := 0; i < n; i++ {
		if present[i>>3]&(1<<(uint(i)&7)) != 0 {
			count++
		}
	}
	nullLen := (count + 7) / 8
	if len(data) < nullLen {
		return nil, 0, errShort
	}
	nulls := data[:nullLen]
	pos := nullLen
	row := a.image(n)
	k := 0
	for i := 0; i < n; i++ {
		if present[i>>3]&(1<<(uint(i)&7)) == 0 {
			row[i] = Absent
			continue
		}
		isNull := nulls[k>>3]&(1<<(uint(k)&7)) != 0
		k++
		if isNull {
			continue
		}
		v, used, err := td.dec[i](data[pos:], a)
		if err != nil {
			return nil, 0, fmt.Errorf("%s column %s: %w", td.table.QualifiedName(), td.table.Columns[i].Name, err)
		}
		row[i] = v
		pos += used
	}
	return row, pos, nil
}

// decodeDeferred decodes the rows of an event left by rowsDecodeFunc,
// appended to out.
func (td *tableDecoder) decodeDeferred(e *replication.RowsEvent, data []byte, op Op, a *arena, out []*Change) ([]*Change, error) {
	if err := checkBitmaps(e, len(td.dec), len(data), op); err != nil {
		return nil, err
	}
	for len(data) > 0 {
		img, n, err := td.decodeImage(data, e.ColumnBitmap1, a)
		if err != nil {
			return nil, err
		}
		data = data[n:]
		c := a.change()
		c.Table, c.Op = td.table, op
		switch op {
		case Insert:
			c.After = img
		case Delete:
			c.Before = img
		case Update:
			c.Before = img
			if c.After, n, err = td.decodeImage(data, e.ColumnBitmap2, a); err != nil {
				return nil, err
			}
			data = data[n:]
		}
		out = append(out, c)
	}
	return out, nil
}

// checkBitmaps rejects row events whose column bitmaps cannot describe
// their row data: shorter than the table, or naming no column at all while
// rows follow (each image would then be empty, and a reader would never
// get to the end of the data).
func checkBitmaps(e *replication.RowsEvent, columns, dataLen int, op Op) error {
	if int(e.ColumnCount) != columns {
		return fmt.Errorf("row event for %d columns, the table map has %d", e.ColumnCount, columns)
	}
	check := func(name string, bm []byte) error {
		if len(bm)*8 < columns {
			return fmt.Errorf("row event %s column bitmap of %d bytes is short for %d columns", name, len(bm), columns)
		}
		if dataLen > 0 && countBits(bm, columns) == 0 {
			return fmt.Errorf("row event with %d bytes of row data names no column in its %s bitmap", dataLen, name)
		}
		return nil
	}
	if err := check("before/after", e.ColumnBitmap1); err != nil {
		return err
	}
	if op == Update {
		return check("after", e.ColumnBitmap2)
	}
	return nil
}

func countBits(bm []byte, n int) int {
	c := 0
	for i := 0; i < n && i>>3 < len(bm); i++ {
		if bm[i>>3]&(1<<(uint(i)&7)) != 0 {
			c++
		}
	}
	return c
}
