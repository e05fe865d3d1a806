// Package config reads sluice pipeline files: strict YAML where an unknown
// key, a wrong type or a bad value is an error naming the file, line and
// key; defaults filled in; ${ENV} interpolation for secrets.
//
//	pipelines:
//	  - name: orders-replica
//	    sources:
//	      - name: primary
//	        dsn: mysql://repl:${REPL_PASSWORD}@127.0.0.1:3306
//	        include: ["shop.*"]
//	        start: oldest
//	    sink:
//	      type: mysql
//	      dsn: mysql://root@127.0.0.1:3307
package config

import (
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"
	_ "time/tzdata" // canal.timezone on machines without a zoneinfo database

	"gopkg.in/yaml.v3"

	"github.com/sluice-cdc/sluice/binlog"
	"github.com/sluice-cdc/sluice/mysqlconn"
)

// File is a configuration file.
type File struct {
	StateDir  string      `yaml:"state_dir" default:"sluice-state" doc:"directory for checkpoints and schema history; relative paths are relative to the file"`
	HTTP      HTTP        `yaml:"http" doc:"the metrics and status endpoint"`
	Log       Log         `yaml:"log" doc:"logging"`
	Pipelines []*Pipeline `yaml:"pipelines" required:"true" doc:"the pipelines to run"`

	// Path is the file's path, for messages.
	Path string `yaml:"-"`
}

// HTTP configures the metrics and status endpoint.
type HTTP struct {
	Listen string `yaml:"listen" default:"127.0.0.1:9180" doc:"address for /metrics and /status; \"off\" disables it"`
	// MaxLag makes /healthz fail while a source lags more than this. Off
	// by default: a catch-up after a restart lags by design, and a
	// liveness probe that restarts sluice for it would never let it
	// finish. Use it for readiness or alerting.
	MaxLag Duration `yaml:"healthz_max_lag" default:"0s" doc:"/healthz fails while a source's lag_seconds exceeds this (0: lag never fails it); for readiness checks, not liveness"`
}

// Log configures logging.
type Log struct {
	Level  string `yaml:"level" default:"info" enum:"debug|info|warn|error" doc:"log level"`
	Format string `yaml:"format" default:"text" enum:"text|json" doc:"log format"`
}

// Pipeline moves transactions from its sources to its sink.
type Pipeline struct {
	Name       string    `yaml:"name" required:"true" doc:"unique name; checkpoints are kept per pipeline and source"`
	Sources    []*Source `yaml:"sources" required:"true" doc:"the servers to read from"`
	Include    []string  `yaml:"include" doc:"for every source: only tables matching these patterns (with the source's own include)"`
	Exclude    []string  `yaml:"exclude" doc:"for every source: leave out tables matching these patterns"`
	Operations []string  `yaml:"operations" doc:"for every source: the row changes to keep, of insert, update, delete (default all)"`
	Routes     []*Route  `yaml:"routes" doc:"rename schema.table on the way to the sink, e.g. merge shards into one table"`
	// AccountStatements replicates CREATE/ALTER/DROP/RENAME USER, GRANT,
	// REVOKE, SET PASSWORD and role statements, which no table filter
	// selects. Off by default: on the target they create accounts and
	// set passwords.
	// IncludeQuery carries the statement text the source logs with row
	// events to the sink (the NATS formats' query fields).
	IncludeQuery      bool `yaml:"include_query" doc:"carry the statement the application ran (binlog_annotate_row_events / binlog_rows_query_log_events) in the NATS formats"`
	AccountStatements bool `yaml:"account_statements" doc:"replicate account statements (CREATE USER, GRANT, REVOKE, SET PASSWORD, roles); off by default"`
	Sink              Sink `yaml:"sink" required:"true" doc:"where transactions go"`
	// raw is the pipeline as written (for reload to tell what changed).
	raw      string
	LeaseTTL Duration `yaml:"lease_ttl" default:"8s" doc:"MySQL and NATS sinks: one process at a time writes the pipeline; others wait as standbys and take over this long after the active one dies or freezes (1s to 1h)"`
	// Snapshot "initial" copies the included tables (a consistent
	// snapshot per table) before a source without a checkpoint streams.
	Snapshot string `yaml:"snapshot" default:"never" enum:"never|initial" doc:"initial: a source without a checkpoint first copies every included table from a consistent snapshot (MariaDB source; a NATS sink gets each row as a read event), then streams from exactly that point"`
}

