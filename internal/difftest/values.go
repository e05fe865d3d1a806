package difftest

import (
	"encoding/hex"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// mode is what a statement needs of the session's sql_mode.
type mode int

const (
	modeNonStrict    mode = 1 << iota // zero dates, ENUM index 0, duplicate SET members
	modeInvalidDates                  // ALLOW_INVALID_DATES
)

// quote is a string literal for any sql_mode but NO_BACKSLASH_ESCAPES.
func quote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\x00", `\0`)
	return "'" + r.Replace(s) + "'"
}

func hexLit(b []byte) string { return "X'" + strings.ToUpper(hex.EncodeToString(b)) + "'" }

// textRunes are the characters text values are made of: ASCII, quotes and
// backslashes, and letters of many scripts (those a column's character set
// lacks become '?' on the source, as CONVERT makes them).
var textRunes = []rune("abcdefXYZ0123456789 _-.,'\"\\%éüÿßØ×ЖёЯαΩ漢字한カ€‰😀")

func (g *gen) chance(p float64) bool { return g.r.Float64() < p }

func (g *gen) pick(xs ...string) string { return xs[g.r.IntN(len(xs))] }

// value is a literal (an SQL expression) for a column, and what it needs
// of the sql_mode.
func (g *gen) value(c *column) (string, mode) {
	if c.nullable && g.chance(0.12) {
		return "NULL", 0
	}
	edge := g.chance(0.25)
	if g.opts.Features.focused() {
		edge = g.chance(0.6)
	}
	switch c.kind {
	case kInt:
		return g.intValue(c, edge), 0
	case kDecimal:
		return g.decimalValue(c, edge), 0
	case kFloat, kDouble:
		return g.floatValue(c, edge), 0
	case kBit:
		var b strings.Builder
		for range c.n {
			b.WriteByte("01"[g.r.IntN(2)])
		}
		if edge {
			return "b'" + strings.Repeat(g.pick("0", "1"), c.n) + "'", 0
		}
		return "b'" + b.String() + "'", 0
	case kDate, kDatetime, kTimestamp:
		return g.dateValue(c, edge)
	case kTime:
		h := g.r.IntN(839)
		if g.chance(0.3) {
			h = g.r.IntN(24)
		}
		s := fmt.Sprintf("%d:%02d:%02d%s", h, g.r.IntN(60), g.r.IntN(60), g.frac(c.n))
		if edge {
			s = g.pick("838:59:59", "-838:59:59", "00:00:00", "-00:00:01")
		} else if g.chance(0.3) {
			s = "-" + s
		}
		return quote(s), 0
	case kYear:
		if edge {
			return g.pick("0", "1901", "2155", "'0'", "'00'", "69", "70"), 0
		}
		return strconv.Itoa(1901 + g.r.IntN(255)), 0
	case kChar, kVarchar, kText:
		return g.textValue(c, edge), 0
	case kBinary, kVarbinary, kBlob:
		n := g.r.IntN(c.n + 1)
		if c.kind != kBlob {
			n = min(n, c.n)
		}
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(g.r.IntN(256))
		}
		if edge && n > 0 {
			// Trailing (and only) zero bytes, and trailing spaces.
			tail := g.r.IntN(n) + 1
			fill := byte(0)
			if g.chance(0.3) {
				fill = ' '
			}
			for i := n - tail; i < n; i++ {
				b[i] = fill
			}
		}
		return hexLit(b), 0
	case kEnum:
		return g.enumValue(c, edge)
	case kSet:
		return g.setValue(c, edge)
	case kJSON:
		if edge {
			return quote(g.pick("null", "{}", "[]", `""`, "0", "-0", "1e400", `"\u0000"`, `{"a":null}`, "true", `[1.0,1,1e0]`)), 0
		}
		return quote(g.json(2)), 0
	case kGeom:
		return g.geomValue(c), 0
	case kUUID:
		b := make([]byte, 16)
		for i := range b {
			b[i] = byte(g.r.IntN(256))
		}
		if g.chance(0.7) {
			// An RFC 4122 version and variant: MariaDB rejects some
			// other combinations (a version above 5 with variant 0xxx).
			b[6] = byte(1+g.r.IntN(7))<<4 | b[6]&0x0f
			b[8] = 0x80 | b[8]&0x3f
		}
		if c.feat == UUIDInetZeros && (edge || g.chance(0.5)) {
			for i := 16 - 1 - g.r.IntN(16); i < 16; i++ {
				b[i] = 0
			}
			if g.chance(0.2) {
				copy(b, []byte{0x12, 0x3e, 0x45, 0x67, 0xe8, 0x9b, 0x12, 0xd3, 0xa4, 0x56, 0x42, 0x66, 0x55, 0x44, 0, 0})
			}
		}
		h := hex.EncodeToString(b)
		return quote(h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]), 0
	case kInet4:
		b := make([]byte, 4)
		for i := range b {
			b[i] = byte(g.r.IntN(256))
		}
		if c.feat == UUIDInetZeros && (edge || g.chance(0.5)) {
			for i := 4 - 1 - g.r.IntN(4); i < 4; i++ {
				b[i] = 0
			}
		}
		return quote(fmt.Sprintf("%d.%d.%d.%d", b[0], b[1], b[2], b[3])), 0
	case kInet6:
		if c.feat == UUIDInetZeros && (edge || g.chance(0.5)) {
			return quote(g.pick("::", "ff00::", "1::", "2001:db8::", "::ffff:1.2.0.0", "fe80::1:0:0:0", "0:0:0:0:0:0:0:0")), 0
		}
		var parts []string
		for range 8 {
			parts = append(parts, strconv.FormatUint(uint64(g.r.IntN(65536)), 16))
		}
		if g.chance(0.3) {
			return quote(parts[0] + "::" + parts[7]), 0
		}
		return quote(strings.Join(parts, ":")), 0
	}
	panic(fmt.Sprintf("difftest: no value for kind %d", c.kind))
}

