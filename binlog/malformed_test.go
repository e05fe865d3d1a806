package binlog

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
)

func tableMap(types []byte, meta []uint16) *replication.TableMapEvent {
	return &replication.TableMapEvent{TableID: 1, Schema: []byte("db"), Table: []byte("t"),
		ColumnCount: uint64(len(types)), ColumnType: types, ColumnMeta: meta, NullBitmap: make([]byte, (len(types)+7)/8)}
}

// TestMalformedRows: row events and table maps that lie about their sizes
// give an error that says what is wrong; none loops or panics.
func TestMalformedRows(t *testing.T) {
	long, int4 := mysql.MYSQL_TYPE_LONG, []byte{1, 0, 0, 0}
	tests := []struct {
		name    string
		tm      *replication.TableMapEvent
		count   uint64
		bitmap1 []byte
		bitmap2 []byte
		data    []byte
		op      Op
		want    string
	}{
		{"empty bitmap", tableMap([]byte{long}, []uint16{0}), 1, []byte{0}, nil, append([]byte{0}, int4...), Insert, "names no column"},
		{"zero-column table map", tableMap(nil, nil), 0, nil, nil, []byte{0, 1, 2}, Insert, "names no column"},
		{"empty after bitmap", tableMap([]byte{long}, []uint16{0}), 1, []byte{1}, []byte{0}, append([]byte{0}, int4...), Update, "names no column in its after bitmap"},
		{"short bitmap", tableMap([]byte{long, long, long, long, long, long, long, long, long}, make([]uint16, 9)), 9, []byte{0xff}, nil, []byte{0}, Insert, "short for 9 columns"},
		{"column count differs", tableMap([]byte{long}, []uint16{0}), 2, []byte{3}, nil, []byte{0}, Insert, "row event for 2 columns, the table map has 1"},
		{"value past the end", tableMap([]byte{long}, []uint16{0}), 1, []byte{1}, nil, []byte{0, 1, 2}, Insert, "ends inside a value|points past its end"},
		{"TIME2 precision 7", tableMap([]byte{mysql.MYSQL_TYPE_TIME2}, []uint16{7}), 1, []byte{1}, nil, make([]byte, 8), Insert, "TIME fractional-seconds precision 7"},
		{"DATETIME2 precision 200", tableMap([]byte{mysql.MYSQL_TYPE_DATETIME2}, []uint16{200}), 1, []byte{1}, nil, make([]byte, 8), Insert, "DATETIME fractional-seconds precision 200"},
		{"TIMESTAMP2 precision 9", tableMap([]byte{mysql.MYSQL_TYPE_TIMESTAMP2}, []uint16{9}), 1, []byte{1}, nil, make([]byte, 8), Insert, "TIMESTAMP fractional-seconds precision 9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, goMySQL := range []bool{false, true} {
				d := newDecoder(nil, false, slog.New(slog.DiscardHandler))
				d.goMySQLRows = goMySQL
				e := &replication.RowsEvent{Version: 2, Table: tt.tm, ColumnCount: tt.count, ColumnBitmap1: tt.bitmap1, ColumnBitmap2: tt.bitmap2}
				td, err := d.tableFor(tt.tm)
				if err == nil {
					_, _, err = d.decodeDeferredRows(td, e, deferredRows{data: tt.data}, replication.WRITE_ROWS_EVENTv2, tt.op)
				}
				if err == nil || !containsAny(err.Error(), tt.want) {
					t.Errorf("go-mysql rows %v: error %v, want %q", goMySQL, err, tt.want)
				}
				if err != nil && strings.Contains(err.Error(), "runtime error") {
					t.Errorf("Go runtime text in %q", err)
				}
			}
		})
	}
}

// containsAny reports whether s contains one of the |-separated parts of want.
func containsAny(s, want string) bool {
	for _, w := range strings.Split(want, "|") {
		if strings.Contains(s, w) {
			return true
		}
	}
	return false
}

// TestGTIDTopOfRange: MySQL transaction numbers end at 2^63-1; MariaDB
// sequence numbers at 2^64-1, where interval arithmetic must not wrap.
func TestGTIDTopOfRange(t *testing.T) {
	const u = "3e11fa47-71ca-11e1-9e33-c80aa9429562"
	for _, tt := range []struct {
		in, err string
	}{
		{u + ":1-9223372036854775807", ""},
		{u + ":9223372036854775808", "MySQL transaction numbers end at 9223372036854775807"},
		{u + ":1-18446744073709551615", "MySQL transaction numbers end at"},
		{"0-1-18446744073709551615", ""},
	} {
		_, err := ParseGTIDSet(tt.in)
		if (err == nil) != (tt.err == "") || err != nil && !strings.Contains(err.Error(), tt.err) {
			t.Errorf("ParseGTIDSet(%q) = %v, want %q", tt.in, err, tt.err)
		}
	}
	// Intervals touching the top of the uint64 range merge without
	// wrapping around to 0.
	var iv intervals
	iv = iv.add(1<<64-1, 1<<64-1)
	iv = iv.add(5, 5)
	iv = iv.add(1<<64-3, 1<<64-2)
	iv = iv.add(1, 4)
	want := intervals{{1, 5}, {1<<64 - 3, 1<<64 - 1}}
	if len(iv) != len(want) || iv[0] != want[0] || iv[1] != want[1] {
		t.Errorf("intervals %v, want %v", iv, want)
	}
	if !iv.contains(1<<64-1) || iv.contains(0) || iv.contains(6) {
		t.Errorf("contains is wrong on %v", iv)
	}
}

// TestOffsetPast4GiB: a transaction that ends past 4 GiB in a binlog file
// keeps its real offset (a binlog grows past max_binlog_size with one big
// transaction). The reader is moved 5 GiB ahead after the file header, as
// if that much came before; the offsets it reports must move with it.
func TestOffsetPast4GiB(t *testing.T) {
	dir, _ := filepath.Abs("..")
	path := filepath.Join(dir, "..", "shared", "fixtures", "binlogs", "rust_mysql_common", "binlog_transaction.000001")
	if _, err := os.Stat(path); err != nil {
		t.Skipf("fixture %s not present", path)
	}
	read := func(shift int64) []Position {
		f, _ := NewFilter([]string{"*"}, nil)
		src, err := OpenFiles([]string{path}, DecodeOptions{Filter: f, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		if err := src.openNext(); err != nil {
			t.Fatal(err)
		}
		src.r.n += shift
		src.size += shift
		var out []Position
		for {
			tx, err := src.Next(context.Background())
			if errors.Is(err, io.EOF) {
				return out
			}
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, tx.Pos)
			tx.Close()
		}
	}
	base, shifted := read(0), read(5<<30)
	if len(base) == 0 || len(base) != len(shifted) {
		t.Fatalf("%d and %d transactions", len(base), len(shifted))
	}
	for i := range base {
		if shifted[i].Pos != base[i].Pos+5<<30 {
			t.Errorf("transaction %d ends at %d, want %d", i, shifted[i].Pos, base[i].Pos+5<<30)
		}
	}
}
