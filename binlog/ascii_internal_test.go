package binlog

import "testing"

// TestIsASCII puts a byte of every value at every position of texts of
// lengths 0 to 24, which the word-at-a-time check reads 8 bytes at a time
// and then byte by byte, as bytes and as a string.
func TestIsASCII(t *testing.T) {
	for n := range 25 {
		for pos := range n {
			for c := range 256 {
				b := make([]byte, n)
				for i := range b {
					b[i] = 'a'
				}
				b[pos] = byte(c)
				if got, want := IsASCII(b), c < 0x80; got != want {
					t.Fatalf("length %d, byte %#x at %d: IsASCII %v, want %v", n, c, pos, got, want)
				}
				if got, want := IsASCII(string(b)), c < 0x80; got != want {
					t.Fatalf("length %d, byte %#x at %d: IsASCII of the string %v, want %v", n, c, pos, got, want)
				}
			}
		}
		if !IsASCII(make([]byte, n)) || !IsASCII(string(make([]byte, n))) {
			t.Fatalf("length %d of zero bytes: not ASCII", n)
		}
	}
}
