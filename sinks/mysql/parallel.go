package mysql

import (
	"context"
	"hash/maphash"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-cdc/sluice/binlog"
)

// Parallel apply. A run of a source's transactions is cut into items: one
// transaction, or under a backlog several consecutive small ones, applied
// as one target transaction with one checkpoint row (a reader of the target
// never sees part of a source transaction). Items run on up to
// Config.Workers connections at once; only their commits are ordered, as
// MariaDB's parallel replica and MySQL's replica_preserve_commit_order do,
// so the target always shows the source as of some transaction and the
// executed GTID set in the checkpoint stays contiguous.
//
// Conflicts are found as TiCDC's causality detector and MySQL's WRITESET
// dependency tracking find them, per source transaction: by hashes of
// every key value its changes touch, before and after images, primary key
// and every unique key of the target, text folded as a case-insensitive,
// PAD SPACE collation compares it. A transaction of an item is dependent
// when it touches a key an earlier item of the run touches, or a key an
// earlier dependent transaction of its own item touches; the item's
// dependency is the last earlier item its dependent transactions conflict
// with. A table without a usable key, and a change whose key value is not
// in the image, make its item a barrier: it starts once every earlier item
// has committed, and every later item starts after it.
//
// Each item then, on its own connection:
//
//  1. sends START TRANSACTION and its rows, checking every affected-row
//     count (a count that differs is a conflict: the careful path). If its
//     dependency has not committed yet, it sends its independent
//     transactions first (in source order), waits for the dependency to
//     commit, then sends the dependent ones (in source order). The item
//     commits as one target transaction, so that order is invisible to a
//     reader, and transactions that share a key still run in source
//     order: an independent one overtakes only dependent ones it shares
//     no key with (regroup in update.go reorders changes within a part
//     by the same rule);
//  2. once the item before has written its checkpoint row, writes its
//     own, fenced by the lease epoch (lease.go), with its last rows when
//     it can. There is one checkpoint row per source, so this write also
//     waits, inside the server, for the item before to commit: the row
//     lock orders the checkpoints;
//  3. waits until the item before has committed, then commits. If that
//     one failed, this one rolls back: nothing commits after a gap.
//
// So the committed items are always a prefix of the run, and the
// checkpoint row names exactly that prefix: a crash at any moment, with
// several items in flight, loses and repeats nothing.
//
// Missed conflicts (a collation that equates more than case and trailing
// spaces, a key the target has and the sink does not know) cost time, not
// correctness: the rows' locks order the two items. When the later one
// holds a lock the earlier one waits for, the later one waits in step 1
// for its dependency, or in step 2 for the earlier one's checkpoint; after
// patience without progress it rolls back, and runs again, in source
// order, once everything before it has committed. A deadlock or lock
// wait timeout the server reports, or any other failure, rolls back the
// failed item and every later one; the caller learns from the checkpoint
// what committed and goes on serially.

// An item that executed waits for the item before it to write its
// checkpoint for a few times as long as items take to execute (an
// average over the source's recent items), at least minPatience and at
// most maxPatience, before it gives its locks up.
const (
	minPatience = 100 * time.Millisecond
	maxPatience = time.Second
)

// patience is how long an executed item waits for the one before.
func (a *applier) patience() time.Duration {
	return min(max(4*time.Duration(a.itemNanos.Load()), minPatience), maxPatience)
}

// observe adds an item's execution time to the average.
func (a *applier) observe(d time.Duration) {
	old := a.itemNanos.Load()
	a.itemNanos.Store(old + (int64(d)-old)/8)
}

// Item sizes under a backlog. A run is cut into as many items as there
// are workers, of at most maxItemTxns transactions and maxItemRows rows:
// measured on the sysbench catch-up (internal/bench), fewer and larger
// items beat more and smaller ones (items of up to 128 transactions, 4
// per run of 512: ratio 1.14; up to 64, 8 per run: 0.62; up to 32: 0.91;
// all in one noisy session). A larger item makes fewer statements
// (regroup in update.go) and fewer steps in the chain of ordered commits;
// a worker without an item idles until the run ends.
//
// A short run is not cut at all: items run in parallel but commit one
// after another, so cutting a run of a few transactions into one item
// per worker adds commits to the chain a reader waits on, and gains
// nothing to run beside. At a steady 1,000 txn/s, runs are a few dozen
// transactions; applying a run of fewer than 2*minItemTxns as one item,
// and cutting longer ones into items of at least minItemTxns, took the
// lag benchmark's p99 from 64 to 46 ms and p50 from 9.4 to 3.8 ms
// (internal/bench BenchmarkLag, medians of 6 alternating runs each, on
// a loaded 2-core machine).
const (
	maxItemTxns = 128
	maxItemRows = 1000
	minItemTxns = 10
)

