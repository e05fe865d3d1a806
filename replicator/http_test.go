package replicator

import (
	"strings"
	"testing"
	"time"
)

func TestUnhealthy(t *testing.T) {
	ok := SourceStatus{Pipeline: "p", Source: "a", State: "streaming", LagSeconds: 3}
	for _, tc := range []struct {
		name      string
		sources   []SourceStatus
		stopAtEnd bool
		maxLag    time.Duration
		want      string // a part of the message; "" for healthy
	}{
		{"streaming", []SourceStatus{ok}, false, 0, ""},
		{"standby", []SourceStatus{{Pipeline: "p", Source: "a", State: "standby"}}, false, 0, ""},
		{"reconnecting names the error", []SourceStatus{ok, {Pipeline: "p", Source: "b", State: "reconnecting", Error: "sink: connection refused"}},
			false, 0, "p/b: reconnecting: sink: connection refused"},
		{"stopped", []SourceStatus{{Pipeline: "p", Source: "a", State: "stopped"}}, false, 0, "p/a: stopped"},
		{"stopped at end", []SourceStatus{{Pipeline: "p", Source: "a", State: "stopped"}}, true, 0, ""},
		{"lag under the bound", []SourceStatus{ok}, false, 5 * time.Second, ""},
		{"lag over the bound", []SourceStatus{{Pipeline: "p", Source: "a", State: "streaming", LagSeconds: 12.5}}, false, 5 * time.Second,
			"p/a: lagging 12.5s behind the source (http.healthz_max_lag is 5s)"},
		{"lag ignored without a bound", []SourceStatus{{Pipeline: "p", Source: "a", State: "streaming", LagSeconds: 1e6}}, false, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := unhealthy(tc.sources, tc.stopAtEnd, tc.maxLag)
			if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
				t.Errorf("unhealthy = %q, want %q", got, tc.want)
			}
		})
	}
}
