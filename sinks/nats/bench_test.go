package nats_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
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
// and, as the reference, the same messages (bodies and headers, so the
// same count and sizes) with a plain asynchronous JetStream publish loop,
// to one nats-server, in the same run. Each of benchRounds rounds
// (BENCH_NATS_ROUNDS, default 9) runs both on fresh streams, interleaved
// in slices of 500 transactions (publishInterleaved); it prints each round and
// the medians of messages/s and of the ratio (sluice's rate over the
// loop's). make bench-nats runs mode transaction:
//
//	go test ./sinks/nats -run '^$' -bench 'PublishVsPlain/transaction' -benchtime 1x
//
// BENCH_NATS_CPUPROFILE=FILE writes a CPU profile of the first round (the
// sink under ApplyBatch, the loop under publishPlain, the server).
func BenchmarkPublishVsPlainJetStream(b *testing.B) {
	for _, c := range []struct {
		mode       string
		txns, rows int
	}{
		{"transaction", 20000, 3},
		// Atomic batches are staged and synced by the server one at a time:
		// fewer transactions keep a round short.
		{"row", 2000, 3},
	} {
		b.Run(c.mode, func(b *testing.B) {
			n := testenv.StartNATS(b)
			data := benchTxns(c.txns, c.rows)
			ctx := context.Background()
			for b.Loop() {
				// The messages the sink publishes, read back once for the
				// reference loop.
				publishSink(b, n.URL(), c.mode, "B"+c.mode+"0", data)
				msgs := readAllRaw(b, n.URL(), "B"+c.mode+"0")
				var sluiceRates, refRates, ratios []float64
				var prof bool
				for round := 1; round <= benchRounds; round++ {
					if f := os.Getenv("BENCH_NATS_CPUPROFILE"); f != "" && !prof {
						prof = true
						out, err := os.Create(f)
						if err != nil {
							b.Fatal(err)
						}
						pprof.StartCPUProfile(out)
					}
					sluice, ref := publishInterleaved(b, ctx, n.URL(), c.mode, round, data, msgs)
					if prof && round == 1 {
						pprof.StopCPUProfile()
					}
					sr, rr := float64(len(msgs))/sluice.Seconds(), float64(len(msgs))/ref.Seconds()
					sluiceRates, refRates, ratios = append(sluiceRates, sr), append(refRates, rr), append(ratios, sr/rr)
					fmt.Printf("mode %s round %d: %d transactions (%d rows, %d messages): sluice %.0f msgs/s (%.0f txn/s), plain JetStream loop %.0f msgs/s; ratio %.2f\n",
						c.mode, round, c.txns, c.txns*c.rows, len(msgs), sr, float64(c.txns)/sluice.Seconds(), rr, sr/rr)
				}
				ms, mr, mq := median(sluiceRates), median(refRates), median(ratios)
				b.ReportMetric(ms, "sluice-msg/s")
				b.ReportMetric(mr, "ref-msg/s")
				b.ReportMetric(mq, "ratio")
				fmt.Printf("mode %s, median of %d rounds on %d cores: sluice %.0f msgs/s, plain JetStream loop %.0f msgs/s, ratio %.2f\n",
					c.mode, benchRounds, runtime.NumCPU(), ms, mr, mq)
			}
		})
	}
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
// (BENCH_NATS_RUN, default 64; under a backlog the replicator hands over
// what is queued, up to 512).
var benchRun = func() int {
	if n, err := strconv.Atoi(os.Getenv("BENCH_NATS_RUN")); err == nil && n > 0 {
		return n
	}
	return 64
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

// publishInterleaved publishes data through a sink and msgs with a plain
// asynchronous JetStream loop, to streams of their own, in slices of 500
// transactions taken in turn (the order alternating), so that a burst of
// other load on the machine slows both alike. It returns each one's total.
func publishInterleaved(b *testing.B, ctx context.Context, url, mode string, round int, data []*binlog.Txn, msgs []*natsgo.Msg) (sluice, ref time.Duration) {
	sink := openBenchSink(b, url, mode, fmt.Sprintf("B%s%d", mode, round))
	defer sink.Close()
	name := fmt.Sprintf("ref%s%d", mode, round)
	nc, err := natsgo.Connect(url)
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(1024))
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: strings.ToUpper(name), Subjects: []string{name + ".>"}}); err != nil {
		b.Fatal(err)
	}
	const slice = 500
	for k := 0; k < len(data); k += slice {
		hi := min(k+slice, len(data))
		sinkPart := func() { sluice += sinkChunk(b, sink, data[k:hi]) }
		refPart := func() {
			ref += publishPlain(b, js, name, msgs[k*len(msgs)/len(data):hi*len(msgs)/len(data)], k*len(msgs)/len(data))
		}
		if (k/slice+round)%2 == 0 {
			sinkPart()
			refPart()
		} else {
			refPart()
			sinkPart()
		}
	}
	return sluice, ref
}

// publishPlain publishes msgs with a plain asynchronous JetStream loop,
// waits for every acknowledgement and returns how long that took.
func publishPlain(b *testing.B, js jetstream.JetStream, name string, msgs []*natsgo.Msg, first int) time.Duration {
	start := time.Now()
	for i, m := range msgs {
		// The same bytes on the wire: body and headers.
		msg := natsgo.NewMsg(name + ".shop.orders")
		msg.Data = m.Data
		for k, v := range m.Header {
			msg.Header[k] = v
		}
		msg.Header.Set("Nats-Msg-Id", strconv.Itoa(first+i))
		// A generous stall wait: on a loaded machine the default 200ms
		// fails the reference loop, not sluice.
		if _, err := js.PublishMsgAsync(msg, jetstream.WithStallWait(time.Minute)); err != nil {
			b.Fatal(err)
		}
	}
	<-js.PublishAsyncComplete()
	return time.Since(start)
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
			out = append(out, &natsgo.Msg{Data: m.Data(), Header: h})
		}
	}
	return out
}
