package schema

import (
	"strings"

	"github.com/pingcap/tidb/pkg/parser/charset"
)

// The TiDB parser covers MySQL's DDL grammar but not all of MariaDB's, nor
// MySQL's spatial types and invisible columns. Rather than fork a grammar,
// dialectRewrite rewrites the few constructs it lacks into ones it parses,
// and remembers what it changed so the definitions can be corrected after
// parsing. It works on tokens, so it never touches string literals, quoted
// identifiers or comments.

// rewriteNotes records what dialectRewrite changed.
type rewriteNotes struct {
	orReplace bool              // CREATE OR REPLACE TABLE (or SEQUENCE)
	types     map[string]string // lower-case column name -> original type ("point", "uuid", ...)
	invisible map[string]bool   // lower-case column name -> INVISIBLE
	// MariaDB system versioning: WITH SYSTEM VERSIONING on the table, ALTER
	// TABLE ... ADD / DROP SYSTEM VERSIONING.
	versioned, addVersioning, dropVersioning bool
}

// substitutes maps types the parser lacks to a stand-in with the same binlog
// representation.
var substitutes = map[string]string{
	"geometry": "longblob", "point": "longblob", "linestring": "longblob", "polygon": "longblob",
	"multipoint": "longblob", "multilinestring": "longblob", "multipolygon": "longblob",
	"geometrycollection": "longblob", "geomcollection": "longblob",
	"uuid": "binary(16)", "inet6": "binary(16)", "inet4": "binary(4)",
}

// typeWords are the words that start a column type, used to find the
// column a type belongs to (the identifier just before it).
var typeWords = map[string]bool{}

func init() {
	for _, w := range strings.Fields(`bit tinyint smallint mediumint int integer bigint int1 int2 int3 int4 int8 middleint
		bool boolean serial real double float float4 float8 decimal dec numeric fixed date time timestamp datetime year
		char varchar nchar nvarchar national character binary varbinary tinyblob blob mediumblob longblob long
		tinytext text mediumtext longtext enum set json vector`) {
		typeWords[w] = true
	}
	for w := range substitutes {
		typeWords[w] = true
	}
}

// textTypes are the types MariaDB's BYTE, ASCII and UNICODE attributes
// follow.
var textTypes = map[string]bool{"char": true, "varchar": true, "character": true, "nchar": true, "nvarchar": true,
	"tinytext": true, "text": true, "mediumtext": true, "longtext": true}

// partitionOps are the ALTER TABLE operations on partitions that take
// PARTITION ALL.
var partitionOps = map[string]bool{"analyze": true, "check": true, "optimize": true, "rebuild": true, "repair": true, "truncate": true}

// notIdentifier lists words that can precede a type word without being a
// column name.
var notIdentifier = map[string]bool{"as": true, "not": true, "null": true, "default": true, "cast": true,
	"convert": true, "returning": true, "to": true, "by": true, "is": true, "in": true}

type token struct {
	text string
	word bool // unquoted word
	sig  bool // not white space or comment
}

func tokenize(s string, ansiQuotes bool) []token {
	var out []token
	for i := 0; i < len(s); {
		c := s[i]
		j := i + 1
		t := token{sig: true}
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			for j < len(s) && strings.IndexByte(" \t\n\r", s[j]) >= 0 {
				j++
			}
			t.sig = false
		case c == '#' || c == '-' && strings.HasPrefix(s[i:], "-- "):
			for j < len(s) && s[j] != '\n' {
				j++
			}
			t.sig = false
		case c == '/' && strings.HasPrefix(s[i:], "/*") && !strings.HasPrefix(s[i:], "/*!") && !strings.HasPrefix(s[i:], "/*M!"):
			if k := strings.Index(s[i+2:], "*/"); k >= 0 {
				j = i + 2 + k + 2
			} else {
				j = len(s)
			}
			t.sig = false
		case c == '\'' || c == '"' || c == '`':
			for j < len(s) {
				if s[j] == '\\' && c != '`' && !(ansiQuotes && c == '"') {
					j += 2
					continue
				}
				if s[j] == c {
					if j+1 < len(s) && s[j+1] == c { // doubled quote
						j += 2
						continue
					}
					j++
					break
				}
				j++
			}
			j = min(j, len(s))
		case isWordByte(c):
			for j < len(s) && isWordByte(s[j]) {
				j++
			}
			t.word = true
		}
		t.text = s[i:j]
		out = append(out, t)
		i = j
	}
	return out
}

// joinTokens is the statement the tokens make.
func joinTokens(toks []token) string {
	var b strings.Builder
	for _, t := range toks {
		b.WriteString(t.text)
	}
	return b.String()
}

func isWordByte(c byte) bool {
	return c == '_' || c == '$' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c >= 0x80
}

func unquoteIdent(s string) string {
	if len(s) >= 2 && (s[0] == '`' || s[0] == '"') {
		q := s[:1]
		return strings.ReplaceAll(s[1:len(s)-1], q+q, q)
	}
	return s
}

