// Package integration holds end-to-end tests that run meshwave against real
// third-party programs. TestFederationWithRealPrometheus puts a real
// Prometheus, configured from the Istio integration's own manifest, between
// the mesh simulator and the collector, so the recording rules, federation
// and label handling are Prometheus' and not our simulator's imitation.
// TestProxyToServer runs meshwave's own proxy and server against each
// other: what the proxy queued while the server was down, posted as the
// server reads it.
package integration
