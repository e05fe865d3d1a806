package config

import (
	"fmt"
	"os"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Error is one problem in a configuration file, located by line and column.
type Error struct {
	File         string
	Line, Column int
	Msg          string
}

func (e Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Column, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// Errors is every problem found in a file, in line order.
type Errors []Error

func (es Errors) Error() string {
	msgs := make([]string, len(es))
	for i, e := range es {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// The configuration types declare their own keys with struct tags, so that
// decoding, validation and the reference (Docs) come from one place:
//
//	yaml:"key"        the key
//	doc:"..."         what it is for
//	default:"..."     the value when the key is absent
//	enum:"a|b|c"      the allowed values
//	required:"true"   the key must be present
//	sink:"mysql"      for Sink: the sink types the key applies to
//
// The decoder is strict: unknown keys, duplicate keys, wrong types and
// values outside an enum are errors with the file, line and key path.

type decoder struct {
	file string
	env  func(string) (string, bool)
	errs Errors
}

func (d *decoder) errorf(n *yaml.Node, path, format string, args ...any) {
	e := Error{File: d.file, Msg: fmt.Sprintf(format, args...)}
	if path != "" {
		e.Msg = path + ": " + e.Msg
	}
	if n != nil {
		e.Line, e.Column = n.Line, n.Column
	}
	d.errs = append(d.errs, e)
}

// nodeDecoder is implemented by types with a YAML form of their own.
type nodeDecoder interface {
	decodeNode(d *decoder, n *yaml.Node, path string)
}

var nodeDecoderType = reflect.TypeFor[nodeDecoder]()

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "null"
		}
		return fmt.Sprintf("%q", n.Value)
	case yaml.AliasNode:
		return "an alias"
	}
	return "a document"
}

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if v.CanAddr() && v.Addr().Type().Implements(nodeDecoderType) {
		v.Addr().Interface().(nodeDecoder).decodeNode(d, n, path)
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, v.Elem(), path)
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.errorf(n, path, "want a list, got %s", kindName(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, c := range n.Content {
			d.decode(c, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	case reflect.String:
		if s, ok := d.scalar(n, path); ok {
			v.SetString(s)
		}
	case reflect.Bool:
		if s, ok := d.scalar(n, path); ok {
			b, err := strconv.ParseBool(s)
			if err != nil {
				d.errorf(n, path, "want true or false, got %q", s)
				return
			}
			v.SetBool(b)
		}
	case reflect.Int, reflect.Int64:
		if s, ok := d.scalar(n, path); ok {
			i, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				d.errorf(n, path, "want an integer, got %q", s)
				return
			}
			v.SetInt(i)
		}
	case reflect.Uint, reflect.Uint32, reflect.Uint64:
		if s, ok := d.scalar(n, path); ok {
			u, err := strconv.ParseUint(s, 10, v.Type().Bits())
			if err != nil {
				d.errorf(n, path, "want a non-negative integer of at most %d bits, got %q", v.Type().Bits(), s)
				return
			}
			v.SetUint(u)
		}
	default:
		panic(fmt.Sprintf("config: unsupported field kind %s", v.Kind()))
	}
}

var envRef = regexp.MustCompile(`\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}`)

// scalar returns a scalar's value with ${VAR} and ${VAR:-default}
// replaced from the environment ($$ is a literal $).
func (d *decoder) scalar(n *yaml.Node, path string) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		d.errorf(n, path, "want a single value, got %s", kindName(n))
		return "", false
	}
	ok := true
	s := envRef.ReplaceAllStringFunc(n.Value, func(m string) string {
		if m == "$$" {
			return "$"
		}
		sub := envRef.FindStringSubmatch(m)
		if v, set := d.env(sub[1]); set {
			return v
		}
		if sub[2] != "" {
			return sub[3]
		}
		d.errorf(n, path, "environment variable %s is not set", sub[1])
		ok = false
		return ""
	})
	return s, ok
}

type fieldSpec struct {
	index    int
	key      string
	doc      string
	def      string
	hasDef   bool
	enum     []string
	required bool
	sinks    []string
}

func specOf(t reflect.Type) []fieldSpec {
	var out []fieldSpec
	for i := range t.NumField() {
		f := t.Field(i)
		key := strings.Split(f.Tag.Get("yaml"), ",")[0]
		if key == "" || key == "-" {
			continue
		}
		fs := fieldSpec{index: i, key: key, doc: f.Tag.Get("doc"), required: f.Tag.Get("required") == "true"}
		fs.def, fs.hasDef = f.Tag.Lookup("default")
		if e := f.Tag.Get("enum"); e != "" {
			fs.enum = strings.Split(e, "|")
		}
		if s := f.Tag.Get("sink"); s != "" {
			fs.sinks = strings.Split(s, "|")
		}
		out = append(out, fs)
	}
	return out
}

func keysOf(spec []fieldSpec) string {
	keys := make([]string, len(spec))
	for i, f := range spec {
		keys[i] = f.key
	}
	return strings.Join(keys, ", ")
}

