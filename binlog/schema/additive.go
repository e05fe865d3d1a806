package schema

import (
	"regexp"
	"strings"

	"github.com/pingcap/tidb/pkg/parser/ast"
)

// Additive is what a statement that only adds to the schema adds: CREATE
// DATABASE, CREATE TABLE, CREATE INDEX, or ALTER TABLE whose every clause
// adds a column, an index or a key. When several shards feed one merged
// table, each shard logs its own copy of such a statement: the first
// applies, and a repeat is recognized by what it would add being there
// already, with the same types.
type Additive struct {
	// Columns are the columns the statement defines (CREATE TABLE, ADD
	// COLUMN), for comparing with the target's.
	Columns []Column
	// CreatesTable: the statement is a CREATE TABLE.
	CreatesTable bool
}

// AdditiveDDL reports whether sql only adds to the schema. When it does
// not, reason says what it changes or removes.
func AdditiveDDL(sql string) (add Additive, reason string, err error) {
	return AdditiveDDLMode(sql, 0)
}

// AdditiveDDLMode is AdditiveDDL for a statement run under sql_mode mode.
func AdditiveDDLMode(sql string, mode SQLMode) (add Additive, reason string, err error) {
	stmts, notes, err := parse(sql, mode)
	if err != nil {
		return add, "", &ParseError{SQL: sql, Err: err}
	}
	a := applier{notes: notes}
	for _, st := range stmts {
		switch s := st.(type) {
		case *ast.CreateDatabaseStmt, *ast.CreateIndexStmt:
		case *ast.CreateTableStmt:
			if s.ReferTable != nil || s.Select != nil {
				return Additive{}, "it copies another table", nil
			}
			add.CreatesTable = true
			for _, cd := range s.Cols {
				col, _ := a.column(cd, "")
				add.Columns = append(add.Columns, col)
			}
		case *ast.AlterTableStmt:
			for _, spec := range s.Specs {
				switch spec.Tp {
				case ast.AlterTableAddColumns:
					for _, cd := range spec.NewColumns {
						col, _ := a.column(cd, "")
						add.Columns = append(add.Columns, col)
					}
				case ast.AlterTableAddConstraint:
				case ast.AlterTableOption, ast.AlterTableLock, ast.AlterTableAlgorithm:
					// Options of how the ALTER runs (or table options that
					// do not change rows): harmless to repeat.
				default:
					return Additive{}, "it changes or removes what exists (" + alterVerb(sql) + ")", nil
				}
			}
		default:
			return Additive{}, "it changes or removes what exists", nil
		}
	}
	return add, "", nil
}

var alterClause = regexp.MustCompile(`(?i)\b(drop|modify|change|rename|alter|convert|truncate)\b(\s+(?:column|index|key|primary\s+key|to|table))?`)

func alterVerb(sql string) string {
	if m := alterClause.FindAllString(sql, -1); len(m) > 1 {
		return strings.ToUpper(m[1])
	}
	return "ALTER"
}

var intWidth = regexp.MustCompile(`^((?:tiny|small|medium|big)?int)\(\d+\)`)

// typeAlias are DDL type names information_schema shows as another type:
// MariaDB's JSON is LONGTEXT (with a json_valid CHECK), BOOL is
// TINYINT(1).
var typeAlias = map[string]string{"json": "longtext", "bool": "tinyint", "boolean": "tinyint"}

// SameType reports whether two column types (as information_schema's
// COLUMN_TYPE shows them, or as a DDL names them) are the same, ignoring
// integer display widths, which MySQL 8 no longer shows and MariaDB does.
func SameType(a, b string) bool {
	norm := func(s string) string {
		s = strings.ToLower(strings.TrimSpace(s))
		if t, ok := typeAlias[s]; ok {
			s = t
		}
		return intWidth.ReplaceAllString(s, "$1")
	}
	return norm(a) == norm(b)
}