// itemTxns is how many transactions go in an item, when a run of n is
// cut (maxItemRows may cut it shorter).
func (a *applier) itemTxns(n int) int {
	least := minItemTxns
	if a.minItem > 0 {
		least = a.minItem
	}
	if n < 2*least {
		return n
	}
	return min(max((n+a.s.workers()-1)/a.s.workers(), least), maxItemTxns)
}

// item is what one worker applies as one target transaction.
type item struct {
	txns []*binlog.Txn // in source order
	// after is the last earlier item that may conflict with anything (a
	// barrier), -1 for none: the item starts once it committed.
	after int
	// dep is the last earlier item one of its transactions conflicts
	// with (after, when none does).
	dep int
	// indep are the transactions that conflict with no item between
	// after and this one, dependent the others: those that conflict with
	// such an item, or with an earlier dependent transaction of this
	// item. Both in source order.
	indep, dependent []*binlog.Txn
}

// parallelOK reports whether a run can go to the parallel applier: row
// transactions only (DDL, statements and skipped transactions take the
// serial path, which handles them).
func (a *applier) parallelOK(txns []*binlog.Txn) bool {
	if a.s.workers() < 2 || len(txns) < 2 {
		return false
	}
	for _, t := range txns {
		if t.DDL != nil || len(t.Statements) > 0 || t.Len() == 0 {
			return false
		}
		if len(a.s.cfg.Skip) > 0 {
			for _, id := range a.s.cfg.Skip {
				if id == t.ID() {
					return false
				}
			}
		}
	}
	return true
}

// DefaultWorkers is the number of apply connections per source when
// Config.Workers is 0.
const DefaultWorkers = 4

// workers is the configured number of apply connections per source.
func (s *Sink) workers() int {
	if s.cfg.Workers == 0 {
		return DefaultWorkers
	}
	return max(s.cfg.Workers, 1)
}

// plan cuts txns into items and finds, for each transaction, whether it
// depends on an earlier item, and each item's dependency.
func (a *applier) plan(ctx context.Context, txns []*binlog.Txn) ([]item, error) {
	per := a.itemTxns(len(txns))
	var items []item
	last := map[uint64]int{} // key hash -> last item that touched it
	barrier := -1            // last item that waits for every earlier one
	var keys, itemKeys []uint64
	depKeys := map[uint64]struct{}{} // of the item's dependent transactions
	for i := 0; i < len(txns); {
		n := len(items)
		it := item{after: barrier, dep: barrier}
		itemKeys = itemKeys[:0]
		clear(depKeys)
		rows := 0
		all := false
		for i < len(txns) && len(it.txns) < per && (len(it.txns) == 0 || rows+txns[i].Len() <= maxItemRows) {
			t := txns[i]
			rows += t.Len()
			it.txns = append(it.txns, t)
			i++
			if all {
				continue
			}
			var err error
			if keys, all, err = a.s.conflictKeys(ctx, t, keys[:0], false); err != nil {
				return nil, err
			}
			if all {
				continue
			}
			dependent := false
			for _, k := range keys {
				if d, ok := last[k]; ok && d > barrier {
					dependent = true
					it.dep = max(it.dep, d)
				} else if _, ok := depKeys[k]; ok {
					dependent = true
				}
			}
			if dependent {
				for _, k := range keys {
					depKeys[k] = struct{}{}
				}
				it.dependent = append(it.dependent, t)
			} else {
				it.indep = append(it.indep, t)
			}
			itemKeys = append(itemKeys, keys...)
		}
		if all {
			// Its transactions run in source order once every earlier
			// item has committed, and every later item starts after it.
			it.after, it.dep = n-1, n-1
			it.indep, it.dependent = nil, nil
			barrier = n
		} else {
			for _, k := range itemKeys {
				last[k] = n
			}
		}
		items = append(items, it)
	}
	return items, nil
}

