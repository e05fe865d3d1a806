package schema

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/charset"
	"github.com/pingcap/tidb/pkg/parser/mysql"
	"github.com/pingcap/tidb/pkg/parser/types"

	_ "github.com/pingcap/tidb/pkg/parser/test_driver" // value expressions (DEFAULT 'x') need a driver
)

// ParseError reports a statement that may change a table definition but
// that the parser could not read.
type ParseError struct {
	SQL string
	Err error
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("cannot parse DDL %q: %v", Shorten(Redact(e.SQL), 300), e.Err)
}

func (e *ParseError) Unwrap() error { return e.Err }

// schemaDDL matches the heads of statements that can change what a table
// looks like in row events. Everything else (GRANT, CREATE VIEW, CREATE
// PROCEDURE, ANALYZE TABLE, ...) leaves table definitions alone.
var schemaDDL = regexp.MustCompile(`(?is)^\s*(?:/\*.*?\*/\s*)*(` +
	`create\s+(?:or\s+replace\s+)?(?:temporary\s+)?table|` +
	`alter\s+(?:online\s+|ignore\s+)?table|` +
	`drop\s+(?:temporary\s+)?tables?|` +
	`rename\s+tables?|` +
	`(?:create|alter|drop)\s+(?:database|schema)|` +
	`create\s+(?:online\s+|offline\s+)?(?:or\s+replace\s+)?(?:unique\s+|fulltext\s+|spatial\s+)?index|` +
	`drop\s+index|` +
	`create\s+(?:or\s+replace\s+)?(?:temporary\s+)?sequence|` +
	`alter\s+sequence|` +
	`drop\s+(?:temporary\s+)?sequence)\b`)

// MismatchError reports a DDL that does not fit the tracked definition
// (adding a column that exists, dropping one that does not): the snapshot
// the tracker started from is newer than the stream, typically
// information_schema read after the DDL ran. The definition is left as it
// is, which is what the DDL would make it.
type MismatchError struct{ Msg string }

func (e *MismatchError) Error() string { return e.Msg }

func mismatch(format string, args ...any) error {
	return &MismatchError{Msg: fmt.Sprintf(format, args...)}
}

// ChangesSchema reports whether sql can change a table definition.
func ChangesSchema(sql string) bool { return schemaDDL.MatchString(sql) }

// Apply applies one statement, run with defaultDB as the current database,
// to the catalog. Statements that cannot change a table definition are
// ignored. It returns the tables whose definitions changed ("db.table").
func (c *Catalog) Apply(defaultDB, sql string) ([]string, error) {
	return c.ApplyMode(defaultDB, sql, 0)
}

// ApplyMode is Apply for a statement the server ran under sql_mode mode
// (ANSI_QUOTES changes how it reads).
func (c *Catalog) ApplyMode(defaultDB, sql string, mode SQLMode) ([]string, error) {
	if !ChangesSchema(sql) || temporarySequence(sql) {
		return nil, nil
	}
	stmts, notes, err := parse(sql, mode)
	if err != nil {
		return nil, &ParseError{SQL: sql, Err: err}
	}
	a := applier{c: c, db: defaultDB, notes: notes}
	for _, st := range stmts {
		if err := a.apply(st); err != nil {
			return a.changed, fmt.Errorf("apply DDL %q: %w", Shorten(Redact(sql), 300), err)
		}
	}
	return a.changed, nil
}

type applier struct {
	c       *Catalog
	db      string
	notes   rewriteNotes
	changed []string
}

func (a *applier) name(tn *ast.TableName) (string, string) {
	db := tn.Schema.O
	if db == "" {
		db = a.db
	}
	if a.c.StoresLower {
		return strings.ToLower(db), strings.ToLower(tn.Name.O)
	}
	return db, tn.Name.O
}

func (a *applier) mark(db, table string) { a.changed = append(a.changed, db+"."+table) }

