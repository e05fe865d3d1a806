package e2e

import (
	"fmt"
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
	cfgPath := writeConfig(t, fmt.Sprintf(`
http: {listen: "off"}
pipelines:
  - name: shop
    sources:
      - {name: primary, dsn: "%s", start: oldest, include: ["shop.*"]}
    sink: {type: mysql, dsn: "%s"}
`, src.UserDSN("sluice_src", "s3cret"), dst.UserDSN("sluice_dst", "s3cret")))
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
	d.kill()
	if a, b := src.Checksums(t, "shop.t", "shop.u"), dst.Checksums(t, "shop.t", "shop.u"); a != b {
		t.Fatalf("source %s, target %s", a, b)
	}
	out, code := sluice(t, "verify", "-c", cfgPath)
	if code != 0 || strings.Count(out, "MATCH ") != 2 {
		t.Fatalf("sluice verify with the README's privileges: exit %d:\n%s", code, out)
	}
	out, code = sluice(t, "status", "-c", cfgPath)
	if code != 0 || !strings.Contains(out, "shop") {
		t.Fatalf("sluice status with the README's privileges: exit %d:\n%s", code, out)
	}
}
