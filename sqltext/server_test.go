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
	"github.com/sluice-cdc/sluice/mysqlconn"
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

// TestParamsOnServer stores each value twice on a binary session with the
// MySQL sink's sql_mode, once as AppendLiteral's literal and once as
// Param's prepared-statement parameter, and checks the column holds the
// same value both ways; and that Param leaves to the literal what it
// cannot send as such.
func TestParamsOnServer(t *testing.T) {
	m := testenv.StartMariaDB(t, testenv.MariaDBOptions{})
	m.Exec(t, "CREATE DATABASE p")
	col := func(typ byte, cs string) *binlog.Column {
		return &binlog.Column{Name: "c", Type: typ, Charset: cs}
	}
	text := func(cs string) *binlog.Column { return col(mysql.MYSQL_TYPE_VARCHAR, cs) }
	nasty := `a\'; DROP TABLE p.t; -- ` + "\x00\n\r\x1a\"`😀"
	big := strings.Repeat("ü'\\", 40000)
	values := []struct {
		ddl string
		col *binlog.Column
		v   binlog.Value
	}{
		{"INT", col(mysql.MYSQL_TYPE_LONG, ""), int64(-2147483648)},
		{"TINYINT", col(mysql.MYSQL_TYPE_TINY, ""), int64(-5)},
		{"BIGINT UNSIGNED", col(mysql.MYSQL_TYPE_LONGLONG, ""), uint64(18446744073709551615)},
		{"INT", col(mysql.MYSQL_TYPE_LONG, ""), nil},
		{"DECIMAL(30,10)", col(mysql.MYSQL_TYPE_NEWDECIMAL, ""), binlog.Decimal("-12345678901234567890.0123456789")},
		{"DECIMAL(5,2)", col(mysql.MYSQL_TYPE_NEWDECIMAL, ""), binlog.Decimal("0.00")},
		{"FLOAT", col(mysql.MYSQL_TYPE_FLOAT, ""), float32(0.1)},
		{"FLOAT", col(mysql.MYSQL_TYPE_FLOAT, ""), float32(3.4028235e38)},
		{"FLOAT(7,3)", col(mysql.MYSQL_TYPE_FLOAT, ""), float32(1234.568)},
		{"DOUBLE", col(mysql.MYSQL_TYPE_DOUBLE, ""), 0.1},
		{"DOUBLE", col(mysql.MYSQL_TYPE_DOUBLE, ""), 1.7976931348623157e308},
		{"DOUBLE", col(mysql.MYSQL_TYPE_DOUBLE, ""), 4.9e-324},
		{"BIT(17)", col(mysql.MYSQL_TYPE_BIT, ""), uint64(131071)},
		{"YEAR", col(mysql.MYSQL_TYPE_YEAR, ""), int64(1901)},
		{"DATE", col(mysql.MYSQL_TYPE_DATE, ""), "2024-02-29"},
		{"DATE", col(mysql.MYSQL_TYPE_DATE, ""), "0000-00-00"},
		{"DATE", col(mysql.MYSQL_TYPE_DATE, ""), "2023-02-31"},
		{"DATETIME(6)", col(mysql.MYSQL_TYPE_DATETIME2, ""), "2024-01-01 00:00:00.000001"},
		{"TIME(3)", col(mysql.MYSQL_TYPE_TIME2, ""), "-838:59:59.000"},
		{"TIMESTAMP(4) NULL", col(mysql.MYSQL_TYPE_TIMESTAMP2, ""), "2038-01-19 03:14:07.9999"},
		{"ENUM('x','y','z')", col(mysql.MYSQL_TYPE_ENUM, ""), binlog.Enum{Index: 2}},
		{"ENUM('x','y','z')", col(mysql.MYSQL_TYPE_ENUM, ""), binlog.Enum{Index: 0}},
		{"SET('p','q','r')", col(mysql.MYSQL_TYPE_SET, ""), binlog.Set{Bits: 5}},
		{"VARCHAR(50) CHARACTER SET latin1", text("latin1"), "café\u0081\u20ac'"},
		{"CHAR(6) CHARACTER SET latin1", text("latin1"), "ab  "},
		{"VARCHAR(50) CHARACTER SET cp1251", text("cp1251"), "Жж"},
		{"VARCHAR(50) CHARACTER SET gbk", text("gbk"), "中文"},
		{"VARCHAR(50) CHARACTER SET sjis", text("sjis"), "ソ表"},
		{"VARCHAR(50) CHARACTER SET utf8mb4", text("utf8mb4"), nasty},
		{"VARCHAR(50) CHARACTER SET utf8mb3", text("utf8mb3"), "é中"},
		{"VARCHAR(50) CHARACTER SET ascii", text("ascii"), "plain"},
		{"MEDIUMTEXT CHARACTER SET utf8mb4", col(mysql.MYSQL_TYPE_BLOB, "utf8mb4"), big},
		{"BINARY(6)", &binlog.Column{Name: "c", Type: mysql.MYSQL_TYPE_STRING, Binary: true, Charset: "binary", Length: 6}, []byte{0, 1, 0xff, 0, 0, 0}},
		{"VARBINARY(40)", &binlog.Column{Name: "c", Type: mysql.MYSQL_TYPE_VARCHAR, Binary: true, Charset: "binary"}, []byte{}},
		{"VARBINARY(40)", &binlog.Column{Name: "c", Type: mysql.MYSQL_TYPE_VARCHAR, Binary: true, Charset: "binary"}, []byte("\x00'\\\xff")},
		{"BLOB", &binlog.Column{Name: "c", Type: mysql.MYSQL_TYPE_BLOB, Binary: true, Charset: "binary"}, []byte(big)},
	}
	// A pool whose connections also run MariaDB's bulk command, as the
	// sink's rows pool.
	ctx := context.Background()
	dsn, err := mysqlconn.ParseDSN(m.DSN())
	if err != nil {
		t.Fatal(err)
	}
	db, bulk, err := mysqlconn.OpenBulk(ctx, dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var bc *mysqlconn.BulkConn
	_ = conn.Raw(func(dc any) error { bc = bulk.Conn(dc); return nil })
	if bc == nil {
		t.Fatal("the connection does not run the bulk command")
	}
	if _, err := conn.ExecContext(ctx, "SET NAMES binary, time_zone = '+00:00', sql_mode = 'NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION,ALLOW_INVALID_DATES'"); err != nil {
		t.Fatal(err)
	}
	// insertBulk stores p in row id of table tb with the bulk command.
	var cmd mysqlconn.BulkCommand
	insertBulk := func(tb string, id int64, p any) error {
		return conn.Raw(func(any) error {
			stmt, _, err := bc.Prepare(ctx, "INSERT INTO "+tb+" VALUES (?, ?)")
			if err != nil {
				return err
			}
			defer bc.CloseStmt(ctx, stmt)
			typ, ok := mysqlconn.BulkType(p)
			if !ok {
				typ = mysqlconn.TypeString
			}
			cmd.Start(stmt, []uint16{mysqlconn.TypeLongLong, typ})
			cmd.Add([]any{id, p})
			n, err := bc.Execute(ctx, &cmd)
			if err == nil && n != 1 {
				err = fmt.Errorf("%d rows inserted", n)
			}
			return err
		})
	}
	for i, v := range values {
		p, _, ok := sqltext.Param(v.col, v.v)
		if !ok {
			t.Errorf("%s %#v: Param leaves it to the literal", v.ddl, v.v)
			continue
		}
		tb := fmt.Sprintf("p.t%d", i)
		if _, err := conn.ExecContext(ctx, fmt.Sprintf("CREATE TABLE %s (id INT PRIMARY KEY, c %s)", tb, v.ddl)); err != nil {
			t.Fatal(err)
		}
		lit := string(sqltext.AppendLiteral([]byte("INSERT INTO "+tb+" VALUES (1, "), v.col, v.v)) + ")"
		if _, err := conn.ExecContext(ctx, lit); err != nil {
			t.Fatalf("%s: %v", lit, err)
		}
		stmt, err := conn.PrepareContext(ctx, "INSERT INTO "+tb+" VALUES (2, ?)")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := stmt.ExecContext(ctx, p); err != nil {
			t.Fatalf("%s %#v as a parameter: %v", v.ddl, v.v, err)
		}
		stmt.Close()
		if err := insertBulk(tb, 3, p); err != nil {
			t.Fatalf("%s %#v in a bulk command: %v", v.ddl, v.v, err)
		}
		for id, how := range map[int]string{2: "the parameter", 3: "the bulk command"} {
			var same bool
			var a, b sql.NullString
			q := fmt.Sprintf("SELECT a.c <=> b.c AND HEX(CAST(a.c AS BINARY)) <=> HEX(CAST(b.c AS BINARY)), HEX(CAST(a.c AS BINARY)), HEX(CAST(b.c AS BINARY)) FROM %s a, %s b WHERE a.id = 1 AND b.id = %d", tb, tb, id)
			if err := conn.QueryRowContext(ctx, q).Scan(&same, &a, &b); err != nil {
				t.Fatal(err)
			}
			if !same || (v.v == nil) != !a.Valid {
				t.Errorf("%s %#v: the literal stored %v, %s %v", v.ddl, v.v, a, how, b)
			}
		}
	}
	// What Param leaves to the literal.
	for _, v := range []struct {
		col *binlog.Column
		v   binlog.Value
	}{
		{text("utf16"), "a"},
		{text("ucs2"), "a"},
		{text("utf8mb3"), "😀"},
		{text("utf8mb4"), "\xff"},
		{text("latin1"), "中"},
		{&binlog.Column{Name: "c", Type: mysql.MYSQL_TYPE_BLOB, JSON: true, Charset: "utf8mb4"}, binlog.JSON(`{}`)},
		{col(mysql.MYSQL_TYPE_GEOMETRY, "binary"), []byte{1, 2}},
		{col(mysql.MYSQL_TYPE_STRING, ""), binlog.UUID{}},
		{text("ascii"), binlog.RawText{Bytes: []byte{0xff}, Charset: "ascii"}},
		{col(mysql.MYSQL_TYPE_VECTOR, "binary"), []float32{1}},
	} {
		if _, _, ok := sqltext.Param(v.col, v.v); ok {
			t.Errorf("Param(%s %#v) is a parameter, want the literal", v.col.Charset, v.v)
		}
	}
}
