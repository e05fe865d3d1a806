package nats_test

import (
	"context"
	"strings"
	"testing"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluice-cdc/sluice/internal/testenv"
)

// TestOutboxRelay: rows inserted into an outbox table become messages whose
// subject, id and payload come from the row; the outbox table's rows never
// go out as change events; relayed rows are deleted from the source.
func TestOutboxRelay(t *testing.T) {
	src := testenv.StartMariaDB(t, testenv.MariaDBOptions{})
	n := testenv.StartNATS(t)
	src.Exec(t, "CREATE DATABASE app",
		"CREATE TABLE app.orders (id INT PRIMARY KEY, total DECIMAL(10,2))",
		"CREATE TABLE app.outbox (id VARCHAR(36) PRIMARY KEY, topic VARCHAR(100), payload JSON, created TIMESTAMP DEFAULT CURRENT_TIMESTAMP)",
		"BEGIN", "INSERT INTO app.orders VALUES (1, 9.99)",
		`INSERT INTO app.outbox (id, topic, payload) VALUES ('evt-1', 'order.created', '{"order": 1, "total": 9.99}')`, "COMMIT",
		"BEGIN", "UPDATE app.orders SET total = 12 WHERE id = 1",
		`INSERT INTO app.outbox (id, topic, payload) VALUES ('evt-2', 'order.updated', '{"order": 1, "total": 12}')`, "COMMIT",
	)
	cfg := natsPipeline(t, src, n.URL(), `
stream: {name: OB}
subject: "cdc.{schema}.{table}"
ddl_subject: cdc._ddl
outbox:
  - {table: app.outbox, subject_column: topic, key_column: id, payload_column: payload, subject_prefix: "events.", delete: true}
`)
	runToEnd(t, cfg)
	msgs := readStream(t, n.URL(), "OB")
	var outbox, cdc []stored
	for _, m := range msgs {
		switch {
		case strings.HasPrefix(m.subject, "events."):
			outbox = append(outbox, m)
		case m.subject == "cdc._txn": // mode transaction: whole transactions on the transaction subject
			cdc = append(cdc, m)
			if strings.Contains(m.data, `"table":"outbox"`) {
				t.Fatalf("an outbox row went out as a change event: %s", m.data)
			}
		}
	}
	if len(outbox) != 2 || outbox[0].subject != "events.order.created" || outbox[1].subject != "events.order.updated" ||
		outbox[0].data != `{"order": 1, "total": 9.99}` || outbox[0].header.Get("Nats-Msg-Id") != "outbox|app.outbox|evt-1" {
		t.Fatalf("outbox messages: %+v", outbox)
	}
	if len(cdc) != 2 {
		t.Fatalf("%d change messages, want 2", len(cdc))
	}
	if n := src.QueryString(t, "SELECT COUNT(*) FROM app.outbox"); n != "0" {
		t.Fatalf("%s relayed rows left in the outbox", n)
	}
	// The deletes are read back from the binlog but not relayed again.
	runToEnd(t, cfg)
	if after := len(readStream(t, n.URL(), "OB")); after != len(msgs) {
		t.Fatalf("a second run published %d more messages", after-len(msgs))
	}
}

// TestKVCheckpoint: with checkpoint: kv, the position survives the stream
// losing its messages (a work-queue stream, a purge).
func TestKVCheckpoint(t *testing.T) {
	src := testenv.StartMariaDB(t, testenv.MariaDBOptions{})
	n := testenv.StartNATS(t)
	src.Exec(t, "CREATE DATABASE app", "CREATE TABLE app.t (id INT PRIMARY KEY)", "INSERT INTO app.t VALUES (1), (2)")
	cfg := natsPipeline(t, src, n.URL(), "stream: {name: KVS}\nsubject: \"kvs.{table}\"\nddl_subject: kvs._ddl\ncheckpoint: kv\nkv_bucket: ckpt")
	runToEnd(t, cfg)
	nc, _ := natsgo.Connect(n.URL())
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	kv, err := js.KeyValue(ctx, "ckpt")
	if err != nil {
		t.Fatal(err)
	}
	e, err := kv.Get(ctx, "p.primary")
	if err != nil || !strings.Contains(string(e.Value()), `"gtid":"0-`) {
		t.Fatalf("KV checkpoint: %v %s", err, e.Value())
	}
	st, _ := js.Stream(ctx, "KVS")
	if err := st.Purge(ctx); err != nil {
		t.Fatal(err)
	}
	src.Exec(t, "INSERT INTO app.t VALUES (3)")
	runToEnd(t, cfg)
	msgs := readStream(t, n.URL(), "KVS")
	if len(msgs) != 1 || !strings.Contains(msgs[0].data, `"after":{"id":3}`) {
		t.Fatalf("after a purge, want only the new transaction; got %d messages", len(msgs))
	}
}

// TestOutboxDeleteHostileKey: the outbox's DELETE of relayed rows runs on a
// source session under the server's own sql_mode; a key that breaks
// backslash escaping under NO_BACKSLASH_ESCAPES still deletes exactly its
// row and runs nothing else.
func TestOutboxDeleteHostileKey(t *testing.T) {
	src := testenv.StartMariaDB(t, testenv.MariaDBOptions{})
	n := testenv.StartNATS(t)
	src.Exec(t, "CREATE DATABASE app",
		"CREATE TABLE app.keep (id INT PRIMARY KEY)", "INSERT INTO app.keep VALUES (1)",
		"CREATE TABLE app.outbox (id VARCHAR(60) CHARACTER SET latin1 PRIMARY KEY, topic VARCHAR(100), payload TEXT)",
		`INSERT INTO app.outbox VALUES ('a\\''); DROP TABLE app.keep; -- ', 't', 'p1'), (_binary X'E9818D', 't', 'p2'), ('other', 't', 'p3')`,
		"SET GLOBAL sql_mode = CONCAT(@@GLOBAL.sql_mode, ',NO_BACKSLASH_ESCAPES,ANSI_QUOTES')",
	)
	cfg := natsPipeline(t, src, n.URL(), `
stream: {name: OBH}
subject: "cdc.{schema}.{table}"
ddl_subject: cdc._ddl
outbox:
  - {table: app.outbox, subject_column: topic, key_column: id, payload_column: payload, subject_prefix: "events.", delete: true}
`)
	runToEnd(t, cfg)
	if got := src.QueryString(t, "SELECT COUNT(*) FROM app.outbox"); got != "0" {
		t.Fatalf("%s relayed rows left in the outbox", got)
	}
	if got := src.QueryString(t, "SELECT COUNT(*) FROM app.keep"); got != "1" {
		t.Fatalf("app.keep has %s rows", got)
	}
}
