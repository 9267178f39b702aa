package proxy

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseArgs(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "wavefront.conf")
	err := os.WriteFile(conf, []byte(`# reference wavefront.conf
server=https://example.wavefront.com/api/
token = from-file
pushListenerPorts=2878,2879
traceZipkinListenerPorts=9411
buffer=/tmp/wf-buffer
pushFlushInterval=500
ephemeral=true

prefix = file
`), 0o644)
	if err != nil {
		t.Fatal(err)
	}

	cfg, err := ParseArgs([]string{"-f", conf, "--token", "from-flag", "--pushFlushMaxPoints=1000", "--forwardNonFinite", "--bufferMaxBytes", "1048576", "--listenerIdleTimeout=2m"})
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultConfig()
	want.Server = "https://example.wavefront.com/api/"
	want.Token = "from-flag" // the command line wins over the file
	want.PushListenerPorts = "2878,2879"
	want.TraceZipkinListenerPorts = "9411"
	want.Buffer = "/tmp/wf-buffer"
	want.PushFlushInterval = 500 * time.Millisecond // plain numbers are milliseconds, as in the reference
	want.EphemeralCheckin = true
	want.Prefix = "file"
	want.PushFlushMaxPoints = 1000
	want.ForwardNonFinite = true
	want.BufferMaxBytes = 1 << 20
	want.IdleTimeout = 2 * time.Minute
	if cfg != want {
		t.Errorf("got  %+v\nwant %+v", cfg, want)
	}

	// Flag order does not matter: -f after a flag still loses to it.
	cfg, err = ParseArgs([]string{"--token=x", "--config", conf})
	if err != nil || cfg.Token != "x" {
		t.Errorf("--config after --token: %q, %v", cfg.Token, err)
	}

	// Booleans: bare, =true/=false, and a bare one followed by another flag.
	for _, c := range []struct {
		args []string
		want bool
	}{
		{[]string{"--forwardNonFinite"}, true},
		{[]string{"--forwardNonFinite=false"}, false},
		{[]string{"--forwardNonFinite", "--ephemeral"}, true},
		{[]string{"--forwardNonFinite", "false"}, false},
	} {
		cfg, err := ParseArgs(append([]string{"--server", "http://b", "--buffer", dir}, c.args...))
		if err != nil || cfg.ForwardNonFinite != c.want {
			t.Errorf("%q: %v, %v", c.args, cfg.ForwardNonFinite, err)
		}
	}
}

func TestParseArgsErrors(t *testing.T) {
	dir := t.TempDir()
	badConf := filepath.Join(dir, "bad.conf")
	os.WriteFile(badConf, []byte("server=http://b\npushListenerPort=2878\n"), 0o644)
	noEq := filepath.Join(dir, "noeq.conf")
	os.WriteFile(noEq, []byte("server http://b\n"), 0o644)
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"--server", "http://b", "--pushListenerPort", "2878"}, []string{`unknown option "pushListenerPort"`, "did you mean pushListenerPorts?"}},
		{[]string{"--server", "http://b", "--tokn=x"}, []string{`"tokn"`, "did you mean token?"}},
		{[]string{"--server", "http://b", "--completelyDifferentThing", "1"}, []string{`unknown option "completelyDifferentThing"`}},
		{[]string{"-f", badConf}, []string{"bad.conf:2", `"pushListenerPort"`, "did you mean pushListenerPorts?"}},
		{[]string{"-f", noEq}, []string{"noeq.conf:1", "key=value"}},
		{[]string{"--server", "http://b", "--pushFlushMaxPoints", "many"}, []string{"--pushFlushMaxPoints"}},
		{[]string{"--server", "http://b", "--pushListenerPorts", "99999"}, []string{"pushListenerPorts", "not a port"}},
		{[]string{"--server", "http://b", "--token"}, []string{"--token needs a value"}},
		{[]string{"--pushListenerPorts", "2878"}, []string{"--server is required"}},
		{[]string{"stray"}, []string{`unexpected argument "stray"`}},
	} {
		_, err := ParseArgs(c.args)
		if err == nil {
			t.Errorf("%q: no error", c.args)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%q: error %q lacks %q", c.args, err, w)
			}
		}
	}
	if _, err := ParseArgs([]string{"--help"}); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("--help: %v", err)
	}
	var sb strings.Builder
	Usage(&sb)
	for _, opt := range []string{"--pushListenerPorts", "--traceZipkinListenerPorts", "--preprocessorConfigFile", "--pushListenerMaxReceivedLength"} {
		if !strings.Contains(sb.String(), opt) {
			t.Errorf("usage lacks %s", opt)
		}
	}
}
