package binlog

import (
	"strconv"
	"strings"
)

// Table describes a table as its rows are laid out in the binlog at one
// point in time: the column types come from the TABLE_MAP event, names,
// keys and character sets from the schema tracker (or from the TABLE_MAP's
// optional metadata when the server logs it, binlog_row_metadata=FULL).
type Table struct {
	Schema  string
	Name    string
	Columns []Column
	// PK holds the indexes of the primary-key columns. Without a primary
	// key it holds the first unique key whose columns are all NOT NULL, as
	// MySQL uses such a key for row lookup; empty if there is none.
	PK []int
	// NamesKnown is false when neither the server nor the schema tracker
	// could name the columns; they are then called @1, @2, ... as
	// mysqlbinlog does.
	NamesKnown bool
	// Sequence: a MariaDB sequence, whose one row NEXTVAL and SETVAL log
	// whole (schema.Table.Sequence).
	Sequence bool
}

// Column is one column of a Table.
type Column struct {
	Name string
	// Type is the binlog (real) type code, e.g. mysql.MYSQL_TYPE_LONG.
	Type byte
	// SQLType is the column's definition as SHOW CREATE TABLE would print
	// its type, e.g. "int(10) unsigned", when known.
	SQLType string
	// BaseType is the tracked base type in lower case ("int", "uuid",
	// "inet6", ...), when known.
	BaseType  string
	Unsigned  bool
	Nullable  bool
	Binary    bool   // binary string (BINARY, VARBINARY, BLOB): values are []byte
	Charset   string // character set of text columns, when known
	JSON      bool   // JSON column (MySQL JSON, or MariaDB's JSON alias of LONGTEXT)
	Generated bool   // generated (virtual or stored) column: never written by an applier
	Invisible bool
	Elems     []string // ENUM or SET members
	// Length is the declared length of fixed-length BINARY(n) columns, whose
	// binlog values lose their trailing zero bytes.
	Length int
	// FSP is the fractional seconds precision of TIME, DATETIME and
	// TIMESTAMP columns (0-6).
	FSP int
}

// QualifiedName is `schema`.`table` without quoting.
func (t *Table) QualifiedName() string { return t.Schema + "." + t.Name }

// ColumnIndex returns the index of the named column, or -1.
func (t *Table) ColumnIndex(name string) int {
	for i := range t.Columns {
		if t.Columns[i].Name == name {
			return i
		}
	}
	// Column names are case-insensitive in MySQL and MariaDB.
	for i := range t.Columns {
		if strings.EqualFold(t.Columns[i].Name, name) {
			return i
		}
	}
	return -1
}

// PKNames returns the names of the key columns in PK.
func (t *Table) PKNames() []string {
	out := make([]string, len(t.PK))
	for i, c := range t.PK {
		out[i] = t.Columns[c].Name
	}
	return out
}

func unknownColumnName(i int) string { return "@" + strconv.Itoa(i+1) }

// ColumnNames returns the column names in order.
func (t *Table) ColumnNames() []string {
	out := make([]string, len(t.Columns))
	for i := range t.Columns {
		out[i] = t.Columns[i].Name
	}
	return out
}
