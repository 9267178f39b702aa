package proxy

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
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
		before := general.staged[0].lines
		fast.line(l, 0)
		if err := general.point(l); err == nil && general.staged[0].lines == before+1 && fast.staged[0].lines == before+1 {
			took++
		}
		if fb, gb := fast.staged[0].buf, general.staged[0].buf; !bytes.Equal(fb, gb) {
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
	if got := string(in.staged[0].buf); !bytes.Contains(in.staged[0].buf, []byte(`"pre.cpu.load"`)) {
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
	if in.staged[0].lines != 101 {
		t.Errorf("%d lines staged, want 101", in.staged[0].lines)
	}
}
