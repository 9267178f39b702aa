package config

import (
	"fmt"
	"time"

	"github.com/meshwave/meshwave/internal/filter"
)

// Defaults from collector.md §1.2-§1.8.
const (
	DefaultClusterName              = "k8s-cluster"
	DefaultFlushInterval            = 30 * time.Second
	MinFlushInterval                = 5 * time.Second
	DefaultCollectionInterval       = 60 * time.Second
	DefaultSinkExportDataTimeout    = 20 * time.Second
	DefaultCollectionTimeout        = 30 * time.Second
	DefaultDiscoveryInterval        = 5 * time.Minute
	DefaultAnnotationPrefix         = "prometheus.io"
	DefaultProxyPort                = 2878
	DefaultBatchSize                = 10000
	DefaultMaxBufferSize            = 50000
	DefaultErrorLogPercent          = 0.01
	ExperimentalHistogramConversion = "histogram-conversion"
)

// Config is a loaded, defaulted and validated collector configuration.
type Config struct {
	File string // the file it was loaded from, for diagnostics

	ClusterName               string
	EnableDiscovery           bool
	EnableEvents              bool
	FlushInterval             time.Duration
	DefaultCollectionInterval time.Duration
	SinkExportDataTimeout     time.Duration
	Sinks                     []Sink
	Sources                   Sources
	Discovery                 Discovery
	Events                    *Events // nil when absent; accepted, not implemented
	OmitBucketSuffix          bool
	Experimental              []string
}

// HistogramConversion reports whether `experimental: [histogram-conversion]`
// turns on Wavefront-histogram conversion for every Prometheus source.
func (c *Config) HistogramConversion() bool {
	for _, e := range c.Experimental {
		if e == ExperimentalHistogramConversion {
			return true
		}
	}
	return false
}

// Transform holds the keys shared by every source and sink (§1.3).
type Transform struct {
	Source            string
	Prefix            string
	Tags              map[string]string
	ConvertHistograms bool
	// Filters is the raw filter configuration with deprecated aliases
	// resolved; Filter is it compiled (nil when empty: keep everything).
	Filters filter.Config
	Filter  *filter.Filter
}

// Collection is a source's `collection` block.
type Collection struct {
	Interval time.Duration
	Timeout  time.Duration
}

// Sources is the `sources` map (§1.4). Only PrometheusSources and
// InternalStatsSource are implemented; the others are parsed strictly and
// kept for completeness.
type Sources struct {
	PrometheusSources            []PrometheusSource
	InternalStatsSource          *PlainSource
	KubernetesSource             *KubernetesSource
	KubernetesCadvisorSource     *PlainSource
	KubernetesStateSource        *PlainSource
	TelegrafSources              []TelegrafSource
	SystemdSource                *SystemdSource
	KubernetesControlPlaneSource *ControlPlaneSource
}

// PlainSource is a source that takes only the transform and collection keys.
type PlainSource struct {
	Transform
	Collection Collection
	Line       int
}

// KubernetesSource is the kubelet summary source (not implemented). Its
// extra keys are all strings in the reference.
type KubernetesSource struct {
	Transform
	Collection        Collection
	URL               string
	KubeletPort       string
	KubeletHTTPS      string
	InClusterConfig   string
	UseServiceAccount string
	Insecure          string
	Auth              string
	Line              int
}

// TelegrafSource is one telegraf_sources entry (not implemented).
type TelegrafSource struct {
	Transform
	Collection Collection
	Plugins    []string
	Conf       string
	Line       int
}

// SystemdSource is the systemd_source (not implemented).
type SystemdSource struct {
	Transform
	Collection       Collection
	TaskMetrics      bool
	StartTimeMetrics bool
	RestartMetrics   bool
	UnitAllowList    []string
	UnitDenyList     []string
	Line             int
}

// ControlPlaneSource is the older reference's control-plane source (not
// implemented): `collection` only, no transform keys.
type ControlPlaneSource struct {
	Collection Collection
	Line       int
}

// PrometheusSource is one prometheus_sources entry (§1.5), defaulted:
// Collection.Interval falls back to defaultCollectionInterval and
// Collection.Timeout to 30s.
type PrometheusSource struct {
	URL        string
	Name       string
	HTTPConfig HTTPConfig
	Transform
	Collection Collection
	Line       int // line of the entry, for diagnostics
}

// Key is what the reference keys providers by: the name, else the URL.
func (p *PrometheusSource) Key() string {
	if p.Name != "" {
		return p.Name
	}
	return p.URL
}

// HTTPConfig is a source's httpConfig (§1.6).
type HTTPConfig struct {
	BearerToken     string
	BearerTokenFile string
	TLSConfig       TLSConfig
	// ProxyURL is a URL string; the reference's nested mapping form
	// `{url: {scheme: ..., host: ...}}` is converted to one.
	ProxyURL  string
	BasicAuth *BasicAuth // extension
}

