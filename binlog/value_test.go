package binlog

import (
	"bytes"
	"fmt"
	"testing"
)

func TestAppendValueJSON(t *testing.T) {
	tests := []struct {
		name string
		v    Value
		want string
	}{
		{"sql null", nil, `null`},
		{"json null document", JSON(`null`), `{"$json":"null"}`},
		{"json document that looks like the marker", JSON(`{"$json": 1}`), `{"$json":"{\"$json\": 1}"}`},
		{"json escaped marker key", JSON(`{"\u0024json": 1}`), `{"$json":"{\"\\u0024json\": 1}"}`},
		{"json object", JSON(`{"a": [1, null]}`), `{"a": [1, null]}`},
		{"json string", JSON(`"null"`), `"null"`},
		{"raw text", RawText{Bytes: []byte{0x41, 0xff}, Charset: "ascii"}, `{"$base64":"Qf8=","$charset":"ascii"}`},
		{"enum", Enum{Index: 2, Name: "b"}, `"b"`},
		{"invalid enum", Enum{}, `""`},
		{"set", Set{Bits: 5, Names: "a,c"}, `"a,c"`},
		{"uuid", UUID{0x12, 0x3e, 0x45, 0x67, 0xe8, 0x9b, 0x12, 0xd3, 0xa4, 0x56, 0x42, 0x66, 0x55, 0x44}, `"123e4567-e89b-12d3-a456-426655440000"`},
		{"nil uuid", UUID{}, `"00000000-0000-0000-0000-000000000000"`},
		{"inet4 zero", Inet4{}, `"0.0.0.0"`},
		{"inet6 zero", Inet6{}, `"::"`},
		{"inet6 v4-compatible", Inet6{12: 1, 13: 2, 14: 3, 15: 4}, `"::1.2.3.4"`},
		{"inet6 short", Inet6{14: 1, 15: 2}, `"::102"`},
		{"inet6 v4-mapped", Inet6{10: 0xff, 11: 0xff, 12: 1, 13: 2, 14: 3, 15: 4}, `"::ffff:1.2.3.4"`},
		{"inet6", Inet6{0: 0, 1: 1, 7: 2, 15: 3}, `"1:0:0:2::3"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(AppendValueJSON(nil, tt.v)); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

// TestTextRoundTrip: text values convert back to exactly the bytes they
// were decoded from; bytes that would not are RawText.
func TestTextRoundTrip(t *testing.T) {
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	tests := []struct {
		cs      string
		in      []byte
		want    string // the UTF-8 text; "" for RawText
		wantRaw bool
	}{
		{"latin1", []byte{0xe9, 0x81, 0x8d, 0x8f, 0x90, 0x9d, 0x80}, "é\u0081\u008d\u008f\u0090\u009d€", false},
		{"latin1", all, "", false},
		{"ascii", []byte{0x41, 0xff}, "", true},
		{"cp1251", []byte{0x41, 0x98}, "", true},
		{"cp1251", []byte{0xc6}, "Ж", false},
		{"utf8mb4", []byte{0x41, 0xff}, "", true},
		{"ucs2", []byte{0, 'a', 0, 'b'}, "ab", false},
		{"utf16le", []byte{'a', 0}, "a", false},
		{"utf32", []byte{0, 0, 0, 'a'}, "a", false},
		{"utf16", []byte{0xd8, 0x00}, "", true}, // unpaired surrogate
		{"cp852", []byte{0xe9}, "Ú", false},
		{"tis620", []byte{0xa1}, "ก", false},
		{"macroman", []byte{0x8e}, "é", false},
		{"swe7", []byte{'['}, "Ä", false},
		{"swe7", []byte{0x80}, "", true},
		{"hp8", []byte{'a'}, "a", false},
		{"hp8", []byte{0xa1}, "À", false},
		{"hebrew", []byte{0xaf}, "‾", false}, // MySQL's table, not ISO 8859-8's macron
		{"tis620", []byte{0xa0}, "", true},
		{"sjis", []byte{0x82, 0xa0}, "あ", false},
	}
	for _, tt := range tests {
		v := textDecoder(tt.cs)(tt.in)
		if raw, ok := v.(RawText); ok {
			if !tt.wantRaw || !bytes.Equal(raw.Bytes, tt.in) || raw.Charset != tt.cs {
				t.Errorf("%s %X: RawText %v, want text", tt.cs, tt.in, raw)
			}
			continue
		}
		s, ok := v.(string)
		if !ok || tt.wantRaw {
			t.Errorf("%s %X: %#v, want RawText", tt.cs, tt.in, v)
			continue
		}
		if tt.want != "" && s != tt.want {
			t.Errorf("%s %X: %q, want %q", tt.cs, tt.in, s, tt.want)
		}
		if back, ok := EncodeText(s, tt.cs); !ok || !bytes.Equal(back, tt.in) {
			t.Errorf("%s %X: %q converts back to %X (%v)", tt.cs, tt.in, s, back, ok)
		}
	}
}

// TestSpillValues: every value type survives the spill format.
func TestSpillValues(t *testing.T) {
	tb := &Table{Schema: "d", Name: "t"}
	img := []Value{nil, int64(-1), uint64(1), float32(0.5), 0.25, "é", []byte{0}, Decimal("1.50"), JSON(`null`), []float32{1},
		Absent, RawText{Bytes: []byte{0xff}, Charset: "ascii"}, Enum{}, Enum{Index: 3, Name: "c"}, Set{Bits: 5, Names: "a,c"},
		UUID{1}, Inet4{0, 0, 0, 1}, Inet6{15: 1}}
	c := &Change{Table: tb, Op: Insert, After: img}
	got, err := decodeChange(encodeChange(nil, c, 0), []*Table{tb})
	if err != nil {
		t.Fatal(err)
	}
	for i := range img {
		if a, b := string(AppendValueJSON(nil, img[i])), string(AppendValueJSON(nil, got.After[i])); a != b || fmt.Sprintf("%T", img[i]) != fmt.Sprintf("%T", got.After[i]) {
			t.Errorf("value %d: %T %s came back as %T %s", i, img[i], a, got.After[i], b)
		}
	}
	if _, err := decodeChange(encodeChange(nil, c, 0)[:20], []*Table{tb}); err == nil {
		t.Error("a truncated record decoded")
	}
	// The change's other fields.
	for _, want := range []Change{{Table: tb, Op: Delete, Query: 3, NoFKChecks: true}, {Table: tb, Op: Update, Query: 1}} {
		got, err := decodeChange(encodeChange(nil, &want, 0), []*Table{tb})
		if err != nil || got.Op != want.Op || got.Query != want.Query || got.NoFKChecks != want.NoFKChecks {
			t.Errorf("%+v came back as %+v, %v", want, got, err)
		}
	}
}
