package difftest

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// sequence is a MariaDB sequence the round made (Sequences).
type sequence struct {
	name string
	// ranOut: a NEXTVAL failed because the sequence had run out. That
	// logs nothing, but an ALTER SEQUENCE without RESTART then writes
	// the source's memory of it (the old maximum + 1), which no replica
	// can know: the sink warns (sinks/mysql/sequence.go), and the
	// generator restarts such a sequence in every ALTER.
	ranOut bool
}

// nextval is a statement of NEXTVAL calls on s.
func (s *sequence) nextval(sql string) Stmt {
	return Stmt{SQL: sql, Table: s.name, rejected: func(code uint16) {
		if code == 4084 { // ER_SEQUENCE_RUN_OUT
			s.ranOut = true
		}
	}}
}

// seqBatch is a statement on a sequence: CREATE SEQUENCE (or CREATE TABLE
// … SEQUENCE=1, or CREATE TABLE … LIKE), NEXTVAL, SETVAL, an INSERT of its
// row, ALTER SEQUENCE, RENAME TABLE or DROP SEQUENCE. NEXTVAL and SETVAL
// log the sequence's row only when they leave its cached range; the
// comparison reads the row.
func (g *gen) seqBatch() Batch {
	if len(g.seqs) == 0 || g.chance(0.12) {
		return g.createSeq()
	}
	s := g.seqs[g.r.IntN(len(g.seqs))]
	name := ident(s.name)
	st := Stmt{Table: s.name}
	switch k := g.r.IntN(20); {
	case k < 8:
		var calls []string
		for range 1 + g.r.IntN(3) {
			calls = append(calls, "NEXTVAL("+name+")")
		}
		st = s.nextval("DO " + strings.Join(calls, ", "))
	case k < 11:
		args := []string{name, g.seqNumber()}
		switch g.r.IntN(4) {
		case 1:
			args = append(args, g.pick("0", "1"))
		case 2:
			args = append(args, g.pick("0", "1"), strconv.Itoa(g.r.IntN(3)))
		}
		st.SQL = "DO SETVAL(" + strings.Join(args, ", ") + ")"
	case k < 12:
		// The row written whole, as a replica does.
		lo := g.r.Int64N(10)
		hi := lo + 1 + g.r.Int64N(1000)
		st.SQL = fmt.Sprintf("INSERT INTO %s VALUES (%d, %d, %d, %d, %d, %d, %d, %d)", name,
			lo+g.r.Int64N(hi-lo+1), lo, hi, lo, 1+g.r.Int64N(5), g.r.Int64N(4), g.r.Int64N(2), g.r.Int64N(3))
	case k < 17:
		opts := g.seqOptions(true)
		if s.ranOut && !strings.Contains(opts, "RESTART") {
			opts += " RESTART"
		}
		st.SQL = "ALTER SEQUENCE " + name + " " + opts
		if strings.Contains(opts, "RESTART") {
			st.apply = func() { s.ranOut = false }
		}
	case k < 18:
		g.nSeq++
		to := g.seqName(g.nSeq)
		st.SQL = "RENAME TABLE " + name + " TO " + ident(to)
		st.apply = func() { s.name = to }
	default:
		st.SQL = "DROP SEQUENCE " + g.pick("", "IF EXISTS ") + name
		st.apply = func() { g.seqs = slices.DeleteFunc(g.seqs, func(x *sequence) bool { return x == s }) }
	}
	return Batch{g.session(0), st}
}

