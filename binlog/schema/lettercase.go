package schema

import "strings"

// LowerNames returns sql with the database and table names it changes in
// lower case, as a server with lower_case_table_names=1 stores them: run on
// a server that compares names by case, the statement then makes the names
// the source has (CREATE TABLE Shop.Orders made shop.orders there), and
// the tables foreign keys reference. Names in expressions and view bodies
// are left as they are. It reports whether anything changed.
func LowerNames(defaultDB, sql string, mode SQLMode) (string, bool) {
	st := Classify(defaultDB, sql, mode)
	switch st.Kind {
	case TableStatement:
		out, changed := RewriteTables(defaultDB, sql, mode, func(tr TableRef) (string, string, bool) {
			db, table := strings.ToLower(tr.Schema), strings.ToLower(tr.Name)
			return db, table, db != tr.Schema || table != tr.Name
		})
		out, refs := lowerReferences(out, mode)
		return out, changed || refs
	case DatabaseStatement:
		if st.Database == "" || strings.ToLower(st.Database) == st.Database {
			return sql, false
		}
		// The name follows DATABASE or SCHEMA [IF [NOT] EXISTS].
		toks := tokenize(sql, mode.ANSIQuotes())
		seen := false
		for i, t := range toks {
			if !t.sig {
				continue
			}
			w := strings.ToLower(t.text)
			if !seen {
				seen = t.word && (w == "database" || w == "schema")
				continue
			}
			if t.word && (w == "if" || w == "not" || w == "exists") {
				continue
			}
			name := t.text
			if !t.word {
				name = unquoteIdent(t.text)
			}
			if name != st.Database {
				return sql, false
			}
			toks[i].text = QuoteIdent(strings.ToLower(name))
			return joinTokens(toks), true
		}
	}
	return sql, false
}

// lowerReferences lowers the (possibly qualified) table name after each
// REFERENCES.
func lowerReferences(sql string, mode SQLMode) (string, bool) {
	toks := tokenize(sql, mode.ANSIQuotes())
	changed := false
	ref := false // after REFERENCES, in the table name
	for i, t := range toks {
		if !t.sig {
			continue
		}
		switch {
		case t.word && strings.EqualFold(t.text, "references"):
			ref = true
			continue
		case !ref:
			continue
		case t.text == ".":
			continue
		case t.word || strings.HasPrefix(t.text, "`") || mode.ANSIQuotes() && strings.HasPrefix(t.text, `"`):
			if low := strings.ToLower(t.text); low != t.text {
				toks[i].text = low
				changed = true
			}
			continue
		}
		ref = false
	}
	if !changed {
		return sql, false
	}
	return joinTokens(toks), true
}