// conflictKeys appends the key hashes t's changes touch; all is set when
// one of them can conflict with anything (no usable key).
func (s *Sink) conflictKeys(ctx context.Context, t *binlog.Txn, keys []uint64, all bool) ([]uint64, bool, error) {
	if all || t.Len() > maxItemRows {
		// A large transaction is an item of its own: ordering it after
		// everything before costs little, and hashing its rows would
		// hold memory in proportion to it.
		return keys, true, nil
	}
	var h maphash.Hash
	h.SetSeed(s.seed)
	for c, err := range t.Changes() {
		if err != nil {
			return keys, all, err
		}
		if c = versionedChange(c); c == nil {
			continue
		}
		var ok bool
		if keys, ok = s.changeKeys(ctx, &h, c, keys); !ok {
			return keys, true, nil
		}
	}
	return keys, false, nil
}

// changeKeys appends the key hashes c touches; ok is false when c has no
// usable key (it can conflict with anything).
func (s *Sink) changeKeys(ctx context.Context, h *maphash.Hash, c *binlog.Change, keys []uint64) ([]uint64, bool) {
	ks := s.tableKeys(ctx, c.Table)
	if len(ks) == 0 || s.hasFK(ctx, c.Table) {
		// No key, or foreign keys: its rows may depend on other tables'
		// rows (fk.go).
		return keys, false
	}
	for _, img := range [][]binlog.Value{c.Before, c.After} {
		if img == nil {
			continue
		}
		for n, cols := range ks {
			h.Reset()
			h.WriteString(c.Table.Schema)
			h.WriteByte(0)
			h.WriteString(c.Table.Name)
			h.WriteByte(0)
			h.WriteByte(byte(n))
			null := false
			for _, col := range cols {
				if col >= len(img) || binlog.IsAbsent(img[col]) {
					if n == 0 {
						// The row's key is not in the image.
						return keys, false
					}
					null = true // a unique key the image lacks: the primary key stands for the row
					break
				}
				if img[col] == nil {
					null = true // NULLs never collide in a unique key
					break
				}
				foldValue(h, &c.Table.Columns[col], img[col])
			}
			if !null {
				keys = append(keys, h.Sum64())
			}
		}
	}
	return keys, true
}

// foldValue writes v as the target compares it, folded conservatively:
// text case-insensitively and without trailing spaces (a false conflict
// costs only parallelism).
func foldValue(h *maphash.Hash, col *binlog.Column, v binlog.Value) {
	switch x := v.(type) {
	case string:
		h.WriteString(strings.ToLower(strings.TrimRight(x, " ")))
	case binlog.RawText:
		b := []byte(strings.ToLower(strings.TrimRight(string(x.Bytes), " ")))
		h.Write(b)
	case []byte:
		h.Write(x)
	case int64:
		h.WriteString(strconv.FormatInt(x, 10))
	case uint64:
		h.WriteString(strconv.FormatUint(x, 10))
	case float64:
		if x == 0 {
			x = 0 // -0 equals 0
		}
		h.WriteString(strconv.FormatUint(math.Float64bits(x), 16))
	case float32:
		if x == 0 {
			x = 0
		}
		h.WriteString(strconv.FormatUint(uint64(math.Float32bits(x)), 16))
	case binlog.Decimal:
		h.WriteString(normalizeDecimal(string(x)))
	case binlog.Enum:
		h.WriteString(strconv.Itoa(int(x.Index)))
	case binlog.Set:
		h.WriteString(strconv.FormatUint(x.Bits, 10))
	case binlog.JSON:
		h.Write(x)
	default:
		h.WriteString(strings.ToLower(binlogString(v)))
	}
	h.WriteByte(0)
}

// normalizeDecimal drops a decimal's leading zeros, trailing fraction
// zeros and the sign of zero, so that equal values hash alike.
func normalizeDecimal(s string) string {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimLeft(strings.TrimPrefix(s, "-"), "0")
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	if s == "" {
		return "0"
	}
	if neg {
		return "-" + s
	}
	return s
}

