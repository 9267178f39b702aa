package wql

import (
	"slices"
	"strings"
)

// Tag is one point tag of a series.
type Tag struct{ Key, Value string }

// Tags are a series' point tags in ascending byte order of their keys, each
// key once. Stores that keep labels sorted (the tsdb does) hand them over
// without building a map per series, and the evaluator's grouping keys and
// the chart encoder's sorted output need no sort of their own.
type Tags []Tag

// TagsOf returns m's tags in key order (nil for an empty map).
func TagsOf(m map[string]string) Tags {
	if len(m) == 0 {
		return nil
	}
	ts := make(Tags, 0, len(m))
	for k, v := range m {
		ts = append(ts, Tag{k, v})
	}
	ts.Sort()
	return ts
}

// Sort puts ts in key order.
func (ts Tags) Sort() {
	slices.SortFunc(ts, func(a, b Tag) int { return strings.Compare(a.Key, b.Key) })
}

// Get returns the value of tag k. Series carry about ten tags: a linear
// scan beats a binary search there.
func (ts Tags) Get(k string) (string, bool) {
	for i := range ts {
		if ts[i].Key == k {
			return ts[i].Value, true
		}
	}
	return "", false
}

// Map returns the tags as a map (nil when there are none).
func (ts Tags) Map() map[string]string {
	if len(ts) == 0 {
		return nil
	}
	m := make(map[string]string, len(ts))
	for _, t := range ts {
		m[t.Key] = t.Value
	}
	return m
}

// IsSorted reports whether the keys ascend strictly, as Tags requires.
func (ts Tags) IsSorted() bool {
	for i := 1; i < len(ts); i++ {
		if ts[i-1].Key >= ts[i].Key {
			return false
		}
	}
	return true
}

// appendKey appends the canonical encoding of ts without tag skip
// ("k=v\x00" per tag, in key order) that grouping and matching compare.
func (ts Tags) appendKey(b []byte, skip string) []byte {
	for _, t := range ts {
		if t.Key == skip {
			continue
		}
		b = append(b, t.Key...)
		b = append(b, '=')
		b = append(b, t.Value...)
		b = append(b, 0)
	}
	return b
}
