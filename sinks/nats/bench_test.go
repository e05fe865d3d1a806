package nats_test

import (
	"context"
	"fmt"
	"log/slog"
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
// and, as the reference, the same messages (bodies and headers) with a
// plain asynchronous JetStream publish loop, to one nats-server in the same run, and reports
// transactions/s, rows/s and the ratio (sluice's rate over the loop's):
//
//	go test ./sinks/nats -run '^$' -bench PublishVsPlain -benchtime 1x
func BenchmarkPublishVsPlainJetStream(b *testing.B) {
	const txns, rows = 20000, 3
	for _, mode := range []string{"transaction", "row"} {
		b.Run(mode, func(b *testing.B) {
			n := testenv.StartNATS(b)
			data := benchTxns(txns, rows)
			ctx := context.Background()
			for b.Loop() {
				stream := "B" + mode
				sink, err := natssink.Open(ctx, natssink.Config{URL: n.URL(), Pipeline: "bench", Stream: stream, CreateStream: true,
					Subject: stream + ".{schema}.{table}", DDLSubject: stream + "._ddl", Format: "sluice", Mode: mode, Checkpoint: "stream",
					Logger: slog.New(slog.DiscardHandler)})
				if err != nil {
					b.Fatal(err)
				}
				start := time.Now()
				for i := 0; i < len(data); i += 512 {
					if _, err := sink.ApplyBatch(ctx, "primary", data[i:min(i+512, len(data))]); err != nil {
						b.Fatal(err)
					}
				}
				sluice := time.Since(start)
				sink.Close()

				// The reference: the same number and sizes of messages.
				msgs := readAllRaw(b, n.URL(), stream)
				nc, _ := natsgo.Connect(n.URL())
				js, _ := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(1024))
				js.CreateStream(ctx, jetstream.StreamConfig{Name: "REF" + mode, Subjects: []string{"ref" + mode + ".>"}})
				start = time.Now()
				for i, m := range msgs {
					// The same bytes on the wire: body and headers.
					msg := natsgo.NewMsg("ref" + mode + ".shop.orders")
					msg.Data = m.Data
					for k, v := range m.Header {
						msg.Header[k] = v
					}
					msg.Header.Set("Nats-Msg-Id", fmt.Sprint(i))
					// A generous stall wait: on a loaded machine the default 200ms
					// fails the reference loop, not sluice.
					if _, err := js.PublishMsgAsync(msg, jetstream.WithStallWait(time.Minute)); err != nil {
						b.Fatal(err)
					}
				}
				<-js.PublishAsyncComplete()
				ref := time.Since(start)
				nc.Close()

				b.ReportMetric(txns/sluice.Seconds(), "txn/s")
				b.ReportMetric(txns*rows/sluice.Seconds(), "rows/s")
				b.ReportMetric(float64(len(msgs))/ref.Seconds(), "ref-msg/s")
				b.ReportMetric(ref.Seconds()/sluice.Seconds(), "ratio")
				fmt.Printf("mode %s: %d transactions (%d rows, %d messages): sluice %.2fs (%.0f txn/s, %.0f rows/s); plain JetStream loop %.2fs; ratio %.2f\n",
					mode, txns, txns*rows, len(msgs), sluice.Seconds(), txns/sluice.Seconds(), txns*rows/sluice.Seconds(), ref.Seconds(), ref.Seconds()/sluice.Seconds())
			}
		})
	}
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
