package collector

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"mime"
	"net/http"
	"time"

	"github.com/meshwave/meshwave/internal/config"
	"github.com/meshwave/meshwave/internal/convert"
	"github.com/meshwave/meshwave/internal/promtext"
)

// acceptHeader prefers the text format, whose conversion results are the
// reference's; OpenMetrics is parsed too when that is all a server offers.
const acceptHeader = "text/plain;version=0.0.4;q=1,application/openmetrics-text;version=1.0.0;q=0.5,*/*;q=0.1"

// parseErrorsLogged is how many bad lines of one scrape are logged one by
// one; the rest are summarised in one line.
const parseErrorsLogged = 3

// pointSink is where a source's converted points go: the sinks' batches,
// or explain's report.
type pointSink interface {
	convert.PointWriter
	flush()
}

// source is one prometheus_sources entry: its client, converter and parser,
// reused across scrapes. Only its own loop uses it.
type source struct {
	name      string // "prometheus_metrics_provider: <name or url>"
	cfg       *config.PrometheusSource
	interval  time.Duration
	timeout   time.Duration
	client    *http.Client
	clientErr error
	conv      *convert.Converter
	parser    *promtext.Parser
	maxLine   int // promtext.Options.MaxLineBytes, passed again on every Reset
	out       pointSink
	m         *Metrics
	log       *slog.Logger
	labels    []string // type, discovered, url for per-target metrics
	userAgent string
}

// ScrapeResult summarises one scrape for callers such as explain and --once.
type ScrapeResult struct {
	Source      string
	URL         string
	Samples     int
	Points      uint64
	Filtered    uint64
	ParseErrors int
	Duration    time.Duration
	Err         error
}

func (s *source) run(ctx context.Context) {
	// Spread the sources' first scrapes a little, then keep a fixed cadence
	// aligned to the start (collector.md §2.5); a scrape that overruns skips
	// the ticks it missed instead of piling up.
	start := time.Now().Add(time.Duration(rand.Int64N(int64(min(s.interval/10, time.Second)) + 1)))
	next := start
	for {
		if !sleepUntil(ctx, next) {
			return
		}
		s.scrape(ctx)
		for next = next.Add(s.interval); !next.After(time.Now()); next = next.Add(s.interval) {
		}
	}
}

func sleepUntil(ctx context.Context, t time.Time) bool {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}

// scrape fetches the source once and streams every sample through the
// pipeline. Points already parsed are kept even if the body fails midway.
func (s *source) scrape(ctx context.Context) ScrapeResult {
	started := time.Now()
	res := ScrapeResult{Source: s.name, URL: s.cfg.URL}
	before := s.conv.Stats
	err := s.fetch(ctx, started, &res)
	after := s.conv.Stats
	res.Points = after.Collected - before.Collected
	res.Filtered = after.Filtered - before.Filtered
	res.Duration = time.Since(started)

	s.m.pointsCollected.WithLabelValues("prometheus").Add(float64(res.Points))
	s.m.pointsFiltered.WithLabelValues("prometheus").Add(float64(res.Filtered))
	s.m.targetCollected.WithLabelValues(s.labels...).Add(float64(res.Points))
	if res.Duration >= s.timeout || errors.Is(err, context.DeadlineExceeded) {
		s.m.scrapeTimeouts.Inc()
	}
	if err != nil && ctx.Err() != nil {
		// Shutting down mid-scrape is not a failure of the target.
		res.Err = err
		return res
	}
	if err != nil {
		res.Err = err
		s.m.collectErrors.WithLabelValues("prometheus").Inc()
		s.m.targetErrors.WithLabelValues(s.labels...).Inc()
		s.m.scrapeErrors.Inc()
		s.log.Error("scrape failed", "source", s.name, "url", s.cfg.URL, "err", err,
			"points_kept", res.Points, "duration", res.Duration.Round(time.Millisecond))
		return res
	}
	s.m.scrapeLatency.Observe(float64(res.Duration) / float64(time.Millisecond))
	s.log.Debug("scraped", "source", s.name, "samples", res.Samples, "points", res.Points,
		"filtered", res.Filtered, "duration", res.Duration)
	return res
}

func (s *source) fetch(ctx context.Context, started time.Time, res *ScrapeResult) error {
	if s.clientErr != nil {
		return fmt.Errorf("error creating source: %w", s.clientErr)
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.cfg.URL, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", acceptHeader)
	req.Header.Set("User-Agent", s.userAgent)
	if err := authorize(req, &s.cfg.HTTPConfig); err != nil {
		return err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
	}()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("error retrieving prometheus metrics from %s (http status %s)", s.cfg.URL, resp.Status)
	}
	opts := promtext.Options{MaxLineBytes: s.maxLine}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt == "application/openmetrics-text" {
		opts.OpenMetrics = true
	}
	// Every point of one scrape carries the scrape second (collector.md §3.8).
	ts := started.Unix()
	s.parser.Reset(resp.Body, opts)
	defer func() {
		s.conv.Flush(s.out)
		s.out.flush()
	}()
	for {
		switch s.parser.Next() {
		case promtext.EntrySample:
			res.Samples++
			s.conv.Convert(s.parser.Sample(), ts, s.out)
		case promtext.EntryError:
			s.parseError(res)
		case promtext.EntryEOF:
			if err := s.parser.Err(); err != nil {
				// Unlike transport errors, body errors do not carry the URL.
				return fmt.Errorf("reading body of %s after line %d: %w", s.cfg.URL, s.parser.Line(), err)
			}
			if res.ParseErrors > parseErrorsLogged {
				s.log.Warn("exposition lines skipped", "source", s.name, "url", s.cfg.URL, "count", res.ParseErrors)
			}
			return nil
		}
	}
}

func (s *source) parseError(res *ScrapeResult) {
	le := s.parser.LineError()
	res.ParseErrors++
	s.m.parseErrors.WithLabelValues(le.Reason, s.cfg.URL).Inc()
	if res.ParseErrors <= parseErrorsLogged {
		s.log.Warn("exposition line skipped", "source", s.name, "url", s.cfg.URL, "line", le.Line, "reason", le.Reason, "err", le.Msg)
	}
}
