package snapshot_test

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-cdc/sluice/internal/testenv"
	"github.com/sluice-cdc/sluice/snapshot"
	"github.com/sluice-cdc/sluice/verify"
)

// recorder is a slog handler that keeps the records (and passes them to
// the test's logger).
type recorder struct {
	next slog.Handler
	mu   *sync.Mutex
	recs *[]slog.Record
}

func newRecorder() (*slog.Logger, func() []slog.Record) {
	r := recorder{next: testenv.Logger().Handler(), mu: &sync.Mutex{}, recs: &[]slog.Record{}}
	return slog.New(r), func() []slog.Record {
		r.mu.Lock()
		defer r.mu.Unlock()
		return append([]slog.Record(nil), *r.recs...)
	}
}

func (r recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r recorder) Handle(ctx context.Context, rec slog.Record) error {
	r.mu.Lock()
	*r.recs = append(*r.recs, rec.Clone())
	r.mu.Unlock()
	if r.next.Enabled(ctx, rec.Level) {
		return r.next.Handle(ctx, rec)
	}
	return nil
}
func (r recorder) WithAttrs(as []slog.Attr) slog.Handler {
	return recorder{next: r.next.WithAttrs(as), mu: r.mu, recs: r.recs}
}
func (r recorder) WithGroup(name string) slog.Handler {
	return recorder{next: r.next.WithGroup(name), mu: r.mu, recs: r.recs}
}

func attr(rec slog.Record, key string) (slog.Value, bool) {
	var v slog.Value
	found := false
	rec.Attrs(func(a slog.Attr) bool {
		if a.Key == key {
			v, found = a.Value, true
			return false
		}
		return true
	})
	return v, found
}

// seqNo is the sequence number of a MariaDB GTID position of domain 0
// ("0-1-42": 42).
func seqNo(t testing.TB, pos string) int {
	t.Helper()
	i := strings.LastIndexByte(pos, '-')
	n, err := strconv.Atoi(pos[i+1:])
	if err != nil || strings.Contains(pos, ",") {
		t.Fatalf("GTID position %q: want one domain", pos)
	}
	return n
}

// streamAndVerify streams the source into the target from the snapshot
// recorded there (pipeline p, source primary: snapshot: initial finds
// every table copied and starts at their position), then compares every
// table of db with verify.
func streamAndVerify(t *testing.T, src, dst *testenv.MariaDB, db string) {
	t.Helper()
	cfg := testenv.LoadConfig(t, fmt.Sprintf(`
http: {listen: "off"}
pipelines:
  - name: p
    snapshot: initial
    sources: [{name: primary, dsn: "%s", include: ["%s.*"]}]
    sink: {type: mysql, dsn: "%s"}
`, src.DSN(), db, dst.DSN()))
	if err := testenv.RunToEnd(t, cfg); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tables, err := verify.Tables(ctx, src.DB(t), func(s, _ string) bool { return s == db })
	if err != nil {
		t.Fatal(err)
	}
	res, err := verify.Compare(ctx, src.DB(t), dst.DB(t), tables, verify.Options{Retries: -1})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if !r.Match {
			t.Errorf("verify %s: %s %v", r.Source, r.FirstDiff, r.Err)
		}
	}
}

// pairLoad commits, on each of workers connections until stopped, one
// transaction at a time that inserts a row into g.a and the same id into
// g.b and counts it in g.counter: every transaction is one GTID, and any
// consistent copy has as many rows in a and b as counter says, which is
// the number of those transactions its position holds.
type pairLoad struct {
	txns   atomic.Int64
	stop   chan struct{}
	done   sync.WaitGroup
	errsMu sync.Mutex
	errs   []error
}

func startPairLoad(t *testing.T, m *testenv.MariaDB, workers int) *pairLoad {
	l := &pairLoad{stop: make(chan struct{})}
	db := m.DB(t)
	for range workers {
		l.done.Add(1)
		go func() {
			defer l.done.Done()
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				if err := pairTxn(db); err != nil {
					l.errsMu.Lock()
					l.errs = append(l.errs, err)
					l.errsMu.Unlock()
					return
				}
				l.txns.Add(1)
			}
		}()
	}
	t.Cleanup(l.end)
	return l
}

func pairTxn(db *sql.DB) error {
	tx, err := db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	res, err := tx.Exec("INSERT INTO g.a (v) VALUES (REPEAT('a', 50))")
	if err != nil {
		return err
	}
	id, err := res.LastInsertId()
	if err != nil {
		return err
	}
	if _, err := tx.Exec("INSERT INTO g.b (id, v) VALUES (?, REPEAT('b', 50))", id); err != nil {
		return err
	}
	if _, err := tx.Exec("UPDATE g.counter SET n = n + 1 WHERE id = 1"); err != nil {
		return err
	}
	return tx.Commit()
}

