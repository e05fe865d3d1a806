package mysql

import (
	"context"
	"fmt"
	"strings"

	"github.com/sluice-cdc/sluice/binlog"
	"github.com/sluice-cdc/sluice/binlog/schema"
)

// Letter case of database and table names, when source and target differ
// in lower_case_table_names.
//
// A source with lower_case_table_names=1 stores names in lower case and
// logs rows under them, but logs a DDL as it was typed: CREATE TABLE
// Shop.Orders made shop.orders. On a target that compares names by case
// (0), that statement would make Shop.Orders, and the rows for shop.orders
// would find no table. So the names such a DDL changes are lowered first.
//
// A target that folds case (1 or 2) stores the tables Orders and orders of
// a case-sensitive source as one table. Rather than merge them, a DDL that
// makes two tracked tables differ only in case stops the pipeline.

// targetLowerCase reads the target's lower_case_table_names. DDL is rare:
// it is read for each statement, on the applier's connection.
func (a *applier) targetLowerCase(ctx context.Context) (int, error) {
	if err := a.ensureConn(ctx); err != nil {
		return 0, err
	}
	var n int
	if err := a.conn.QueryRowContext(ctx, "SELECT @@lower_case_table_names").Scan(&n); err != nil {
		return 0, fmt.Errorf("read the target's lower_case_table_names: %w", err)
	}
	return n, nil
}

// ddlForTarget returns t's statement with its names in the case the target
// must store them, or an error when the target would merge two tables.
func (a *applier) ddlForTarget(ctx context.Context, t *binlog.Txn) (*binlog.DDL, error) {
	d := t.DDL
	sensitiveSource := t.Catalog != nil && !t.Catalog.FoldCase
	if !d.StoresLower && !sensitiveSource {
		return d, nil
	}
	lctn, err := a.targetLowerCase(ctx)
	if err != nil {
		return nil, err
	}
	switch {
	case d.StoresLower && lctn == 0:
		n := *d
		n.SQL, _ = schema.LowerNames(d.Schema, d.SQL, ddlMode(d))
		n.Schema = strings.ToLower(d.Schema)
		return &n, nil
	case sensitiveSource && lctn != 0:
		st := schema.Classify(d.Schema, d.SQL, ddlMode(d))
		for _, tr := range st.Tables {
			if other := caseTwin(t.Catalog, tr); other != nil {
				return nil, fmt.Errorf("DDL %s: the source has the tables %s.%s and %s.%s, whose names differ only in letter case; "+
					"the target (lower_case_table_names=%d) would store them as one table. "+
					"Exclude one of them from the pipeline, or route it to another name, or use a target with lower_case_table_names=0",
					t.ID(), tr.Schema, tr.Name, other.Schema, other.Name, lctn)
			}
		}
	}
	return d, nil
}

// caseTwin returns a tracked table whose database and name equal tr's but
// for letter case, and which is not tr itself.
func caseTwin(c *schema.Catalog, tr schema.TableRef) *schema.Table {
	if c.Table(tr.Schema, tr.Name) == nil {
		return nil // dropped or renamed away by the statement
	}
	for _, o := range c.Tables() {
		if strings.EqualFold(o.Schema, tr.Schema) && strings.EqualFold(o.Name, tr.Name) && (o.Schema != tr.Schema || o.Name != tr.Name) {
			return o
		}
	}
	return nil
}
