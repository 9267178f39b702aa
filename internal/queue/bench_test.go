package queue

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/meshwave/meshwave/internal/cpuclock"
)

// The benchmarks compare the queue with the floor for the same durability:
// raw f.Write + f.Sync of the same bytes to one file. Run with -benchtime
// of a few seconds on a quiet machine and compare ratios, not absolutes.

func BenchmarkAppend(b *testing.B)      { benchAppend(b, 64<<10) }
func BenchmarkAppendSmall(b *testing.B) { benchAppend(b, 4<<10) }

func benchAppend(b *testing.B, size int) {
	payload := rec(0, size)
	b.Run("raw-fsync", func(b *testing.B) {
		f, err := os.Create(filepath.Join(b.TempDir(), "raw"))
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		b.SetBytes(int64(size))
		for b.Loop() {
			if _, err := f.Write(payload); err != nil {
				b.Fatal(err)
			}
			if err := f.Sync(); err != nil {
				b.Fatal(err)
			}
		}
		reportRecords(b, nil)
	})
	b.Run("queue", func(b *testing.B) {
		q := benchQueue(b, Options{})
		b.SetBytes(int64(size))
		cpu0 := cpuclock.Self()
		for b.Loop() {
			if err := q.Append(payload); err != nil {
				b.Fatal(err)
			}
		}
		reportRecords(b, q)
		reportCPUPerByte(b, cpu0, size)
	})
	// 16 concurrent appenders (8 per CPU here): the naive way, one fsync
	// each, against the queue's shared fsyncs.
	b.Run("raw-fsync-parallel", func(b *testing.B) {
		f, err := os.Create(filepath.Join(b.TempDir(), "raw"))
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		var mu sync.Mutex
		b.SetBytes(int64(size))
		b.SetParallelism(8)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				mu.Lock()
				_, err := f.Write(payload)
				mu.Unlock()
				if err == nil {
					err = f.Sync()
				}
				if err != nil {
					b.Error(err)
					return
				}
			}
		})
		reportRecords(b, nil)
	})
	for _, linger := range []time.Duration{0, 2 * time.Millisecond, 5 * time.Millisecond} {
		b.Run("queue-parallel/linger="+linger.String(), func(b *testing.B) {
			q := benchQueue(b, Options{SyncInterval: linger})
			b.SetBytes(int64(size))
			b.SetParallelism(8)
			cpu0 := cpuclock.Self()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := q.Append(payload); err != nil {
						b.Error(err)
						return
					}
				}
			})
			reportRecords(b, q)
			reportCPUPerByte(b, cpu0, size)
		})
	}
	// The same with frames sealed by the appenders (AppendFrames).
	b.Run("queue-parallel-frames", func(b *testing.B) {
		q := benchQueue(b, Options{})
		b.SetBytes(int64(size))
		b.SetParallelism(8)
		cpu0 := cpuclock.Self()
		b.RunParallel(func(pb *testing.PB) {
			frame := append(make([]byte, FrameHeader), payload...)
			for pb.Next() {
				Seal(frame)
				if err := q.AppendFrames(frame); err != nil {
					b.Error(err)
					return
				}
			}
		})
		reportRecords(b, q)
		reportCPUPerByte(b, cpu0, size)
	})
}

// reportCPUPerByte reports the process's CPU time since cpu0 per byte
// appended: the machine's noise moves it less than wall time.
func reportCPUPerByte(b *testing.B, cpu0 time.Duration, size int) {
	b.ReportMetric(float64(cpuclock.Self()-cpu0)/float64(b.N)/float64(size), "cpu-ns/B")
}

// BenchmarkReadAck measures draining a backlog: one op is one Read of up
// to 1 MiB of 4 KiB records plus its Ack (one cursor fsync).
func BenchmarkReadAck(b *testing.B) {
	const size, batch = 4 << 10, 1 << 20
	q := benchQueue(b, Options{})
	recs := make([][]byte, 256)
	for i := range recs {
		recs[i] = rec(i, size)
	}
	fill := func() {
		for range 64 { // 64 MiB
			if err := q.Append(recs...); err != nil {
				b.Fatal(err)
			}
		}
	}
	var n int
	b.SetBytes(batch)
	for b.Loop() {
		if q.Len() == 0 {
			b.StopTimer()
			fill()
			b.StartTimer()
		}
		bt, err := q.Read(context.Background(), batch)
		if err != nil {
			b.Fatal(err)
		}
		n += len(bt.Records)
		if err := q.Ack(bt); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
}

func benchQueue(b *testing.B, opt Options) *Queue {
	opt.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	opt.Metrics = NewMetrics(nil, "bench")
	q, err := Open(b.TempDir(), opt)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { q.Close() })
	return q
}

// reportRecords reports the append rate and, for a queue (q not nil), how
// many records share an fsync.
func reportRecords(b *testing.B, q *Queue) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	if q != nil {
		b.ReportMetric(float64(b.N)/counter(q.m.syncs), "records/fsync")
	}
}
