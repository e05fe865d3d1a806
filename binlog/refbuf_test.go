package binlog

import (
	"strings"
	"testing"
)

// The package's tests poison released chunks (see poisonReleased): a read
// of a chunk after its last holder released it writes 0xfe bytes into the
// JSON that TestParallelDecodeSame and TestRenderJSONSavepoint compare.
// Small chunks make the reader and the workers move to the next chunk (and
// release the last) many times even in a small fixture binlog.
func init() {
	poisonReleased = true
	readChunks, renderChunks = newRefPool(4<<10), newRefPool(8<<10)
}

// TestRefBuf checks the counting of a chunk's holders: the last release
// poisons it and returns it to its pool, and a release too many or an
// acquire after the last release panics rather than let a chunk in use be
// handed out again.
func TestRefBuf(t *testing.T) {
	p := newRefPool(64)
	tests := []struct {
		name  string
		steps string // a: acquire, r: release
		panic string
	}{
		{"one holder", "r", ""},
		{"three holders", "aarrr", ""},
		{"released twice", "rr", "released 1 times too often"},
		{"acquired after release", "ra", "acquired after its release"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := p.get(10)
			copy(b.b, "data")
			var got string
			func() {
				defer func() {
					if r := recover(); r != nil {
						got = r.(string)
					}
				}()
				for _, s := range tt.steps {
					if s == 'a' {
						b.acquire()
					} else {
						b.release()
					}
				}
			}()
			if tt.panic == "" && got != "" || !strings.Contains(got, tt.panic) {
				t.Fatalf("panic %q, want %q", got, tt.panic)
			}
			if tt.panic == "" && b.b[0] != poisonByte {
				t.Fatalf("released chunk holds %q, want it poisoned", b.b[:4])
			}
		})
	}
	if b := p.get(100); len(b.b) != 100 || b.pool != nil {
		t.Fatalf("a chunk larger than the pool's size: %d bytes, pooled %v", len(b.b), b.pool != nil)
	}
}
