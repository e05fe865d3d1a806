package binlog

// GTID sets stay hand-written (issue 8 asked whether they should grow
// hole tracking, or be replaced by a library's interval sets). Holes are
// not needed: the parallel applier (sinks/mysql/parallel.go) executes
// transactions at once but commits them in source order, and each commit
// writes the source's whole executed set up to that transaction
// (Txn.Executed). The set a checkpoint holds is therefore always a prefix
// of the source's order, as contiguous as the source's own. Commits out of
// source order would need a set with holes (MySQL's interval lists per
// UUID; a MariaDB domain's single sequence number cannot express one),
// and the checkpoint would have to merge several rows on read.

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// GTID identifies one transaction. MySQL GTIDs are source-uuid[:tag]:gno;
// MariaDB GTIDs are domain-server-seq.
type GTID struct {
	// MySQL: the lower-case source UUID, and the tag for tagged GTIDs (9.x).
	UUID string
	Tag  string
	// MariaDB: the replication domain and the originating server id.
	Domain uint32
	Server uint32
	// Seq is the MySQL GNO or the MariaDB sequence number. Zero means "no GTID".
	Seq     uint64
	MariaDB bool
}

// IsZero reports whether g holds no GTID (an anonymous transaction).
func (g GTID) IsZero() bool { return g.Seq == 0 }

// String formats g the way the server does (AppendText).
func (g GTID) String() string { return string(g.AppendText(nil)) }

// ParseGTID parses one GTID in either flavor's text form.
func ParseGTID(s string) (GTID, error) {
	s = strings.TrimSpace(s)
	if isMariaDBGTID(s) {
		p := strings.Split(s, "-")
		d, err1 := strconv.ParseUint(p[0], 10, 32)
		sv, err2 := strconv.ParseUint(p[1], 10, 32)
		n, err3 := strconv.ParseUint(p[2], 10, 64)
		if err := errors.Join(err1, err2, err3); err != nil || n == 0 {
			return GTID{}, fmt.Errorf("invalid MariaDB GTID %q: want domain-server-seq with seq > 0", s)
		}
		return GTID{MariaDB: true, Domain: uint32(d), Server: uint32(sv), Seq: n}, nil
	}
	p := strings.Split(s, ":")
	if len(p) < 2 || len(p) > 3 {
		return GTID{}, fmt.Errorf("invalid GTID %q: want uuid:n, uuid:tag:n or domain-server-seq", s)
	}
	u, err := normalizeUUID(p[0])
	if err != nil {
		return GTID{}, fmt.Errorf("invalid GTID %q: %w", s, err)
	}
	g := GTID{UUID: u}
	if len(p) == 3 {
		if g.Tag, err = normalizeTag(p[1]); err != nil {
			return GTID{}, fmt.Errorf("invalid GTID %q: %w", s, err)
		}
	}
	n, err := strconv.ParseUint(p[len(p)-1], 10, 64)
	if err != nil || n == 0 {
		return GTID{}, fmt.Errorf("invalid GTID %q: transaction number must be a positive integer", s)
	}
	g.Seq = n
	return g, nil
}

func isMariaDBGTID(s string) bool {
	if strings.Count(s, "-") != 2 {
		return false
	}
	for _, c := range s {
		if c != '-' && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

func normalizeUUID(s string) (string, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return "", fmt.Errorf("%q is not a UUID", s)
	}
	for i, c := range s {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			continue
		}
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return "", fmt.Errorf("%q is not a UUID", s)
		}
	}
	return s, nil
}

// normalizeTag applies MySQL's rule: tags are [a-z_][a-z0-9_]{0,31}, folded
// to lower case.
func normalizeTag(s string) (string, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" || len(s) > 32 {
		return "", fmt.Errorf("invalid GTID tag %q", s)
	}
	for i, c := range s {
		if !(c == '_' || c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9') {
			return "", fmt.Errorf("invalid GTID tag %q", s)
		}
	}
	return s, nil
}

// MaxGNO is the largest MySQL transaction number (GNO): MySQL caps it at
// 2^63-1. MariaDB sequence numbers use the whole uint64 range.
const MaxGNO = 1<<63 - 1

// touches reports whether b starts at most one after a ends (b <= a+1),
// without overflowing at the top of the range.
func touches(a, b uint64) bool { return a == math.MaxUint64 || b <= a+1 }

// Interval is an inclusive range of transaction numbers.
type Interval struct{ Lo, Hi uint64 }

// intervals is a sorted list of disjoint, non-adjacent intervals.
type intervals []Interval