// nearestKey is the known key a misspelt one most likely meant: within an
// edit distance of 2 (1 for short keys), or "".
func nearestKey(key string, spec []fieldSpec) string {
	best, bestD := "", 3
	if len(key) <= 4 {
		bestD = 2
	}
	for _, f := range spec {
		if d := editDistance(strings.ToLower(key), f.key); d < bestD {
			best, bestD = f.key, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance of a and b (two short keys: no
// library is worth a dependency for it).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// typeName names a configuration section in messages.
func typeName(t reflect.Type) string { return strings.ToLower(t.Name()) }

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	spec := specOf(v.Type())
	if n.Kind != yaml.MappingNode {
		if n.Tag == "!!null" {
			n = &yaml.Node{Kind: yaml.MappingNode, Line: n.Line, Column: n.Column}
		} else {
			d.errorf(n, path, "want a mapping with keys %s, got %s", keysOf(spec), kindName(n))
			return
		}
	}
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		at := slices.IndexFunc(spec, func(f fieldSpec) bool { return f.key == k.Value })
		kpath := joinPath(path, k.Value)
		if at < 0 {
			if near := nearestKey(k.Value, spec); near != "" {
				d.errorf(k, path, "unknown key %q in %s: did you mean %q?", k.Value, typeName(v.Type()), near)
			} else {
				d.errorf(k, path, "unknown key %q in %s (known keys: %s)", k.Value, typeName(v.Type()), keysOf(spec))
			}
			continue
		}
		if prev := seen[k.Value]; prev != nil {
			d.errorf(k, path, "key %q appears twice (first on line %d)", k.Value, prev.Line)
			continue
		}
		seen[k.Value] = k
		f := spec[at]
		fv := v.Field(f.index)
		before := len(d.errs)
		d.decode(val, fv, kpath)
		if len(f.enum) > 0 && fv.Kind() == reflect.String && !slices.Contains(f.enum, fv.String()) && len(d.errs) == before {
			d.errorf(val, kpath, "%q is not one of %s", fv.String(), strings.Join(f.enum, ", "))
		}
	}
	for _, f := range spec {
		if seen[f.key] != nil {
			continue
		}
		if f.required {
			d.errorf(n, path, "missing required key %q", f.key)
			continue
		}
		fv := v.Field(f.index)
		switch {
		case f.hasDef:
			d.decode(&yaml.Node{Kind: yaml.ScalarNode, Value: f.def, Line: n.Line, Column: n.Column}, fv, joinPath(path, f.key))
		case fv.Kind() == reflect.Struct && !fv.Addr().Type().Implements(nodeDecoderType):
			// An absent section still gets its own defaults.
			d.decode(&yaml.Node{Kind: yaml.MappingNode, Line: n.Line, Column: n.Column}, fv, joinPath(path, f.key))
		}
	}
	if len(spec) > 0 && v.Type().Name() == "Sink" {
		d.checkSinkKeys(n, v, spec, seen, path)
	}
}

// checkSinkKeys rejects keys that belong to another sink type.
func (d *decoder) checkSinkKeys(n *yaml.Node, v reflect.Value, spec []fieldSpec, seen map[string]*yaml.Node, path string) {
	typ := v.FieldByName("Type").String()
	for _, f := range spec {
		k := seen[f.key]
		if k == nil || len(f.sinks) == 0 || slices.Contains(f.sinks, typ) || typ == "" {
			continue
		}
		d.errorf(k, path, "key %q is for sink type %s, not %s", f.key, strings.Join(f.sinks, " or "), typ)
	}
	// Required per sink type: marked with required_for tags.
	t := v.Type()
	for _, f := range spec {
		req := t.Field(f.index).Tag.Get("required_for")
		if req == "" || seen[f.key] != nil {
			continue
		}
		if slices.Contains(strings.Split(req, "|"), typ) {
			d.errorf(n, path, "sink type %s needs key %q", typ, f.key)
		}
	}
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// parse decodes data into v strictly.
func parse(file string, data []byte, v any, env func(string) (string, bool)) Errors {
	d := &decoder{file: file, env: env}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		line := 0
		if m := regexp.MustCompile(`^line (\d+): (.*)$`).FindStringSubmatch(msg); m != nil {
			line, _ = strconv.Atoi(m[1])
			msg = m[2]
		}
		return Errors{{File: file, Line: line, Column: 1, Msg: "not valid YAML: " + msg}}
	}
	if len(root.Content) == 0 {
		return Errors{{File: file, Msg: "the file is empty"}}
	}
	d.decode(root.Content[0], reflect.ValueOf(v).Elem(), "")
	sort.SliceStable(d.errs, func(i, j int) bool { return d.errs[i].Line < d.errs[j].Line })
	return d.errs
}

// osEnv reads the process environment.
func osEnv(k string) (string, bool) { return os.LookupEnv(k) }
