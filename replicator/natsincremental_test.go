package replicator_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sluice-cdc/sluice/checkpoint"
	"github.com/sluice-cdc/sluice/config"
	"github.com/sluice-cdc/sluice/internal/testenv"
	"github.com/sluice-cdc/sluice/replicator"
)

// TestNATSIncrementalSnapshotFormats adds a table to running NATS
// pipelines in the three formats by an incremental snapshot requested
// with nothing but the stream: each row becomes one read event (Debezium
// op "r" with source.snapshot "incremental", Canal INSERT with the
// Sluice-Snapshot header, sluice's "snapshot": true), and the table's
// changes made after the copy follow as ordinary events.
func TestNATSIncrementalSnapshotFormats(t *testing.T) {
	src := testenv.StartMariaDB(t, testenv.MariaDBOptions{})
	n := testenv.StartNATS(t)
	src.Exec(t, snapshotSchema("app", 60)...)
	formats := []struct{ name, format string }{{"sluice", "sluice"}, {"debezium", "debezium"}, {"canal", "canal"}}
	yaml := func(exclude string) string {
		y := "\nhttp: {listen: \"off\"}\npipelines:\n"
		for _, f := range formats {
			y += fmt.Sprintf(`  - name: %s
    sources:
      - {name: primary, dsn: "%s", start: current, include: ["app.*"]%s}
    sink:
      type: nats
      url: %s
      stream: {name: INC%s, create: true}
      subject: "inc%s.{schema}.{table}"
      ddl_subject: "inc%s._ddl"
      format: %s
      mode: row
`, f.name, src.DSN(), exclude, n.URL(), strings.ToUpper(f.name), f.name, f.name, f.format)
		}
		return y
	}
	before, after := testenv.LoadConfig(t, yaml(`, exclude: ["app.ukey"]`)), testenv.LoadConfig(t, yaml(""))
	r, err := replicator.New(before, replicator.Options{Logger: testenv.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runErr := startStreaming(t, ctx, r, len(formats))
	src.Exec(t, "UPDATE app.ukey SET n = n + 1000 WHERE code = 'c3'") // before the table is included: not published
	// once the pipelines have read it (the change of filter applies from
	// where they stop reading).
	waitRead(t, r, src.QueryString(t, "SELECT @@gtid_binlog_pos"))
	for _, f := range formats {
		if err := replicator.RequestIncremental(ctx, after, replicator.RequestOptions{Pipeline: f.name, Tables: []string{"app.ukey"}, Logger: testenv.Logger()}); err != nil {
			t.Fatal(err)
		}
	}
	r.Reload(after)
	for i := range formats {
		waitNATSIncremental(t, ctx, after.Pipelines[i])
	}
	src.Exec(t, "UPDATE app.ukey SET n = n + 1 WHERE code = 'c5'", "DELETE FROM app.ukey WHERE code = 'c6'")
	// Published by the running process (the pipelines published nothing
	// before the copy: a restart would have no checkpoint to resume from).
	for _, f := range formats {
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
			evs := readEvents(t, n.URL(), "INC"+strings.ToUpper(f.name), f.format)
			if len(evs) > 0 && evs[len(evs)-1].op == "delete" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: the changes after the copy were not published", f.name)
			}
		}
	}
	cancel()
	if err := <-runErr; err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"sluice": "true", "debezium": "incremental", "canal": "incremental"}
	for _, f := range formats {
		t.Run(f.name, func(t *testing.T) {
			reads, keys := 0, map[string]bool{}
			var after []string
			for _, e := range readEvents(t, n.URL(), "INC"+strings.ToUpper(f.name), f.format) {
				if e.table != "app.ukey" {
					continue
				}
				if e.snapshot == "" {
					after = append(after, e.op)
					continue
				}
				if len(after) > 0 {
					t.Fatalf("a read event after the table's changes")
				}
				if e.op != "read" || e.snapshot != want[f.name] {
					t.Errorf("read event op %s, snapshot %q; want read, %q", e.op, e.snapshot, want[f.name])
				}
				reads++
				keys[e.key] = true
			}
			if reads != 30 || len(keys) != 30 {
				t.Errorf("%d read events of %d keys, want 30 of 30", reads, len(keys))
			}
			if got := strings.Join(after, " "); got != "update delete" {
				t.Errorf("after the copy: %s, want update delete", got)
			}
		})
	}
}

// startStreaming runs r until ctx ends and waits until its n sources
// stream; the run's error comes on the channel.
func startStreaming(t *testing.T, ctx context.Context, r *replicator.Replicator, n int) <-chan error {
	t.Helper()
	runErr := make(chan error, 1)
	go func() { runErr <- r.Run(ctx) }()
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
		st := r.Status()
		streaming := 0
		for _, s := range st {
			if s.State == "streaming" {
				streaming++
			}
		}
		if streaming == n {
			return runErr
		}
		select {
		case err := <-runErr:
			t.Fatalf("sluice run ended: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("not streaming: %+v", st)
		}
	}
}

// waitRead waits until every source of r has read up to gtid.
func waitRead(t *testing.T, r *replicator.Replicator, gtid string) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		read := 0
		st := r.Status()
		for _, s := range st {
			if s.CheckpointGTID == gtid {
				read++
			}
		}
		if read == len(st) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the sources did not read up to %s: %+v", gtid, st)
		}
	}
}

// waitNATSIncremental waits until a NATS pipeline's source "primary" has
// one incremental snapshot, done.
func waitNATSIncremental(t *testing.T, ctx context.Context, p *config.Pipeline) {
	t.Helper()
	sink, err := replicator.OpenSink(ctx, p, replicator.SinkOptions{Logger: testenv.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	for deadline := time.Now().Add(5 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
		list, err := sink.(interface {
			IncrementalSnapshots(context.Context, string) ([]checkpoint.IncrementalSnapshot, error)
		}).IncrementalSnapshots(ctx, "primary")
		if err != nil {
			t.Fatal(err)
		}
		if len(list) == 1 && list[0].State == checkpoint.IncrementalDone {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pipeline %s's incremental snapshot: %+v", p.Name, list)
		}
	}
}
