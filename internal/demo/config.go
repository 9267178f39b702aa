package demo

import (
	_ "embed"
	"strings"
	"time"
)

//go:embed collector.yaml
var collectorTemplate string

// DefaultProxyAddress is the sink of CollectorConfig: the proxy's usual
// push port on loopback.
const DefaultProxyAddress = "127.0.0.1:2878"

// ConfigOptions adjust the demo's collector.yaml.
type ConfigOptions struct {
	ProxyAddress string // sink proxyAddress (default DefaultProxyAddress)
	// CollectionInterval overrides defaultCollectionInterval (15s).
	CollectionInterval time.Duration
	// PrintPoints adds a second sink printing the points to stdout.
	PrintPoints bool
}

// CollectorConfig returns the demo's collector.yaml with its source pointed
// at federateURL (e.g. http://127.0.0.1:9901/federate) and its sink at
// DefaultProxyAddress.
func CollectorConfig(federateURL string) []byte {
	return CollectorConfigWith(federateURL, ConfigOptions{})
}

// CollectorConfigWith is CollectorConfig with options.
func CollectorConfigWith(federateURL string, o ConfigOptions) []byte {
	if o.ProxyAddress == "" {
		o.ProxyAddress = DefaultProxyAddress
	}
	s := strings.ReplaceAll(collectorTemplate, "{{FEDERATE_URL}}", federateURL)
	s = strings.ReplaceAll(s, "{{PROXY_ADDRESS}}", o.ProxyAddress)
	if o.CollectionInterval > 0 {
		s = strings.Replace(s, "defaultCollectionInterval: 15s", "defaultCollectionInterval: "+o.CollectionInterval.String(), 1)
	}
	if o.PrintPoints {
		s = strings.Replace(s, "sinks:\n", "sinks:\n- file: '-'                      # meshwave: --print-points\n", 1)
	}
	return []byte(s)
}
