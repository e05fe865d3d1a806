package main

import (
	"encoding/binary"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-cdc/sluice/internal/testenv"
)

// TestDumpCorruptBinlogs feeds 150 randomly corrupted copies of a real
// binlog to sluice dump: each run ends with exit 0 or a clean error (exit
// 1 or 2, one line naming the problem), never a hang, a panic or Go runtime
// text. Half the copies get their event checksums recomputed after the
// damage, so that the decoder itself meets the malformed events instead of
// the checksum check stopping them.
func TestDumpCorruptBinlogs(t *testing.T) {
	m := testenv.StartMariaDB(t, testenv.MariaDBOptions{})
	m.Exec(t,
		"CREATE DATABASE app",
		"CREATE TABLE app.t (id INT PRIMARY KEY, s VARCHAR(50), d DECIMAL(12,3), ts DATETIME(6), tm TIME(3), f DOUBLE, e ENUM('a','b','c'), st SET('x','y'), b BLOB, j JSON, bit8 BIT(8), y YEAR, u BIGINT UNSIGNED)",
		"INSERT INTO app.t VALUES (1, 'one', 1.5, '2024-01-02 03:04:05.123456', '-10:11:12.5', 1.25, 'b', 'x,y', 0x00ff, '{\"k\": [1, 2]}', b'1010', 2024, 18446744073709551615)",
		"INSERT INTO app.t VALUES (2, NULL, -99.001, '1999-12-31 23:59:59', '838:59:59', -0.5, 'a', '', 'blob', 'null', b'0', 1901, 0)",
		"UPDATE app.t SET s = 'uno', d = d + 1 WHERE id = 1",
		"ALTER TABLE app.t ADD COLUMN extra VARCHAR(10) DEFAULT 'x'",
		"INSERT INTO app.t (id, s) VALUES (3, 'three')",
		"DELETE FROM app.t WHERE id = 2",
		"FLUSH BINARY LOGS",
	)
	files, _ := filepath.Glob(filepath.Join(m.Dir, "data", "bin.0*"))
	if len(files) < 2 {
		t.Fatalf("binlog files: %v", files)
	}
	orig, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := run(t, "dump", files[0]); code != 0 {
		t.Fatalf("the intact binlog: exit %d: %s", code, errOut)
	}
	bounds := eventBounds(orig)
	rng := rand.New(rand.NewPCG(9, 150))
	dir := t.TempDir()
	outcomes := map[int]int{}
	for i := range 150 {
		data := corrupt(rng, orig)
		fixCRC := i%2 == 1
		if fixCRC {
			recomputeCRC(data, bounds)
		}
		path := filepath.Join(dir, "bin.000001")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		type result struct {
			errOut string
			code   int
		}
		res := make(chan result, 1)
		go func() {
			_, errOut, code := run(t, "dump", path)
			res <- result{errOut, code}
		}()
		var r result
		select {
		case r = <-res:
		case <-time.After(2 * time.Minute): // a hang guard, not a timing assertion
			os.WriteFile(filepath.Join(os.TempDir(), "sluice-hang.bin"), data, 0o600)
			t.Fatalf("copy %d: sluice dump hung (input saved as %s)", i, filepath.Join(os.TempDir(), "sluice-hang.bin"))
		}
		outcomes[r.code]++
		if i < 8 {
			t.Logf("copy %d: exit %d %s", i, r.code, strings.TrimSpace(r.errOut))
		}
		bad := r.code != 0 && r.code != exitFail && r.code != exitUsage
		for _, s := range []string{"runtime error", "goroutine ", "panic", "[recovered]"} {
			bad = bad || strings.Contains(r.errOut, s)
		}
		if r.code != 0 && strings.Count(strings.TrimSpace(r.errOut), "\n") > 20 {
			bad = true
		}
		if bad {
			saved := filepath.Join(os.TempDir(), "sluice-corrupt-"+strings.ReplaceAll(t.Name(), "/", "_")+".bin")
			os.WriteFile(saved, data, 0o600)
			t.Errorf("copy %d (crc fixed %v): exit %d, stderr:\n%s\n(input saved as %s)", i, fixCRC, r.code, r.errOut, saved)
		}
	}
	t.Logf("exit codes over 150 corrupted binlogs: %v", outcomes)
}

// eventBounds lists the [start, end) of each event of an intact binlog.
func eventBounds(b []byte) [][2]int {
	var out [][2]int
	for pos := 4; pos+19 <= len(b); {
		size := int(binary.LittleEndian.Uint32(b[pos+9:]))
		if size < 19 || pos+size > len(b) {
			break
		}
		out = append(out, [2]int{pos, pos + size})
		pos += size
	}
	return out
}

// recomputeCRC rewrites the CRC32 at the end of each event (at the intact
// file's boundaries) that still fits.
func recomputeCRC(b []byte, bounds [][2]int) {
	for _, e := range bounds {
		if e[1] > len(b) || e[1]-e[0] < 23 {
			continue
		}
		binary.LittleEndian.PutUint32(b[e[1]-4:], crc32.ChecksumIEEE(b[e[0]:e[1]-4]))
	}
}

// corrupt returns a damaged copy of b: flipped bytes, an overwritten or
// zeroed range, a truncation, or a duplicated range, keeping the magic.
func corrupt(rng *rand.Rand, b []byte) []byte {
	out := append([]byte(nil), b...)
	body := len(out) - 4
	at := func() int { return 4 + rng.IntN(body) }
	for range 1 + rng.IntN(3) {
		switch rng.IntN(5) {
		case 0:
			for range 1 + rng.IntN(8) {
				out[at()] ^= byte(1 + rng.IntN(255))
			}
		case 1:
			p := at()
			for i := p; i < min(len(out), p+1+rng.IntN(64)); i++ {
				out[i] = byte(rng.IntN(256))
			}
		case 2:
			p := at()
			for i := p; i < min(len(out), p+1+rng.IntN(32)); i++ {
				out[i] = 0
			}
		case 3:
			out = out[:at()]
		case 4:
			p := at()
			q := min(len(out), p+1+rng.IntN(200))
			out = append(out[:q:q], append(append([]byte(nil), out[p:q]...), out[q:]...)...)
		}
		body = len(out) - 4
		if body <= 0 {
			return append([]byte(nil), b[:4]...)
		}
	}
	return out
}
