package replicator_test

import (
	"fmt"
	"testing"

	"github.com/sluice-cdc/sluice/internal/testenv"
)

// TestForeignKeyCascades: the source logs only the parent row of an ON
// DELETE/UPDATE CASCADE or SET NULL (InnoDB's foreign keys act below the
// binlog), so the target must run the same cascades, as a replica does:
// rows are applied with the foreign key checks the source session had.
// A session that turned the checks off (a bulk load of orphans) is
// applied with them off.
func TestForeignKeyCascades(t *testing.T) {
	for _, workers := range []int{1, 4} {
		t.Run(fmt.Sprintf("workers=%d", workers), func(t *testing.T) { testForeignKeyCascades(t, workers) })
	}
}

func testForeignKeyCascades(t *testing.T, workers int) {
	servers := testenv.StartMariaDBs(t, 2)
	src, dst := servers[0], servers[1]
	src.Exec(t,
		"CREATE DATABASE app",
		"CREATE TABLE app.parent (id INT PRIMARY KEY, name VARCHAR(10)) ENGINE=InnoDB",
		"CREATE TABLE app.child (id INT PRIMARY KEY, pid INT, FOREIGN KEY (pid) REFERENCES app.parent (id) ON DELETE CASCADE ON UPDATE CASCADE) ENGINE=InnoDB",
		"CREATE TABLE app.note (id INT PRIMARY KEY, pid INT, FOREIGN KEY (pid) REFERENCES app.parent (id) ON DELETE SET NULL ON UPDATE SET NULL) ENGINE=InnoDB",
		"CREATE TABLE app.grandchild (id INT PRIMARY KEY, cid INT, FOREIGN KEY (cid) REFERENCES app.child (id) ON DELETE CASCADE) ENGINE=InnoDB",
		"INSERT INTO app.parent VALUES (1, 'a'), (2, 'b'), (3, 'c'), (4, 'd')",
		"INSERT INTO app.child VALUES (10, 1), (11, 1), (20, 2), (30, 3), (40, 4)",
		"INSERT INTO app.note VALUES (100, 1), (200, 2), (300, 3)",
		"INSERT INTO app.grandchild VALUES (1000, 10), (1100, 11), (2000, 20)",
		// Cascades through two levels, a SET NULL, an ON UPDATE CASCADE.
		"DELETE FROM app.parent WHERE id = 1",
		"UPDATE app.parent SET id = 22 WHERE id = 2",
		"DELETE FROM app.parent WHERE id = 3",
		// In one transaction with other changes.
		"BEGIN",
		"INSERT INTO app.parent VALUES (5, 'e')",
		"INSERT INTO app.child VALUES (50, 5)",
		"DELETE FROM app.parent WHERE id = 4",
		"COMMIT",
		// A session with the checks off: an orphan the target must take
		// as the source did.
		"SET SESSION foreign_key_checks = 0",
		// (and no cascade: child 50 stays, an orphan too).
		"INSERT INTO app.child VALUES (99, 999)",
		"UPDATE app.child SET id = 98 WHERE id = 99",
		"DELETE FROM app.parent WHERE id = 5",
		"SET SESSION foreign_key_checks = 1",
		"INSERT INTO app.parent VALUES (6, 'f')",
		"INSERT INTO app.child VALUES (60, 6)",
	)
	var logs logBuffer
	cfg := testenv.LoadConfig(t, pipelineYAML(src, dst, "", fmt.Sprintf("on_conflict: stop\nworkers: %d", workers)))
	if err := runCaptured(t, cfg, &logs); err != nil {
		t.Fatalf("%v\n%s", err, logs.String())
	}
	sameTables(t, src, dst, "app.parent", "app.child", "app.note", "app.grandchild")
}
