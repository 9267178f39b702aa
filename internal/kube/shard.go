package kube

import (
	"strconv"
	"strings"

	"github.com/cespare/xxhash/v2"
)

// ShardOf returns the shard, in [0, shards), that owns the target key. It is
// jump consistent hashing (Lamping & Veach, arXiv:1406.2294) over xxhash64,
// so going from N to N+1 shards moves only about 1/(N+1) of the targets, all
// of them onto the new shard. shards ≤ 1 means no sharding: everything is 0.
func ShardOf(key string, shards int) int {
	if shards <= 1 {
		return 0
	}
	h := xxhash.Sum64String(key)
	b, j := int64(-1), int64(0)
	for j < int64(shards) {
		b = j
		h = h*2862933555777941757 + 1
		j = int64(float64(b+1) * (float64(int64(1)<<31) / float64((h>>33)+1)))
	}
	return int(b)
}

// ShardFromHostname parses the StatefulSet ordinal at the end of a pod's
// hostname: "meshwave-collector-3" (or its FQDN) gives 3. It reports false
// when there is no "-<digits>" suffix, e.g. for a Deployment's random suffix.
func ShardFromHostname(hostname string) (int, bool) {
	host, _, _ := strings.Cut(hostname, ".")
	i := strings.LastIndexByte(host, '-')
	if i < 0 {
		return 0, false
	}
	digits := host[i+1:]
	if digits == "" || strings.TrimLeft(digits, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.Atoi(digits)
	if err != nil {
		return 0, false
	}
	return n, true
}
