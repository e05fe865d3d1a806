package binlog_test

import (
	"log/slog"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/sluice-cdc/sluice/binlog"
	"github.com/sluice-cdc/sluice/internal/testenv"
)

// TestRenderJSONSavepoint reads a binlog whose transactions roll back to
// savepoints (a MyISAM change inside the savepoint makes MariaDB log the
// rolled-back rows and the ROLLBACK TO SAVEPOINT) with RenderJSON, in the
// reader and with workers, in memory and spilled: the JSON is the one of
// the Changes, without the rolled-back rows.
func TestRenderJSONSavepoint(t *testing.T) {
	m := testenv.StartMariaDB(t, testenv.MariaDBOptions{})
	m.Exec(t,
		"CREATE DATABASE g",
		"CREATE TABLE g.a (id INT PRIMARY KEY, v VARCHAR(20), n INT NULL) ENGINE=InnoDB",
		"CREATE TABLE g.m (id INT PRIMARY KEY, v INT) ENGINE=MyISAM",
		"BEGIN", "INSERT INTO g.a VALUES (1, 'one', NULL), (2, 'two', 2)", "SAVEPOINT s1",
		"INSERT INTO g.a VALUES (3, 'three', NULL)", "INSERT INTO g.m VALUES (3, 3)", "UPDATE g.a SET n = 10 WHERE id = 1",
		"ROLLBACK TO SAVEPOINT s1", "INSERT INTO g.a VALUES (4, 'four', 4)", "SAVEPOINT s2", "DELETE FROM g.a WHERE id = 2",
		"INSERT INTO g.m VALUES (5, 5)", "ROLLBACK TO SAVEPOINT s2", "UPDATE g.a SET n = NULL WHERE id = 4", "COMMIT",
		"FLUSH BINARY LOGS",
	)
	files, _ := filepath.Glob(filepath.Join(m.Dir, "data", "bin.[0-9]*"))
	sort.Strings(files)
	f, _ := binlog.NewFilter([]string{"g.*"}, nil)
	var want []string
	for _, path := range files {
		for _, spill := range []int64{0, 1} {
			opts := binlog.DecodeOptions{Filter: f, Logger: slog.New(slog.DiscardHandler), SpillBytes: spill, SpillDir: t.TempDir()}
			w, err := decodeJSON(t, path, opts)
			if err != nil {
				t.Fatal(err)
			}
			if spill == 0 {
				want = append(want, w...)
			}
			for _, workers := range []int{0, 2} {
				opts.Workers, opts.RenderJSON = workers, true
				got, err := decodeJSON(t, path, opts)
				if err != nil {
					t.Fatal(err)
				}
				if strings.Join(got, "\n") != strings.Join(w, "\n") {
					t.Fatalf("workers %d, spill %d: RenderJSON wrote\n%s\nwant\n%s", workers, spill, strings.Join(got, "\n"), strings.Join(w, "\n"))
				}
			}
		}
	}
	all := strings.Join(want, "\n")
	if !strings.Contains(all, `"after":{"id":4,"v":"four","n":null}`) || strings.Contains(all, `"v":"three"`) || strings.Contains(all, `"type":"delete"`) {
		t.Fatalf("the rolled-back rows are not dropped:\n%s", all)
	}
}