func (iv intervals) contains(n uint64) bool {
	i, _ := slices.BinarySearchFunc(iv, n, func(x Interval, n uint64) int {
		switch {
		case x.Hi < n:
			return -1
		case x.Lo > n:
			return 1
		}
		return 0
	})
	return i < len(iv) && iv[i].Lo <= n && n <= iv[i].Hi
}

// add inserts [lo,hi] and merges neighbours.
func (iv intervals) add(lo, hi uint64) intervals {
	// Fast path: appending at the end, the common case when a reader or an
	// in-order applier adds each next transaction.
	if n := len(iv); n > 0 && lo >= iv[n-1].Lo {
		last := &iv[n-1]
		if touches(last.Hi, lo) {
			last.Hi = max(last.Hi, hi)
			return iv
		}
		return append(iv, Interval{lo, hi})
	}
	out := make(intervals, 0, len(iv)+1)
	placed := false
	for _, x := range iv {
		switch {
		case !touches(x.Hi, lo):
			out = append(out, x)
		case !touches(hi, x.Lo):
			if !placed {
				out = append(out, Interval{lo, hi})
				placed = true
			}
			out = append(out, x)
		default:
			lo, hi = min(lo, x.Lo), max(hi, x.Hi)
		}
	}
	if !placed {
		out = append(out, Interval{lo, hi})
		slices.SortFunc(out, func(a, b Interval) int { return cmpU64(a.Lo, b.Lo) })
	}
	return out
}

func (iv intervals) containsAll(o intervals) bool {
	for _, x := range o {
		i, _ := slices.BinarySearchFunc(iv, x.Lo, func(y Interval, n uint64) int {
			if y.Hi < n {
				return -1
			}
			if y.Lo > n {
				return 1
			}
			return 0
		})
		if i >= len(iv) || iv[i].Lo > x.Lo || iv[i].Hi < x.Hi {
			return false
		}
	}
	return true
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// mariaDomain is the executed set of one MariaDB replication domain.
type mariaDomain struct {
	iv intervals
	// server is the originating server of the highest sequence number
	// added, needed to name the position when connecting (domain-server-seq).
	server uint32
}

// GTIDSet is a set of executed transactions, like MySQL's gtid_executed.
//
// For MySQL it is exact: source (uuid[:tag]) -> intervals of GNOs. For MariaDB
// it is kept per domain as intervals of sequence numbers too, so that an
// applier committing out of order stays exact. MariaDB's own text form
// "domain-server-seq" means "everything up to seq"; when a domain has holes
// the extra intervals follow with '+', e.g. "0-1-100+102-105". The zero
// value is an empty set ready to use.
type GTIDSet struct {
	mysql map[string]intervals // key "uuid" or "uuid:tag"
	maria map[uint32]*mariaDomain
}

// ParseGTIDSet parses a set in MySQL's ("uuid:1-5:7,uuid:tag:1-3") or
// MariaDB's ("0-1-100,1-2-7") text form. An empty string is the empty set.
func ParseGTIDSet(s string) (GTIDSet, error) {
	var set GTIDSet
	s = strings.Join(strings.Fields(s), "")
	if s == "" {
		return set, nil
	}
	for _, part := range strings.Split(s, ",") {
		if part == "" {
			continue
		}
		if err := set.parsePart(part); err != nil {
			return GTIDSet{}, fmt.Errorf("invalid GTID set %q: %w", s, err)
		}
	}
	return set, nil
}

func (s *GTIDSet) parsePart(part string) error {
	head, extra, hasExtra := strings.Cut(part, "+")
	if isMariaDBGTID(head) {
		g, err := ParseGTID(head)
		if err != nil {
			// "0-1-0" is allowed as a base with only extras.
			p := strings.Split(head, "-")
			if !hasExtra || p[2] != "0" {
				return err
			}
			d, _ := strconv.ParseUint(p[0], 10, 32)
			sv, _ := strconv.ParseUint(p[1], 10, 32)
			g = GTID{MariaDB: true, Domain: uint32(d), Server: uint32(sv)}
		}
		if g.Seq > 0 {
			s.AdvanceTo(g)
		} else {
			s.domain(g.Domain).server = g.Server
		}
		if hasExtra {
			dom := s.domain(g.Domain)
			for _, r := range strings.Split(extra, "+") {
				lo, hi, err := parseRange(r)
				if err != nil {
					return err
				}
				dom.iv = dom.iv.add(lo, hi)
			}
		}
		return nil
	}
	if hasExtra {
		return fmt.Errorf("%q: '+' is only used in MariaDB sets", part)
	}
	if !strings.Contains(part, ":") {
		return fmt.Errorf("%q is neither a MySQL GTID (uuid:1-5) nor a MariaDB one (domain-server-seq)", part)
	}
	// MySQL: uuid(:tag)?(:range)+ where a tag switches the current tag.
	p := strings.Split(part, ":")
	u, err := normalizeUUID(p[0])
	if err != nil {
		return err
	}
	if len(p) < 2 {
		return fmt.Errorf("%q has no transaction numbers", part)
	}
	tag := ""
	for _, r := range p[1:] {
		if r == "" {
			return fmt.Errorf("%q has an empty element", part)
		}
		if c := r[0]; c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' {
			if tag, err = normalizeTag(r); err != nil {
				return err
			}
			continue
		}
		lo, hi, err := parseRange(r)
		if err == nil && hi > MaxGNO {
			err = fmt.Errorf("%q: MySQL transaction numbers end at %d", r, uint64(MaxGNO))
		}
		if err != nil {
			return err
		}
		if s.mysql == nil {
			s.mysql = map[string]intervals{}
		}
		k := mysqlKey(u, tag)
		s.mysql[k] = s.mysql[k].add(lo, hi)
	}
	return nil
}

