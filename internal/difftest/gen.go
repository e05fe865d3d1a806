package difftest

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
)

// Options configures a generator.
type Options struct {
	Seed     uint64
	Features FeatureSet
	// Charsets are the server's character sets (LoadCharsets).
	Charsets []Charset
	// Tables is the number of tables created at the start (default 3 to 7).
	Tables int
	// Steps is the number of transactions and DDL statements (default 120).
	Steps int
}

// Stmt is one statement the generator wants run on the source, in order,
// in one session.
type Stmt struct {
	SQL   string
	Table string // the table it writes, "" for session and transaction control
	// apply updates the generator's model once the statement succeeded
	// (DDL); a failed DDL leaves the model as it was.
	apply func()
	// rejected, when set, sees the server's error number when the
	// statement failed, and its warnings' when it ran.
	rejected func(code uint16)
}

// Batch is a unit of work: a transaction, an autocommitted statement or a
// DDL, with the session settings it runs under.
type Batch []Stmt

// Generator makes one round's statements, deterministically for a seed.
type Generator struct {
	gen
}

type gen struct {
	script []Batch
	r      *rand.Rand
	opts   Options
	db     string
	tables []*table
	seqs   []*sequence
	step   int
	nTable int
	nSeq   int
}

// New makes a generator for the database db.
func New(db string, opts Options) *Generator {
	if opts.Features == nil {
		opts.Features = All()
	}
	g := &Generator{gen{r: rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x5eed_d1ff)), opts: opts, db: db}}
	if g.opts.Tables == 0 {
		g.opts.Tables = 3 + g.r.IntN(5)
	}
	if g.opts.Steps == 0 {
		g.opts.Steps = 120
	}
	return g
}

// Script is a generator that runs fixed statements, one batch each,
// after creating and selecting the database db: a hand-written case.
func Script(db string, stmts ...string) *Generator {
	g := New(db, Options{Tables: -1})
	for _, s := range stmts {
		g.script = append(g.script, Batch{{SQL: s}})
	}
	return g
}

// Next returns the next batch, or nil when the round is over.
func (g *Generator) Next() Batch {
	if g.opts.Tables < 0 {
		if g.step == 0 {
			g.step++
			return Batch{{SQL: "CREATE DATABASE " + ident(g.db)}, {SQL: "USE " + ident(g.db)}}
		}
		if g.step > len(g.script) {
			return nil
		}
		g.step++
		return g.script[g.step-2]
	}
	if g.step == 0 {
		g.step++
		return Batch{
			{SQL: "CREATE DATABASE `" + g.db + "` CHARACTER SET " + g.pick("latin1", "utf8mb4", "utf8mb3", "cp1251")},
			{SQL: "USE " + ident(g.db)},
		}
	}
	if g.step <= g.opts.Tables {
		g.step++
		return g.createBatch()
	}
	if g.step > g.opts.Tables+g.opts.Steps {
		return nil
	}
	g.step++
	if g.opts.Features[Sequences] && (g.chance(0.06) || g.opts.Features.focused() && g.chance(0.4)) {
		return g.seqBatch()
	}
	ddl := g.opts.Features[DDL] || g.opts.Features[DDLClock]
	if ddl && g.chance(0.08) {
		if b := g.ddlBatch(); b != nil {
			return b
		}
	}
	return g.txnBatch()
}

// Tables lists the tables the round created, in order.
func (g *Generator) Tables() []string {
	var out []string
	for _, t := range g.tables {
		out = append(out, t.name)
	}
	return out
}

func (g *gen) createBatch() Batch {
	g.nTable++
	t := g.newTable(g.tableName(g.nTable))
	m := modeNonStrict // collation-equal ENUM/SET members are accepted with a note only
	return Batch{g.session(m), {SQL: createTable(t), Table: t.name, apply: func() { g.tables = append(g.tables, t) }}}
}

// session sets sql_mode and time_zone for the next statements: a random
// mode that satisfies need.
func (g *gen) session(need mode) Stmt {
	var sqlMode string
	switch {
	case need&modeInvalidDates != 0:
		sqlMode = g.pick("ALLOW_INVALID_DATES", "ALLOW_INVALID_DATES,NO_ENGINE_SUBSTITUTION")
	case need&modeNonStrict != 0:
		sqlMode = g.pick("", "NO_ENGINE_SUBSTITUTION")
	default:
		sqlMode = g.pick("STRICT_TRANS_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_AUTO_CREATE_USER,NO_ENGINE_SUBSTITUTION",
			"", "TRADITIONAL", "PAD_CHAR_TO_FULL_LENGTH", "STRICT_ALL_TABLES")
	}
	tz := g.pick("'+00:00'", "'+05:30'", "'-08:00'", "'+13:00'")
	return Stmt{SQL: "SET SESSION sql_mode = '" + sqlMode + "', time_zone = " + tz}
}

