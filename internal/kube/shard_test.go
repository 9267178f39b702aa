package kube

import (
	"fmt"
	"math"
	"testing"
)

func TestShardOfSplitsAndMovesLittle(t *testing.T) {
	const pods = 10000
	keys := make([]string, pods)
	for i := range keys {
		keys[i] = fmt.Sprintf("ns-%d-pod-app-%d-%x:9100/metrics", i%37, i, i*7919)
	}
	prev := make([]int, pods)
	for n := 1; n <= 7; n++ {
		counts := make([]int, n)
		moved := 0
		for i, k := range keys {
			// Each shard keeps the keys with its own index: count owners.
			owners := 0
			for idx := range n {
				if ShardOf(k, n) == idx {
					owners++
				}
			}
			if owners != 1 {
				t.Fatalf("%d shards: %q owned by %d shards", n, k, owners)
			}
			s := ShardOf(k, n)
			counts[s]++
			if n > 1 && s != prev[i] {
				moved++
				if s != n-1 {
					t.Fatalf("%d shards: %q moved from %d to %d, not to the new shard", n, k, prev[i], s)
				}
			}
			prev[i] = s
		}
		for idx, c := range counts {
			if want := float64(pods) / float64(n); math.Abs(float64(c)-want) > 0.1*want {
				t.Errorf("%d shards: shard %d has %d targets, want about %.0f", n, idx, c, want)
			}
		}
		if n > 1 {
			frac, want := float64(moved)/pods, 1/float64(n)
			if math.Abs(frac-want) > 0.3*want {
				t.Errorf("%d→%d shards moved %.3f of the targets, want about %.3f", n-1, n, frac, want)
			}
		}
	}
	if ShardOf("x", 0) != 0 || ShardOf("x", 1) != 0 || ShardOf("x", -3) != 0 {
		t.Error("0, 1 or negative shards must mean no sharding")
	}
}

func TestShardFromHostname(t *testing.T) {
	for _, c := range []struct {
		host string
		want int
		ok   bool
	}{
		{"meshwave-collector-3", 3, true},
		{"meshwave-collector-0", 0, true},
		{"meshwave-collector-12.meshwave.monitoring.svc.cluster.local", 12, true},
		{"meshwave-collector-7d9f8b6c4-x2k8p", 0, false}, // Deployment pod
		{"meshwave-collector-", 0, false},
		{"collector", 0, false},
		{"", 0, false},
		{"a-+3", 0, false},
		{"a-99999999999999999999999", 0, false},
	} {
		got, ok := ShardFromHostname(c.host)
		if got != c.want || ok != c.ok {
			t.Errorf("ShardFromHostname(%q) = %d, %v; want %d, %v", c.host, got, ok, c.want, c.ok)
		}
	}
}

func BenchmarkShardOf(b *testing.B) {
	for b.Loop() {
		ShardOf("shop-pod-web-1:9100/metrics", 7)
	}
}