func (a *applier) apply(st ast.StmtNode) error {
	c := a.c
	switch s := st.(type) {
	case *ast.CreateTableStmt:
		if s.TemporaryKeyword != ast.TemporaryNone {
			return nil // temporary tables never appear in row events
		}
		db, name := a.name(s.Table)
		if s.IfNotExists && c.Table(db, name) != nil {
			return nil
		}
		if s.ReferTable != nil {
			rdb, rname := a.name(s.ReferTable)
			src := c.Table(rdb, rname)
			if src == nil {
				c.dropTable(db, name)
				return nil
			}
			t := src.clone()
			t.Schema, t.Name = db, name
			c.PutTable(t)
			a.mark(db, name)
			return nil
		}
		t := &Table{Schema: db, Name: name, Charset: tableCharset(s.Options)}
		if t.Charset == "" {
			t.Charset = c.dbCharset(db)
		}
		for _, cd := range s.Cols {
			col, keys := a.column(cd, t.Charset)
			t.Columns = append(t.Columns, col)
			t.Keys = addKeys(t.Keys, keys...)
		}
		for _, cons := range s.Constraints {
			a.constraint(t, cons)
		}
		if a.notes.versioned {
			addVersioningColumns(t)
		}
		t.Sequence, _ = sequenceOption(s.Options)
		c.PutTable(t)
		a.mark(db, name)
	case *ast.CreateSequenceStmt:
		db, name := a.name(s.Name)
		if s.IfNotExists && c.Table(db, name) != nil {
			return nil
		}
		c.PutTable(sequenceTable(db, name))
		a.mark(db, name)
	case *ast.DropSequenceStmt:
		for _, tn := range s.Sequences {
			db, name := a.name(tn)
			c.dropTable(db, name)
			a.mark(db, name)
		}
	case *ast.AlterTableStmt:
		db, name := a.name(s.Table)
		old := c.Table(db, name)
		if old == nil {
			return nil // not tracked (created before the snapshot and filtered out)
		}
		t := old.clone()
		for _, spec := range s.Specs {
			if err := a.alter(t, spec); err != nil {
				return err
			}
		}
		switch {
		case a.notes.addVersioning:
			addVersioningColumns(t)
		case a.notes.dropVersioning:
			t.Columns = slices.DeleteFunc(t.Columns, func(c Column) bool { return isVersioningColumn(c) })
		}
		if t.Schema != db || t.Name != name {
			c.dropTable(db, name)
		}
		c.PutTable(t)
		a.mark(t.Schema, t.Name)
	case *ast.DropTableStmt:
		if s.IsView || s.TemporaryKeyword != ast.TemporaryNone {
			return nil
		}
		for _, tn := range s.Tables {
			db, name := a.name(tn)
			c.dropTable(db, name)
			a.mark(db, name)
		}
	case *ast.RenameTableStmt:
		for _, tt := range s.TableToTables {
			odb, oname := a.name(tt.OldTable)
			ndb, nname := a.name(tt.NewTable)
			if t := c.Table(odb, oname); t != nil {
				n := t.clone()
				n.Schema, n.Name = ndb, nname
				c.dropTable(odb, oname)
				c.PutTable(n)
				a.mark(ndb, nname)
			}
		}
	case *ast.CreateDatabaseStmt:
		if s.IfNotExists && c.dbs[c.key(s.Name.O)] != "" {
			return nil
		}
		cs := dbCharset(s.Options)
		if cs == "" {
			cs = c.ServerCharset
		}
		c.PutDatabase(s.Name.O, cs)
	case *ast.AlterDatabaseStmt:
		db := s.Name.O
		if db == "" {
			db = a.db
		}
		if cs := dbCharset(s.Options); cs != "" {
			c.PutDatabase(db, cs)
		}
	case *ast.DropDatabaseStmt:
		for _, t := range c.tables[c.key(s.Name.O)] {
			a.mark(t.Schema, t.Name)
		}
		delete(c.tables, c.key(s.Name.O))
		delete(c.dbs, c.key(s.Name.O))
	case *ast.CreateIndexStmt:
		db, name := a.name(s.Table)
		if old := c.Table(db, name); old != nil {
			t := old.clone()
			if s.KeyType == ast.IndexKeyTypeUnique {
				t.Keys = addKeys(t.Keys, Key{Name: s.IndexName, Columns: partColumns(s.IndexPartSpecifications)})
			}
			addHiddenColumns(t, s.IndexName, s.IndexPartSpecifications)
			c.PutTable(t)
			a.mark(db, name)
		}
	case *ast.DropIndexStmt:
		db, name := a.name(s.Table)
		if old := c.Table(db, name); old != nil {
			t := old.clone()
			t.Keys = dropKey(t.Keys, s.IndexName)
			dropHiddenColumns(t, s.IndexName)
			c.PutTable(t)
			a.mark(db, name)
		}
	}
	return nil
}

