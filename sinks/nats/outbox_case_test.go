package nats_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sluice-cdc/sluice/internal/testenv"
)

// TestOutboxColumnNames: outbox column names match the table's columns
// whatever their case (as MySQL's do), so each message gets its row's id;
// a column the table lacks stops the pipeline with a message naming it,
// instead of giving every message the same id (which JetStream's
// de-duplication would then drop).
func TestOutboxColumnNames(t *testing.T) {
	src := testenv.StartMariaDB(t, testenv.MariaDBOptions{})
	n := testenv.StartNATS(t)
	src.Exec(t, "CREATE DATABASE app",
		"CREATE TABLE app.outbox (EventID VARCHAR(36) PRIMARY KEY, Topic VARCHAR(100), Payload TEXT)",
		"INSERT INTO app.outbox VALUES ('e-1', 'a', 'one')", "INSERT INTO app.outbox VALUES ('e-2', 'a', 'two')",
		"INSERT INTO app.outbox VALUES ('e-3', 'b', 'three')")
	tests := []struct {
		name, keyColumn, wantErr string
		wantIDs                  []string
	}{
		{"different case", "eventid", "", []string{"outbox|app.outbox|e-1", "outbox|app.outbox|e-2", "outbox|app.outbox|e-3"}},
		{"missing column", "event_id", `outbox table app.outbox has no column "event_id"`, nil},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stream := []string{"OC0", "OC1"}[i]
			cfg := natsPipeline(t, src, n.URL(), `
stream: {name: `+stream+`}
subject: "`+stream+`.{schema}.{table}"
ddl_subject: `+stream+`._ddl
outbox:
  - {table: app.outbox, subject_column: topic, key_column: `+tt.keyColumn+`, payload_column: PAYLOAD, subject_prefix: "`+stream+`.ev."}
`)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			err := runErr(ctx, cfg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, m := range readStream(t, n.URL(), stream) {
				if strings.HasPrefix(m.subject, stream+".ev.") {
					ids = append(ids, m.header.Get("Nats-Msg-Id"))
				}
			}
			if strings.Join(ids, " ") != strings.Join(tt.wantIDs, " ") {
				t.Fatalf("message ids %v, want %v", ids, tt.wantIDs)
			}
		})
	}
}
