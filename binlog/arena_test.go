package binlog

import (
	"reflect"
	"runtime"
	"strconv"
	"testing"
)

// TestArenaValues: values boxed by an arena have the types and contents
// the runtime's own boxing gives, after their chunks fill up and a garbage
// collection runs, and whether or not the arena aliases the data.
func TestArenaValues(t *testing.T) {
	for _, alias := range []bool{false, true} {
		a := &arena{alias: alias}
		var got, want []Value
		for i := range 5000 { // several chunks of each kind
			s := "value " + strconv.Itoa(i)
			data := []byte(s)
			got = append(got, a.text(data), a.dataText(data), a.decimal([]byte("-1."+strconv.Itoa(i))),
				a.int(int64(-i*1000)), a.uint(uint64(i)*1000), a.dataJSON([]byte(`{"i":`+strconv.Itoa(i)+`}`)), a.dataBlob(data),
				a.keepText(append(a.scratch(32), s...)), a.keepDecimal(append(a.scratch(32), "12.5"...)))
			want = append(want, s, s, Decimal("-1."+strconv.Itoa(i)), int64(-i*1000), uint64(i)*1000,
				JSON(`{"i":`+strconv.Itoa(i)+`}`), []byte(s), s, Decimal("12.5"))
			img := a.image(3)
			if len(img) != 3 || cap(img) != 3 || img[0] != nil {
				t.Fatalf("image %v, cap %d", img, cap(img))
			}
		}
		runtime.GC()
		for i := range want {
			if !reflect.DeepEqual(got[i], want[i]) {
				t.Fatalf("alias %v: value %d is %#v, want %#v", alias, i, got[i], want[i])
			}
		}
	}
}
