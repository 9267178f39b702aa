package collector

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"

	"github.com/meshwave/meshwave/internal/config"
	"github.com/meshwave/meshwave/internal/filter"
	"github.com/meshwave/meshwave/internal/wavefront"
)

// Explain scrapes the named source (every source when name is empty) once
// and writes, per series, its Wavefront name and the rule that kept or
// dropped it (collector.md §4.3 order), then totals per rule.
func Explain(ctx context.Context, cfg *config.Config, name string, w io.Writer, log *slog.Logger) error {
	found := false
	for i := range cfg.Sources.PrometheusSources {
		p := &cfg.Sources.PrometheusSources[i]
		if name != "" && p.Key() != name && p.URL != name {
			continue
		}
		found = true
		rules, err := newRuleSet(p.Filters)
		if err != nil {
			return err
		}
		r := &explainer{w: w, rules: rules, totals: map[string]int{}}
		src := newSource(cfg, p, nil, r, NewMetrics(), log, 0)
		fmt.Fprintf(w, "# source %s\n# url %s\n", p.Key(), p.URL)
		res := src.scrape(ctx)
		r.summary(res)
		if res.Err != nil {
			return res.Err
		}
	}
	if !found {
		return fmt.Errorf("no prometheus source named %q", name)
	}
	return nil
}

// ruleSet is a source filter split into its steps, so each drop can be
// attributed to the step that made it.
type ruleSet struct {
	allow, deny, tagAllow *filter.Filter
	tagDeny               map[string]*filter.Filter
	tagDenyKeys           []string
	tags                  *filter.Filter
}

func newRuleSet(c filter.Config) (*ruleSet, error) {
	r := &ruleSet{tagDeny: map[string]*filter.Filter{}}
	var err error
	mk := func(c filter.Config) *filter.Filter {
		f, e := filter.New(c)
		if e != nil && err == nil {
			err = e
		}
		return f
	}
	r.allow = mk(filter.Config{MetricAllowList: c.MetricAllowList})
	r.deny = mk(filter.Config{MetricDenyList: c.MetricDenyList})
	if c.MetricTagAllowList != nil {
		r.tagAllow = mk(filter.Config{MetricTagAllowList: c.MetricTagAllowList})
	}
	for k, v := range c.MetricTagDenyList {
		r.tagDeny[k] = mk(filter.Config{MetricTagDenyList: map[string][]string{k: v}})
		r.tagDenyKeys = append(r.tagDenyKeys, k)
	}
	slices.Sort(r.tagDenyKeys)
	r.tags = mk(filter.Config{TagInclude: c.TagInclude, TagExclude: c.TagExclude, TagGuaranteeList: c.TagGuaranteeList})
	return r, err
}

// verdict returns "" when the point is kept, else the rule that drops it.
func (r *ruleSet) verdict(name []byte, tags []wavefront.Tag) string {
	switch {
	case !r.allow.Keep(name, tags):
		return "metricAllowList: no pattern matches"
	case !r.deny.Keep(name, tags):
		return "metricDenyList: a pattern matches"
	case !r.tagAllow.Keep(name, tags):
		return "metricTagAllowList: no listed tag matches"
	}
	for _, k := range r.tagDenyKeys {
		if !r.tagDeny[k].Keep(name, tags) {
			return "metricTagDenyList: " + k + " matches"
		}
	}
	return ""
}

type explainer struct {
	w      io.Writer
	rules  *ruleSet
	totals map[string]int
	kept   int
}

func (e *explainer) WritePoint(p *wavefront.Point) {
	e.report(p.Name, p.Tags, "")
}

func (e *explainer) WriteDistribution(d *wavefront.Distribution) {
	e.report(d.Name, d.Tags, " (distribution)")
}

func (e *explainer) report(name []byte, tags []wavefront.Tag, what string) {
	v := e.rules.verdict(name, tags)
	kv := make([]string, 0, len(tags))
	if v == "" {
		tags = e.rules.tags.FilterTags(slices.Clone(tags))
	}
	for _, t := range tags {
		kv = append(kv, string(t.Key)+"="+string(t.Value))
	}
	slices.Sort(kv)
	verdict := "KEEP"
	if v != "" {
		verdict = "DROP"
		e.totals[v]++
	} else {
		e.kept++
	}
	fmt.Fprintf(e.w, "%s %s%s {%s}", verdict, name, what, strings.Join(kv, ", "))
	if v != "" {
		fmt.Fprintf(e.w, "  <- %s", v)
	}
	fmt.Fprintln(e.w)
}

func (e *explainer) flush() {}

func (e *explainer) summary(res ScrapeResult) {
	fmt.Fprintf(e.w, "# %d samples read, %d points kept", res.Samples, e.kept)
	if res.ParseErrors > 0 {
		fmt.Fprintf(e.w, ", %d lines skipped as malformed", res.ParseErrors)
	}
	fmt.Fprintln(e.w)
	rules := make([]string, 0, len(e.totals))
	for r := range e.totals {
		rules = append(rules, r)
	}
	slices.Sort(rules)
	for _, r := range rules {
		fmt.Fprintf(e.w, "# %d dropped by %s\n", e.totals[r], r)
	}
}
