package nats_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluice-cdc/sluice/binlog"
	"github.com/sluice-cdc/sluice/internal/testenv"
	natssink "github.com/sluice-cdc/sluice/sinks/nats"
)

// benchTxns builds n transactions of rows rows each, like an OLTP write.
func benchTxns(n, rows int) []*binlog.Txn {
	tb := &binlog.Table{Schema: "shop", Name: "orders", NamesKnown: true, PK: []int{0}, Columns: []binlog.Column{
		{Name: "id", Type: mysql.MYSQL_TYPE_LONG}, {Name: "customer", Type: mysql.MYSQL_TYPE_LONG},
		{Name: "total", Type: mysql.MYSQL_TYPE_NEWDECIMAL}, {Name: "status", Type: mysql.MYSQL_TYPE_VARCHAR},
		{Name: "created", Type: mysql.MYSQL_TYPE_DATETIME2}}}
	var out []*binlog.Txn
	var set binlog.GTIDSet
	for i := range n {
		var cs []*binlog.Change
		for r := range rows {
			id := int64(i*rows + r)
			cs = append(cs, &binlog.Change{Table: tb, Op: binlog.Insert,
				After: []binlog.Value{id, id % 1000, binlog.Decimal("123.45"), "paid", "2024-03-01 10:20:30.123456"}})
		}
		t := binlog.NewTxn(cs)
		t.GTID = binlog.GTID{MariaDB: true, Domain: 0, Server: 1, Seq: uint64(i + 1)}
		set.AdvanceTo(t.GTID)
		t.Executed = set.Clone()
		t.Pos = binlog.Position{File: "bin.000001", Pos: uint64(1000 + i*500)}
		t.Timestamp = time.Unix(1700000000, 0)
		out = append(out, t)
	}
	return out
}

