package binlog

import (
	"math/rand/v2"
	"testing"
)

// TestAppendTextMatchesString: AppendText writes what String does, for
// parsed sets of both flavours and for random sets built by Add/Remove.
func TestAppendTextMatchesString(t *testing.T) {
	for _, in := range []string{
		"", "0-1-100", "0-1-100,1-2-7", "0-1-100+102-105+107", "3-9-0+5-6",
		"3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:7",
		"3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5,3e11fa47-71ca-11e1-9e33-c80aa9429562:tag:1-3",
		"ff11fa47-71ca-11e1-9e33-c80aa9429562:1,3e11fa47-71ca-11e1-9e33-c80aa9429562:b:1:a:4-9",
	} {
		s, err := ParseGTIDSet(in)
		if err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		if got, want := string(s.AppendText([]byte("x"))), "x"+s.String(); got != want {
			t.Errorf("%q: AppendText %q, String %q", in, got, want)
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
		if got, want := string(s.AppendText(nil)), s.String(); got != want {
			t.Fatalf("set %d: AppendText %q, String %q", i, got, want)
		}
		for _, g := range []GTID{{}, {MariaDB: true, Domain: uint32(i), Server: 7, Seq: uint64(i * 3)}, {UUID: uuids[i%3], Tag: tags[i%4], Seq: uint64(i + 1)}} {
			if got, want := string(g.AppendText(nil)), g.String(); got != want {
				t.Fatalf("GTID %+v: AppendText %q, String %q", g, got, want)
			}
		}
	}
}
