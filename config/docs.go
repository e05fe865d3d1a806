package config

import (
	"fmt"
	"reflect"
	"strings"
)

// startDoc documents Start's mapping form (Start decodes itself).
type startDoc struct {
	GTID string `yaml:"gtid" doc:"start after this GTID set"`
	File string `yaml:"file" doc:"start in this binlog file"`
	Pos  uint64 `yaml:"pos" default:"4" doc:"at this offset"`
}

// Docs is the reference of every key, generated from the same field tags
// the decoder enforces, so it cannot drift from what is accepted.
func Docs() string {
	var b strings.Builder
	b.WriteString("key\ttype\tdefault\tdescription\n")
	docType(&b, reflect.TypeFor[File](), "")
	return b.String()
}

func docType(b *strings.Builder, t reflect.Type, prefix string) {
	for _, f := range specOf(t) {
		ft := t.Field(f.index).Type
		key := prefix + f.key
		typ := ""
		switch {
		case ft == reflect.TypeFor[Start]():
			typ = "oldest | current | mapping"
		case ft == reflect.TypeFor[Duration]():
			typ = "duration"
		case ft.Kind() == reflect.Slice && (ft.Elem().Kind() == reflect.Pointer || ft.Elem().Kind() == reflect.Struct):
			typ = "list"
		case ft.Kind() == reflect.Slice:
			typ = "list of " + ft.Elem().Kind().String()
		case ft.Kind() == reflect.Struct:
			typ = "mapping"
		default:
			typ = ft.Kind().String()
		}
		if len(f.enum) > 0 {
			typ = strings.Join(f.enum, " | ")
		}
		def := f.def
		if f.required {
			def = "(required)"
		}
		doc := f.doc
		if len(f.sinks) > 0 {
			doc = "[" + strings.Join(f.sinks, ", ") + "] " + doc
		}
		fmt.Fprintf(b, "%s\t%s\t%s\t%s\n", key, typ, def, doc)
		switch {
		case ft == reflect.TypeFor[Start]():
			docType(b, reflect.TypeFor[startDoc](), key+".")
		case ft == reflect.TypeFor[Duration]():
		case ft.Kind() == reflect.Struct:
			docType(b, ft, key+".")
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Pointer:
			docType(b, ft.Elem().Elem(), key+"[].")
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
			docType(b, ft.Elem(), key+"[].")
		}
	}
}
