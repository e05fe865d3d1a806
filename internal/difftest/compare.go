package difftest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/go-sql-driver/mysql"
)

// Mismatch is one table that differs between source and target.
type Mismatch struct {
	Table string
	What  string // what differs: "missing on the target", "columns", "rows", "checksum"
	// Detail says how: differing column definitions, or the checksums.
	Detail string
	// SourceOnly and TargetOnly are rows (every column's bytes in hex) that
	// only one side has, at most maxRows of each.
	SourceOnly, TargetOnly []string
}

const maxRows = 8

// Unreadable is the What of a table that both servers fail to read with
// the same error: not a difference, and not compared.
const Unreadable = "unreadable on both servers"

func (m Mismatch) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "table %s: %s", m.Table, m.What)
	if m.Detail != "" {
		fmt.Fprintf(&b, " (%s)", m.Detail)
	}
	for _, r := range m.SourceOnly {
		fmt.Fprintf(&b, "\n  source only: %s", r)
	}
	for _, r := range m.TargetOnly {
		fmt.Fprintf(&b, "\n  target only: %s", r)
	}
	return b.String()
}

// Compare compares every table of db on the source with the target's:
// the column definitions, CHECKSUM TABLE EXTENDED, and the rows (an
// ordered SELECT of every column's bytes in hex, ENUM and SET also by
// index).
func Compare(ctx context.Context, src, dst *sql.DB, db string) ([]Mismatch, error) {
	sc, err := session(ctx, src)
	if err != nil {
		return nil, err
	}
	defer sc.Close()
	dc, err := session(ctx, dst)
	if err != nil {
		return nil, err
	}
	defer dc.Close()
	srcTables, err := strings1(ctx, sc, "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE <> 'VIEW' ORDER BY 1", db)
	if err != nil {
		return nil, err
	}
	dstTables, err := strings1(ctx, dc, "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE <> 'VIEW' ORDER BY 1", db)
	if err != nil {
		return nil, err
	}
	var out []Mismatch
	for _, t := range dstTables {
		if !slices.Contains(srcTables, t) {
			out = append(out, Mismatch{Table: t, What: "on the target only"})
		}
	}
	for _, t := range srcTables {
		if !slices.Contains(dstTables, t) {
			out = append(out, Mismatch{Table: t, What: "missing on the target"})
			continue
		}
		m, err := compareTable(ctx, sc, dc, db, t)
		if err != nil {
			return nil, err
		}
		if m != nil {
			out = append(out, *m)
		}
	}
	return out, nil
}

func session(ctx context.Context, db *sql.DB) (*sql.Conn, error) {
	c, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := c.ExecContext(ctx, "SET SESSION time_zone = '+00:00', sql_mode = '', group_concat_max_len = 1048576"); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func strings1(ctx context.Context, c *sql.Conn, q string, args ...any) ([]string, error) {
	rows, err := c.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", q, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s sql.NullString
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s.String)
	}
	return out, rows.Err()
}

const columnsQuery = `SELECT CONCAT_WS(' ', COLUMN_NAME, COLUMN_TYPE, IFNULL(COLLATION_NAME, '-'), IS_NULLABLE,
	IFNULL(COLUMN_DEFAULT, '<no default>'), EXTRA) FROM information_schema.COLUMNS
	WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`