// Route renames the tables it matches, and can add columns that say where
// a row came from, so that rows of merged shards stay distinguishable.
type Route struct {
	Match        string `yaml:"match" required:"true" doc:"schema.table pattern: globs with * and ?, or ~regex on schema.table"`
	To           string `yaml:"to" required:"true" doc:"the target schema.table"`
	SourceColumn string `yaml:"source_column" doc:"fill this target column with the source's name"`
	SchemaColumn string `yaml:"schema_column" doc:"fill this target column with the original schema"`
	TableColumn  string `yaml:"table_column" doc:"fill this target column with the original table"`

	Matcher *binlog.Filter `yaml:"-"`
	Schema  string         `yaml:"-"` // of To
	Table   string         `yaml:"-"` // of To
}

// Route returns the first route matching schema.table, or nil.
func (p *Pipeline) Route(schema, table string) *Route {
	for _, r := range p.Routes {
		if r.Matcher.Match(schema, table) {
			return r
		}
	}
	return nil
}

// Merging reports whether the route can feed one target table from several
// source tables: its pattern matches more than one name, or the pipeline
// has more than one source.
func (r *Route) Merging(p *Pipeline) bool {
	return len(p.Sources) > 1 || strings.ContainsAny(r.Match, "*?~")
}

// Source is a server sluice reads as a replica.
type Source struct {
	Name     string   `yaml:"name" required:"true" doc:"name, unique in the pipeline"`
	DSN      string   `yaml:"dsn" required:"true" doc:"mysql://USER:PASSWORD@HOST:PORT; use ${VAR} for the password"`
	ServerID uint32   `yaml:"server_id" doc:"replica server id to register with; default derived from the pipeline and source names"`
	Include  []string `yaml:"include" doc:"only tables matching these db.table patterns (globs with * and ?, or ~regex)"`
	Exclude  []string `yaml:"exclude" doc:"leave out tables matching these patterns"`
	Start    Start    `yaml:"start" default:"current" doc:"where to start without a checkpoint: oldest, current, {gtid: SET} or {file: F, pos: N}"`
	SkipDDL  []string `yaml:"skip_ddl" doc:"DDL statements the schema tracker cannot parse, to skip, each by GTID or file:pos"`
	// Operations narrows the pipeline's operations for this source.
	Operations []string `yaml:"operations" doc:"the row changes to keep from this source, of insert, update, delete (default all)"`
	TLS        TLS      `yaml:"tls" doc:"TLS for the connection to the source (also settable as DSN parameters)"`

	// Parsed forms, set by validation.
	Conn mysqlconn.DSN `yaml:"-"`
	// Filter combines the source's and the pipeline's include/exclude.
	Filter *binlog.Filter `yaml:"-"`
	// Ops are the row operations kept (the source's and the pipeline's).
	Ops map[binlog.Op]bool `yaml:"-"`
}

