package replicator

import "testing"

// SnapshotGlobalLock makes the snapshots of the test t take the
// global-lock path of MySQL sources (snapshotGlobalLock).
func SnapshotGlobalLock(t testing.TB) {
	snapshotGlobalLock = true
	t.Cleanup(func() { snapshotGlobalLock = false })
}
