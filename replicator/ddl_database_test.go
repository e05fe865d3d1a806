package replicator_test

import (
	"fmt"
	"testing"

	"github.com/sluice-cdc/sluice/internal/testenv"
)

// The server logs CREATE and DROP DATABASE with the database they name as
// the session's default, also when it does not exist (DROP DATABASE IF
// EXISTS of nothing): the target runs them without a default database
// (Maxwell's test setup, found by scripts/peers.sh).
func TestDDLDropDatabaseIfExists(t *testing.T) {
	servers := testenv.StartMariaDBs(t, 2)
	src, dst := servers[0], servers[1]
	src.Exec(t,
		"CREATE DATABASE IF NOT EXISTS shard_2",
		"DROP DATABASE IF EXISTS shard_1",
		"CREATE DATABASE shard_1",
		"USE shard_1",
		"CREATE TABLE t (id INT PRIMARY KEY)",
		"INSERT INTO t VALUES (1)",
		"DROP DATABASE IF EXISTS shard_2",
		"DROP DATABASE IF EXISTS shard_2",
		"INSERT INTO t VALUES (2)",
	)
	var logs logBuffer
	cfg := testenv.LoadConfig(t, fmt.Sprintf(`
http: {listen: "off"}
pipelines:
  - name: p
    sources: [{name: primary, dsn: %q, start: oldest}]
    sink: {type: mysql, dsn: %q, ddl: apply, on_conflict: stop}
`, src.DSN(), dst.DSN()))
	if err := runCaptured(t, cfg, &logs); err != nil {
		t.Fatalf("%v\n%s", err, logs.String())
	}
	sameTables(t, src, dst, "shard_1.t")
	if got := dst.QueryString(t, "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'shard_2'"); got != "0" {
		t.Errorf("shard_2 still exists on the target")
	}
}
