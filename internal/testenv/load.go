package testenv

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// LoadSchema creates the tables a Load writes, in database db:
//
//   - accounts: balances moved by transfers, so their sum is constant in
//     every committed state;
//   - ledger: one row per transfer with a unique id, so a transfer applied
//     twice collides;
//   - items: a primary key and most column types, changed at random;
//   - events: no primary key, duplicate rows allowed.
func LoadSchema(db string, accounts int) []string {
	stmts := []string{
		"CREATE DATABASE IF NOT EXISTS " + db,
		"CREATE TABLE " + db + ".accounts (id INT PRIMARY KEY, balance BIGINT NOT NULL)",
		"CREATE TABLE " + db + ".ledger (id BIGINT UNSIGNED PRIMARY KEY, src INT NOT NULL, dst INT NOT NULL, amount INT NOT NULL, at DATETIME(6) NOT NULL)",
		"CREATE TABLE " + db + `.items (
			id INT PRIMARY KEY, name VARCHAR(64) CHARACTER SET utf8mb4, price DECIMAL(12,4), qty SMALLINT UNSIGNED,
			big BIGINT UNSIGNED, ratio DOUBLE, f FLOAT, flags SET('a','b','c'), kind ENUM('x','y','z'),
			born DATE, seen DATETIME(3), t TIME(2), ts TIMESTAMP(6) NULL, yr YEAR, bits BIT(12),
			raw VARBINARY(32), body TEXT, doc JSON, g POINT NULL, lat VARCHAR(20) CHARACTER SET latin1,
			gen INT AS (qty * 2) VIRTUAL)`,
		"CREATE TABLE " + db + ".events (kind VARCHAR(16), payload VARCHAR(64), n INT)",
	}
	var vals []string
	for i := 1; i <= accounts; i++ {
		vals = append(vals, fmt.Sprintf("(%d, 1000)", i))
	}
	return append(stmts, "INSERT INTO "+db+".accounts VALUES "+strings.Join(vals, ","))
}

// Load writes random transactions to a server until stopped.
type Load struct {
	DB       string // database holding the LoadSchema tables
	Accounts int
	Workers  int

	Transfers atomic.Int64 // committed transfers
	Txns      atomic.Int64 // committed transactions of any kind
	Errors    atomic.Int64 // failed (e.g. during a server restart), retried by the next iteration

	cancel context.CancelFunc
	wg     sync.WaitGroup
	nextID atomic.Uint64
}

// StartLoad starts writing; Stop waits for the writers to end.
func StartLoad(t testing.TB, m *MariaDB, db string, workers int) *Load {
	t.Helper()
	sqlDB, err := sql.Open("mysql", m.DriverDSN(db))
	if err != nil {
		t.Fatal(err)
	}
	l := &Load{DB: db, Workers: workers}
	if err := sqlDB.QueryRow("SELECT COUNT(*) FROM accounts").Scan(&l.Accounts); err != nil || l.Accounts == 0 {
		t.Fatalf("load: no accounts in %s (create them with LoadSchema): %v", db, err)
	}
	l.nextID.Store(uint64(time.Now().UnixNano()) % 1e12 * 1000)
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	for w := range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
			for ctx.Err() == nil {
				if err := l.one(ctx, sqlDB, r); err != nil {
					l.Errors.Add(1)
					time.Sleep(50 * time.Millisecond)
				}
			}
		}()
	}
	t.Cleanup(func() { l.Stop(); sqlDB.Close() })
	return l
}

// Stop stops the writers and waits for them.
func (l *Load) Stop() {
	l.cancel()
	l.wg.Wait()
}

