package verify

import (
	"context"
	"database/sql"
	"encoding/hex"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/sluice-cdc/sluice/sqltext"
)

// column is one column of the source table as information_schema describes it.
type column struct {
	name      string
	dataType  string // DATA_TYPE, lower case
	charset   string // CHARACTER_SET_NAME; empty for non-text types
	generated bool
}

// sourceShape reads the source's compared columns (ordinal order, generated
// ones left out) and the key to walk: the primary key, or else the first
// unique key on NOT NULL columns.
func sourceShape(ctx context.Context, conn *sql.Conn, schema, table string) (cols, key []column, keyIndex string, err error) {
	all, err := readColumns(ctx, conn, schema, table)
	if err != nil {
		return nil, nil, "", fmt.Errorf("read source columns: %w", err)
	}
	if len(all) == 0 {
		return nil, nil, "", fmt.Errorf("table %s not found on source", qualified(schema, table))
	}
	byName := make(map[string]column, len(all))
	for _, c := range all {
		// Generated columns are computed by each server from the others;
		// their values follow, and MariaDB's system-versioning timestamps
		// (reported as generated) differ between servers by design.
		if !c.generated {
			cols = append(cols, c)
		}
		byName[strings.ToLower(c.name)] = c
	}
	key, keyIndex, err = chooseKey(ctx, conn, schema, table, byName)
	if err != nil {
		return nil, nil, "", fmt.Errorf("read source keys: %w", err)
	}
	return cols, key, keyIndex, nil
}

func readColumns(ctx context.Context, conn *sql.Conn, schema, table string) ([]column, error) {
	rows, err := conn.QueryContext(ctx, `SELECT COLUMN_NAME, DATA_TYPE, COALESCE(CHARACTER_SET_NAME, ''), EXTRA
		FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`, schema, table)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var cols []column
	for rows.Next() {
		var c column
		var extra string
		if err := rows.Scan(&c.name, &c.dataType, &c.charset, &extra); err != nil {
			return nil, err
		}
		c.dataType = strings.ToLower(c.dataType)
		// Not just "GENERATED": MySQL 8 marks columns with an expression
		// default DEFAULT_GENERATED, and those hold ordinary data.
		// PERSISTENT is MariaDB 10.1's spelling of STORED.
		e := strings.ToUpper(extra)
		c.generated = strings.Contains(e, "VIRTUAL") || strings.Contains(e, "STORED GENERATED") || strings.Contains(e, "PERSISTENT")
		cols = append(cols, c)
	}
	return cols, rows.Err()
}

func chooseKey(ctx context.Context, conn *sql.Conn, schema, table string, byName map[string]column) ([]column, string, error) {
	// No ORDER BY on the index: the servers list indexes in their table
	// definition order, which is also the order InnoDB uses to pick the
	// clustered index of a table without a primary key.
	rows, err := conn.QueryContext(ctx, `SELECT INDEX_NAME, SEQ_IN_INDEX, COLUMN_NAME, NON_UNIQUE, NULLABLE, SUB_PART
		FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?`, schema, table)
	if err != nil {
		return nil, "", err
	}
	defer rows.Close()
	type index struct {
		name   string
		cols   map[int]column
		usable bool
	}
	var order []*index
	byIndex := map[string]*index{}
	for rows.Next() {
		var name string
		var seq, nonUnique int
		var colName, nullable, subPart sql.NullString
		if err := rows.Scan(&name, &seq, &colName, &nonUnique, &nullable, &subPart); err != nil {
			return nil, "", err
		}
		ix := byIndex[name]
		if ix == nil {
			ix = &index{name: name, cols: map[int]column{}, usable: true}
			byIndex[name] = ix
			order = append(order, ix)
		}
		c, ok := byName[strings.ToLower(colName.String)]
		// A prefix index cannot order the full values (the walk would sort
		// every chunk), and MySQL's functional key parts have no column.
		if nonUnique != 0 || strings.EqualFold(nullable.String, "YES") || subPart.Valid || !colName.Valid || !ok {
			ix.usable = false
		}
		ix.cols[seq] = c
	}
	if err := rows.Err(); err != nil {
		return nil, "", err
	}
	pick := func(ix *index) ([]column, string) {
		key := make([]column, 0, len(ix.cols))
		for i := 1; i <= len(ix.cols); i++ {
			c, ok := ix.cols[i]
			if !ok {
				return nil, ""
			}
			key = append(key, c)
		}
		return key, ix.name
	}
	if ix := byIndex["PRIMARY"]; ix != nil && ix.usable {
		if key, name := pick(ix); key != nil {
			return key, name, nil
		}
	}
	for _, ix := range order {
		if ix.usable {
			if key, name := pick(ix); key != nil {
				return key, name, nil
			}
		}
	}
	return nil, "", nil
}

