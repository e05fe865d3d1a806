package schema

import "testing"

func TestLowerNames(t *testing.T) {
	for _, c := range []struct{ db, sql, want string }{
		{"Shop", "CREATE TABLE Orders (Id INT)", "CREATE TABLE `shop`.`orders` (Id INT)"},
		{"shop", "ALTER TABLE `Sh``op`.Orders ADD c INT", "ALTER TABLE `sh``op`.`orders` ADD c INT"},
		{"shop", "RENAME TABLE A TO b, c TO D", "RENAME TABLE `shop`.`a` TO b, c TO `shop`.`d`"},
		{"shop", "CREATE INDEX Iv ON Orders (V)", "CREATE INDEX Iv ON `shop`.`orders` (V)"},
		{"", "CREATE DATABASE IF NOT EXISTS Shop CHARACTER SET latin1", "CREATE DATABASE IF NOT EXISTS `shop` CHARACTER SET latin1"},
		{"", "DROP SCHEMA `My``Db`", "DROP SCHEMA `my``db`"},
		{"shop", "CREATE TABLE orders (id INT)", "CREATE TABLE orders (id INT)"},
		{"shop", "CREATE TABLE Items (o INT, FOREIGN KEY (o) REFERENCES Orders(Id))", "CREATE TABLE `shop`.`items` (o INT, FOREIGN KEY (o) REFERENCES orders(Id))"},
		{"shop", "ALTER TABLE items ADD FOREIGN KEY (o) REFERENCES `Sh`.`Orders` (id)", "ALTER TABLE items ADD FOREIGN KEY (o) REFERENCES `sh`.`orders` (id)"},
		{"shop", "CREATE PROCEDURE P() SELECT 1", "CREATE PROCEDURE P() SELECT 1"},
	} {
		got, changed := LowerNames(c.db, c.sql, 0)
		if got != c.want || changed != (c.sql != c.want) {
			t.Errorf("LowerNames(%q, %q) = %q, %v; want %q", c.db, c.sql, got, changed, c.want)
		}
	}
}
