// Package proxy is the proxy role, compatible with the Wavefront proxy for
// what the Istio integration uses: the push port (Wavefront lines over TCP or
// HTTP on one port), the Zipkin port, RED metrics derived from spans,
// preprocessor rules, and forwarding to a backend's direct-ingestion API.
//
// Everything a listener accepts is validated, encoded in canonical form and
// appended to the durable queue (internal/queue) before it is acknowledged
// or counted; the forwarder alone reads the queue and posts to the backend.
// Delivery is at-least-once: a crash between a post and its acknowledgement
// re-sends that batch.
package proxy
