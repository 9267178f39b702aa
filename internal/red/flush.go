package red

import (
	"context"
	"time"

	"github.com/meshwave/meshwave/internal/wavefront"
)

// counts is one entry's counters taken at a flush.
type counts struct {
	e                                *entry
	invocations, errors, totalMillis int64
}

// doneBin is a histogram bin taken out of its entry for emission.
type doneBin struct {
	e *entry
	bin
}

// Flush emits what has accumulated, stamped with now: the non-zero delta
// counters since the last flush, the histograms of minutes completed by now
// (stamped with the minute's start), in ZipkinMode one heartbeat pair for
// every heartbeat key seen since the last flush, and the reporter's own
// health counters. Out is called without any lock held.
func (d *Deriver) Flush(now time.Time, out Emitter) { d.flush(now, out, false) }

// Run flushes to out once a minute, the first time one minute after the
// call, and once more when ctx ends, then including the current minute so
// that a graceful shutdown loses nothing already observed. Stop the
// producers before cancelling ctx: later spans are never flushed.
func (d *Deriver) Run(ctx context.Context, out Emitter) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			d.flush(d.now(), out, true)
			return
		case <-t.C:
			d.flush(d.now(), out, false)
		}
	}
}

// flush implements Flush; all also takes the bins of the current and
// future minutes.
func (d *Deriver) flush(now time.Time, out Emitter, all bool) {
	ts := now.Unix()
	var cs []counts
	var bins []doneBin
	for i := range d.shards {
		cs, bins = d.drainShard(&d.shards[i], ts, all, cs, bins)
	}

	p := &wavefront.Point{Timestamp: ts}
	var reportedCounters, reportedHistograms int
	for _, c := range cs {
		p.Source, p.Tags = c.e.source, c.e.tags
		for _, v := range [...]struct {
			name []byte
			n    int64
		}{{c.e.invocationName, c.invocations}, {c.e.errorName, c.errors}, {c.e.totalTimeName, c.totalMillis}} {
			if v.n != 0 {
				p.Name, p.Value = v.name, float64(v.n)
				out.WritePoint(p)
				reportedCounters++
			}
		}
	}

	var centroids []wavefront.Centroid
	for _, b := range bins {
		centroids = b.appendCentroids(centroids[:0], d)
		dist := &wavefront.Distribution{
			Granularity: wavefront.Minute,
			Timestamp:   b.start,
			Centroids:   centroids,
			Name:        b.e.durationName,
			Source:      b.e.source,
			Tags:        b.e.tags,
		}
		if b.isError {
			dist.Tags = b.e.errorTags
		}
		out.WriteDistribution(dist)
		reportedHistograms++
		b.digest.Reset()
		d.digests.Put(b.digest)
	}

	if d.mode == ZipkinMode {
		for _, hb := range d.seenHeartbeats() {
			d.writeHeartbeats(out, p, hb, ts)
		}
	}

	*p = wavefront.Point{Timestamp: ts, Source: d.reporter}
	for _, v := range [...]struct {
		name string
		n    int
	}{
		{reporterPrefix + "delta_counters.reported.count", reportedCounters},
		{reporterPrefix + "wavefront_histograms.reported.count", reportedHistograms},
	} {
		if v.n != 0 {
			p.Name, p.Value = []byte(v.name), float64(v.n)
			out.WritePoint(p)
		}
	}
}

// drainShard takes the counters and the completed bins out of sh's entries,
// appending them to cs and bins, and releases the entries that were idle
// for the whole window, so that memory follows the live series.
func (d *Deriver) drainShard(sh *shard, ts int64, all bool, cs []counts, bins []doneBin) ([]counts, []doneBin) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	for h, head := range sh.m {
		var kept *entry
		for e := head; e != nil; {
			next := e.next
			if e.invocations != 0 {
				cs = append(cs, counts{e, e.invocations, e.errors, e.totalMillis})
				e.invocations, e.errors, e.totalMillis = 0, 0, 0
			}
			open := e.bins[:0]
			for _, b := range e.bins {
				if all || b.start+binSeconds <= ts {
					bins = append(bins, doneBin{e, b})
				} else {
					open = append(open, b)
				}
			}
			clear(e.bins[len(open):]) // drop references to handed-over digests
			e.bins = open
			if !e.touched && len(e.bins) == 0 {
				d.release(e)
			} else {
				e.touched = false
				e.next, kept = kept, e
			}
			e = next
		}
		switch {
		case kept == nil:
			delete(sh.m, h)
		case kept != head:
			sh.m[h] = kept
		}
	}
	return cs, bins
}

// seenHeartbeats returns the heartbeats seen since the last call, clearing
// their mark.
func (d *Deriver) seenHeartbeats() []*heartbeat {
	d.hbMu.Lock()
	defer d.hbMu.Unlock()
	var seen []*heartbeat
	for _, hb := range d.heartbeats {
		for ; hb != nil; hb = hb.next {
			if hb.seen.CompareAndSwap(true, false) {
				seen = append(seen, hb)
			}
		}
	}
	return seen
}

// writeHeartbeats writes hb's two ~component.heartbeat points through p.
func (d *Deriver) writeHeartbeats(out Emitter, p *wavefront.Point, hb *heartbeat, ts int64) {
	*p = wavefront.Point{Name: d.heartbeatName, Value: 1, Timestamp: ts, Source: hb.source, Tags: hb.tags}
	out.WritePoint(p)
	p.Tags = hb.second
	out.WritePoint(p)
}
