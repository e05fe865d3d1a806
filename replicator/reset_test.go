package replicator_test

import (
	"context"
	"testing"

	"github.com/sluice-cdc/sluice/binlog"
	"github.com/sluice-cdc/sluice/internal/testenv"
	"github.com/sluice-cdc/sluice/replicator"
)

// sluice reset forgets the snapshot's progress rows along with the old
// checkpoint: a target emptied and reset to replay from the source's
// oldest binlog gets every row back, including the changes the initial
// copy held (which streaming after a snapshot drops while the rows stay).
func TestResetClearsSnapshot(t *testing.T) {
	servers := testenv.StartMariaDBs(t, 2)
	src, dst := servers[0], servers[1]
	src.Exec(t, "CREATE DATABASE app", "CREATE TABLE app.t (id INT PRIMARY KEY, v INT)",
		"INSERT INTO app.t VALUES (1, 1), (2, 2)", "UPDATE app.t SET v = 20 WHERE id = 2")
	cfg := testenv.LoadConfig(t, pipelineYAML(src, dst, "", "")+"    snapshot: initial\n")
	runToEnd(t, cfg)
	src.Exec(t, "INSERT INTO app.t VALUES (3, 3)")
	runToEnd(t, cfg)
	if n := dst.QueryString(t, "SELECT COUNT(*) FROM sluice.snapshot"); n != "1" {
		t.Fatalf("%s snapshot rows after snapshot: initial, want 1", n)
	}
	sameTables(t, src, dst, "app.t")

	// Replay everything into an emptied table.
	dst.Exec(t, "DELETE FROM app.t")
	res, err := replicator.Reset(context.Background(), cfg, cfg.Pipelines[0], nil, binlog.Start{Mode: binlog.StartOldest}, testenv.Logger())
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || res[0].SnapshotRows != 1 {
		t.Fatalf("reset: %+v, want one source with 1 snapshot row cleared", res)
	}
	if n := dst.QueryString(t, "SELECT COUNT(*) FROM sluice.snapshot"); n != "0" {
		t.Fatalf("%s snapshot rows after the reset, want 0", n)
	}
	src.Exec(t, "INSERT INTO app.t VALUES (4, 4)")
	runToEnd(t, cfg)
	sameTables(t, src, dst, "app.t")
}
