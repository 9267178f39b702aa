// Package deploytest checks deploy/: the plain manifests and the Helm chart
// decode strictly into their Kubernetes API types, agree with each other,
// and carry what the integration needs. It has only test files so that
// Helm's dependencies reach no binary.
package deploytest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// repoRoot is relative to this package's directory, where go test runs.
const repoRoot = "../.."

// kinds maps apiVersion/kind to a fresh typed object. A kind missing here
// fails the test: every object deploy/ ships must be one we can check.
var kinds = map[string]func() any{
	"v1/Namespace":             func() any { return &corev1.Namespace{} },
	"v1/ServiceAccount":        func() any { return &corev1.ServiceAccount{} },
	"v1/ConfigMap":             func() any { return &corev1.ConfigMap{} },
	"v1/Secret":                func() any { return &corev1.Secret{} },
	"v1/Service":               func() any { return &corev1.Service{} },
	"v1/PersistentVolumeClaim": func() any { return &corev1.PersistentVolumeClaim{} },
	"apps/v1/Deployment":       func() any { return &appsv1.Deployment{} },
	"apps/v1/DaemonSet":        func() any { return &appsv1.DaemonSet{} },
	"apps/v1/StatefulSet":      func() any { return &appsv1.StatefulSet{} },
	"rbac.authorization.k8s.io/v1/ClusterRole":        func() any { return &rbacv1.ClusterRole{} },
	"rbac.authorization.k8s.io/v1/ClusterRoleBinding": func() any { return &rbacv1.ClusterRoleBinding{} },
	"rbac.authorization.k8s.io/v1/Role":               func() any { return &rbacv1.Role{} },
	"rbac.authorization.k8s.io/v1/RoleBinding":        func() any { return &rbacv1.RoleBinding{} },
}

// clusterScoped kinds carry no namespace.
var clusterScoped = map[string]bool{"Namespace": true, "ClusterRole": true, "ClusterRoleBinding": true}

// object is one decoded document.
type object struct {
	where      string // file#index, for messages
	apiVersion string
	kind       string
	name       string
	namespace  string
	obj        any // pointer to the typed struct
}

func (o object) key() string { return o.kind + "/" + o.name }

// decodeStrict turns one YAML document into its typed object: duplicate keys
// (YAMLToJSONStrict) and fields the type lacks (DisallowUnknownFields) are
// errors, as are unknown kinds. nil, nil means an empty document.
func decodeStrict(doc []byte, where string) (*object, error) {
	js, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	if bytes.Equal(bytes.TrimSpace(js), []byte("null")) {
		return nil, nil // comments only
	}
	var meta struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(js, &meta); err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	newObj, ok := kinds[meta.APIVersion+"/"+meta.Kind]
	if !ok {
		return nil, fmt.Errorf("%s: unknown or unexpected kind %s/%s", where, meta.APIVersion, meta.Kind)
	}
	obj := newObj()
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(obj); err != nil {
		return nil, fmt.Errorf("%s (%s %s): %w", where, meta.Kind, meta.Metadata.Name, err)
	}
	if meta.Metadata.Name == "" {
		return nil, fmt.Errorf("%s: %s without metadata.name", where, meta.Kind)
	}
	if clusterScoped[meta.Kind] != (meta.Metadata.Namespace == "") {
		return nil, fmt.Errorf("%s: %s %s: namespace %q is wrong for its scope", where, meta.Kind, meta.Metadata.Name, meta.Metadata.Namespace)
	}
	return &object{where: where, apiVersion: meta.APIVersion, kind: meta.Kind,
		name: meta.Metadata.Name, namespace: meta.Metadata.Namespace, obj: obj}, nil
}

// decodeStream decodes every document of a multi-document YAML stream.
func decodeStream(data []byte, name string) ([]object, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var out []object
	var errs []error
	for i := 0; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		o, err := decodeStrict(doc, fmt.Sprintf("%s#%d", name, i))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if o != nil {
			out = append(out, *o)
		}
	}
	return out, errors.Join(errs...)
}

// loadDir decodes every *.yaml under dir (recursively when recurse is set),
// keyed by path relative to dir.
func loadDir(t *testing.T, dir string, recurse bool) []object {
	t.Helper()
	var objs []object
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != dir && !recurse {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".yaml") && !strings.HasSuffix(path, ".yml") {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(repoRoot, path)
		got, err := decodeStream(data, rel)
		if err != nil {
			t.Error(err)
		}
		objs = append(objs, got...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) == 0 {
		t.Fatalf("no objects under %s", dir)
	}
	return objs
}

// keys returns the sorted kind/name set, failing on duplicates.
func keys(t *testing.T, objs []object) []string {
	t.Helper()
	seen := map[string]string{}
	var out []string
	for _, o := range objs {
		k := o.key()
		if prev, dup := seen[k]; dup {
			t.Errorf("%s defined twice: %s and %s", k, prev, o.where)
		}
		seen[k] = o.where
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// find returns the object of that kind and name, failing the test if absent.
func find[T any](t *testing.T, objs []object, kind, name string) *T {
	t.Helper()
	for _, o := range objs {
		if o.kind == kind && o.name == name {
			v, ok := o.obj.(*T)
			if !ok {
				t.Fatalf("%s/%s is %T", kind, name, o.obj)
			}
			return v
		}
	}
	t.Fatalf("no %s/%s", kind, name)
	return nil
}

// podSpec returns the pod template of a workload, or nil for other kinds.
func podSpec(o object) *corev1.PodTemplateSpec {
	switch v := o.obj.(type) {
	case *appsv1.Deployment:
		return &v.Spec.Template
	case *appsv1.DaemonSet:
		return &v.Spec.Template
	case *appsv1.StatefulSet:
		return &v.Spec.Template
	}
	return nil
}
