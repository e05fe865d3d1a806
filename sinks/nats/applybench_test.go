package nats_test

import (
	"context"
	"testing"

	"github.com/sluice-cdc/sluice/internal/testenv"
)

// BenchmarkApplyBatchTransaction is the sink's side of
// BenchmarkPublishVsPlainJetStream alone (mode transaction, runs of
// benchRun 3-row transactions), per transaction: its allocations show what
// building each message costs beyond the publish.
func BenchmarkApplyBatchTransaction(b *testing.B) {
	n := testenv.StartNATS(b)
	data := benchTxns(20480, 3)
	sink := openBenchSink(b, n.URL(), "transaction", "Bapply0")
	defer sink.Close()
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i == len(data) {
			// The same transactions again: de-duplicated by their ids
			// within the stream's window, which costs the server less,
			// so b.N stays within one pass where it can.
			i = 0
		}
		hi := min(i+benchRun, len(data))
		if _, err := sink.ApplyBatch(ctx, "primary", data[i:hi]); err != nil {
			b.Fatal(err)
		}
		i = hi
	}
}
