package binlog

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/replication"
	"github.com/google/uuid"
)

func TestParseSession(t *testing.T) {
	var v []byte
	v = append(v, qFlags2)
	v = binary.LittleEndian.AppendUint32(v, optionNoForeignKeyChecks)
	v = append(v, qSQLMode)
	v = binary.LittleEndian.AppendUint64(v, 1<<2|1<<21|1<<32) // ANSI_QUOTES, STRICT_TRANS_TABLES, bit 32
	v = append(v, qCatalogNZ, 3, 's', 't', 'd')
	v = append(v, qCharset)
	v = binary.LittleEndian.AppendUint16(v, 33)
	v = binary.LittleEndian.AppendUint16(v, 45)
	v = binary.LittleEndian.AppendUint16(v, 8)
	v = append(v, qTimeZone, 6)
	v = append(v, "+05:00"...)
	v = append(v, qInvoker, 1, 'u', 1, 'h')
	v = append(v, qUpdatedDBNames, 2, 'a', 0, 'b', 0)
	v = append(v, qHRNow, 0x40, 0xE2, 0x01) // 123456 µs
	v = append(v, qExplicitDefaultsForTimestamp, 1)

	for _, tt := range []struct {
		mariadb bool
		modes   string
	}{{true, "ANSI_QUOTES,STRICT_TRANS_TABLES,EMPTY_STRING_IS_NULL"}, {false, "ANSI_QUOTES,STRICT_TRANS_TABLES,TIME_TRUNCATE_FRACTIONAL"}} {
		s := parseSession(v, 1000000000, tt.mariadb)
		want := time.Unix(1000000000, 123456000).UTC()
		if !s.Timestamp.Equal(want) || s.SQLModeNames != tt.modes || s.TimeZone != "+05:00" || !s.HasFlags || s.ForeignKeyChecks ||
			!s.UniqueChecks || s.CharsetClient != 33 || s.CollationConnection != 45 || s.CollationServer != 8 ||
			!s.HasExplicitDefaultsForTimestamp || !s.ExplicitDefaultsForTimestamp {
			t.Errorf("mariadb %v: %+v", tt.mariadb, s)
		}
	}
	// Truncated or unknown variables stop the parse without a panic.
	for i := range v {
		parseSession(v[:i], 1, true)
	}
	if s := parseSession([]byte{200, 1, 2}, 1, true); s.HasSQLMode {
		t.Error("an unknown code was read past")
	}
	if got := PortableSQLModes("ANSI_QUOTES,EMPTY_STRING_IS_NULL,NO_AUTO_CREATE_USER,STRICT_ALL_TABLES"); got != "ANSI_QUOTES,STRICT_ALL_TABLES" {
		t.Errorf("PortableSQLModes = %q", got)
	}
}

// MySQL 8.0.21+ logs CREATE TABLE ... SELECT as "CREATE TABLE ...
// START TRANSACTION", its rows and an XID: one transaction, committed at
// the XID, whose statement the parser and the target can read.
func TestCreateTableStartTransaction(t *testing.T) {
	a := newAssembler(DecodeOptions{})
	a.file = "bin.000001"
	sid := uuid.MustParse("3e11fa47-71ca-11e1-9e33-c80aa9429562")
	pos := uint32(4)
	feed := func(typ replication.EventType, e replication.Event) {
		t.Helper()
		pos += 100
		h := &replication.EventHeader{EventType: typ, Timestamp: 1700000000, ServerID: 1, EventSize: 100, LogPos: pos}
		if err := a.handle(&replication.BinlogEvent{Header: h, Event: e}, uint64(pos)); err != nil {
			t.Fatal(err)
		}
	}
	feed(replication.GTID_EVENT, &replication.GTIDEvent{SID: sid[:], GNO: 7})
	feed(replication.QUERY_EVENT, &replication.QueryEvent{Schema: []byte("d"),
		Query: []byte("CREATE TABLE `t2` (\n  `a` int DEFAULT NULL\n) START TRANSACTION")})
	if out := a.take(); len(out) != 0 {
		t.Fatalf("committed before its XID: %d transactions", len(out))
	}
	feed(replication.XID_EVENT, &replication.XIDEvent{XID: 9})
	out := a.take()
	if len(out) != 1 || out[0].DDL == nil || out[0].DDL.SQL != "CREATE TABLE `t2` (\n  `a` int DEFAULT NULL\n)" ||
		out[0].GTID.String() != "3e11fa47-71ca-11e1-9e33-c80aa9429562:7" {
		t.Fatalf("got %+v", out)
	}
	if a.Catalog().Table("d", "t2") == nil {
		t.Fatal("the table was not tracked")
	}
}