func compareTable(ctx context.Context, sc, dc *sql.Conn, db, t string) (*Mismatch, error) {
	scols, err := strings1(ctx, sc, columnsQuery, db, t)
	if err != nil {
		return nil, err
	}
	dcols, err := strings1(ctx, dc, columnsQuery, db, t)
	if err != nil {
		return nil, err
	}
	if !slices.Equal(scols, dcols) {
		return &Mismatch{Table: t, What: "columns", Detail: "source [" + strings.Join(scols, "; ") + "] target [" + strings.Join(dcols, "; ") + "]"}, nil
	}
	// Numbers and times as text (the checksum covers their exact bytes),
	// everything else as hex, ENUM and SET also by index.
	exprs, err := strings1(ctx, sc, `SELECT CASE
			WHEN DATA_TYPE IN ('enum', 'set')
			THEN CONCAT('CONCAT(HEX(CAST(`+"`', REPLACE(COLUMN_NAME, '`', '``'), '`"+` AS BINARY)), '':'', `+"`', REPLACE(COLUMN_NAME, '`', '``'), '`"+` + 0)')
			WHEN DATA_TYPE IN ('tinyint', 'smallint', 'mediumint', 'int', 'bigint', 'decimal', 'float', 'double',
				'date', 'time', 'datetime', 'timestamp', 'year')
			THEN CONCAT('CAST(`+"`', REPLACE(COLUMN_NAME, '`', '``'), '`"+` AS CHAR)')
			ELSE CONCAT('HEX(CAST(`+"`', REPLACE(COLUMN_NAME, '`', '``'), '`"+` AS BINARY))') END
		FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`, db, t)
	if err != nil {
		return nil, err
	}
	q := "SELECT " + strings.Join(exprs, ", ") + " FROM " + ident(db) + "." + ident(t) + " ORDER BY " + strings.Join(exprs, ", ")
	srows, err := rowStrings(ctx, sc, q, scols)
	drows, derr := rowStrings(ctx, dc, q, scols)
	var se, de *mysql.MySQLError
	if errors.As(err, &se) && errors.As(derr, &de) && se.Number == de.Number {
		// A table neither server can read (a MERGE table over tables that
		// do not exist): equal as far as can be told.
		return &Mismatch{Table: t, What: Unreadable, Detail: se.Error()}, nil
	}
	if err != nil {
		return nil, err
	}
	if derr != nil {
		return nil, derr
	}
	sonly, donly := diffRows(srows, drows)
	if len(sonly) > 0 || len(donly) > 0 {
		return &Mismatch{Table: t, What: "rows", Detail: fmt.Sprintf("%d rows on the source, %d on the target", len(srows), len(drows)),
			SourceOnly: sonly, TargetOnly: donly}, nil
	}
	ssum, err := checksum(ctx, sc, db, t)
	if err != nil {
		return nil, err
	}
	dsum, err := checksum(ctx, dc, db, t)
	if err != nil {
		return nil, err
	}
	if ssum != dsum {
		return &Mismatch{Table: t, What: "checksum", Detail: "source " + ssum + ", target " + dsum + ", rows equal"}, nil
	}
	return nil, nil
}

func checksum(ctx context.Context, c *sql.Conn, db, t string) (string, error) {
	var name string
	var sum sql.NullString
	if err := c.QueryRowContext(ctx, "CHECKSUM TABLE "+ident(db)+"."+ident(t)+" EXTENDED").Scan(&name, &sum); err != nil {
		return "", fmt.Errorf("checksum %s.%s: %w", db, t, err)
	}
	return sum.String, nil
}

// rowStrings runs q and renders each row as "name=value ..." (NULL for NULL),
// sorted (the ORDER BY of hex is already close; sorting again makes the
// comparison independent of collation).
func rowStrings(ctx context.Context, c *sql.Conn, q string, cols []string) ([]string, error) {
	rows, err := c.QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", q, err)
	}
	defer rows.Close()
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i], _, _ = strings.Cut(c, " ")
	}
	var out []string
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		var b strings.Builder
		for i, v := range vals {
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(names[i] + "=")
			if v.Valid {
				b.WriteString(v.String)
			} else {
				b.WriteString("NULL")
			}
		}
		out = append(out, b.String())
	}
	slices.Sort(out)
	return out, rows.Err()
}

// diffRows returns the rows of the sorted multisets a and b that the other
// lacks, at most maxRows of each.
func diffRows(a, b []string) (aOnly, bOnly []string) {
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j == len(b) || (i < len(a) && a[i] < b[j]):
			if len(aOnly) < maxRows {
				aOnly = append(aOnly, a[i])
			}
			i++
		case i == len(a) || b[j] < a[i]:
			if len(bOnly) < maxRows {
				bOnly = append(bOnly, b[j])
			}
			j++
		default:
			i++
			j++
		}
	}
	return aOnly, bOnly
}

// ident quotes an identifier.
func ident(name string) string { return "`" + strings.ReplaceAll(name, "`", "``") + "`" }
