package binlog

import (
	"encoding/binary"
	"log/slog"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
)

// fuzzTypes are the column types the row fuzzer picks from.
var fuzzTypes = []byte{
	mysql.MYSQL_TYPE_TINY, mysql.MYSQL_TYPE_SHORT, mysql.MYSQL_TYPE_INT24, mysql.MYSQL_TYPE_LONG, mysql.MYSQL_TYPE_LONGLONG,
	mysql.MYSQL_TYPE_FLOAT, mysql.MYSQL_TYPE_DOUBLE, mysql.MYSQL_TYPE_NEWDECIMAL, mysql.MYSQL_TYPE_YEAR, mysql.MYSQL_TYPE_DATE,
	mysql.MYSQL_TYPE_TIME, mysql.MYSQL_TYPE_TIME2, mysql.MYSQL_TYPE_DATETIME, mysql.MYSQL_TYPE_DATETIME2, mysql.MYSQL_TYPE_TIMESTAMP,
	mysql.MYSQL_TYPE_TIMESTAMP2, mysql.MYSQL_TYPE_BIT, mysql.MYSQL_TYPE_ENUM, mysql.MYSQL_TYPE_SET, mysql.MYSQL_TYPE_STRING,
	mysql.MYSQL_TYPE_VARCHAR, mysql.MYSQL_TYPE_BLOB, mysql.MYSQL_TYPE_GEOMETRY, mysql.MYSQL_TYPE_JSON, mysql.MYSQL_TYPE_VECTOR,
}

// watchdog crashes with every goroutine's stack when one fuzz input takes
// longer than any input may: a hang is a finding.
func watchdog() *time.Timer {
	return time.AfterFunc(20*time.Second, func() {
		buf := make([]byte, 1<<20)
		n := runtime.Stack(buf, true)
		panic("decoder hung on a fuzz input:\n" + string(buf[:n]))
	})
}

// checkDecodeError fails on Go runtime text in an error.
func checkDecodeError(t *testing.T, err error) {
	if err != nil && (strings.Contains(err.Error(), "runtime error") || strings.Contains(err.Error(), "goroutine ")) {
		t.Fatalf("Go runtime text in the error: %v", err)
	}
}

// FuzzRowDecoder decodes arbitrary row data against an arbitrary table map
// (column types, metadata, bitmaps), with sluice's decoder and go-mysql's:
// an error or rows, never a panic, a hang or runtime text.
//
//	go test ./binlog -run '^$' -fuzz FuzzRowDecoder -fuzztime 2m
func FuzzRowDecoder(f *testing.F) {
	f.Add([]byte{1, 3, 0, 0, 1, 0, 1, 0, 0, 0}, uint8(0))
	f.Add([]byte{2, 3, 19, 0, 0, 5, 0, 3, 0, 0x80, 0, 0, 0, 0x80, 0, 0}, uint8(1))
	f.Add([]byte{0, 0, 1, 2}, uint8(2))
	f.Add([]byte{1, 13, 7, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0}, uint8(0))
	f.Fuzz(func(t *testing.T, data []byte, mode uint8) {
		defer watchdog().Stop()
		if len(data) < 1 {
			return
		}
		n := int(data[0] % 6)
		data = data[1:]
		if len(data) < 3*n {
			return
		}
		types := make([]byte, n)
		meta := make([]uint16, n)
		for i := range n {
			types[i] = fuzzTypes[int(data[i])%len(fuzzTypes)]
			meta[i] = binary.LittleEndian.Uint16(data[n+2*i:])
		}
		data = data[3*n:]
		bmLen := (n + 7) / 8
		if len(data) < 2*bmLen {
			return
		}
		tm := tableMap(types, meta)
		op := []Op{Insert, Update, Delete}[mode%3]
		e := &replication.RowsEvent{Version: 2, Table: tm, ColumnCount: uint64(n), ColumnBitmap1: data[:bmLen], ColumnBitmap2: data[bmLen : 2*bmLen]}
		rows := data[2*bmLen:]
		d := newDecoder(nil, false, slog.New(slog.DiscardHandler))
		d.goMySQLRows = mode&4 != 0
		td, err := d.tableFor(tm)
		checkDecodeError(t, err)
		if err != nil {
			return
		}
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("panic: %v", r)
				}
			}()
			_, _, err = d.decodeDeferredRows(td, e, deferredRows{data: rows}, replication.WRITE_ROWS_EVENTv2, op)
		}()
		checkDecodeError(t, err)
	})
}

// fuzzHeader is an event header for an event of the given type and body.
func fuzzHeader(typ replication.EventType, body []byte) *replication.EventHeader {
	return &replication.EventHeader{Timestamp: 1, EventType: typ, ServerID: 1, EventSize: uint32(replication.EventHeaderSize + len(body)), LogPos: 1000}
}

