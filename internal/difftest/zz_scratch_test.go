package difftest

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
)

func TestScratchPeers(t *testing.T) {
	b, err := os.ReadFile(os.Getenv("PEER_CASES"))
	if err != nil {
		t.Fatal(err)
	}
	var cs []struct {
		Name  string
		Stmts []string
	}
	if err := json.Unmarshal(b, &cs); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t)
	t.Setenv("DIFFTEST_KEEP", "1")
	eq, diff, stop, rejCases, rejAll, stmts := 0, 0, 0, 0, 0, 0
	for _, c := range cs {
		db := fmt.Sprintf("dt_%d", rounds.Add(1))
		found, log, _, _ := h.replicate(t, db, Script(db, c.Stmts...), -1, 0, nil)
		var n int
		h.srcDB.QueryRow("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?", db).Scan(&n)
		tdiff, rej := 0, 0
		stmts += len(c.Stmts)
		for _, f := range found {
			switch {
			case f.stop != "":
				stop++
				fmt.Printf("STOP %s: %.400s\n", c.Name, f.text)
			case f.table != "":
				tdiff++
				fmt.Printf("DIFF %s: %.400s\n", c.Name, f.text)
			case strings.HasPrefix(f.text, "the source rejected"):
				rej++
				fmt.Printf("  rej %s: %.200s\n", c.Name, f.text)
			}
		}
		_ = log
		if rej > 0 {
			rejCases++
			rejAll += rej
		}
		diff += tdiff
		eq += n - tdiff
	}
	fmt.Printf("cases %d (%d statements): tables equal %d, different %d, pipeline stops %d, statements MariaDB rejected %d in %d cases\n", len(cs), stmts, eq, diff, stop, rejAll, rejCases)
}
