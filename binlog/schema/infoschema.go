package schema

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// systemSchemas are never replicated and never tracked.
var systemSchemas = []string{"mysql", "information_schema", "performance_schema", "sys"}

// IsSystemSchema reports whether db is one of the server's own schemas.
func IsSystemSchema(db string) bool {
	for _, s := range systemSchemas {
		if strings.EqualFold(db, s) {
			return true
		}
	}
	return false
}

// Load reads every user table's definition from information_schema. It is
// the starting point when no persisted snapshot exists: exact when the
// stream starts at the server's current position, and corrected by the
// CREATE TABLE statements the stream itself carries when it starts earlier.
func Load(ctx context.Context, db *sql.DB) (*Catalog, error) { return load(ctx, db, "", "") }

// LoadTable reads one table's definition from information_schema, for a
// DDL the tracker cannot parse. It is the table as it is now: right for the
// binlog position being read only if no later DDL changed the table (the
// decoder checks it against each row event's column types). Nil when the
// table does not exist.
func LoadTable(ctx context.Context, db *sql.DB, schemaName, table string) (*Table, error) {
	c, err := load(ctx, db, schemaName, table)
	if err != nil {
		return nil, err
	}
	return c.Table(schemaName, table), nil
}

func load(ctx context.Context, db *sql.DB, onlySchema, onlyTable string) (*Catalog, error) {
	var args []any
	if onlyTable != "" {
		args = []any{onlySchema, onlyTable}
	}
	only := func(schemaCol, tableCol string) string {
		if onlyTable == "" {
			return ""
		}
		return " AND " + schemaCol + " = ? AND " + tableCol + " = ?"
	}
	var serverCS string
	if err := db.QueryRowContext(ctx, "SELECT @@character_set_server").Scan(&serverCS); err != nil {
		return nil, fmt.Errorf("read character_set_server: %w", err)
	}
	c := NewCatalog(strings.ToLower(serverCS))
	var lctn int
	if err := db.QueryRowContext(ctx, "SELECT @@lower_case_table_names").Scan(&lctn); err != nil {
		return nil, fmt.Errorf("read lower_case_table_names: %w", err)
	}
	c.FoldCase, c.StoresLower = lctn != 0, lctn == 1
	notIn := "('" + strings.Join(systemSchemas, "','") + "')"

	rows, err := db.QueryContext(ctx, "SELECT SCHEMA_NAME, DEFAULT_CHARACTER_SET_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME NOT IN "+notIn)
	if err != nil {
		return nil, fmt.Errorf("read information_schema.SCHEMATA: %w", err)
	}
	for rows.Next() {
		var name, cs string
		if err := rows.Scan(&name, &cs); err != nil {
			rows.Close()
			return nil, err
		}
		c.PutDatabase(name, strings.ToLower(cs))
	}
	rows.Close()

	rows, err = db.QueryContext(ctx, `SELECT c.TABLE_SCHEMA, c.TABLE_NAME, c.COLUMN_NAME, c.DATA_TYPE, c.COLUMN_TYPE,
		COALESCE(c.CHARACTER_SET_NAME, ''), c.IS_NULLABLE, c.EXTRA, COALESCE(c.CHARACTER_MAXIMUM_LENGTH, 0), COALESCE(t.TABLE_COLLATION, ''), t.TABLE_TYPE
		FROM information_schema.COLUMNS c JOIN information_schema.TABLES t
		  ON t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME
		WHERE t.TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED', 'SEQUENCE') AND c.TABLE_SCHEMA NOT IN `+notIn+only("c.TABLE_SCHEMA", "c.TABLE_NAME")+`
		ORDER BY c.TABLE_SCHEMA, c.TABLE_NAME, c.ORDINAL_POSITION`, args...)
	if err != nil {
		return nil, fmt.Errorf("read information_schema.COLUMNS: %w", err)
	}
	for rows.Next() {
		var schemaName, tableName, colName, dataType, colType, cs, nullable, extra, collation, tableType string
		var maxLen int64
		if err := rows.Scan(&schemaName, &tableName, &colName, &dataType, &colType, &cs, &nullable, &extra, &maxLen, &collation, &tableType); err != nil {
			rows.Close()
			return nil, err
		}
		t := c.Table(schemaName, tableName)
		if t == nil {
			tcs, _, _ := strings.Cut(strings.ToLower(collation), "_")
			t = &Table{Schema: schemaName, Name: tableName, Charset: tcs, Sequence: tableType == "SEQUENCE"}
			c.PutTable(t)
		}
		dataType = strings.ToLower(dataType)
		col := Column{
			Name:      colName,
			Type:      dataType,
			SQLType:   strings.ToLower(colType),
			Unsigned:  strings.Contains(strings.ToLower(colType), "unsigned"),
			Nullable:  nullable == "YES",
			Charset:   strings.ToLower(cs),
			Generated: strings.Contains(strings.ToUpper(extra), "GENERATED"),
			Invisible: strings.Contains(strings.ToUpper(extra), "INVISIBLE"),
			JSON:      dataType == "json",
		}
		switch dataType {
		case "binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob", "geometry", "point", "linestring",
			"polygon", "multipoint", "multilinestring", "multipolygon", "geometrycollection", "geomcollection", "uuid", "inet6", "inet4":
			col.Charset = "binary"
		case "enum", "set":
			col.Elems = parseElems(colType)
		}
		if dataType == "binary" {
			col.Length = int(maxLen)
		}
		if col.JSON {
			col.Charset = ""
		}
		t.Columns = append(t.Columns, col)
	}
	if err := rows.Err(); err != nil {
		rows.Close()
		return nil, err
	}
	rows.Close()

	rows, err = db.QueryContext(ctx, `SELECT TABLE_SCHEMA, TABLE_NAME, INDEX_NAME, COLUMN_NAME FROM information_schema.STATISTICS
		WHERE NON_UNIQUE = 0 AND TABLE_SCHEMA NOT IN `+notIn+only("TABLE_SCHEMA", "TABLE_NAME")+`
		ORDER BY TABLE_SCHEMA, TABLE_NAME, INDEX_NAME <> 'PRIMARY', INDEX_NAME, SEQ_IN_INDEX`, args...)
	if err != nil {
		return nil, fmt.Errorf("read information_schema.STATISTICS: %w", err)
	}
	for rows.Next() {
		var schemaName, tableName, index, col string
		if err := rows.Scan(&schemaName, &tableName, &index, &col); err != nil {
			rows.Close()
			return nil, err
		}
		t := c.Table(schemaName, tableName)
		if t == nil {
			continue
		}
		if n := len(t.Keys); n > 0 && t.Keys[n-1].Name == index {
			t.Keys[n-1].Columns = append(t.Keys[n-1].Columns, col)
		} else {
			t.Keys = append(t.Keys, Key{Name: index, Columns: []string{col}, Primary: index == "PRIMARY"})
		}
	}
	rows.Close()

	// MariaDB's JSON is LONGTEXT with a json_valid() check. MySQL 5.7 has no
	// CHECK_CONSTRAINTS table; there JSON is a type of its own.
	rows, err = db.QueryContext(ctx, `SELECT CONSTRAINT_SCHEMA, TABLE_NAME, CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS
		WHERE CONSTRAINT_SCHEMA NOT IN `+notIn+only("CONSTRAINT_SCHEMA", "TABLE_NAME"), args...)
	if err == nil {
		for rows.Next() {
			var schemaName, tableName, clause string
			if err := rows.Scan(&schemaName, &tableName, &clause); err != nil {
				break
			}
			t := c.Table(schemaName, tableName)
			if t == nil {
				continue
			}
			if col := jsonValidInClause(clause); col != "" {
				if i := t.ColumnIndex(col); i >= 0 {
					t.Columns[i].JSON = true
				}
			}
		}
		rows.Close()
	}
	return c, nil
}

func jsonValidInClause(clause string) string {
	s := strings.TrimSpace(clause)
	l := strings.ToLower(s)
	if !strings.HasPrefix(l, "json_valid(") || !strings.HasSuffix(s, ")") {
		return ""
	}
	inner := strings.TrimSpace(s[len("json_valid(") : len(s)-1])
	return unquoteIdent(inner)
}

// parseElems reads the members of "enum('a','b”c')" or "set(...)".
func parseElems(colType string) []string {
	open := strings.IndexByte(colType, '(')
	if open < 0 {
		return nil
	}
	s := colType[open+1:]
	var out []string
	for i := 0; i < len(s); i++ {
		if s[i] != '\'' {
			continue
		}
		var b strings.Builder
		for i++; i < len(s); i++ {
			if s[i] == '\'' {
				if i+1 < len(s) && s[i+1] == '\'' {
					b.WriteByte('\'')
					i++
					continue
				}
				break
			}
			if s[i] == '\\' && i+1 < len(s) {
				i++
			}
			b.WriteByte(s[i])
		}
		out = append(out, b.String())
	}
	return out
}
