package binlog

import (
	"context"
	"crypto/tls"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"strings"
	"sync"
	"time"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/sluice-cdc/sluice/backoff"
	"github.com/sluice-cdc/sluice/binlog/schema"
	"github.com/sluice-cdc/sluice/mysqlconn"
)

// StartMode says where a live source begins.
type StartMode int

const (
	// StartCurrent begins at the server's current end: only new transactions.
	StartCurrent StartMode = iota
	// StartOldest begins at the oldest binlog the server still has.
	StartOldest
	// StartGTID begins after a GTID set: every transaction not in it.
	StartGTID
	// StartPosition begins at a binlog file and offset.
	StartPosition
)

// Start is a start position.
type Start struct {
	Mode StartMode
	GTID GTIDSet
	Pos  Position
}

// LiveConfig configures a connection to a server as a replica.
type LiveConfig struct {
	DSN mysqlconn.DSN
	// ServerID is the id sluice registers with; it must differ from every
	// server and replica in the topology.
	ServerID uint32
	Start    Start
	// StopAtEnd makes Next return io.EOF once everything the server had
	// when the source connected has been returned.
	StopAtEnd bool
	Decode    DecodeOptions
	// Heartbeat is how often an idle server sends a heartbeat (default 5s).
	Heartbeat time.Duration
	// MaxRetries bounds reconnection attempts after a lost connection; zero
	// retries forever.
	MaxRetries int
	Logger     *slog.Logger
}

// LiveSource reads transactions from a server over the replication
// protocol. It reconnects with backoff after network errors and resumes
// exactly after the last transaction it returned.
type LiveSource struct {
	cfg  LiveConfig
	log  *slog.Logger
	db   *sql.DB
	Info *ServerInfo

	tls      *tls.Config // for the binlog connection; nil: plain text
	syncer   *replication.BinlogSyncer
	streamer *replication.BinlogStreamer
	asm      *assembler
	queue    []*Txn
	end      Position // for StopAtEnd

	// Resume state: what has been returned so far.
	start    *Txn // see StartPoint
	useGTID  bool
	resumed  GTIDSet
	resumePs Position
	// State is "connecting", "streaming" or "reconnecting", for status.
	// state is read by status pollers while Next runs: see setState.
	stateMu  sync.Mutex
	state    string
	retries  int
	lastSeen time.Time
}

