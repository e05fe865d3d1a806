package binlog

import (
	"fmt"
	"path"
	"regexp"
	"strings"
)

// Filter selects tables by "schema.table" patterns. A pattern is a glob
// ('*' and '?' match within one name part; "shop.*", "*.orders",
// "shop_?.orders_*") or, when it starts with '~', a regular expression
// matched against "schema.table" ("~^shop_[0-9]+\.orders$"). A pattern
// without a dot names a whole schema ("shop" is "shop.*").
//
// Globs are Go's path.Match patterns: '[abc]', '[a-z]' and '[^a]' are
// character classes, and a backslash makes the next character literal, so
// "\*", "\?", "\[", "\\" and "\." match '*', '?', '[', '\' and '.' (an
// escaped dot does not separate schema from table). Every other character,
// quotes and backticks included, matches itself: the database
// special"[`]$'_db is named by the pattern special"\[`]$'_db.*.
//
// A table passes when it matches some include pattern (or there are none)
// and no exclude pattern. The server's own schemas (mysql, sys, ...) never
// pass unless included explicitly, nor does sluice's own schema.
type Filter struct {
	include []matcher
	exclude []matcher
	also    *Filter // a table must pass this filter too
}

// And returns a filter passing what both f and g pass.
func (f *Filter) And(g *Filter) *Filter {
	if g == nil || len(g.include) == 0 && len(g.exclude) == 0 && g.also == nil {
		return f
	}
	c := *f
	if c.also != nil {
		c.also = c.also.And(g)
	} else {
		c.also = g
	}
	return &c
}

type matcher struct {
	text   string
	schema string // glob for the schema part
	table  string // glob for the table part
	re     *regexp.Regexp
}

// NewFilter compiles include and exclude patterns.
func NewFilter(include, exclude []string) (*Filter, error) {
	f := &Filter{}
	for _, p := range include {
		m, err := compilePattern(p)
		if err != nil {
			return nil, err
		}
		f.include = append(f.include, m)
	}
	for _, p := range exclude {
		m, err := compilePattern(p)
		if err != nil {
			return nil, err
		}
		f.exclude = append(f.exclude, m)
	}
	return f, nil
}

func compilePattern(p string) (matcher, error) {
	m := matcher{text: p}
	if strings.HasPrefix(p, "~") {
		re, err := regexp.Compile(p[1:])
		if err != nil {
			return m, fmt.Errorf("pattern %q: %w", p, err)
		}
		m.re = re
		return m, nil
	}
	if p == "" {
		return m, fmt.Errorf("empty table pattern")
	}
	s, t, ok := cutUnescaped(p, '.')
	if !ok {
		t = "*"
	}
	for _, g := range []string{s, t} {
		if _, err := path.Match(g, ""); err != nil || strings.Contains(g, "/") {
			return m, fmt.Errorf("pattern %q: bad glob %q", p, g)
		}
	}
	m.schema, m.table = s, t
	return m, nil
}

func (m matcher) match(schema, table string) bool {
	if m.re != nil {
		return m.re.MatchString(schema + "." + table)
	}
	if ok, _ := path.Match(m.schema, schema); !ok {
		return false
	}
	if table == "" { // a statement on the whole schema
		return true
	}
	ok, _ := path.Match(m.table, table)
	return ok
}

// Match reports whether the filter passes schema.table. An empty table
// asks about the schema as a whole (for database statements).
func (f *Filter) Match(schema, table string) bool {
	if f == nil {
		return !isSystemSchema(schema)
	}
	if f.also != nil && !f.also.Match(schema, table) {
		return false
	}
	for _, m := range f.exclude {
		if m.match(schema, table) && (table != "" || m.table == "*" || m.re != nil) {
			return false
		}
	}
	if len(f.include) == 0 {
		return !isSystemSchema(schema)
	}
	for _, m := range f.include {
		if m.match(schema, table) {
			return true
		}
	}
	return false
}

// isSystemSchema: the server's own schemas, and sluice's (its checkpoint
// tables on a target, which a pipeline reading that target must not copy).
func isSystemSchema(s string) bool {
	switch strings.ToLower(s) {
	case "mysql", "sys", "information_schema", "performance_schema", "sluice":
		return true
	}
	return false
}

// cutUnescaped cuts p at the first sep that no backslash escapes.
func cutUnescaped(p string, sep byte) (before, after string, found bool) {
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '\\':
			i++
		case sep:
			return p[:i], p[i+1:], true
		}
	}
	return p, "", false
}
