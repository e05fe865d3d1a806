package binlog

import (
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"
)

func TestTypeNames(t *testing.T) {
	for _, c := range []struct {
		name  string
		bt    byte
		match bool
	}{
		{"int", mysql.MYSQL_TYPE_LONG, true},
		{"int", mysql.MYSQL_TYPE_LONGLONG, false},
		{"json", mysql.MYSQL_TYPE_BLOB, true}, // MariaDB
		{"json", mysql.MYSQL_TYPE_JSON, true}, // MySQL
		{"longtext", mysql.MYSQL_TYPE_JSON, false},
		{"datetime", mysql.MYSQL_TYPE_DATETIME, true},
		{"uuid", mysql.MYSQL_TYPE_STRING, true},
		{"point", mysql.MYSQL_TYPE_GEOMETRY, true},
		{"a type from the future", mysql.MYSQL_TYPE_LONG, true},
	} {
		if got := typeMatches(c.name, c.bt); got != c.match {
			t.Errorf("typeMatches(%q, %d) = %v", c.name, c.bt, got)
		}
	}
	for bt, want := range map[byte]string{mysql.MYSQL_TYPE_NEWDATE: "date", mysql.MYSQL_TYPE_TIMESTAMP2: "timestamp",
		mysql.MYSQL_TYPE_BLOB: "blob", mysql.MYSQL_TYPE_VAR_STRING: "varchar", mysql.MYSQL_TYPE_STRING: "char", 0xf0: "unknown"} {
		if got := TypeName(bt); got != want {
			t.Errorf("TypeName(%d) = %q, want %q", bt, got, want)
		}
	}
}
