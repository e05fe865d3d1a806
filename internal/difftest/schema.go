package difftest

import (
	"fmt"
	"slices"
	"strings"
)

// kind is a column type family.
type kind int

const (
	kInt kind = iota
	kDecimal
	kFloat
	kDouble
	kBit
	kDate
	kTime
	kDatetime
	kTimestamp
	kYear
	kChar
	kVarchar
	kText
	kBinary
	kVarbinary
	kBlob
	kEnum
	kSet
	kJSON
	kGeom
	kUUID
	kInet4
	kInet6
)

var allKinds = []kind{kInt, kDecimal, kFloat, kDouble, kBit, kDate, kTime, kDatetime, kTimestamp, kYear,
	kChar, kVarchar, kText, kBinary, kVarbinary, kBlob, kEnum, kSet, kJSON, kGeom, kUUID, kInet4, kInet6}

// column is one column of the generator's model of a table.
type column struct {
	name     string
	kind     kind
	feat     Feature // the feature it was made for: decides its edge values
	typ      string  // the SQL type, with character set and collation
	n        int     // length, precision, bits, fsp, integer bytes
	scale    int     // DECIMAL scale
	unsigned bool
	charset  string   // text and ENUM/SET
	members  []string // ENUM/SET labels as SQL literals
	geom     string   // geometry subtype
	nullable bool
}

// keyKind is how a table's rows are identified.
type keyKind int

const (
	keyPrimary keyKind = iota
	keyUnique          // a unique NOT NULL key and no primary key
	keyNone
)

// table is the generator's model of one table.
type table struct {
	name    string
	cols    []*column
	key     keyKind
	keyCols []string
	shape   Feature // KeylessDups or KeylessApprox for those shapes, else ""
	nextCol int
}

func (t *table) col(name string) *column {
	for _, c := range t.cols {
		if c.name == name {
			return c
		}
	}
	return nil
}

// hasID reports whether the table has the integer id column the DML's
// WHERE clauses use.
func (t *table) hasID() bool { return t.col("id") != nil }

// Charset is one of the server's character sets.
type Charset struct {
	Name       string
	MaxLen     int
	Collations []string // the first is the default
}

// commonCharsets are the character sets Types uses without AllCharsets.
var commonCharsets = []string{"utf8mb4", "utf8mb3", "latin1", "ascii"}

// wideCharsets are the character sets that are not ASCII-compatible.
var wideCharsets = []string{"ucs2", "utf16", "utf16le", "utf32"}

func (g *gen) charsets(f Feature) []Charset {
	var out []Charset
	for _, cs := range g.opts.Charsets {
		wide := slices.Contains(wideCharsets, cs.Name)
		switch {
		case cs.Name == "binary":
		case f == WideCharsets && wide:
			out = append(out, cs)
		case f == InvalidBytes && cs.MaxLen == 1:
			out = append(out, cs)
		case f == Types && !wide && (g.opts.Features[AllCharsets] || slices.Contains(commonCharsets, cs.Name)):
			out = append(out, cs)
		}
	}
	return out
}

// kindsOf lists the column kinds a column feature makes.
func kindsOf(f Feature) []kind {
	switch f {
	case Types:
		return allKinds
	case WideCharsets, Latin1C1, InvalidBytes:
		return []kind{kChar, kVarchar, kText}
	case InvalidDates:
		return []kind{kDate, kDatetime}
	case ZeroDates:
		return []kind{kDate, kDatetime, kTimestamp}
	case UUIDInetZeros:
		return []kind{kUUID, kInet4, kInet6}
	case EnumIndex0:
		return []kind{kEnum}
	case SetCollationEqual:
		return []kind{kEnum, kSet}
	case TimestampEpochFrac:
		return []kind{kTimestamp}
	case KeylessDups, KeylessApprox:
		return []kind{kFloat, kDouble, kJSON, kGeom}
	}
	return nil
}

// columnFeatures are the enabled features that make columns, Types first.
func (g *gen) columnFeatures() []Feature {
	var out []Feature
	for _, f := range Features {
		if g.opts.Features[f] && kindsOf(f) != nil && f != KeylessDups && f != KeylessApprox {
			out = append(out, f)
		}
	}
	if len(out) == 0 {
		out = []Feature{Types}
	}
	return out
}

// pickColumnFeature picks a column feature, Types more often than the rest.
func (g *gen) pickColumnFeature() Feature {
	fs := g.columnFeatures()
	if fs[0] == Types && len(fs) > 1 && g.chance(0.5) {
		return Types
	}
	return fs[g.r.IntN(len(fs))]
}