func (g *gen) intValue(c *column, edge bool) string {
	bits := uint(c.n * 8)
	if c.unsigned {
		maxU := uint64(math.MaxUint64) >> (64 - bits)
		if edge {
			return strconv.FormatUint(g.pickU(0, 1, maxU, maxU-1, maxU/2+1), 10)
		}
		return strconv.FormatUint(g.r.Uint64()&maxU, 10)
	}
	maxS := int64(math.MaxInt64 >> (64 - bits))
	minS := -maxS - 1
	if edge {
		return strconv.FormatInt([]int64{0, -1, 1, maxS, minS, minS + 1}[g.r.IntN(6)], 10)
	}
	v := int64(g.r.Uint64()&(uint64(math.MaxUint64)>>(64-bits))) + minS
	if g.chance(0.5) {
		v = int64(g.r.IntN(2000)) - 1000
		v = max(min(v, maxS), minS)
	}
	return strconv.FormatInt(v, 10)
}

func (g *gen) pickU(xs ...uint64) uint64 { return xs[g.r.IntN(len(xs))] }

func (g *gen) decimalValue(c *column, edge bool) string {
	intDigits := c.n - c.scale
	digits := func(n int, all9 bool) string {
		var b strings.Builder
		for range n {
			if all9 {
				b.WriteByte('9')
			} else {
				b.WriteByte(byte('0' + g.r.IntN(10)))
			}
		}
		return b.String()
	}
	ip := digits(g.r.IntN(intDigits+1), edge)
	if ip == "" {
		ip = "0"
	}
	s := ip
	if c.scale > 0 {
		s += "." + digits(g.r.IntN(c.scale+1), edge)
	}
	if edge && g.chance(0.3) {
		s = g.pick("0", "-0", "0.0")
	}
	if !c.unsigned && g.chance(0.4) && !strings.HasPrefix(s, "-") {
		s = "-" + s
	}
	return s
}

