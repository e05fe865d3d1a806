package binlog

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
)

// AppendText appends the set's text, the same as String, without its
// intermediate strings: sinks write a set with every transaction.
func (s GTIDSet) AppendText(dst []byte) []byte {
	first := true
	sep := func() {
		if !first {
			dst = append(dst, ',')
		}
		first = false
	}
	if len(s.mysql) > 0 {
		var stack [8]string
		keys := stack[:0]
		for k, iv := range s.mysql {
			if len(iv) > 0 {
				keys = append(keys, k)
			}
		}
		// By source UUID, then tag ("" first), as String orders them.
		slices.SortFunc(keys, func(a, b string) int {
			ua, ta, _ := strings.Cut(a, ":")
			ub, tb, _ := strings.Cut(b, ":")
			return cmp.Or(strings.Compare(ua, ub), strings.Compare(ta, tb))
		})
		prev := ""
		for i, k := range keys {
			u, tag, _ := strings.Cut(k, ":")
			if i == 0 || u != prev {
				sep()
				dst = append(dst, u...)
				prev = u
			}
			if tag != "" {
				dst = append(append(dst, ':'), tag...)
			}
			for _, x := range s.mysql[k] {
				dst = appendRange(append(dst, ':'), x)
			}
		}
	}
	if len(s.maria) > 0 {
		// The domains with their state, from one pass over the map.
		type domainOf struct {
			d   uint32
			dom *mariaDomain
		}
		var stack [8]domainOf
		doms := stack[:0]
		for d, dom := range s.maria {
			if len(dom.iv) > 0 {
				doms = append(doms, domainOf{d, dom})
			}
		}
		if len(doms) > 1 {
			slices.SortFunc(doms, func(a, b domainOf) int { return cmp.Compare(a.d, b.d) })
		}
		for _, x := range doms {
			d, dom := x.d, x.dom
			iv := dom.iv
			var base uint64
			if iv[0].Lo == 1 {
				base, iv = iv[0].Hi, iv[1:]
			}
			sep()
			dst = strconv.AppendUint(dst, uint64(d), 10)
			dst = append(dst, '-')
			dst = strconv.AppendUint(dst, uint64(dom.server), 10)
			dst = append(dst, '-')
			dst = strconv.AppendUint(dst, base, 10)
			for _, x := range iv {
				dst = appendRange(append(dst, '+'), x)
			}
		}
	}
	return dst
}

func appendRange(dst []byte, x Interval) []byte {
	dst = strconv.AppendUint(dst, x.Lo, 10)
	if x.Lo == x.Hi {
		return dst
	}
	return strconv.AppendUint(append(dst, '-'), x.Hi, 10)
}

// AppendText appends the GTID's text, the same as String.
func (g GTID) AppendText(dst []byte) []byte {
	switch {
	case g.IsZero():
		return dst
	case g.MariaDB:
		dst = strconv.AppendUint(dst, uint64(g.Domain), 10)
		dst = strconv.AppendUint(append(dst, '-'), uint64(g.Server), 10)
		return strconv.AppendUint(append(dst, '-'), g.Seq, 10)
	}
	dst = append(dst, g.UUID...)
	if g.Tag != "" {
		dst = append(append(dst, ':'), g.Tag...)
	}
	return strconv.AppendUint(append(dst, ':'), g.Seq, 10)
}
