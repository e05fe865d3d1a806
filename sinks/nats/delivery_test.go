package nats_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluice-cdc/sluice/binlog"
	"github.com/sluice-cdc/sluice/internal/testenv"
)

// assembled is what a consumer rebuilds from the stream: each transaction
// once, with its rows.
type assembled struct {
	rows  map[string]int      // GTID -> rows received
	order map[string][]uint64 // "table/pk" -> GTID sequence numbers in stream order
	dups  []string
}

// assemble checks the delivery guarantees on a stream's messages: every
// Nats-Msg-Id once, chunks complete and in order, and each row of a key in
// commit order.
func assemble(t *testing.T, msgs []stored, mode string) assembled {
	t.Helper()
	a := assembled{rows: map[string]int{}, order: map[string][]uint64{}}
	ids := map[string]bool{}
	var chunks []byte
	for _, m := range msgs {
		id := m.header.Get("Nats-Msg-Id")
		if ids[id] {
			a.dups = append(a.dups, id)
		}
		ids[id] = true
		if m.header.Get("Sluice-Op") == "ddl" || m.header.Get("Sluice-Op") == "outbox" {
			continue
		}
		body := []byte(m.data)
		if c := m.header.Get("Sluice-Chunk"); c != "" {
			chunks = append(chunks, body...)
			k, n, _ := strings.Cut(c, "/")
			if k != n {
				continue
			}
			body, chunks = chunks, nil
		}
		gtid := m.header.Get("Sluice-GTID")
		var changes []struct {
			Table  string         `json:"table"`
			Before map[string]any `json:"before"`
			After  map[string]any `json:"after"`
		}
		if mode == "transaction" {
			var tx struct {
				Changes json.RawMessage `json:"changes"`
			}
			if err := json.Unmarshal(body, &tx); err != nil {
				t.Fatalf("message %d is not a transaction: %v", m.seq, err)
			}
			json.Unmarshal(tx.Changes, &changes)
		} else {
			var c struct {
				Table  string         `json:"table"`
				Before map[string]any `json:"before"`
				After  map[string]any `json:"after"`
			}
			if err := json.Unmarshal(body, &c); err != nil {
				t.Fatalf("message %d is not a row: %v", m.seq, err)
			}
			changes = append(changes, c)
		}
		a.rows[gtid] += len(changes)
		seq, _ := strconv.ParseUint(gtid[strings.LastIndexByte(gtid, '-')+1:], 10, 64)
		for _, c := range changes {
			img := c.After
			if img == nil {
				img = c.Before
			}
			key := fmt.Sprintf("%s/%v", c.Table, img["id"])
			if c.Table == "events" {
				continue // no key
			}
			a.order[key] = append(a.order[key], seq)
		}
	}
	return a
}

func checkDelivery(t *testing.T, want map[string]int, a assembled) {
	t.Helper()
	if len(a.dups) > 0 {
		t.Fatalf("%d message ids delivered twice, e.g. %s", len(a.dups), a.dups[0])
	}
	missing, extra := 0, 0
	for g, n := range want {
		if a.rows[g] != n {
			missing++
			if missing < 4 {
				t.Errorf("transaction %s: %d rows received, %d written", g, a.rows[g], n)
			}
		}
	}
	for g := range a.rows {
		if _, ok := want[g]; !ok {
			extra++
		}
	}
	if missing > 0 || extra > 0 {
		t.Fatalf("%d transactions incomplete or missing, %d unknown, of %d", missing, extra, len(want))
	}
	for key, seqs := range a.order {
		if !sort.SliceIsSorted(seqs, func(i, j int) bool { return seqs[i] < seqs[j] }) {
			t.Fatalf("changes of %s out of commit order: %v", key, seqs)
		}
	}
}

// TestDeliveryUnderLoad: a write load, published per transaction and per
// row, to a current nats-server (atomic batches) and to the machine's older
// one (numbered messages): every transaction arrives once, whole, and each
// key's changes in commit order.
func TestDeliveryUnderLoad(t *testing.T) {
	src := testenv.StartMariaDB(t, testenv.MariaDBOptions{})
	src.Exec(t, testenv.LoadSchema("bank", 30)...)
	load := testenv.StartLoad(t, src, "bank", 3)
	time.Sleep(3 * time.Second)
	load.Stop()
	want := testenv.SourceRowCounts(t, src, "bank")
	servers := map[string]*testenv.NATS{"embedded": testenv.StartNATS(t), "binary": testenv.StartNATSBinary(t, "")}
	for _, server := range []string{"embedded", "binary"} {
		for _, mode := range []string{"transaction", "row"} {
			t.Run(server+"/"+mode, func(t *testing.T) {
				n := servers[server]
				stream := "D_" + mode
				cfg := natsPipeline(t, src, n.URL(), fmt.Sprintf("mode: %s\nstream: {name: %s}\nsubject: \"%s.{schema}.{table}.{pk}\"\nddl_subject: %s._ddl", mode, stream, stream, stream))
				cfg.Pipelines[0].Sources[0].Include = []string{"bank.*"}
				cfg.Pipelines[0].Sources[0].Filter, _ = binlog.NewFilter([]string{"bank.*"}, nil)
				runToEnd(t, cfg)
				checkDelivery(t, want, assemble(t, readStream(t, n.URL(), stream), mode))
				// Running again publishes nothing more.
				before := len(readStream(t, n.URL(), stream))
				runToEnd(t, cfg)
				if after := len(readStream(t, n.URL(), stream)); after != before {
					t.Fatalf("a second run published %d more messages", after-before)
				}
			})
		}
	}
}

