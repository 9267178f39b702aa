// Package config loads and validates the collector configuration file
// (collector.md §1): a plain collector.yaml, or a Kubernetes manifest whose
// ConfigMap carries it under data key config.yaml (operator era) or
// collector.yaml (manual era).
//
// Parsing walks yaml.v3 nodes by hand so that it can be as strict as the
// reference (unknown and duplicate keys are errors at every level) while
// giving better messages: every error and warning names the file line
// (lines of an embedded ConfigMap block are mapped back to the manifest),
// the key path, and for a misspelt key the closest known one. Scalars follow
// the reference's yaml.v2 (YAML 1.1) reading: unquoted yes/no/on/off are
// booleans, string keys keep any scalar's literal text, and a bare number
// given for a duration is nanoseconds.
//
// Differences from the reference, all deliberate:
//   - sources.kubernetes_source is not required: meshwave has no kubelet
//     source, so it and the other out-of-scope sources are accepted, parsed
//     strictly, and reported once each as "accepted, not implemented".
//   - prometheus_sources repeated under sources (what pasting the Istio
//     snippet into the operator's example produces) is merged in file order
//     with a warning instead of being an error or silently losing a list.
//   - Filter patterns are compiled at load; a bad one is an error naming the
//     pattern and its line (the reference silently disables the list).
//   - proxyAddress accepts host, host:port and [v6]:port (default port
//     2878); proxy_url takes a plain URL string; httpConfig.basic_auth and a
//     file sink (`file: PATH`, "-" for stdout) are extensions.
//   - Errors the reference only logs at run time (invalid prometheus url,
//     lone cert_file/key_file, discovery_interval <= 0) fail the load.
package config
