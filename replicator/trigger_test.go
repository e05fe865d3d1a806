package replicator_test

import (
	"strings"
	"testing"

	"github.com/sluice-cdc/sluice/internal/testenv"
)

// TestTriggersNotRun: a trigger's or an event's statement is not applied
// to a MySQL target. The rows a trigger writes on the source arrive as
// rows (ROW format), so a trigger on the target would write them twice; a
// replica does not run them either (slave_run_triggers_for_rbr=NO).
func TestTriggersNotRun(t *testing.T) {
	servers := testenv.StartMariaDBs(t, 2)
	src, dst := servers[0], servers[1]
	src.Exec(t,
		"CREATE DATABASE app",
		"USE app",
		"CREATE TABLE app.a (id INT PRIMARY KEY, v INT)",
		"CREATE TABLE app.log (n INT AUTO_INCREMENT PRIMARY KEY, id INT, what VARCHAR(10))",
		"CREATE TABLE app.keyless (id INT, what VARCHAR(10))",
		"CREATE TRIGGER ai AFTER INSERT ON a FOR EACH ROW INSERT INTO app.keyless VALUES (NEW.id, 'ins')",
		"CREATE TRIGGER au AFTER UPDATE ON a FOR EACH ROW INSERT INTO app.log (id, what) VALUES (NEW.id, 'upd')",
		"INSERT INTO app.a VALUES (1, 1), (2, 2)",
		"UPDATE app.a SET v = 5 WHERE id = 1",
		"CREATE EVENT ev ON SCHEDULE EVERY 1 SECOND DO INSERT INTO app.keyless VALUES (0, 'event')",
		"DROP TRIGGER au",
		"CREATE PROCEDURE pr() INSERT INTO app.keyless VALUES (-1, 'proc')",
	)
	var logs logBuffer
	cfg := testenv.LoadConfig(t, pipelineYAML(src, dst, "", "on_conflict: stop"))
	if err := runCaptured(t, cfg, &logs); err != nil {
		t.Fatalf("%v\n%s", err, logs.String())
	}
	sameTables(t, src, dst, "app.a", "app.log", "app.keyless")
	for q, want := range map[string]string{
		"SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = 'app'": "0",
		"SELECT COUNT(*) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = 'app'":     "0",
		// Procedures run only when called: they are applied.
		"SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = 'app'": "1",
	} {
		if got := dst.QueryString(t, q); got != want {
			t.Errorf("target: %s = %s, want %s", q, got, want)
		}
	}
	if !strings.Contains(logs.String(), "not applying a trigger statement") || !strings.Contains(logs.String(), "not applying a event statement") {
		t.Errorf("no warning for the trigger and event statements:\n%s", logs.String())
	}
}
