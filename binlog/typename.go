package binlog

import (
	"slices"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// typeNames is the one table of column type names: for each binlog column
// type (a table map's, ENUM and SET resolved), the base type names
// information_schema.COLUMNS.DATA_TYPE (or a DDL) gives the columns the
// server logs with it. The first name is the type's own name.
var typeNames = []struct {
	types []byte
	names []string
}{
	{[]byte{mysql.MYSQL_TYPE_TINY}, []string{"tinyint", "bool", "boolean"}},
	{[]byte{mysql.MYSQL_TYPE_SHORT}, []string{"smallint"}},
	{[]byte{mysql.MYSQL_TYPE_INT24}, []string{"mediumint"}},
	{[]byte{mysql.MYSQL_TYPE_LONG}, []string{"int", "integer"}},
	{[]byte{mysql.MYSQL_TYPE_LONGLONG}, []string{"bigint", "serial"}},
	{[]byte{mysql.MYSQL_TYPE_FLOAT}, []string{"float"}},
	{[]byte{mysql.MYSQL_TYPE_DOUBLE}, []string{"double", "real", "double precision"}},
	{[]byte{mysql.MYSQL_TYPE_NEWDECIMAL, mysql.MYSQL_TYPE_DECIMAL}, []string{"decimal", "numeric"}},
	{[]byte{mysql.MYSQL_TYPE_NEWDATE, mysql.MYSQL_TYPE_DATE}, []string{"date"}},
	{[]byte{mysql.MYSQL_TYPE_TIME2, mysql.MYSQL_TYPE_TIME}, []string{"time"}},
	{[]byte{mysql.MYSQL_TYPE_DATETIME2, mysql.MYSQL_TYPE_DATETIME}, []string{"datetime"}},
	{[]byte{mysql.MYSQL_TYPE_TIMESTAMP2, mysql.MYSQL_TYPE_TIMESTAMP}, []string{"timestamp"}},
	{[]byte{mysql.MYSQL_TYPE_YEAR}, []string{"year"}},
	{[]byte{mysql.MYSQL_TYPE_BIT}, []string{"bit"}},
	{[]byte{mysql.MYSQL_TYPE_STRING}, []string{"char", "binary", "uuid", "inet6", "inet4"}},
	{[]byte{mysql.MYSQL_TYPE_VARCHAR, mysql.MYSQL_TYPE_VAR_STRING}, []string{"varchar", "varbinary"}},
	{[]byte{mysql.MYSQL_TYPE_ENUM}, []string{"enum"}},
	{[]byte{mysql.MYSQL_TYPE_SET}, []string{"set"}},
	// MariaDB's JSON is LONGTEXT: a BLOB in the binlog.
	{[]byte{mysql.MYSQL_TYPE_BLOB}, []string{"blob", "tinyblob", "mediumblob", "longblob", "tinytext", "text", "mediumtext", "longtext", "json"}},
	{[]byte{mysql.MYSQL_TYPE_JSON}, []string{"json"}},
	{[]byte{mysql.MYSQL_TYPE_GEOMETRY}, []string{"geometry", "point", "linestring", "polygon", "multipoint", "multilinestring",
		"multipolygon", "geometrycollection", "geomcollection"}},
	{[]byte{mysql.MYSQL_TYPE_VECTOR}, []string{"vector"}},
}

var (
	typeName = map[byte]string{}   // binlog type -> its name
	typesOf  = map[string][]byte{} // base type name -> the binlog types logged for it
)

func init() {
	for _, e := range typeNames {
		for _, t := range e.types {
			typeName[t] = e.names[0]
		}
		for _, n := range e.names {
			typesOf[n] = append(typesOf[n], e.types...)
		}
	}
}

// TypeName is the name of a binlog column type (Column.Type): "int",
// "varchar", "datetime", ...; "unknown" for a type sluice does not know.
func TypeName(t byte) string {
	if n, ok := typeName[t]; ok {
		return n
	}
	return "unknown"
}

// typeMatches reports whether a column the tracked schema says is of base
// type name can be logged with binlog type t. A name the table does not
// know matches: the definition is trusted.
func typeMatches(name string, t byte) bool {
	types, ok := typesOf[name]
	return !ok || slices.Contains(types, t)
}
