package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/meshwave/meshwave/internal/suggest"
)

// Config holds the proxy's options. Field tags name the reference proxy's
// option, used both as --flag and as a key in wavefront.conf.
type Config struct {
	PushListenerPorts             string        `opt:"pushListenerPorts" help:"comma-separated Wavefront push ports (TCP lines and HTTP)"`
	TraceZipkinListenerPorts      string        `opt:"traceZipkinListenerPorts" help:"comma-separated Zipkin HTTP ports"`
	CustomTracingListenerPorts    string        `opt:"customTracingListenerPorts" help:"comma-separated ports for Wavefront span lines with RED metrics"`
	TraceListenerPorts            string        `opt:"traceListenerPorts" help:"comma-separated ports for Wavefront span lines"`
	ListenerBindAddress           string        `opt:"listenerBindAddress" help:"address the listeners bind to (meshwave extension)"`
	Server                        string        `opt:"server" help:"backend URL; points go to <server>/report?f=…"`
	Token                         string        `opt:"token" help:"backend API token"`
	Hostname                      string        `opt:"hostname" help:"source of the proxy's own metrics"`
	Buffer                        string        `opt:"buffer" help:"directory of the durable queue"`
	BufferMaxBytes                int64         `opt:"bufferMaxBytes" help:"disk bound of the queue; beyond it the oldest data is dropped and counted"`
	BufferCompression             bool          `opt:"bufferCompression" help:"compress queued data (S2): 5-10x less disk per point, so more backlog within --bufferMaxBytes and less written; false stores lines as received (meshwave extension)"`
	PushRateLimit                 float64       `opt:"pushRateLimit" help:"maximum points per second forwarded; 0 is unlimited"`
	PushFlushInterval             time.Duration `opt:"pushFlushInterval" help:"how long the forwarder waits to fill a batch"`
	PushFlushMaxPoints            int           `opt:"pushFlushMaxPoints" help:"maximum lines per request to the backend"`
	PushListenerMaxReceivedLength int           `opt:"pushListenerMaxReceivedLength" help:"longest accepted line, in bytes"`
	PushListenerHTTPBufferSize    int           `opt:"pushListenerHttpBufferSize" help:"largest accepted HTTP body, in bytes"`
	TraceListenerHTTPBufferSize   int           `opt:"traceListenerHttpBufferSize" help:"largest accepted Zipkin body, in bytes"`
	TraceZipkinApplicationName    string        `opt:"traceZipkinApplicationName" help:"application of Zipkin spans without an application tag"`
	TraceDerivedCustomTagKeys     string        `opt:"traceDerivedCustomTagKeys" help:"comma-separated span tags copied onto RED metrics"`
	CustomSourceTags              string        `opt:"customSourceTags" help:"comma-separated tags used as source when a line has none"`
	Prefix                        string        `opt:"prefix" help:"prefix added to metric names (never to ~, ∆ or Δ names)"`
	PreprocessorConfigFile        string        `opt:"preprocessorConfigFile" help:"preprocessor rules YAML, reloaded on change"`
	PushBlockedSamples            int           `opt:"pushBlockedSamples" help:"blocked-line log lines per 10 s"`
	MaxConnections                int           `opt:"maxConnections" help:"concurrent TCP connections per port; more are refused and counted (meshwave extension)"`
	IdleTimeout                   time.Duration `opt:"listenerIdleTimeout" help:"close a connection that sends nothing for this long (meshwave extension)"`
	ForwardNonFinite              bool          `opt:"forwardNonFinite" help:"forward NaN and ±Inf values instead of dropping them (meshwave extension)"`
	MetricsAddr                   string        `opt:"metricsAddr" help:"serve self-metrics in Prometheus format on this address; empty disables (meshwave extension)"`
	EphemeralCheckin              bool          `opt:"ephemeral" help:"accepted for compatibility; meshwave does not check in"`
}

// DefaultConfig returns the reference defaults where they apply.
func DefaultConfig() Config {
	host, _ := os.Hostname()
	return Config{
		PushListenerPorts:             "2878",
		ListenerBindAddress:           "0.0.0.0",
		Hostname:                      host,
		Buffer:                        "/var/spool/meshwave/buffer",
		BufferMaxBytes:                8 << 30,
		BufferCompression:             true,
		PushFlushInterval:             time.Second,
		PushFlushMaxPoints:            40000,
		PushListenerMaxReceivedLength: 32768,
		PushListenerHTTPBufferSize:    16 << 20,
		TraceListenerHTTPBufferSize:   16 << 20,
		TraceZipkinApplicationName:    "Zipkin",
		CustomSourceTags:              "fqdn",
		PushBlockedSamples:            5,
		MaxConnections:                1024,
		IdleTimeout:                   10 * time.Minute,
		MetricsAddr:                   "127.0.0.1:9103",
	}
}