// Sink is where a pipeline's transactions go. Its keys depend on its type.
type Sink struct {
	Type string `yaml:"type" required:"true" enum:"mysql|nats" doc:"mysql or nats"`

	// MySQL / MariaDB target.
	DSN        string   `yaml:"dsn" sink:"mysql" required_for:"mysql" doc:"target server: mysql://USER:PASSWORD@HOST:PORT"`
	DDL        string   `yaml:"ddl" sink:"mysql" default:"apply" enum:"apply|skip|stop" doc:"what to do with source DDL: apply it, skip it, or stop before it"`
	OnConflict string   `yaml:"on_conflict" sink:"mysql" default:"stop" enum:"stop|overwrite|skip" doc:"a duplicate key on insert or a missing row on update/delete: stop, overwrite (write the source's row), or skip the change; every conflict is logged"`
	DDLDone    []string `yaml:"ddl_done" sink:"mysql" doc:"with ddl: stop, GTIDs (or file:pos) of DDL you applied by hand; sluice records them as done"`
	Skip       []string `yaml:"skip" sink:"mysql" doc:"GTIDs (or file:pos) of transactions to record as done without applying them (a stuck transaction); each skip is logged as a warning"`
	Workers    int      `yaml:"workers" sink:"mysql" default:"4" doc:"target connections per source applying transactions on different rows at once; commits stay in source order (1: one connection, one transaction at a time; 1 to 64)"`
	// SnapshotBinlog "skip" writes the initial snapshot's rows without
	// the target's binlog (sql_log_bin = 0), as myloader does by default.
	SnapshotBinlog string `yaml:"snapshot_binlog" sink:"mysql" default:"write" enum:"write|skip" doc:"the initial snapshot's rows (snapshot: initial, sluice snapshot): write them to the target's binlog, or skip it (sql_log_bin = 0, needs SUPER or BINLOG ADMIN): faster and no binlog the size of the data, but the target's own replicas and anything reading its binlog never get the copied rows; streamed changes are always logged"`

	// NATS JetStream.
	URL        string `yaml:"url" sink:"nats" required_for:"nats" doc:"NATS server URL(s), comma-separated: nats://HOST:4222"`
	Creds      string `yaml:"creds" sink:"nats" doc:"path of a NATS credentials (.creds) file"`
	NKey       string `yaml:"nkey" sink:"nats" doc:"path of an NKey seed file"`
	TLS        TLS    `yaml:"tls" sink:"nats|mysql" doc:"TLS for the connection to the target or NATS"`
	Stream     Stream `yaml:"stream" sink:"nats" doc:"the JetStream stream to publish to"`
	Subject    string `yaml:"subject" sink:"nats" default:"cdc.{schema}.{table}" doc:"subject template: {schema}, {table}, {op}, {pk} (a hash bucket of the primary key, see pk_buckets), {source}"`
	DDLSubject string `yaml:"ddl_subject" sink:"nats" default:"cdc._ddl" doc:"subject template for DDL statements: {schema}, {table} (the table the statement changes), {pipeline}; cdc.{schema}.{table} puts a table's DDL beside its rows"`
	// TransactionSubject is where mode: transaction publishes whole
	// transactions, and format: debezium its BEGIN/END events.
	TransactionSubject string   `yaml:"transaction_subject" sink:"nats" doc:"subject for whole transactions (mode: transaction) and Debezium's transaction BEGIN/END events; {pipeline}; default the subject template's prefix and _txn (cdc._txn)"`
	PKBuckets          int      `yaml:"pk_buckets" sink:"nats" default:"16" doc:"number of {pk} hash buckets"`
	Format             string   `yaml:"format" sink:"nats" default:"sluice" enum:"sluice|canal|debezium" doc:"message format"`
	Mode               string   `yaml:"mode" sink:"nats" enum:"transaction|row" doc:"one message per transaction (sluice's transaction envelope), or one per row change; default row for canal and debezium, transaction for sluice"`
	Canal              Canal    `yaml:"canal" sink:"nats" doc:"options of format: canal"`
	Debezium           Debezium `yaml:"debezium" sink:"nats" doc:"options of format: debezium (named after Debezium's own settings)"`
	Checkpoint         string   `yaml:"checkpoint" sink:"nats" default:"stream" enum:"stream|kv" doc:"where the position lives: the stream's last message, or a KV bucket"`
	KVBucket           string   `yaml:"kv_bucket" sink:"nats" default:"sluice_checkpoints" doc:"KV bucket for checkpoint: kv"`
	Outbox             []Outbox `yaml:"outbox" sink:"nats" doc:"outbox tables relayed as messages (transactional outbox pattern)"`

	Conn mysqlconn.DSN `yaml:"-"`
}

