package wavefront

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// trickyValues exercise the escaping rules of README.md.
var trickyValues = []string{
	`plain`, `with space`, `a"b`, `"`, `\`, `a\`, `a\\`, `\"`, `\\"`, `a\nb`, "a\nb", "a\\\nb",
	`C:\new\dir`, `x=y`, `#3`, `'q'`, `é😀∆`, "tab\tin", `\n`, `\\n`, "\\\\\n", `end"`, `it\"s`,
}

func randomValue(r *rand.Rand) string {
	var b strings.Builder
	for range 1 + r.IntN(3) {
		b.WriteString(trickyValues[r.IntN(len(trickyValues))])
	}
	if v := strings.TrimSpace(b.String()); v != "" {
		return v
	}
	return "v"
}

const nameChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_,-./"

func randomName(r *rand.Rand) string {
	prefix := []string{"", "", "", "~", "∆", "Δ", "∆~", "Δ~"}[r.IntN(8)]
	b := []byte(prefix)
	for range 1 + r.IntN(12) {
		b = append(b, nameChars[r.IntN(len(nameChars))])
	}
	return string(b)
}

func randomFloat(r *rand.Rand) float64 {
	switch r.IntN(8) {
	case 0:
		return math.NaN()
	case 1:
		return math.Inf(1 - 2*r.IntN(2))
	case 2:
		return float64(r.IntN(1000))
	case 3:
		return math.Float64frombits(r.Uint64())
	}
	return r.NormFloat64() * math.Pow(10, float64(r.IntN(40)-20))
}

// randomPoint returns a valid point: it passes validation, its values are
// already trimmed (AppendPoint trims, as the reference SDK does) and it has
// no tag the decoder treats specially (source, host, tag).
func randomPoint(r *rand.Rand) Point {
	p := Point{
		Name:      []byte(randomName(r)),
		Value:     randomFloat(r),
		Timestamp: testNow.Unix() - int64(r.IntN(86400*300)),
		Source:    []byte(randomValue(r)),
	}
	if isDelta(p.Name) {
		p.Value = math.Abs(p.Value) + 1
		if math.IsNaN(p.Value) {
			p.Value = 1
		}
	}
	seen := map[string]bool{"source": true, "host": true, "tag": true}
	for range r.IntN(15) {
		k := randomName(r)
		if seen[k] {
			continue
		}
		seen[k] = true
		p.Tags = append(p.Tags, Tag{[]byte(k), []byte(randomValue(r))})
	}
	return p
}

func TestPointRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	d := newTestDecoder()
	d.LenientNonFinite = true // AppendValue writes +Inf
	var got Point
	for range 20000 {
		p := randomPoint(r)
		if err := d.limits().ValidatePoint(&p); err != nil {
			t.Fatalf("generator made an invalid point %s: %v", pointString(&p), err)
		}
		line := AppendPoint(nil, &p)
		if err := d.DecodePoint(line, &got); err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		if pointString(&got) != pointString(&p) {
			t.Fatalf("round trip of %s\n got %s\nwant %s", line, pointString(&got), pointString(&p))
		}
	}
}

func TestDistributionRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	d := newTestDecoder()
	d.LenientNonFinite = true
	var got Distribution
	for range 5000 {
		p := randomPoint(r)
		h := Distribution{
			Granularity: Granularity(r.IntN(3)),
			Name:        p.Name, Source: p.Source, Tags: p.Tags,
		}
		h.Timestamp = floorDiv(p.Timestamp*1000, h.Granularity.Millis()) * h.Granularity.Millis() / 1000
		for range 1 + r.IntN(5) {
			h.Centroids = append(h.Centroids, Centroid{Count: 1 + r.IntN(math.MaxInt32), Mean: randomFloat(r)})
		}
		line := AppendDistribution(nil, &h)
		if err := d.DecodeDistribution(line, &got); err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		if a, b := string(AppendDistribution(nil, &got)), string(line); a != b {
			t.Fatalf("round trip:\n got %s\nwant %s", a, b)
		}
		if tagsString(got.Tags) != tagsString(h.Tags) || string(got.Source) != string(h.Source) {
			t.Fatalf("round trip of %s: tags %s", line, tagsString(got.Tags))
		}
	}
}

func TestQuotedValueEncoding(t *testing.T) {
	for v, want := range map[string]string{
		`plain`:      `"plain"`,
		`C:\dir`:     `"C:\dir"`, // same bytes as the reference
		`it"s`:       `"it\"s"`,
		"a\nb":       `"a\nb"`,
		`a\nb`:       `"a\\nb"`,
		`a\`:         `"a\\"`,
		`a\"b`:       `"a\\\"b"`,
		"a\\\nb":     `"a\\\nb"`,
		` trimmed  `: `"trimmed"`,
	} {
		if got := string(appendQuotedValue(nil, []byte(v))); got != want {
			t.Errorf("%q: got %s, want %s", v, got, want)
		}
	}
}
