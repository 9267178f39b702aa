package suggest

import "testing"

func TestClosest(t *testing.T) {
	names := []string{"metricAllowList", "metricDenyList", "bearer_token", "bearer_token_file", "pushListenerPorts"}
	for key, want := range map[string]string{
		"metricAlowList":   "metricAllowList",
		"metricDenylist":   "metricDenyList",
		"bearer":           "bearer_token",
		"pushlistenerport": "pushListenerPorts",
		"zzz":              "",
	} {
		if got := Closest(key, names); got != want {
			t.Errorf("Closest(%q) = %q, want %q", key, got, want)
		}
	}
}
