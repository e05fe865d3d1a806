package assembly

import (
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
)

func hdr(kv ...string) nats.Header {
	h := nats.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}

func TestAssembler(t *testing.T) {
	chunk := func(k string) nats.Header {
		return hdr(HdrPipeline, "p", HdrSource, "s", HdrGTID, "0-1-5", HdrMsg, "1/1", HdrChunk, k)
	}
	for _, tt := range []struct {
		name  string
		parts []struct {
			h    nats.Header
			data string
		}
		want string // joined body, or the error's start
		err  bool
	}{
		{name: "whole", parts: []struct {
			h    nats.Header
			data string
		}{{hdr(HdrMsg, "1/1"), `{"a":1}`}}, want: `{"a":1}`},
		{name: "chunks", parts: []struct {
			h    nats.Header
			data string
		}{{chunk("1/3"), `{"a"`}, {chunk("2/3"), `:1`}, {chunk("3/3"), `}`}}, want: `{"a":1}`},
		{name: "restarted", parts: []struct {
			h    nats.Header
			data string
		}{{chunk("1/2"), `{"a"`}, {chunk("1/2"), `{"b"`}, {chunk("2/2"), `:2}`}}, want: `{"b":2}`},
		{name: "gap", parts: []struct {
			h    nats.Header
			data string
		}{{chunk("1/3"), `{"a"`}, {chunk("3/3"), `}`}}, want: "message on s (transaction 0-1-5, message 1/1): chunk 3/3 after chunk 1", err: true},
		{name: "no head", parts: []struct {
			h    nats.Header
			data string
		}{{chunk("2/3"), `:1`}}, want: "message on s (transaction 0-1-5, message 1/1): chunk 2/3 without the chunks before it", err: true},
		{name: "bad header", parts: []struct {
			h    nats.Header
			data string
		}{{chunk("x"), ``}}, want: `message on s: Sluice-Chunk header: "x" is not i/n`, err: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := New()
			var got []string
			var err error
			for _, p := range tt.parts {
				var m Message
				var ok bool
				m, ok, err = a.Add("s", p.h, []byte(p.data))
				if err != nil {
					break
				}
				if ok {
					got = append(got, string(m.Data))
				}
			}
			if tt.err {
				if err == nil || err.Error() != tt.want {
					t.Fatalf("error %v, want %s", err, tt.want)
				}
				return
			}
			if err != nil || len(got) != 1 || got[0] != tt.want || a.Pending() != 0 {
				t.Fatalf("got %q, %v, %d pending; want %s", got, err, a.Pending(), tt.want)
			}
		})
	}
}

func TestTransactions(t *testing.T) {
	msg := func(src, gtid, i string) Message {
		return Message{Subject: "x", Header: hdr(HdrPipeline, "p", HdrSource, src, HdrGTID, gtid, HdrMsg, i)}
	}
	var g Transactions
	steps := []struct {
		m    Message
		done int
	}{
		{msg("a", "0-1-1", "1/2"), 0},
		{msg("b", "0-2-1", "1/1"), 1}, // another source's transaction in between
		{msg("a", "0-1-1", "2/2"), 2},
	}
	for i, s := range steps {
		got, ok, err := g.Add(s.m)
		if err != nil || ok != (s.done > 0) || len(got) != s.done {
			t.Fatalf("step %d: %d messages, %v, %v", i, len(got), ok, err)
		}
	}
	if _, _, err := g.Add(msg("a", "0-1-2", "2/2")); err == nil || !strings.Contains(err.Error(), "0 of its messages before it") {
		t.Fatalf("a missing message: %v", err)
	}
}

func TestDecodeTransaction(t *testing.T) {
	m := Message{Subject: "cdc._txn", Header: hdr(HdrBody, "transaction"),
		Data: []byte(`{"gtid":"0-1-5","server_id":1,"timestamp":"2024-03-01T10:20:32Z","file":"bin.000001","pos":900,"format":"canal","events":[{"a":1},{"b":2}]}`)}
	tx, err := DecodeTransaction(m)
	if err != nil || tx.GTID != "0-1-5" || tx.Format != "canal" || len(tx.Events) != 2 || tx.Pos != 900 {
		t.Fatalf("%+v, %v", tx, err)
	}
	m.Header = hdr()
	if _, err := DecodeTransaction(m); err == nil {
		t.Fatal("a row message decoded as a transaction")
	}
}
