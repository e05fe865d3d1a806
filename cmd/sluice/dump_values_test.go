package main

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/sluice-cdc/sluice/internal/testenv"
)

// TestDumpHostileValues: `sluice dump --format sql` of strings that break
// backslash escaping, latin1 high bytes, binary and bytes invalid in their
// character set, replayed by the mariadb client under
// NO_BACKSLASH_ESCAPES, rebuilds the tables byte for byte; the JSON output
// decodes text with the column's character set and marks what it cannot.
func TestDumpHostileValues(t *testing.T) {
	if _, err := exec.LookPath("mariadb"); err != nil {
		t.Fatalf("the mariadb client is needed: %v", err)
	}
	servers := testenv.StartMariaDBs(t, 2)
	src, dst := servers[0], servers[1]
	src.Exec(t,
		"SET SESSION sql_mode = ''",
		"CREATE DATABASE h",
		"CREATE TABLE h.t (id INT PRIMARY KEY, s VARCHAR(100), l VARCHAR(20) CHARACTER SET latin1, a VARCHAR(10) CHARACTER SET ascii, "+
			"b VARBINARY(20), u UUID, i INET6, j JSON, e ENUM('x','y'))",
		"CREATE TABLE h.k (s VARCHAR(100), n INT)", // keyless: matched by every column
		`INSERT INTO h.t VALUES (1, 'a\\''; DROP TABLE h.k; -- ', _binary X'E9818D8F909D', _binary X'41FF', X'00275C0A1A', '123e4567-e89b-12d3-a456-426655440000', '::', 'null', 'y')`,
		`INSERT INTO h.t VALUES (2, 'line1\nline2\r\t\Z\0 "dq" `+"`bt`"+`', 'plain', 'ok', '', '00000000-0000-0000-0000-000000000000', '1::', NULL, 'bogus')`,
		`INSERT INTO h.k VALUES ('a\\''; DROP TABLE h.t; -- ', 1), ('a\\''; DROP TABLE h.t; -- ', 1), ('x', 2)`,
		`UPDATE h.k SET n = 5 WHERE n = 1`,
		`UPDATE h.t SET s = CONCAT(s, '\\') WHERE id = 1`,
		`DELETE FROM h.k WHERE n = 2`,
	)
	out, errOut, code := run(t, "dump", "--source", src.DSN(), "--from-start", "--stop-at-end", "--include", "h.*", "--format", "sql")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if strings.Contains(out, `\'`) || strings.Contains(out, `\\`) {
		t.Errorf("the SQL dump has backslash escapes:\n%s", out)
	}
	for _, clientMode := range []string{"NO_BACKSLASH_ESCAPES", "ANSI_QUOTES", ""} {
		t.Run("replay under sql_mode "+clientMode, func(t *testing.T) {
			dst.Exec(t, "DROP DATABASE IF EXISTS h")
			cmd := exec.Command("mariadb", "-uroot", "-S", dst.Socket(), "--default-character-set=latin1")
			cmd.Stdin = strings.NewReader(fmt.Sprintf("SET SESSION sql_mode = '%s';\n%s", clientMode, out))
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("mariadb client: %v\n%s\n%s", err, b, out)
			}
			if a, b := src.Checksums(t, "h.t", "h.k"), dst.Checksums(t, "h.t", "h.k"); a != b {
				t.Fatalf("replayed tables differ: %s vs %s\n%s", a, b, out)
			}
			q := "SELECT HEX(id), HEX(s), HEX(l), HEX(a), HEX(b), HEX(u), HEX(i), HEX(j), e + 0 FROM h.t ORDER BY id"
			if a, b := dumpRows(t, src, q), dumpRows(t, dst, q); a != b {
				t.Fatalf("h.t differs:\nsource %s\ntarget %s", a, b)
			}
			q = "SELECT HEX(s), n FROM h.k"
			if a, b := dumpRows(t, src, q), dumpRows(t, dst, q); a != b {
				t.Fatalf("h.k differs:\nsource %s\ntarget %s", a, b)
			}
		})
	}

	js, errOut, code := run(t, "dump", "--source", src.DSN(), "--from-start", "--stop-at-end", "--include", "h.t", "--format", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var first map[string]any
	for _, l := range strings.Split(strings.TrimSpace(js), "\n") {
		var tx struct {
			Changes []struct {
				After map[string]any `json:"after"`
			}
		}
		if err := json.Unmarshal([]byte(l), &tx); err != nil {
			t.Fatalf("not JSON: %v\n%s", err, l)
		}
		if len(tx.Changes) > 0 && first == nil {
			first = tx.Changes[0].After
		}
	}
	want := map[string]any{
		"s": `a\'; DROP TABLE h.k; -- `,
		"l": "é\u0081\u008d\u008f\u0090\u009d", // latin1 is cp1252 with the 5 undefined bytes as C1 controls
		"a": map[string]any{"$base64": "Qf8=", "$charset": "ascii"},
		"b": "ACdcCho=",
		"u": "123e4567-e89b-12d3-a456-426655440000",
		"i": "::",
		"j": map[string]any{"$json": "null"}, // the JSON document null, not SQL NULL
		"e": "y",
	}
	for k, w := range want {
		if g, _ := json.Marshal(first[k]); string(g) != mustJSON(w) {
			t.Errorf("JSON %s = %s, want %s", k, g, mustJSON(w))
		}
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func dumpRows(t *testing.T, m *testenv.MariaDB, q string) string {
	t.Helper()
	out := testenv.Rows(t, m.DB(t), q, func(b []byte) string { return string(b) })
	slices.Sort(out)
	return strings.Join(out, " ")
}