// Canal tunes format: canal.
type Canal struct {
	TimeZone string `yaml:"timezone" default:"UTC" doc:"time zone TIMESTAMP values are printed in (Canal prints its JVM's zone), an IANA name such as Asia/Shanghai"`
	EnumSet  string `yaml:"enum_set" default:"index" enum:"index|label" doc:"ENUM and SET values as Canal prints them (index: the ENUM index, the SET bitmask) or as their member names (label)"`
	Rows     string `yaml:"rows" default:"event" enum:"event|row" doc:"event: a FlatMessage holds a run of changes of one table and operation in data[], as Canal's rows events; row: one row per FlatMessage"`

	Location *time.Location `yaml:"-"`
}

// Debezium tunes format: debezium.
type Debezium struct {
	Schemas                    bool   `yaml:"schemas" default:"true" doc:"JsonConverter's schemas.enable: each body is {schema, payload}; false sends the payload only"`
	TopicPrefix                string `yaml:"topic_prefix" doc:"Debezium's topic.prefix: source.name and the schema names' prefix (default: the pipeline's name)"`
	DecimalHandlingMode        string `yaml:"decimal_handling_mode" default:"precise" enum:"precise|string|double" doc:"DECIMAL as Kafka Connect Decimal bytes (precise), a string, or a double"`
	BigintUnsignedHandlingMode string `yaml:"bigint_unsigned_handling_mode" default:"long" enum:"long|precise" doc:"BIGINT UNSIGNED as a Java long (values above 2^63-1 wrap, as in Debezium) or a Decimal (precise)"`
	TransactionMetadata        bool   `yaml:"transaction_metadata" default:"false" doc:"provide.transaction.metadata: the transaction block in each event and BEGIN/END events on transaction_subject"`
	Tombstones                 bool   `yaml:"tombstones" default:"false" doc:"tombstones.on.delete: an empty message with the key after each delete (Debezium Server's NATS sink drops them)"`
	KeySubject                 string `yaml:"key_subject" doc:"subject template ({schema}, {table}, {op}) to also publish each event's key as a message of its own; the Sluice-Key header always carries it"`
}

// TLS configures a TLS connection.
type TLS struct {
	Mode       string `yaml:"mode" doc:"MySQL/MariaDB only: disabled, preferred, required, verify-ca or verify-identity (as the mysql client's --ssl-mode)"`
	CA         string `yaml:"ca" doc:"CA certificate file"`
	Cert       string `yaml:"cert" doc:"client certificate file"`
	Key        string `yaml:"key" doc:"client key file"`
	ServerName string `yaml:"server_name" doc:"MySQL/MariaDB only: the name to verify in the server's certificate (default the DSN's host)"`
}

// mysql is the TLS block as a MySQL/MariaDB connection's settings.
func (t TLS) mysql() mysqlconn.TLS {
	return mysqlconn.TLS{Mode: t.Mode, CA: t.CA, Cert: t.Cert, Key: t.Key, ServerName: t.ServerName}
}

// Stream describes a JetStream stream.
type Stream struct {
	Name     string   `yaml:"name" default:"CDC" doc:"stream name"`
	Subjects []string `yaml:"subjects" doc:"subjects the stream holds; default the subject templates' prefixes, e.g. cdc.>"`
	Create   bool     `yaml:"create" default:"true" doc:"create the stream if it does not exist"`
	Replicas int      `yaml:"replicas" default:"1" doc:"replicas when creating the stream"`
}

// Outbox relays inserts into an outbox table as messages whose subject, key
// and payload come from its columns, as Debezium's outbox event router does.
type Outbox struct {
	Table         string `yaml:"table" required:"true" doc:"the outbox table, db.table"`
	SubjectColumn string `yaml:"subject_column" default:"topic" doc:"column holding the subject (appended to subject_prefix)"`
	SubjectPrefix string `yaml:"subject_prefix" default:"outbox." doc:"prefix for the subject"`
	KeyColumn     string `yaml:"key_column" default:"id" doc:"column holding the message id / key"`
	PayloadColumn string `yaml:"payload_column" default:"payload" doc:"column holding the payload, published as is"`
	Delete        bool   `yaml:"delete" default:"false" doc:"delete relayed rows from the source table once published"`
}

// Duration is a YAML duration such as 8s, 500ms or 1m.
type Duration struct{ time.Duration }

