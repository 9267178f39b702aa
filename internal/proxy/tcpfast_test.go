package proxy

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/meshwave/meshwave/internal/preprocessor"
	"github.com/meshwave/meshwave/internal/wavefront"
)

// testIngester is an ingester on a proxy without listeners or queue.
func testIngester(cfg Config) *ingester {
	p := &Proxy{cfg: cfg, m: newMetrics(), limits: wavefront.DefaultLimits(),
		blocked: &blockedLog{logger: slog.New(slog.NewTextHandler(io.Discard, nil)), perTen: 1}}
	return p.newIngester("2878", []byte("10.0.0.1"))
}

// TestFastPointMatchesGeneral feeds the same lines to the push port's
// entry (which takes the single-pass path where it can) and to the general
// point path, and requires identical staged bytes and counts.
func TestFastPointMatchesGeneral(t *testing.T) {
	lines := bytes.Split(istioLines(500, 1), []byte("\n"))
	// Explicit timestamps: two clock reads could straddle a second.
	ts := time.Now().Unix()
	for _, l := range []string{
		`"disk.used" 12 %d source="db-1" "mount"="/var/lib"`,
		`cpu.load 0.75 %d host=web-1 env=prod`,
		`cpu.load 1 %d source=a host=b tag=c`, // the general path renames
		`"a b" 1 %d source=a`,                 // rejected by both
	} {
		lines = append(lines, fmt.Appendf(nil, l, ts))
	}
	fast, general := testIngester(DefaultConfig()), testIngester(DefaultConfig())
	var took int
	for _, l := range lines {
		if len(l) == 0 {
			continue
		}
		before := general.staged.recs[0].lines
		fast.line(l, 0)
		if err := general.point(l); err == nil && general.staged.recs[0].lines == before+1 && fast.staged.recs[0].lines == before+1 {
			took++
		}
		if fb, gb := fast.staged.recs[0].buf, general.staged.recs[0].buf; !bytes.Equal(fb, gb) {
			t.Fatalf("after %q the staged bytes differ:\n fast    %q\n general %q", l, tail(fb), tail(gb))
		}
	}
	if took < 500 {
		t.Errorf("only %d lines staged", took)
	}
}

// TestFastPointStepsAside checks that --prefix, which rewrites names
// between parsing and validation, still applies.
func TestFastPointStepsAside(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Prefix = "pre"
	in := testIngester(cfg)
	in.line([]byte(`cpu.load 1 source=a`), 0)
	if got := string(in.staged.recs[0].buf); !bytes.Contains(in.staged.recs[0].buf, []byte(`"pre.cpu.load"`)) {
		t.Errorf("prefix not applied: %q", got)
	}
}

// tail is the last line of b, for failure messages.
func tail(b []byte) []byte {
	b = bytes.TrimSuffix(b, []byte("\n"))
	return b[bytes.LastIndexByte(b, '\n')+1:]
}