// dialectRewrite returns sql in a form the TiDB parser accepts.
func dialectRewrite(sql string, mode SQLMode) (string, rewriteNotes) {
	ansi := mode.ANSIQuotes()
	toks := tokenize(sql, ansi)
	notes := rewriteNotes{types: map[string]string{}, invisible: map[string]bool{}}
	var sig []int // indexes of significant tokens
	for i, t := range toks {
		if t.sig {
			sig = append(sig, i)
		}
	}
	word := func(k int) string { // lower-case word at significant index k
		if k < 0 || k >= len(sig) || !toks[sig[k]].word {
			return ""
		}
		return strings.ToLower(toks[sig[k]].text)
	}
	drop := func(k int) { toks[sig[k]].text = "" }

	// Statement heads.
	if word(0) == "create" && word(1) == "or" && word(2) == "replace" && (word(3) == "table" || word(3) == "sequence") {
		notes.orReplace = true
		drop(1)
		drop(2)
	}
	if word(0) == "alter" && (word(1) == "online" || word(1) == "ignore") {
		drop(1)
	}

	column := "" // the column whose definition we are in, lower case
	depth := 0
	for k := 0; k < len(sig); k++ {
		t := &toks[sig[k]]
		switch t.text {
		case "(":
			depth++
			continue
		case ")":
			depth--
			if depth <= 0 {
				column = ""
			}
			continue
		case ",":
			if depth <= 1 {
				column = ""
			}
			continue
		}
		w := word(k)
		if w == "" {
			continue
		}
		if typeWords[w] && k > 0 {
			prev := toks[sig[k-1]]
			if prev.text != "" && (prev.word && !notIdentifier[strings.ToLower(prev.text)] || strings.HasPrefix(prev.text, "`") || ansi && strings.HasPrefix(prev.text, `"`)) {
				column = strings.ToLower(unquoteIdent(prev.text))
				if sub, ok := substitutes[w]; ok {
					notes.types[column] = w
					t.text = sub
				}
				// YEAR(2) (MariaDB reads any YEAR(n) as YEAR): the parser
				// takes only YEAR(4).
				if w == "year" && k+3 < len(sig) && toks[sig[k+1]].text == "(" && toks[sig[k+3]].text == ")" {
					for j := k + 1; j <= k+3; j++ {
						drop(j)
					}
				}
			}
		}
		switch w {
		case "invisible":
			if column != "" {
				notes.invisible[column] = true
				drop(k)
			}
		case "persistent":
			t.text = "STORED"
		case "collate":
			// Collations newer than the parser (MariaDB 11's uca1400 ones)
			// only affect ordering: any collation of the same character set
			// decodes the same.
			j := k + 1
			if j < len(sig) && toks[sig[j]].text == "=" {
				j++
			}
			if j < len(sig) {
				name := strings.Trim(toks[sig[j]].text, "`'\"")
				if _, err := charset.GetCollationByName(name); err != nil && name != "" {
					cs, _, _ := strings.Cut(strings.ToLower(name), "_")
					if _, err := charset.GetCharsetInfo(cs); err != nil {
						cs = "utf8mb4"
					}
					toks[sig[j]].text = cs + "_bin"
				}
			}
		case "default":
			// DEFAULT (expression): the parser reads only a few expression
			// forms there, and a default never changes how rows decode.
			if k+1 < len(sig) && toks[sig[k+1]].text == "(" {
				end := matchParen(toks, sig, k+1)
				if end > 0 {
					for j := k + 1; j <= end; j++ {
						toks[sig[j]].text = ""
					}
					// Blank what lies between too (comments, spaces).
					for i := sig[k+1]; i <= sig[end]; i++ {
						toks[i].text = ""
					}
					toks[sig[k+1]].text = "NULL"
					k = end
				}
			}
		case "byte", "ascii", "unicode":
			// MariaDB's CHAR(n) BYTE, CHAR(n) ASCII and ... UNICODE: the
			// binary, latin1 and ucs2 character sets.
			if textTypes[word(k-1)] || k >= 4 && toks[sig[k-1]].text == ")" && toks[sig[k-3]].text == "(" && textTypes[word(k-4)] {
				t.text = map[string]string{"byte": "CHARACTER SET binary", "ascii": "CHARACTER SET latin1", "unicode": "CHARACTER SET ucs2"}[w]
			}
		case "all":
			// ALTER TABLE t ANALYZE PARTITION ALL (and CHECK, OPTIMIZE,
			// REBUILD, REPAIR, TRUNCATE): the parser takes only partition
			// names, and no partition operation changes the columns.
			if word(k-1) == "partition" && partitionOps[word(k-2)] {
				t.text = "`ALL`"
			}
		case "with", "without":
			if word(k+1) == "system" && word(k+2) == "versioning" {
				if w == "with" && depth == 0 {
					notes.versioned = true
				}
				drop(k)
				drop(k + 1)
				drop(k + 2)
			}
		case "add", "drop":
			if word(k+1) == "system" && word(k+2) == "versioning" && depth == 0 {
				if w == "add" {
					notes.addVersioning = true
				} else {
					notes.dropVersioning = true
				}
				t.text = "FORCE"
				drop(k + 1)
				drop(k + 2)
			}
		}
	}
	var b strings.Builder
	b.Grow(len(sql))
	for _, t := range toks {
		b.WriteString(t.text)
		if t.text == "" {
			b.WriteByte(' ')
		}
	}
	return b.String(), notes
}

// matchParen returns the significant index of the parenthesis closing the
// one at significant index k, or -1.
func matchParen(toks []token, sig []int, k int) int {
	depth := 0
	for j := k; j < len(sig); j++ {
		switch toks[sig[j]].text {
		case "(":
			depth++
		case ")":
			depth--
			if depth == 0 {
				return j
			}
		}
	}
	return -1
}
