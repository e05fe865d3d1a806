package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sluice-cdc/sluice/binlog"
)

func testEnv(k string) (string, bool) {
	if k == "SLUICE_TEST_PASSWORD" {
		return "s3cret", true
	}
	return "", false
}

func load(t *testing.T, name string) (*File, error) {
	t.Helper()
	path := filepath.Join("testdata", name)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return Parse(path, data, testEnv)
}

// TestBadFiles pins the exact message each bad file gives: file, line,
// column, key path and what to change.
func TestBadFiles(t *testing.T) {
	tests := []struct{ file, want string }{
		{"malformed.bad.yml", "testdata/malformed.bad.yml:2:1: not valid YAML: did not find expected '-' indicator"},
		{"bad_placeholder.bad.yml", `testdata/bad_placeholder.bad.yml:9:16: pipelines[0].sink.subject: unknown placeholder {tabel}: use {schema}, {table}, {op}, {pk}, {pipeline}, {source}`},
		{"typo_key.bad.yml", `testdata/typo_key.bad.yml:7:9: pipelines[0].sources[0]: unknown key "servr_id" in source: did you mean "server_id"?`},
		{"unknown_key.bad.yml", `testdata/unknown_key.bad.yml:7:9: pipelines[0].sources[0]: unknown key "colour" in source (known keys: name, dsn, server_id, include, exclude, start, skip_ddl, operations, tls)`},
		{"missing_sink.bad.yml", `testdata/missing_sink.bad.yml:3:5: pipelines[0]: missing required key "sink"`},
		{"bad_dsn.bad.yml", `testdata/bad_dsn.bad.yml:6:14: pipelines[0].sources[0].dsn: DSN "repl:secret@127.0.0.1:3306": want mysql://USER:PASSWORD@HOST:PORT`},
		{"env_unset.bad.yml", "testdata/env_unset.bad.yml:6:14: pipelines[0].sources[0].dsn: environment variable SLUICE_UNSET_VARIABLE is not set"},
		{"bad_lease_ttl.bad.yml", `testdata/bad_lease_ttl.bad.yml:4:16: pipelines[0].lease_ttl: 100ms: want 1s to 1h`},
		{"bad_duration.bad.yml", `testdata/bad_duration.bad.yml:4:16: pipelines[0].lease_ttl: "10": want a duration such as 8s, 500ms or 1m`},
		{"bad_enum.bad.yml", `testdata/bad_enum.bad.yml:9:12: pipelines[0].sink.ddl: "sometimes" is not one of apply, skip, stop`},
		{"dup_pipeline.bad.yml", `testdata/dup_pipeline.bad.yml:6:11: pipelines[1].name: pipeline name "a" is used twice`},
		{"bad_start.bad.yml", `testdata/bad_start.bad.yml:7:16: pipelines[0].sources[0].start: "yesterday": want oldest, current, {gtid: SET} or {file: NAME, pos: N}`},
		{"bad_gtid.bad.yml", `testdata/bad_gtid.bad.yml:7:16: pipelines[0].sources[0].start.gtid: invalid GTID set "0-1": "0-1" is neither a MySQL GTID (uuid:1-5) nor a MariaDB one (domain-server-seq)`},
		{"wrong_sink_key.bad.yml", `testdata/wrong_sink_key.bad.yml:8:7: pipelines[0].sink: key "url" is for sink type nats, not mysql`},
		{"bad_pattern.bad.yml", "testdata/bad_pattern.bad.yml:5:9: pipelines[0].sources[0]: pattern \"~shop_([\": error parsing regexp: missing closing ]: `[`"},
		{"dup_key.bad.yml", `testdata/dup_key.bad.yml:7:9: pipelines[0].sources[0]: key "dsn" appears twice (first on line 6)`},
		{"wrong_type.bad.yml", `testdata/wrong_type.bad.yml:7:20: pipelines[0].sources[0].server_id: want a non-negative integer of at most 32 bits, got "first"`},
		{"empty.bad.yml", "testdata/empty.bad.yml: the file is empty"},
		{"no_pipelines.bad.yml", "testdata/no_pipelines.bad.yml:2:12: pipelines: no pipelines"},
		{"missing_sink_dsn.bad.yml", `testdata/missing_sink_dsn.bad.yml:5:11: pipelines[0].sink: sink type mysql needs key "dsn"`},
		{"bad_route.bad.yml", `testdata/bad_route.bad.yml:6:38: pipelines[0].routes[0].to: "orders": want schema.table`},
		{"bad_operation.bad.yml", `testdata/bad_operation.bad.yml:5:17: pipelines[0].operations: unknown operation "truncate": want insert, update or delete`},
		{"bad_tls_mode.bad.yml", `testdata/bad_tls_mode.bad.yml:7:14: pipelines[0].sources[0].tls: tls mode "verify-full": want one of disabled, preferred, required, verify-ca, verify-identity`},
		{"dup_server_id.bad.yml", "testdata/dup_server_id.bad.yml:6:68: pipelines[0].sources[1].server_id: server_id 7 is also used by a/s: each source connection needs its own"},
		{"bad_canal_timezone.bad.yml", `testdata/bad_canal_timezone.bad.yml:10:25: pipelines[0].sink.canal.timezone: unknown time zone "Mars/Olympus": use an IANA name such as UTC or Asia/Shanghai`},
		{"bad_canal_enum_set.bad.yml", `testdata/bad_canal_enum_set.bad.yml:11:19: pipelines[0].sink.canal.enum_set: "names" is not one of index, label`},
		{"bad_debezium_decimal.bad.yml", `testdata/bad_debezium_decimal.bad.yml:11:32: pipelines[0].sink.debezium.decimal_handling_mode: "exact" is not one of precise, string, double`},
		{"bad_format_options.bad.yml", `testdata/bad_format_options.bad.yml:11:9: pipelines[0].sink.debezium: options of format debezium, but format is canal: set format: debezium or remove them`},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		seen[tt.file] = true
		t.Run(tt.file, func(t *testing.T) {
			_, err := load(t, tt.file)
			if err == nil {
				t.Fatal("no error")
			}
			if err.Error() != tt.want {
				t.Fatalf("got  %s\nwant %s", err, tt.want)
			}
			if strings.Contains(err.Error(), "secret@") && !strings.Contains(tt.file, "dsn") {
				t.Fatal("message shows a password")
			}
		})
	}
	// Every bad file in testdata has its message pinned here.
	files, _ := filepath.Glob("testdata/*.bad.yml")
	for _, f := range files {
		if !seen[filepath.Base(f)] {
			t.Errorf("%s has no pinned message", f)
		}
	}
}

