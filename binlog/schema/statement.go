package schema

import (
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/pingcap/tidb/pkg/parser"
	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/mysql"
)

// SQLMode is a session's sql_mode as the server logs it (the bits of a
// QUERY_EVENT's Q_SQL_MODE_CODE). A few modes change how a statement is
// read: ANSI_QUOTES makes "x" an identifier, NO_BACKSLASH_ESCAPES makes '\'
// an ordinary character, and PIPES_AS_CONCAT, HIGH_NOT_PRECEDENCE,
// IGNORE_SPACE and REAL_AS_FLOAT change what an expression means.
type SQLMode uint64

// Modes that change how a statement parses; the parser knows them by the
// same bits.
const parserModes = SQLMode(mysql.ModeRealAsFloat | mysql.ModePipesAsConcat | mysql.ModeANSIQuotes |
	mysql.ModeIgnoreSpace | mysql.ModeHighNotPrecedence | mysql.ModeNoBackslashEscapes)

// ANSIQuotes reports whether "..." quotes identifiers.
func (m SQLMode) ANSIQuotes() bool { return m&SQLMode(mysql.ModeANSIQuotes) != 0 }

// parse parses a statement as the server read it under mode.
func parse(sql string, mode SQLMode) ([]ast.StmtNode, rewriteNotes, error) {
	rewritten, notes := dialectRewrite(StripStartTransaction(sql), mode)
	p := parser.New()
	p.SetSQLMode(mysql.SQLMode(mode & parserModes))
	stmts, _, err := p.ParseSQL(rewritten)
	return stmts, notes, err
}

// Kind is what a statement changes.
type Kind uint8

const (
	// OtherStatement: neither a table, a database nor an account (CREATE
	// PROCEDURE, CREATE TRIGGER, ...), or a statement that could not be
	// read.
	OtherStatement Kind = iota
	// TableStatement changes tables (or views): CREATE/ALTER/DROP/RENAME/
	// TRUNCATE TABLE, CREATE/DROP INDEX, CREATE/DROP VIEW.
	TableStatement
	// DatabaseStatement: CREATE/ALTER/DROP DATABASE.
	DatabaseStatement
	// AccountStatement changes accounts or privileges: CREATE/ALTER/DROP/
	// RENAME USER, CREATE/DROP ROLE, GRANT, REVOKE, SET PASSWORD, SET
	// DEFAULT ROLE.
	AccountStatement
)

// TableRef names a table a statement changes.
type TableRef struct {
	Schema, Name string
	// Qualified: the statement names the database itself rather than
	// relying on the session's default database.
	Qualified bool
}

// Statement is what a statement changes, as far as it can be told.
type Statement struct {
	Kind Kind
	// Tables are the tables a table statement names, in text order (for
	// RENAME TABLE a TO b: a, then b).
	Tables []TableRef
	// Database is the database a database statement names.
	Database string
	// Parsed: read with the parser, not guessed from the statement's head.
	Parsed bool
}

