package demo

import (
	_ "embed"
	"strings"
)

//go:embed collector.yaml
var collectorTemplate string

// CollectorConfig returns the demo's collector.yaml with its source pointed
// at federateURL (e.g. http://127.0.0.1:9901/federate).
func CollectorConfig(federateURL string) []byte {
	return []byte(strings.ReplaceAll(collectorTemplate, "{{FEDERATE_URL}}", federateURL))
}
