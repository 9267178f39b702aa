// Package envoyjson writes JSON the way Envoy's Zipkin tracer does, for
// benchmarks and tests that must feed decoders what a mesh sends: no
// spaces but after a member's or element's comma, and every object's
// members in a fresh order (Envoy's JSON comes from protobuf maps; the
// captures in testdata/fixtures/zipkin show three orders for one span
// shape). Decoders that cache what they saw last must be measured on that.
package envoyjson

import (
	"bytes"
	"encoding/json"
	"maps"
	"math/rand/v2"
	"slices"
)

// WriteShuffled writes v (as encoding/json decodes into any, numbers best
// kept as json.Number) with every object's members in an order drawn
// from r.
func WriteShuffled(b *bytes.Buffer, r *rand.Rand, v any) {
	switch v := v.(type) {
	case map[string]any:
		keys := slices.Sorted(maps.Keys(v)) // a deterministic start for the seeded shuffle
		r.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteString(", ")
			}
			WriteShuffled(b, r, k)
			b.WriteByte(':')
			WriteShuffled(b, r, v[k])
		}
		b.WriteByte('}')
	case []any:
		b.WriteByte('[')
		for i, e := range v {
			if i > 0 {
				b.WriteString(", ")
			}
			WriteShuffled(b, r, e)
		}
		b.WriteByte(']')
	default:
		enc := json.NewEncoder(b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			panic(err) // only values decoded from JSON come here
		}
		b.Truncate(b.Len() - 1) // Encode's newline
	}
}

// Shuffle rewrites a JSON document with every object's members in an
// order drawn from a generator seeded with seed.
func Shuffle(doc []byte, seed uint64) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	var out bytes.Buffer
	WriteShuffled(&out, rand.New(rand.NewPCG(seed, seed)), v)
	return out.Bytes(), nil
}
