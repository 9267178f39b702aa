package wql

import (
	"context"
	"sort"
	"sync"
)

// MemStorage is an in-memory Storage for tests and benchmarks.
type MemStorage struct {
	mu     sync.RWMutex
	byName map[string][]Series
	dists  map[byte][]DistSeries // by granularity
}

// NewMemStorage returns an empty store.
func NewMemStorage() *MemStorage {
	return &MemStorage{byName: map[string][]Series{}, dists: map[byte][]DistSeries{}}
}

// AddDist stores a histogram series of granularity gran ('m', 'h' or 'd'),
// without copying, like Add.
func (m *MemStorage) AddDist(gran byte, s DistSeries) {
	if !s.Tags.IsSorted() {
		s.Tags.Sort()
	}
	m.mu.Lock()
	m.dists[gran] = append(m.dists[gran], s)
	m.mu.Unlock()
}

// SelectDists implements DistStorage.
func (m *MemStorage) SelectDists(ctx context.Context, glob string, gran byte, f Matcher, start, end int64, fn func(*DistSeries) error) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	for _, s := range m.dists[gran] {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !globMatch(glob, s.Name) || (f != nil && !f.Match(s.Source, s.Tags)) {
			continue
		}
		if s.Points = window(s.Points, func(p *Dist) int64 { return p.T }, start, end); len(s.Points) == 0 {
			continue
		}
		if err := fn(&s); err != nil {
			return err
		}
	}
	return nil
}

// Add stores s without copying: the caller hands over s.Points (ascending by
// T) and s.Tags (sorted here if they are not) and must not modify them
// afterwards. Slices may be shared between series, which lets benchmarks
// build large meshes cheaply.
func (m *MemStorage) Add(s Series) {
	if !s.Tags.IsSorted() {
		s.Tags.Sort()
	}
	m.mu.Lock()
	m.byName[s.Name] = append(m.byName[s.Name], s)
	m.mu.Unlock()
}

// Select implements Storage. Points alias the stored slices.
func (m *MemStorage) Select(ctx context.Context, glob string, f Matcher, start, end int64, fn func(*Series) error) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	for name, ss := range m.byName {
		if !globMatch(glob, name) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		for _, s := range ss {
			if f != nil && !f.Match(s.Source, s.Tags) {
				continue
			}
			if s.Points = window(s.Points, func(p *Point) int64 { return p.T }, start, end); len(s.Points) == 0 {
				continue
			}
			if err := fn(&s); err != nil {
				return err
			}
		}
	}
	return nil
}

// window is the part of pts (ascending by time t) in [start, end], capped
// so that an append by the caller cannot write into the stored slice.
func window[P any](pts []P, t func(*P) int64, start, end int64) []P {
	lo := sort.Search(len(pts), func(i int) bool { return t(&pts[i]) >= start })
	hi := sort.Search(len(pts), func(i int) bool { return t(&pts[i]) > end })
	if lo >= hi {
		return nil
	}
	return pts[lo:hi:hi]
}
