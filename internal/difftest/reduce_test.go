package difftest

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
)

var stopSignatures = regexp.MustCompile(`Error \d+|does not exist on the target|duplicate key on the target|cannot parse DDL`)

// stopSignature is what kind of stop a pipeline error is: the server's
// error number or sluice's conflict or parse message.
func stopSignature(msg string) string { return stopSignatures.FindString(msg) }

// stopTable is the table a stop's message names ("on db.t"), or "".
var stopTable = regexp.MustCompile(` on dt_\d+\.(\w+)`)

// unit is one statement of a reduction with the session settings it ran
// under.
type unit struct{ session, stmt string }

// tableUnits splits the log's statements for table into the CREATE TABLE
// (kept) and the rest (the reduction's units), each with its session.
func tableUnits(log Log, table string) (create string, units []unit) {
	session := ""
	for _, e := range log {
		switch {
		case strings.HasPrefix(e.SQL, "SET SESSION") && e.Err == "":
			session = e.SQL
		case e.Table == table && e.Err == "" && strings.HasPrefix(e.SQL, "CREATE TABLE"):
			create = session + ";\n" + e.SQL
		case e.Table == table && e.Err == "":
			units = append(units, unit{session, e.SQL})
		}
	}
	return create, units
}

// reduceAll shrinks each finding's statements to a smallest set that
// still shows it (ddmin over the statements of the table it names), when
// DIFFTEST_REDUCE=1, and adds the result to the finding.
func (h *harness) reduceAll(t *testing.T, found []finding, log Log) {
	if os.Getenv("DIFFTEST_REDUCE") == "" {
		return
	}
	for i := range found {
		f := &found[i]
		table := f.table
		if table == "" && f.stop != "" {
			if m := stopTable.FindStringSubmatch(f.text); m != nil {
				table = m[1]
			}
		}
		if table == "" {
			continue
		}
		create, units := tableUnits(log, table)
		if create == "" {
			continue
		}
		still := func(us []unit) bool {
			stmts := strings.Split(create, ";\n")
			for _, u := range us {
				stmts = append(stmts, u.session, u.stmt)
			}
			db := fmt.Sprintf("dt_%d", rounds.Add(1))
			got, _, _, _ := h.replicate(t, db, Script(db, stmts...), -1, 0, nil)
			for _, g := range got {
				if f.stop != "" && g.stop == f.stop {
					return true
				}
				if f.stop == "" && g.table == table {
					return true
				}
			}
			return false
		}
		small, tests := ddmin(units, still, 400)
		if small == nil {
			f.text += "\n  reduction: the table's statements alone, each autocommitted, do not show it"
			continue
		}
		var b strings.Builder
		b.WriteString(create + ";\n")
		for _, u := range small {
			b.WriteString(u.session + ";\n" + u.stmt + ";\n")
		}
		f.text += fmt.Sprintf("\n  reduced (%d of %d statements, %d replays):\n%s", len(small), len(units), tests, indent(b.String()))
	}
}

// ddmin is Zeller's delta debugging: a 1-minimal subset of us for which
// still holds, or nil when us itself does not; at most budget tests.
func ddmin(us []unit, still func([]unit) bool, budget int) ([]unit, int) {
	tests := 1
	if !still(us) {
		return nil, tests
	}
	n := 2
	for len(us) >= 2 && tests < budget {
		chunk := (len(us) + n - 1) / n
		reduced := false
		for start := 0; start < len(us) && tests < budget; start += chunk {
			end := min(start+chunk, len(us))
			// Try the complement of us[start:end].
			comp := append(append([]unit{}, us[:start]...), us[end:]...)
			tests++
			if len(comp) > 0 && still(comp) {
				us = comp
				n = max(n-1, 2)
				reduced = true
				break
			}
		}
		if !reduced {
			if n >= len(us) {
				break
			}
			n = min(n*2, len(us))
		}
	}
	return us, tests
}
