package collector

import "sync"

// staticSources keeps one scrape state per collector so tests that scrape
// repeatedly reuse its HTTP client, as a running loop does.
var staticSources sync.Map // *Collector → *source

func staticSource(c *Collector) *source {
	if s, ok := staticSources.Load(c); ok {
		return s.(*source)
	}
	s, _ := staticSources.LoadOrStore(c, c.sourceFor(c.targets.current()[0]))
	return s.(*source)
}
