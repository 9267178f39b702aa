// Package demo assembles `meshwave demo`: the mesh simulator and the
// collector, configured as the Istio integration configures them, in one
// process on loopback.
package demo
