package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshwave/meshwave/internal/collector"
)

func TestResolveShard(t *testing.T) {
	t.Setenv("HOSTNAME", "meshwave-collector-3")
	for _, tc := range []struct {
		shards, index, want int
		err                 string
	}{
		{shards: 0, index: -1, want: 0},
		{shards: 1, index: -1, want: 0},
		{shards: 4, index: -1, want: 3}, // StatefulSet ordinal
		{shards: 4, index: 1, want: 1},  // the flag wins
		{shards: 3, index: -1, err: "out of range"},
		{shards: 0, index: 2, err: "needs --shards"},
		{shards: -1, index: -1, err: "≥ 0"},
	} {
		ks := kubeSettings{shards: tc.shards, shardIndex: tc.index}
		err := resolveShard(&ks)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("shards %d index %d: err %v, want %q", tc.shards, tc.index, err, tc.err)
		case tc.err == "" && (err != nil || ks.shardIndex != tc.want):
			t.Errorf("shards %d index %d: got %d, %v; want %d", tc.shards, tc.index, ks.shardIndex, err, tc.want)
		}
	}
	t.Setenv("HOSTNAME", "meshwave-collector-7d9f-x2k")
	ks := kubeSettings{shards: 2, shardIndex: -1}
	if err := resolveShard(&ks); err == nil || !strings.Contains(err.Error(), "--shard-index") {
		t.Errorf("Deployment hostname: err %v, want a hint to give --shard-index", err)
	}
}

func TestRunKubeCollectorValidation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(path, []byte("sinks:\n- file: "+filepath.Join(t.TempDir(), "o.wf")+"\nsources:\n  prometheus_sources:\n  - url: http://127.0.0.1:1/metrics\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	sup, err := collector.NewSupervisor(path, collector.Options{Logger: log}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := runKubeCollector(context.Background(), sup, kubeSettings{agent: "daemon"}, log); err == nil || !strings.Contains(err.Error(), "want all, node, cluster or legacy") {
		t.Errorf("bad --agent: %v", err)
	}
	// In a cluster, election agents need the downward-API variables.
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
users: [{name: u, user: {}}]
current-context: c
`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("POD_NODE_NAME", "")
	t.Setenv("POD_NAMESPACE_NAME", "")
	err = runKubeCollector(context.Background(), sup, kubeSettings{agent: "all", kubeconfig: kubeconfig}, log)
	if err == nil || !strings.Contains(err.Error(), "POD_NAMESPACE_NAME") {
		t.Errorf("all agent without POD_* variables: %v", err)
	}
}
