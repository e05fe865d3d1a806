// Package nats publishes transactions to a NATS JetStream stream, exactly
// once and never half a transaction at a time:
//
//   - mode transaction: one message per transaction;
//   - mode row: one message per row change, all of a transaction's rows
//     committed as one atomic batch on servers and streams that allow it
//     (nats-server 2.12+, allow_atomic), otherwise numbered with headers so
//     that a consumer can assemble them.
//
// Every message carries Nats-Msg-Id derived from its transaction's GTID
// (and its place in it), so republishing is de-duplicated, and headers that
// say what has been published: on start the sink reads the stream's last
// message of its source (or a KV bucket) and resumes after it, skipping
// what a crash left half-published.
package nats

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluice-cdc/sluice/binlog"
	"github.com/sluice-cdc/sluice/checkpoint"
	"github.com/sluice-cdc/sluice/mysqlconn"
)

// Header names.
const (
	HdrPipeline   = "Sluice-Pipeline"
	HdrSource     = "Sluice-Source"
	HdrGTID       = "Sluice-GTID"
	HdrPos        = "Sluice-Pos"        // end position of the transaction
	HdrCommitTS   = "Sluice-Commit-Ts"  // RFC 3339, UTC
	HdrMsg        = "Sluice-Msg"        // "i/n": this message's place among the transaction's messages
	HdrCheckpoint = "Sluice-Checkpoint" // where to resume if this is the last message read (see below)
	HdrResumePos  = "Sluice-Resume-Pos" // the same for sources without GTIDs
	HdrTxnSeq     = "Sluice-Txn-Seq"    // mode row: the row's place in the transaction, from 1
	HdrTxnCount   = "Sluice-Txn-Count"  // rows in the transaction
	HdrChunk      = "Sluice-Chunk"      // "k/m" when a body larger than the payload limit is split
	HdrSchema     = "Sluice-Schema"     //
	HdrTable      = "Sluice-Table"      //
	HdrOp         = "Sluice-Op"         // insert, update, delete, ddl, outbox
	HdrOutbox     = "Sluice-Outbox"     // the outbox table a message was relayed from
	HdrBody       = "Sluice-Body"       // "transaction" on mode transaction's bodies (sluice's transaction envelope)
	HdrKey        = "Sluice-Key"        // format debezium: the record key, as JsonConverter writes it
	hdrMsgID      = natsgo.MsgIdHdr     // Nats-Msg-Id
	hdrBatchID    = "Nats-Batch-Id"     //
	hdrBatchSeq   = "Nats-Batch-Sequence"
	hdrBatchEnd   = "Nats-Batch-Commit"
)

// Config configures a NATS sink.
type Config struct {
	URL      string
	Creds    string
	NKey     string
	TLSCA    string
	TLSCert  string
	TLSKey   string
	Pipeline string

	Stream         string
	StreamSubjects []string
	CreateStream   bool
	Replicas       int

	Subject    string // template: {schema} {table} {op} {pk} {source} {pipeline}
	DDLSubject string // template: {schema} {table} {pipeline}
	// TransactionSubject is where whole transactions go (mode:
	// transaction), and Debezium's BEGIN/END events; template: {pipeline}.
	TransactionSubject string
	PKBuckets          int
	Format             string // sluice | canal | debezium
	// Mode is transaction or row; empty means row for canal and debezium,
	// transaction for sluice.
	Mode       string
	Canal      CanalOptions
	Debezium   DebeziumOptions
	Checkpoint string // stream | kv
	KVBucket   string
	Outbox     []Outbox
	// SourceDSN gives, per source, the connection used to delete relayed
	// outbox rows (Outbox.Delete).
	SourceDSN map[string]mysqlconn.DSN

	Logger *slog.Logger
	// Now is the clock for message build times (tests fix it).
	Now func() time.Time
}

// Outbox relays inserts into an outbox table as messages.
type Outbox struct {
	Table                                   string // db.table
	SubjectColumn, KeyColumn, PayloadColumn string
	SubjectPrefix                           string
	Delete                                  bool
}