// Classify tells what a statement run with defaultDB as the current
// database under mode changes. It reads the statement with the parser;
// when the parser cannot read it, a table or database statement is still
// recognised by its head (the first table it names).
func Classify(defaultDB, sql string, mode SQLMode) Statement {
	if IsAccountStatement(sql) {
		return Statement{Kind: AccountStatement}
	}
	stmts, _, err := parse(sql, mode)
	if err != nil || len(stmts) == 0 {
		return classifyHead(defaultDB, sql)
	}
	st := Statement{Parsed: true}
	ref := func(tn *ast.TableName) {
		if tn == nil {
			return
		}
		r := TableRef{Schema: tn.Schema.O, Name: tn.Name.O, Qualified: tn.Schema.O != ""}
		if r.Schema == "" {
			r.Schema = defaultDB
		}
		st.Tables = append(st.Tables, r)
	}
	for _, s := range stmts {
		switch s := s.(type) {
		case *ast.CreateTableStmt:
			st.Kind = TableStatement
			ref(s.Table)
			ref(s.ReferTable)
		case *ast.AlterTableStmt:
			st.Kind = TableStatement
			ref(s.Table)
			for _, spec := range s.Specs {
				if spec.Tp == ast.AlterTableRenameTable {
					ref(spec.NewTable)
				}
			}
		case *ast.DropTableStmt:
			st.Kind = TableStatement
			for _, t := range s.Tables {
				ref(t)
			}
		case *ast.RenameTableStmt:
			st.Kind = TableStatement
			for _, tt := range s.TableToTables {
				ref(tt.OldTable)
				ref(tt.NewTable)
			}
		case *ast.TruncateTableStmt:
			st.Kind = TableStatement
			ref(s.Table)
		case *ast.CreateIndexStmt:
			st.Kind = TableStatement
			ref(s.Table)
		case *ast.DropIndexStmt:
			st.Kind = TableStatement
			ref(s.Table)
		case *ast.CreateViewStmt:
			st.Kind = TableStatement
			ref(s.ViewName)
		case *ast.CreateSequenceStmt:
			st.Kind = TableStatement
			ref(s.Name)
		case *ast.AlterSequenceStmt:
			st.Kind = TableStatement
			ref(s.Name)
		case *ast.DropSequenceStmt:
			st.Kind = TableStatement
			for _, t := range s.Sequences {
				ref(t)
			}
		case *ast.CreateDatabaseStmt:
			st.Kind, st.Database = DatabaseStatement, s.Name.O
		case *ast.AlterDatabaseStmt:
			st.Kind, st.Database = DatabaseStatement, s.Name.O
			if s.AlterDefaultDatabase || st.Database == "" {
				st.Database = defaultDB
			}
		case *ast.DropDatabaseStmt:
			st.Kind, st.Database = DatabaseStatement, s.Name.O
		}
	}
	return st
}

func classifyHead(defaultDB, sql string) Statement {
	m := tableHead.FindStringSubmatch(sql)
	if m == nil {
		return Statement{}
	}
	a, b := unquoteIdent(m[1]), unquoteIdent(m[2])
	lower := strings.ToLower(m[0])
	if strings.Contains(lower, "database") || strings.Contains(lower, "schema") {
		return Statement{Kind: DatabaseStatement, Database: a}
	}
	if m[2] == "" {
		return Statement{Kind: TableStatement, Tables: []TableRef{{Schema: defaultDB, Name: a}}}
	}
	return Statement{Kind: TableStatement, Tables: []TableRef{{Schema: a, Name: b, Qualified: true}}}
}

// tableHead extracts the first table a schema statement names, for
// statements the parser cannot read.
var tableHead = regexp.MustCompile("(?is)^\\s*(?:/\\*.*?\\*/\\s*)*(?:create|alter|drop|rename|truncate)\\s+(?:or\\s+replace\\s+|online\\s+|ignore\\s+|temporary\\s+)*(?:tables?|database|schema|sequence)\\s+(?:if\\s+(?:not\\s+)?exists\\s+)?(`(?:[^`]|``)+`|[\\w$]+)(?:\\s*\\.\\s*(`(?:[^`]|``)+`|[\\w$]+))?")

// TableOf returns the database and table a schema statement names first.
// For database statements table is empty.
func TableOf(defaultDB, sql string) (db, table string, ok bool) {
	st := Classify(defaultDB, sql, 0)
	switch {
	case st.Kind == DatabaseStatement:
		return st.Database, "", true
	case len(st.Tables) > 0:
		return st.Tables[0].Schema, st.Tables[0].Name, true
	}
	return "", "", false
}

// words returns the first n significant words of sql, lower case ("" for
// a token that is not a word).
func headWords(toks []token, n int) []string {
	var out []string
	for _, t := range toks {
		if len(out) == n {
			break
		}
		if !t.sig {
			continue
		}
		if t.word {
			out = append(out, strings.ToLower(t.text))
		} else {
			out = append(out, "")
		}
	}
	for len(out) < n {
		out = append(out, "")
	}
	return out
}

// IsAccountStatement reports whether sql changes accounts or privileges.
func IsAccountStatement(sql string) bool {
	w := headWords(tokenize(sql, false), 4)
	switch w[0] {
	case "grant", "revoke":
		return true
	case "create":
		if w[1] == "or" && w[2] == "replace" {
			w = w[2:]
		}
		return w[1] == "user" || w[1] == "role"
	case "alter":
		return w[1] == "user"
	case "drop":
		return w[1] == "user" || w[1] == "role"
	case "rename":
		return w[1] == "user"
	case "set":
		return w[1] == "password" || w[1] == "default" && w[2] == "role"
	}
	return false
}

