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
		lo := sort.Search(len(s.Points), func(i int) bool { return s.Points[i].T >= start })
		hi := sort.Search(len(s.Points), func(i int) bool { return s.Points[i].T > end })
		if lo >= hi {
			continue
		}
		s.Points = s.Points[lo:hi:hi]
		if err := fn(&s); err != nil {
			return err
		}
	}
	return nil
}

// Add stores s without copying: the caller hands over s.Points (ascending by
// T) and s.Tags and must not modify them afterwards. Slices may be shared
// between series, which lets benchmarks build large meshes cheaply.
func (m *MemStorage) Add(s Series) {
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
			lo := sort.Search(len(s.Points), func(i int) bool { return s.Points[i].T >= start })
			hi := sort.Search(len(s.Points), func(i int) bool { return s.Points[i].T > end })
			if lo >= hi {
				continue
			}
			s.Points = s.Points[lo:hi:hi]
			if err := fn(&s); err != nil {
				return err
			}
		}
	}
	return nil
}