// Sink publishes to JetStream.
type Sink struct {
	cfg    Config
	log    *slog.Logger
	nc     *natsgo.Conn
	js     jetstream.JetStream
	stream jetstream.Stream
	kv     jetstream.KeyValue
	enc    encoder
	atomic bool // the stream takes atomic batches
	// chunk is the largest body a message carries; larger ones are split.
	chunk int

	mu        sync.Mutex
	lastAcked map[string]checkpoint.State // per source
	permErr   error                       // a permissions violation reported by the server
	partial   map[string]part             // per source: a transaction a crash left half-published
	outbox    *outboxRelay
	// runs is each source's publishing state: sources publish
	// concurrently, and one source's failure must never be cleared or
	// taken by another.
	runs  map[string]*sourceRun
	stats map[string]*stats

	// leaseSubject carries the pipeline's epoch markers (lease.go).
	leaseSubject string
	lease        struct {
		mu       sync.Mutex
		kv       jetstream.KeyValue
		rev      uint64 // the lease key's revision while this sink holds it, else 0
		ttl      time.Duration
		holder   string
		epoch    uint64
		acquired time.Time
	}
	// fence is the stream sequence of this sink's epoch marker: every
	// message is published conditioned on it being the lease subject's
	// last (0: no lease, unfenced).
	fence atomic.Uint64
	// snap is the initial snapshot's state (snapshot.go).
	snap snapState
	// incrRequest is, per source and table, the stream sequence of the
	// request an incremental snapshot answers (incremental.go; under mu).
	incrRequest map[string]uint64
}

// sourceRun is one source's state of its current run of publishes.
type sourceRun struct {
	asyncErr error           // first failed asynchronous publish since the last check
	failed   map[string]bool // transactions with a failed publish in the current run
	// runConn is the connection's reconnect count when the current run of
	// publishes started: nothing is published on a newer connection until
	// the run ends and the stream has been checked, or messages lost with
	// the old connection would be republished after later ones.
	runConn uint64
	// checkedConn is the reconnect count at which the stream was last
	// checked for this source's acknowledged messages.
	checkedConn uint64
	spool       *spool             // the message body being built
	enc         []byte             // the encoder's buffer, reused
	json        binlog.JSONEncoder // the sluice format's change encoder
	txnSubject  string             // the source's transaction subject (mode transaction), once filled in
	text        []byte             // scratch for header values
	plan1       [1]logical         // plan's result in mode transaction, reused
	bodyRuns    *runs              // body's unit splitter, reused
	lastTS      time.Time          // the last commit time formatted (commitTS)
	lastTSText  string
	// msgs are the current run's messages; free, messages of earlier runs
	// that JetStream acknowledged, to be reused (newMsg).
	msgs, free []*pooledMsg
	kvRev      uint64 // the checkpoint's KV revision as last read or written (checkpoint: kv)
	// wrote is the current ApplyBatch's last transaction that published
	// messages (nil: none did). holds: the stream holds a message this
	// source can resume from (recovery found one, or this process
	// published one), recorded when (position.go).
	wrote    *binlog.Txn
	holds    bool
	recorded time.Time
	// unrecorded is where the source has read to when its last runs
	// published nothing and no position record says so yet.
	unrecorded *checkpoint.State
}

// run returns a source's publishing state. The caller holds s.mu.
func (s *Sink) run(source string) *sourceRun {
	r := s.runs[source]
	if r == nil {
		r = &sourceRun{failed: map[string]bool{}, spool: newSpool(8 << 20)}
		if s.nc != nil {
			r.checkedConn = s.nc.Stats().Reconnects
		}
		s.runs[source] = r
	}
	return r
}

type stats struct {
	retries int64
	failing error // the error being retried, nil while publishing succeeds
}

// Health returns the error the sink is retrying for a source, or nil.
func (s *Sink) Health(source string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.stats[source]; st != nil {
		return st.failing
	}
	return nil
}

// part is what recovery found of a half-published transaction: its id and
// how many of its messages are in the stream.
type part struct {
	txnID     string
	published int
}