func (l *pairLoad) end() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.done.Wait()
}

func (l *pairLoad) waitFor(t *testing.T, n int64) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Minute); l.txns.Load() < n; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the write load committed %d transactions, want %d", l.txns.Load(), n)
		}
	}
}

func pairSchema(rows int) []string {
	return []string{
		"CREATE DATABASE g",
		"CREATE TABLE g.a (id BIGINT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(60))",
		"CREATE TABLE g.b (id BIGINT PRIMARY KEY, v VARCHAR(60))",
		"CREATE TABLE g.counter (id INT PRIMARY KEY, n BIGINT NOT NULL)",
		fmt.Sprintf("INSERT INTO g.a SELECT seq, REPEAT('a', 50) FROM g.seq_1_to_%d", rows),
		fmt.Sprintf("INSERT INTO g.b SELECT seq, REPEAT('b', 50) FROM g.seq_1_to_%d", rows),
		"INSERT INTO g.counter VALUES (1, 0)",
		// Tables no transaction of the load writes: copied at the same
		// position all the same.
		"CREATE TABLE g.still (id INT PRIMARY KEY, v INT)",
		"INSERT INTO g.still SELECT seq, seq FROM g.seq_1_to_500",
		"CREATE TABLE g.nokey (v INT)",
		"INSERT INTO g.nokey SELECT seq FROM g.seq_1_to_300",
	}
}

// TestSnapshotGlobalLock copies, through the global-lock path of MySQL
// sources (exercised on MariaDB), tables a write load keeps changing: every
// table is copied at one position, taken under the lock, and the copy is
// exactly the source's at that position (the rows of a and b, the count
// in counter and the number of load transactions the position holds all
// agree); streaming from there then makes the target verify equal.
func TestSnapshotGlobalLock(t *testing.T) {
	servers := testenv.StartMariaDBs(t, 2)
	src, dst := servers[0], servers[1]
	const rows = 30000
	src.Exec(t, pairSchema(rows)...)
	before := seqNo(t, src.QueryString(t, "SELECT @@gtid_binlog_pos"))
	load := startPairLoad(t, src, 3)
	load.waitFor(t, 50)

	sink := openTarget(t, dst, "p")
	defer sink.Close()
	log, records := newRecorder()
	res, err := snapshot.Run(context.Background(), snapshot.Config{Source: src.DB(t), SourceName: "primary", Filter: mustFilter(t, "g.*"),
		Target: sink, Readers: 2, Writers: 2, Logger: log, GlobalLock: true})
	if err != nil {
		t.Fatal(err)
	}
	// (2 readers for 5 tables: a and b, the largest, first, then each
	// reader copies more tables in its snapshot, g.counter among them.)
	// The load goes on past the snapshot's position.
	load.waitFor(t, load.txns.Load()+50)
	load.end()
	if len(load.errs) > 0 {
		t.Fatal(load.errs[0])
	}

	// One position for every table.
	at := res.Tables[0].At
	for _, ts := range res.Tables {
		if !ts.Done || !ts.At.GTID.Equal(at.GTID) || ts.At.Pos != at.Pos || !ts.Start().GTID.Equal(at.GTID) {
			t.Fatalf("table %s copied at %s %s (done %v), %s at %s %s", ts.Name(), ts.At.GTID.String(), ts.At.Pos, ts.Done,
				res.Tables[0].Name(), at.GTID.String(), at.Pos)
		}
	}
	if !res.Start.GTID.Equal(at.GTID) || len(res.Tables) != 5 {
		t.Fatalf("streaming starts at %s, the tables were copied at %s (%d tables)", res.Start.GTID.String(), at.GTID.String(), len(res.Tables))
	}
	// The copy is the source's at that position.
	inPos := seqNo(t, at.GTID.String()) - before
	a, b := dst.QueryString(t, "SELECT COUNT(*) FROM g.a"), dst.QueryString(t, "SELECT COUNT(*) FROM g.b")
	n := dst.QueryString(t, "SELECT n FROM g.counter")
	want := fmt.Sprint(rows + inPos)
	if a != want || b != want || n != fmt.Sprint(inPos) {
		t.Fatalf("the position %s holds %d load transactions (%d rows in a and b), the copy has %s rows in a, %s in b and a count of %s",
			at.GTID.String(), inPos, rows+inPos, a, b, n)
	}
	if inPos == 0 || int64(inPos) >= load.txns.Load() {
		t.Fatalf("the position holds %d of the %d load transactions: the snapshot ran before or after the load, not during it", inPos, load.txns.Load())
	}

	// One lock, held for the time of a few statements.
	var locks []float64
	for _, rec := range records() {
		if strings.HasPrefix(rec.Message, "global read lock held") {
			v, _ := attr(rec, "held_ms")
			locks = append(locks, v.Float64())
		}
	}
	if len(locks) != 1 {
		t.Fatalf("%d global read locks taken, want 1", len(locks))
	}
	t.Logf("global read lock held %.1f ms; %d of %d load transactions before the position", locks[0], inPos, load.txns.Load())

	streamAndVerify(t, src, dst, "g")
}