// newColumn makes a column of a kind for a feature.
func (g *gen) newColumn(t *table, f Feature, k kind) *column {
	t.nextCol++
	c := &column{name: g.columnName(t.nextCol), kind: k, feat: f}
	if f == WideCharsets || f == InvalidBytes || f == Types {
		if css := g.charsets(f); len(css) > 0 {
			cs := css[g.r.IntN(len(css))]
			if f == InvalidBytes && g.chance(0.5) {
				// The sets with the most bytes that are no character:
				// ascii (0x80 and up) and cp1251 (0x98); most others
				// lack only a few.
				if i := slices.IndexFunc(css, func(c Charset) bool { return c.Name == g.pick("ascii", "cp1251") }); i >= 0 {
					cs = css[i]
				}
			}
			c.charset = cs.Name
			if len(cs.Collations) > 1 && g.chance(0.3) {
				c.charset += " COLLATE " + cs.Collations[g.r.IntN(len(cs.Collations))]
			}
		}
	}
	if f == Latin1C1 {
		c.charset = "latin1"
	}
	if c.charset == "" {
		c.charset = "utf8mb4"
	}
	switch k {
	case kInt:
		c.n = []int{1, 2, 3, 4, 8}[g.r.IntN(5)]
		c.unsigned = g.chance(0.4)
		c.typ = map[int]string{1: "TINYINT", 2: "SMALLINT", 3: "MEDIUMINT", 4: "INT", 8: "BIGINT"}[c.n]
		if c.unsigned {
			c.typ += " UNSIGNED"
		}
	case kDecimal:
		c.n = 1 + g.r.IntN(65)
		c.scale = g.r.IntN(min(c.n, 30) + 1)
		c.unsigned = g.chance(0.2)
		c.typ = fmt.Sprintf("DECIMAL(%d,%d)", c.n, c.scale)
		if c.unsigned {
			c.typ += " UNSIGNED"
		}
	case kFloat:
		c.typ = "FLOAT"
	case kDouble:
		c.typ = "DOUBLE"
	case kBit:
		c.n = 1 + g.r.IntN(64)
		c.typ = fmt.Sprintf("BIT(%d)", c.n)
	case kDate:
		c.typ = "DATE"
	case kYear:
		c.typ = "YEAR"
	case kTime, kDatetime, kTimestamp:
		c.n = g.r.IntN(7)
		if f == TimestampEpochFrac {
			c.n = 1 + g.r.IntN(6)
		}
		c.typ = map[kind]string{kTime: "TIME", kDatetime: "DATETIME", kTimestamp: "TIMESTAMP"}[k]
		if c.n > 0 || g.chance(0.3) {
			c.typ += fmt.Sprintf("(%d)", c.n)
		}
	case kChar:
		c.n = g.r.IntN(40)
		c.typ = fmt.Sprintf("CHAR(%d) CHARACTER SET %s", c.n, c.charset)
	case kVarchar:
		c.n = 1 + g.r.IntN(60)
		c.typ = fmt.Sprintf("VARCHAR(%d) CHARACTER SET %s", c.n, c.charset)
	case kText:
		c.n = 60
		c.typ = []string{"TINYTEXT", "TEXT", "MEDIUMTEXT", "LONGTEXT"}[g.r.IntN(4)] + " CHARACTER SET " + c.charset
	case kBinary:
		c.n = 1 + g.r.IntN(32)
		c.typ = fmt.Sprintf("BINARY(%d)", c.n)
	case kVarbinary:
		c.n = 1 + g.r.IntN(64)
		c.typ = fmt.Sprintf("VARBINARY(%d)", c.n)
	case kBlob:
		c.n = 80
		c.typ = []string{"TINYBLOB", "BLOB", "MEDIUMBLOB", "LONGBLOB"}[g.r.IntN(4)]
	case kEnum, kSet:
		g.members(c)
		word := "ENUM"
		if k == kSet {
			word = "SET"
		}
		c.typ = word + "(" + strings.Join(c.members, ",") + ") CHARACTER SET " + c.charset
	case kJSON:
		c.typ = "JSON"
	case kGeom:
		c.geom = []string{"GEOMETRY", "POINT", "LINESTRING", "POLYGON", "MULTIPOINT", "MULTILINESTRING", "MULTIPOLYGON", "GEOMETRYCOLLECTION"}[g.r.IntN(8)]
		c.typ = c.geom
	case kUUID:
		c.typ = "UUID"
	case kInet4:
		c.typ = "INET4"
	case kInet6:
		c.typ = "INET6"
	}
	return c
}

