package binlog

import "testing"

func TestFilter(t *testing.T) {
	tests := []struct {
		include, exclude []string
		schema, table    string
		want             bool
	}{
		{nil, nil, "shop", "orders", true},
		{nil, nil, "mysql", "user", false}, // the server's own schemas need an explicit include
		{[]string{"*"}, nil, "mysql", "user", true},
		{[]string{"shop.*"}, nil, "shop", "orders", true},
		{[]string{"shop.*"}, nil, "shop2", "orders", false},
		{[]string{"shop"}, nil, "shop", "orders", true},
		{[]string{"shop_?.orders_*"}, nil, "shop_1", "orders_2024", true},
		{[]string{"shop_?.orders_*"}, nil, "shop_12", "orders_2024", false},
		{[]string{"*.orders"}, nil, "any", "orders", true},
		{[]string{`~^shop_[0-9]+\.orders$`}, nil, "shop_15", "orders", true},
		{[]string{`~^shop_[0-9]+\.orders$`}, nil, "shop_x", "orders", false},
		{[]string{"shop.*"}, []string{"shop.tmp_*"}, "shop", "tmp_1", false},
		{[]string{"shop.*"}, []string{"shop.tmp_*"}, "shop", "orders", true},
		{nil, []string{"shop"}, "shop", "orders", false},
		// Statements on a whole schema (table "").
		{[]string{"shop.*"}, nil, "shop", "", true},
		{[]string{"shop.orders"}, nil, "shop", "", true},
		{nil, []string{"shop.tmp_*"}, "shop", "", true},
		{nil, []string{"shop.*"}, "shop", "", false},
		// Escapes: a name with glob characters, quotes and backticks.
		{[]string{"special\"\\[`]$'_db.*"}, nil, "special\"[`]$'_db", "t", true},
		{[]string{"special\"\\[`]$'_db.*"}, nil, "special\"x`]$'_db", "t", false},
		{[]string{"special\"[[]`]$'_db.*"}, nil, "special\"[`]$'_db", "t", true},
		{[]string{`a\*b.t\?`}, nil, "a*b", "t?", true},
		{[]string{`a\*b.t\?`}, nil, "axb", "t?", false},
		{[]string{`a\.b.c`}, nil, "a.b", "c", true},
		{[]string{`a\.b.c`}, nil, "a", "b.c", false},
		{[]string{`back\\slash.*`}, nil, `back\slash`, "t", true},
	}
	for _, tt := range tests {
		f, err := NewFilter(tt.include, tt.exclude)
		if err != nil {
			t.Fatal(err)
		}
		if got := f.Match(tt.schema, tt.table); got != tt.want {
			t.Errorf("include %v exclude %v: Match(%q, %q) = %v", tt.include, tt.exclude, tt.schema, tt.table, got)
		}
	}
	for _, bad := range []string{"~(", "", "shop.[a"} {
		if _, err := NewFilter([]string{bad}, nil); err == nil {
			t.Errorf("pattern %q accepted", bad)
		}
	}
}
