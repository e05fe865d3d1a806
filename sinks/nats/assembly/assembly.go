// Package assembly rebuilds, on the consuming side, what sluice publishes
// to NATS JetStream:
//
//   - a body larger than the server's max_payload is published as
//     consecutive messages on one subject, each with the header
//     Sluice-Chunk: k/m; joining the m bodies in order gives the body
//     (Assembler);
//   - mode transaction's body is sluice's transaction envelope
//     (DecodeTransaction), whatever the format;
//   - each message of a transaction carries Sluice-Msg: i/n, its place
//     among the transaction's n messages; a consumer of the whole stream
//     that wants whole transactions gathers them (Transactions). With
//     atomic batches (nats-server 2.12+) the stream never holds part of a
//     transaction.
//
// It depends only on the message headers, so it works for every format.
package assembly

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
)

// Header names sluice sets (sinks/nats).
const (
	HdrPipeline = "Sluice-Pipeline"
	HdrSource   = "Sluice-Source"
	HdrGTID     = "Sluice-GTID"
	HdrPos      = "Sluice-Pos"
	HdrMsg      = "Sluice-Msg"   // i/n: the message's place among its transaction's messages
	HdrChunk    = "Sluice-Chunk" // k/m: the chunk's place among its body's chunks
	HdrBody     = "Sluice-Body"  // "transaction": sluice's transaction envelope
	HdrOp       = "Sluice-Op"
)

// Message is one logical message: its subject, the headers of its first
// chunk, and its whole body.
type Message struct {
	Subject string
	Header  nats.Header
	Data    []byte
}

// Assembler joins chunked bodies. Give it the messages of a subject, or of
// the whole stream, in stream order; it is not safe for concurrent use.
type Assembler struct {
	pending map[string]*partial
}

type partial struct {
	msg  Message
	next int // the chunk expected next, from 1
}

// New returns an empty Assembler.
func New() *Assembler { return &Assembler{pending: map[string]*partial{}} }

// Add takes one received message. It returns the logical message when
// this one is whole or completes one, and ok false while chunks are still
// to come. A chunk out of order (a consumer that skipped messages, or a
// subject filter that cut a body) is an error naming the message.
func (a *Assembler) Add(subject string, h nats.Header, data []byte) (m Message, ok bool, err error) {
	c := h.Get(HdrChunk)
	if c == "" {
		return Message{Subject: subject, Header: h, Data: data}, true, nil
	}
	k, n, err := fraction(c)
	if err != nil {
		return Message{}, false, fmt.Errorf("message on %s: %s header: %w", subject, HdrChunk, err)
	}
	key := strings.Join([]string{subject, h.Get(HdrPipeline), h.Get(HdrSource), h.Get(HdrGTID), h.Get(HdrPos), h.Get(HdrMsg)}, "\x00")
	p := a.pending[key]
	switch {
	case p == nil && k == 1:
		p = &partial{msg: Message{Subject: subject, Header: h}, next: 1}
		a.pending[key] = p
	case p == nil:
		return Message{}, false, fmt.Errorf("message on %s (transaction %s, message %s): chunk %d/%d without the chunks before it", subject, txnOf(h), h.Get(HdrMsg), k, n)
	case k == 1:
		// The body again from its start: a republished transaction whose
		// first attempt was cut short. Start over.
		p.msg, p.next = Message{Subject: subject, Header: h}, 1
	case k != p.next:
		delete(a.pending, key)
		return Message{}, false, fmt.Errorf("message on %s (transaction %s, message %s): chunk %d/%d after chunk %d", subject, txnOf(h), h.Get(HdrMsg), k, n, p.next-1)
	}
	p.msg.Data = append(p.msg.Data, data...)
	p.next++
	if k < n {
		return Message{}, false, nil
	}
	delete(a.pending, key)
	return p.msg, true, nil
}

// Pending is the number of bodies waiting for chunks.
func (a *Assembler) Pending() int { return len(a.pending) }

func txnOf(h nats.Header) string {
	if g := h.Get(HdrGTID); g != "" {
		return g
	}
	return h.Get(HdrPos)
}

func fraction(s string) (int, int, error) {
	a, b, ok := strings.Cut(s, "/")
	i, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || i < 1 || i > n {
		return 0, 0, fmt.Errorf("%q is not i/n", s)
	}
	return i, n, nil
}

// Transaction is sluice's transaction envelope, the body of mode
// transaction: the transaction's own fields and, for format sluice, its
// changes, for the other formats the format's events (Canal FlatMessages,
// Debezium change events) in order.
type Transaction struct {
	GTID      string            `json:"gtid"`
	ServerID  uint32            `json:"server_id"`
	Timestamp string            `json:"timestamp"`
	File      string            `json:"file"`
	Pos       uint32            `json:"pos"`
	XID       string            `json:"xid,omitempty"`
	Format    string            `json:"format,omitempty"` // canal, debezium; empty for sluice
	Changes   []json.RawMessage `json:"changes,omitempty"`
	Events    []json.RawMessage `json:"events,omitempty"`
}

// DecodeTransaction parses a whole (joined) mode transaction body.
func DecodeTransaction(m Message) (*Transaction, error) {
	if b := m.Header.Get(HdrBody); b != "transaction" {
		return nil, fmt.Errorf("message on %s is not a transaction body (%s: %q)", m.Subject, HdrBody, b)
	}
	var t Transaction
	if err := json.Unmarshal(m.Data, &t); err != nil {
		return nil, fmt.Errorf("transaction body on %s: %w", m.Subject, err)
	}
	return &t, nil
}

// Transactions gathers the messages of each transaction, for a consumer
// of every subject sluice publishes to (a consumer of some subjects only
// never sees all of a transaction's messages). Give it whole messages in
// stream order; transactions of different sources may interleave.
type Transactions struct {
	open map[string][]Message // per pipeline and source: the transaction being gathered
}

// Add takes the next message and returns a transaction's messages once
// the last has arrived. A message out of place is an error: something is
// missing.
func (g *Transactions) Add(m Message) ([]Message, bool, error) {
	i, n, err := fraction(m.Header.Get(HdrMsg))
	if err != nil {
		return nil, false, fmt.Errorf("message on %s: %s header: %w", m.Subject, HdrMsg, err)
	}
	if g.open == nil {
		g.open = map[string][]Message{}
	}
	src := m.Header.Get(HdrPipeline) + "\x00" + m.Header.Get(HdrSource)
	msgs := g.open[src]
	if i == 1 {
		msgs = nil
	} else if len(msgs) != i-1 || txnOf(msgs[0].Header) != txnOf(m.Header) {
		delete(g.open, src)
		return nil, false, fmt.Errorf("message %d/%d of transaction %s on %s: %d of its messages before it were received", i, n, txnOf(m.Header), m.Subject, len(msgs))
	}
	msgs = append(msgs, m)
	if i < n {
		g.open[src] = msgs
		return nil, false, nil
	}
	delete(g.open, src)
	return msgs, true, nil
}