func (l *Load) one(ctx context.Context, db *sql.DB, r *rand.Rand) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	exec := func(q string, args ...any) error {
		_, err := tx.ExecContext(ctx, q, args...)
		return err
	}
	transfer := false
	switch k := r.IntN(10); {
	case k < 5: // a transfer: two balances and a ledger row, atomically
		a, b := 1+r.IntN(l.Accounts), 1+r.IntN(l.Accounts)
		amount := 1 + r.IntN(50)
		if err := exec("UPDATE accounts SET balance = balance - ? WHERE id = ?", amount, a); err != nil {
			return err
		}
		if err := exec("UPDATE accounts SET balance = balance + ? WHERE id = ?", amount, b); err != nil {
			return err
		}
		if err := exec("INSERT INTO ledger VALUES (?, ?, ?, ?, NOW(6))", l.nextID.Add(1), a, b, amount); err != nil {
			return err
		}
		transfer = true
	case k < 8: // items: insert, update or delete a few rows
		for range 1 + r.IntN(4) {
			id := 1 + r.IntN(300)
			var err error
			switch r.IntN(3) {
			case 0:
				err = exec(`REPLACE INTO items (id, name, price, qty, big, ratio, f, flags, kind, born, seen, t, ts, yr, bits, raw, body, doc, g, lat)
					VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ST_GeomFromText(?), ?)`,
					id, fmt.Sprintf("item %d ✓", id), fmt.Sprintf("%d.%04d", r.IntN(100000), r.IntN(10000)), r.IntN(65536),
					r.Uint64(), r.Float64()*1e6, float32(r.IntN(1000))/8, []string{"", "a", "a,b", "b,c"}[r.IntN(4)], []string{"x", "y", "z"}[r.IntN(3)],
					fmt.Sprintf("20%02d-%02d-%02d", r.IntN(30), 1+r.IntN(12), 1+r.IntN(28)), fmt.Sprintf("2024-01-02 03:04:%02d.%03d", r.IntN(60), r.IntN(1000)),
					fmt.Sprintf("%d:%02d:%02d.%02d", r.IntN(800)-400, r.IntN(60), r.IntN(60), r.IntN(100)), time.Unix(r.Int64N(2e9), int64(r.IntN(1e6))*1000).UTC().Format("2006-01-02 15:04:05.000000"),
					1901+r.IntN(254), r.IntN(4096), []byte{byte(r.IntN(256)), 0, byte(r.IntN(256))}, strings.Repeat("body ", r.IntN(40)),
					fmt.Sprintf(`{"n": %d, "tags": ["a", "b"], "nested": {"x": %f}}`, r.IntN(1000), r.Float64()), fmt.Sprintf("POINT(%d %d)", r.IntN(100), r.IntN(100)),
					"café")
			case 1:
				err = exec("UPDATE items SET qty = ?, price = price + 1, body = CONCAT(COALESCE(body, ''), '+'), doc = JSON_SET(COALESCE(doc, '{}'), '$.u', ?) WHERE id = ?", r.IntN(65536), r.IntN(100), id)
			default:
				err = exec("DELETE FROM items WHERE id = ?", id)
			}
			if err != nil {
				return err
			}
		}
	default: // events: a table without a primary key
		switch r.IntN(3) {
		case 0, 1:
			if err := exec("INSERT INTO events VALUES (?, ?, ?), (?, ?, ?)", "k"+fmt.Sprint(r.IntN(5)), "p", r.IntN(3), "k"+fmt.Sprint(r.IntN(5)), "p", r.IntN(3)); err != nil {
				return err
			}
		default:
			if err := exec("DELETE FROM events WHERE kind = ? LIMIT 1", "k"+fmt.Sprint(r.IntN(5))); err != nil {
				return err
			}
			if err := exec("UPDATE events SET n = n + 1 WHERE kind = ? LIMIT 1", "k"+fmt.Sprint(r.IntN(5))); err != nil {
				return err
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	l.Txns.Add(1)
	if transfer {
		l.Transfers.Add(1)
	}
	return nil
}

// LoadTables are the tables a Load writes, qualified.
func LoadTables(db string) []string {
	return []string{db + ".accounts", db + ".ledger", db + ".items", db + ".events"}
}
