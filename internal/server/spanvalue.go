package server

import (
	_ "embed"
	"slices"
	"sync"

	"github.com/klauspost/compress/s2"
)

// Span lines and span logs are stored S2-compressed against a dictionary
// of Envoy and Istio span text (spandict.txt: span lines and span logs as
// the proxy writes them for Envoy's Zipkin posts, from the mesh simulator
// and the captured kourier fixtures). Alone, an Envoy span line shrinks
// 1.4× with S2 and its span logs not at all; with the dictionary
// 4.7–5.4× and 2.4×, since most of a line is tag keys and values every
// span repeats. A packed value starts with valueS2Dict1; a value without
// it (a span line starts with its quoted name, span logs with '{', as
// stores written before this format hold them) is read as it is.
//
// The dictionary is part of the on-disk format: it must never change
// (TestSpanDictionaryIsFrozen). A better one would get its own marker,
// with this one kept for reading.
//
//go:embed spandict.txt
var spanDictV1 []byte

var spanDict = sync.OnceValue(func() *s2.Dict { return s2.MakeDict(spanDictV1, nil) })

// valueS2Dict1 marks a value packed with spanDictV1: a control byte, which
// starts no span line and no JSON.
const valueS2Dict1 = 0x01

// appendPacked appends v, packed, to arena and returns the arena and the
// packed value (a sub-slice of it). bbolt keeps a Put's value until the
// transaction commits, so the arena only grows while one is open: earlier
// values are never written over. v stays as it is where packing does not
// shrink it, unless it starts with the marker itself.
func appendPacked(arena, v []byte) (grown, packed []byte) {
	at := len(arena)
	room := 1 + s2.MaxEncodedLen(len(v))
	arena = slices.Grow(arena, room)[:at+room]
	arena[at] = valueS2Dict1
	enc := spanDict().Encode(arena[at+1:], v)
	if 1+len(enc) >= len(v) && (len(v) == 0 || v[0] != valueS2Dict1) {
		return arena[:at], v
	}
	return arena[:at+1+len(enc)], arena[at : at+1+len(enc)]
}

// unpacked returns v as it was before packing: v itself if it was not
// packed, else decoded into *scratch, which it keeps for the next call
// (v may be bbolt's memory, never to be written to).
func unpacked(scratch *[]byte, v []byte) ([]byte, error) {
	if len(v) == 0 || v[0] != valueS2Dict1 {
		return v, nil
	}
	out, err := spanDict().Decode((*scratch)[:cap(*scratch)], v[1:])
	if err == nil {
		*scratch = out
	}
	return out, err
}