func TestGoodFiles(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.good.yml")
	if len(files) < 2 {
		t.Fatal("no good files")
	}
	for _, f := range files {
		if _, err := load(t, filepath.Base(f)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

// TestDefaults: an empty-but-valid pipeline equals its defaults.
func TestDefaults(t *testing.T) {
	f, err := load(t, "minimal.good.yml")
	if err != nil {
		t.Fatal(err)
	}
	if f.StateDir != filepath.Join("testdata", "sluice-state") || f.HTTP.Listen != "127.0.0.1:9180" || f.Log.Level != "info" || f.Log.Format != "text" {
		t.Fatalf("file defaults: %+v", f)
	}
	s := f.Pipelines[0].Sources[0]
	if s.Start.Mode != binlog.StartCurrent || s.ServerID != DefaultServerID("orders-replica", "primary") || s.Conn.Port != 3306 {
		t.Fatalf("source defaults: %+v", s)
	}
	k := f.Pipelines[0].Sink
	if k.DDL != "apply" || k.OnConflict != "stop" || k.Conn.Port != 3307 {
		t.Fatalf("sink defaults: %+v", k)
	}
}

func TestFullFile(t *testing.T) {
	f, err := load(t, "full.good.yml")
	if err != nil {
		t.Fatal(err)
	}
	p := f.Pipelines[0]
	if got := p.Sources[0].Conn.Password; got != "s3cret" {
		t.Errorf("password from ${SLUICE_TEST_PASSWORD}: %q", got)
	}
	if got := p.Sources[1].Conn.Password; got != "fallback" {
		t.Errorf("password from ${VAR:-fallback}: %q", got)
	}
	if got := p.Sink.Conn.Password; got != "$literal" {
		t.Errorf("$$ escape: %q", got)
	}
	if s := p.Sources[0].Start; s.Mode != binlog.StartGTID || s.GTID.String() != "0-1-100,1-2-5" {
		t.Errorf("start gtid: %+v", s)
	}
	if s := p.Sources[1].Start; s.Mode != binlog.StartPosition || s.Pos != (binlog.Position{File: "bin.000003", Pos: 1234}) {
		t.Errorf("start file: %+v", s)
	}
	if !p.Sources[0].Filter.Match("billing_12", "invoices") || p.Sources[0].Filter.Match("shop", "tmp_1") {
		t.Error("filter")
	}
	if f.Pipelines[1].Sources[0].Start.Mode != binlog.StartOldest {
		t.Error("start oldest")
	}
	if !reflect.DeepEqual(p.Sink.DDLDone, []string{"0-1-7"}) || p.Sink.DDL != "skip" || p.Sink.OnConflict != "overwrite" {
		t.Errorf("sink: %+v", p.Sink)
	}
}

func TestRoutesFile(t *testing.T) {
	f, err := load(t, "routes.good.yml")
	if err != nil {
		t.Fatal(err)
	}
	p := f.Pipelines[0]
	s1, s2 := p.Sources[0], p.Sources[1]
	if !s1.Filter.Match("shop_1", "orders") || s1.Filter.Match("shop_1", "tmp_x") || s1.Filter.Match("other", "orders") {
		t.Error("pipeline include/exclude not combined with the source's")
	}
	if !s1.Ops[binlog.Delete] || s2.Ops[binlog.Delete] || !s2.Ops[binlog.Insert] {
		t.Errorf("operations: %v %v", s1.Ops, s2.Ops)
	}
	r := p.Routes[1]
	if !r.Matcher.Match("shop_3", "orders_2024") || r.Matcher.Match("shop_3", "orders") || r.Schema != "agg" || r.Table != "orders_archive" {
		t.Errorf("route: %+v", r)
	}
}

func TestDocsListsEveryKey(t *testing.T) {
	d := Docs()
	for _, key := range []string{"state_dir", "http.listen", "pipelines[].sources[].dsn", "pipelines[].sources[].start.gtid", "pipelines[].sink.on_conflict", "pipelines[].sink.transaction_subject", "pipelines[].sink.canal.timezone", "pipelines[].sink.debezium.decimal_handling_mode"} {
		if !strings.Contains(d, key+"\t") {
			t.Errorf("Docs lacks %s:\n%s", key, d)
		}
	}
}

func TestNATSFormatOptions(t *testing.T) {
	f, err := load(t, "nats_formats.good.yml")
	if err != nil {
		t.Fatal(err)
	}
	c := f.Pipelines[0].Sink
	if c.Mode != "" || c.Canal.TimeZone != "Asia/Shanghai" || c.Canal.Location == nil || c.Canal.Location.String() != "Asia/Shanghai" ||
		c.Canal.EnumSet != "label" || c.Canal.Rows != "row" || c.TransactionSubject != "" || !f.Pipelines[0].Sink.Debezium.Schemas {
		t.Fatalf("canal sink: %+v", c)
	}
	d := f.Pipelines[1].Sink
	want := Debezium{Schemas: false, TopicPrefix: "dbserver1", DecimalHandlingMode: "string", BigintUnsignedHandlingMode: "precise",
		TransactionMetadata: true, Tombstones: true, KeySubject: "keys.{schema}.{table}"}
	if d.Debezium != want || d.TransactionSubject != "dbz.transaction" || d.Canal.EnumSet != "index" || d.Canal.Rows != "event" || d.Canal.Location != time.UTC {
		t.Fatalf("debezium sink: %+v", d)
	}
}
