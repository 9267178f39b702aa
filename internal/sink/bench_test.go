package sink

import (
	"bytes"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// BenchmarkTCPWrite pushes 1 KiB chunks of lines through a TCP writer to a
// loopback server that discards them; the timed Flushes make the
// throughput count delivery, not just queueing.
func BenchmarkTCPWrite(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(io.Discard, c)
			}()
		}
	}()

	line := testLines(1)[0]
	chunk := []byte(strings.Repeat(line, 1024/len(line)))
	chunk = append(chunk, bytes.Repeat([]byte{'x'}, 1023-len(chunk))...)
	chunk = append(chunk, '\n') // exactly 1 KiB of whole lines

	opt := Options{Name: "bench", FlushInterval: 50 * time.Millisecond}
	m := NewMetrics(nil)
	w := NewTCP(ln.Addr().String(), opt, m, slogTo(io.Discard))
	defer w.Close(b.Context())
	b.SetBytes(int64(len(chunk)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		w.Write(chunk)
		// Write only queues, and outruns the socket; flushing every 4 MiB
		// (as the pipeline does per export) keeps the queue from
		// overflowing, so the rate measured is the rate delivered.
		if i%4096 == 4095 {
			if err := w.Flush(b.Context()); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := w.Flush(b.Context()); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	if d := counterValue(m.dropped, "bench"); d != 0 {
		b.Fatalf("%v lines dropped: the numbers would overstate throughput", d)
	}
}