func (v *Duration) decodeNode(d *decoder, n *yaml.Node, path string) {
	s, ok := d.scalar(n, path)
	if !ok {
		return
	}
	t, err := time.ParseDuration(s)
	if err != nil {
		d.errorf(n, path, "%q: want a duration such as 8s, 500ms or 1m", s)
		return
	}
	v.Duration = t
}

// Start is where a source starts without a checkpoint.
type Start struct{ binlog.Start }

func (s *Start) decodeNode(d *decoder, n *yaml.Node, path string) {
	if n.Kind == yaml.ScalarNode {
		switch v, _ := d.scalar(n, path); v {
		case "oldest":
			s.Mode = binlog.StartOldest
		case "current", "":
			s.Mode = binlog.StartCurrent
		default:
			d.errorf(n, path, "%q: want oldest, current, {gtid: SET} or {file: NAME, pos: N}", v)
		}
		return
	}
	var raw struct {
		GTID string `yaml:"gtid" doc:"start after this GTID set"`
		File string `yaml:"file" doc:"start in this binlog file"`
		Pos  uint64 `yaml:"pos" doc:"at this offset (default 4)"`
	}
	before := len(d.errs)
	d.decodeStruct(n, reflect.ValueOf(&raw).Elem(), path)
	if len(d.errs) > before {
		return
	}
	switch {
	case raw.GTID != "" && raw.File != "":
		d.errorf(n, path, "give gtid or file/pos, not both")
	case raw.GTID != "":
		set, err := binlog.ParseGTIDSet(raw.GTID)
		if err != nil {
			d.errorf(n, path+".gtid", "%v", err)
			return
		}
		s.Mode, s.GTID = binlog.StartGTID, set
	case raw.File != "":
		s.Mode, s.Pos = binlog.StartPosition, binlog.Position{File: raw.File, Pos: max(raw.Pos, 4)}
	default:
		d.errorf(n, path, "want gtid or file (and pos)")
	}
}

// Load reads and validates a configuration file.
func Load(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, Errors{{File: path, Msg: fmt.Sprintf("cannot read the file: %v", err)}}
	}
	return Parse(path, data, osEnv)
}

// LoadUnset loads a file as Load does, except that ${VAR}s that are not
// set read as empty; it returns their names. For commands that may not
// need every secret (sluice status asking a running daemon).
func LoadUnset(path string) (*File, []string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, Errors{{File: path, Msg: fmt.Sprintf("cannot read the file: %v", err)}}
	}
	var unset []string
	f, err := Parse(path, data, func(name string) (string, bool) {
		if v, ok := osEnv(name); ok {
			return v, true
		}
		if !slices.Contains(unset, name) {
			unset = append(unset, name)
		}
		return "", true
	})
	return f, unset, err
}

// Parse reads and validates configuration from data; file names it in
// messages; env looks up ${VAR} references.
func Parse(file string, data []byte, env func(string) (string, bool)) (*File, error) {
	var f File
	if errs := parse(file, data, &f, env); len(errs) > 0 {
		return nil, errs
	}
	f.Path = file
	if errs := f.validate(data); len(errs) > 0 {
		return nil, errs
	}
	if !filepath.IsAbs(f.StateDir) {
		f.StateDir = filepath.Join(filepath.Dir(file), f.StateDir)
	}
	var root yaml.Node
	_ = yaml.Unmarshal(data, &root)
	for i, p := range f.Pipelines {
		if n := find(&root, fmt.Sprintf("pipelines[%d]", i)); n != nil {
			b, _ := yaml.Marshal(n)
			p.raw = string(b)
		}
	}
	return &f, nil
}

// Fingerprint changes whenever the pipeline's definition does: its YAML
// as written and the values its ${VAR} references had.
func (p *Pipeline) Fingerprint() string {
	var b strings.Builder
	b.WriteString(p.raw)
	for _, s := range p.Sources {
		b.WriteString("\x00" + s.DSN)
	}
	b.WriteString("\x00" + p.Sink.DSN + "\x00" + p.Sink.URL)
	return b.String()
}

