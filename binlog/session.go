package binlog

import (
	"encoding/binary"
	"strings"
	"time"
)

// Session is the state of the source session a statement ran in, as its
// QUERY_EVENT's status variables record it: what a replica sets before
// running the statement so that it has the same result (a TIMESTAMP column
// added with DEFAULT CURRENT_TIMESTAMP is filled with the source's time,
// not the replica's). Fields the event did not carry are zero (Has*
// false).
type Session struct {
	// Timestamp is when the statement started on the source, to the
	// microsecond when the server logs microseconds.
	Timestamp time.Time
	// SQLMode is the session's sql_mode bits; SQLModeNames the same as
	// names, as the source's flavor numbers them.
	SQLMode      uint64
	SQLModeNames string
	HasSQLMode   bool
	// TimeZone is the session's time_zone, when it was logged.
	TimeZone string
	// ForeignKeyChecks and UniqueChecks, when the flags were logged.
	ForeignKeyChecks, UniqueChecks bool
	HasFlags                       bool
	// Character set and collation ids of character_set_client,
	// collation_connection and collation_server, when logged.
	CharsetClient, CollationConnection, CollationServer uint16
	HasCharset                                          bool
	// ExplicitDefaultsForTimestamp, when logged (MySQL 8).
	ExplicitDefaultsForTimestamp    bool
	HasExplicitDefaultsForTimestamp bool
}

// Status variable codes of a QUERY_EVENT (MySQL's and MariaDB's
// log_event.h).
const (
	qFlags2                       = 0
	qSQLMode                      = 1
	qCatalog                      = 2
	qAutoIncrement                = 3
	qCharset                      = 4
	qTimeZone                     = 5
	qCatalogNZ                    = 6
	qLCTimeNames                  = 7
	qCharsetDatabase              = 8
	qTableMapForUpdate            = 9
	qMasterDataWritten            = 10
	qInvoker                      = 11
	qUpdatedDBNames               = 12
	qMicroseconds                 = 13
	qCommitTS                     = 14
	qCommitTS2                    = 15
	qExplicitDefaultsForTimestamp = 16
	qDDLLoggedWithXID             = 17
	qDefaultCollationForUTF8MB4   = 18
	qSQLRequirePrimaryKey         = 19
	qDefaultTableEncryption       = 20
	qHRNow                        = 128 // MariaDB: microseconds
	qXID                          = 129 // MariaDB
	qGTIDFlags3                   = 130 // MariaDB
)

// Bits of Q_FLAGS2_CODE.
const (
	optionNoForeignKeyChecks    = 1 << 26
	optionRelaxedUniqueChecks   = 1 << 27
	overMaxDBsInEventMTS        = 254
	maxStatusVarsLength         = 1 << 16
	mysqlMicrosecondsFieldBytes = 3
)