func binlogString(v binlog.Value) string {
	if s, ok := v.(interface{ String() string }); ok {
		return s.String()
	}
	return ""
}

// tableKeys returns the column indexes of t's primary key (first) and of
// every other unique key the target has, nil when the table has no usable
// key. The target's keys are read once per table definition.
func (s *Sink) tableKeys(ctx context.Context, t *binlog.Table) [][]int {
	ks, _ := s.readKeys(ctx, t)
	return ks
}

// onlyKey reports whether the target's only unique key of t is the one
// sluice matches rows by (t.PK), as far as the target says.
func (s *Sink) onlyKey(ctx context.Context, t *binlog.Table) bool {
	ks, known := s.readKeys(ctx, t)
	return known && len(ks) == 1
}

// tableKeysOf is what readKeys found for a table definition.
type tableKeysOf struct {
	keys  [][]int
	known bool // read from the target
}

func (s *Sink) readKeys(ctx context.Context, t *binlog.Table) ([][]int, bool) {
	if len(t.PK) == 0 {
		return nil, false
	}
	s.keysMu.Lock()
	defer s.keysMu.Unlock()
	if k, ok := s.keys[t]; ok {
		return k.keys, k.known
	}
	ks := [][]int{t.PK}
	rows, err := s.db.QueryContext(ctx, "SELECT INDEX_NAME, COLUMN_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND NON_UNIQUE = 0 ORDER BY INDEX_NAME, SEQ_IN_INDEX",
		t.Schema, t.Name)
	if err != nil {
		// Without the target's unique keys the primary key alone
		// decides; a missed conflict is ordered by the rows' locks.
		s.log.Debug("reading the target's unique keys", "table", t.QualifiedName(), "error", err.Error())
		return ks, false
	}
	defer rows.Close()
	var cur string
	var cols []int
	ok := true
	known := true
	flush := func() {
		switch {
		case cur == "":
		case !ok || len(cols) == 0:
			known = false // a unique key over columns the source lacks (routing)
		case !slices.Equal(cols, t.PK):
			ks = append(ks, cols)
		}
	}
	for rows.Next() {
		var index, column string
		if rows.Scan(&index, &column) != nil {
			known = false
			break
		}
		if index != cur {
			flush()
			cur, cols, ok = index, nil, true
		}
		if i := t.ColumnIndex(column); i >= 0 {
			cols = append(cols, i)
		} else {
			ok = false // a column the source does not have (routing)
		}
	}
	flush()
	if rows.Err() != nil {
		known = false
	}
	if len(s.keys) > 1000 {
		clear(s.keys)
	}
	s.keys[t] = tableKeysOf{ks, known}
	return ks, known
}

// forgetKeys drops what tableKeys read.
func (s *Sink) forgetKeys() {
	s.keysMu.Lock()
	clear(s.keys)
	s.keysMu.Unlock()
	// And the tables with foreign keys (fk.go): read again when next asked.
	s.fkMu.Lock()
	s.fkTables, s.fkAll = nil, false
	s.fkMu.Unlock()
}

// progress is the state of a parallel run, shared by its workers.
type progress struct {
	mu      sync.Mutex
	changed chan struct{} // closed and replaced at every change
	// inserted: items [0, inserted) wrote their checkpoint row (or
	// committed); committed: items [0, committed) committed.
	inserted, committed int
	// failed is the first item that failed, len(items) while none did.
	failed int
	err    error
	// sending[i] is when item i began sending rows (the only statements
	// that can wait for a lock a later item holds), 0 while it is not.
	sending []atomic.Int64
}

func newProgress(n int) *progress {
	return &progress{changed: make(chan struct{}), failed: n, sending: make([]atomic.Int64, n)}
}

// blockedBefore reports whether an item before i that has not committed
// has been sending rows for at least d: it may be waiting for a lock
// item i holds.
func (p *progress) blockedBefore(i int, d time.Duration) bool {
	p.mu.Lock()
	from := p.committed
	p.mu.Unlock()
	now := time.Now().UnixNano()
	for j := from; j < i; j++ {
		if s := p.sending[j].Load(); s != 0 && now-s >= int64(d) {
			return true
		}
	}
	return false
}

