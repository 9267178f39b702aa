package deploytest

import (
	"strings"
	"testing"
)

// TestDecodeStrictRejects makes sure the decoder the other tests rely on
// fails on the mistakes it is there to catch.
func TestDecodeStrictRejects(t *testing.T) {
	for name, tc := range map[string]struct{ doc, want string }{
		"unknown field": {`apiVersion: v1
kind: Service
metadata: {name: s, namespace: ns}
spec: {ports: [{port: 1, targetPrt: 2}]}`, "unknown field"},
		"misplaced field": {`apiVersion: apps/v1
kind: Deployment
metadata: {name: d, namespace: ns}
spec: {replicas: 1, containers: []}`, "unknown field"},
		"unknown kind": {`apiVersion: v1
kind: Servic
metadata: {name: s, namespace: ns}`, "unknown or unexpected kind"},
		"duplicate key": {`apiVersion: v1
kind: ConfigMap
metadata: {name: c, namespace: ns}
data: {a: "1", a: "2"}`, "duplicate"},
		"wrong type": {`apiVersion: v1
kind: Service
metadata: {name: s, namespace: ns}
spec: {ports: [{port: "x"}]}`, "cannot unmarshal"},
		"no namespace": {`apiVersion: v1
kind: ConfigMap
metadata: {name: c}`, "namespace"},
	} {
		_, err := decodeStream([]byte(tc.doc), name)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", name, err, tc.want)
		}
	}
	if _, err := decodeStream([]byte("# only a comment\n---\n"), "empty"); err != nil {
		t.Errorf("comment-only documents: %v", err)
	}
}
