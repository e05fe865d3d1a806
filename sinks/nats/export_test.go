package nats

import "time"

// SetPositionEvery sets how often an idle source's position is recorded,
// until the returned function restores it.
func SetPositionEvery(d time.Duration) (restore func()) {
	old := positionEvery
	positionEvery = d
	return func() { positionEvery = old }
}

// SetAsyncWaitLimit sets how long a run waits for its acknowledgements,
// until the returned function restores it.
func SetAsyncWaitLimit(d time.Duration) (restore func()) {
	old := asyncWaitLimit
	asyncWaitLimit = d
	return func() { asyncWaitLimit = old }
}

// PendingAcks is how many of the sink's publishes wait for their
// acknowledgement.
func (s *Sink) PendingAcks() int { return s.js.PublishAsyncPending() }