func (a *applier) alter(t *Table, spec *ast.AlterTableSpec) error {
	switch spec.Tp {
	case ast.AlterTableAddColumns:
		pos := spec.Position
		for _, cd := range spec.NewColumns {
			if t.ColumnIndex(cd.Name.Name.O) >= 0 {
				if spec.IfNotExists {
					continue
				}
				return mismatch("column %s already exists in %s.%s", cd.Name.Name.O, t.Schema, t.Name)
			}
			col, keys := a.column(cd, t.Charset)
			if err := insertColumn(t, col, pos); err != nil {
				return err
			}
			t.Keys = addKeys(t.Keys, keys...)
			if pos != nil && pos.Tp != ast.ColumnPositionNone {
				// ADD COLUMN (a, b) AFTER x keeps a, b in order.
				pos = &ast.ColumnPosition{Tp: ast.ColumnPositionAfter, RelativeColumn: &ast.ColumnName{Name: cd.Name.Name}}
			}
		}
		for _, cons := range spec.NewConstraints {
			a.constraint(t, cons)
		}
	case ast.AlterTableAddConstraint:
		a.constraint(t, spec.Constraint)
	case ast.AlterTableDropColumn:
		i := t.ColumnIndex(spec.OldColumnName.Name.O)
		if i < 0 {
			if spec.IfExists {
				return nil
			}
			return mismatch("column %s does not exist in %s.%s", spec.OldColumnName.Name.O, t.Schema, t.Name)
		}
		name := t.Columns[i].Name
		t.Columns = slices.Delete(t.Columns, i, i+1)
		t.Keys = dropKeyColumn(t.Keys, name)
	case ast.AlterTableModifyColumn, ast.AlterTableChangeColumn:
		oldName := spec.NewColumns[0].Name.Name.O
		if spec.Tp == ast.AlterTableChangeColumn {
			oldName = spec.OldColumnName.Name.O
		}
		i := t.ColumnIndex(oldName)
		if i < 0 {
			if spec.IfExists {
				return nil
			}
			return mismatch("column %s does not exist in %s.%s", oldName, t.Schema, t.Name)
		}
		col, keys := a.column(spec.NewColumns[0], t.Charset)
		if spec.Position != nil && spec.Position.Tp != ast.ColumnPositionNone {
			t.Columns = slices.Delete(t.Columns, i, i+1)
			if err := insertColumn(t, col, spec.Position); err != nil {
				return err
			}
		} else {
			t.Columns[i] = col
		}
		t.Keys = renameKeyColumn(t.Keys, oldName, col.Name)
		t.Keys = addKeys(t.Keys, keys...)
	case ast.AlterTableRenameColumn:
		i := t.ColumnIndex(spec.OldColumnName.Name.O)
		if i < 0 {
			return mismatch("column %s does not exist in %s.%s", spec.OldColumnName.Name.O, t.Schema, t.Name)
		}
		old := t.Columns[i].Name
		t.Columns[i].Name = spec.NewColumnName.Name.O
		t.Keys = renameKeyColumn(t.Keys, old, t.Columns[i].Name)
	case ast.AlterTableDropPrimaryKey:
		t.Keys = slices.DeleteFunc(t.Keys, func(k Key) bool { return k.Primary })
	case ast.AlterTableDropIndex:
		t.Keys = dropKey(t.Keys, spec.Name)
		dropHiddenColumns(t, spec.Name)
	case ast.AlterTableRenameIndex:
		for i := range t.Keys {
			if strings.EqualFold(t.Keys[i].Name, spec.FromKey.O) {
				t.Keys[i].Name = spec.ToKey.O
			}
		}
	case ast.AlterTableRenameTable:
		db, name := a.name(spec.NewTable)
		t.Schema, t.Name = db, name
	case ast.AlterTableOption:
		if seq, ok := sequenceOption(spec.Options); ok {
			t.Sequence = seq
		}
		for _, o := range spec.Options {
			cs := optionCharset(o)
			if cs == "" {
				continue
			}
			t.Charset = cs
			if o.Tp == ast.TableOptionCharset && o.UintValue == ast.TableOptionCharsetWithConvertTo {
				for i := range t.Columns {
					if isText(t.Columns[i]) {
						t.Columns[i].Charset = cs
					}
				}
			}
		}
	}
	return nil
}

// MariaDB adds two invisible columns to a table created WITH SYSTEM
// VERSIONING (unless it declares them itself), and logs them in row
// events: when each row version started and ended. The server fills them,
// so they are generated columns to an applier.
func addVersioningColumns(t *Table) {
	for _, name := range []string{"row_start", "row_end"} {
		if t.ColumnIndex(name) >= 0 {
			continue
		}
		t.Columns = append(t.Columns, Column{Name: name, Type: "timestamp", SQLType: "timestamp(6)", Generated: true, Invisible: true})
	}
}

