// Package retry holds the waiting rules every sender that retries a
// remote shares: the proxy's forwarder and the server's exits.
package retry

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff is the wait before attempt number attempt (1 for the first
// retry): lo doubled per attempt up to hi, then a random point in its upper
// half, so many senders behind one remote do not retry in lockstep.
func Backoff(attempt int, lo, hi time.Duration) time.Duration {
	d := min(lo<<min(max(attempt, 1)-1, 30), hi)
	return d/2 + rand.N(d/2+1)
}

// Sleep waits d or until ctx is done; it reports whether the full wait
// passed.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
