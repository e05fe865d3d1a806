package nats

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/sluice-cdc/sluice/binlog"
	"github.com/sluice-cdc/sluice/mysqlconn"
	"github.com/sluice-cdc/sluice/sqltext"
)

// The transactional outbox ("local message table") pattern: the
// application inserts a message row in the same transaction as its data;
// sluice relays each inserted row as a NATS message whose subject, id and
// payload come from the row's columns, as Debezium's outbox event router
// does. The message id is the row's own id, so JetStream de-duplicates a
// message relayed twice. Rows of an outbox table never go out as change
// events, and only inserts are relayed (deletes and updates are cleanup).

type outboxMsg struct {
	table   string
	subject string
	id      string
	payload []byte
	headers map[string]string
	key     binlog.Value
	// err: the row cannot be relayed (its table lacks a configured column).
	err error
}

type outboxRelay struct {
	routes map[string]Outbox // by db.table
	dsns   map[string]mysqlconn.DSN
	log    *slog.Logger

	mu  sync.Mutex
	dbs map[string]*sql.DB // per source, for deletes
}

func newOutboxRelay(routes []Outbox, dsns map[string]mysqlconn.DSN, log *slog.Logger) (*outboxRelay, error) {
	r := &outboxRelay{routes: map[string]Outbox{}, dsns: dsns, log: log, dbs: map[string]*sql.DB{}}
	for _, o := range routes {
		if !strings.Contains(o.Table, ".") {
			return nil, fmt.Errorf("outbox table %q: want db.table", o.Table)
		}
		r.routes[o.Table] = o
	}
	return r, nil
}

// route reports whether c is on an outbox table and, for an insert, the
// message to relay.
func (r *outboxRelay) route(c *binlog.Change) (*outboxMsg, bool) {
	o, ok := r.routes[c.Table.QualifiedName()]
	if !ok {
		return nil, false
	}
	if c.Op != binlog.Insert {
		return nil, true
	}
	col := func(name string) binlog.Value {
		if i := c.Table.ColumnIndex(name); i >= 0 && i < len(c.After) {
			return c.After[i]
		}
		return nil
	}
	text := func(v binlog.Value) string {
		if v == nil {
			return ""
		}
		if s, ok := binlog.Text(v); ok {
			return s
		}
		return string(binlog.AppendValueJSON(nil, v))
	}
	for _, name := range []string{o.KeyColumn, o.SubjectColumn, o.PayloadColumn} {
		if c.Table.ColumnIndex(name) < 0 {
			// Without its key every message would get the same id, and
			// JetStream's de-duplication would drop all but the first.
			return &outboxMsg{err: fmt.Errorf("outbox table %s has no column %q (its columns: %s); fix the outbox's key_column, subject_column or payload_column",
				o.Table, name, strings.Join(c.Table.ColumnNames(), ", "))}, true
		}
	}
	key := col(o.KeyColumn)
	subj := strings.Trim(strings.Map(func(r rune) rune {
		if r == ' ' || r == '*' || r == '>' || r < 0x20 {
			return '_'
		}
		return r
	}, text(col(o.SubjectColumn))), ".")
	if subj == "" {
		subj = "_"
	}
	return &outboxMsg{
		table:   o.Table,
		subject: o.SubjectPrefix + subj,
		id:      "outbox|" + o.Table + "|" + text(key),
		payload: []byte(text(col(o.PayloadColumn))),
		headers: map[string]string{"Sluice-Outbox-Key": text(key)},
		key:     key,
	}, true
}

// deleteRelayed deletes relayed rows from their outbox tables (delete:
// true), once their messages are acknowledged. A failure is logged: the
// rows stay, and are not relayed again (only inserts are).
func (r *outboxRelay) deleteRelayed(ctx context.Context, source string, txns []*binlog.Txn) {
	type keyValue struct {
		col *binlog.Column
		v   binlog.Value
	}
	keys := map[string][]keyValue{}
	for _, t := range txns {
		for c, err := range t.Changes() {
			if err != nil {
				break
			}
			o, ok := r.routes[c.Table.QualifiedName()]
			if !ok || !o.Delete || c.Op != binlog.Insert {
				continue
			}
			if i := c.Table.ColumnIndex(o.KeyColumn); i >= 0 {
				keys[o.Table] = append(keys[o.Table], keyValue{&c.Table.Columns[i], c.After[i]})
			}
		}
	}
	if len(keys) == 0 {
		return
	}
	db, err := r.db(ctx, source)
	if err != nil {
		r.log.Warn("outbox rows not deleted", "source", source, "error", err.Error())
		return
	}
	for table, vals := range keys {
		o := r.routes[table]
		schema, name, _ := strings.Cut(table, ".")
		for len(vals) > 0 {
			n := min(len(vals), 500)
			q := []byte("DELETE FROM " + sqltext.QualifiedName(schema, name) + " WHERE " + sqltext.QuoteIdent(o.KeyColumn) + " IN (")
			for i, v := range vals[:n] {
				if i > 0 {
					q = append(q, ',')
				}
				q = sqltext.AppendLiteral(q, v.col, v.v)
			}
			q = append(q, ')')
			if _, err := db.ExecContext(ctx, string(q)); err != nil {
				r.log.Warn("outbox rows not deleted", "table", table, "error", err.Error())
			}
			vals = vals[n:]
		}
	}
}

func (r *outboxRelay) db(ctx context.Context, source string) (*sql.DB, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if db := r.dbs[source]; db != nil {
		return db, nil
	}
	d, ok := r.dsns[source]
	if !ok {
		return nil, fmt.Errorf("no connection for source %s", source)
	}
	db, err := mysqlconn.Open(ctx, d, nil)
	if err != nil {
		return nil, err
	}
	r.dbs[source] = db
	return db, nil
}

func (r *outboxRelay) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, db := range r.dbs {
		db.Close()
	}
}
