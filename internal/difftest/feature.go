// Package difftest is sluice's random differential test, in the spirit of
// SQLancer and go-randgen: a seeded generator writes random schemas (every
// column type and character set MariaDB has, with a primary key, a unique
// NOT NULL key or no key), random DML in random multi-statement transactions
// and random additive DDL to a source; a pipeline replicates it; and every
// table of the source is compared with the target's by CHECKSUM TABLE and by
// an ordered SELECT of every column's bytes.
//
// The generator is deterministic for a seed (given the same server), and
// each kind of edge case is a Feature that can be switched on alone, so a
// class of bug can be exercised by a focused run. The tests that drive it
// are in this package's _test files; `make test` runs it for a bounded time
// and `make soak` for 30 minutes.
package difftest

import (
	"fmt"
	"slices"
	"strings"
)

// Feature is one class of schema, value or statement the generator can
// produce. Every feature is on by default.
type Feature string

// The features. The issue items they reproduce are in Features' docs.
const (
	// Types: every column type (integers signed and unsigned, DECIMAL,
	// FLOAT, DOUBLE, BIT, DATE, TIME, DATETIME, TIMESTAMP with fractional
	// seconds, YEAR, CHAR/VARCHAR/TEXT in the ASCII-compatible character
	// sets, BINARY/VARBINARY/BLOB, ENUM/SET, JSON, GEOMETRY, UUID, INET4,
	// INET6), nullable or not, with ordinary and boundary values.
	Types Feature = "types"
	// AllCharsets: Types' text columns in every ASCII-compatible
	// character set the server has; without it only utf8mb4, utf8mb3,
	// latin1 and ascii.
	AllCharsets Feature = "all-charsets"
	// WideCharsets: text in ucs2, utf16, utf16le and utf32 (issue 14 item 1).
	WideCharsets Feature = "wide-charsets"
	// Latin1C1: latin1 bytes 0x81 0x8D 0x8F 0x90 0x9D (item 2).
	Latin1C1 Feature = "latin1-c1-bytes"
	// InvalidDates: dates such as 2020-02-31 stored under ALLOW_INVALID_DATES (item 3).
	InvalidDates Feature = "invalid-dates"
	// ZeroDates: 0000-00-00 and dates with a zero month or day, under a
	// non-strict sql_mode.
	ZeroDates Feature = "zero-dates"
	// DDL: additive DDL between transactions: ADD COLUMN (with defaults,
	// FIRST/AFTER), ADD INDEX, widening MODIFY, CREATE TABLE.
	DDL Feature = "ddl"
	// DDLExprDefault: ADD COLUMN ... DEFAULT (expression), with CONVERT(...
	// USING cs), charset introducers, FROM_UNIXTIME and ST_GeomFromText in
	// the expression. Without it, defaults are plain literals.
	DDLExprDefault Feature = "ddl-expression-defaults"
	// DDLClock: ADD COLUMN ... DEFAULT CURRENT_TIMESTAMP on a table with
	// rows, which fills them with the DDL's time (item 4).
	DDLClock Feature = "ddl-clock"
	// UUIDInetZeros: UUID, INET4 and INET6 values ending in zero bytes: the
	// nil UUID, 0.0.0.0, ::, 1.0.0.0, ff00:: (item 16).
	UUIDInetZeros Feature = "uuid-inet-zeros"
	// EnumIndex0: ENUMs with a '' member holding the invalid value (index 0)
	// stored under a non-strict sql_mode (item 17).
	EnumIndex0 Feature = "enum-index0"
	// SetCollationEqual: ENUM and SET members that compare equal under the
	// column's collation ('y' and 'ü' in latin1_swedish_ci), set by index
	// (item 17).
	SetCollationEqual Feature = "set-collation-equal"
	// InvalidBytes: bytes that are not characters of a single-byte
	// character set (ascii >= 0x80, cp1251 0x98, ...) (item 18).
	InvalidBytes Feature = "invalid-bytes"
	// KeylessDups: tables without a key holding duplicate rows that differ
	// only in FLOAT, DOUBLE, JSON or GEOMETRY columns, updated and deleted
	// (item 19).
	KeylessDups Feature = "keyless-dups"
	// KeylessApprox: tables without a key whose columns are all FLOAT,
	// DOUBLE, JSON or GEOMETRY (item 6).
	KeylessApprox Feature = "keyless-approx"
	// TimestampEpochFrac: TIMESTAMP(n) values at epoch 0 with a fraction,
	// 1970-01-01 00:00:00.5 UTC (item 20).
	TimestampEpochFrac Feature = "timestamp-epoch-frac"
	// OddIdentifiers: table and column names with keywords (t1_schema),
	// spaces, backticks, dots, quotes and non-ASCII letters in them.
	OddIdentifiers Feature = "odd-identifiers"
	// Sequences: MariaDB sequences, made by CREATE SEQUENCE, CREATE TABLE …
	// SEQUENCE=1 and CREATE TABLE … LIKE, moved by NEXTVAL (also inside
	// transactions that roll back), SETVAL, INSERT of their row and ALTER
	// SEQUENCE, renamed and dropped.
	Sequences Feature = "sequences"
	// Restart: the pipeline stops in the middle of a round and resumes from
	// its checkpoint and schema history.
	Restart Feature = "restart"
)

// Features lists every feature.
var Features = []Feature{Types, AllCharsets, WideCharsets, Latin1C1, InvalidDates, ZeroDates, DDL, DDLExprDefault, DDLClock,
	UUIDInetZeros, EnumIndex0, SetCollationEqual, InvalidBytes, KeylessDups, KeylessApprox,
	TimestampEpochFrac, OddIdentifiers, Sequences, Restart}

// FeatureSet is a set of enabled features.
type FeatureSet map[Feature]bool

// All is every feature.
func All() FeatureSet {
	s := FeatureSet{}
	for _, f := range Features {
		s[f] = true
	}
	return s
}

// ParseFeatures reads a comma-separated list of feature names; "" and "all"
// are every feature, and "-name" removes one from all.
func ParseFeatures(list string) (FeatureSet, error) {
	list = strings.TrimSpace(list)
	if list == "" || list == "all" {
		return All(), nil
	}
	var s FeatureSet
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		neg := strings.HasPrefix(name, "-")
		name = strings.TrimPrefix(name, "-")
		if !slices.Contains(Features, Feature(name)) {
			return nil, fmt.Errorf("unknown difftest feature %q (known: %s)", name, featureNames())
		}
		if s == nil {
			if neg {
				s = All()
			} else {
				s = FeatureSet{}
			}
		}
		s[Feature(name)] = !neg
	}
	return s, nil
}

func featureNames() string {
	var names []string
	for _, f := range Features {
		names = append(names, string(f))
	}
	return strings.Join(names, ", ")
}

// String lists the enabled features in their canonical order.
func (s FeatureSet) String() string {
	var names []string
	for _, f := range Features {
		if s[f] {
			names = append(names, string(f))
		}
	}
	if len(names) == len(Features) {
		return "all"
	}
	return strings.Join(names, ",")
}

// focused reports whether s has at most two features (a focused run,
// which draws edge values more often).
func (s FeatureSet) focused() bool {
	n := 0
	for _, on := range s {
		if on {
			n++
		}
	}
	return n <= 2
}