func isVersioningColumn(c Column) bool {
	return c.Generated && c.Invisible && (strings.EqualFold(c.Name, "row_start") || strings.EqualFold(c.Name, "row_end"))
}

// MySQL 8 implements each functional key part (INDEX i ((a+1))) as a
// hidden virtual column, "!hidden!i!0!0", added after the table's columns
// when the index is created, and logged in row events.
func addHiddenColumns(t *Table, index string, parts []*ast.IndexPartSpecification) {
	for i, p := range parts {
		if p.Expr == nil {
			continue
		}
		t.Columns = append(t.Columns, Column{Name: fmt.Sprintf("!hidden!%s!%d!0", index, i), Type: "functional index", SQLType: "functional index",
			Nullable: true, Generated: true, Invisible: true})
	}
}

func dropHiddenColumns(t *Table, index string) {
	prefix := strings.ToLower("!hidden!" + index + "!")
	t.Columns = slices.DeleteFunc(t.Columns, func(c Column) bool { return strings.HasPrefix(strings.ToLower(c.Name), prefix) })
}

func insertColumn(t *Table, col Column, pos *ast.ColumnPosition) error {
	at := len(t.Columns)
	if pos != nil {
		switch pos.Tp {
		case ast.ColumnPositionFirst:
			at = 0
		case ast.ColumnPositionAfter:
			i := t.ColumnIndex(pos.RelativeColumn.Name.O)
			if i < 0 {
				return mismatch("column %s does not exist in %s.%s", pos.RelativeColumn.Name.O, t.Schema, t.Name)
			}
			at = i + 1
		}
	}
	t.Columns = slices.Insert(t.Columns, at, col)
	return nil
}

func isText(c Column) bool { return c.Charset != "" && c.Charset != "binary" && !c.JSON }

// column converts a parsed column definition, returning the keys its inline
// options declare.
func (a *applier) column(cd *ast.ColumnDef, tableCharset string) (Column, []Key) {
	ft := cd.Tp
	tp := ft.GetType()
	col := Column{
		Name:     cd.Name.Name.O,
		Type:     types.TypeToStr(tp, ft.GetCharset()),
		SQLType:  strings.ToLower(ft.InfoSchemaStr()),
		Unsigned: mysql.HasUnsignedFlag(ft.GetFlag()),
		Nullable: true,
		Elems:    slices.Clone(ft.GetElems()),
	}
	if mysql.HasZerofillFlag(ft.GetFlag()) {
		col.SQLType += " zerofill"
	}
	switch tp {
	case mysql.TypeString, mysql.TypeVarchar, mysql.TypeVarString, mysql.TypeTinyBlob, mysql.TypeBlob,
		mysql.TypeMediumBlob, mysql.TypeLongBlob, mysql.TypeEnum, mysql.TypeSet:
		col.Charset = ft.GetCharset()
		if col.Charset == "" && ft.GetCollate() != "" {
			col.Charset, _, _ = strings.Cut(ft.GetCollate(), "_")
		}
		if col.Charset == "" {
			col.Charset = tableCharset
		}
		if tp == mysql.TypeString {
			col.Length = ft.GetFlen()
		}
	case mysql.TypeJSON:
		col.JSON = true
	case mysql.TypeYear:
		col.SQLType = "year(4)" // as information_schema shows every YEAR
	}
	lname := strings.ToLower(col.Name)
	if orig, ok := a.notes.types[lname]; ok {
		col.Type, col.SQLType, col.Charset, col.Length = orig, orig, "binary", 0
		if orig == "geomcollection" {
			col.Type, col.SQLType = "geometrycollection", "geometrycollection"
		}
	}
	col.Invisible = a.notes.invisible[lname]
	var keys []Key
	for _, o := range cd.Options {
		switch o.Tp {
		case ast.ColumnOptionNotNull:
			col.Nullable = false
		case ast.ColumnOptionNull:
			col.Nullable = true
		case ast.ColumnOptionPrimaryKey:
			col.Nullable = false
			keys = append(keys, Key{Name: "PRIMARY", Columns: []string{col.Name}, Primary: true})
		case ast.ColumnOptionUniqKey:
			keys = append(keys, Key{Name: col.Name, Columns: []string{col.Name}})
		case ast.ColumnOptionGenerated:
			col.Generated = true
		case ast.ColumnOptionCheck:
			if jsonValidColumn(o.Expr) != "" {
				col.JSON = true
			}
		case ast.ColumnOptionCollate:
			if col.Charset != "" && col.Charset != "binary" && ft.GetCharset() == "" {
				col.Charset, _, _ = strings.Cut(o.StrValue, "_")
			}
		}
	}
	return col, keys
}

