package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-cdc/sluice/internal/testenv"
)

// TestLeastPrivileges: the GRANT statements the README gives for the
// source and the target users are enough to replicate rows and DDL, hold
// the lease, check status and verify.
func TestLeastPrivileges(t *testing.T) {
	servers := testenv.StartMariaDBs(t, 2)
	src, dst := servers[0], servers[1]
	// As in the README's "Privileges" section.
	src.Exec(t,
		"CREATE USER 'sluice_src'@'%' IDENTIFIED BY 's3cret'",
		"GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO 'sluice_src'@'%'",
		"GRANT SELECT ON shop.* TO 'sluice_src'@'%'",
		"CREATE DATABASE shop", "CREATE TABLE shop.t (id INT PRIMARY KEY, v VARCHAR(10))", "INSERT INTO shop.t VALUES (1, 'a')")
	dst.Exec(t,
		"CREATE USER 'sluice_dst'@'%' IDENTIFIED BY 's3cret'",
		"GRANT ALL ON shop.* TO 'sluice_dst'@'%'",
		"GRANT ALL ON sluice.* TO 'sluice_dst'@'%'")
	t.Setenv("SLUICE_TEST_SRC_PASSWORD", "s3cret")
	port := testenv.FreePort(t)
	cfgPath := writeConfig(t, fmt.Sprintf(`
http: {listen: "127.0.0.1:%d"}
pipelines:
  - name: shop
    sources:
      - {name: primary, dsn: "%s", start: oldest, include: ["shop.*"]}
    sink: {type: mysql, dsn: "%s"}
`, port, src.UserDSN("sluice_src", "${SLUICE_TEST_SRC_PASSWORD}"), dst.UserDSN("sluice_dst", "s3cret")))
	catchUp(t, cfgPath)
	src.Exec(t, "ALTER TABLE shop.t ADD COLUMN at DATETIME NOT NULL DEFAULT '2000-01-01'", "INSERT INTO shop.t VALUES (2, 'b', NOW())",
		"CREATE TABLE shop.u (id INT PRIMARY KEY)", "INSERT INTO shop.u VALUES (1)")
	d := startDaemon(t, cfgPath)
	deadline := time.Now().Add(60 * time.Second)
	for dst.QueryString(t, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'shop' AND TABLE_NAME = 'u'") != "1" ||
		dst.QueryString(t, "SELECT COUNT(*) FROM shop.u") != "1" {
		if time.Now().After(deadline) {
			t.Fatalf("not replicated with the README's privileges:\n%s", logTail(t, cfgPath, 20))
		}
		time.Sleep(200 * time.Millisecond)
	}
	// sluice status asks the daemon, which needs no source password: it
	// works in a shell where the variable is not set.
	st := exec.Command(sluiceBin, "status", "-c", cfgPath)
	st.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "SLUICE_TEST_SRC_PASSWORD=") })
	out, err := st.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "streaming") {
		t.Fatalf("sluice status without the source password, daemon running: %v\n%s", err, out)
	}
	d.kill()
	st = exec.Command(sluiceBin, "status", "-c", cfgPath)
	st.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "SLUICE_TEST_SRC_PASSWORD=") })
	out, _ = st.CombinedOutput()
	if st.ProcessState.ExitCode() != 2 || !strings.Contains(string(out), "needs SLUICE_TEST_SRC_PASSWORD set") {
		t.Fatalf("sluice status without the source password, no daemon: exit %d\n%s", st.ProcessState.ExitCode(), out)
	}
	if a, b := src.Checksums(t, "shop.t", "shop.u"), dst.Checksums(t, "shop.t", "shop.u"); a != b {
		t.Fatalf("source %s, target %s", a, b)
	}
	out2, code := sluice(t, "verify", "-c", cfgPath)
	if code != 0 || strings.Count(out2, "MATCH ") != 2 {
		t.Fatalf("sluice verify with the README's privileges: exit %d:\n%s", code, out2)
	}
	out2, code = sluice(t, "status", "-c", cfgPath)
	if code != 0 || !strings.Contains(out2, "shop") {
		t.Fatalf("sluice status with the README's privileges: exit %d:\n%s", code, out2)
	}
}
