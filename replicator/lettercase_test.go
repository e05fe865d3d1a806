package replicator_test

import (
	"strings"
	"testing"

	"github.com/sluice-cdc/sluice/internal/testenv"
)

// Source and target with different lower_case_table_names (issue 14 item
// 13): the target stores the names the source stores, or the pipeline stops
// before it merges two tables.
func TestLetterCaseSourceAndTarget(t *testing.T) {
	folding := testenv.MariaDBOptions{Args: []string{"--lower-case-table-names=1"}}

	t.Run("source folds, target does not", func(t *testing.T) {
		src, dst := testenv.StartMariaDB(t, folding), testenv.StartMariaDB(t, testenv.MariaDBOptions{})
		src.Exec(t,
			"CREATE DATABASE App",
			"CREATE TABLE App.Orders (id INT PRIMARY KEY, v VARCHAR(10))",
			"INSERT INTO app.ORDERS VALUES (1, 'a')",
			"ALTER TABLE APP.Orders ADD c INT NOT NULL DEFAULT 5",
			"INSERT INTO App.orders VALUES (2, 'b', 7)",
			"USE App",
			"CREATE TABLE Items (id INT PRIMARY KEY)",
			"INSERT INTO items VALUES (1)",
			"RENAME TABLE Items TO Things",
			"CREATE INDEX Iv ON Orders (v)",
			"INSERT INTO THINGS VALUES (2)",
			"UPDATE Orders SET v = 'z' WHERE id = 1",
			"CREATE TABLE OrderLines (o INT, FOREIGN KEY (o) REFERENCES Orders (id)) ENGINE=InnoDB",
			"INSERT INTO orderLINES VALUES (1)",
		)
		var logs logBuffer
		cfg := testenv.LoadConfig(t, pipelineYAML(src, dst, "", ""))
		if err := runCaptured(t, cfg, &logs); err != nil {
			t.Fatalf("%v\n%s", err, logs.String())
		}
		sameTables(t, src, dst, "app.orders", "app.things", "app.orderlines")
		if got := dst.QueryString(t, "SELECT GROUP_CONCAT(CONCAT(TABLE_SCHEMA, '.', TABLE_NAME) ORDER BY 1) FROM information_schema.TABLES WHERE TABLE_SCHEMA LIKE 'app'"); got != "app.orderlines,app.orders,app.things" {
			t.Errorf("target tables %q, want app.orderlines,app.orders,app.things", got)
		}
	})

	t.Run("target folds, source does not", func(t *testing.T) {
		src, dst := testenv.StartMariaDB(t, testenv.MariaDBOptions{}), testenv.StartMariaDB(t, folding)
		src.Exec(t,
			"CREATE DATABASE app",
			"CREATE TABLE app.Orders (id INT PRIMARY KEY)",
			"INSERT INTO app.Orders VALUES (1)",
		)
		var logs logBuffer
		cfg := testenv.LoadConfig(t, pipelineYAML(src, dst, "", ""))
		if err := runCaptured(t, cfg, &logs); err != nil {
			t.Fatalf("%v\n%s", err, logs.String())
		}
		if got := dst.QueryString(t, "SELECT COUNT(*) FROM app.orders"); got != "1" {
			t.Errorf("target app.orders has %s rows, want 1", got)
		}
		src.Exec(t,
			"CREATE TABLE app.orders (id INT PRIMARY KEY, x INT)",
			"INSERT INTO app.orders VALUES (1, 2)",
		)
		err := runCaptured(t, cfg, &logs)
		if err == nil || !strings.Contains(err.Error(), "differ only in letter case") || !strings.Contains(err.Error(), "app.Orders") {
			t.Fatalf("got %v, want a stop naming app.orders and app.Orders", err)
		}
		if got := dst.QueryString(t, "SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'app' AND TABLE_NAME = 'orders'"); got != "1" {
			t.Errorf("the target's app.orders has %s columns, want 1 (unchanged)", got)
		}
	})
}