// missingOnTarget reports the source columns the target table lacks, and
// whether the target table exists at all.
func missingOnTarget(ctx context.Context, conn *sql.Conn, schema, table string, cols []column) (missing []string, found bool, err error) {
	tcols, err := readColumns(ctx, conn, schema, table)
	if err != nil {
		return nil, false, fmt.Errorf("read target columns: %w", err)
	}
	if len(tcols) == 0 {
		return nil, false, nil
	}
	have := make(map[string]bool, len(tcols))
	for _, c := range tcols {
		have[strings.ToLower(c.name)] = true
	}
	for _, c := range cols {
		if !have[strings.ToLower(c.name)] {
			missing = append(missing, sqltext.QuoteIdent(c.name))
		}
	}
	return missing, true, nil
}

// checksumSelect is the select list that counts and checksums the rows of
// a range. The same text runs on both servers, with the source's columns,
// so extra target columns do not take part.
func checksumSelect(cols []column) string {
	var b strings.Builder
	b.WriteString("COUNT(*), COALESCE(BIT_XOR(CAST(CRC32(CONCAT_WS('#'")
	for _, c := range cols {
		b.WriteString(", ")
		b.WriteString(c.checksumExpr())
	}
	// CONCAT_WS skips NULLs: without this tail (NULL, 'x') and ('x', NULL)
	// would be the same row, and NULL the same as a missing column.
	b.WriteString(", CONCAT(")
	for i, c := range cols {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("ISNULL(" + sqltext.QuoteIdent(c.name) + ")")
	}
	b.WriteString("))) AS UNSIGNED)), 0)")
	return b.String()
}

func (c column) checksumExpr() string {
	q := sqltext.QuoteIdent(c.name)
	switch c.dataType {
	case "char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum", "set", "json":
		// One character set for all: CONCAT_WS refuses to mix, say, latin1
		// and cp1251 columns, and a target column in another character set
		// than the source's should still match on equal text. As binary,
		// the concatenation is bytes whatever the collations, so 'a' and
		// 'A' differ under a _ci collation.
		return "CAST(CONVERT(" + q + " USING utf8mb4) AS BINARY)"
	case "float":
		// A FLOAT converts to text with only 6 significant digits, so values
		// differing further down would checksum alike; as a double every
		// stored bit shows.
		return "(" + q + " + 0e0)"
	case "bit":
		return "(" + q + " + 0)"
	default:
		return q
	}
}

// keyValue is one key column's value of a chunk bound.
type keyValue struct {
	lit  string // a SQL literal that compares like the stored value
	show string // for FirstDiff
}

// The key's values go back into the chunk queries as literals built here,
// not as placeholders, so that they compare the way ORDER BY sorted them
// whatever the driver sends and however the server converts: an ENUM
// compared with a string compares labels but sorts by index, a FLOAT's text
// is not its value, and MySQL compares a DECIMAL with a string as doubles.

// boundExprs selects the column for value(): the form its literal is built
// from, and for some types also a form to show (an ENUM's label says more
// than its index).
func (c column) boundExprs() []string {
	q := sqltext.QuoteIdent(c.name)
	switch c.kind() {
	case kindNumberOf:
		if c.dataType == "bit" {
			return []string{q + " + 0"}
		}
		return []string{q + " + 0", "CAST(" + q + " AS CHAR CHARACTER SET utf8mb4)"}
	case kindFloat:
		// As a double, the text round-trips exactly (a FLOAT's own text
		// does not).
		return []string{q + " + 0e0"}
	case kindText:
		if !strings.HasPrefix(c.charset, "utf8") {
			// The bytes are not UTF-8; the text is for showing.
			return []string{"HEX(" + q + ")", "CONVERT(" + q + " USING utf8mb4)"}
		}
		return []string{"HEX(" + q + ")"}
	case kindBinary:
		return []string{"HEX(" + q + ")"}
	case kindOther:
		return []string{"HEX(CAST(" + q + " AS CHAR CHARACTER SET utf8mb4))"}
	default:
		return []string{q}
	}
}

// value turns what boundExprs selected into a keyValue.
func (c column) value(raw []string) (keyValue, error) {
	s := raw[0]
	bad := func() (keyValue, error) {
		return keyValue{}, fmt.Errorf("unexpected value %q of key column %s", s, sqltext.QuoteIdent(c.name))
	}
	switch c.kind() {
	case kindInt, kindNumberOf, kindDecimal:
		if s == "" || !onlyChars(s, "-0123456789.") {
			return bad()
		}
		show := s
		if len(raw) > 1 {
			show = showBytes([]byte(raw[1]), hex.EncodeToString([]byte(raw[1])))
		}
		return keyValue{lit: s, show: show}, nil
	case kindFloat:
		if s == "" || !onlyChars(s, "-+0123456789.eE") {
			return bad()
		}
		lit := s
		// Without an exponent the literal would be an exact DECIMAL; the
		// column compares as a double.
		if !strings.ContainsAny(s, "eE") {
			lit += "e0"
		}
		return keyValue{lit: lit, show: s}, nil
	case kindTemporal:
		if s == "" || !onlyChars(s, "-0123456789 :.") {
			return bad()
		}
		return keyValue{lit: "'" + s + "'", show: "'" + s + "'"}, nil
	case kindText, kindBinary, kindOther:
		b, err := hex.DecodeString(s)
		if err != nil {
			return bad()
		}
		cs := ""
		switch c.kind() {
		case kindText:
			// An introducer keeps the column's character set, and a literal
			// yields to the column's collation, so the comparison is the
			// one ORDER BY used.
			cs = c.charset
		case kindOther:
			cs = "utf8mb4"
		}
		lit := string(sqltext.AppendCharsetBytes(nil, cs, b))
		show := showBytes(b, s)
		if len(raw) > 1 {
			show = showBytes([]byte(raw[1]), s)
		}
		return keyValue{lit: lit, show: show}, nil
	}
	return bad()
}