func parseRange(r string) (uint64, uint64, error) {
	a, b, isRange := strings.Cut(r, "-")
	lo, err := strconv.ParseUint(a, 10, 64)
	if err != nil || lo == 0 {
		return 0, 0, fmt.Errorf("%q is not a positive transaction number or range", r)
	}
	hi := lo
	if isRange {
		if hi, err = strconv.ParseUint(b, 10, 64); err != nil || hi < lo {
			return 0, 0, fmt.Errorf("%q is not a valid range", r)
		}
	}
	return lo, hi, nil
}

func mysqlKey(uuid, tag string) string {
	if tag == "" {
		return uuid
	}
	return uuid + ":" + tag
}

func (s *GTIDSet) domain(d uint32) *mariaDomain {
	if s.maria == nil {
		s.maria = map[uint32]*mariaDomain{}
	}
	dom := s.maria[d]
	if dom == nil {
		dom = &mariaDomain{}
		s.maria[d] = dom
	}
	return dom
}

// Add inserts exactly one GTID. Zero GTIDs are ignored.
func (s *GTIDSet) Add(g GTID) {
	if g.IsZero() {
		return
	}
	if g.MariaDB {
		dom := s.domain(g.Domain)
		if len(dom.iv) == 0 || g.Seq >= dom.iv[len(dom.iv)-1].Hi {
			dom.server = g.Server
		}
		dom.iv = dom.iv.add(g.Seq, g.Seq)
		return
	}
	if s.mysql == nil {
		s.mysql = map[string]intervals{}
	}
	k := mysqlKey(g.UUID, g.Tag)
	s.mysql[k] = s.mysql[k].add(g.Seq, g.Seq)
}

// Remove deletes g from the set: the set before the transaction g.
func (s *GTIDSet) Remove(g GTID) {
	if g.IsZero() {
		return
	}
	if g.MariaDB {
		if dom := s.maria[g.Domain]; dom != nil {
			dom.iv = dom.iv.remove(g.Seq)
		}
		return
	}
	k := mysqlKey(g.UUID, g.Tag)
	if iv, ok := s.mysql[k]; ok {
		s.mysql[k] = iv.remove(g.Seq)
	}
}

func (iv intervals) remove(n uint64) intervals {
	out := make(intervals, 0, len(iv)+1)
	for _, x := range iv {
		switch {
		case n < x.Lo || n > x.Hi:
			out = append(out, x)
		case x.Lo == x.Hi:
		case n == x.Lo:
			out = append(out, Interval{x.Lo + 1, x.Hi})
		case n == x.Hi:
			out = append(out, Interval{x.Lo, x.Hi - 1})
		default:
			out = append(out, Interval{x.Lo, n - 1}, Interval{n + 1, x.Hi})
		}
	}
	return out
}

// AdvanceTo records g as executed together with everything before it in its
// stream. For MariaDB that is every sequence number of g's domain up to
// g.Seq, which is what MariaDB's own position "domain-server-seq" means: an
// in-order reader or applier uses it, because a MariaDB binlog may skip
// sequence numbers (a filtered replica's log does). For MySQL, whose GTID
// sets are exact, it is Add.
func (s *GTIDSet) AdvanceTo(g GTID) {
	if g.IsZero() {
		return
	}
	if !g.MariaDB {
		s.Add(g)
		return
	}
	dom := s.domain(g.Domain)
	if len(dom.iv) == 0 || g.Seq >= dom.iv[len(dom.iv)-1].Hi {
		dom.server = g.Server
	}
	dom.iv = dom.iv.add(1, g.Seq)
}

