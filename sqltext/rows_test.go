package sqltext

import (
	"math"

	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/sluice-cdc/sluice/binlog"
)

// TestUpdateSetsChangedColumns: an update writes the columns whose value
// changes, and TIMESTAMP and DATETIME columns always (they may update
// themselves on the target when not set).
func TestUpdateSetsChangedColumns(t *testing.T) {
	tb := &binlog.Table{Schema: "s", Name: "t", PK: []int{0}, Columns: []binlog.Column{
		{Name: "id", Type: mysql.MYSQL_TYPE_LONG},
		{Name: "g", Type: mysql.MYSQL_TYPE_GEOMETRY},
		{Name: "v", Type: mysql.MYSQL_TYPE_LONG, Nullable: true},
		{Name: "ts", Type: mysql.MYSQL_TYPE_TIMESTAMP2},
		{Name: "f", Type: mysql.MYSQL_TYPE_DOUBLE},
	}}
	tests := []struct {
		name          string
		before, after []binlog.Value
		want          string
	}{
		{"one column changes",
			[]binlog.Value{int64(1), []byte{}, int64(1), "2000-01-01 00:00:00", 0.5},
			[]binlog.Value{int64(1), []byte{}, int64(2), "2000-01-01 00:00:00", 0.5},
			"UPDATE `s`.`t` SET `v`=2, `ts`='2000-01-01 00:00:00' WHERE `id`=1 LIMIT 1;"},
		{"to and from NULL, negative zero",
			[]binlog.Value{int64(1), []byte{}, nil, "2000-01-01 00:00:00", 0.0},
			[]binlog.Value{int64(1), []byte{1}, int64(0), "2000-01-01 00:00:00", math.Copysign(0, -1)},
			"UPDATE `s`.`t` SET `g`=X'01', `v`=0, `ts`='2000-01-01 00:00:00', `f`=-0e0 WHERE `id`=1 LIMIT 1;"},
		{"key changes",
			[]binlog.Value{int64(1), []byte{}, nil, "2000-01-01 00:00:00", 0.5},
			[]binlog.Value{int64(2), []byte{}, nil, "2000-01-01 00:00:01", 0.5},
			"UPDATE `s`.`t` SET `id`=2, `ts`='2000-01-01 00:00:01' WHERE `id`=1 LIMIT 1;"},
		{"column missing from the before image",
			[]binlog.Value{int64(1), binlog.Absent, binlog.Absent, binlog.Absent, binlog.Absent},
			[]binlog.Value{int64(1), binlog.Absent, int64(3), binlog.Absent, binlog.Absent},
			"UPDATE `s`.`t` SET `v`=3 WHERE `id`=1 LIMIT 1;"},
		{"nothing changes: a column set to itself, not the geometry",
			[]binlog.Value{binlog.Absent, []byte{}, int64(1), binlog.Absent, binlog.Absent},
			[]binlog.Value{binlog.Absent, []byte{}, int64(1), binlog.Absent, binlog.Absent},
			"UPDATE `s`.`t` SET `v`=`v` WHERE `g`=X'' AND `v`=1 LIMIT 1;"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &binlog.Change{Table: tb, Op: binlog.Update, Before: tt.before, After: tt.after}
			if got := string(AppendChange(nil, c, false, false)); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

// TestInsertEmptyGeometry: the empty value of a GEOMETRY NOT NULL column
// is inserted by INSERT IGNORE of NULL; a nullable column's is not
// touched (NULL would store NULL), nor is a REPLACE.
func TestInsertEmptyGeometry(t *testing.T) {
	cols := []binlog.Column{
		{Name: "id", Type: mysql.MYSQL_TYPE_LONG},
		{Name: "g", Type: mysql.MYSQL_TYPE_GEOMETRY},
		{Name: "n", Type: mysql.MYSQL_TYPE_GEOMETRY, Nullable: true},
	}
	tb := &binlog.Table{Schema: "s", Name: "t", Columns: cols}
	row := func(id int64, g, n binlog.Value) *binlog.Change {
		return &binlog.Change{Table: tb, Op: binlog.Insert, After: []binlog.Value{id, g, n}}
	}
	tests := []struct {
		name string
		verb string
		rows []*binlog.Change
		want string
	}{
		{"no empty value", "INSERT", []*binlog.Change{row(1, []byte{1}, []byte{})},
			"INSERT INTO `s`.`t` (`id`,`g`,`n`) VALUES (1,X'01',X'')"},
		{"an empty value in one row", "INSERT", []*binlog.Change{row(1, []byte{1}, nil), row(2, []byte{}, []byte{2})},
			"INSERT IGNORE INTO `s`.`t` (`id`,`g`,`n`) VALUES (1,X'01',NULL),(2,NULL,X'02')"},
		{"replace", "REPLACE", []*binlog.Change{row(2, []byte{}, nil)},
			"REPLACE INTO `s`.`t` (`id`,`g`,`n`) VALUES (2,X'',NULL)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(AppendInsert(nil, tt.verb, tt.rows)); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}
