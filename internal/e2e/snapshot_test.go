package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sluice-cdc/sluice/internal/testenv"
)

// TestSnapshotKillResume kills `sluice snapshot` with SIGKILL while it
// copies, once a big table is finished and the other half copied, under a
// write load. The second run keeps the finished table (its progress row,
// position and time, untouched: it is not read again) and copies the
// other again; sluice run (without snapshot: initial: the pipeline file
// need not say it) then streams, and every table ends equal, with
// no transfer lost or applied twice (the ledger's unique ids).
func TestSnapshotKillResume(t *testing.T) {
	servers := testenv.StartMariaDBs(t, 2)
	src, dst := servers[0], servers[1]
	src.Exec(t, testenv.LoadSchema("bank", 50)...)
	for _, tb := range []string{"big1", "big2"} {
		n := 300000
		if tb == "big2" {
			n = 200000 // copied second: the largest goes first
		}
		src.Exec(t, "CREATE TABLE bank."+tb+" (id INT PRIMARY KEY, a VARCHAR(40), b DOUBLE, c DATETIME(6))",
			fmt.Sprintf("INSERT INTO bank.%s SELECT seq, CONCAT('row ', seq), seq / 7, '2024-01-01' + INTERVAL seq SECOND FROM bank.seq_1_to_%d", tb, n))
	}
	src.Exec(t, "FLUSH BINARY LOGS")
	files := src.BinlogFiles(t)
	src.PurgeBinlogsTo(t, files[len(files)-1])
	load := testenv.StartLoad(t, src, "bank", 3)

	cfgPath := writeConfig(t, fmt.Sprintf(`
http: {listen: "off"}
pipelines:
  - name: bank
    sources:
      - {name: primary, dsn: "%s", include: ["bank.*"]}
    sink: {type: mysql, dsn: "%s"}
`, src.DSN(), dst.DSN()))

	d := startCommand(t, "snapshot", cfgPath, "--readers", "1", "--writers", "2")
	deadline := time.Now().Add(2 * time.Minute)
	var done1, finished string
	for {
		if time.Now().After(deadline) {
			t.Fatalf("no big table finished while the other was half copied:\n%s", logTail(t, cfgPath, 20))
		}
		if dst.QueryString(t, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'sluice' AND TABLE_NAME = 'snapshot'") == "0" {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		state := dst.QueryString(t, "SELECT IFNULL(GROUP_CONCAT(table_name, ':', done, ':', rows_copied ORDER BY table_name), '') FROM sluice.snapshot")
		for _, pair := range [][2]string{{"big1", "big2"}, {"big2", "big1"}} {
			if strings.Contains(state, pair[0]+":1:") && strings.Contains(state, pair[1]+":0:") && !strings.Contains(state, pair[1]+":0:0") {
				d.kill()
				finished = pair[0]
				done1 = dst.QueryString(t, "SELECT CONCAT(gtid_set, ' ', updated_at) FROM sluice.snapshot WHERE table_name = ?", finished)
				t.Logf("killed with %s", state)
				break
			}
		}
		if finished != "" {
			break
		}
		if d.cmd.ProcessState != nil {
			t.Fatalf("sluice snapshot ended before the kill:\n%s", logTail(t, cfgPath, 20))
		}
		time.Sleep(20 * time.Millisecond)
	}

	if out, code := sluice(t, "snapshot", "-c", cfgPath); code != 0 {
		t.Fatalf("sluice snapshot after the kill exited %d:\n%s", code, out)
	}
	if again := dst.QueryString(t, "SELECT CONCAT(gtid_set, ' ', updated_at) FROM sluice.snapshot WHERE table_name = ?", finished); again != done1 {
		t.Fatalf("%s was copied again after the kill: its progress went from %q to %q", finished, done1, again)
	}
	if out, code := sluice(t, "snapshot", "-c", cfgPath); code != 1 || !strings.Contains(out, "already streams") {
		t.Fatalf("a second snapshot of a source with a checkpoint: exit %d, want 1 and a message:\n%s", code, out)
	}
	catchUp(t, cfgPath)
	load.Stop()
	catchUp(t, cfgPath)
	tables := append(testenv.LoadTables("bank"), "bank.big1", "bank.big2")
	if a, b := src.Checksums(t, tables...), dst.Checksums(t, tables...); a != b {
		t.Fatalf("checksums differ:\nsource %s\ntarget %s", a, b)
	}
	if out, code := sluice(t, "verify", "-c", cfgPath, "-q"); code != 0 {
		t.Fatalf("sluice verify exited %d:\n%s", code, out)
	}
	t.Logf("load: %d transfers", load.Transfers.Load())
}