// Contains reports whether g is in the set.
func (s GTIDSet) Contains(g GTID) bool {
	if g.IsZero() {
		return false
	}
	if g.MariaDB {
		dom := s.maria[g.Domain]
		return dom != nil && dom.iv.contains(g.Seq)
	}
	return s.mysql[mysqlKey(g.UUID, g.Tag)].contains(g.Seq)
}

// ContainsSet reports whether every transaction of o is in s.
func (s GTIDSet) ContainsSet(o GTIDSet) bool {
	for k, iv := range o.mysql {
		if !s.mysql[k].containsAll(iv) {
			return false
		}
	}
	for d, od := range o.maria {
		if len(od.iv) == 0 {
			continue
		}
		dom := s.maria[d]
		if dom == nil || !dom.iv.containsAll(od.iv) {
			return false
		}
	}
	return true
}

// Union adds every transaction of o to s.
func (s *GTIDSet) Union(o GTIDSet) {
	for k, iv := range o.mysql {
		if s.mysql == nil {
			s.mysql = map[string]intervals{}
		}
		cur := s.mysql[k]
		for _, x := range iv {
			cur = cur.add(x.Lo, x.Hi)
		}
		s.mysql[k] = cur
	}
	for d, od := range o.maria {
		dom := s.domain(d)
		if len(od.iv) > 0 && (len(dom.iv) == 0 || od.iv[len(od.iv)-1].Hi >= dom.iv[len(dom.iv)-1].Hi) {
			dom.server = od.server
		} else if len(dom.iv) == 0 {
			dom.server = od.server
		}
		for _, x := range od.iv {
			dom.iv = dom.iv.add(x.Lo, x.Hi)
		}
	}
}

// CountMissing returns how many transactions of o are not in s: the
// replication lag in transactions when o is the source's executed set and
// s the applied one.
func (s GTIDSet) CountMissing(o GTIDSet) uint64 {
	var n uint64
	for k, iv := range o.mysql {
		n += missingIn(s.mysql[k], iv)
	}
	for d, od := range o.maria {
		var have intervals
		if dom := s.maria[d]; dom != nil {
			have = dom.iv
		}
		n += missingIn(have, od.iv)
	}
	return n
}

// missingIn counts the numbers of want not covered by have.
func missingIn(have, want intervals) uint64 {
	var n uint64
	for _, w := range want {
		total := w.Hi - w.Lo + 1
		for _, h := range have {
			lo, hi := max(h.Lo, w.Lo), min(h.Hi, w.Hi)
			if lo <= hi {
				total -= hi - lo + 1
			}
		}
		n += total
	}
	return n
}

// Clone returns an independent copy.
func (s GTIDSet) Clone() GTIDSet {
	var c GTIDSet
	c.Union(s)
	return c
}

// IsEmpty reports whether the set holds no transaction.
func (s GTIDSet) IsEmpty() bool {
	for _, iv := range s.mysql {
		if len(iv) > 0 {
			return false
		}
	}
	for _, d := range s.maria {
		if len(d.iv) > 0 {
			return false
		}
	}
	return true
}

// Equal reports whether both sets hold the same transactions.
func (s GTIDSet) Equal(o GTIDSet) bool { return s.ContainsSet(o) && o.ContainsSet(s) }

// IsMariaDB reports whether the set holds MariaDB domains.
func (s GTIDSet) IsMariaDB() bool { return len(s.maria) > 0 }

// String formats the set in the server's canonical form: MySQL sources
// sorted by UUID, untagged intervals first then tags in order; MariaDB
// domains sorted by id.
func (s GTIDSet) String() string { return string(s.AppendText(nil)) }

// MariaDBPos returns the position to request from a MariaDB server for this
// set ("domain-server-seq" per domain, the end of each domain's first
// interval). Transactions in later intervals must be skipped by the reader.
func (s GTIDSet) MariaDBPos() string {
	var parts []string
	doms := make([]uint32, 0, len(s.maria))
	for d := range s.maria {
		doms = append(doms, d)
	}
	slices.Sort(doms)
	for _, d := range doms {
		dom := s.maria[d]
		if len(dom.iv) == 0 || dom.iv[0].Lo != 1 {
			continue
		}
		parts = append(parts, fmt.Sprintf("%d-%d-%d", d, dom.server, dom.iv[0].Hi))
	}
	return strings.Join(parts, ",")
}

// MySQLString is the set in MySQL's text form without MariaDB domains.
func (s GTIDSet) MySQLString() string { return GTIDSet{mysql: s.mysql}.String() }

// MarshalText implements encoding.TextMarshaler.
func (s GTIDSet) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *GTIDSet) UnmarshalText(b []byte) error {
	p, err := ParseGTIDSet(string(b))
	if err != nil {
		return err
	}
	*s = p
	return nil
}
