package binlog

import (
	"math/rand/v2"
	"testing"
)

// TestGTIDText: the text of a set is the server's canonical form, appended
// after what dst holds, and parses back to the same set, for parsed sets of
// both flavours and for random sets built by Add/Remove.
func TestGTIDText(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"", ""},
		{"0-1-100", "0-1-100"},
		{"1-2-7,0-1-100", "0-1-100,1-2-7"},
		{"0-1-100+102-105+107", "0-1-100+102-105+107"},
		{"3-9-0+5-6", "3-9-0+5-6"},
		{"3e11fa47-71ca-11e1-9e33-c80aa9429562:7:1-5", "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:7"},
		{"3e11fa47-71ca-11e1-9e33-c80aa9429562:tag:1-3,3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5",
			"3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:tag:1-3"},
		{"ff11fa47-71ca-11e1-9e33-c80aa9429562:1,3e11fa47-71ca-11e1-9e33-c80aa9429562:b:1:a:4-9",
			"3e11fa47-71ca-11e1-9e33-c80aa9429562:a:4-9:b:1,ff11fa47-71ca-11e1-9e33-c80aa9429562:1"},
	} {
		s, err := ParseGTIDSet(tt.in)
		if err != nil {
			t.Fatalf("%q: %v", tt.in, err)
		}
		if got := s.String(); got != tt.want {
			t.Errorf("%q: String %q, want %q", tt.in, got, tt.want)
		}
		if got := string(s.AppendText([]byte("x"))); got != "x"+tt.want {
			t.Errorf("%q: AppendText %q, want %q", tt.in, got, "x"+tt.want)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	uuids := []string{"3e11fa47-71ca-11e1-9e33-c80aa9429562", "ff11fa47-71ca-11e1-9e33-c80aa9429562", "0011fa47-71ca-11e1-9e33-c80aa9429562"}
	tags := []string{"", "", "a", "zz"}
	for i := range 2000 {
		var s GTIDSet
		for range r.IntN(40) {
			var g GTID
			if r.IntN(2) == 0 {
				g = GTID{MariaDB: true, Domain: uint32(r.IntN(12)), Server: uint32(r.IntN(3)), Seq: uint64(1 + r.IntN(30))}
			} else {
				g = GTID{UUID: uuids[r.IntN(len(uuids))], Tag: tags[r.IntN(len(tags))], Seq: uint64(1 + r.IntN(30))}
			}
			if r.IntN(5) == 0 {
				s.Remove(g)
			} else {
				s.Add(g)
			}
		}
		back, err := ParseGTIDSet(s.String())
		if err != nil || !back.Equal(s) || back.String() != s.String() {
			t.Fatalf("set %d: %q parses back as %q (%v)", i, s.String(), back.String(), err)
		}
	}
	for _, tt := range []struct {
		g    GTID
		want string
	}{
		{GTID{}, ""},
		{GTID{MariaDB: true, Domain: 4, Server: 7, Seq: 12}, "4-7-12"},
		{GTID{UUID: uuids[0], Seq: 5}, uuids[0] + ":5"},
		{GTID{UUID: uuids[1], Tag: "zz", Seq: 9}, uuids[1] + ":zz:9"},
	} {
		if got := tt.g.String(); got != tt.want {
			t.Errorf("%+v: String %q, want %q", tt.g, got, tt.want)
		}
	}
}
