package queue

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const crashDirEnv = "MESHWAVE_QUEUE_CRASH_DIR"

// TestCrashHelper is the child of TestCrashRecovery, not a test on its own.
// Four goroutines append numbered records and print "A n" once the append
// is complete: two with Append (durable), two with
// AppendFramesWrittenAsync (written, two appends in flight each), which a
// kill of the process must not lose either. A forwarder reads, prints
// "D n" (its delivery) and then acks, so the parent knows what was
// delivered before the kill.
func TestCrashHelper(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("only run as the child of TestCrashRecovery")
	}
	base, _ := strconv.Atoi(os.Getenv(crashDirEnv + "_BASE"))
	q, err := Open(dir, Options{SegmentBytes: 16 << 10})
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(1)
	}
	var out sync.Mutex
	say := func(format string, args ...any) {
		out.Lock()
		fmt.Fprintf(os.Stdout, format, args...) // unbuffered: one write(2) per line
		out.Unlock()
	}
	say("ready\n")
	var next atomic.Int64
	for g := range 4 {
		go func() {
			inFlight := make(chan struct{}, 2)
			for {
				n := base + int(next.Add(1))
				if g%2 == 0 {
					if err := q.Append(rec(n, 300)); err != nil {
						say("ERR %v\n", err)
						return
					}
					say("A %d\n", n)
					continue
				}
				inFlight <- struct{}{}
				frame := append(make([]byte, FrameHeader), rec(n, 300)...)
				Seal(frame)
				q.AppendFramesWrittenAsync(func(err error) {
					if err != nil {
						say("ERR %v\n", err)
						return
					}
					say("A %d\n", n)
					<-inFlight
				}, frame)
			}
		}()
	}
	for {
		b, err := q.Read(context.Background(), 4<<10)
		if err != nil {
			say("ERR %v\n", err)
			return
		}
		var sb strings.Builder
		for _, r := range b.Records {
			fmt.Fprintf(&sb, "D %d\n", recNum(t, r))
		}
		say("%s", sb.String())
		time.Sleep(3 * time.Millisecond) // a slow backend: builds a backlog, widens the delivered-not-acked window
		if err := q.Ack(b); err != nil {
			say("ERR %v\n", err)
			return
		}
	}
}

// TestCrashRecovery SIGKILLs a child process that is appending and
// forwarding, at a random moment, then recovers the queue: every record
// whose Append returned must have been delivered before the kill or be
// delivered after recovery (at-least-once). Three rounds share one
// directory, so each also recovers from the previous round's crash.
func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	dir := t.TempDir()
	for round := range 3 {
		base := round * 100_000_000
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashHelper$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashDirEnv+"_BASE="+strconv.Itoa(base))
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		appended, delivered := map[int]bool{}, map[int]bool{}
		lines := make(chan string)
		go func() {
			defer close(lines)
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				lines <- sc.Text()
			}
		}()
		if l, ok := <-lines; !ok || l != "ready" {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("child did not start: %q", l)
		}
		delay := time.Duration(50+rand.IntN(250)) * time.Millisecond
		kill := time.AfterFunc(delay, func() { cmd.Process.Kill() })
		for l := range lines { // ends when the killed child's pipe closes
			var n int
			switch {
			case strings.HasPrefix(l, "A "):
				n, _ = strconv.Atoi(l[2:])
				appended[n] = true
			case strings.HasPrefix(l, "D "):
				n, _ = strconv.Atoi(l[2:])
				delivered[n] = true
			case strings.HasPrefix(l, "ERR"):
				t.Errorf("child: %s", l)
			}
		}
		kill.Stop()
		cmd.Wait()

		q, err := Open(dir, Options{SegmentBytes: 16 << 10})
		if err != nil {
			t.Fatal(err)
		}
		recovered := map[int]int{}
		for q.Len() > 0 {
			b := readBatch(t, q, 64<<10)
			for _, r := range b.Records {
				recovered[recNum(t, r)]++
			}
			if err := q.Ack(b); err != nil {
				t.Fatal(err)
			}
		}
		q.Close()
		lost, dupInQueue, redelivered := 0, 0, 0
		for n := range appended {
			if !delivered[n] && recovered[n] == 0 {
				lost++
			}
		}
		for n, c := range recovered {
			dupInQueue += c - 1
			if delivered[n] {
				redelivered++
			}
		}
		t.Logf("round %d: killed after %v: %d acknowledged appends, %d delivered before kill, %d recovered (%d re-deliveries, %d duplicates in queue), %d lost",
			round, delay, len(appended), len(delivered), len(recovered), redelivered, dupInQueue, lost)
		if len(appended) == 0 {
			t.Errorf("round %d: child acknowledged nothing before the kill", round)
		}
		if lost > 0 || dupInQueue > 0 {
			t.Errorf("round %d: %d acknowledged records lost, %d duplicated by the queue", round, lost, dupInQueue)
		}
	}
}
