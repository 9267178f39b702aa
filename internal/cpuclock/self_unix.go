//go:build unix

package cpuclock

import (
	"syscall"
	"time"
)

// Self is this process's user plus system CPU time, all threads.
func Self() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