// parseSession reads the status variables of a QUERY_EVENT whose header
// timestamp is ts. It stops at a code it does not know, as the server
// does: later variables cannot be located.
func parseSession(vars []byte, ts uint32, mariadb bool) *Session {
	s := &Session{Timestamp: time.Unix(int64(ts), 0).UTC()}
	if len(vars) > maxStatusVarsLength {
		return s
	}
	b := vars
	need := func(n int) bool { return len(b) >= n }
	for len(b) > 0 {
		code := b[0]
		b = b[1:]
		switch code {
		case qFlags2:
			if !need(4) {
				return s
			}
			f := binary.LittleEndian.Uint32(b)
			s.ForeignKeyChecks = f&optionNoForeignKeyChecks == 0
			s.UniqueChecks = f&optionRelaxedUniqueChecks == 0
			s.HasFlags = true
			b = b[4:]
		case qSQLMode:
			if !need(8) {
				return s
			}
			s.SQLMode = binary.LittleEndian.Uint64(b)
			s.SQLModeNames = SQLModeNames(s.SQLMode, mariadb)
			s.HasSQLMode = true
			b = b[8:]
		case qCatalog:
			if !need(1) || !need(int(b[0])+2) {
				return s
			}
			b = b[int(b[0])+2:] // length, name, NUL
		case qAutoIncrement:
			if !need(4) {
				return s
			}
			b = b[4:]
		case qCharset:
			if !need(6) {
				return s
			}
			s.CharsetClient = binary.LittleEndian.Uint16(b)
			s.CollationConnection = binary.LittleEndian.Uint16(b[2:])
			s.CollationServer = binary.LittleEndian.Uint16(b[4:])
			s.HasCharset = true
			b = b[6:]
		case qTimeZone:
			if !need(1) || !need(int(b[0])+1) {
				return s
			}
			s.TimeZone = string(b[1 : 1+int(b[0])])
			b = b[1+int(b[0]):]
		case qCatalogNZ:
			if !need(1) || !need(int(b[0])+1) {
				return s
			}
			b = b[1+int(b[0]):]
		case qLCTimeNames, qCharsetDatabase, qDefaultCollationForUTF8MB4:
			if !need(2) {
				return s
			}
			b = b[2:]
		case qTableMapForUpdate, qDDLLoggedWithXID, qXID:
			if !need(8) {
				return s
			}
			b = b[8:]
		case qMasterDataWritten:
			if !need(4) {
				return s
			}
			b = b[4:]
		case qInvoker:
			for range 2 { // user, host
				if !need(1) || !need(int(b[0])+1) {
					return s
				}
				b = b[1+int(b[0]):]
			}
		case qUpdatedDBNames:
			if !need(1) {
				return s
			}
			n := int(b[0])
			b = b[1:]
			if n == overMaxDBsInEventMTS {
				break
			}
			for range n {
				i := indexByte(b, 0)
				if i < 0 {
					return s
				}
				b = b[i+1:]
			}
		case qMicroseconds, qHRNow:
			if !need(mysqlMicrosecondsFieldBytes) {
				return s
			}
			us := uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16
			if us < 1000000 {
				s.Timestamp = s.Timestamp.Add(time.Duration(us) * time.Microsecond)
			}
			b = b[3:]
		case qExplicitDefaultsForTimestamp:
			if !need(1) {
				return s
			}
			s.ExplicitDefaultsForTimestamp, s.HasExplicitDefaultsForTimestamp = b[0] != 0, true
			b = b[1:]
		case qSQLRequirePrimaryKey, qDefaultTableEncryption, qGTIDFlags3:
			if !need(1) {
				return s
			}
			b = b[1:]
		default:
			return s
		}
	}
	return s
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

// sqlModeBits names the sql_mode bits both flavors share.
var sqlModeBits = []string{
	"REAL_AS_FLOAT", "PIPES_AS_CONCAT", "ANSI_QUOTES", "IGNORE_SPACE", "", "ONLY_FULL_GROUP_BY",
	"NO_UNSIGNED_SUBTRACTION", "NO_DIR_IN_CREATE", "POSTGRESQL", "ORACLE", "MSSQL", "DB2", "MAXDB",
	"NO_KEY_OPTIONS", "NO_TABLE_OPTIONS", "NO_FIELD_OPTIONS", "MYSQL323", "MYSQL40", "ANSI",
	"NO_AUTO_VALUE_ON_ZERO", "NO_BACKSLASH_ESCAPES", "STRICT_TRANS_TABLES", "STRICT_ALL_TABLES",
	"NO_ZERO_IN_DATE", "NO_ZERO_DATE", "ALLOW_INVALID_DATES", "ERROR_FOR_DIVISION_BY_ZERO",
	"TRADITIONAL", "NO_AUTO_CREATE_USER", "HIGH_NOT_PRECEDENCE", "NO_ENGINE_SUBSTITUTION",
	"PAD_CHAR_TO_FULL_LENGTH",
}

// Bits numbered differently by the two flavors.
var (
	mariadbModeBits = map[int]string{4: "IGNORE_BAD_TABLE_OPTIONS", 32: "EMPTY_STRING_IS_NULL", 33: "SIMULTANEOUS_ASSIGNMENT", 34: "TIME_ROUND_FRACTIONAL"}
	mysqlModeBits   = map[int]string{32: "TIME_TRUNCATE_FRACTIONAL"}
)

// SQLModeNames returns sql_mode bits as the comma-separated names the
// source's flavor gives them. Bits it does not know are left out.
func SQLModeNames(mode uint64, mariadb bool) string {
	var names []string
	extra := mysqlModeBits
	if mariadb {
		extra = mariadbModeBits
	}
	for i := range 64 {
		if mode&(1<<i) == 0 {
			continue
		}
		name := extra[i]
		if name == "" && i < len(sqlModeBits) {
			name = sqlModeBits[i]
		}
		if name != "" {
			names = append(names, name)
		}
	}
	return strings.Join(names, ",")
}

// PortableSQLModes keeps the names of modes that MySQL 8 and MariaDB both
// know, for a target of the other flavor.
func PortableSQLModes(names string) string {
	var out []string
	for n := range strings.SplitSeq(names, ",") {
		switch n {
		case "", "NO_AUTO_CREATE_USER", "IGNORE_BAD_TABLE_OPTIONS", "EMPTY_STRING_IS_NULL", "SIMULTANEOUS_ASSIGNMENT",
			"TIME_ROUND_FRACTIONAL", "TIME_TRUNCATE_FRACTIONAL", "POSTGRESQL", "ORACLE", "MSSQL", "DB2", "MAXDB",
			"NO_KEY_OPTIONS", "NO_TABLE_OPTIONS", "NO_FIELD_OPTIONS", "MYSQL323", "MYSQL40":
			continue
		}
		out = append(out, n)
	}
	return strings.Join(out, ",")
}
