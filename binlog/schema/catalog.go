// Package schema tracks table definitions along a binlog stream.
//
// Row events name a table and carry column values by position only, unless
// the server logs full row metadata (MySQL binlog_row_metadata=FULL), which
// MariaDB by default and MySQL 5.7 do not. The tracker starts from a
// snapshot (information_schema, or a snapshot persisted with a checkpoint)
// and applies every DDL statement of the stream with the TiDB parser, so
// each row event is decoded with the columns its table had when it was
// written, before or after an ALTER TABLE.
//
// Definitions are immutable: applying DDL replaces a *Table with a new one,
// so a *Table taken at one position stays valid for rows of that position.
package schema

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Column is one column definition.
type Column struct {
	Name string `json:"name"`
	// Type is the base type in lower case: "int", "varchar", "enum",
	// "json", "geometry", "point", "uuid", ...
	Type string `json:"type"`
	// SQLType is the full type as information_schema.COLUMNS.COLUMN_TYPE
	// shows it, e.g. "int(10) unsigned", "enum('a','b')".
	SQLType  string `json:"sql_type"`
	Unsigned bool   `json:"unsigned,omitempty"`
	Nullable bool   `json:"nullable,omitempty"`
	// Charset is the character set of text columns, "binary" for binary
	// strings, and empty for other types.
	Charset   string   `json:"charset,omitempty"`
	Length    int      `json:"length,omitempty"` // declared length of CHAR/BINARY(n)
	Elems     []string `json:"elems,omitempty"`  // ENUM and SET members
	Generated bool     `json:"generated,omitempty"`
	Invisible bool     `json:"invisible,omitempty"`
	JSON      bool     `json:"json,omitempty"` // JSON, including MariaDB's LONGTEXT CHECK (json_valid(...))
}

// Key is a primary or unique key.
type Key struct {
	Name    string   `json:"name"`
	Columns []string `json:"columns"`
	Primary bool     `json:"primary,omitempty"`
}

// Table is one table definition.
type Table struct {
	Schema  string   `json:"schema"`
	Name    string   `json:"name"`
	Columns []Column `json:"columns"`
	Keys    []Key    `json:"keys,omitempty"` // primary key first, then unique keys in definition order
	Charset string   `json:"charset,omitempty"`
	// Sequence: a MariaDB sequence (sequence.go), whose rows are only
	// ever written whole, one at a time, by INSERT.
	Sequence bool `json:"sequence,omitempty"`
}

// ColumnIndex returns the index of the named column (case-insensitive, as
// MySQL column names are), or -1.
func (t *Table) ColumnIndex(name string) int {
	for i := range t.Columns {
		if strings.EqualFold(t.Columns[i].Name, name) {
			return i
		}
	}
	return -1
}

// RowKey returns the columns that identify a row: the primary key, or else
// the first unique key whose columns are all NOT NULL (MySQL's rule for an
// implicit primary key). It returns nil when there is neither.
func (t *Table) RowKey() []string {
	for _, k := range t.Keys {
		if k.Primary {
			return k.Columns
		}
	}
	for _, k := range t.Keys {
		ok := true
		for _, c := range k.Columns {
			i := t.ColumnIndex(c)
			if i < 0 || t.Columns[i].Nullable {
				ok = false
				break
			}
		}
		if ok {
			return k.Columns
		}
	}
	return nil
}

func (t *Table) clone() *Table {
	c := *t
	c.Columns = slices.Clone(t.Columns)
	c.Keys = slices.Clone(t.Keys)
	return &c
}

// Catalog is the set of known databases and tables at one point in a binlog.
type Catalog struct {
	// ServerCharset is the server's character_set_server, the default for
	// databases created without one.
	ServerCharset string
	// FoldCase: the server compares database and table names without
	// regard to case (lower_case_table_names 1 or 2), so ALTER TABLE
	// Orders changes the table orders.
	FoldCase bool
	// StoresLower: the server stores database and table names in lower
	// case (lower_case_table_names 1), whatever case a statement used, and
	// logs rows under those names.
	StoresLower bool
	dbs         map[string]string            // database -> default charset
	tables      map[string]map[string]*Table // database -> table -> definition
}

// key is how a database or table name is looked up.
func (c *Catalog) key(name string) string {
	if c.FoldCase {
		return strings.ToLower(name)
	}
	return name
}

// NewCatalog returns an empty catalog.
func NewCatalog(serverCharset string) *Catalog {
	return &Catalog{ServerCharset: serverCharset, dbs: map[string]string{}, tables: map[string]map[string]*Table{}}
}

// Table returns the definition of db.name, or nil when it is not known.
func (c *Catalog) Table(db, name string) *Table {
	return c.tables[c.key(db)][c.key(name)]
}

// Tables returns every table, sorted by schema and name.
func (c *Catalog) Tables() []*Table {
	var out []*Table
	for _, db := range slices.Sorted(maps.Keys(c.tables)) {
		for _, n := range slices.Sorted(maps.Keys(c.tables[db])) {
			out = append(out, c.tables[db][n])
		}
	}
	return out
}

// PutTable adds or replaces a definition.
func (c *Catalog) PutTable(t *Table) {
	db := c.key(t.Schema)
	if c.tables[db] == nil {
		c.tables[db] = map[string]*Table{}
	}
	if _, ok := c.dbs[db]; !ok {
		c.dbs[db] = ""
	}
	c.tables[db][c.key(t.Name)] = t
}

// PutDatabase records a database and its default character set.
func (c *Catalog) PutDatabase(db, charset string) {
	db = c.key(db)
	c.dbs[db] = charset
	if c.tables[db] == nil {
		c.tables[db] = map[string]*Table{}
	}
}

func (c *Catalog) dropTable(db, name string) {
	delete(c.tables[c.key(db)], c.key(name))
}

func (c *Catalog) dbCharset(db string) string {
	if cs := c.dbs[c.key(db)]; cs != "" {
		return cs
	}
	if c.ServerCharset != "" {
		return c.ServerCharset
	}
	return "utf8mb4"
}

// Clone returns a catalog that shares the (immutable) table definitions.
func (c *Catalog) Clone() *Catalog {
	n := NewCatalog(c.ServerCharset)
	n.FoldCase = c.FoldCase
	n.StoresLower = c.StoresLower
	maps.Copy(n.dbs, c.dbs)
	for db, ts := range c.tables {
		n.tables[db] = maps.Clone(ts)
	}
	return n
}

type catalogJSON struct {
	ServerCharset string            `json:"server_charset"`
	FoldCase      bool              `json:"fold_case,omitempty"`
	StoresLower   bool              `json:"stores_lower,omitempty"`
	Databases     map[string]string `json:"databases"`
	Tables        []*Table          `json:"tables"`
}

// MarshalJSON persists the catalog.
func (c *Catalog) MarshalJSON() ([]byte, error) {
	return json.Marshal(catalogJSON{ServerCharset: c.ServerCharset, FoldCase: c.FoldCase, StoresLower: c.StoresLower, Databases: c.dbs, Tables: c.Tables()})
}

// UnmarshalJSON restores a persisted catalog.
func (c *Catalog) UnmarshalJSON(b []byte) error {
	var j catalogJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return fmt.Errorf("schema snapshot: %w", err)
	}
	*c = *NewCatalog(j.ServerCharset)
	c.FoldCase, c.StoresLower = j.FoldCase, j.StoresLower
	for db, cs := range j.Databases {
		c.PutDatabase(db, cs)
	}
	for _, t := range j.Tables {
		c.PutTable(t)
	}
	return nil
}