// BenchmarkPublishVsPlainJetStream publishes transactions through the sink
// and, as the reference, the same messages with a plain asynchronous
// JetStream publish loop, to one nats-server, in the same run. Each of
// benchRounds rounds (BENCH_NATS_ROUNDS, default 9) runs both on fresh
// streams, interleaved in slices (publishInterleaved); it prints each
// round and the medians of messages/s, of the ratio (sluice's rate over
// the loop's) and of the CPU ratio (the process's CPU time while the sink
// published over the same while the loop did). make bench-nats runs mode
// transaction:
//
//	go test ./sinks/nats -run '^$' -bench 'PublishVsPlain/transaction' -benchtime 1x
//
// What makes the comparison fair, and what keeps the reference strict:
//
//   - The sink gets runs of benchRun transactions (512, the replicator's
//     maxBatch: a backlog like this one is handed over in runs that size).
//     ApplyBatch must wait for every acknowledgement of a run before it
//     returns (the replicator checkpoints what it returns); the loop waits
//     only at the end of each slice, which holds two runs (benchSlice).
//   - The loop publishes exactly the messages the sink published (read back
//     from the sink's stream): the same subjects (under a prefix of the
//     same length), bodies and headers, Nats-Msg-Id included, so the server
//     de-duplicates the same ids in both.
//   - The loop's stream is a copy of the config of the stream the sink
//     created (de-duplication window, storage, replicas, atomic publish,
//     subjects under its own prefix), and both streams are checked to hold
//     every message at the end of a round.
//   - The loop's messages are built before the clock starts, and its
//     JetStream context has no acknowledgement timeout (nor has the
//     sink's: its run's wait has a limit instead): the reference does
//     nothing but publish.
//
// Both share the process with the embedded server, so the CPU ratio counts
// the server's work for each side too (and the garbage collector's, which
// may collect one side's garbage during the other's slice).
//
// BENCH_NATS_CPUPROFILE=FILE writes one CPU profile of the sink's slices in
// every round (the sink under ApplyBatch, the client's and the server's
// goroutines while it publishes; not the loop's slices): a profile per
// slice, merged with `go tool pprof -proto` at the end. Profiling slows the
// sink's slices, so the ratios printed then are not the benchmark's.
// BENCH_NATS_CPUPROFILE_LOOP=FILE does the same for the loop's slices; with
// both, `go tool pprof -diff_base LOOP SINK` shows what the sink spends
// beyond the loop, function by function (both publish the same messages).
func BenchmarkPublishVsPlainJetStream(b *testing.B) {
	for _, c := range []struct {
		mode       string
		txns, rows int
	}{
		// 40 runs of 512 transactions, 20 slices of 1,024.
		{"transaction", 20480, 3},
		// Atomic batches are staged and synced by the server one at a time:
		// fewer transactions keep a round short.
		{"row", 2048, 3},
	} {
		b.Run(c.mode, func(b *testing.B) {
			n := testenv.StartNATS(b)
			data := benchTxns(c.txns, c.rows)
			ctx := context.Background()
			for b.Loop() {
				// The messages the sink publishes, read back once for the
				// reference loop.
				first := benchStream("B", c.mode, 0)
				publishSink(b, n.URL(), c.mode, first, data)
				msgs := readAllRaw(b, n.URL(), first)
				prof := newBenchProfile(b, os.Getenv("BENCH_NATS_CPUPROFILE"), "sink")
				refProf := newBenchProfile(b, os.Getenv("BENCH_NATS_CPUPROFILE_LOOP"), "loop")
				var sluiceRates, refRates, ratios, cpuRatios []float64
				for round := 1; round <= benchRounds; round++ {
					r := publishInterleaved(b, ctx, n.URL(), c.mode, round, data, first, msgs, prof, refProf)
					sr, rr := float64(len(msgs))/r.sluice.Seconds(), float64(len(msgs))/r.ref.Seconds()
					cr := r.sluiceCPU.Seconds() / r.refCPU.Seconds()
					sluiceRates, refRates, ratios, cpuRatios = append(sluiceRates, sr), append(refRates, rr), append(ratios, sr/rr), append(cpuRatios, cr)
					fmt.Printf("mode %s round %d: %d transactions (%d rows, %d messages) in runs of %d: sluice %.0f msgs/s (%.0f txn/s), plain JetStream loop %.0f msgs/s; ratio %.2f; CPU sluice %.2fs, loop %.2fs, ratio %.2f\n",
						c.mode, round, c.txns, c.txns*c.rows, len(msgs), benchRun, sr, float64(c.txns)/r.sluice.Seconds(), rr, sr/rr,
						r.sluiceCPU.Seconds(), r.refCPU.Seconds(), cr)
				}
				prof.finish(b)
				refProf.finish(b)
				ms, mr, mq, mc := median(sluiceRates), median(refRates), median(ratios), median(cpuRatios)
				b.ReportMetric(ms, "sluice-msg/s")
				b.ReportMetric(mr, "ref-msg/s")
				b.ReportMetric(mq, "ratio")
				b.ReportMetric(mc, "cpu-ratio")
				fmt.Printf("mode %s, median of %d rounds on %d cores, runs of %d: sluice %.0f msgs/s, plain JetStream loop %.0f msgs/s, ratio %.2f; CPU time sluice over loop %.2f\n",
					c.mode, benchRounds, runtime.NumCPU(), benchRun, ms, mr, mq, mc)
			}
		})
	}
}

// benchStream names a round's stream: B for the sink's, P for the plain
// loop's. Both names have the same length, and so have the subjects under
// them.
func benchStream(side, mode string, round int) string {
	return fmt.Sprintf("%s%s%d", side, mode, round)
}

// benchRounds is how many rounds the medians are taken over
// (BENCH_NATS_ROUNDS, default 9).
var benchRounds = func() int {
	if n, err := strconv.Atoi(os.Getenv("BENCH_NATS_ROUNDS")); err == nil && n > 0 {
		return n
	}
	return 9
}()

func median(v []float64) float64 {
	v = slices.Clone(v)
	slices.Sort(v)
	return v[len(v)/2]
}

// publishSink publishes data through a new sink to a new stream and
// returns how long that took (connecting and creating the stream not
// counted).
func publishSink(b *testing.B, url, mode, stream string, data []*binlog.Txn) time.Duration {
	sink := openBenchSink(b, url, mode, stream)
	defer sink.Close()
	return sinkChunk(b, sink, data)
}

