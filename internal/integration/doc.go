// Package integration holds end-to-end tests that run meshwave against real
// third-party programs. TestFederationWithRealPrometheus puts a real
// Prometheus, configured from the Istio integration's own manifest, between
// the mesh simulator and the collector, so the recording rules, federation
// and label handling are Prometheus' and not our simulator's imitation.
package integration
