package difftest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/go-sql-driver/mysql"
)

// Entry is one statement run on the source, with its outcome.
type Entry struct {
	Batch int
	SQL   string
	Table string
	Err   string // the server's error, "" when it succeeded
}

// Log is the statements of a round, in the order they ran.
type Log []Entry

// LoadCharsets reads the server's character sets and their collations.
func LoadCharsets(ctx context.Context, db *sql.DB) ([]Charset, error) {
	rows, err := db.QueryContext(ctx, `SELECT c.CHARACTER_SET_NAME, c.MAXLEN, c.DEFAULT_COLLATE_NAME, l.COLLATION_NAME
		FROM information_schema.CHARACTER_SETS c JOIN information_schema.COLLATIONS l ON l.CHARACTER_SET_NAME = c.CHARACTER_SET_NAME
		ORDER BY c.CHARACTER_SET_NAME, l.ID`)
	if err != nil {
		return nil, fmt.Errorf("read character sets: %w", err)
	}
	defer rows.Close()
	var out []Charset
	for rows.Next() {
		var name, def, coll string
		var maxLen int
		if err := rows.Scan(&name, &maxLen, &def, &coll); err != nil {
			return nil, err
		}
		if len(out) == 0 || out[len(out)-1].Name != name {
			out = append(out, Charset{Name: name, MaxLen: maxLen, Collations: []string{def}})
		}
		if coll != def {
			cs := &out[len(out)-1]
			cs.Collations = append(cs.Collations, coll)
		}
	}
	return out, rows.Err()
}

// Run runs up to n of the generator's batches (all of them when n < 0) on
// conn, a session of the source, and appends every statement to log. A
// statement the server rejects is logged and the batch goes on; a lost
// connection is an error. It reports whether the generator is exhausted.
func Run(ctx context.Context, conn *sql.Conn, g *Generator, log *Log, n int) (bool, error) {
	for i := 0; n < 0 || i < n; i++ {
		b := g.Next()
		if b == nil {
			return true, nil
		}
		batch := g.step
		for _, s := range b {
			e := Entry{Batch: batch, SQL: s.SQL, Table: s.Table}
			if _, err := conn.ExecContext(ctx, s.SQL); err != nil {
				var me *mysql.MySQLError
				if !errors.As(err, &me) {
					return false, fmt.Errorf("difftest: %s: %w", s.SQL, err)
				}
				e.Err = err.Error()
				if s.rejected != nil {
					s.rejected(me.Number)
				}
			} else {
				if s.rejected != nil {
					// DO turns a function's error into a warning.
					if err := warnings(ctx, conn, s.rejected); err != nil {
						return false, err
					}
				}
				if s.apply != nil {
					s.apply()
				}
			}
			*log = append(*log, e)
		}
	}
	return false, nil
}

// warnings hands the error numbers of the session's warnings to seen.
func warnings(ctx context.Context, conn *sql.Conn, seen func(code uint16)) error {
	rows, err := conn.QueryContext(ctx, "SHOW WARNINGS")
	if err != nil {
		return fmt.Errorf("difftest: SHOW WARNINGS: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var level, msg string
		var code uint16
		if err := rows.Scan(&level, &code, &msg); err != nil {
			return fmt.Errorf("difftest: SHOW WARNINGS: %w", err)
		}
		seen(code)
	}
	return rows.Err()
}

// Errors counts the statements the server rejected.
func (l Log) Errors() int {
	n := 0
	for _, e := range l {
		if e.Err != "" {
			n++
		}
	}
	return n
}

// String is the whole log as an SQL script; rejected statements are
// commented out with their error.
func (l Log) String() string { return l.script(func(Entry) bool { return true }) }

// ForTable is the part of the log that makes table's content: the
// statements that write it, with their sessions' settings and transaction
// control, as an SQL script that reproduces the table on a fresh server.
func (l Log) ForTable(table string) string {
	batches := map[int]bool{}
	for _, e := range l {
		if e.Table == table {
			batches[e.Batch] = true
		}
	}
	return l.script(func(e Entry) bool {
		return e.Batch == 1 || (batches[e.Batch] && (e.Table == "" || e.Table == table))
	})
}

func (l Log) script(keep func(Entry) bool) string {
	var b strings.Builder
	for _, e := range l {
		if !keep(e) {
			continue
		}
		if e.Err != "" {
			fmt.Fprintf(&b, "-- rejected: %s\n-- ", strings.ReplaceAll(e.Err, "\n", " "))
			b.WriteString(strings.ReplaceAll(e.SQL, "\n", "\n-- "))
		} else {
			b.WriteString(e.SQL)
		}
		b.WriteString(";\n")
	}
	return b.String()
}
