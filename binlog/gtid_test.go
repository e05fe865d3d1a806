package binlog

import (
	"encoding/json"
	"testing"

	"pgregory.net/rapid"
)

func TestParseGTIDSet(t *testing.T) {
	tests := []struct {
		in, want string
		err      bool
	}{
		{in: "", want: ""},
		{in: "3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5", want: "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5"},
		{in: "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:7:6", want: "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-7"},
		{in: "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:11-18,\n 2174b383-5441-11e8-b90a-c80aa9429562:1-3",
			want: "2174b383-5441-11e8-b90a-c80aa9429562:1-3,3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:11-18"},
		{in: "55778904-0299-11f1-b1b8-4ef0c4956feb:1-13:mytag:1-2", want: "55778904-0299-11f1-b1b8-4ef0c4956feb:1-13:mytag:1-2"},
		{in: "55778904-0299-11f1-b1b8-4ef0c4956feb:MyTag:1-2:1-13", want: "55778904-0299-11f1-b1b8-4ef0c4956feb:mytag:1-13"},
		{in: "0-1-100", want: "0-1-100"},
		{in: "1-2-7,0-1-100", want: "0-1-100,1-2-7"},
		{in: "0-1-100+102-105+107", want: "0-1-100+102-105+107"},
		{in: "0-1-0+5", want: "0-1-0+5"},
		{in: "0-1", err: true},
		{in: "0-1-x", err: true},
		{in: "nonsense", err: true},
		{in: "3e11fa47-71ca-11e1-9e33-c80aa9429562:0", err: true},
		{in: "3e11fa47-71ca-11e1-9e33-c80aa9429562:5-3", err: true},
		{in: "3e11fa47-71ca-11e1-9e33-c80aa9429562", err: true},
		{in: "3e11fa47-71ca-11e1-9e33-c80aa9429562:9tag:1", err: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			s, err := ParseGTIDSet(tt.in)
			if tt.err {
				if err == nil {
					t.Fatalf("ParseGTIDSet(%q) = %v, want error", tt.in, s)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := s.String(); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseGTID(t *testing.T) {
	tests := []struct {
		in   string
		want GTID
	}{
		{"0-1-5", GTID{MariaDB: true, Domain: 0, Server: 1, Seq: 5}},
		{"3e11fa47-71ca-11e1-9e33-c80aa9429562:23", GTID{UUID: "3e11fa47-71ca-11e1-9e33-c80aa9429562", Seq: 23}},
		{"55778904-0299-11f1-b1b8-4ef0c4956feb:mytag:3", GTID{UUID: "55778904-0299-11f1-b1b8-4ef0c4956feb", Tag: "mytag", Seq: 3}},
	}
	for _, tt := range tests {
		g, err := ParseGTID(tt.in)
		if err != nil || g != tt.want || g.String() != tt.in {
			t.Errorf("ParseGTID(%q) = %+v, %v; want %+v", tt.in, g, err, tt.want)
		}
	}
}

func TestMariaDBPosition(t *testing.T) {
	var s GTIDSet
	s.AdvanceTo(GTID{MariaDB: true, Domain: 0, Server: 1, Seq: 10})
	s.Add(GTID{MariaDB: true, Domain: 0, Server: 2, Seq: 12})
	if got := s.String(); got != "0-2-10+12" {
		t.Fatalf("String() = %q", got)
	}
	if got := s.MariaDBPos(); got != "0-2-10" {
		t.Fatalf("MariaDBPos() = %q", got)
	}
	s.Add(GTID{MariaDB: true, Domain: 0, Server: 2, Seq: 11})
	if got := s.String(); got != "0-2-12" {
		t.Fatalf("after filling the hole: %q", got)
	}
	// A position means everything up to it, whatever server wrote it.
	if !s.Contains(GTID{MariaDB: true, Domain: 0, Server: 7, Seq: 3}) {
		t.Fatal("0-2-12 must contain 0-7-3")
	}
}

// gtidGen draws GTIDs from a small universe so that sets overlap often.
func gtidGen() *rapid.Generator[GTID] {
	uuids := []string{"3e11fa47-71ca-11e1-9e33-c80aa9429562", "2174b383-5441-11e8-b90a-c80aa9429562"}
	return rapid.Custom(func(t *rapid.T) GTID {
		if rapid.Bool().Draw(t, "maria") {
			return GTID{MariaDB: true, Domain: rapid.Uint32Range(0, 2).Draw(t, "d"),
				Server: rapid.Uint32Range(1, 3).Draw(t, "s"), Seq: rapid.Uint64Range(1, 40).Draw(t, "n")}
		}
		return GTID{UUID: rapid.SampledFrom(uuids).Draw(t, "uuid"), Tag: rapid.SampledFrom([]string{"", "a", "zz_9"}).Draw(t, "tag"),
			Seq: rapid.Uint64Range(1, 40).Draw(t, "n")}
	})
}

type modelKey struct {
	maria  bool
	src    string
	domain uint32
	seq    uint64
}

func keyOf(g GTID) modelKey {
	if g.MariaDB {
		return modelKey{maria: true, domain: g.Domain, seq: g.Seq}
	}
	return modelKey{src: g.UUID + ":" + g.Tag, seq: g.Seq}
}

// TestGTIDSetProperties checks the set against a plain map model: Add,
// Contains, Union, ContainsSet, and that String/Parse round-trips.
func TestGTIDSetProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var a, b GTIDSet
		ma, mb := map[modelKey]bool{}, map[modelKey]bool{}
		for _, g := range rapid.SliceOf(gtidGen()).Draw(t, "a") {
			a.Add(g)
			ma[keyOf(g)] = true
		}
		for _, g := range rapid.SliceOf(gtidGen()).Draw(t, "b") {
			b.Add(g)
			mb[keyOf(g)] = true
		}
		probe := rapid.SliceOfN(gtidGen(), 20, 20).Draw(t, "probe")
		for _, g := range probe {
			if a.Contains(g) != ma[keyOf(g)] {
				t.Fatalf("a=%s Contains(%s)=%v, model %v", a, g, a.Contains(g), ma[keyOf(g)])
			}
		}
		// Round trip through text.
		p, err := ParseGTIDSet(a.String())
		if err != nil {
			t.Fatalf("parse %q: %v", a.String(), err)
		}
		if !p.Equal(a) || p.String() != a.String() {
			t.Fatalf("round trip %q -> %q", a.String(), p.String())
		}
		// Union is the model union.
		u := a.Clone()
		u.Union(b)
		for _, g := range probe {
			want := ma[keyOf(g)] || mb[keyOf(g)]
			if u.Contains(g) != want {
				t.Fatalf("(%s ∪ %s).Contains(%s) = %v", a, b, g, u.Contains(g))
			}
		}
		if !u.ContainsSet(a) || !u.ContainsSet(b) {
			t.Fatalf("union %s must contain %s and %s", u, a, b)
		}
		// ContainsSet agrees with the model's subset relation.
		sub := true
		for k := range mb {
			if !ma[k] {
				sub = false
			}
		}
		if a.ContainsSet(b) != sub {
			t.Fatalf("%s ⊇ %s = %v, model %v", a, b, a.ContainsSet(b), sub)
		}
		// CountMissing counts b's transactions that a lacks.
		missing := uint64(0)
		for k := range mb {
			if !ma[k] {
				missing++
			}
		}
		if got := a.CountMissing(b); got != missing {
			t.Fatalf("%s.CountMissing(%s) = %d, model %d", a, b, got, missing)
		}
		// Remove takes one transaction out, and only it.
		if len(probe) > 0 {
			r := a.Clone()
			r.Remove(probe[0])
			for _, g := range probe {
				want := ma[keyOf(g)] && keyOf(g) != keyOf(probe[0])
				if r.Contains(g) != want {
					t.Fatalf("(%s - %s).Contains(%s) = %v", a, probe[0], g, r.Contains(g))
				}
			}
		}
		// Clone is independent.
		c := a.Clone()
		c.Add(GTID{MariaDB: true, Domain: 9, Server: 1, Seq: 1})
		if a.Contains(GTID{MariaDB: true, Domain: 9, Server: 1, Seq: 1}) {
			t.Fatal("Clone shares state")
		}
	})
}

func TestAdvanceToProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var s GTIDSet
		hi := map[uint32]uint64{}
		for _, g := range rapid.SliceOf(gtidGen()).Draw(t, "gtids") {
			if !g.MariaDB {
				continue
			}
			s.AdvanceTo(g)
			hi[g.Domain] = max(hi[g.Domain], g.Seq)
		}
		for d, h := range hi {
			for n := uint64(1); n <= h+1; n++ {
				g := GTID{MariaDB: true, Domain: d, Server: 1, Seq: n}
				if s.Contains(g) != (n <= h) {
					t.Fatalf("%s Contains(%s) = %v", s, g, s.Contains(g))
				}
			}
		}
	})
}

func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := rapid.OneOf(rapid.String(), rapid.StringMatching(`[ -~\x00-\x1f"\\\x{2028}é😀]{0,40}`),
			rapid.Custom(func(t *rapid.T) string { return string(rapid.SliceOf(rapid.Byte()).Draw(t, "b")) })).Draw(t, "s")
		got := appendString(nil, s)
		want, _ := json.Marshal(s)
		// encoding/json escapes <, > and & for HTML; both are valid JSON.
		var a, b string
		if err := json.Unmarshal(got, &a); err != nil {
			t.Fatalf("appendString(%q) = %s: invalid JSON: %v", s, got, err)
		}
		_ = json.Unmarshal(want, &b)
		if a != b {
			t.Fatalf("appendString(%q) decodes to %q, encoding/json to %q", s, a, b)
		}
	})
}