// ParseArgs reads command-line options over the defaults. "-f FILE" (or
// --config FILE) loads a wavefront.conf first; flags given on the command
// line win. Both "--name value" and "--name=value" work.
func ParseArgs(args []string) (Config, error) {
	cfg := DefaultConfig()
	opts := options(&cfg)
	type kv struct{ key, value string }
	var flags []kv
	var confFile string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			return cfg, fmt.Errorf("unexpected argument %q", a)
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if name == "h" || name == "help" {
			return cfg, flag.ErrHelp
		}
		f, known := opts[name]
		if !known && name != "f" && name != "config" {
			return cfg, unknownOption(name, "command line", opts)
		}
		if !hasValue {
			if known && f.Kind() == reflect.Bool && (i+1 == len(args) || strings.HasPrefix(args[i+1], "-")) {
				value = "true"
			} else {
				if i+1 == len(args) {
					return cfg, fmt.Errorf("option --%s needs a value", name)
				}
				i++
				value = args[i]
			}
		}
		if name == "f" || name == "config" {
			confFile = value
			continue
		}
		flags = append(flags, kv{name, value})
	}
	if confFile != "" {
		if err := loadConfFile(confFile, opts); err != nil {
			return cfg, err
		}
	}
	for _, f := range flags {
		if err := set(opts[f.key], f.value); err != nil {
			return cfg, fmt.Errorf("option --%s: %w", f.key, err)
		}
	}
	return cfg, cfg.validate()
}

// loadConfFile reads the reference's key=value wavefront.conf.
func loadConfFile(path string, opts map[string]reflect.Value) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			return fmt.Errorf("%s:%d: expected key=value, got %q", path, n, line)
		}
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		f, known := opts[key]
		if !known {
			return unknownOption(key, fmt.Sprintf("%s:%d", path, n), opts)
		}
		if err := set(f, value); err != nil {
			return fmt.Errorf("%s:%d: %s: %w", path, n, key, err)
		}
	}
	return sc.Err()
}

// Usage writes every option with its default and help text.
func Usage(w io.Writer) {
	def := DefaultConfig()
	v := reflect.ValueOf(&def).Elem()
	fmt.Fprintln(w, "Usage: meshwave proxy [-f wavefront.conf] [--option value ...]")
	for i := range v.NumField() {
		f := v.Type().Field(i)
		fmt.Fprintf(w, "  --%s (default %v)\n        %s\n", f.Tag.Get("opt"), v.Field(i).Interface(), f.Tag.Get("help"))
	}
}

func options(cfg *Config) map[string]reflect.Value {
	m := map[string]reflect.Value{}
	v := reflect.ValueOf(cfg).Elem()
	for i := range v.NumField() {
		m[v.Type().Field(i).Tag.Get("opt")] = v.Field(i)
	}
	return m
}

func set(f reflect.Value, s string) error {
	switch f.Interface().(type) {
	case string:
		f.SetString(s)
	case bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return err
		}
		f.SetBool(b)
	case time.Duration:
		d, err := time.ParseDuration(s)
		if err != nil {
			// The reference takes plain numbers of milliseconds.
			ms, err2 := strconv.ParseInt(s, 10, 64)
			if err2 != nil {
				return err
			}
			d = time.Duration(ms) * time.Millisecond
		}
		f.SetInt(int64(d))
	case int, int64:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return err
		}
		f.SetInt(n)
	case float64:
		x, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return err
		}
		f.SetFloat(x)
	}
	return nil
}

func unknownOption(name, where string, opts map[string]reflect.Value) error {
	msg := fmt.Sprintf("%s: unknown option %q", where, name)
	if best := suggest.Closest(name, slices.Collect(maps.Keys(opts))); best != "" {
		msg += fmt.Sprintf(" (did you mean %s?)", best)
	}
	return errors.New(msg)
}

func (c *Config) validate() error {
	if c.Server == "" {
		return fmt.Errorf("--server is required (the backend URL, e.g. http://127.0.0.1:8080)")
	}
	for _, p := range [][2]string{{"pushListenerPorts", c.PushListenerPorts}, {"traceZipkinListenerPorts", c.TraceZipkinListenerPorts},
		{"customTracingListenerPorts", c.CustomTracingListenerPorts}, {"traceListenerPorts", c.TraceListenerPorts}} {
		for _, port := range splitList(p[1]) {
			if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
				return fmt.Errorf("--%s: %q is not a port", p[0], port)
			}
		}
	}
	switch {
	case c.Buffer == "":
		return fmt.Errorf("--buffer is required")
	case c.BufferMaxBytes < 0:
		return fmt.Errorf("--bufferMaxBytes must not be negative")
	case c.PushListenerMaxReceivedLength <= 0, c.PushListenerHTTPBufferSize <= 0, c.TraceListenerHTTPBufferSize <= 0:
		return fmt.Errorf("listener size limits must be positive")
	case c.PushFlushMaxPoints <= 0:
		return fmt.Errorf("--pushFlushMaxPoints must be positive")
	}
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
