package sink

import (
	"context"
	"time"
)

// Writer delivers encoded Wavefront lines. Write must never block for long:
// it copies/queues the chunk in a bounded buffer; when the buffer is full the
// OLDEST queued data is dropped, counted and logged (rate-limited) — never
// silently.
type Writer interface {
	// Write queues lines, which must be whole '\n'-terminated lines. The
	// caller may reuse the slice as soon as Write returns.
	Write(lines []byte)
	// Flush blocks until everything written before the call has been
	// delivered, dropped or rejected. It returns an error if ctx ends first,
	// or if lines were dropped or rejected while it waited.
	Flush(ctx context.Context) error
	// Close delivers what it can within ctx, then stops the writer's
	// goroutines and releases its connection or file. Lines still queued
	// when ctx ends are counted as errors and reported in the error.
	// Writes after Close are counted as errors and discarded.
	Close(ctx context.Context) error
}

// Options tune a Writer. Zero values select the defaults listed per field.
type Options struct {
	// Name labels the writer's metrics (sink=<Name>) and logs.
	// Default "wavefront".
	Name string
	// MaxBufferBytes bounds the queued bytes. Default 64 MiB. The batch in
	// flight (and, for TCP, the replay window) is held outside this bound.
	MaxBufferBytes int
	// MaxBufferLines bounds the queued lines; negative means unbounded.
	// Default: 50000 for HTTP (the reference's maxBufferSize), unbounded
	// otherwise.
	MaxBufferLines int
	// BatchLines is the maximum number of lines per HTTP request. A batch
	// is also sent as soon as that many lines are queued. Default 10000.
	BatchLines int
	// FlushInterval is how often queued data is pushed even when no buffer
	// has filled. Default 1 s.
	FlushInterval time.Duration
	// Format selects the HTTP ingestion format, f=<Format>: "wavefront" or
	// "histogram". Default "wavefront". Ignored by TCP and file writers.
	Format string
	// DialTimeout bounds one TCP connection attempt. Default 5 s.
	DialTimeout time.Duration
	// WriteTimeout is the TCP write deadline and the HTTP client timeout.
	// Default 10 s.
	WriteTimeout time.Duration
	// MinBackoff and MaxBackoff bound the exponential retry backoff, which
	// doubles per failed attempt up to MaxBackoff, then gets ±25 % jitter.
	// Defaults 100 ms and 30 s.
	MinBackoff, MaxBackoff time.Duration
	// ReplayBytes bounds how many recently written bytes a TCP writer keeps
	// to re-send after the connection dies (see ReplayWindow); negative
	// disables replay. Default 4 MiB.
	ReplayBytes int
	// ReplayWindow: when a TCP connection dies, bytes written to it within
	// this long before are re-sent on the next connection, because the
	// proxy may not have read them. Default 10 s.
	ReplayWindow time.Duration
	// LogInterval is the minimum time between two log records for the same
	// kind of problem on one writer. Default 10 s.
	LogInterval time.Duration
}

// Defaults; see the Options fields.
const (
	DefaultName               = "wavefront"
	DefaultMaxBufferBytes     = 64 << 20
	DefaultHTTPMaxBufferLines = 50000
	DefaultBatchLines         = 10000
	DefaultFlushInterval      = time.Second
	DefaultFormat             = "wavefront"
	DefaultDialTimeout        = 5 * time.Second
	DefaultWriteTimeout       = 10 * time.Second
	DefaultMinBackoff         = 100 * time.Millisecond
	DefaultMaxBackoff         = 30 * time.Second
	DefaultReplayBytes        = 4 << 20
	DefaultReplayWindow       = 10 * time.Second
	DefaultLogInterval        = 10 * time.Second
	// DefaultProxyPort is used when a proxy address has no port.
	DefaultProxyPort = "2878"
)

// withDefaults fills zero fields. direct selects the HTTP-specific line
// bound; batchLines only matters to HTTP and is left 0 for stream writers
// so they batch by bytes.
func (o Options) withDefaults(direct bool) Options {
	if o.Name == "" {
		o.Name = DefaultName
	}
	if o.MaxBufferBytes <= 0 {
		o.MaxBufferBytes = DefaultMaxBufferBytes
	}
	if o.MaxBufferLines == 0 && direct {
		o.MaxBufferLines = DefaultHTTPMaxBufferLines
	}
	if o.MaxBufferLines < 0 {
		o.MaxBufferLines = 0
	}
	if !direct {
		o.BatchLines = 0
	} else if o.BatchLines <= 0 {
		o.BatchLines = DefaultBatchLines
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = DefaultFlushInterval
	}
	if o.Format == "" {
		o.Format = DefaultFormat
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = DefaultMinBackoff
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = DefaultMaxBackoff
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = o.MinBackoff
	}
	if o.ReplayBytes == 0 {
		o.ReplayBytes = DefaultReplayBytes
	}
	if o.ReplayWindow <= 0 {
		o.ReplayWindow = DefaultReplayWindow
	}
	if o.LogInterval <= 0 {
		o.LogInterval = DefaultLogInterval
	}
	return o
}
