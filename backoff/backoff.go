// Package backoff is sluice's one retry helper: exponential backoff with
// jitter, bounded by a context. What is worth retrying is decided by the
// caller (mysqlconn.Retryable for MySQL/MariaDB, the NATS sink's own
// classification for NATS).
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Policy is an exponential backoff: the n-th wait is Initial*2^(n-1),
// capped at Max, of which a random part (up to a half) is dropped, so that
// many clients retrying together spread out ("equal jitter").
type Policy struct {
	Initial time.Duration // first wait; default 100ms
	Max     time.Duration // longest wait; default 30s
	// MaxAttempts bounds the calls of Retry; 0 retries until ctx ends.
	MaxAttempts int
}

func (p Policy) initial() time.Duration {
	if p.Initial <= 0 {
		return 100 * time.Millisecond
	}
	return p.Initial
}

func (p Policy) max() time.Duration {
	if p.Max <= 0 {
		return 30 * time.Second
	}
	return max(p.Max, p.initial())
}

// Ceiling is the n-th wait (n from 1) before jitter.
func (p Policy) Ceiling(n int) time.Duration {
	d := p.initial()
	for i := 1; i < n && d < p.max(); i++ {
		d *= 2
	}
	return min(d, p.max())
}

// Delay is the n-th wait (n from 1), jittered: in [Ceiling/2, Ceiling].
func (p Policy) Delay(n int) time.Duration {
	c := p.Ceiling(n)
	half := c / 2
	if half <= 0 {
		return c
	}
	return half + rand.N(c-half+1)
}

// Retry calls fn (with the attempt number, from 1) until it succeeds or
// says not to retry, waiting Delay(n) between calls. fn returns whether
// to try again and its error. Retry returns nil on success, fn's error
// when fn gives up or MaxAttempts is reached, or ctx's error when ctx ends
// while waiting.
func Retry(ctx context.Context, p Policy, fn func(attempt int) (retry bool, err error)) error {
	for n := 1; ; n++ {
		retry, err := fn(n)
		if err == nil || !retry {
			return err
		}
		if p.MaxAttempts > 0 && n >= p.MaxAttempts {
			return err
		}
		if serr := Sleep(ctx, p.Delay(n)); serr != nil {
			return serr
		}
	}
}

// Timer is a Policy's state for a loop whose control flow does not fit
// Retry: Wait sleeps the next delay, Reset starts over after a success.
type Timer struct {
	p Policy
	n int
}

// Timer starts a backoff sequence.
func (p Policy) Timer() *Timer { return &Timer{p: p} }

// Next returns the next delay and counts an attempt.
func (t *Timer) Next() time.Duration {
	t.n++
	return t.p.Delay(t.n)
}

// Wait sleeps the next delay, or returns ctx's error when ctx ends first.
func (t *Timer) Wait(ctx context.Context) error { return Sleep(ctx, t.Next()) }

// Attempts is the number of delays taken since the start or Reset.
func (t *Timer) Attempts() int { return t.n }

// Reset starts the sequence over.
func (t *Timer) Reset() { t.n = 0 }

// Sleep waits d, or returns ctx's error when ctx ends first.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