func (p *progress) update(f func()) {
	p.mu.Lock()
	f()
	p.inserted = max(p.inserted, p.committed)
	close(p.changed)
	p.changed = make(chan struct{})
	p.mu.Unlock()
}

func (p *progress) fail(i int, err error) {
	p.update(func() {
		if i < p.failed {
			p.failed, p.err = i, err
		}
	})
}

// wait outcomes.
const (
	waitOK = iota
	waitAborted
	waitTimeout
)

// wait waits until cond holds (waitOK), an item before i failed
// (waitAborted), or, with patience > 0, nothing changed for that long
// while an item before i has been sending rows for that long
// (waitTimeout).
func (p *progress) wait(ctx context.Context, i int, cond func() bool, patience time.Duration) int {
	for {
		p.mu.Lock()
		switch {
		case p.failed < i:
			p.mu.Unlock()
			return waitAborted
		case cond():
			p.mu.Unlock()
			return waitOK
		}
		ch := p.changed
		p.mu.Unlock()
		var timeout <-chan time.Time
		var tm *time.Timer
		if patience > 0 {
			tm = time.NewTimer(patience)
			timeout = tm.C
		}
		select {
		case <-ch:
		case <-timeout:
			if p.blockedBefore(i, patience) {
				return waitTimeout
			}
			// Slow, not waiting for this item's locks: wait on.
			continue
		case <-ctx.Done():
			return waitAborted
		}
		if tm != nil {
			tm.Stop()
		}
	}
}

// worker returns the k-th apply connection of the source (0 is a itself).
func (a *applier) worker(k int) *applier {
	if k == 0 {
		return a
	}
	a.poolMu.Lock()
	defer a.poolMu.Unlock()
	for len(a.pool) < k {
		a.pool = append(a.pool, &applier{s: a.s, source: a.source})
	}
	return a.pool[k-1]
}

// applyParallel applies txns as items on the source's workers. It returns
// nil when all committed; otherwise the error of the first item that
// failed, everything before it committed (unless its COMMIT's outcome is
// unknown: the caller reads the checkpoint) and nothing after it.
func (a *applier) applyParallel(ctx context.Context, txns []*binlog.Txn) error {
	items, err := a.plan(ctx, txns)
	if err != nil {
		return err
	}
	p := newProgress(len(items))
	var next atomic.Int64
	var wg sync.WaitGroup
	nw := min(a.s.workers(), len(items))
	defer func(start time.Time) { a.timers.wall.Add(int64(nw) * int64(time.Since(start))) }(time.Now())
	for k := range nw {
		w := a.worker(k)
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(items) {
					return
				}
				w.runItem(ctx, a, p, i, &items[i])
			}
		})
	}
	wg.Wait()
	a.s.log.Debug("parallel apply: worker time so far", append([]any{"source", a.source, "items", a.items.Add(int64(len(items))),
		"yields", a.yields.Load(), "patience", a.patience().String()}, a.timers.attrs()...)...)
	return p.err
}

