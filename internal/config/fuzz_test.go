package config

import "testing"

// FuzzParse checks that no input makes Parse panic and that a successful
// parse always yields a usable configuration. The seed corpus in
// testdata/fuzz/FuzzParse holds the fixtures and the §1.9 example.
func FuzzParse(f *testing.F) {
	f.Add([]byte(minimal))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, _, err := Parse(data, "fuzz.yaml")
		if err != nil {
			return
		}
		if len(c.Sinks) == 0 || c.FlushInterval < MinFlushInterval {
			t.Fatalf("accepted an invalid config: %+v", c)
		}
		Lint(c)
	})
}
