package cpuclock

import (
	"syscall"
	"time"
)

// Self is this process's user plus kernel CPU time, all threads.
func Self() time.Duration {
	var creation, exit, kernel, user syscall.Filetime
	self, err := syscall.GetCurrentProcess() // a pseudo-handle: nothing to close
	if err == nil {
		err = syscall.GetProcessTimes(self, &creation, &exit, &kernel, &user)
	}
	if err != nil {
		panic("cpuclock: GetProcessTimes of this process: " + err.Error())
	}
	// Filetimes count 100 ns intervals; Nanoseconds would read them as
	// dates since 1601.
	ticks := func(f syscall.Filetime) int64 { return int64(f.HighDateTime)<<32 | int64(f.LowDateTime) }
	return time.Duration(ticks(kernel)+ticks(user)) * 100
}
