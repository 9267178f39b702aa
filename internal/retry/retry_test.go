package retry

import (
	"context"
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	lo, hi := 100*time.Millisecond, time.Second
	for attempt, want := range map[int]time.Duration{0: lo, 1: lo, 2: 2 * lo, 3: 4 * lo, 5: hi, 60: hi} {
		for range 20 {
			if d := Backoff(attempt, lo, hi); d < want/2 || d > want {
				t.Errorf("attempt %d: %v outside [%v, %v]", attempt, d, want/2, want)
			}
		}
	}
}

func TestSleep(t *testing.T) {
	if !Sleep(context.Background(), time.Millisecond) {
		t.Fatal("a full wait must report true")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if Sleep(ctx, time.Hour) {
		t.Fatal("a cancelled wait must report false")
	}
}