// validate checks what the field tags cannot: names, DSNs, patterns.
func (f *File) validate(data []byte) Errors {
	var root yaml.Node
	_ = yaml.Unmarshal(data, &root)
	d := &decoder{file: f.Path}
	at := func(path string) *yaml.Node { return find(&root, path) }
	if len(f.Pipelines) == 0 {
		d.errorf(at("pipelines"), "pipelines", "no pipelines")
	}
	names := map[string]bool{}
	ids := map[uint32]string{}
	for i, p := range f.Pipelines {
		pp := fmt.Sprintf("pipelines[%d]", i)
		if names[p.Name] {
			d.errorf(at(pp+".name"), pp+".name", "pipeline name %q is used twice", p.Name)
		}
		names[p.Name] = true
		if !validName(p.Name) {
			d.errorf(at(pp+".name"), pp+".name", "%q: use letters, digits, '-', '_' and '.'", p.Name)
		}
		if len(p.Sources) == 0 {
			d.errorf(at(pp+".sources"), pp+".sources", "a pipeline needs at least one source")
		}
		if p.LeaseTTL.Duration < time.Second || p.LeaseTTL.Duration > time.Hour {
			d.errorf(at(pp+".lease_ttl"), pp+".lease_ttl", "%s: want 1s to 1h", p.LeaseTTL.Duration)
		}
		sources := map[string]bool{}
		for j, s := range p.Sources {
			sp := fmt.Sprintf("%s.sources[%d]", pp, j)
			if sources[s.Name] {
				d.errorf(at(sp+".name"), sp+".name", "source name %q is used twice in pipeline %s", s.Name, p.Name)
			}
			sources[s.Name] = true
			if !validName(s.Name) {
				d.errorf(at(sp+".name"), sp+".name", "%q: use letters, digits, '-', '_' and '.'", s.Name)
			}
			var err error
			if s.Conn, err = mysqlconn.ParseDSN(s.DSN); err != nil {
				d.errorf(at(sp+".dsn"), sp+".dsn", "%v", err)
			} else if s.Conn, err = s.Conn.WithTLS(s.TLS.mysql()); err != nil {
				d.errorf(at(sp+".tls"), sp+".tls", "%v", err)
			}
			if s.Filter, err = binlog.NewFilter(s.Include, s.Exclude); err != nil {
				d.errorf(at(sp), sp, "%v", err)
			} else if pf, err := binlog.NewFilter(p.Include, p.Exclude); err != nil {
				d.errorf(at(pp), pp, "%v", err)
			} else {
				s.Filter = s.Filter.And(pf)
			}
			s.Ops = map[binlog.Op]bool{binlog.Insert: true, binlog.Update: true, binlog.Delete: true}
			for _, set := range []struct {
				path string
				ops  []string
			}{{pp + ".operations", p.Operations}, {sp + ".operations", s.Operations}} {
				if len(set.ops) == 0 {
					continue
				}
				allowed := map[binlog.Op]bool{}
				for _, o := range set.ops {
					op, err := binlog.ParseOp(o)
					if err != nil {
						d.errorf(at(set.path), set.path, "%v", err)
						continue
					}
					allowed[op] = true
				}
				for op := range s.Ops {
					if !allowed[op] {
						delete(s.Ops, op)
					}
				}
			}
			if s.ServerID == 0 {
				s.ServerID = DefaultServerID(p.Name, s.Name)
			}
			if other, dup := ids[s.ServerID]; dup {
				d.errorf(at(sp+".server_id"), sp+".server_id", "server_id %d is also used by %s: each source connection needs its own", s.ServerID, other)
			}
			ids[s.ServerID] = p.Name + "/" + s.Name
		}
		for j, r := range p.Routes {
			rp := fmt.Sprintf("%s.routes[%d]", pp, j)
			var err error
			if r.Matcher, err = binlog.NewFilter([]string{r.Match}, nil); err != nil {
				d.errorf(at(rp+".match"), rp+".match", "%v", err)
			}
			var ok bool
			if r.Schema, r.Table, ok = strings.Cut(r.To, "."); !ok || r.Schema == "" || r.Table == "" || strings.ContainsAny(r.To, "*?~") {
				d.errorf(at(rp+".to"), rp+".to", "%q: want schema.table", r.To)
			}
		}
		if p.Sink.Type == "mysql" {
			if p.Sink.Workers < 1 || p.Sink.Workers > 64 {
				d.errorf(at(pp+".sink.workers"), pp+".sink.workers", "%d: want 1 to 64", p.Sink.Workers)
			}
			var err error
			if p.Sink.Conn, err = mysqlconn.ParseDSN(p.Sink.DSN); err != nil {
				d.errorf(at(pp+".sink.dsn"), pp+".sink.dsn", "%v", err)
			} else if p.Sink.Conn, err = p.Sink.Conn.WithTLS(p.Sink.TLS.mysql()); err != nil {
				d.errorf(at(pp+".sink.tls"), pp+".sink.tls", "%v", err)
			}
		}
		if p.Sink.Type == "nats" {
			for _, tmpl := range []struct{ key, value string }{
				{"subject", p.Sink.Subject}, {"ddl_subject", p.Sink.DDLSubject},
				{"transaction_subject", p.Sink.TransactionSubject}, {"debezium.key_subject", p.Sink.Debezium.KeySubject},
			} {
				for _, m := range rePlaceholder.FindAllString(tmpl.value, -1) {
					if !slices.Contains(subjectPlaceholders, m) {
						d.errorf(at(pp+".sink."+tmpl.key), pp+".sink."+tmpl.key, "unknown placeholder %s: use %s", m, strings.Join(subjectPlaceholders, ", "))
					}
				}
			}
			k := &p.Sink
			for _, opt := range []string{"canal", "debezium"} {
				if n := at(pp + ".sink." + opt); n != at(pp+".sink") && k.Format != opt {
					d.errorf(n, pp+".sink."+opt, "options of format %s, but format is %s: set format: %s or remove them", opt, k.Format, opt)
				}
			}
			loc, err := time.LoadLocation(k.Canal.TimeZone)
			if err != nil || k.Canal.TimeZone == "" || k.Canal.TimeZone == "Local" {
				d.errorf(at(pp+".sink.canal.timezone"), pp+".sink.canal.timezone", "unknown time zone %q: use an IANA name such as UTC or Asia/Shanghai", k.Canal.TimeZone)
			}
			k.Canal.Location = loc
		}
		if p.Sink.Type == "nats" && (p.Sink.TLS.Mode != "" || p.Sink.TLS.ServerName != "") {
			d.errorf(at(pp+".sink.tls"), pp+".sink.tls", "mode and server_name apply to MySQL/MariaDB connections; a NATS connection uses TLS when ca or cert is set")
		}
	}
	return d.errs
}