type kind int

const (
	kindOther    kind = iota // e.g. MariaDB's UUID and INET6: compared as text
	kindInt                  // integers and YEAR
	kindNumberOf             // compared by number: BIT, and ENUM and SET, which sort by index
	kindDecimal
	kindFloat
	kindTemporal
	kindText
	kindBinary
)

func (c column) kind() kind {
	switch c.dataType {
	case "tinyint", "smallint", "mediumint", "int", "integer", "bigint", "year":
		return kindInt
	case "bit", "enum", "set":
		return kindNumberOf
	case "decimal", "numeric":
		return kindDecimal
	case "float", "double", "real":
		return kindFloat
	case "date", "datetime", "timestamp", "time":
		return kindTemporal
	case "char", "varchar", "tinytext", "text", "mediumtext", "longtext":
		if c.charset == "" || c.charset == "binary" {
			return kindBinary
		}
		return kindText
	case "binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob":
		return kindBinary
	}
	return kindOther
}

func onlyChars(s, allowed string) bool {
	for _, r := range s {
		if !strings.ContainsRune(allowed, r) {
			return false
		}
	}
	return true
}

func showBytes(b []byte, hexText string) string {
	if !utf8.Valid(b) {
		return "X'" + hexText + "'"
	}
	for _, r := range string(b) {
		if r < 0x20 || r == 0x7f {
			return "X'" + hexText + "'"
		}
	}
	return "'" + strings.ReplaceAll(string(b), "'", "''") + "'"
}

// keyAfter is the condition key > v. Composite keys are spelled out
// column by column rather than as (a,b) > (x,y): the servers do not use an
// index for a row comparison, which would make every chunk a scan from the
// start of the table; the expansion means the same and is a tight range.
func keyAfter(key []column, v []keyValue) string { return keyCompare(key, v, ">", ">") }

// keyUpTo is the condition key <= v.
func keyUpTo(key []column, v []keyValue) string { return keyCompare(key, v, "<", "<=") }

func keyCompare(key []column, v []keyValue, op, lastOp string) string {
	if len(key) == 1 {
		return sqltext.QuoteIdent(key[0].name) + " " + lastOp + " " + v[0].lit
	}
	var alts []string
	for i := range key {
		var terms []string
		for j := range i {
			terms = append(terms, sqltext.QuoteIdent(key[j].name)+" = "+v[j].lit)
		}
		o := op
		if i == len(key)-1 {
			o = lastOp
		}
		terms = append(terms, sqltext.QuoteIdent(key[i].name)+" "+o+" "+v[i].lit)
		alts = append(alts, "("+strings.Join(terms, " AND ")+")")
	}
	return "(" + strings.Join(alts, " OR ") + ")"
}

func rangeCond(key []column, lower, upper []keyValue) string {
	var conds []string
	if lower != nil {
		conds = append(conds, keyAfter(key, lower))
	}
	if upper != nil {
		conds = append(conds, keyUpTo(key, upper))
	}
	return strings.Join(conds, " AND ")
}

// describeRange shows a chunk's range the way a person would query it.
func describeRange(key []column, lower, upper []keyValue) string {
	if lower == nil && upper == nil {
		return "whole table"
	}
	var names string
	if len(key) == 1 {
		names = sqltext.QuoteIdent(key[0].name)
	} else {
		q := make([]string, len(key))
		for i, k := range key {
			q[i] = sqltext.QuoteIdent(k.name)
		}
		names = "(" + strings.Join(q, ",") + ")"
	}
	var conds []string
	if lower != nil {
		conds = append(conds, names+" > "+keyTuple(lower))
	}
	if upper != nil {
		conds = append(conds, names+" <= "+keyTuple(upper))
	}
	return strings.Join(conds, " AND ")
}

func keyTuple(v []keyValue) string {
	if len(v) == 1 {
		return v[0].show
	}
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = x.show
	}
	return "(" + strings.Join(s, ",") + ")"
}

func sameKey(a, b []keyValue) bool {
	for i := range a {
		if a[i].lit != b[i].lit {
			return false
		}
	}
	return true
}

func qualified(schema, table string) string { return sqltext.QualifiedName(schema, table) }
