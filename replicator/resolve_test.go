package replicator_test

import (
	"strings"
	"testing"

	"github.com/sluice-cdc/sluice/internal/testenv"
)

// A definition read from the source for a DDL the tracker cannot parse is
// the table as it is now. When a later DDL renamed a column, the types
// still fit the rows logged in between, but binlog_row_metadata=FULL names
// their columns: those names win, with a warning (issue 14 item 7).
func TestDDLResolvedCheckedAgainstBinlogNames(t *testing.T) {
	full := testenv.MariaDBOptions{Args: []string{"--binlog-row-metadata=FULL"}}
	src, dst := testenv.StartMariaDB(t, full), testenv.StartMariaDB(t, testenv.MariaDBOptions{})
	src.Exec(t,
		"CREATE DATABASE app",
		"CREATE TABLE app.y (id INT PRIMARY KEY, a INT)",
		"ALTER TABLE app.y ADD c INT, ALGORITHM=NOCOPY",
		"INSERT INTO app.y VALUES (1, 2, 3)",
		"ALTER TABLE app.y RENAME COLUMN c TO d",
		"INSERT INTO app.y VALUES (4, 5, 6)",
	)
	var logs logBuffer
	cfg := testenv.LoadConfig(t, pipelineYAML(src, dst, "", ""))
	if err := runCaptured(t, cfg, &logs); err != nil {
		t.Fatalf("%v\n%s", err, logs.String())
	}
	sameTables(t, src, dst, "app.y")
	if !strings.Contains(logs.String(), "column names differ from the tracked schema") {
		t.Errorf("the stale definition was not reported:\n%s", logs.String())
	}
}
