package schema

import "github.com/pingcap/tidb/pkg/parser/ast"

// MariaDB's sequences (CREATE SEQUENCE, or CREATE TABLE … SEQUENCE=1) are
// tables of one row with fixed columns. NEXTVAL and SETVAL log that row
// whole, as one Write_rows event in a transaction of its own, whenever the
// value they hand out leaves the cached range; ALTER SEQUENCE and DROP
// SEQUENCE are logged as statements. The MySQL sink applies such a row as
// MariaDB's own replica does (sinks/mysql/sequence.go), so NEXTVAL on the
// target continues from where the source's next NEXTVAL would after a
// restart.

// sequenceColumns are a sequence's columns, as information_schema shows
// them.
var sequenceColumns = []Column{
	{Name: "next_not_cached_value", Type: "bigint", SQLType: "bigint(21)"},
	{Name: "minimum_value", Type: "bigint", SQLType: "bigint(21)"},
	{Name: "maximum_value", Type: "bigint", SQLType: "bigint(21)"},
	{Name: "start_value", Type: "bigint", SQLType: "bigint(21)"},
	{Name: "increment", Type: "bigint", SQLType: "bigint(21)"},
	{Name: "cache_size", Type: "bigint", SQLType: "bigint(21) unsigned", Unsigned: true},
	{Name: "cycle_option", Type: "tinyint", SQLType: "tinyint(1) unsigned", Unsigned: true},
	{Name: "cycle_count", Type: "bigint", SQLType: "bigint(21)"},
}

// sequenceTable is the definition of sequence db.name.
func sequenceTable(db, name string) *Table {
	t := &Table{Schema: db, Name: name, Sequence: true}
	t.Columns = append(t.Columns, sequenceColumns...)
	return t
}

// sequenceOption reports whether table options say SEQUENCE=1; set is
// false when they do not mention SEQUENCE.
func sequenceOption(opts []*ast.TableOption) (seq, set bool) {
	for _, o := range opts {
		if o.Tp == ast.TableOptionSequence {
			seq, set = o.UintValue != 0, true
		}
	}
	return seq, set
}

// temporarySequence reports whether sql creates or drops a temporary
// sequence (the parser reads neither; its rows are never logged).
func temporarySequence(sql string) bool {
	w := headWords(tokenize(sql, false), 6)
	i := 1
	if w[0] == "create" && w[1] == "or" && w[2] == "replace" {
		i = 3
	}
	return (w[0] == "create" || w[0] == "drop") && w[i] == "temporary" && w[i+1] == "sequence"
}

// AlterSequenceKeeping returns the sequence an ALTER SEQUENCE without
// RESTART changes; ok is false for any other statement. Such an ALTER
// writes the sequence's row from the server's memory: on a source where a
// NEXTVAL failed because the sequence had run out (which logs nothing),
// that row says maximum_value + 1, while a replica (MariaDB's own
// included) keeps the last logged value.
func AlterSequenceKeeping(defaultDB, sql string, mode SQLMode) (ref TableRef, ok bool) {
	stmts, _, err := parse(sql, mode)
	if err != nil || len(stmts) != 1 {
		return TableRef{}, false
	}
	s, isAlter := stmts[0].(*ast.AlterSequenceStmt)
	if !isAlter || s.Name == nil {
		return TableRef{}, false
	}
	for _, o := range s.SeqOptions {
		if o.Tp == ast.SequenceRestart || o.Tp == ast.SequenceRestartWith {
			return TableRef{}, false
		}
	}
	ref = TableRef{Schema: s.Name.Schema.O, Name: s.Name.Name.O, Qualified: s.Name.Schema.O != ""}
	if ref.Schema == "" {
		ref.Schema = defaultDB
	}
	return ref, true
}