// The placeholders a subject template may hold.
var (
	subjectPlaceholders = []string{"{schema}", "{table}", "{op}", "{pk}", "{pipeline}", "{source}"}
	rePlaceholder       = regexp.MustCompile(`\{[^{}]*\}`)
)

func validName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !(c == '-' || c == '_' || c == '.' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// DefaultServerID derives a replica server id from the pipeline and source
// names: stable across restarts, and unlikely to collide with the small ids
// servers usually have.
func DefaultServerID(pipeline, source string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(pipeline + "/" + source))
	return 1_000_000_000 + h.Sum32()%3_000_000_000
}

// find returns the node at a key path such as "pipelines[0].sink.dsn", or
// the closest existing parent.
func find(root *yaml.Node, path string) *yaml.Node {
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	for _, part := range strings.Split(path, ".") {
		key, idx := part, -1
		if i := strings.IndexByte(part, '['); i >= 0 {
			key = part[:i]
			fmt.Sscanf(part[i:], "[%d]", &idx)
		}
		var next *yaml.Node
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == key {
					next = n.Content[i+1]
				}
			}
		}
		if next == nil {
			return n
		}
		n = next
		if idx >= 0 {
			if n.Kind != yaml.SequenceNode || idx >= len(n.Content) {
				return n
			}
			n = n.Content[idx]
		}
	}
	return n
}
