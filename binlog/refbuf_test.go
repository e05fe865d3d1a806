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

// TestWriteJSONSpillFileShort: WriteJSON of a spilled transaction whose
// file lacks bytes (a failed write to it, or a file cut short) fails before
// writing anything, rather than leave a truncated record in the output.
func TestWriteJSONSpillFileShort(t *testing.T) {
	txn := &Txn{rendered: newRenderedChanges(1, t.TempDir(), &JSONEncoder{})}
	defer txn.Close()
	for _, part := range []string{`{"a":1}`, `{"b":2}`} {
		if err := txn.rendered.add([]byte(part), 1, nil); err != nil {
			t.Fatal(err)
		}
	}
	var enc JSONEncoder
	var out strings.Builder
	if err := enc.WriteJSON(&out, txn); err != nil || !strings.HasSuffix(out.String(), `"changes":[{"a":1},{"b":2}]}`) {
		t.Fatalf("WriteJSON wrote %s, error %v", out.String(), err)
	}
	if err := txn.rendered.flush(); err != nil {
		t.Fatal(err)
	}
	if err := txn.rendered.file.Truncate(5); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	err := enc.WriteJSON(&out, txn)
	if err == nil || out.Len() > 0 {
		t.Fatalf("WriteJSON of a short spill file wrote %q, error %v; want nothing and an error", out.String(), err)
	}
	t.Log(err)
}