// Open connects, checks (or creates) the stream and, for checkpoint: kv,
// the bucket.
func Open(ctx context.Context, cfg Config) (*Sink, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Mode == "" {
		cfg.Mode = "transaction"
		if cfg.Format == FormatCanal || cfg.Format == FormatDebezium {
			cfg.Mode = "row"
		}
	}
	if cfg.TransactionSubject == "" {
		cfg.TransactionSubject = defaultTxnSubject(cfg.Subject)
	}
	s := &Sink{cfg: cfg, log: log.With("sink", redactURL(cfg.URL)), enc: newEncoder(cfg), partial: map[string]part{},
		runs: map[string]*sourceRun{}, stats: map[string]*stats{}, lastAcked: map[string]checkpoint.State{},
		leaseSubject: subjectPrefix(cfg.Subject) + "_lease." + tokenCleaner.Replace(cfg.Pipeline)}
	opts := []natsgo.Option{
		natsgo.Name("sluice " + cfg.Pipeline),
		natsgo.Timeout(10 * time.Second),
		natsgo.MaxReconnects(-1),
		natsgo.ReconnectWait(500 * time.Millisecond),
		// No buffering while disconnected: buffered messages would reach
		// the server after reconnecting, behind a gap of messages lost with
		// the old connection, out of order. Publishing fails instead, and
		// the retry starts from the first unacknowledged transaction.
		natsgo.ReconnectBufSize(-1),
		natsgo.ReconnectHandler(func(*natsgo.Conn) {
			// Each source notices through the connection's reconnect count
			// (takeReconnected).
			s.log.Info("reconnected to NATS")
		}),
		natsgo.ErrorHandler(func(_ *natsgo.Conn, _ *natsgo.Subscription, err error) {
			if errors.Is(err, natsgo.ErrPermissionViolation) || strings.Contains(err.Error(), "Permissions Violation") {
				s.mu.Lock()
				s.permErr = err
				s.mu.Unlock()
			}
			s.log.Warn("NATS error", "error", err.Error())
		}),
	}
	if cfg.Creds != "" {
		opts = append(opts, natsgo.UserCredentials(cfg.Creds))
	}
	if cfg.NKey != "" {
		o, err := natsgo.NkeyOptionFromSeed(cfg.NKey)
		if err != nil {
			return nil, fmt.Errorf("sink nkey %s: %w", cfg.NKey, err)
		}
		opts = append(opts, o)
	}
	if cfg.TLSCA != "" || cfg.TLSCert != "" {
		tc, err := tlsConfig(cfg)
		if err != nil {
			return nil, err
		}
		opts = append(opts, natsgo.Secure(tc))
	}
	nc, err := natsgo.Connect(cfg.URL, opts...)
	if err != nil {
		return nil, fmt.Errorf("cannot connect to NATS at %s: %w; check sink.url and that nats-server runs with JetStream (-js)", redactURL(cfg.URL), err)
	}
	s.nc = nc
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(1024),
		// No acknowledgement timeout per publish (a timer each): a run's
		// wait for its acknowledgements has a limit, and then fails what
		// is still pending (abandonPending).
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, m *natsgo.Msg, err error) {
			var apiErr *jetstream.APIError
			if errors.As(err, &apiErr) && apiErr.ErrorCode == 10201 {
				return // an atomic batch already in the stream (a replay after a crash)
			}
			s.mu.Lock()
			r := s.run(m.Header.Get(HdrSource))
			if r.asyncErr == nil {
				r.asyncErr = fmt.Errorf("publish to %s: %w", m.Subject, s.fencedErr(err))
			}
			if id := m.Header.Get(HdrGTID); id != "" {
				r.failed[id] = true
			} else {
				r.failed[m.Header.Get(HdrPos)] = true
			}
			s.mu.Unlock()
		}))
	if err != nil {
		nc.Close()
		return nil, err
	}
	s.js = js
	// Bodies are split below the server's limit; headers take the rest.
	s.chunk = max(int(nc.MaxPayload())-8192, 4096)
	if err := s.openStream(ctx); err != nil {
		nc.Close()
		return nil, err
	}
	if cfg.Checkpoint == "kv" {
		kv, err := js.KeyValue(ctx, cfg.KVBucket)
		if errors.Is(err, jetstream.ErrBucketNotFound) {
			kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: cfg.KVBucket, Description: "sluice checkpoints", History: 1})
		}
		if err != nil {
			nc.Close()
			return nil, fmt.Errorf("checkpoint KV bucket %q: %w", cfg.KVBucket, explainJS(err))
		}
		s.kv = kv
	}
	if len(cfg.Outbox) > 0 {
		if s.outbox, err = newOutboxRelay(cfg.Outbox, cfg.SourceDSN, s.log); err != nil {
			nc.Close()
			return nil, err
		}
	}
	return s, nil
}

