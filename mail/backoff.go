package mail

import (
	"math/rand/v2"
	"time"
)

// Reconnect delays of the IMAP watcher: a server that is down or refuses us is
// retried soon at first, then at most every two minutes, so a long outage
// costs a few log lines a minute and a short one is over in about a second.
const (
	imapBackoffMin = time.Second
	imapBackoffMax = 2 * time.Minute
)

// reconnectBackoff yields growing, jittered delays between attempts. The
// jitter keeps several daemons that lost the same server from reconnecting in
// lock step. It is owned by one goroutine and not safe for concurrent use.
type reconnectBackoff struct {
	min, max time.Duration
	attempt  int
}

// next returns the delay before the next attempt: min·2ⁿ capped at max, then
// drawn uniformly from its upper half so it never drops below half the step.
func (b *reconnectBackoff) next() time.Duration {
	d := b.min
	for i := 0; i < b.attempt && d < b.max; i++ {
		d *= 2
	}
	if d > b.max {
		d = b.max
	}
	b.attempt++
	half := d / 2
	if half <= 0 {
		return d
	}
	return half + rand.N(half+1)
}

// reset starts the sequence over; the watcher calls it once a round of work
// succeeded, so one outage does not slow recovery from the next.
func (b *reconnectBackoff) reset() { b.attempt = 0 }

// attempts reports how many delays were handed out since the last reset.
func (b *reconnectBackoff) attempts() int { return b.attempt }