func (a *applier) constraint(t *Table, cons *ast.Constraint) {
	switch cons.Tp {
	case ast.ConstraintPrimaryKey:
		cols := partColumns(cons.Keys)
		for _, c := range cols {
			if i := t.ColumnIndex(c); i >= 0 {
				t.Columns[i].Nullable = false
			}
		}
		t.Keys = addKeys(t.Keys, Key{Name: "PRIMARY", Columns: cols, Primary: true})
	case ast.ConstraintUniq, ast.ConstraintUniqKey, ast.ConstraintUniqIndex:
		name := cons.Name
		cols := partColumns(cons.Keys)
		if name == "" && len(cols) > 0 {
			name = cols[0]
		}
		t.Keys = addKeys(t.Keys, Key{Name: name, Columns: cols})
		addHiddenColumns(t, name, cons.Keys)
	case ast.ConstraintIndex, ast.ConstraintKey:
		addHiddenColumns(t, cons.Name, cons.Keys)
	case ast.ConstraintCheck:
		if col := jsonValidColumn(cons.Expr); col != "" {
			if i := t.ColumnIndex(col); i >= 0 {
				t.Columns[i].JSON = true
			}
		}
	}
}

// jsonValidColumn returns c for a json_valid(c) expression: MariaDB's JSON
// type is LONGTEXT with that check.
func jsonValidColumn(e ast.ExprNode) string {
	f, ok := e.(*ast.FuncCallExpr)
	if !ok || f.FnName.L != "json_valid" || len(f.Args) != 1 {
		return ""
	}
	if cn, ok := f.Args[0].(*ast.ColumnNameExpr); ok {
		return cn.Name.Name.O
	}
	return ""
}

func partColumns(parts []*ast.IndexPartSpecification) []string {
	var out []string
	for _, p := range parts {
		if p.Column != nil {
			out = append(out, p.Column.Name.O)
		}
	}
	return out
}

// addKeys adds keys, keeping the primary key first.
func addKeys(keys []Key, add ...Key) []Key {
	for _, k := range add {
		if len(k.Columns) == 0 {
			continue
		}
		if k.Primary {
			keys = slices.DeleteFunc(keys, func(x Key) bool { return x.Primary })
			keys = slices.Insert(keys, 0, k)
			continue
		}
		keys = append(keys, k)
	}
	return keys
}

func dropKey(keys []Key, name string) []Key {
	return slices.DeleteFunc(slices.Clone(keys), func(k Key) bool {
		return strings.EqualFold(k.Name, name) || strings.EqualFold(name, "primary") && k.Primary
	})
}

func dropKeyColumn(keys []Key, col string) []Key {
	out := keys[:0:0]
	for _, k := range keys {
		k.Columns = slices.DeleteFunc(slices.Clone(k.Columns), func(c string) bool { return strings.EqualFold(c, col) })
		if len(k.Columns) > 0 {
			out = append(out, k)
		}
	}
	return out
}

func renameKeyColumn(keys []Key, from, to string) []Key {
	out := slices.Clone(keys)
	for i := range out {
		out[i].Columns = slices.Clone(out[i].Columns)
		for j, c := range out[i].Columns {
			if strings.EqualFold(c, from) {
				out[i].Columns[j] = to
			}
		}
	}
	return out
}

func optionCharset(o *ast.TableOption) string {
	switch o.Tp {
	case ast.TableOptionCharset:
		return strings.ToLower(o.StrValue)
	case ast.TableOptionCollate:
		if cs, err := charset.GetCollationByName(o.StrValue); err == nil {
			return cs.CharsetName
		}
		cs, _, _ := strings.Cut(strings.ToLower(o.StrValue), "_")
		return cs
	}
	return ""
}

func tableCharset(opts []*ast.TableOption) string {
	cs := ""
	for _, o := range opts {
		if v := optionCharset(o); v != "" && (cs == "" || o.Tp == ast.TableOptionCharset) {
			cs = v
		}
	}
	return cs
}

func dbCharset(opts []*ast.DatabaseOption) string {
	for _, o := range opts {
		switch o.Tp {
		case ast.DatabaseOptionCharset:
			return strings.ToLower(o.Value)
		case ast.DatabaseOptionCollate:
			cs, _, _ := strings.Cut(strings.ToLower(o.Value), "_")
			return cs
		}
	}
	return ""
}
