package collector

import (
	"bytes"
	"regexp"
	"slices"

	"github.com/meshwave/meshwave/internal/wavefront"
)

// maxTags is the reference's cap on tags per point (collector.md §6.2).
const maxTags = 17

// The reference's trimming patterns, kept verbatim with their unanchored
// alternations (collector.md §6.2 step 5).
var (
	betaAlphaPattern = regexp.MustCompile(`^label.*beta|alpha*`)
	cloudPattern     = regexp.MustCompile(`^label.*gke|azure|eks*`)
)

// cleanTags applies collector.md §6.2 in place: drop empty, "-" and "/"
// values and the reserved host keys, then trim label* tags to the cap.
func cleanTags(tags []wavefront.Tag, guaranteed func(key []byte) bool) []wavefront.Tag {
	out := tags[:0]
	labels := 0
	for _, t := range tags {
		v := bytes.TrimSpace(t.Value)
		if len(v) == 0 || string(v) == "-" || string(v) == "/" {
			continue
		}
		switch string(t.Key) {
		case "namespace_id", "host_id", "pod_id", "hostname":
			continue
		}
		if isTrimmable(t.Key, guaranteed) {
			labels++
		}
		out = append(out, t)
	}
	limit := maxTags - (len(out) - labels)
	if labels <= limit {
		return out
	}
	return trimLabels(out, guaranteed, limit)
}

func isTrimmable(key []byte, guaranteed func([]byte) bool) bool {
	return bytes.HasPrefix(key, []byte("label")) && (guaranteed == nil || !guaranteed(key))
}

// trimLabels is the rare slow path: more label* tags than room for them.
func trimLabels(tags []wavefront.Tag, guaranteed func([]byte) bool, limit int) []wavefront.Tag {
	var keys []string
	values := map[string]string{}
	for _, t := range tags {
		if isTrimmable(t.Key, guaranteed) {
			keys = append(keys, string(t.Key))
			values[string(t.Key)] = string(t.Value)
		}
	}
	slices.Sort(keys)
	drop := map[string]bool{}
	excess := len(keys) - limit

	// De-duplicate by value: of two keys with one value, drop the alpha/beta
	// one, else the longer, else the lexically larger.
	byValue := map[string]string{}
	for _, k := range keys {
		v := values[k]
		if len(v) < 5 || excess <= 0 {
			continue
		}
		other, seen := byValue[v]
		if !seen {
			byValue[v] = k
			continue
		}
		loser := dedupeLoser(other, k)
		drop[loser] = true
		excess--
		if loser == other {
			byValue[v] = k
		}
	}
	for _, pass := range []func(string) bool{
		betaAlphaPattern.MatchString, cloudPattern.MatchString, func(string) bool { return true },
	} {
		for _, k := range keys {
			if excess <= 0 {
				break
			}
			if !drop[k] && pass(k) {
				drop[k] = true
				excess--
			}
		}
	}
	out := tags[:0]
	for _, t := range tags {
		if !drop[string(t.Key)] {
			out = append(out, t)
		}
	}
	return out
}

func dedupeLoser(a, b string) string {
	am, bm := betaAlphaPattern.MatchString(a), betaAlphaPattern.MatchString(b)
	switch {
	case am && !bm:
		return a
	case bm && !am:
		return b
	case len(a) != len(b):
		if len(a) > len(b) {
			return a
		}
		return b
	case a > b:
		return a
	}
	return b
}