// ProgramKind returns "trigger" or "event" for a statement that creates,
// changes or drops a trigger or a scheduled event, "" for any other. A
// replica must not run those objects on its own: the rows a trigger or an
// event writes on the source arrive as rows, so on the target they would
// be written twice.
func ProgramKind(sql string) string {
	w := headWords(tokenize(sql, false), 16)
	switch w[0] {
	case "create", "alter", "drop":
	default:
		return ""
	}
	i := 1
	if w[i] == "or" && w[i+1] == "replace" {
		i += 2
	}
	if w[i] == "definer" {
		// DEFINER = user[@host], CURRENT_USER or CURRENT_USER(): the
		// words up to the object's keyword (quoted names and punctuation
		// are "" here).
		i++
		for i < len(w) && w[i] != "trigger" && w[i] != "event" && w[i] != "procedure" && w[i] != "function" && w[i] != "view" {
			i++
		}
	}
	if i < len(w) && (w[i] == "trigger" || w[i] == "event") {
		return w[i]
	}
	return ""
}

// StripStartTransaction removes the START TRANSACTION that MySQL 8.0.21
// and later append to a CREATE TABLE ... SELECT they log (the table and its
// rows are then one transaction). Neither the parser nor MariaDB reads the
// clause; the rows that follow in the same transaction are what it means.
func StripStartTransaction(sql string) string {
	toks := tokenize(sql, false)
	var sig []int
	for i, t := range toks {
		if t.sig {
			sig = append(sig, i)
		}
	}
	n := len(sig)
	if n > 0 && toks[sig[n-1]].text == ";" {
		n--
	}
	if n < 4 || !strings.EqualFold(toks[sig[0]].text, "create") ||
		!strings.EqualFold(toks[sig[n-2]].text, "start") || !strings.EqualFold(toks[sig[n-1]].text, "transaction") {
		return sql
	}
	var b strings.Builder
	for _, t := range toks[:sig[n-2]] {
		b.WriteString(t.text)
	}
	return strings.TrimRight(b.String(), " \t\r\n")
}

// Redact returns sql with its password literals replaced by '***': the
// strings after IDENTIFIED BY [PASSWORD], IDENTIFIED WITH ... AS,
// IDENTIFIED VIA ... USING, PASSWORD(...), SET PASSWORD ... =, REPLACE
// (MySQL's current password) and xxx_PASSWORD=. Every path that logs a
// statement or puts it in an error uses it: statements are written to
// logs, and an account statement carries a password or its hash.
func Redact(sql string) string {
	out, _ := redact(sql)
	return out
}

// Shorten cuts s to at most n bytes, at a character boundary, marking the
// cut with "...": for statements and rows quoted in messages.
func Shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}

// RedactError returns the text of an error about statement sql (a server's
// syntax error quotes the statement from where it stopped reading) with
// the statement's password literals hidden, wherever they appear.
func RedactError(text, sql string) string {
	_, secrets := redact(sql)
	text = Redact(text)
	for _, s := range secrets {
		if s != "" {
			text = strings.ReplaceAll(text, s, "***")
		}
	}
	return text
}

