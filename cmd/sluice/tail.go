package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

const tailUsage = `usage: sluice tail --url nats://HOST:4222 --stream NAME [--subject FILTER] [--new | --last N]
                   [--count N] [--idle DURATION] [--raw]
       sluice tail -c FILE [--pipeline NAME] ...

Prints a JetStream stream's messages as JSON lines:
  {"seq":12,"subject":"cdc.shop.orders","time":"...","headers":{...},"data":{...}}
data is the body as JSON when it is JSON, else a string. Chunks of a body
split for the payload limit (Sluice-Chunk) are printed joined, and the
pipelines' lease markers (Sluice-Op: lease) left out, unless --raw.
From the stream's start by default; follows until interrupted.

flags:
`

func runTail(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("tail", tailUsage, stderr)
	url := fs.String("url", "", "NATS URL")
	stream := fs.String("stream", "", "stream name")
	path := fs.String("c", "", "take url and stream from this pipeline file's nats sink")
	pipeline := fs.String("pipeline", "", "with -c: the pipeline")
	subject := fs.String("subject", "", "only subjects matching this filter")
	onlyNew := fs.Bool("new", false, "only messages published from now on")
	last := fs.Int("last", 0, "start with the last N messages")
	count := fs.Int("count", 0, "exit after N messages (0: follow)")
	idle := fs.Duration("idle", 0, "exit when no message came for this long (0: follow)")
	raw := fs.Bool("raw", false, "print chunks as they are stored, and lease markers")
	logs := addLogFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if _, err := logs.oneShot(stderr); err != nil {
		return err
	}
	creds := ""
	if *path != "" {
		cfg, err := loadConfig(fs, *path)
		if err != nil {
			return err
		}
		for _, p := range cfg.Pipelines {
			if p.Sink.Type == "nats" && (*pipeline == "" || p.Name == *pipeline) {
				*url, *stream, creds = p.Sink.URL, p.Sink.Stream.Name, p.Sink.Creds
				break
			}
		}
		if *url == "" {
			return usagef("%s has no pipeline with a nats sink%s", *path, map[bool]string{true: " named " + *pipeline}[*pipeline != ""])
		}
	}
	if *url == "" || *stream == "" {
		return usagef("give --url and --stream, or -c FILE")
	}
	var opts []natsgo.Option
	if creds != "" {
		opts = append(opts, natsgo.UserCredentials(creds))
	}
	nc, err := natsgo.Connect(*url, opts...)
	if err != nil {
		return usagef("cannot connect to NATS at %s: %v", *url, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	st, err := js.Stream(ctx, *stream)
	if err != nil {
		return usagef("stream %q: %v", *stream, err)
	}
	occ := jetstream.OrderedConsumerConfig{}
	if *subject != "" {
		occ.FilterSubjects = []string{*subject}
	}
	switch {
	case *onlyNew:
		occ.DeliverPolicy = jetstream.DeliverNewPolicy
	case *last > 0:
		info, err := st.Info(ctx)
		if err != nil {
			return err
		}
		from := uint64(1)
		if info.State.LastSeq > uint64(*last) {
			from = info.State.LastSeq - uint64(*last) + 1
		}
		occ.DeliverPolicy, occ.OptStartSeq = jetstream.DeliverByStartSequencePolicy, from
	}
	cons, err := st.OrderedConsumer(ctx, occ)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(stdout)
	defer w.Flush()
	var chunks []byte
	printed := 0
	for *count == 0 || printed < *count {
		wait := 5 * time.Second
		if *idle > 0 {
			wait = *idle
		}
		batch, err := cons.Fetch(100, jetstream.FetchMaxWait(wait))
		if err != nil {
			if errors.Is(err, context.Canceled) || ctx.Err() != nil {
				return nil
			}
			return err
		}
		got := 0
		for m := range batch.Messages() {
			got++
			if op := m.Headers().Get("Sluice-Op"); (op == "lease" || op == "position") && !*raw {
				continue // a pipeline's epoch marker (fencing) or a source's position, not data
			}
			body := m.Data()
			if c := m.Headers().Get("Sluice-Chunk"); c != "" && !*raw {
				chunks = append(chunks, body...)
				if k, n, _ := strings.Cut(c, "/"); k != n {
					continue
				}
				body, chunks = chunks, nil
			}
			if err := printMessage(w, m, body); err != nil {
				return err
			}
			printed++
			if *count > 0 && printed >= *count {
				break
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && ctx.Err() == nil {
			return err
		}
		w.Flush()
		if ctx.Err() != nil || (got == 0 && *idle > 0) {
			return nil
		}
	}
	return nil
}

func printMessage(w *bufio.Writer, m jetstream.Msg, body []byte) error {
	md, err := m.Metadata()
	if err != nil {
		return err
	}
	hdr := map[string]any{}
	keys := make([]string, 0, len(m.Headers()))
	for k := range m.Headers() {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if v := m.Headers().Values(k); len(v) == 1 {
			hdr[k] = v[0]
		} else {
			hdr[k] = v
		}
	}
	line := struct {
		Seq     uint64          `json:"seq"`
		Subject string          `json:"subject"`
		Time    time.Time       `json:"time"`
		Headers map[string]any  `json:"headers"`
		Data    json.RawMessage `json:"data"`
	}{md.Sequence.Stream, m.Subject(), md.Timestamp.UTC(), hdr, nil}
	switch {
	case json.Valid(body):
		line.Data = body
	case utf8.Valid(body):
		line.Data, _ = json.Marshal(string(body))
	default:
		line.Data, _ = json.Marshal(body) // base64
	}
	b, err := json.Marshal(line)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(w, "%s\n", b); err != nil {
		return err
	}
	return nil
}
