package snapshot

import (
	"testing"
	"time"
)

// SetLockBudget sets how long the global read lock is retried, for the
// test t.
func SetLockBudget(t testing.TB, d time.Duration) {
	old := lockBudget
	lockBudget = d
	t.Cleanup(func() { lockBudget = old })
}