// TestFastPointWithOtherPortsRules: rules for another port leave this
// port's lines on the single-pass path, which stays allocation-free.
func TestFastPointWithOtherPortsRules(t *testing.T) {
	rules, err := preprocessor.Parse([]byte(`
"9999":
  - {rule: drop, action: block, scope: metricName, match: "istio.*"}
`), "rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	in := testIngester(DefaultConfig())
	in.p.rules.Store(rules)
	line := bytes.SplitN(istioLines(1, 3), []byte("\n"), 2)[0]
	if allocs := testing.AllocsPerRun(100, func() { in.line(line, 0) }); allocs != 0 {
		t.Errorf("%v allocations per line", allocs)
	}
	if in.staged.recs[0].lines != 101 {
		t.Errorf("%d lines staged, want 101", in.staged.recs[0].lines)
	}
}

// TestReadLoopMatchesLineByLine runs a connection's input through the read
// loop's line handling (runs of lines staged by the decoder in one call,
// the rest one by one) and, line by line, through the ingester, and
// requires the same staged bytes in every format, the same counters and the
// same blocked-log entries: blank lines, surrounding blanks, CRLF, invalid
// and over-long lines, other formats and lines the single-pass path
// declines among the common ones.
func TestReadLoopMatchesLineByLine(t *testing.T) {
	ts := time.Now().Unix()
	var in bytes.Buffer
	for i, l := range bytes.SplitAfter(istioLines(300, 4), []byte("\n")) {
		in.Write(l)
		switch i % 25 {
		case 1:
			in.WriteString("\n  \r\n\t\n")
		case 3:
			fmt.Fprintf(&in, "  cpu.load 0.5 %d host=web-1 \r\n", ts)
		case 5:
			fmt.Fprintf(&in, "cpu.load 1 %d source=a host=b tag=c\n", ts) // renamed by the general path
		case 7:
			fmt.Fprintf(&in, "bad:name 1 %d source=s\nthis line has no value\n", ts)
		case 9:
			fmt.Fprintf(&in, "long.line 1 %d source=s pad=%s\n", ts, bytes.Repeat([]byte("x"), 2000))
		case 11:
			fmt.Fprintf(&in, "!M %d #2 1.5 request.latency source=s\n", ts)
		case 13:
			fmt.Fprintf(&in, "m 1 %d source=s k=\xff\xfe\n@SourceTag action=save source=s tag=t\n", ts)
		case 15:
			fmt.Fprintf(&in, "old.point 1 %d source=s\nm\t1 %d source=s\n", ts-2*365*24*3600, ts)
		case 17:
			fmt.Fprintf(&in, "{\"traceId\":\"t\",\"spanId\":\"s\",\"logs\":[]}\n")
		}
	}
	in.WriteString("partial 1") // no newline: left for the next read
	stream := in.Bytes()

	loop, loopLog := logIngester()
	ref, refLog := logIngester()
	l := &pushListener{p: loop.p, port: "2878"}
	var long bool
	used, ok := l.lines(loop, append(make([]byte, 0, len(stream)+16), stream...), &long)
	if !ok || used != len(stream)-len("partial 1") {
		t.Fatalf("lines took %d of %d bytes (ok %v)", used, len(stream), ok)
	}
	lr := &pushListener{p: ref.p, port: "2878"}
	for _, line := range bytes.SplitAfter(stream[:used], []byte("\n")) {
		lr.oneLine(ref, line, false)
	}
	for f := range loop.staged.recs {
		if got, want := loop.staged.recs[f], ref.staged.recs[f]; !bytes.Equal(got.buf, want.buf) || got.lines != want.lines {
			t.Errorf("format %c: %d lines staged, want %d; bytes equal: %v", formats[f], got.lines, want.lines, bytes.Equal(got.buf, want.buf))
		}
	}
	if loop.staged.recs[0].lines < 300 {
		t.Errorf("only %d points staged", loop.staged.recs[0].lines)
	}
	if got, want := counters(t, loop.p), counters(t, ref.p); got != want {
		t.Errorf("counters differ:\n loop %s\n ref  %s", got, want)
	}
	if got, want := loopLog.String(), refLog.String(); got != want || got == "" {
		t.Errorf("blocked logs differ:\n loop %s\n ref  %s", got, want)
	}
}

// logIngester is testIngester with every blocked line logged to the
// buffer, without times.
func logIngester() (*ingester, *bytes.Buffer) {
	in := testIngester(DefaultConfig())
	var log bytes.Buffer
	noTime := func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}
	in.p.blocked = &blockedLog{logger: slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{ReplaceAttr: noTime})), perTen: 1000}
	return in, &log
}

// counters renders p's counters with their labels, one per line.
func counters(t *testing.T, p *Proxy) string {
	t.Helper()
	families, err := p.m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, f := range families {
		for _, m := range f.GetMetric() {
			fmt.Fprintf(&b, "%s", f.GetName())
			for _, lp := range m.GetLabel() {
				fmt.Fprintf(&b, " %s=%s", lp.GetName(), lp.GetValue())
			}
			fmt.Fprintf(&b, " %v\n", m.GetCounter().GetValue())
		}
	}
	return b.String()
}

// TestTCPStreamCommitsInBatches streams more lines than one queue record
// may hold over a connection that stays open, in writes that end inside
// lines: the connection commits each batch once it is full, and every line
// arrives, as do those of a gzipped connection.
func TestTCPStreamCommitsInBatches(t *testing.T) {
	t.Parallel()
	b := newBackend(t)
	p, logs := startProxyLog(t, b.srv.URL, nil)
	addr := p.Addr("push", "0")
	c, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	lines := istioLines(5000, 5)
	const rounds = 5 // ~11 MB, more than a queue segment
	for range rounds {
		for rest := lines; len(rest) > 0; {
			n := min(len(rest), 40000+len(rest)%1000) // ends mid-line
			if _, err := c.Write(rest[:n]); err != nil {
				t.Fatal(err)
			}
			rest = rest[n:]
		}
	}
	// And a gzipped connection, whose reads come from the decompressor.
	sendTCP(t, addr, gz(t, lines))
	received := p.m.received.WithLabelValues(entityPoints, portOf(addr.String()))
	waitFor(t, "every line", 30*time.Second, func() bool { return value(received) == (rounds+1)*5000 })
	if strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("errors logged:\n%s", logs.String())
	}
}
