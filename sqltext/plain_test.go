package sqltext

import (
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

// plainnessSlow and appendQuotedSlow are the byte-at-a-time definitions
// the fast versions must match.
func plainnessSlow(s string) plain {
	p := plainASCII
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\\' || c < 0x20 || c == 0x7f {
			return notPlain
		}
		if c >= 0x80 {
			p = plainUTF8
		}
	}
	if p == plainUTF8 {
		if !utf8.ValidString(s) {
			return notPlain
		}
		for _, r := range s {
			if r >= 0x80 && r < 0xa0 || r == 0x2028 || r == 0x2029 {
				return notPlain
			}
		}
	}
	return p
}

func appendQuotedSlow(dst []byte, s string) []byte {
	dst = append(dst, '\'')
	for i := 0; i < len(s); i++ {
		if s[i] == '\'' {
			dst = append(dst, '\'')
		}
		dst = append(dst, s[i])
	}
	return append(dst, '\'')
}

// TestPlainWord checks every byte value in every position of a word.
func TestPlainWord(t *testing.T) {
	base := []byte("abcdefgh")
	for pos := range 8 {
		for c := range 256 {
			w := append([]byte(nil), base...)
			w[pos] = byte(c)
			want := c >= 0x20 && c < 0x7f && c != '\\'
			if got := plainWord(load64(string(w))); got != want {
				t.Fatalf("byte %#x at %d: plainWord %v, want %v", c, pos, got, want)
			}
		}
	}
}

// TestPlainnessMatches compares the word-at-a-time plainness and the
// IndexByte appendQuoted with the byte-at-a-time definitions, on strings
// made of the bytes that matter (quotes, backslashes, controls, DEL, high
// bytes, UTF-8 sequences) at every length and offset.
func TestPlainnessMatches(t *testing.T) {
	pieces := []string{"a", "Z", " ", "~", "'", "''", "\\", "\x00", "\x1f", "\x7f", "\x80", "\xff", "é", "\u0085", "\u2028", "日本", "\xe6\x97", "0123456789abcdef"}
	r := rand.New(rand.NewPCG(1, 2))
	cases := []string{"", "'", "a'b", strings.Repeat("x", 120), strings.Repeat("x", 119) + "'", strings.Repeat("x", 64) + "\\"}
	for range 20000 {
		var b strings.Builder
		for range r.IntN(24) {
			b.WriteString(pieces[r.IntN(len(pieces))])
		}
		cases = append(cases, b.String())
	}
	for _, s := range cases {
		if got, want := plainness(s), plainnessSlow(s); got != want {
			t.Fatalf("plainness(%q) = %d, want %d", s, got, want)
		}
		if got, want := string(appendQuoted([]byte("x"), s)), string(appendQuotedSlow([]byte("x"), s)); got != want {
			t.Fatalf("appendQuoted(%q) = %q, want %q", s, got, want)
		}
	}
}

// BenchmarkPlainQuoted writes a sysbench-shaped CHAR(120) value, with
// the fast functions and the byte-at-a-time ones.
func BenchmarkPlainQuoted(b *testing.B) {
	s := strings.Repeat("c4ca4238a0b923820dcc509a6f75849b", 4)[:120]
	for _, f := range []struct {
		name   string
		plain  func(string) plain
		quoted func([]byte, string) []byte
	}{{"fast", plainness, appendQuoted}, {"bytewise", plainnessSlow, appendQuotedSlow}} {
		b.Run(f.name, func(b *testing.B) {
			var buf []byte
			b.SetBytes(int64(len(s)))
			for b.Loop() {
				if f.plain(s) != plainASCII {
					b.Fatal("not plain")
				}
				buf = f.quoted(buf[:0], s)
			}
		})
	}
}
