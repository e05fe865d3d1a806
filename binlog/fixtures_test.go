package binlog_test

import (
	"compress/gzip"
	"context"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluice-cdc/sluice/binlog"
)

// fixtureDir returns ../shared/fixtures/binlogs beside the repository, or
// skips the test when it is absent (the fixtures are other projects' files
// and are never copied into this repository).
func fixtureDir(t testing.TB) string {
	t.Helper()
	dir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Skip("repository root not found")
		}
		dir = parent
	}
	fx := filepath.Join(dir, "..", "shared", "fixtures", "binlogs")
	if _, err := os.Stat(fx); err != nil {
		t.Skipf("binlog fixtures not present at %s", fx)
	}
	return fx
}

// decodeFile reads every transaction of a binlog file.
func decodeFile(t testing.TB, path string) ([]*binlog.Txn, error) {
	t.Helper()
	f, _ := binlog.NewFilter([]string{"*"}, nil)
	src, err := binlog.OpenFiles([]string{path}, binlog.DecodeOptions{Filter: f, AccountStatements: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, err
	}
	defer src.Close()
	var out []*binlog.Txn
	for {
		tx, err := src.Next(context.Background())
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, tx)
	}
}

// knownBad are fixtures that must give a clear error, not data: their
// MANIFEST (or the event they hold) says why.
var knownBad = map[string]string{
	"rust_mysql_common/corrupt-relay-bin.000624":                "corrupt",                  // deliberately truncated QUERY event
	"rust_mysql_common/binlog_truncated_event.000001":           "truncated event header",   // 14 bytes
	"rust_mysql_common/binlog_truncated_prev_gtid_event.000001": "truncated",                // PREVIOUS_GTIDS cut off
	"rust_mysql_common/ver_5_1-wl2325_s.001":                    "cannot decode",            // pre-GA row events (5.2)
	"rust_mysql_common/ver_5_1-wl2325_r.001":                    "statement-based",          // LOAD DATA as statements
	"rust_mysql_common/ver_5_1_23.001":                          "statement-based",          // LOAD DATA as statements
	"rust_mysql_common/ver_trunk_row_v2.001":                    "statement-based",          // LOAD DATA as statements
	"rust_mysql_common/bug40482-bin.000001":                     "INCIDENT",                 // an incident event
	"rust_mysql_common/json.binlog.000001":                      "binlog_row_value_options", // PARTIAL_UPDATE_ROWS_EVENT
	"rust_mysql_common/binlog_56_gtid_reserved_word.000001":     "cannot parse DDL",         // CREATE TABLE GENERATED LIKE ...
}

