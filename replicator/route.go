package replicator

import (
	"log/slog"
	"slices"

	"github.com/sluice-cdc/sluice/binlog"
	"github.com/sluice-cdc/sluice/binlog/schema"
	"github.com/sluice-cdc/sluice/config"
)

// router shapes one source's transactions for the pipeline's sink: it
// drops the row operations the pipeline does not want, renames tables by
// the pipeline's routes (adding the columns that say where a row came
// from), and drops what a pipeline replicating the other way applied to
// this source, so that a bidirectional pair does not ping-pong.
type router struct {
	pipeline *config.Pipeline
	source   string
	ops      map[binlog.Op]bool
	allOps   bool
	// loop holds the marks of pipelines that write into this source what
	// they read from this pipeline's sink.
	loop map[binlog.Mark]bool
	log  *slog.Logger

	cache map[*binlog.Table]*routedTable
}

type routedTable struct {
	table *binlog.Table
	extra []binlog.Value // appended to each image
}

func newRouter(p *config.Pipeline, s *config.Source, loop map[binlog.Mark]bool, log *slog.Logger) *router {
	r := &router{pipeline: p, source: s.Name, ops: s.Ops, loop: loop, log: log,
		cache: map[*binlog.Table]*routedTable{}}
	r.allOps = len(s.Ops) == 0 || s.Ops[binlog.Insert] && s.Ops[binlog.Update] && s.Ops[binlog.Delete]
	return r
}

// route returns the transaction to deliver. quiet reports a transaction
// that holds nothing but another pipeline's checkpoint: it is not even
// checkpointed, as writing that checkpoint would be read back by the
// other pipeline, whose checkpoint would be read back here, forever.
func (r *router) route(t *binlog.Txn) (out *binlog.Txn, quiet bool, err error) {
	for _, m := range t.Marks {
		if !r.loop[m] {
			continue
		}
		if t.Len() == 0 && t.DDL == nil && t.Catalog == nil {
			return t, true, nil
		}
		r.log.Debug("transaction applied here by the reverse pipeline: not sent back", "gtid", t.GTID.String(), "by", m.Pipeline+"/"+m.Source)
		t.DDL = nil
		out, err := t.Map(func(*binlog.Change) bool { return false }, nil)
		return out, false, err
	}
	if t.DDL != nil {
		r.routeDDL(t)
	}
	var keep func(*binlog.Change) bool
	var rename func(*binlog.Change) *binlog.Change
	if !r.allOps {
		keep = r.keep
	}
	if len(r.pipeline.Routes) > 0 {
		rename = r.rename
	}
	if t.Len() == 0 || keep == nil && rename == nil {
		return t, false, nil
	}
	out, err = t.Map(keep, rename)
	return out, false, err
}

// routeDDL points a statement about a routed table at the target table.
func (r *router) routeDDL(t *binlog.Txn) {
	if len(r.pipeline.Routes) == 0 {
		return
	}
	var mode schema.SQLMode
	if t.DDL.Session != nil {
		mode = schema.SQLMode(t.DDL.Session.SQLMode)
	}
	// Every table the statement names is routed (RENAME TABLE a TO b,
	// c TO a names a twice); the first routed one decides about merging.
	var rt *config.Route
	sql, ok := schema.RewriteTables(t.DDL.Schema, t.DDL.SQL, mode, func(tr schema.TableRef) (string, string, bool) {
		route := r.pipeline.Route(tr.Schema, tr.Name)
		if route == nil {
			return "", "", false
		}
		if rt == nil {
			rt = route
		}
		return route.Schema, route.Table, true
	})
	if !ok {
		return
	}
	d := *t.DDL
	d.SQL = sql
	d.Merged = rt.Merging(r.pipeline)
	for _, c := range []string{rt.SourceColumn, rt.SchemaColumn, rt.TableColumn} {
		if c != "" {
			d.RouteColumns = append(d.RouteColumns, c)
		}
	}
	t.DDL = &d
}

// keep drops the row operations the pipeline does not want.
func (r *router) keep(c *binlog.Change) bool { return r.ops[c.Op] }

// rename points a change of a routed table at the target table.
func (r *router) rename(c *binlog.Change) *binlog.Change {
	rt := r.routed(c.Table)
	if rt == nil {
		return c
	}
	n := *c
	n.Table = rt.table
	if c.Before != nil {
		n.Before = append(slices.Clip(c.Before), rt.extra...)
	}
	if c.After != nil {
		n.After = append(slices.Clip(c.After), rt.extra...)
	}
	return &n
}

// routed returns the renamed form of a source table, or nil when no route
// matches it. Tables are cached by identity: the decoder shares one
// *binlog.Table per table definition.
func (r *router) routed(t *binlog.Table) *routedTable {
	if rt, ok := r.cache[t]; ok {
		return rt
	}
	if len(r.cache) > 10000 { // definitions replaced by DDL linger otherwise
		clear(r.cache)
	}
	route := r.pipeline.Route(t.Schema, t.Name)
	if route == nil {
		r.cache[t] = nil
		return nil
	}
	nt := *t
	nt.Schema, nt.Name = route.Schema, route.Table
	nt.Columns = slices.Clip(t.Columns)
	nt.PK = slices.Clip(t.PK)
	rt := &routedTable{table: &nt}
	for _, x := range []struct{ col, val string }{{route.SourceColumn, r.source}, {route.SchemaColumn, t.Schema}, {route.TableColumn, t.Name}} {
		if x.col == "" {
			continue
		}
		// The added columns identify the row together with the source's
		// key: shards may reuse key values. (A source table without a key
		// is matched on all its columns, which include these.)
		if len(t.PK) > 0 {
			nt.PK = append(nt.PK, len(nt.Columns))
		}
		nt.Columns = append(nt.Columns, binlog.Column{Name: x.col, Type: typeVarchar, SQLType: "varchar(255)", Charset: "utf8mb4"})
		rt.extra = append(rt.extra, x.val)
	}
	r.cache[t] = rt
	return rt
}

// typeVarchar is MYSQL_TYPE_VARCHAR, the binlog type of the added columns.
const typeVarchar = 15