// TLSConfig is httpConfig.tls_config.
type TLSConfig struct {
	CAFile             string
	CertFile           string
	KeyFile            string
	ServerName         string
	InsecureSkipVerify bool
}

// BasicAuth is the httpConfig.basic_auth extension. Password and
// PasswordFile are mutually exclusive; the file is meant to be re-read per
// request like bearer_token_file.
type BasicAuth struct {
	Username     string
	Password     string
	PasswordFile string
}

// Discovery is the `discovery` map (§1.7), defaulted.
type Discovery struct {
	DiscoveryInterval          time.Duration
	AnnotationPrefix           string
	AnnotationExcludes         []Selector
	EnableRuntimePlugins       bool
	DisableAnnotationDiscovery bool
	Plugins                    []PluginRule
	Global                     *DiscoveryGlobal // deprecated, ignored
	PromConfigs                []PromConfig     // deprecated, ignored
}

// Selector chooses resources for a plugin rule or an annotation exclusion.
type Selector struct {
	ResourceType string // pod (default), service or node
	Images       []string
	Labels       map[string][]string
	Namespaces   []string
}

// PluginRule is one discovery.plugins entry, defaulted (Scheme http, Path
// /metrics, IncludeLabels "true"). Rules the reference would skip (bad
// type, port or selector) are dropped at load with a warning.
type PluginRule struct {
	Name      string
	Type      string
	Selectors Selector
	Port      string
	Scheme    string
	Path      string
	Conf      string
	// ConfHTTP is Conf parsed strictly as httpConfig, for prometheus rules.
	ConfHTTP *HTTPConfig
	Transform
	IncludeLabels string
	Collection    Collection
	Line          int
}

// DiscoveryGlobal is the deprecated discovery.global block.
type DiscoveryGlobal struct {
	DiscoveryInterval time.Duration
}

// PromConfig is a deprecated discovery.prom_configs entry.
type PromConfig struct {
	Name          string
	ResourceType  string
	Labels        map[string]string
	Namespace     string
	Port          string
	Path          string
	Scheme        string
	Prefix        string
	Tags          map[string]string
	Source        string
	IncludeLabels string
	Filters       filter.Config
}

// Sink is one sinks entry (§1.8), defaulted.
type Sink struct {
	Type                string // "" (Wavefront) or "external" (not implemented)
	ProxyAddress        string
	ProxyHost           string // ProxyAddress split; port defaults to 2878
	ProxyPort           int
	Server              string
	Token               string
	BatchSize           int
	MaxBufferSize       int
	TestMode            bool
	ErrorLogPercent     float64
	EnableEvents        bool // defaults to the top-level enableEvents
	ExternalEndpointURL string
	// File is the meshwave extension: canonical lines are appended to this
	// path, "-" meaning stdout.
	File string
	Transform
	Line int
}

// SinkKind says how a sink sends, following the reference's precedence:
// testMode, then proxyAddress, then server; file is our extension and comes
// last.
type SinkKind string

const (
	SinkExternal SinkKind = "external"
	SinkTest     SinkKind = "test"
	SinkProxy    SinkKind = "proxy"
	SinkDirect   SinkKind = "direct"
	SinkFile     SinkKind = "file"
)

// Kind returns how s sends.
func (s *Sink) Kind() SinkKind {
	switch {
	case s.Type == "external":
		return SinkExternal
	case s.TestMode:
		return SinkTest
	case s.ProxyAddress != "":
		return SinkProxy
	case s.Server != "":
		return SinkDirect
	default:
		return SinkFile
	}
}

// Events is the top-level events block (accepted, not implemented).
type Events struct {
	Filters EventFilters
}

// EventFilters is events.filters, with the deprecated tagWhitelist,
// tagBlacklist, tagWhitelistSets and tagBlacklistSets resolved like the
// metric filter aliases.
type EventFilters struct {
	TagAllowList     map[string][]string
	TagDenyList      map[string][]string
	TagAllowListSets []map[string][]string
	TagDenyListSets  []map[string][]string
}

// Warning is a non-fatal finding of Parse or Lint.
type Warning struct {
	File    string
	Line    int
	Message string
}

func (w Warning) String() string {
	return fmt.Sprintf("%s:%d: %s", w.File, w.Line, w.Message)
}

// Error is one configuration error. Column is set for errors about a key
// itself (unknown, duplicate).
type Error struct {
	File   string
	Line   int
	Column int
	Key    string // dotted key path, e.g. sources.prometheus_sources[0].url
	Msg    string
}

func (e *Error) Error() string {
	pos := fmt.Sprintf("%s:%d", e.File, e.Line)
	if e.Column > 0 {
		pos += fmt.Sprintf(":%d", e.Column)
	}
	if e.Key == "" {
		return pos + ": " + e.Msg
	}
	return pos + ": " + e.Key + ": " + e.Msg
}
