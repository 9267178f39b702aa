package cpuclock

import (
	"os"
	"testing"
	"time"
)

// TestProcessMatchesSelf burns CPU and reads it both ways: rusage and
// /proc must agree to within their resolution.
func TestProcessMatchesSelf(t *testing.T) {
	start := Self()
	for x := 0; Self()-start < 300*time.Millisecond; x++ {
		_ = x * x
	}
	self := Self()
	proc, err := Process(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if d := self - proc; d < -50*time.Millisecond || d > 50*time.Millisecond {
		t.Errorf("rusage %v, /proc %v", self, proc)
	}
	if _, err := Process(-1); err == nil {
		t.Error("no error for a process that does not exist")
	}
}
