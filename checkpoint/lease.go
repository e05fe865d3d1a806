package checkpoint

import (
	"errors"
	"time"
)

// Lease is who holds a pipeline: the one process that may write its
// target. Each sink keeps it where it keeps the checkpoint (the MySQL
// sink in sluice.lease, the NATS sink in a KV bucket), and every takeover
// bumps Epoch, the fencing token its writes carry.
type Lease struct {
	Holder   string    `json:"holder"`
	Epoch    uint64    `json:"epoch"`
	Acquired time.Time `json:"acquired"`
	// Mine: this process holds it.
	Mine bool `json:"-"`
}

// ErrFenced means another process holds the pipeline's lease: this one
// must not write anything more, and should wait as a standby. Each sink's
// own ErrFenced wraps it with that sink's reasons.
var ErrFenced = errors.New("another sluice process holds this pipeline's lease")