// TestSnapshotGlobalLockWaits: a statement running for a while on the
// source (a SELECT that FLUSH TABLES WITH READ LOCK would wait for, with
// every writer queued behind it) defers the lock: each attempt warns,
// naming the statement; with a budget shorter than the statement the
// snapshot stops with an error that names it too, and with the default
// budget the snapshot takes the lock once the statement ends, and copies.
func TestSnapshotGlobalLockWaits(t *testing.T) {
	servers := testenv.StartMariaDBs(t, 2)
	src, dst := servers[0], servers[1]
	src.Exec(t, pairSchema(2000)...)
	slow, err := src.DB(t).Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	var slowID string
	if err := slow.QueryRowContext(context.Background(), "SELECT CONNECTION_ID()").Scan(&slowID); err != nil {
		t.Fatal(err)
	}
	slept := make(chan error, 1)
	go func() {
		// SLEEP once per row of g.counter (one): the statement holds the
		// table open, which FLUSH TABLES WITH READ LOCK waits for.
		var interrupted int
		err := slow.QueryRowContext(context.Background(), "SELECT SLEEP(9) FROM g.counter").Scan(&interrupted)
		if err == nil && interrupted != 0 {
			err = fmt.Errorf("the slow statement was interrupted")
		}
		slept <- err
	}()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		if src.QueryString(t, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = "+slowID+" AND TIME >= 2") == "1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the slow statement did not start")
		}
	}

	warned := func(recs []slog.Record) int {
		n := 0
		for _, rec := range recs {
			if v, ok := attr(rec, "statement_id"); ok && rec.Level == slog.LevelWarn && fmt.Sprint(v.Any()) == slowID {
				n++
			}
		}
		return n
	}
	run := func(log *slog.Logger) (snapshot.Result, error) {
		sink := openTarget(t, dst, "p")
		defer sink.Close()
		return snapshot.Run(context.Background(), snapshot.Config{Source: src.DB(t), SourceName: "primary", Filter: mustFilter(t, "g.*"),
			Target: sink, Readers: 2, Writers: 2, Logger: log, GlobalLock: true})
	}

	// A budget the statement outlasts: a clear error.
	snapshot.SetLockBudget(t, 2*time.Second)
	log, records := newRecorder()
	_, err = run(log)
	if want := "statement " + slowID + " of root"; err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "no global read lock") {
		t.Fatalf("got %v, want an error saying there is no global read lock because of %q", err, want)
	}
	if warned(records()) == 0 {
		t.Fatalf("no warning named the slow statement %s", slowID)
	}
	if n := dst.QueryString(t, "SELECT COUNT(*) FROM g.a"); n != "0" {
		t.Fatalf("%s rows copied without the lock", n)
	}

	// The default budget: it waits for the statement, then copies.
	snapshot.SetLockBudget(t, 10*time.Minute)
	log, records = newRecorder()
	if _, err := run(log); err != nil {
		t.Fatal(err)
	}
	if err := <-slept; err != nil {
		t.Fatal(err)
	}
	if warned(records()) == 0 {
		t.Fatalf("no warning named the slow statement %s", slowID)
	}
	var sawLock bool
	for _, rec := range records() {
		sawLock = sawLock || strings.HasPrefix(rec.Message, "global read lock held")
	}
	if !sawLock {
		t.Fatal("the snapshot did not take the global read lock")
	}
	tables := []string{"g.a", "g.b", "g.counter", "g.still", "g.nokey"}
	if a, b := src.Checksums(t, tables...), dst.Checksums(t, tables...); a != b {
		t.Fatalf("checksums differ:\nsource %s\ntarget %s", a, b)
	}
}
