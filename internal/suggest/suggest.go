// Package suggest finds the known name a user probably meant, for
// "did you mean" hints in configuration and flag errors.
package suggest

import (
	"math"
	"slices"
	"strings"
)

// Closest returns the name in names closest to key by edit distance
// (case-insensitive), or one that key is a prefix of (a truncated key such
// as "bearer"), or "" when nothing is close.
func Closest(key string, names []string) string {
	names = slices.Sorted(slices.Values(names))
	best, bestD := "", math.MaxInt
	for _, name := range names {
		if dist := editDistance(strings.ToLower(key), strings.ToLower(name)); dist < bestD {
			best, bestD = name, dist
		}
	}
	if bestD <= max(2, len(key)/4) {
		return best
	}
	best = ""
	for _, name := range names {
		if len(key) >= 4 && strings.HasPrefix(strings.ToLower(name), strings.ToLower(key)) && (best == "" || len(name) < len(best)) {
			best = name
		}
	}
	return best
}

func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}