func (g *gen) floatValue(c *column, edge bool) string {
	if edge {
		if c.kind == kFloat {
			return g.pick("0", "-0e0", "1", "0.5", "-1.5", "3.40282e38", "-3.40282e38", "1.17549e-38", "1e-45", "0.1", "16777217")
		}
		return g.pick("0", "-0e0", "1", "0.5", "1.7976931348623157e308", "-1.7976931348623157e308", "2.2250738585072014e-308", "5e-324", "0.1", "9007199254740993")
	}
	if g.chance(0.4) {
		return strconv.Itoa(g.r.IntN(200)-100) + g.pick("", ".5", ".25", ".125")
	}
	if c.kind == kFloat {
		f := float32(g.r.NormFloat64() * math.Pow(10, float64(g.r.IntN(20)-10)))
		return strconv.FormatFloat(float64(f), 'g', -1, 32)
	}
	f := g.r.NormFloat64() * math.Pow(10, float64(g.r.IntN(40)-20))
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// frac is a fraction of seconds with n digits, or "".
func (g *gen) frac(n int) string {
	if n == 0 || g.chance(0.2) {
		return ""
	}
	var b strings.Builder
	b.WriteByte('.')
	for range n {
		b.WriteByte(byte('0' + g.r.IntN(10)))
	}
	return b.String()
}

var monthDays = []int{31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}

func (g *gen) dateValue(c *column, edge bool) (string, mode) {
	y := 1000 + g.r.IntN(9000)
	if c.kind == kTimestamp {
		y = 1971 + g.r.IntN(66)
	}
	m := 1 + g.r.IntN(12)
	d := 1 + g.r.IntN(monthDays[m-1])
	var need mode
	switch {
	case c.feat == InvalidDates && (edge || g.chance(0.5)):
		// Day 29..31 of a month that has fewer.
		m = []int{2, 4, 6, 9, 11}[g.r.IntN(5)]
		d = monthDays[m-1] + 1 + g.r.IntN(31-monthDays[m-1])
		if m == 2 {
			d = 30 + g.r.IntN(2)
		}
		need = modeInvalidDates
	case c.feat == ZeroDates && (edge || g.chance(0.5)):
		need = modeNonStrict
		switch g.r.IntN(3) {
		case 0:
			y, m, d = 0, 0, 0
		case 1:
			m, d = 0, 0
		default:
			d = 0
		}
		if c.kind == kTimestamp {
			return "0", need // the zero TIMESTAMP
		}
	case c.feat == TimestampEpochFrac && (edge || g.chance(0.5)):
		return fmt.Sprintf("FROM_UNIXTIME(%s%s)", g.pick("0", "0", "1"), g.frac(c.n)), 0
	case edge && c.kind != kTimestamp:
		y, m, d = []int{1000, 9999, 1970, 2000}[g.r.IntN(4)], []int{1, 12}[g.r.IntN(2)], []int{1, 31}[g.r.IntN(2)]
	case edge:
		return g.pick("'1970-01-01 00:00:01'", "'2038-01-19 03:14:07'", "FROM_UNIXTIME(1)", "FROM_UNIXTIME(2147483647)"), 0
	}
	s := fmt.Sprintf("%04d-%02d-%02d", y, m, d)
	if c.kind != kDate {
		s += fmt.Sprintf(" %02d:%02d:%02d%s", g.r.IntN(24), g.r.IntN(60), g.r.IntN(60), g.frac(c.n))
	}
	return quote(s), need
}

func (g *gen) textValue(c *column, edge bool) string {
	cs, _, _ := strings.Cut(c.charset, " ")
	maxChars := min(c.n, 30)
	if c.kind == kChar && c.n == 0 {
		return "''"
	}
	switch {
	case c.feat == Latin1C1 && (edge || g.chance(0.5)):
		b := make([]byte, 1+g.r.IntN(max(1, min(maxChars, 8))))
		for i := range b {
			b[i] = []byte{0x81, 0x8D, 0x8F, 0x90, 0x9D, 'a', 0xE9}[g.r.IntN(7)]
		}
		return "_latin1 " + hexLit(b[:min(len(b), maxChars)])
	case c.feat == InvalidBytes && (edge || g.chance(0.5)):
		n := 1 + g.r.IntN(max(1, min(maxChars, 8)))
		b := make([]byte, min(n, maxChars))
		for i := range b {
			if g.chance(0.6) {
				b[i] = byte(0x80 + g.r.IntN(128))
			} else {
				b[i] = byte(0x20 + g.r.IntN(95))
			}
		}
		if cs == "cp1251" && len(b) > 0 && g.chance(0.5) {
			b[0] = 0x98
		}
		return "_" + cs + " " + hexLit(b)
	}
	n := g.r.IntN(maxChars + 1)
	if !edge && n > 12 {
		n = g.r.IntN(13)
	}
	rs := make([]rune, n)
	for i := range rs {
		rs[i] = textRunes[g.r.IntN(len(textRunes))]
	}
	s := string(rs)
	if edge && n > 0 {
		s = s[:len(s)-len(string(rs[n-1]))] + g.pick(" ", "\t", "a")
	}
	return "CONVERT(_utf8mb4" + quote(s) + " USING " + cs + ")"
}

func (g *gen) enumValue(c *column, edge bool) (string, mode) {
	n := len(c.members)
	switch {
	case c.feat == EnumIndex0 && (edge || g.chance(0.4)):
		// The invalid value: index 0, which a non-strict sql_mode stores
		// for a label that is not a member.
		return g.pick("0", "'no such member'"), modeNonStrict
	case c.feat == SetCollationEqual || g.chance(0.3):
		return strconv.Itoa(1 + g.r.IntN(n)), 0
	}
	return c.members[g.r.IntN(n)], 0
}

func (g *gen) setValue(c *column, edge bool) (string, mode) {
	n := len(c.members)
	if c.feat == SetCollationEqual || g.chance(0.5) || edge {
		return strconv.FormatUint(g.r.Uint64()>>(64-n), 10), 0
	}
	var labels []string
	for i, m := range c.members {
		if g.chance(0.4) {
			labels = append(labels, m[1:len(m)-1])
		}
		_ = i
	}
	return "'" + strings.Join(labels, ",") + "'", 0
}

// json is a random JSON document.
func (g *gen) json(depth int) string {
	switch k := g.r.IntN(8); {
	case depth > 0 && k == 0:
		var parts []string
		for i := range g.r.IntN(4) {
			parts = append(parts, fmt.Sprintf("%q: %s", g.pick("a", "b", "ключ", "k"+strconv.Itoa(i)), g.json(depth-1)))
		}
		return "{" + strings.Join(parts, ", ") + "}"
	case depth > 0 && k == 1:
		var parts []string
		for range g.r.IntN(4) {
			parts = append(parts, g.json(depth-1))
		}
		return "[" + strings.Join(parts, ",") + "]"
	case k == 2:
		return g.pick("true", "false", "null")
	case k == 3:
		return strconv.FormatFloat(g.r.NormFloat64()*1e6, 'g', -1, 64)
	case k == 4:
		return strconv.Itoa(g.r.IntN(1 << 30))
	default:
		rs := make([]rune, g.r.IntN(8))
		for i := range rs {
			rs[i] = textRunes[g.r.IntN(len(textRunes))]
		}
		return strconv.Quote(string(rs))
	}
}

func (g *gen) geomValue(c *column) string {
	num := func() string {
		if g.chance(0.5) {
			return strconv.Itoa(g.r.IntN(200) - 100)
		}
		return strconv.FormatFloat(g.r.NormFloat64()*100, 'g', -1, 64)
	}
	pt := func() string { return num() + " " + num() }
	line := func() string { return "(" + pt() + ", " + pt() + ", " + pt() + ")" }
	ring := func() string {
		a := pt()
		return "((" + a + ", " + pt() + ", " + pt() + ", " + a + "))"
	}
	sub := c.geom
	if sub == "GEOMETRY" {
		sub = g.pick("POINT", "LINESTRING", "POLYGON", "MULTIPOINT", "GEOMETRYCOLLECTION")
	}
	var wkt string
	switch sub {
	case "POINT":
		wkt = "POINT(" + pt() + ")"
	case "LINESTRING":
		wkt = "LINESTRING" + line()
	case "POLYGON":
		wkt = "POLYGON" + ring()
	case "MULTIPOINT":
		wkt = "MULTIPOINT(" + pt() + ", " + pt() + ")"
	case "MULTILINESTRING":
		wkt = "MULTILINESTRING(" + line() + ")"
	case "MULTIPOLYGON":
		wkt = "MULTIPOLYGON(" + ring() + ")"
	default:
		wkt = "GEOMETRYCOLLECTION(POINT(" + pt() + "), LINESTRING" + line() + ")"
	}
	if g.chance(0.2) {
		return "ST_GeomFromText('" + wkt + "', 4326)"
	}
	return "ST_GeomFromText('" + wkt + "')"
}