// members makes an ENUM's or SET's labels.
func (g *gen) members(c *column) {
	switch c.feat {
	case SetCollationEqual:
		// Members that compare equal under the collation: the server
		// accepts them with a note under a non-strict sql_mode.
		c.charset = "latin1 COLLATE latin1_swedish_ci"
		pairs := [][2]string{{"y", "ü"}, {"a", "A"}, {"ü", "Y"}, {"o", "ö"}}
		p := pairs[g.r.IntN(len(pairs))]
		ms := []string{p[0], p[1]}
		if g.chance(0.5) {
			ms = append(ms, "x")
		}
		g.r.Shuffle(len(ms), func(i, j int) { ms[i], ms[j] = ms[j], ms[i] })
		for _, m := range ms {
			c.members = append(c.members, quote(m))
		}
		return
	case EnumIndex0:
		c.members = []string{"''"}
	}
	n := 1 + g.r.IntN(6)
	if c.kind == kSet {
		n = 1 + g.r.IntN(10)
	}
	seen := map[string]bool{}
	words := []string{"red", "green", "blue", "a", "b", "c d", "x'y", "it's", "z", "1", "02", "-", "q\\r"}
	if strings.HasPrefix(c.charset, "utf8") {
		words = append(words, "café", "Ж", "漢", "😀")
	}
	for len(c.members) < n && len(seen) < len(words) {
		w := words[g.r.IntN(len(words))]
		if seen[strings.ToLower(w)] || (c.kind == kSet && strings.Contains(w, ",")) {
			continue
		}
		seen[strings.ToLower(w)] = true
		c.members = append(c.members, quote(w))
	}
}

// keyable reports whether a column can be part of a key without a prefix.
func keyable(c *column) bool {
	switch c.kind {
	case kText, kBlob, kJSON, kGeom:
		return false
	case kFloat, kDouble:
		return false // a key on an approximate value is legal but matches badly; keys are exact here
	case kChar, kVarchar:
		return c.n >= 1 && c.n <= 40
	}
	return true
}

// newTable makes a random table.
func (g *gen) newTable(name string) *table {
	t := &table{name: name}
	var shapes []Feature
	for _, f := range []Feature{KeylessDups, KeylessApprox} {
		if g.opts.Features[f] {
			shapes = append(shapes, f)
		}
	}
	onlyShapes := len(shapes) > 0 && len(g.columnFeaturesStrict()) == 0
	if len(shapes) > 0 && (onlyShapes || g.chance(0.22)) {
		t.shape = shapes[g.r.IntN(len(shapes))]
		t.key = keyNone
		if t.shape == KeylessDups {
			t.cols = append(t.cols, &column{name: "id", kind: kInt, typ: "INT", n: 4, nullable: g.chance(0.3)})
		}
		for range 1 + g.r.IntN(3) {
			ks := kindsOf(t.shape)
			c := g.newColumn(t, t.shape, ks[g.r.IntN(len(ks))])
			c.nullable = g.chance(0.3)
			t.cols = append(t.cols, c)
		}
		return t
	}
	t.key = keyKind(g.r.IntN(3))
	t.cols = append(t.cols, &column{name: "id", kind: kInt, typ: "INT", n: 4, nullable: t.key == keyNone && g.chance(0.3)})
	t.keyCols = []string{"id"}
	if t.key != keyNone && g.chance(0.3) {
		// A second key column of a random kind.
		for range 10 {
			f := g.pickColumnFeature()
			ks := kindsOf(f)
			c := g.newColumn(t, f, ks[g.r.IntN(len(ks))])
			if keyable(c) {
				t.cols = append(t.cols, c)
				t.keyCols = append(t.keyCols, c.name)
				break
			}
			t.nextCol--
		}
	}
	for range 1 + g.r.IntN(7) {
		f := g.pickColumnFeature()
		ks := kindsOf(f)
		c := g.newColumn(t, f, ks[g.r.IntN(len(ks))])
		c.nullable = g.chance(0.5)
		t.cols = append(t.cols, c)
	}
	return t
}

// columnFeaturesStrict lists the enabled column features, without the
// fallback to Types.
func (g *gen) columnFeaturesStrict() []Feature {
	var out []Feature
	for _, f := range g.columnFeatures() {
		if g.opts.Features[f] {
			out = append(out, f)
		}
	}
	return out
}

// columnDef is a column's definition in CREATE TABLE or ADD COLUMN.
func columnDef(c *column) string {
	s := ident(c.name) + " " + c.typ
	if c.nullable {
		s += " NULL"
	} else {
		s += " NOT NULL"
	}
	return s
}

// createTable is the CREATE TABLE statement of t.
func createTable(t *table) string {
	var parts []string
	for _, c := range t.cols {
		parts = append(parts, columnDef(c))
	}
	quoted := func(names []string) string {
		var q []string
		for _, n := range names {
			q = append(q, ident(n))
		}
		return strings.Join(q, ", ")
	}
	switch t.key {
	case keyPrimary:
		parts = append(parts, "PRIMARY KEY ("+quoted(t.keyCols)+")")
	case keyUnique:
		parts = append(parts, "UNIQUE KEY uk ("+quoted(t.keyCols)+")")
	}
	return "CREATE TABLE " + ident(t.name) + " (\n  " + strings.Join(parts, ",\n  ") + "\n)"
}