func redact(sql string) (string, []string) {
	lower := strings.ToLower(sql)
	if !strings.Contains(lower, "password") && !strings.Contains(lower, "identified") && !strings.Contains(lower, "using") {
		return sql, nil
	}
	var secrets []string
	toks := tokenize(sql, false)
	setPassword := false
	if w := headWords(toks, 2); w[0] == "set" && w[1] == "password" {
		setPassword = true
	}
	account := IsAccountStatement(sql)
	var prev []string // previous significant tokens, lower case
	at := func(k int) string {
		if k < len(prev) {
			return prev[len(prev)-1-k]
		}
		return ""
	}
	changed := false
	for i := range toks {
		t := &toks[i]
		if !t.sig {
			continue
		}
		text := strings.ToLower(t.text)
		isString := len(t.text) > 0 && (t.text[0] == '\'' || t.text[0] == '"')
		isHex := t.word && (strings.HasPrefix(text, "0x") || strings.HasPrefix(text, "0b"))
		if isString || isHex {
			p0, p1 := at(0), at(1)
			if p0 == "x" || p0 == "b" || strings.HasPrefix(p0, "_") { // X'..', _utf8mb4'..'
				p0, p1 = p1, at(2)
			}
			secret := false
			switch p0 {
			case "by", "using":
				secret = true
			case "as", "replace":
				secret = account || strings.Contains(lower, "identified")
			case "password":
				secret = true // OPTIONS (PASSWORD 'x')
			case "(":
				secret = strings.HasSuffix(p1, "password")
			case "=":
				secret = setPassword || strings.HasSuffix(p1, "password")
			case ",":
				secret = setPassword
			}
			if secret {
				v := t.text
				if isString {
					v = strings.TrimSuffix(v[1:], v[:1])
				}
				secrets = append(secrets, v)
				t.text = "'***'"
				changed = true
			}
		}
		prev = append(prev, text)
	}
	if !changed {
		return sql, nil
	}
	return joinTokens(toks), secrets
}

// RewriteTables rewrites the table names of a table statement: fn gets
// each table the statement names (with defaultDB for an unqualified name)
// and returns the name to use instead, or ok false to keep it. A renamed
// table is written qualified. It reports whether anything was rewritten.
// Of a statement the parser cannot read, only the first table (found by
// the statement's head) is rewritten.
func RewriteTables(defaultDB, sql string, mode SQLMode, fn func(TableRef) (db, table string, ok bool)) (string, bool) {
	st := Classify(defaultDB, sql, mode)
	if st.Kind != TableStatement {
		return sql, false
	}
	toks := tokenize(sql, mode.ANSIQuotes())
	var sig []int
	for i, t := range toks {
		if t.sig {
			sig = append(sig, i)
		}
	}
	ident := func(k int) (string, bool) {
		if k >= len(sig) {
			return "", false
		}
		t := toks[sig[k]]
		switch {
		case t.word:
			return t.text, true
		case strings.HasPrefix(t.text, "`"), mode.ANSIQuotes() && strings.HasPrefix(t.text, `"`):
			return unquoteIdent(t.text), true
		}
		return "", false
	}
	// Candidates: a possibly qualified name after a word that can
	// introduce a table name, or after a comma outside parentheses.
	type cand struct {
		ref        TableRef
		start, end int // significant token range [start, end]
	}
	var cands []cand
	depth := 0
	for k := 0; k < len(sig); k++ {
		text := toks[sig[k]].text
		switch text {
		case "(":
			depth++
		case ")":
			depth--
		}
		intro := false
		switch strings.ToLower(text) {
		case "table", "tables", "to", "on", "like", "exists", "rename", "view", "as", "sequence":
			intro = toks[sig[k]].word
		case ",":
			intro = depth == 0
		}
		if !intro {
			continue
		}
		a, ok := ident(k + 1)
		if !ok {
			continue
		}
		c := cand{ref: TableRef{Schema: defaultDB, Name: a}, start: k + 1, end: k + 1}
		if k+3 < len(sig) && toks[sig[k+2]].text == "." {
			if b, ok := ident(k + 3); ok {
				c.ref = TableRef{Schema: a, Name: b, Qualified: true}
				c.end = k + 3
			}
		}
		cands = append(cands, c)
	}
	next := 0
	changed := false
	for _, tr := range st.Tables {
		for ; next < len(cands); next++ {
			c := cands[next]
			if c.ref.Schema != tr.Schema || c.ref.Name != tr.Name {
				continue
			}
			if db, table, ok := fn(tr); ok {
				toks[sig[c.start]].text = QuoteIdent(db) + "." + QuoteIdent(table)
				for k := c.start + 1; k <= c.end; k++ {
					toks[sig[k]].text = ""
				}
				// The blanks between the parts of a qualified name go too.
				for i := sig[c.start] + 1; i < sig[c.end]; i++ {
					toks[i].text = ""
				}
				changed = true
			}
			next++
			break
		}
	}
	if !changed {
		return sql, false
	}
	return joinTokens(toks), true
}

// QuoteIdent quotes an identifier with backticks, doubling the ones in it:
// the one implementation (sqltext.QuoteIdent is this one).
func QuoteIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }
