package zipkin

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestDetect(t *testing.T) {
	for _, tc := range []struct {
		body string
		enc  Encoding
		err  string
	}{
		{`[{"traceId":"1","id":"1","localEndpoint":{}}]`, JSONV2, ""},
		{`[{"traceId":"1","id":"1","tags":{}}]`, JSONV2, ""},
		{`[{"traceId":"1","id":"1","binaryAnnotations":[]}]`, JSONV1, ""},
		{`[]`, JSONV1, ""},
		{"\x0a\x05abcde", Proto3, ""},
		{"\x0a\x00", 0, "expected json, proto3"},
		{"\x0c\x00\x00", 0, "thrift encoding is not supported"},
		{"\x0b\x00", 0, "thrift encoding is not supported"},
		{"\x80", 0, "expected json, proto3"},
		{`{"traceId":"1"}`, 0, "expected json, proto3"},
		{` [{}]`, 0, "expected json, proto3"},
		{``, 0, "empty body"},
	} {
		enc, err := Detect([]byte(tc.body))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Detect(%q) error = %v, want %q", tc.body, err, tc.err)
			}
			continue
		}
		if err != nil || enc != tc.enc {
			t.Errorf("Detect(%q) = %v, %v; want %v", tc.body, enc, err, tc.enc)
		}
	}
	if _, err := Detect([]byte{0x0c}); !errors.Is(err, ErrThrift) {
		t.Errorf("thrift error %v is not ErrThrift", err)
	}
}

// spanString renders the decoded fields compactly for table tests.
func spanString(s *Span) string {
	var b strings.Builder
	fmt.Fprintf(&b, "t=%s id=%s p=%s n=%q k=%s ts=%d d=%d", s.TraceID, s.ID, s.ParentID, s.Name, s.Kind, s.Timestamp, s.Duration)
	if s.Debug {
		b.WriteString(" debug")
	}
	if s.Shared {
		b.WriteString(" shared")
	}
	for _, e := range []*Endpoint{&s.LocalEndpoint, &s.RemoteEndpoint} {
		fmt.Fprintf(&b, " ep{%s %v %v %d}", e.ServiceName, e.IPv4, e.IPv6, e.Port)
	}
	for _, a := range s.Annotations {
		fmt.Fprintf(&b, " a%d=%q", a.Timestamp, a.Value)
	}
	for _, t := range s.Tags {
		fmt.Fprintf(&b, " %q=%q", t.Key, t.Value)
	}
	return b.String()
}

func TestDecodeV2Normalisation(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"traceId":"a","id":"b","parentId":"0"}`,
			`t=000000000000000a id=000000000000000b p= n="" k= ts=0 d=0 ep{ invalid IP invalid IP 0} ep{ invalid IP invalid IP 0}`},
		{`{"traceId":"00000000000000001234567890abcdef","id":"1234567890abcdef","parentId":"1234567890abcdef","name":""}`,
			`t=1234567890abcdef id=1234567890abcdef p= n="" k= ts=0 d=0 ep{ invalid IP invalid IP 0} ep{ invalid IP invalid IP 0}`},
		{`{"traceId":"123456789abcdef01","id":"1","name":"GET /X\u00c9","kind":"CLIENT","shared":true,"timestamp":-5,"duration":"7","debug":true}`,
			`t=000000000000000123456789abcdef01 id=0000000000000001 p= n="get /xé" k=CLIENT ts=0 d=7 debug ep{ invalid IP invalid IP 0} ep{ invalid IP invalid IP 0}`},
		{`{"traceId":"1","id":"1","kind":null,"name":null,"localEndpoint":{"serviceName":"Svc.NS","ipv4":"::ffff:10.0.0.1","port":-1},` +
			`"remoteEndpoint":{"ipv6":"2001:db8::1","ipv4":"bogus","port":65535,"x":[1,{"y":null}]}}`,
			`t=0000000000000001 id=0000000000000001 p= n="" k= ts=0 d=0 ep{svc.ns 10.0.0.1 invalid IP 0} ep{ invalid IP 2001:db8::1 65535}`},
		{`{"traceId":"1","id":"1","annotations":[{"timestamp":2,"value":"b"},{"timestamp":1,"value":"z"},{"value":"b","timestamp":2,"x":1},{"timestamp":2,"value":"a"}]}`,
			`t=0000000000000001 id=0000000000000001 p= n="" k= ts=0 d=0 ep{ invalid IP invalid IP 0} ep{ invalid IP invalid IP 0} a1="z" a2="a" a2="b"`},
		{`{"traceId":"1","id":"1","tags":{"b":"1","a":2.50,"b":"3","\u0063":"\ud83d\ude00\t\"","d":"\udc00x"}}`,
			`t=0000000000000001 id=0000000000000001 p= n="" k= ts=0 d=0 ep{ invalid IP invalid IP 0} ep{ invalid IP invalid IP 0} "a"="2.50" "b"="3" "c"="😀\t\"" "d"="�x"`},
		// Every optional member null, right after the colon or after
		// whitespace: ignored, as an unknown member's null is skipped.
		{`{"traceId":"1", "id":"2", "parentId":null, "name": null, "kind":null, "timestamp":null, "duration":` + "\n" + `null, "localEndpoint":null,` +
			`"remoteEndpoint":{"serviceName":null, "ipv4": null, "ipv6":null, "port":null}, "annotations":null, "tags":null, "debug":null, "shared":null, "x":null}`,
			`t=0000000000000001 id=0000000000000002 p= n="" k= ts=0 d=0 ep{ invalid IP invalid IP 0} ep{ invalid IP invalid IP 0}`},
		{` { "traceId" : "1" , "id" : "1" , "timestamp" : 1.5e3 , "unknown" : [ true , false , null , -0.1e-2 , "\/" ] } `,
			`t=0000000000000001 id=0000000000000001 p= n="" k= ts=1500 d=0 ep{ invalid IP invalid IP 0} ep{ invalid IP invalid IP 0}`},
	} {
		spans, err := decodeAs(&Decoder{}, []byte("["+tc.in+"]"), JSONV2)
		if err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		if got := spanString(&spans[0]); got != tc.want {
			t.Errorf("%s\n got %s\nwant %s", tc.in, got, tc.want)
		}
	}
}

func TestDecodeV2Errors(t *testing.T) {
	for _, tc := range []struct{ in, err string }{
		{`{"id":"1"}`, "missing traceId"},
		{`{"traceId":"1"}`, "missing id"},
		{`{}`, "missing traceId and id"},
		{`{"traceId":"ABC","id":"1"}`, "lower-hex"},
		{`{"traceId":"1","id":"0x1"}`, "lower-hex"},
		{`{"traceId":"1","id":"1","parentId":"F"}`, "lower-hex"},
		{`{"traceId":"000","id":"1"}`, "traceId is all zeros"},
		{`{"traceId":"1","id":"0000"}`, "id is all zeros"},
		{`{"traceId":"123456789012345","id":"1"}`, "15 characters"},
		{`{"traceId":"123456789012345678901234567890123","id":"1"}`, "longer than 32"},
		{`{"traceId":"1","id":"12345678901234567"}`, "longer than 16"},
		{`{"traceId":"1","id":"1","parentId":""}`, "parentId is empty"},
		{`{"traceId":null,"id":"1"}`, "expected a string"},
		{`{"traceId":"1","id":"1","kind":"server"}`, `unknown kind "server"`},
		{`{"traceId":"1","id":"1","kind":"BOTH"}`, "unknown kind"},
		{`{"traceId":"1","id":"1","tags":{"a":null}}`, `value of tag "a" must be a string or number`},
		{`{"traceId":"1","id":"1","tags":{"a":true}}`, `value of tag "a"`},
		{`{"traceId":"1","id":"1","tags":{"a":{}}}`, `value of tag "a"`},
		{`{"traceId":"1","id":"1","annotations":[{"timestamp":1}]}`, "annotation needs"},
		{`{"traceId":"1","id":"1","annotations":[{"value":"x"}]}`, "annotation needs"},
		{`{"traceId":"1","id":"1","timestamp":1.5}`, "64-bit integer"},
		{`{"traceId":"1","id":"1","duration":99999999999999999999}`, "64-bit integer"},
		{`{"traceId":"1","id":"1","debug":"true"}`, "true or false"},
		{`{"traceId":"1","id":"1","localEndpoint":{"port":65536}}`, "invalid port 65536"},
		{`{"traceId":"1","id":"1",}`, "malformed JSON"},
		{`{"traceId":"1","id":"1"`, "malformed JSON"},
		{`{"traceId":"1","id":"1","x":"\q"}`, "invalid escape"},
		{`{"traceId":"1","id":"1","name":"\u12"}`, "invalid \\u escape"},
		{`{"traceId":"1","id":"1","x":01}`, "malformed JSON"},
		{`{"traceId":"1","id":"1","x":` + strings.Repeat("[", 2000) + strings.Repeat("]", 2000) + `}`, "nesting too deep"},
	} {
		_, err := decodeAs(&Decoder{}, []byte("["+tc.in+"]"), JSONV2)
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%.80s: error %v, want %q", tc.in, err, tc.err)
		}
	}
	for _, body := range []string{`[`, `[{"traceId":"1","id":"1"}] x`, `[{"traceId":"1","id":"1"},]`, `[1]`} {
		if _, err := decodeAs(&Decoder{}, []byte(body), JSONV2); err == nil {
			t.Errorf("%s: no error", body)
		}
	}
}

// One bad span fails the batch before any span reaches the callback.
func TestDecodeAllOrNothing(t *testing.T) {
	body := `[{"traceId":"1","id":"1"},{"traceId":"1","id":"2"},{"traceId":"1","id":"X"}]`
	for _, limit := range []int{0, 1} {
		d := Decoder{maxBuffered: limit}
		calls := 0
		err := d.Decode([]byte(body), JSONV2, func(*Span) error { calls++; return nil })
		var se *SpanError
		if !errors.As(err, &se) || se.Index != 2 || calls != 0 {
			t.Errorf("limit %d: err %v, %d calls", limit, err, calls)
		}
	}
	stop := errors.New("stop")
	d := Decoder{}
	if err := d.Decode([]byte(`[{"traceId":"1","id":"1"}]`), JSONV2, func(*Span) error { return stop }); err != stop {
		t.Errorf("callback error: %v", err)
	}
}

// The streaming fallback for huge batches yields exactly what buffering
// does.
func TestDecodeStreamingFallback(t *testing.T) {
	var b strings.Builder
	b.WriteString("[")
	for i := range 50 {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"traceId":"%x","id":"%x","name":"N\u00e9%d","tags":{"z":"%d","a":"\"x\""},"annotations":[{"timestamp":%d,"value":"v"}]}`, i+1, i+100, i, i, i)
	}
	b.WriteString("]")
	body := []byte(b.String())
	want, err := decodeAs(&Decoder{}, body, JSONV2)
	if err != nil {
		t.Fatal(err)
	}
	d := Decoder{maxBuffered: 10}
	for range 2 { // and again with warm buffers
		got, err := decodeAs(&d, body, JSONV2)
		if err != nil || len(got) != len(want) {
			t.Fatalf("%d spans, %v", len(got), err)
		}
		for i := range got {
			if g, w := spanString(&got[i]), spanString(&want[i]); g != w {
				t.Fatalf("span %d\n got %s\nwant %s", i, g, w)
			}
		}
	}
}

func TestDecodeV2ZeroAllocs(t *testing.T) {
	body := []byte(istioBody)
	var d Decoder
	n := 0
	fn := func(*Span) error { n++; return nil }
	if err := d.Decode(body, JSONV2, fn); err != nil {
		t.Fatal(err)
	}
	if a := testing.AllocsPerRun(20, func() { _ = d.Decode(body, JSONV2, fn) }); a != 0 {
		t.Errorf("%v allocations per decode of a warm Decoder", a)
	}
}

// sortTags, and placeTags through the key ids (as JSON v1 and proto3
// tags take it), against a map and a sort, with keys that share long
// prefixes or differ only by trailing NULs, on both sides of the
// insertion-sort size, and with more different keys in a span than the
// key table holds, which placeTags sorts.
func TestSortTags(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	keys := []string{"", "a", "a\x00", "a\x00\x00", "abcdefgh", "abcdefghi", "abcdefghj", "abcdefgh\x00", "b", "upstream_cluster", "upstream_cluster.name", "\xff", strings.Repeat("k", 255), strings.Repeat("k", 256)}
	for i := range 2 * maxKeyIDs {
		keys = append(keys, "many."+strconv.Itoa(i))
	}
	var d Decoder
	seqKeys := map[uint64]string{}
	var prev []string
	for n := range 4000 {
		// Half the time the previous key sequence again, as tracers send.
		var ks []string
		if n%2 == 0 {
			pool := keys[:14] // the keys above
			if n%20 == 0 {
				pool = keys
			}
			for range r.IntN(2 * maxInsertionSort) {
				ks = append(ks, pool[r.IntN(len(pool))])
			}
			if n%40 == 0 {
				ks = append(ks, keys[14:]...) // all of the many keys
			}
			prev = ks
		} else {
			ks = prev
		}
		var in []Tag
		last := map[string]string{}
		for i, k := range ks {
			v := strconv.Itoa(r.IntN(1000)) + "/" + strconv.Itoa(i)
			in = append(in, Tag{Key: []byte(k), Value: []byte(v)})
			last[k] = v
		}
		var want []string
		for _, k := range slices.Sorted(maps.Keys(last)) {
			want = append(want, k+"="+last[k])
		}
		var s Span
		d.reset()
		d.beginSpan(&s)
		d.tagIn = append(d.tagIn, in...)
		seq := d.placeTags()
		// A key sequence number always stands for the same sorted keys.
		if k := strings.Join(slices.Sorted(maps.Keys(last)), "\x00"); seq != 0 {
			if old, ok := seqKeys[seq]; ok && old != k {
				t.Fatalf("key sequence %d is both %q and %q", seq, old, k)
			}
			seqKeys[seq] = k
		}
		for _, sorted := range [][]Tag{in[:sortTags(in)], d.tags} {
			var got []string
			for _, tag := range sorted {
				got = append(got, string(tag.Key)+"="+string(tag.Value))
			}
			if !slices.Equal(got, want) {
				t.Fatalf("\n got %q\nwant %q", got, want)
			}
		}
	}
}

// The JSON v2 reader places tags by their keys' ids as it reads them:
// spans whose tags need the slow path (escapes, numbers), come in two
// "tags" members, or have long keys must come out sorted, with the last
// value of a key. The same sorted keys in any order, or with duplicates,
// share a key sequence number.
func TestTagKeysCollectedWhileReading(t *testing.T) {
	long := strings.Repeat("x", 256)
	spans := []string{
		`{"traceId":"1","id":"2","tags":{"b":"1","a":"2","c":"3"}}`,
		`{"traceId":"1","id":"3","tags":{"b":"1","a":"2","c":"3"}}`,
		`{"traceId":"1","id":"4","tags":{"b":1,"\u0061":"x\n","c":"3","a":"last"}}`,
		`{"traceId":"1","id":"5","tags":{"z":"1","a":"2"},"tags":{"m":"3","a":"4"}}`,
		`{"traceId":"1","id":"6","tags":{"` + long + `":"1","a":"2"}}`,
		`{"traceId":"1","id":"7","tags":{"` + long + `":"1","a":"2"}}`,
		`{"traceId":"1","id":"8","tags":{"c":"3","b":"1","a":"2"}}`,
		`{"traceId":"1","id":"9","tags":{"a":"2","c":"3","b":"1","d":"4"}}`,
	}
	want := [][]string{
		{"a=2", "b=1", "c=3"},
		{"a=2", "b=1", "c=3"},
		{"a=last", "b=1", "c=3"},
		{"a=4", "m=3", "z=1"},
		{"a=2", long + "=1"},
		{"a=2", long + "=1"},
		{"a=2", "b=1", "c=3"},
		{"a=2", "b=1", "c=3", "d=4"},
	}
	body := []byte("[" + strings.Join(spans, ",") + "]")
	var d Decoder
	for round := range 2 {
		var i int
		var seqs []uint64
		err := d.Decode(body, JSONV2, func(s *Span) error {
			var got []string
			for _, tag := range s.Tags {
				got = append(got, string(tag.Key)+"="+string(tag.Value))
			}
			if !slices.Equal(got, want[i]) {
				t.Errorf("round %d, span %d: tags %q, want %q", round, i, got, want[i])
			}
			seqs = append(seqs, s.keySeq)
			i++
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		// Equal sorted keys share a number, others do not, however long
		// the keys.
		if seqs[0] == 0 || seqs[1] != seqs[0] || seqs[2] != seqs[0] || seqs[3] == 0 || seqs[3] == seqs[0] ||
			seqs[4] == 0 || seqs[5] != seqs[4] || seqs[4] == seqs[0] || seqs[4] == seqs[3] ||
			seqs[6] != seqs[0] || seqs[7] == 0 || seqs[7] == seqs[0] || seqs[7] == seqs[3] || seqs[7] == seqs[4] {
			t.Errorf("round %d: key sequence numbers %v", round, seqs)
		}
	}
}

// parseIP's dotted-quad path against netip.ParseAddr (parseIPSlow), on
// strings of digits and dots around the limits: 255, leading zeros,
// missing and extra parts.
func TestParseIP(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 4))
	alphabet := []byte("0123456789.0.1.2.25..5:a")
	check := func(b []byte) {
		if got, want := parseIP(b), parseIPSlow(b); got != want {
			t.Fatalf("parseIP(%q) = %v, want %v", b, got, want)
		}
	}
	for _, s := range []string{"10.244.1.3", "255.255.255.255", "256.1.1.1", "01.2.3.4", "0.0.0.0", "1.2.3", "1.2.3.4.", "1.2.3.4.5", "1..2.3", "1.2.3.04", "1.2.3.400", "::ffff:1.2.3.4"} {
		check([]byte(s))
	}
	for range 100000 {
		b := make([]byte, r.IntN(18))
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		check(b)
	}
}

// A key longer than 24 bytes before short ones: it once took more of the
// room that the key encoding of the arrival-order cache had grown for
// short keys, which then copied past it (this body crashed the decoder);
// such keys now get an id of their own, compared byte by byte.
func TestLongTagKeyBeforeShortOnes(t *testing.T) {
	for _, n := range []int{25, 39, 100, 255} {
		long := strings.Repeat("0", n)
		body := `[{"traceId":"1","id":"1","tags":{"` + long + `":"0","0000000000000000":"1","b":"2"}}]`
		var got []string
		err := (&Decoder{}).Decode([]byte(body), JSONV2, func(s *Span) error {
			for _, tag := range s.Tags {
				got = append(got, string(tag.Key)+"="+string(tag.Value))
			}
			return nil
		})
		want := []string{"0000000000000000=1", long + "=0", "b=2"}
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("key of %d bytes: tags %q, %v; want %q", n, got, err, want)
		}
	}
}

// The openers the readers take without a call ('{' of a span, endpoint,
// tags object and annotation, '[' of annotations) still accept
// whitespace before them, through expectSlow, and report anything else.
func TestDecodeV2OpenersAfterWhitespace(t *testing.T) {
	const compact = `[{"traceId":"1","id":"2","localEndpoint":{"serviceName":"a","ipv4":"10.0.0.1"},` +
		`"tags":{"k":"v"},"annotations":[{"timestamp":1,"value":"x"}]}]`
	want := spanString(&mustDecode(t, compact)[0])
	spaced := `[ 	{"traceId":"1","id":"2","localEndpoint":
{"serviceName":"a","ipv4":"10.0.0.1"},"tags": {"k":"v"},"annotations": [ {"timestamp":1,"value":"x"}]}]`
	if got := spanString(&mustDecode(t, spaced)[0]); got != want {
		t.Errorf("with whitespace: %s, want %s", got, want)
	}
	for _, tc := range []struct{ in, err string }{
		{`[1]`, `expected '{', found '1'`},
		{`[{"traceId":"1","id":"2","localEndpoint":["a"]}]`, `expected '{', found '['`},
		{`[{"traceId":"1","id":"2","tags":"k"}]`, `expected '{', found '"'`},
		{`[{"traceId":"1","id":"2","annotations":{}}]`, `expected '[', found '{'`},
		{`[{"traceId":"1","id":"2","annotations":[1]}]`, `expected '{', found '1'`},
		{`[{"traceId":"1","id":"2","annotations": `, `unexpected end of input, expected '['`},
	} {
		if _, err := decodeAs(&Decoder{}, []byte(tc.in), JSONV2); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s: error %v, want %q", tc.in, err, tc.err)
		}
	}
}

// ipCache.parse is parseIP for any text: texts of every length around
// the cached 1 to 16 bytes, drawn from a few so that they repeat and
// share slots, with bytes that differ only in the middle, zero bytes,
// lengths that differ only by trailing zero bytes, and a text of 8
// bytes twice, whose first and last eight bytes are the single one's.
func TestIPCache(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	var c ipCache
	pool := []string{"", "1.2.3.4", "1.2.3.4\x00", "10.244.0.12", "10.244.0.25", "10.244.1.12", "10.245.0.12",
		"192.168.100.254", "255.255.255.255", "255.255.255.2550", "1.2.3.45", "1.2.3.451.2.3.45", "::1", "::ffff:1.2.3.4", "2001:db8::1", "bogus", "\x00"}
	for x := 10; x < 100; x++ { // one length and first word, 90 last words in 16 slots
		pool = append(pool, "10.244.0."+strconv.Itoa(x))
	}
	alphabet := []byte("0123456789.:af\x00")
	var recent [8]string // random texts, seen again later
	for range 50000 {
		var b []byte
		switch r.IntN(3) {
		case 0:
			b = []byte(pool[r.IntN(len(pool))])
		case 1:
			b = []byte(recent[r.IntN(len(recent))])
		default:
			b = make([]byte, r.IntN(20))
			for i := range b {
				b[i] = alphabet[r.IntN(len(alphabet))]
			}
			recent[r.IntN(len(recent))] = string(b)
		}
		if got, want := c.parse(b), parseIP(b); got != want {
			t.Fatalf("parse(%q) = %v, want %v", b, got, want)
		}
	}
}

// FuzzReadEndpoint checks readEndpointFast against readEndpointGeneral:
// whatever the fast reader accepts, the general one must read to the
// same place as the same endpoint, and what it declines it must leave
// unread. Seeds: the forms tracers write, in several orders, and the
// cases the fast reader leaves to the general one (duplicates, nulls,
// whitespace, escapes, ports out of range or with a leading zero,
// unknown members, both address members holding IPv4 addresses).
func FuzzReadEndpoint(f *testing.F) {
	for _, s := range []string{
		`{"serviceName":"productpage.default", "ipv4":"10.1.2.3", "port":9080}, `,
		`{"port":0,"ipv6":"::1","serviceName":"A"}]`,
		`{"ipv4":"1.2.3.4", "ipv6":"5.6.7.8"}}`,
		`{"ipv6":"::ffff:1.2.3.4", "ipv4":"::1"}}`,
		`{}, `,
		`{"port":65535}, {"port":65536}, {"port":065}, {"port":-1}, {"port":1.5}, {"port":123456}`,
		`{"serviceName":"X", "serviceName":"y"}, `,
		`{"serviceName":null, "ipv4":""}, `,
		`{"serviceName":"\u00e9", "ipv4" : "1.2.3.4"}, `,
		`{"serviceName":"x","other":1}, `,
		`{"port":80}`,
	} {
		f.Add([]byte(s))
	}
	atPageEnd := fuzzAtPageEnd(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		body = atPageEnd(body)
		var fast, general Decoder
		lf, lg := newLexer(body, &fast), newLexer(body, &general)
		var ef, eg Endpoint
		if !fast.readEndpointFast(&lf, &ef) {
			if lf.i != 0 || ef.ServiceName != nil || ef.IPv4.IsValid() || ef.IPv6.IsValid() || ef.Port != 0 {
				t.Fatalf("declined %q after reading to %d", body, lf.i)
			}
			return
		}
		if err := general.readEndpointGeneral(&lg, &eg); err != nil {
			t.Fatalf("%q: the fast reader accepted, the general one: %v", body, err)
		}
		if lf.i != lg.i || !bytes.Equal(ef.ServiceName, eg.ServiceName) || (ef.ServiceName == nil) != (eg.ServiceName == nil) ||
			ef.IPv4 != eg.IPv4 || ef.IPv6 != eg.IPv6 || ef.Port != eg.Port {
			t.Fatalf("%q: fast %+v to %d, general %+v to %d", body, ef, lf.i, eg, lg.i)
		}
	})
}

// FuzzReadAnnotations checks readAnnotationsFast against
// readAnnotationsGeneral as FuzzReadEndpoint checks the endpoint readers:
// whatever list the fast reader accepts, the general one must read to
// the same place as the same annotations. Seeds: lists as tracers write
// them, in both member orders, and the cases the general reader takes
// (a member missing or repeated, quoted or fractional timestamps,
// whitespace, null, escapes, unknown members).
func FuzzReadAnnotations(f *testing.F) {
	for _, s := range []string{
		`[{"timestamp":1700000000123456, "value":"ws"}, {"value":"wr", "timestamp":1700000000123999}], `,
		`[{"value":"cs","timestamp":0},{"timestamp":12,"value":""}]}`,
		`[], `,
		`[{"timestamp":1, "value":"a", "timestamp":2}], `,
		`[{"timestamp":"1", "value":"a"}, {"timestamp":1.0, "value":"a"}, {"timestamp":01, "value":"a"}], `,
		`[{"timestamp":1, "value":null}, {"timestamp":1, "value":"\u00e9"}, { "timestamp":1, "value":"a"}], `,
		`[{"timestamp":1234567890123456789, "value":"a"}, {"timestamp":-1, "value":"a"}], `,
		`[{"timestamp":1, "other":"a"}], `,
		`[{"timestamp":1, "value":"a"}]`,
	} {
		f.Add([]byte(s))
	}
	atPageEnd := fuzzAtPageEnd(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		body = atPageEnd(body)
		var fast, general Decoder
		lf, lg := newLexer(body, &fast), newLexer(body, &general)
		if !fast.readAnnotationsFast(&lf) {
			return
		}
		if err := general.readAnnotationsGeneral(&lg); err != nil {
			t.Fatalf("%q: the fast reader accepted, the general one: %v", body, err)
		}
		if lf.i != lg.i || len(fast.anns) != len(general.anns) {
			t.Fatalf("%q: fast %d annotations to %d, general %d to %d", body, len(fast.anns), lf.i, len(general.anns), lg.i)
		}
		for i, a := range fast.anns {
			if g := general.anns[i]; a.Timestamp != g.Timestamp || !bytes.Equal(a.Value, g.Value) {
				t.Fatalf("%q: annotation %d: fast %d %q, general %d %q", body, i, a.Timestamp, a.Value, g.Timestamp, g.Value)
			}
		}
	})
}
