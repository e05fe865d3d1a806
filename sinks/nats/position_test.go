package nats_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/sluice-cdc/sluice/binlog"
	"github.com/sluice-cdc/sluice/checkpoint"
	"github.com/sluice-cdc/sluice/internal/testenv"
	"github.com/sluice-cdc/sluice/replicator"
	natssink "github.com/sluice-cdc/sluice/sinks/nats"
)

// TestPositionRecords: a source whose runs publish nothing still leaves a
// place to resume from in the stream. A pipeline started with start:
// current that published nothing, stopped, and run again must publish
// what was written while it was down (without the record it took
// "current" again and skipped it); and a source whose changes are all
// filtered out records how far it read, so that a restart does not read
// those binlogs again.
func TestPositionRecords(t *testing.T) {
	src := testenv.StartMariaDB(t, testenv.MariaDBOptions{})
	n := testenv.StartNATS(t)
	src.Exec(t, "CREATE DATABASE app", "CREATE TABLE app.t (id INT PRIMARY KEY, v VARCHAR(20))",
		"CREATE DATABASE other", "CREATE TABLE other.o (id INT PRIMARY KEY)", "INSERT INTO other.o VALUES (1)")
	cfg := testenv.LoadConfig(t, fmt.Sprintf(`
http: {listen: "off"}
pipelines:
  - name: p
    sources:
      - {name: primary, dsn: "%s", start: current, include: ["app.*"]}
    sink: {type: nats, url: %s, stream: {name: POS, create: true}, subject: "pos.{schema}.{table}", format: sluice, mode: row}
`, src.DSN(), n.URL()))

	runToEnd(t, cfg) // from the binlog's end: nothing to publish
	positions := func() []string {
		var out []string
		for _, m := range readStreamAll(t, n.URL(), "POS") {
			if m.header.Get(natssink.HdrOp) == "position" {
				out = append(out, m.header.Get(natssink.HdrCheckpoint))
			}
		}
		return out
	}
	if p := positions(); len(p) != 1 {
		t.Fatalf("%d position records after a run that published nothing, want 1", len(p))
	}

	src.Exec(t, "INSERT INTO app.t VALUES (1, 'while down')")
	runToEnd(t, cfg)
	var inserts int
	for _, m := range readStream(t, n.URL(), "POS") {
		if m.header.Get(natssink.HdrOp) == "insert" && strings.Contains(m.data, "while down") {
			inserts++
		}
	}
	if inserts != 1 {
		t.Fatalf("the insert made while sluice was stopped was published %d times, want once", inserts)
	}

	// Only filtered changes: recorded as the sink closes.
	src.Exec(t, "INSERT INTO other.o VALUES (2)", "INSERT INTO other.o VALUES (3)")
	gtid := src.QueryString(t, "SELECT @@gtid_binlog_pos")
	runToEnd(t, cfg)
	if p := positions(); len(p) != 2 || p[1] != gtid {
		t.Fatalf("position records %q after filtered changes up to %s; want a second one at it", p, gtid)
	}

	// And while running, once positionEvery has passed (a kill -9 skips
	// the one on closing).
	defer natssink.SetPositionEvery(0)()
	r, err := replicator.New(cfg, replicator.Options{Logger: testenv.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- r.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-runErr; err != nil {
			t.Error(err)
		}
	}()
	src.Exec(t, "INSERT INTO other.o VALUES (4)")
	gtid = src.QueryString(t, "SELECT @@gtid_binlog_pos")
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
		if p := positions(); p[len(p)-1] == gtid {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no position record at %s while running: %q", gtid, positions())
		}
	}
}

// TestIncrementalChunkResumePoint: an incremental snapshot chunk of more
// rows than recovery looks back through (scanLimit, 10,000 messages),
// published last, must not hide where the source resumes. Without the
// checkpoint on the chunk's read events a restart found no message of the
// source and went back to its configured start, publishing everything
// again (seen in TestNATSIncrementalSnapshotKillResume). Twice: a chunk
// written after this process published a transaction, and one written by
// a process that has published nothing yet (it knows the stream's position
// only from recovery).
func TestIncrementalChunkResumePoint(t *testing.T) {
	n := testenv.StartNATS(t)
	ctx := context.Background()
	open := func() *natssink.Sink {
		s, err := natssink.Open(ctx, natssink.Config{URL: n.URL(), Pipeline: "p", Stream: "INCR", CreateStream: true,
			Subject: "incr.{schema}.{table}", DDLSubject: "incr._ddl", Format: "sluice", Mode: "row", Checkpoint: "stream",
			Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	txns := benchTxns(3, 1)
	want := txns[2].Executed.String()
	tb := &binlog.Table{Schema: "shop", Name: "big", NamesKnown: true, PK: []int{0},
		Columns: []binlog.Column{{Name: "id", Type: mysql.MYSQL_TYPE_LONG}}}
	chunk := func(s *natssink.Sink, k int) {
		t.Helper()
		var rows []*binlog.Change
		for i := range 10500 {
			rows = append(rows, &binlog.Change{Table: tb, Op: binlog.Insert, After: []binlog.Value{int64(k*10500 + i)}})
		}
		st := checkpoint.IncrementalSnapshot{Schema: "shop", Table: "big", State: checkpoint.IncrementalRunning,
			Chunks: uint64(k + 1), RowsRead: uint64((k + 1) * 10500), After: []byte(fmt.Sprintf("id > %d", (k+1)*10500-1))}
		if err := s.WriteIncrementalChunk(ctx, "primary", st, tb, nil, rows); err != nil {
			t.Fatal(err)
		}
	}
	resumes := func(what string) {
		t.Helper()
		s := open()
		defer s.Close()
		st, found, err := s.Checkpoint(ctx, "primary")
		if err != nil || !found || st.GTID.String() != want {
			t.Fatalf("%s: resumes from %q (found %v, %v), want %s", what, st.GTID, found, err, want)
		}
	}

	s := open()
	if _, err := s.ApplyBatch(ctx, "primary", txns); err != nil {
		t.Fatal(err)
	}
	chunk(s, 0)
	s.Close()
	resumes("after a chunk published by the process that published the source's transactions")

	s = open()
	if _, _, err := s.Checkpoint(ctx, "primary"); err != nil { // as the replicator does first
		t.Fatal(err)
	}
	chunk(s, 1)
	s.Close()
	resumes("after a chunk published by a process that published nothing else")
}