// TestLargeTransaction: 100,000 rows in one transaction arrive intact, as
// one transaction body split into chunks below the payload limit, and as
// 100,000 row messages in atomic batches of 1,000.
func TestLargeTransaction(t *testing.T) {
	src := testenv.StartMariaDB(t, testenv.MariaDBOptions{})
	src.Exec(t, "CREATE DATABASE app", "USE app", "CREATE TABLE app.big (id INT PRIMARY KEY, v VARCHAR(40))",
		"INSERT INTO app.big SELECT seq, CONCAT('row number ', seq) FROM seq_1_to_100000")
	want := testenv.SourceRowCounts(t, src, "app")
	n := testenv.StartNATS(t)
	for _, mode := range []string{"transaction", "row"} {
		t.Run(mode, func(t *testing.T) {
			stream := "L_" + mode
			cfg := natsPipeline(t, src, n.URL(), fmt.Sprintf("mode: %s\nstream: {name: %s}\nsubject: \"%s.{schema}.{table}\"\nddl_subject: %s._ddl", mode, stream, stream, stream))
			runToEnd(t, cfg)
			msgs := readStream(t, n.URL(), stream)
			chunked := 0
			for _, m := range msgs {
				if m.header.Get("Sluice-Chunk") != "" {
					chunked++
				}
			}
			if mode == "transaction" && chunked < 2 {
				t.Fatalf("a 100,000-row transaction body was not split (%d chunks)", chunked)
			}
			checkDelivery(t, want, assemble(t, msgs, mode))
		})
	}
}

// TestNATSRestart: the NATS server is killed and restarted during the
// publishing of a backlog; nothing is lost and nothing duplicated.
func TestNATSRestart(t *testing.T) {
	src := testenv.StartMariaDB(t, testenv.MariaDBOptions{})
	src.Exec(t, testenv.LoadSchema("bank", 30)...)
	load := testenv.StartLoad(t, src, "bank", 3)
	time.Sleep(3 * time.Second)
	load.Stop()
	want := testenv.SourceRowCounts(t, src, "bank")
	n := testenv.StartNATSBinary(t, "")
	cfg := natsPipeline(t, src, n.URL(), "mode: row\nstream: {name: R}\nsubject: \"r.{schema}.{table}\"\nddl_subject: r._ddl")
	cfg.Pipelines[0].Sources[0].Filter, _ = binlog.NewFilter([]string{"bank.*"}, nil)
	go func() {
		time.Sleep(700 * time.Millisecond)
		n.Kill()
		time.Sleep(time.Second)
		if err := n.Start(); err != nil {
			panic(err)
		}
	}()
	runToEnd(t, cfg)
	checkDelivery(t, want, assemble(t, readStream(t, n.URL(), "R"), "row"))
}

// TestConnectionErrors: a wrong URL and a user without permission on the
// subjects each give an error that says what to change.
func TestConnectionErrors(t *testing.T) {
	src := testenv.StartMariaDB(t, testenv.MariaDBOptions{})
	src.Exec(t, "CREATE DATABASE app", "CREATE TABLE app.t (id INT PRIMARY KEY)", "INSERT INTO app.t VALUES (1)")
	run := func(cfgYAML, url string) error {
		cfg := natsPipeline(t, src, url, cfgYAML)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		return runErr(ctx, cfg)
	}
	err := run("stream: {name: X}", "nats://127.0.0.1:1")
	if err == nil || !strings.Contains(err.Error(), "cannot connect to NATS at nats://127.0.0.1:1") {
		t.Fatalf("wrong URL: %v", err)
	}
	// A user who may use JetStream but publish only on "other.>".
	n := testenv.StartNATSBinary(t, `
accounts {
  A {
    jetstream: enabled
    users: [
      {user: admin, password: adminpw},
      {user: limited, password: s3cretpw, permissions: {publish: {allow: ["$JS.API.>", "other.>"]}, subscribe: {allow: ["_INBOX.>"]}}}
    ]
  }
}`)
	admin, _ := natsgo.Connect(fmt.Sprintf("nats://admin:adminpw@127.0.0.1:%d", n.Port))
	js, _ := jetstream.New(admin)
	if _, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: "P", Subjects: []string{"cdc.>"}}); err != nil {
		t.Fatal(err)
	}
	admin.Close()
	err = run("stream: {name: P, create: false}", fmt.Sprintf("nats://limited:s3cretpw@127.0.0.1:%d", n.Port))
	if err == nil || !strings.Contains(err.Error(), "grant this NATS user publish permission") || strings.Contains(err.Error(), "s3cretpw") {
		t.Fatalf("missing permission: %v", err)
	}
	err = run("stream: {name: Missing, create: false}", fmt.Sprintf("nats://admin:adminpw@127.0.0.1:%d", n.Port))
	if err == nil || !strings.Contains(err.Error(), `stream "Missing" does not exist`) {
		t.Fatalf("missing stream: %v", err)
	}
}
