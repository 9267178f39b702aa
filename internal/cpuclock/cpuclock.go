// Package cpuclock reads CPU time for the benchmarks, which report work
// per CPU-second: on a shared, loaded machine that is much steadier than
// work per wall-second.
package cpuclock

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"time"
)

// tick is one clock tick of /proc/<pid>/stat: USER_HZ is 100 on Linux, so
// measure over seconds, not milliseconds.
const tick = 10 * time.Millisecond

// Process is the user plus system CPU time of process pid, all threads,
// from /proc/<pid>/stat: how a benchmark charges a child process (a proxy
// or server under load) without the load generator.
func Process(pid int) (time.Duration, error) {
	path := "/proc/" + strconv.Itoa(pid) + "/stat"
	stat, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	// The command name, field 2, is parenthesised and may hold spaces;
	// utime and stime, fields 14 and 15, are the 12th and 13th after it.
	f := bytes.Fields(stat[bytes.LastIndexByte(stat, ')')+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("%s: too few fields: %q", path, stat)
	}
	utime, err1 := strconv.ParseInt(string(f[11]), 10, 64)
	stime, err2 := strconv.ParseInt(string(f[12]), 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("%s: bad utime/stime: %q", path, stat)
	}
	return time.Duration(utime+stime) * tick, nil
}