// runItem applies item i: see the top of this file.
func (w *applier) runItem(ctx context.Context, a *applier, p *progress, i int, it *item) {
	last := it.txns[len(it.txns)-1]
	fail := func(err error) {
		w.rollback(ctx)
		if retryable(err) {
			w.reset()
		}
		p.fail(i, err)
	}
	t0 := time.Now()
	if p.wait(ctx, i, func() bool { return p.committed > it.after }, 0) != waitOK {
		return
	}
	a.timers.add(&a.timers.after, t0)
	checkpointed := false
retry:
	for {
		// Once the dependency has committed, everything goes in source
		// order; before, the independent transactions go first, and the
		// dependent ones once it has committed.
		parts := [][]*binlog.Txn{it.txns}
		if len(it.dependent) > 0 && !p.holds(func() bool { return p.committed > it.dep }) {
			parts = [][]*binlog.Txn{it.indep, it.dependent}
		}
		open := false // the target transaction
		var busy time.Duration
		for k, part := range parts {
			if k == 1 {
				// Holding the independent ones' locks, wait as for the
				// item before (below): a missed conflict may make the
				// dependency wait for this item's locks.
				patience := time.Duration(0)
				if open {
					patience = a.patience()
				}
				t0 := time.Now()
				switch p.wait(ctx, i, func() bool { return p.committed > it.dep }, patience) {
				case waitAborted:
					w.rollback(ctx)
					return
				case waitTimeout:
					if !w.yield(ctx, a, p, i) {
						return
					}
					continue retry
				}
				a.timers.add(&a.timers.dep, t0)
			}
			if len(part) == 0 {
				continue
			}
			o := sendOpts{cont: open, leaveOpen: true}
			if k == len(parts)-1 && p.holds(func() bool { return p.inserted >= i }) {
				// The item before has written its checkpoint: this
				// one's rides with the last rows.
				o.checkpoint = last
			}
			t0 := time.Now()
			p.sending[i].Store(t0.UnixNano())
			err := w.sendRows(ctx, part, o)
			p.sending[i].Store(0)
			if err != nil {
				fail(err)
				return
			}
			busy += time.Since(t0)
			a.timers.add(&a.timers.send, t0)
			open = true
			checkpointed = o.checkpoint != nil
		}
		a.observe(busy)
		if checkpointed {
			break
		}
		t0 := time.Now()
		switch p.wait(ctx, i, func() bool { return p.inserted >= i }, a.patience()) {
		case waitAborted:
			w.rollback(ctx)
			return
		case waitTimeout:
			// The item before may be waiting for a lock this one holds:
			// give them up, and run again once everything before has
			// committed.
			if !w.yield(ctx, a, p, i) {
				return
			}
			continue
		}
		a.timers.add(&a.timers.inserted, t0)
		break
	}
	if !checkpointed {
		t0 := time.Now()
		affected, err := w.exec(ctx, string(w.appendCheckpoint(nil, last)))
		if err == nil {
			err = checkFence(affected[0])
		}
		if err != nil {
			fail(w.explain(last, err))
			return
		}
		a.timers.add(&a.timers.checkpoint, t0)
	}
	p.update(func() { p.inserted = max(p.inserted, i+1) })
	t0 = time.Now()
	if p.wait(ctx, i, func() bool { return p.committed >= i }, 0) != waitOK {
		w.rollback(ctx)
		return
	}
	a.timers.add(&a.timers.ordered, t0)
	t0 = time.Now()
	if _, err := w.exec(ctx, "COMMIT"); err != nil {
		fail(w.explain(last, err))
		return
	}
	a.timers.add(&a.timers.commit, t0)
	p.update(func() { p.committed = i + 1 })
}

// yield rolls item i back, giving its locks up to the items before, and
// waits until they have all committed; false when one failed.
func (w *applier) yield(ctx context.Context, a *applier, p *progress, i int) bool {
	w.rollback(ctx)
	a.yields.Add(1)
	return p.wait(ctx, i, func() bool { return p.committed >= i }, 0) == waitOK
}

// holds reports whether cond holds now.
func (p *progress) holds(cond func() bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return cond()
}

// applyTimers add up where the workers of a source spend their time, for
// the debug log.
type applyTimers struct {
	// after: waiting for a barrier; dep: for the dependency, between the
	// independent and the dependent transactions; inserted: for the item
	// before to write its checkpoint; ordered: for it to commit.
	after, dep, inserted, ordered atomic.Int64
	// send: sending rows; checkpoint: writing the checkpoint row on its
	// own (it waits in the server for the item before to commit);
	// commit: COMMIT.
	send, checkpoint, commit atomic.Int64
	// wall: the runs' wall time times their workers.
	wall atomic.Int64
}

func (*applyTimers) add(t *atomic.Int64, since time.Time) { t.Add(int64(time.Since(since))) }

func (t *applyTimers) attrs() []any {
	d := func(x *atomic.Int64) string { return time.Duration(x.Load()).Round(time.Millisecond).String() }
	return []any{"workers_wall", d(&t.wall), "send", d(&t.send), "wait_barrier", d(&t.after), "wait_dependency", d(&t.dep), "wait_checkpoint_before", d(&t.inserted),
		"checkpoint", d(&t.checkpoint), "wait_commit_before", d(&t.ordered), "commit", d(&t.commit)}
}