// txnBatch is a transaction of 1 to 6 statements, or one autocommitted
// statement.
func (g *gen) txnBatch() Batch {
	if len(g.tables) == 0 {
		return Batch{{SQL: "DO 0"}}
	}
	n := 1 + g.r.IntN(6)
	auto := g.chance(0.25)
	if auto {
		n = 1
	}
	var need mode
	var body []Stmt
	for range n {
		t := g.tables[g.r.IntN(len(g.tables))]
		sql, m := g.dml(t)
		need |= m
		body = append(body, Stmt{SQL: sql, Table: t.name})
		if s, ok := g.nextvalIn(); ok {
			body = append(body, s)
		}
	}
	b := Batch{g.session(need)}
	if auto {
		return append(b, body...)
	}
	b = append(b, Stmt{SQL: "BEGIN"})
	b = append(b, body...)
	if g.chance(0.05) {
		return append(b, Stmt{SQL: "ROLLBACK"})
	}
	return append(b, Stmt{SQL: "COMMIT"})
}

// idRange is the range of id values, small so that DML hits existing rows
// and keyless tables get duplicates.
const idRange = 30

func (g *gen) id() string { return strconv.Itoa(1 + g.r.IntN(idRange)) }

// row is a VALUES tuple for every column of t.
func (g *gen) row(t *table) (string, mode) {
	var vals []string
	var need mode
	for _, c := range t.cols {
		var v string
		var m mode
		if c.name == "id" {
			v = g.id()
		} else {
			v, m = g.value(c)
		}
		need |= m
		vals = append(vals, v)
	}
	return "(" + strings.Join(vals, ", ") + ")", need
}

func colList(t *table) string {
	var names []string
	for _, c := range t.cols {
		names = append(names, ident(c.name))
	}
	return strings.Join(names, ", ")
}

// assignments is SET's list for 1 to 3 random non-id columns.
func (g *gen) assignments(t *table) (string, mode) {
	var parts []string
	var need mode
	picked := map[*column]bool{}
	for range 1 + g.r.IntN(3) {
		c := t.cols[g.r.IntN(len(t.cols))]
		if picked[c] {
			continue
		}
		picked[c] = true
		var v string
		var m mode
		if c.name == "id" {
			v = g.id()
		} else {
			v, m = g.value(c)
		}
		need |= m
		parts = append(parts, ident(c.name)+" = "+v)
	}
	return strings.Join(parts, ", "), need
}

// where selects a few rows of t.
func (g *gen) where(t *table) string {
	if !t.hasID() {
		c := t.cols[g.r.IntN(len(t.cols))]
		switch g.r.IntN(3) {
		case 0:
			return " LIMIT " + strconv.Itoa(1+g.r.IntN(3))
		case 1:
			return " WHERE " + ident(c.name) + " IS NOT NULL LIMIT " + strconv.Itoa(1+g.r.IntN(3))
		}
		return ""
	}
	switch g.r.IntN(6) {
	case 0:
		a := 1 + g.r.IntN(idRange)
		return fmt.Sprintf(" WHERE id BETWEEN %d AND %d", a, a+g.r.IntN(4))
	case 1:
		return " WHERE id IN (" + g.id() + ", " + g.id() + ")"
	case 2:
		if t.key == keyNone {
			return " WHERE id = " + g.id() + " LIMIT 1"
		}
	}
	return " WHERE id = " + g.id()
}

// dml is a random INSERT, UPDATE or DELETE on t.
func (g *gen) dml(t *table) (string, mode) {
	name := ident(t.name)
	switch k := g.r.IntN(10); {
	case k < 5:
		var rows []string
		var need mode
		for range 1 + g.r.IntN(4) {
			r, m := g.row(t)
			need |= m
			rows = append(rows, r)
			if t.shape == KeylessDups || (t.key == keyNone && g.chance(0.3)) {
				// The same row again: a keyless table's duplicates.
				rows = append(rows, r)
			}
		}
		verb := "INSERT"
		tail := ""
		if t.key != keyNone {
			switch g.r.IntN(4) {
			case 0:
				verb = "INSERT IGNORE"
			case 1:
				verb = "REPLACE"
			case 2:
				a, m := g.assignments(t)
				need |= m
				tail = " ON DUPLICATE KEY UPDATE " + a
			}
		}
		return verb + " INTO " + name + " (" + colList(t) + ") VALUES " + strings.Join(rows, ", ") + tail, need
	case k < 8:
		a, m := g.assignments(t)
		return "UPDATE " + name + " SET " + a + g.where(t), m
	default:
		return "DELETE FROM " + name + g.where(t), 0
	}
}

