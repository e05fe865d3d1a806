package backoff_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sluice-cdc/sluice/backoff"
)

func TestDelay(t *testing.T) {
	p := backoff.Policy{Initial: 100 * time.Millisecond, Max: time.Second}
	tests := []struct {
		n    int
		want time.Duration
	}{{1, 100 * time.Millisecond}, {2, 200 * time.Millisecond}, {4, 800 * time.Millisecond}, {5, time.Second}, {60, time.Second}}
	for _, tt := range tests {
		if c := p.Ceiling(tt.n); c != tt.want {
			t.Errorf("Ceiling(%d) = %v, want %v", tt.n, c, tt.want)
		}
		seen := map[time.Duration]bool{}
		for range 200 {
			d := p.Delay(tt.n)
			if d < tt.want/2 || d > tt.want {
				t.Fatalf("Delay(%d) = %v, want in [%v, %v]", tt.n, d, tt.want/2, tt.want)
			}
			seen[d] = true
		}
		if len(seen) < 2 {
			t.Errorf("Delay(%d) is not jittered: %v", tt.n, seen)
		}
	}
	var zero backoff.Policy
	if zero.Ceiling(1) != 100*time.Millisecond || zero.Ceiling(100) != 30*time.Second {
		t.Errorf("defaults: %v, %v", zero.Ceiling(1), zero.Ceiling(100))
	}
}

func TestRetry(t *testing.T) {
	errTransient, errFatal := errors.New("transient"), errors.New("fatal")
	p := backoff.Policy{Initial: time.Microsecond, Max: time.Microsecond}
	tests := []struct {
		name      string
		p         backoff.Policy
		results   []error // per call; the last repeats
		retryable func(error) bool
		want      error
		calls     int
	}{
		{"success first", p, []error{nil}, nil, nil, 1},
		{"success after transient", p, []error{errTransient, errTransient, nil}, nil, nil, 3},
		{"fatal stops", p, []error{errTransient, errFatal}, nil, errFatal, 2},
		{"attempts bounded", backoff.Policy{Initial: time.Microsecond, MaxAttempts: 4}, []error{errTransient}, nil, errTransient, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			err := backoff.Retry(context.Background(), tt.p, func(n int) (bool, error) {
				calls++
				if n != calls {
					t.Fatalf("attempt %d on call %d", n, calls)
				}
				err := tt.results[min(n, len(tt.results))-1]
				return errors.Is(err, errTransient), err
			})
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) || calls != tt.calls {
				t.Errorf("Retry = %v after %d calls, want %v after %d", err, calls, tt.want, tt.calls)
			}
		})
	}
}

// TestRetryCanceled: a cancelled context ends the wait with its error.
func TestRetryCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	err := backoff.Retry(ctx, backoff.Policy{Initial: time.Hour}, func(int) (bool, error) {
		calls++
		cancel()
		return true, errors.New("down")
	})
	if !errors.Is(err, context.Canceled) || calls != 1 {
		t.Errorf("Retry = %v after %d calls, want context.Canceled after 1", err, calls)
	}
}

func TestTimer(t *testing.T) {
	tm := backoff.Policy{Initial: time.Millisecond, Max: 4 * time.Millisecond}.Timer()
	for i := 1; i <= 5; i++ {
		if d := tm.Next(); d > 4*time.Millisecond || d < time.Millisecond/2 {
			t.Errorf("Next #%d = %v", i, d)
		}
	}
	if tm.Attempts() != 5 {
		t.Errorf("Attempts = %d", tm.Attempts())
	}
	tm.Reset()
	if d := tm.Next(); d > time.Millisecond {
		t.Errorf("after Reset: %v", d)
	}
}