func openBenchSink(b *testing.B, url, mode, stream string) *natssink.Sink {
	sink, err := natssink.Open(context.Background(), natssink.Config{URL: url, Pipeline: "bench", Stream: stream, CreateStream: true,
		Subject: stream + ".{schema}.{table}", DDLSubject: stream + "._ddl", Format: "sluice", Mode: mode, Checkpoint: "stream",
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	return sink
}

// benchRun is how many transactions one ApplyBatch call gets
// (BENCH_NATS_RUN). The default is the replicator's maxBatch, 512: under a
// backlog (the benchmark's 20,480 transactions are one) the replicator
// hands over what is queued, up to 512 transactions or 32 MiB, and 512
// 3-row transactions are about 1 MiB.
var benchRun = func() int {
	if n, err := strconv.Atoi(os.Getenv("BENCH_NATS_RUN")); err == nil && n > 0 {
		return n
	}
	return 512
}()

// benchSlice is how many transactions each side publishes in turn
// (BENCH_NATS_SLICE, default 1,024), rounded up to a whole number of runs
// so that the sink's runs are never cut short by a slice's end. The loop
// waits for its acknowledgements only at a slice's end, the sink at each
// run's: the default slice of two runs waits half as often as the sink.
var benchSlice = func() int {
	n, err := strconv.Atoi(os.Getenv("BENCH_NATS_SLICE"))
	if err != nil || n <= 0 {
		n = 1024
	}
	return (n + benchRun - 1) / benchRun * benchRun
}()

// sinkChunk publishes data as the replicator hands it over under a
// backlog, in runs of benchRun transactions.
func sinkChunk(b *testing.B, sink *natssink.Sink, data []*binlog.Txn) time.Duration {
	ctx := context.Background()
	start := time.Now()
	for i := 0; i < len(data); i += benchRun {
		if _, err := sink.ApplyBatch(ctx, "primary", data[i:min(i+benchRun, len(data))]); err != nil {
			b.Fatal(err)
		}
	}
	return time.Since(start)
}

// benchTotals are one round's wall and process CPU times of each side.
type benchTotals struct {
	sluice, ref, sluiceCPU, refCPU time.Duration
}

// publishInterleaved publishes data through a sink and msgs (read back
// from stream first) with a plain asynchronous JetStream loop, to streams
// of their own, in slices of benchSlice transactions taken in turn (the
// order alternating), so that a burst of other load on the machine slows
// both alike. It returns each one's totals.
func publishInterleaved(b *testing.B, ctx context.Context, url, mode string, round int, data []*binlog.Txn, first string, msgs []*natsgo.Msg, prof, refProf *benchProfile) benchTotals {
	sinkName, refName := benchStream("B", mode, round), benchStream("P", mode, round)
	sink := openBenchSink(b, url, mode, sinkName)
	defer sink.Close()
	nc, err := natsgo.Connect(url)
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	// The sink's limit of pending acknowledgements, and no acknowledgement
	// timeout (see the benchmark's comment); a failed publish fails the
	// benchmark.
	var failed atomic.Int64
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(1024),
		jetstream.WithPublishAsyncErrHandler(func(jetstream.JetStream, *natsgo.Msg, error) { failed.Add(1) }))
	if err != nil {
		b.Fatal(err)
	}
	// The loop's stream is the sink's, renamed: the same de-duplication
	// window, storage, replicas and atomic publish, its subjects under the
	// loop's own prefix.
	st, err := js.Stream(ctx, sinkName)
	if err != nil {
		b.Fatal(err)
	}
	sc := st.CachedInfo().Config
	sc.Name = refName
	sc.Subjects = slices.Clone(sc.Subjects)
	for i, s := range sc.Subjects {
		if !strings.HasPrefix(s, sinkName+".") {
			b.Fatalf("the sink's stream subject %q is not under %s.", s, sinkName)
		}
		sc.Subjects[i] = refName + strings.TrimPrefix(s, sinkName)
	}
	if _, err := js.CreateStream(ctx, sc); err != nil {
		b.Fatal(err)
	}
	// The loop's messages, built before its clock starts: the sink's, on
	// the same subject under the loop's prefix. Nothing here changes a
	// message (PublishMsgAsync copies what it sends), so bodies and headers
	// are shared.
	ref := make([]*natsgo.Msg, len(msgs))
	for i, m := range msgs {
		ref[i] = &natsgo.Msg{Subject: refName + strings.TrimPrefix(m.Subject, first), Header: m.Header, Data: m.Data}
	}
	var t benchTotals
	for k := 0; k < len(data); k += benchSlice {
		hi := min(k+benchSlice, len(data))
		sinkPart := func() {
			prof.start(b)
			c := cpuTime()
			t.sluice += sinkChunk(b, sink, data[k:hi])
			t.sluiceCPU += cpuTime() - c
			prof.stop()
		}
		refPart := func() {
			refProf.start(b)
			c := cpuTime()
			t.ref += publishPlain(b, js, ref[k*len(msgs)/len(data):hi*len(msgs)/len(data)])
			t.refCPU += cpuTime() - c
			refProf.stop()
		}
		if (k/benchSlice+round)%2 == 0 {
			sinkPart()
			refPart()
		} else {
			refPart()
			sinkPart()
		}
	}
	if n := failed.Load(); n > 0 {
		b.Fatalf("the plain loop had %d failed publishes", n)
	}
	// Both streams hold every message: neither side's were dropped (as
	// duplicates, say) and so cost the server less.
	for _, name := range []string{sinkName, refName} {
		st, err := js.Stream(ctx, name)
		if err != nil {
			b.Fatal(err)
		}
		info, err := st.Info(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if info.State.Msgs != uint64(len(msgs)) {
			b.Fatalf("stream %s holds %d messages, not %d", name, info.State.Msgs, len(msgs))
		}
	}
	return t
}

// publishPlain publishes msgs with a plain asynchronous JetStream loop,
// waits for every acknowledgement and returns how long that took.
func publishPlain(b *testing.B, js jetstream.JetStream, msgs []*natsgo.Msg) time.Duration {
	start := time.Now()
	for _, m := range msgs {
		// A generous stall wait, as the sink's (30s): on a loaded machine
		// the default 200ms fails the reference loop, not sluice.
		if _, err := js.PublishMsgAsync(m, jetstream.WithStallWait(time.Minute)); err != nil {
			b.Fatal(err)
		}
	}
	<-js.PublishAsyncComplete()
	return time.Since(start)
}

// cpuTime is the CPU time (user and system) the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchProfile profiles the sink's slices into one file: a profile per
// slice (the runtime takes one at a time), merged at the end. A nil one
// profiles nothing.
type benchProfile struct {
	out, dir string
	side     string // whose slices: sink or loop
	parts    []string
	f        *os.File
}

func newBenchProfile(b *testing.B, out, side string) *benchProfile {
	if out == "" {
		return nil
	}
	return &benchProfile{out: out, dir: b.TempDir(), side: side}
}

func (p *benchProfile) start(b *testing.B) {
	if p == nil {
		return
	}
	f, err := os.Create(filepath.Join(p.dir, fmt.Sprintf("part%04d.pprof", len(p.parts))))
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	p.f, p.parts = f, append(p.parts, f.Name())
}

func (p *benchProfile) stop() {
	if p == nil {
		return
	}
	pprof.StopCPUProfile()
	p.f.Close()
}

// finish merges the slices' profiles into the output file (go test puts
// its Go's bin first in PATH).
func (p *benchProfile) finish(b *testing.B) {
	if p == nil {
		return
	}
	args := append([]string{"tool", "pprof", "-proto", "-output", p.out}, p.parts...)
	if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
		b.Fatalf("merging %d CPU profiles: %v: %s", len(p.parts), err, out)
	}
	fmt.Printf("CPU profile of the %s's slices in %d rounds: %s\n", p.side, benchRounds, p.out)
}

func readAllRaw(b *testing.B, url, stream string) []*natsgo.Msg {
	nc, _ := natsgo.Connect(url)
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	st, _ := js.Stream(ctx, stream)
	info, _ := st.Info(ctx)
	cons, _ := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	var out []*natsgo.Msg
	for uint64(len(out)) < info.State.Msgs {
		batch, err := cons.Fetch(min(1000, int(info.State.Msgs)-len(out)))
		if err != nil {
			b.Fatal(err)
		}
		for m := range batch.Messages() {
			h := natsgo.Header{}
			for k, v := range m.Headers() {
				if !strings.HasPrefix(k, "Nats-Batch") {
					h[k] = v
				}
			}
			out = append(out, &natsgo.Msg{Subject: m.Subject(), Data: m.Data(), Header: h})
		}
	}
	return out
}
