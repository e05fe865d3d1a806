package sqltext_test

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/sluice-cdc/sluice/binlog"
	"github.com/sluice-cdc/sluice/internal/testenv"
	"github.com/sluice-cdc/sluice/sqltext"
)

// TestLiteralsOnServer stores literals through sessions with every
// combination of sql_mode and client character set that changes how a
// server reads a string, and checks the column holds exactly the bytes
// meant.
func TestLiteralsOnServer(t *testing.T) {
	m := testenv.StartMariaDB(t, testenv.MariaDBOptions{})
	m.Exec(t, "CREATE DATABASE l")
	text := func(cs string) *binlog.Column {
		return &binlog.Column{Name: "c", Type: mysql.MYSQL_TYPE_VARCHAR, Charset: cs}
	}
	nasty := `a\'; DROP TABLE l.t; -- ` + "\x00\n\r\x1a\"`"
	values := []struct {
		col  *binlog.Column
		v    binlog.Value
		want []byte // the column's bytes
	}{
		{text("utf8mb4"), nasty, []byte(nasty)},
		{text("utf8mb4"), "é中😀 it's", []byte("é中😀 it's")},
		{text("utf8mb4"), "ソ表", []byte("ソ表")},
		{text("latin1"), "é\u0081\u009d'", []byte{0xe9, 0x81, 0x9d, '\''}},
		{text("latin1"), nasty, []byte(nasty)},
		{text("ucs2"), "aé", []byte{0, 'a', 0, 0xe9}},
		{text("utf32"), "a", []byte{0, 0, 0, 'a'}},
		{text("cp1251"), "Ж", []byte{0xc6}},
		{text("sjis"), "ソ表", []byte{0x83, 0x5c, 0x95, 0x5c}}, // trail bytes 0x5C
		{text("gbk"), "中文", []byte{0xd6, 0xd0, 0xce, 0xc4}},
		{text("ascii"), binlog.RawText{Bytes: []byte{'A', 0xff}, Charset: "ascii"}, []byte{'A', 0xff}},
		{text("cp1251"), binlog.RawText{Bytes: []byte{0x98}, Charset: "cp1251"}, []byte{0x98}},
		{&binlog.Column{Name: "c", Type: mysql.MYSQL_TYPE_VARCHAR, Binary: true, Charset: "binary"}, []byte("\x00'\\\xff"), []byte("\x00'\\\xff")},
		{&binlog.Column{Name: "c", Type: mysql.MYSQL_TYPE_BLOB, JSON: true, Charset: "utf8mb4"}, binlog.JSON(`{"a": "\\n'"}`), []byte(`{"a": "\\n'"}`)},
	}
	for i, v := range values {
		typ := "VARCHAR(100) CHARACTER SET " + v.col.Charset
		if v.col.Charset == "binary" {
			typ = "VARBINARY(100)"
		}
		m.Exec(t, fmt.Sprintf("CREATE TABLE l.t%d (c %s)", i, typ))
	}
	db, err := sql.Open("mysql", m.DriverDSN(""))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	for _, names := range []string{"utf8mb4", "latin1", "gbk", "sjis", "big5", "binary"} {
		for _, mode := range []string{"", "NO_BACKSLASH_ESCAPES", "ANSI_QUOTES,NO_BACKSLASH_ESCAPES"} {
			t.Run(names+" "+mode, func(t *testing.T) {
				conn, err := db.Conn(ctx)
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				for i, v := range values {
					q := fmt.Sprintf("DELETE FROM l.t%d", i)
					if _, err := conn.ExecContext(ctx, q); err != nil {
						t.Fatal(err)
					}
					ins := string(sqltext.AppendLiteral([]byte(fmt.Sprintf("INSERT INTO l.t%d VALUES (", i)), v.col, v.v)) + ")"
					if _, err := conn.ExecContext(ctx, "SET NAMES "+names+", sql_mode = '"+mode+"'"); err != nil {
						t.Fatal(err)
					}
					if _, err := conn.ExecContext(ctx, ins); err != nil {
						t.Errorf("%s: %v", ins, err)
						continue
					}
					where := string(sqltext.AppendMatch([]byte(fmt.Sprintf("SELECT HEX(c) FROM l.t%d WHERE ", i)), v.col, v.v))
					var got string
					if err := conn.QueryRowContext(ctx, where).Scan(&got); err != nil {
						t.Errorf("%s: %v", where, err)
						continue
					}
					if want := strings.ToUpper(fmt.Sprintf("%x", v.want)); got != want {
						t.Errorf("%s stored %s, want %s", ins, got, want)
					}
					if _, err := conn.ExecContext(ctx, "SET NAMES utf8mb4, sql_mode = DEFAULT"); err != nil {
						t.Fatal(err)
					}
				}
			})
		}
	}
	m.QueryString(t, "SELECT COUNT(*) FROM l.t0") // the DROP in the nasty value never ran
}