// FuzzTableMap decodes arbitrary TABLE_MAP bodies (go-mysql) and builds
// sluice's table decoder from them through the assembler.
//
//	go test ./binlog -run '^$' -fuzz FuzzTableMap -fuzztime 2m
func FuzzTableMap(f *testing.F) {
	// t1 (id INT, v VARCHAR(10)) in db1, with full metadata.
	f.Add([]byte("\x01\x00\x00\x00\x00\x00\x01\x00\x03db1\x00\x02t1\x00\x02\x03\x0f\x02\x0a\x00\x02\x01\x01\x04\x03\x02id\x01v"))
	f.Add([]byte("\x01\x00\x00\x00\x00\x00\x01\x00\x01a\x00\x01b\x00\x01\x13\x01\x07\x00"))
	f.Fuzz(func(t *testing.T, body []byte) {
		defer watchdog().Stop()
		a := newAssembler(DecodeOptions{Logger: slog.New(slog.DiscardHandler)})
		defer a.close()
		p := replication.NewBinlogParser()
		p.SetVerifyChecksum(false)
		raw := make([]byte, replication.EventHeaderSize, replication.EventHeaderSize+len(body))
		h := fuzzHeader(replication.TABLE_MAP_EVENT, body)
		binary.LittleEndian.PutUint32(raw[0:], h.Timestamp)
		raw[4] = byte(h.EventType)
		binary.LittleEndian.PutUint32(raw[5:], h.ServerID)
		binary.LittleEndian.PutUint32(raw[9:], h.EventSize)
		binary.LittleEndian.PutUint32(raw[13:], h.LogPos)
		raw = append(raw, body...)
		var ev *replication.BinlogEvent
		func() {
			defer func() { _ = recover() }() // go-mysql's own decoder; sluice recovers it in the readers
			ev, _ = p.Parse(raw)
		}()
		if ev == nil {
			return
		}
		if tm, ok := ev.Event.(*replication.TableMapEvent); ok {
			_, err := func() (td *tableDecoder, err error) {
				defer func() {
					if r := recover(); r != nil {
						t.Fatalf("panic building the table decoder: %v", r)
					}
				}()
				return a.dec.tableFor(tm)
			}()
			checkDecodeError(t, err)
		}
		checkDecodeError(t, a.safeHandle(ev, 1000))
	})
}

// FuzzGTIDEvent feeds arbitrary MySQL (plain and tagged) and MariaDB GTID
// event bodies and GTID set texts to the assembler and the set parser.
//
//	go test ./binlog -run '^$' -fuzz FuzzGTIDEvent -fuzztime 2m
func FuzzGTIDEvent(f *testing.F) {
	f.Add([]byte("\x01>\x11\xfaGq\xca\x11\xe1\x9e3\xc8\n\xa9B\x95b\x05\x00\x00\x00\x00\x00\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00"), uint8(0), "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:7")
	f.Add([]byte("\x07\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x03"), uint8(1), "0-1-100,1-2-7")
	f.Add([]byte("\xff\xff\xff\xff\xff\xff\xff\xff\x00\x00\x00\x00\x01"), uint8(1), "0-1-18446744073709551615")
	f.Fuzz(func(t *testing.T, body []byte, kind uint8, set string) {
		defer watchdog().Stop()
		if s, err := ParseGTIDSet(set); err == nil {
			again, err := ParseGTIDSet(s.String())
			if err != nil || again.String() != s.String() {
				t.Fatalf("%q -> %q -> %q, %v", set, s.String(), again.String(), err)
			}
		} else {
			checkDecodeError(t, err)
		}
		var ev replication.Event
		var typ replication.EventType
		switch kind % 3 {
		case 0:
			ev, typ = &replication.GTIDEvent{}, replication.GTID_EVENT
		case 1:
			ev, typ = &replication.MariadbGTIDEvent{}, replication.MARIADB_GTID_EVENT
		default:
			ev, typ = &replication.GtidTaggedLogEvent{}, replication.GTID_TAGGED_LOG_EVENT
		}
		ok := func() (ok bool) {
			defer func() { _ = recover() }() // go-mysql's own decoder
			return ev.Decode(body) == nil
		}()
		if !ok {
			return
		}
		a := newAssembler(DecodeOptions{Logger: slog.New(slog.DiscardHandler)})
		defer a.close()
		be := &replication.BinlogEvent{Header: fuzzHeader(typ, body), Event: ev}
		checkDecodeError(t, a.safeHandle(be, 1000))
		_ = a.executed.String()
	})
}