func tlsConfig(cfg Config) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.TLSCA != "" {
		pem, err := os.ReadFile(cfg.TLSCA)
		if err != nil {
			return nil, fmt.Errorf("sink tls.ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("sink tls.ca %s: no certificate found", cfg.TLSCA)
		}
		tc.RootCAs = pool
	}
	if cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("sink tls.cert/key: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// redactURL hides passwords and tokens in a NATS URL list.
func redactURL(u string) string {
	var out []string
	for _, one := range strings.Split(u, ",") {
		if at := strings.LastIndexByte(one, '@'); at >= 0 {
			if i := strings.Index(one, "://"); i >= 0 && i < at {
				one = one[:i+3] + "***" + one[at:]
			}
		}
		out = append(out, one)
	}
	return strings.Join(out, ",")
}

// explainJS turns JetStream API errors into messages that say what to do.
func explainJS(err error) error {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && (apiErr.Code == 403 || strings.Contains(strings.ToLower(apiErr.Description), "permission")) {
		return fmt.Errorf("%w: the NATS user lacks permission; grant it publish rights on $JS.API.> and the stream's subjects", err)
	}
	if errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) {
		return fmt.Errorf("%w: start nats-server with JetStream (-js)", err)
	}
	if errors.Is(err, natsgo.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, natsgo.ErrNoResponders) {
		return fmt.Errorf("%w: no JetStream answer; is JetStream enabled, and may this user use $JS.API.>?", err)
	}
	return err
}

// defaultTxnSubject is the transaction subject beside a subject
// template's fixed prefix: "cdc.{schema}.{table}" gives "cdc._txn".
func defaultTxnSubject(subject string) string {
	return subjectPrefix(subject) + "_txn"
}

// subjectPrefix is a subject template's fixed prefix up to its last dot
// before a placeholder ("cdc.{schema}.{table}" gives "cdc."), or "".
func subjectPrefix(subject string) string {
	prefix := subject
	if i := strings.IndexByte(subject, '{'); i >= 0 {
		prefix = subject[:strings.LastIndexByte(subject[:i], '.')+1]
	} else if i := strings.LastIndexByte(subject, '.'); i >= 0 {
		prefix = subject[:i+1]
	} else {
		prefix = ""
	}
	return prefix
}

// DefaultSubjects are the stream subjects that hold what the templates
// produce: the part of each template before its first placeholder,
// followed by ">" ("cdc.{schema}.{table}" needs "cdc.>").
func DefaultSubjects(templates ...string) []string {
	var out []string
	for _, t := range templates {
		if t == "" {
			continue
		}
		subj := t
		if i := strings.IndexByte(t, '{'); i >= 0 {
			subj = t[:strings.LastIndexByte(t[:i], '.')+1] + ">"
			if subj == ">" {
				subj = ">"
			}
		} else if strings.HasSuffix(t, ".") {
			subj = t + ">"
		}
		covered := false
		for _, o := range out {
			if o == subj || strings.HasSuffix(o, ">") && strings.HasPrefix(subj, strings.TrimSuffix(o, ">")) {
				covered = true
			}
		}
		if !covered {
			out = append(out, subj)
		}
	}
	return out
}

// openStream checks the stream, creating it when asked to.
func (s *Sink) openStream(ctx context.Context) error {
	cfg := s.cfg
	if len(cfg.StreamSubjects) == 0 {
		tmpls := []string{cfg.Subject, cfg.DDLSubject, cfg.TransactionSubject, cfg.Debezium.KeySubject, s.leaseSubject,
			subjectPrefix(cfg.Subject) + "_snapshot.{table}", subjectPrefix(cfg.Subject) + "_position.{source}"}
		for _, o := range cfg.Outbox {
			tmpls = append(tmpls, o.SubjectPrefix)
		}
		cfg.StreamSubjects = DefaultSubjects(tmpls...)
	}
	st, err := s.js.Stream(ctx, cfg.Stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) && cfg.CreateStream {
		sc := jetstream.StreamConfig{
			Name:        cfg.Stream,
			Description: "sluice change stream",
			Subjects:    cfg.StreamSubjects,
			Replicas:    max(cfg.Replicas, 1),
			Duplicates:  2 * time.Minute,
		}
		if serverAtLeast(s.nc.ConnectedServerVersion(), 2, 12) {
			sc.AllowAtomicPublish = true
		}
		st, err = s.js.CreateStream(ctx, sc)
		if err == nil {
			s.log.Info("stream created", "stream", cfg.Stream, "subjects", strings.Join(cfg.StreamSubjects, " "), "atomic", sc.AllowAtomicPublish)
		}
	}
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("stream %q does not exist: create it, or set sink.stream.create: true", cfg.Stream)
	}
	if err != nil {
		return fmt.Errorf("stream %q: %w", cfg.Stream, explainJS(err))
	}
	s.stream = st
	s.atomic = st.CachedInfo().Config.AllowAtomicPublish
	if cfg.Mode == "row" && !s.atomic {
		s.log.Info("the stream does not take atomic batches (nats-server < 2.12 or allow_atomic off): a transaction's rows are numbered with Sluice-Txn-Seq/Sluice-Txn-Count headers for consumers to assemble",
			"server", s.nc.ConnectedServerVersion())
	}
	return nil
}

func serverAtLeast(v string, major, minor int) bool {
	var a, b int
	fmt.Sscanf(strings.TrimPrefix(v, "v"), "%d.%d", &a, &b)
	return a > major || a == major && b >= minor
}

// Close closes the connection.
func (s *Sink) Close() error {
	if s.nc != nil && s.kv == nil {
		s.flushPositions()
	}
	if s.outbox != nil {
		s.outbox.close()
	}
	s.mu.Lock()
	for _, r := range s.runs {
		r.spool.reset()
	}
	s.mu.Unlock()
	if s.nc != nil {
		s.nc.Close()
	}
	return nil
}

// Stats returns a source's retry count (NATS has no row conflicts).
func (s *Sink) Stats(source string) (retries, conflicts int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.stats[source]; st != nil {
		return st.retries, 0
	}
	return 0, 0
}

// Atomic reports whether transactions in row mode are published as atomic
// batches.
func (s *Sink) Atomic() bool { return s.atomic }