// Connect checks the server and starts streaming from cfg.Start.
func Connect(ctx context.Context, cfg LiveConfig) (*LiveSource, error) {
	if cfg.ServerID == 0 {
		return nil, mysqlconn.UserErrorf("server id 0 is not allowed: choose a replica server id unique in the topology")
	}
	if cfg.Heartbeat == 0 {
		cfg.Heartbeat = 5 * time.Second
	}
	if cfg.StopAtEnd && cfg.Heartbeat > time.Second {
		cfg.Heartbeat = time.Second // notice the end of an idle log quickly
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	s := &LiveSource{cfg: cfg, log: log.With("server", cfg.DSN.Addr()), state: "connecting"}
	db, err := mysqlconn.Open(ctx, cfg.DSN, nil)
	if err != nil {
		return nil, err
	}
	s.db = db
	if s.tls, err = binlogTLS(ctx, cfg.DSN, db); err != nil {
		db.Close()
		return nil, err
	}
	if s.Info, err = Inspect(ctx, db, cfg.DSN); err != nil {
		db.Close()
		return nil, err
	}
	if s.Info.ServerID == cfg.ServerID {
		db.Close()
		return nil, mysqlconn.UserErrorf("%s: the source's own server_id is %d; register with a different server_id", cfg.DSN, cfg.ServerID)
	}
	if cfg.Decode.Catalog == nil {
		if cfg.Decode.Catalog, err = schema.Load(ctx, db); err != nil {
			db.Close()
			return nil, fmt.Errorf("%s: %w", cfg.DSN, err)
		}
	}
	s.end = s.Info.Current
	if cfg.Decode.Resolve == nil {
		cfg.Decode.Resolve = func(schemaName, table string) (*schema.Table, error) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			return schema.LoadTable(ctx, db, schemaName, table)
		}
	}

	opts := cfg.Decode
	st := cfg.Start
	switch st.Mode {
	case StartCurrent:
		if s.Info.GTIDMode {
			st = Start{Mode: StartGTID, GTID: s.Info.Executed}
			if s.Info.Flavor == MariaDB && s.Info.Executed.IsEmpty() {
				st = Start{Mode: StartPosition, Pos: s.Info.Current}
			}
		} else {
			st = Start{Mode: StartPosition, Pos: s.Info.Current}
		}
		if st.Mode == StartPosition {
			opts.StartSet = s.Info.Executed
		}
	case StartOldest:
		if len(s.Info.Files) == 0 {
			db.Close()
			return nil, mysqlconn.UserErrorf("%s: the server lists no binary logs", cfg.DSN)
		}
		st = Start{Mode: StartPosition, Pos: Position{s.Info.Files[0], 4}}
	case StartPosition:
		// Read the file from its start so the executed GTID set is exact,
		// but emit only what ends after the requested position.
		if st.Pos.Pos > 4 {
			opts.SkipUntil = st.Pos
		}
		st.Pos.Pos = 4
	}
	s.start = &Txn{Executed: opts.StartSet.Clone(), Pos: cfg.Start.Pos}
	switch {
	case cfg.Start.Mode == StartCurrent:
		s.start.Executed, s.start.Pos = s.Info.Executed.Clone(), s.Info.Current
	case cfg.Start.Mode == StartOldest:
		s.start.Pos = st.Pos
	case st.Mode == StartGTID:
		s.start.Executed = st.GTID.Clone()
	}
	if st.Mode == StartGTID {
		if s.Info.Flavor == MariaDB != st.GTID.IsMariaDB() && !st.GTID.IsEmpty() {
			db.Close()
			return nil, mysqlconn.UserErrorf("%s: GTID set %q is not a %s GTID set", cfg.DSN, st.GTID, s.Info.Flavor)
		}
		opts.StartSet = st.GTID
		s.useGTID = true
		s.resumed = st.GTID.Clone()
	} else {
		s.resumePs = st.Pos
		s.resumed = opts.StartSet.Clone()
	}
	opts.Logger = s.log
	s.asm = newAssembler(opts)
	if err := s.startStream(ctx, st); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

func (s *LiveSource) syncerConfig() replication.BinlogSyncerConfig {
	d := s.cfg.DSN
	hb := s.cfg.Heartbeat
	return replication.BinlogSyncerConfig{
		ServerID:                s.cfg.ServerID,
		Flavor:                  string(s.Info.Flavor),
		Host:                    d.Host,
		Port:                    uint16(d.Port),
		User:                    d.User,
		Password:                d.Password,
		TLSConfig:               s.tls,
		Localhost:               "sluice",
		ParseTime:               false,
		TimestampStringLocation: time.UTC,
		UseDecimal:              false,
		RenderJSONAsMySQLText:   true,
		HeartbeatPeriod:         hb,
		// A silent server (no event, no heartbeat) is noticed after a few
		// missed heartbeats; the floor leaves room for a large packet.
		ReadTimeout:               max(3*hb, 10*time.Second),
		DisableRetrySync:          true, // reconnection resumes from sluice's own state, see Next
		VerifyChecksum:            true,
		FillZeroLogPos:            s.Info.Flavor == MariaDB,
		EventCacheCount:           256,
		Logger:                    slog.New(libraryLog{s.log.Handler()}),
		Dialer:                    (&net.Dialer{Timeout: d.ConnectTimeout(), KeepAlive: 30 * time.Second}).DialContext,
		RowsEventDecodeFunc:       rowsDecodeFunc(s.cfg.Decode),
		PayloadDecoderConcurrency: 1,
	}
}

func (s *LiveSource) startStream(ctx context.Context, st Start) error {
	s.syncer = replication.NewBinlogSyncer(s.syncerConfig())
	var err error
	if st.Mode == StartGTID {
		var gs gomysql.GTIDSet
		if s.Info.Flavor == MariaDB {
			gs, err = gomysql.ParseMariadbGTIDSet(st.GTID.MariaDBPos())
		} else {
			gs, err = gomysql.ParseMysqlGTIDSet(st.GTID.MySQLString())
		}
		if err == nil {
			s.streamer, err = s.syncer.StartSyncGTID(gs)
		}
	} else {
		if st.Pos.Pos > math.MaxUint32 {
			s.syncer.Close()
			return mysqlconn.UserErrorf("%s: position %s is past 4 GiB, which the replication protocol cannot ask for: start from a GTID instead", s.cfg.DSN, st.Pos)
		}
		s.asm.file = st.Pos.File
		s.streamer, err = s.syncer.StartSync(gomysql.Position{Name: st.Pos.File, Pos: uint32(st.Pos.Pos)})
	}
	if err != nil {
		s.syncer.Close()
		return mysqlconn.ExplainDumpError(s.cfg.DSN, err)
	}
	s.setState("streaming")
	return nil
}

// binlogTLS is the TLS configuration of the replication connection. Under
// tls: preferred it is encrypted when the SQL connection could be.
func binlogTLS(ctx context.Context, d mysqlconn.DSN, db *sql.DB) (*tls.Config, error) {
	tc, err := d.TLSConfig()
	if err != nil || tc == nil || d.TLS.Mode != mysqlconn.TLSPreferred {
		return tc, err
	}
	enc, err := mysqlconn.Encrypted(ctx, db)
	if err != nil {
		return nil, mysqlconn.ExplainConnError(d, err)
	}
	if !enc {
		return nil, nil
	}
	return tc, nil
}

// Next implements Source.
func (s *LiveSource) Next(ctx context.Context) (*Txn, error) {
	for {
		if len(s.queue) > 0 {
			t := s.queue[0]
			s.queue = s.queue[1:]
			if s.useGTID || !t.Executed.IsEmpty() {
				s.resumed = t.Executed
			}
			s.resumePs = t.Pos
			return t, nil
		}
		if s.cfg.StopAtEnd && !s.asm.inTxn() && s.asm.file != "" && s.asm.position().Compare(s.end) >= 0 {
			return nil, io.EOF
		}
		ev, err := s.streamer.GetEvent(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if strings.HasPrefix(err.Error(), "panic ") {
				// go-mysql's reader recovered a panic decoding an event:
				// reading it again would fail again.
				return nil, fmt.Errorf("%s: the server sent an event sluice cannot decode after %s: %s", s.cfg.DSN, s.asm.position(), libraryError(err))
			}
			if err := s.reconnect(ctx, err); err != nil {
				return nil, err
			}
			continue
		}
		s.lastSeen = time.Now()
		s.retries = 0
		if hb, ok := ev.Event.(*replication.HeartbeatEvent); ok {
			if hb.Filename != "" {
				s.asm.file = hb.Filename
			}
			if ev.Header.LogPos > 0 && !s.asm.inTxn() {
				s.asm.lastPos = uint64(ev.Header.LogPos)
			}
			continue
		}
		if err := s.asm.safeHandle(ev, uint64(ev.Header.LogPos)); err != nil {
			return nil, err
		}
		s.queue = append(s.queue, s.asm.take()...)
	}
}

// reconnect resumes the stream after a broken connection, from the last
// transaction returned. Server errors that retrying cannot fix are returned.
func (s *LiveSource) reconnect(ctx context.Context, cause error) error {
	if mysqlconn.ErrorNumber(cause) != 0 && !mysqlconn.Retryable(cause) {
		return mysqlconn.ExplainConnError(s.cfg.DSN, cause)
	}
	s.syncer.Close()
	for _, t := range s.queue {
		t.Close()
	}
	s.queue = nil
	wait := backoff.Policy{Initial: time.Second, Max: 30 * time.Second}.Timer()
	for {
		s.retries++
		s.setState("reconnecting")
		if s.cfg.MaxRetries > 0 && s.retries > s.cfg.MaxRetries {
			return fmt.Errorf("%s: connection lost and %d reconnection attempts failed: %w", s.cfg.DSN, s.cfg.MaxRetries, cause)
		}
		d := wait.Next()
		s.log.Warn("source connection lost, reconnecting", "error", cause.Error(), "attempt", s.retries, "in", d)
		if err := backoff.Sleep(ctx, d); err != nil {
			return err
		}
		s.asm.resume(s.resumed, s.useGTID)
		st := Start{Mode: StartPosition, Pos: s.resumePs}
		if s.useGTID {
			st = Start{Mode: StartGTID, GTID: s.resumed}
		}
		err := s.startStream(ctx, st)
		if err == nil {
			s.log.Info("source reconnected", "resume", s.ResumePoint())
			return nil
		}
		if !mysqlconn.Retryable(err) {
			return err
		}
		cause = err
	}
}

// ResumePoint describes where the source would resume.
func (s *LiveSource) ResumePoint() string {
	if s.useGTID {
		return "gtid " + s.resumed.String()
	}
	return "position " + s.resumePs.String()
}

// StartPoint is an empty transaction standing for where the stream
// started (its Executed set and Pos): a consumer without a checkpoint
// saves it first, so that a restart before the first transaction resumes
// there, not at a "current" that has moved on.
func (s *LiveSource) StartPoint() *Txn {
	t := *s.start
	return &t
}

// State is the connection state: connecting, streaming or reconnecting.
func (s *LiveSource) State() string {
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	return s.state
}

func (s *LiveSource) setState(st string) {
	s.stateMu.Lock()
	s.state = st
	s.stateMu.Unlock()
}

// Catalog implements Source.
func (s *LiveSource) Catalog() *schema.Catalog { return s.asm.Catalog() }

// DB is the source's SQL connection (for schema and status queries).
func (s *LiveSource) DB() *sql.DB { return s.db }

// End is the server's position when the source connected.
func (s *LiveSource) End() Position { return s.end }

// Close implements Source.
func (s *LiveSource) Close() error {
	if s.syncer != nil {
		s.syncer.Close()
	}
	for _, t := range s.queue {
		t.Close()
	}
	s.queue = nil
	s.asm.close()
	return s.db.Close()
}

// libraryLog carries go-mysql's own log records one level down: its
// ERROR lines (a lost connection it reports while sluice reconnects) are
// warnings, since sluice logs every error it acts on itself, and its INFO
// chatter is debug.
type libraryLog struct{ slog.Handler }

func demote(l slog.Level) slog.Level {
	if l >= slog.LevelWarn {
		return slog.LevelWarn
	}
	return slog.LevelDebug
}

func (h libraryLog) Enabled(ctx context.Context, l slog.Level) bool {
	return h.Handler.Enabled(ctx, demote(l))
}

func (h libraryLog) Handle(ctx context.Context, r slog.Record) error {
	r.Level = demote(r.Level)
	r.Message = "go-mysql: " + r.Message
	return h.Handler.Handle(ctx, r)
}

func (h libraryLog) WithAttrs(a []slog.Attr) slog.Handler { return libraryLog{h.Handler.WithAttrs(a)} }
func (h libraryLog) WithGroup(n string) slog.Handler      { return libraryLog{h.Handler.WithGroup(n)} }