// ddlBatch is an additive DDL on a random table, or a new table.
func (g *gen) ddlBatch() Batch {
	if g.chance(0.15) && g.opts.Features[DDL] {
		return g.createBatch()
	}
	t := g.tables[g.r.IntN(len(g.tables))]
	name := ident(t.name)
	if g.opts.Features[DDLClock] && (!g.opts.Features[DDL] || g.chance(0.2)) {
		t.nextCol++
		fsp := g.r.IntN(7)
		typ := g.pick("TIMESTAMP", "DATETIME")
		c := &column{name: fmt.Sprintf("c%d", t.nextCol), kind: kDatetime, n: fsp, typ: fmt.Sprintf("%s(%d)", typ, fsp), feat: Types}
		if typ == "TIMESTAMP" {
			c.kind = kTimestamp
		}
		c.name = g.columnName(t.nextCol)
		sql := fmt.Sprintf("ALTER TABLE %s ADD COLUMN %s %s NOT NULL DEFAULT CURRENT_TIMESTAMP(%d)", name, ident(c.name), c.typ, fsp)
		return Batch{g.session(0), {SQL: sql, Table: t.name, apply: func() { t.cols = append(t.cols, c) }}}
	}
	if !g.opts.Features[DDL] {
		return nil
	}
	switch g.r.IntN(4) {
	case 0:
		// ADD INDEX on a keyable column.
		for _, c := range t.cols {
			if keyable(c) && g.chance(0.5) {
				return Batch{g.session(0), {SQL: fmt.Sprintf("ALTER TABLE %s ADD INDEX (%s)", name, ident(c.name)), Table: t.name}}
			}
		}
	case 1:
		// Widen a VARCHAR or an integer.
		for _, c := range t.cols {
			if c.kind == kVarchar && c.n < 200 {
				w := *c
				w.n += 1 + g.r.IntN(20)
				w.typ = fmt.Sprintf("VARCHAR(%d) CHARACTER SET %s", w.n, w.charset)
				return Batch{g.session(0), {SQL: fmt.Sprintf("ALTER TABLE %s MODIFY %s", name, columnDef(&w)), Table: t.name, apply: func() { *c = w }}}
			}
			if c.kind == kInt && c.n < 8 && c.name != "id" {
				w := *c
				w.n = 8
				w.typ = "BIGINT"
				if w.unsigned {
					w.typ += " UNSIGNED"
				}
				return Batch{g.session(0), {SQL: fmt.Sprintf("ALTER TABLE %s MODIFY %s", name, columnDef(&w)), Table: t.name, apply: func() { *c = w }}}
			}
		}
	}
	// ADD COLUMN with or without a default, last, FIRST or AFTER.
	f := g.pickColumnFeature()
	if t.shape != "" {
		f = t.shape
	}
	ks := kindsOf(f)
	c := g.newColumn(t, f, ks[g.r.IntN(len(ks))])
	c.nullable = g.chance(0.5)
	sql := "ALTER TABLE " + name + " ADD COLUMN " + columnDef(c)
	need := modeNonStrict
	if g.chance(0.6) {
		v, m := g.value(c)
		switch {
		case v == "NULL" && !c.nullable:
		case g.opts.Features[DDLExprDefault]:
			need |= m
			sql += " DEFAULT (" + v + ")"
		case c.kind == kChar || c.kind == kVarchar || c.kind == kText:
			// A plain literal of characters every ASCII-compatible
			// character set has.
			sql += " DEFAULT " + quote(g.pick("", "x", "a b", "0", "it's"))
		case !strings.Contains(v, "("):
			need |= m
			sql += " DEFAULT " + v
		}
	}
	pos := len(t.cols)
	switch g.r.IntN(4) {
	case 0:
		sql += " FIRST"
		pos = 0
	case 1:
		i := g.r.IntN(len(t.cols))
		sql += " AFTER " + ident(t.cols[i].name)
		pos = i + 1
	}
	return Batch{g.session(need), {SQL: sql, Table: t.name, apply: func() { t.cols = append(t.cols[:pos], append([]*column{c}, t.cols[pos:]...)...) }}}
}

// oddNames are identifier shapes DDL classifiers get wrong: keywords
// inside names, spaces, backticks, dots, quotes, non-ASCII letters.
var oddNames = []string{"%s_schema", "%s_database", "%s schema", "%s`q", "%s.x", "%s\"d", "%s'e", "ключ_%s", "%s-x", "%s$"}

// tableName is the name of the n-th table: t<n>, or an odd shape of it
// under OddIdentifiers.
func (g *gen) tableName(n int) string {
	name := fmt.Sprintf("t%d", n)
	switch {
	case !g.opts.Features[OddIdentifiers]:
	case g.opts.Features.focused() && n == 1:
		// A focused run's first table has a keyword in its name.
		return fmt.Sprintf(oddNames[g.r.IntN(3)], name)
	case g.opts.Features.focused() || g.chance(0.2):
		return fmt.Sprintf(oddNames[g.r.IntN(len(oddNames))], name)
	}
	return name
}

// columnName is the name of the n-th column of a table.
func (g *gen) columnName(n int) string {
	name := fmt.Sprintf("c%d", n)
	if g.opts.Features[OddIdentifiers] && g.chance(0.2) {
		return fmt.Sprintf(oddNames[g.r.IntN(len(oddNames))], name)
	}
	return name
}
