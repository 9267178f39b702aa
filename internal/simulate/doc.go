// Package simulate is a deterministic Istio mesh simulator. It models
// namespaces, services, workload versions and pods with a fixed traffic graph
// and serves what a real mesh would expose to the Wavefront Istio pipeline:
// each sidecar's merged /stats/prometheus (Envoy + istio-agent), istiod's
// /metrics, and the /federate body the integration's Prometheus returns for
// match[]={job=~"federate|kubernetes-pods"}.
//
// Every value is a pure function of the mesh, the seed and the clock: counters
// are rate × elapsed time, so two scrapes are monotonic and mutually consistent
// without any background goroutine. Output is streamed into a bufio.Writer
// with strconv.Append*, so even a 1 M-series /federate costs no per-series
// allocation and never exists in memory as a whole.
//
// Entry points: NewMesh(Options) or NewMeshForSeries(n) (and ShapeForSeries)
// build a mesh; WriteFederate, WriteIstiod and WritePod render it at a given
// time; Mesh.FederateSeries is the exact /federate sample count; Server puts
// it all on one listener, with /targets as Prometheus file_sd JSON.
//
// /federate follows Prometheus, not a simplification of it: labels sorted by
// name, an added instance="" last on recorded series (raw series keep their
// instance in sorted position, as federate_test.go shows), families sorted
// by name and all untyped.
package simulate