// TestFixturesDecode decodes every fixture binlog: each either decodes
// completely or, for the known-bad ones, stops with its specific error.
func TestFixturesDecode(t *testing.T) {
	eachFixtureBinlog(t, func(t *testing.T, rel, path string) {
		txns, err := decodeFile(t, path)
		defer func() {
			for _, tx := range txns {
				tx.Close()
			}
		}()
		if want, bad := knownBad[filepath.ToSlash(rel)]; bad {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("want an error containing %q, got %v", want, err)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, tx := range txns {
			if _, err := binlog.AppendJSON(nil, tx); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// eachFixtureBinlog runs test as a subtest for every binlog file (by its
// magic bytes) under the fixtures, named by its path relative to them, and
// fails if fewer than 40 were found.
func eachFixtureBinlog(t *testing.T, test func(t *testing.T, rel, path string)) {
	t.Helper()
	root := fixtureDir(t)
	n := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b := make([]byte, 4)
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		_, _ = io.ReadFull(f, b)
		f.Close()
		if string(b) != "\xfebin" {
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		n++
		t.Run(rel, func(t *testing.T) { test(t, rel, path) })
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 40 {
		t.Fatalf("only %d binlog fixtures found", n)
	}
}

// fixtureJSON decodes a fixture and returns each transaction as JSON.
func fixtureJSON(t *testing.T, rel string) []string {
	t.Helper()
	txns, err := decodeFile(t, filepath.Join(fixtureDir(t), rel))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, tx := range txns {
		b, err := binlog.AppendJSON(nil, tx)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(b))
		tx.Close()
	}
	return out
}

// TestFixtureValues checks the values each fixture's MANIFEST.txt names.
func TestFixtureValues(t *testing.T) {
	tests := []struct {
		file string
		txn  int      // index of the transaction
		want []string // substrings of its JSON
	}{
		// MySQL 8.0.32 compressed transaction (TRANSACTION_PAYLOAD, zstd).
		{"rust_mysql_common/transaction_compression.000001", 0, []string{`"table":"tb1","type":"insert"`}},
		// MySQL 8.0.28 compressed UPDATE.
		{"mysql-binlog-connector-java/mysql-bin.compressed", 0, []string{`"table":"movies","type":"update"`}},
		// 8.0.31 compressed, with ROWS_QUERY inside the payload; GTIDs from the enclosing events.
		{"mysql-binlog-connector-rust/mysql-bin.000057", 1, []string{`"gtid":"76f3e7be-6720-11ed-9cad-0242ac110002:12"`, `"table":"b","type":"insert","pk":[],"after":{"id":1}`}},
		{"mysql-binlog-connector-rust/mysql-bin.000057", 2, []string{`"gtid":"76f3e7be-6720-11ed-9cad-0242ac110002:13"`,
			`"type":"update","pk":[],"before":{"@1":55555`, `"type":"insert","pk":[],"after":{"@1":6666`, `"@10":{"c":1}`}},
		// 9.0.1 JSON with opaque scalars, rendered as MySQL prints them.
		{"rust_mysql_common/json-opaque.binlog", 2, []string{`{"a":"base64:type15:VQ=="}`, `{"b":"2012-03-18"}`,
			`{"c":"2012-03-18 11:30:45.000000"}`, `{"c":"87:31:46.654321"}`, `{"d":123.456}`, `{"e":9.00}`, `{"e":[0,1,true,false]}`, `{"e":null}`}},
		// 9.0.1 VECTOR.
		{"rust_mysql_common/vector.binlog", 3, []string{`"table":"foo","type":"insert","pk":["id"],"after":{"id":1,"vector_column":[1.1,2.2,3.3]}`,
			`"after":{"id":2,"vector_column":[1,-1,0]}`}},
		// 8.0.28 FULL metadata: ENUM and SET by name.
		{"rust_mysql_common/mysql-enum-string-set.000001", 2, []string{`"f1":"0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"`, `"f3":"var1","f4":"one,three"`}},
		{"rust_mysql_common/mysql-enum-string-set.000001", 3, []string{`"after":{"f1":"field1","f2":"field_2","f3":"variant2","f4":"two,four"`}},
		{"rust_mysql_common/mysql-enum-string-set.000001", 4, []string{`"type":"delete","pk":[],"before":{"f1":"field1","f2":"field_2","f3":"variant2","f4":"two,four"`}},
		// 8.0.26 BIT.
		{"rust_mysql_common/mysql_type_bit.000001", 2, []string{`"after":{"a":4,"b":"foo","c":32}`}},
		// 8.0.26 invisible columns with FULL metadata.
		{"rust_mysql_common/binlog-invisible-columns.000001", 2, []string{`"after":{"f1":1,"f2":2,"f3":-3,"f4":"4","f5":"BQ==","f6":6000000000}`}},
		// 8.0.40 MINIMAL metadata: INT UNSIGNED above 2^31 (signedness metadata).
		{"rust_mysql_common/minimal_row_metadata.000001", 0, []string{`"@5":3230202323`}},
		// 8.0.40 negative TIME beyond 24 hours.
		{"rust_mysql_common/time_issue.000001", 0, []string{`"@1":"-507:48:27"`}},
		// 9.6.0 tagged GTID.
		{"rust_mysql_common/binlog_transaction_with_GTID_TAG.000001", 0, []string{`"gtid":"55778904-0299-11f1-b1b8-4ef0c4956feb:mytag:3"`, `"@3":"250.00"`}},
		// MariaDB 10.5 FULL metadata: names and primary key.
		{"rust_mysql_common/mariadb-bin.000001", 0, []string{`"gtid":"0-1-1"`, `"table":"outbox","type":"insert","pk":["id"],"after":{"id":62,"topic":"foo","event_type":"JSON","event":"eyJmb28iOjF9"`}},
		// MariaDB 10.0 (no checksum), ROW v1.
		{"binlog-parser/mysql-bin.07", 1, []string{`"after":{"dept_no":"ABC","dept_name":"DEF"}`}},
		// Percona 5.7.
		{"rust-mysql-binlog/bin-log.000001", 1, []string{`"gtid":"87cee3a4-6b31-11e7-bdfd-0d98d6698870:14918"`, `"schema":"bltest","table":"foo"`, `"after":{"id":1,"val_decimal":"0.10000","comment":"zero point one"}`}},
		// 8.2 integer types, update.
		{"mysql-cdc-rs/8.0/31_update_rows_v2/binlog.000001", 3, []string{`"before":{"col1":1,"col2":11,"col3":111,"col4":1111,"col5":11111,"col6":1},"after":{"col1":1,"col2":22,"col3":222,"col4":1111,"col5":11111,"col6":1}`}},
		// 8.0.31 TPC-H LINEITEM: DECIMAL literals from sql.sql.
		{"mysql-cdc-rs/8.0/02_query_bigger/binlog.000733", 1, []string{`"L_QUANTITY":"99.911","L_EXTENDEDPRICE":"76.11","L_DISCOUNT":"888.1","L_TAX":"109.1"`, `"L_SHIPDATE":"1990-08-01"`}},
		// MariaDB 11.8 statement-format log: GTIDs from the oracle README.
		{"mariadb-poc/domain_id_0/mariadb-repl-bin.000009", 0, []string{`"gtid":"0-10-292194"`}},
		{"mariadb-poc/domain_id_0/mariadb-repl-bin.000009", 2, []string{`"gtid":"0-10-292196"`}},
		{"mariadb-poc/domain_id_0/mariadb-repl-bin.000010", 9, []string{`"gtid":"0-10-292206"`}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got := fixtureJSON(t, tt.file)
			if tt.txn >= len(got) {
				t.Fatalf("%d transactions, want index %d", len(got), tt.txn)
			}
			for _, w := range tt.want {
				if !strings.Contains(got[tt.txn], w) {
					t.Errorf("transaction %d lacks %s:\n%s", tt.txn, w, got[tt.txn])
				}
			}
		})
	}
}

// TestFixtureExecutedSet checks that the executed GTID set starts from the
// file's PREVIOUS_GTIDS / GTID_LIST, as the MANIFESTs state.
func TestFixtureExecutedSet(t *testing.T) {
	tests := []struct{ file, want string }{
		{"rust_mysql_common/binlog_transaction_with_GTID_TAG.000001", "55778904-0299-11f1-b1b8-4ef0c4956feb:1-13:mytag:1-3"},
		{"mariadb-poc/domain_id_0/mariadb-repl-bin.000009", "0-10-292196"},
		{"mariadb-poc/domain_id_0/mariadb-repl-bin.000010", "0-10-292206"},
	}
	for _, tt := range tests {
		txns, err := decodeFile(t, filepath.Join(fixtureDir(t), tt.file))
		if err != nil {
			t.Fatal(err)
		}
		last := txns[len(txns)-1]
		if got := last.Executed.String(); got != tt.want {
			t.Errorf("%s: executed set %q, want %q", tt.file, got, tt.want)
		}
	}
}

// TestFixtureSakila decodes MySQL 5.5's whole Sakila load and counts rows
// against the public sakila-data.sql.
func TestFixtureSakila(t *testing.T) {
	gz, err := os.Open(filepath.Join(fixtureDir(t), "mysql-binlog-connector-java", "mysql-bin.sakila.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer gz.Close()
	zr, err := gzip.NewReader(gz)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "mysql-bin.sakila")
	out, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, zr); err != nil {
		t.Fatal(err)
	}
	out.Close()
	txns, err := decodeFile(t, path)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	var firstPayment string
	for _, tx := range txns {
		for c, err := range tx.Changes() {
			if err != nil {
				t.Fatal(err)
			}
			counts[c.Table.Name]++
			if c.Table.Name == "payment" && firstPayment == "" {
				firstPayment = string(binlog.AppendImageJSON(nil, c.Table, c.After))
			}
		}
		tx.Close()
	}
	want := map[string]int{"payment": 16049, "rental": 16044, "film_actor": 5462, "inventory": 4581, "film": 1000,
		"film_text": 1000, "film_category": 1000, "address": 603, "city": 600, "customer": 599, "actor": 200, "country": 109}
	for table, n := range want {
		if counts[table] != n {
			t.Errorf("%s: %d rows, sakila-data.sql has %d", table, counts[table], n)
		}
	}
	if !strings.HasPrefix(firstPayment, `{"payment_id":1,"customer_id":1,"staff_id":1,"rental_id":76,"amount":"2.99","payment_date":"2005-05-25 11:30:37"`) {
		t.Errorf("first payment: %s", firstPayment)
	}
}
