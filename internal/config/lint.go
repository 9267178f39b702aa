package config

import (
	"fmt"
	"strings"

	"github.com/meshwave/meshwave/internal/filter"
)

// DashboardMetrics are the metrics the "Istio Data Plane" and "Istio
// Control Plane" dashboards query (istio.md §10), as the federated source
// produces them (untyped, hence `.value`). Lint checks that a /federate
// source's name filters let each of them through; the seed's allow list
// misses pilot.proxy.queue.time.bucket.value, which is why "Proxy Queue
// Time" shows NO DATA (istio.md §11).
var DashboardMetrics = []string{
	"istio.requests.total.value",
	"istio.request.duration.milliseconds.bucket.value",
	"istio.request.duration.milliseconds.count.value",
	"istio.request.duration.milliseconds.sum.value",
	"istio.request.bytes.bucket.value",
	"istio.request.bytes.count.value",
	"istio.request.bytes.sum.value",
	"istio.response.bytes.bucket.value",
	"istio.tcp.sent.bytes.total.value",
	"istio.tcp.received.bytes.total.value",
	"istio.tcp.connections.opened.total.value",
	"istio.tcp.connections.closed.total.value",
	"istio.build.value",
	"pilot.xds.pushes.value",
	"pilot.xds.push.context.errors.value",
	"pilot.xds.write.timeout.value",
	"pilot.total.xds.rejects.value",
	"pilot.total.xds.internal.errors.value",
	"pilot.services.value",
	"pilot.virt.services.value",
	"pilot.proxy.convergence.time.bucket.value",
	"pilot.proxy.queue.time.bucket.value",
	"citadel.server.root.cert.expiry.timestamp.value",
	"go.goroutines.value",
	"go.memstats.alloc.bytes.value",
	"go.memstats.stack.inuse.bytes.value",
	"process.cpu.seconds.total.value",
	"process.resident.memory.bytes.value",
	"process.virtual.memory.bytes.value",
}

// Lint returns findings for check-config that are legal configuration but
// almost certainly mistakes: filters that drop every series, and /federate
// sources whose name filters block metrics the Istio dashboards need.
func Lint(c *Config) []Warning {
	var out []Warning
	warn := func(line int, format string, args ...any) {
		out = append(out, Warning{File: c.File, Line: line, Message: fmt.Sprintf(format, args...)})
	}
	check := func(where string, line int, fc filter.Config) {
		if msg := dropsEverything(fc); msg != "" {
			warn(line, "%s: %s: drops every series", where, msg)
		}
	}
	for i := range c.Sources.PrometheusSources {
		s := &c.Sources.PrometheusSources[i]
		check(fmt.Sprintf("sources.prometheus_sources %q", s.Key()), s.Line, s.Filters)
	}
	for i := range c.Discovery.Plugins {
		r := &c.Discovery.Plugins[i]
		check(fmt.Sprintf("discovery.plugins %q", r.Name), r.Line, r.Filters)
	}
	for i := range c.Sinks {
		check(fmt.Sprintf("sinks[%d]", i), c.Sinks[i].Line, c.Sinks[i].Filters)
	}

	// A dashboard metric is missing if no /federate source passes its name.
	var federate []*PrometheusSource
	for i := range c.Sources.PrometheusSources {
		if s := &c.Sources.PrometheusSources[i]; strings.Contains(s.URL, "/federate") {
			federate = append(federate, s)
		}
	}
	if len(federate) == 0 {
		return out
	}
	names := make([]*filter.Filter, len(federate))
	for i, s := range federate {
		// Only the name steps matter here; tag filters depend on the series.
		names[i], _ = filter.New(filter.Config{MetricAllowList: s.Filters.MetricAllowList, MetricDenyList: s.Filters.MetricDenyList})
	}
	for _, m := range DashboardMetrics {
		passed := false
		for i, s := range federate {
			if names[i].Keep([]byte(s.Prefix+m), nil) {
				passed = true
				break
			}
		}
		if !passed {
			warn(federate[0].Line, "sources.prometheus_sources %q: filters drop %s, which the Istio dashboards need; add it to metricAllowList",
				federate[0].Key(), m)
		}
	}
	return out
}

// dropsEverything explains why fc drops every point, or returns "".
func dropsEverything(fc filter.Config) string {
	for _, p := range fc.MetricDenyList {
		if p != "" && strings.Trim(p, "*") == "" {
			return fmt.Sprintf("metricDenyList contains %q", p)
		}
	}
	if len(fc.MetricTagAllowList) > 0 {
		for _, patterns := range fc.MetricTagAllowList {
			if len(patterns) > 0 {
				return ""
			}
		}
		return "metricTagAllowList has no patterns for any key, so it can never match"
	}
	return ""
}
