package binlog

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// TestLibraryLog: go-mysql's ERROR lines about a connection sluice is
// already reconnecting become warnings, and its INFO chatter debug.
func TestLibraryLog(t *testing.T) {
	tests := []struct {
		level slog.Level
		min   slog.Level // the handler's level
		want  string     // "" for dropped
	}{
		{slog.LevelError, slog.LevelInfo, "level=WARN msg=\"go-mysql: kill connection\""},
		{slog.LevelWarn, slog.LevelInfo, "level=WARN msg=\"go-mysql: kill connection\""},
		{slog.LevelInfo, slog.LevelInfo, ""},
		{slog.LevelInfo, slog.LevelDebug, "level=DEBUG msg=\"go-mysql: kill connection\""},
		{slog.LevelError, slog.LevelError, ""},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		log := slog.New(libraryLog{slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: tt.min})})
		log.Log(t.Context(), tt.level, "kill connection")
		got := buf.String()
		if tt.want == "" && got != "" || tt.want != "" && !strings.Contains(got, tt.want) {
			t.Errorf("%s at handler level %s: got %q, want %q", tt.level, tt.min, got, tt.want)
		}
	}
}
