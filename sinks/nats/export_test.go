package nats

import "time"

// SetPositionEvery sets how often an idle source's position is recorded,
// until the returned function restores it.
func SetPositionEvery(d time.Duration) (restore func()) {
	old := positionEvery
	positionEvery = d
	return func() { positionEvery = old }
}