func (g *gen) createSeq() Batch {
	g.nSeq++
	s := &sequence{name: g.seqName(g.nSeq)}
	name := ident(s.name)
	var sql string
	switch k := g.r.IntN(10); {
	case k < 7:
		sql = "CREATE " + g.pick("", "OR REPLACE ") + "SEQUENCE " + name + " " + g.seqOptions(false)
	case k < 9 || len(g.seqs) == 0:
		sql = "CREATE TABLE " + name + " (next_not_cached_value BIGINT(21) NOT NULL, minimum_value BIGINT(21) NOT NULL, " +
			"maximum_value BIGINT(21) NOT NULL, start_value BIGINT(21) NOT NULL, increment BIGINT(21) NOT NULL, " +
			"cache_size BIGINT(21) UNSIGNED NOT NULL, cycle_option TINYINT(1) UNSIGNED NOT NULL, cycle_count BIGINT(21) NOT NULL) SEQUENCE=1"
	default:
		sql = "CREATE TABLE " + name + " LIKE " + ident(g.seqs[g.r.IntN(len(g.seqs))].name)
	}
	return Batch{g.session(0), {SQL: sql, Table: s.name, apply: func() { g.seqs = append(g.seqs, s) }}}
}

// seqName is the name of the n-th sequence.
func (g *gen) seqName(n int) string {
	name := fmt.Sprintf("s%d", n)
	if g.opts.Features[OddIdentifiers] && g.chance(0.2) {
		return fmt.Sprintf(oddNames[g.r.IntN(len(oddNames))], name)
	}
	return name
}

// seqNumber is a value for START WITH, RESTART WITH, SETVAL and the limits:
// small, negative, or at the ends of the range.
func (g *gen) seqNumber() string {
	switch g.r.IntN(8) {
	case 0:
		return g.pick("9223372036854775806", "9223372036854775805", "-9223372036854775807", "-9223372036854775806")
	case 1:
		return strconv.Itoa(-g.r.IntN(50))
	}
	return strconv.Itoa(g.r.IntN(200))
}

// seqOptions is a list of sequence options, each at most once (alter:
// ALTER SEQUENCE's, which adds RESTART).
func (g *gen) seqOptions(alter bool) string {
	var opts []string
	used := map[int]bool{}
	n := g.r.IntN(4)
	if alter {
		n++
	}
	for range n {
		k := min(g.r.IntN(9), 7)
		if used[k] || k == 6 && (used[2] || used[3] || used[4] || used[5]) || k >= 2 && k <= 5 && used[6] {
			continue
		}
		used[k] = true
		switch k {
		case 0:
			opts = append(opts, "START WITH "+g.seqNumber())
		case 1:
			opts = append(opts, "INCREMENT BY "+g.pick("1", "2", "5", "-1", "-3", "100", "0"))
		case 2:
			opts = append(opts, g.pick("MINVALUE "+g.seqNumber(), "MINVALUE = "+g.seqNumber(), "NO MINVALUE", "NOMINVALUE"))
		case 3:
			opts = append(opts, g.pick("MAXVALUE "+g.seqNumber(), "NO MAXVALUE", "NOMAXVALUE"))
		case 4:
			opts = append(opts, g.pick("CACHE 0", "CACHE 1", "CACHE 2", "CACHE 1000", "NOCACHE"))
		case 5:
			opts = append(opts, g.pick("CYCLE", "NOCYCLE"))
		case 6:
			// A small cycling range: cycle_count moves.
			opts = append(opts, "MINVALUE 1 MAXVALUE "+strconv.Itoa(2+g.r.IntN(5))+" CYCLE CACHE "+strconv.Itoa(g.r.IntN(3)))
		default:
			if alter {
				opts = append(opts, g.pick("RESTART", "RESTART WITH "+g.seqNumber(), "RESTART = "+g.seqNumber()))
			}
		}
	}
	if len(opts) == 0 && alter {
		opts = append(opts, "RESTART")
	}
	return strings.Join(opts, " ")
}

// nextvalIn is a NEXTVAL inside a transaction: MariaDB logs the sequence's
// row in a transaction of its own, before the one it ran in, and keeps it
// when that one rolls back.
func (g *gen) nextvalIn() (Stmt, bool) {
	if !g.opts.Features[Sequences] || len(g.seqs) == 0 || !g.chance(0.1) {
		return Stmt{}, false
	}
	s := g.seqs[g.r.IntN(len(g.seqs))]
	return s.nextval("DO NEXTVAL(" + ident(s.name) + ")"), true
}
