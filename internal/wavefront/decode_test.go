package wavefront

import (
	"math"
	"slices"
	"strings"
	"testing"
)

// TestWorkedExamples covers every example of proxy.md §2.9.
func TestWorkedExamples(t *testing.T) {
	tests := []struct {
		line   string
		want   string // canonical AppendPoint output, or ""
		ms     int64
		src    string
		tags   string // sorted, when want is ""
		code   string
		reason string // substring of the error reason
	}{
		{line: `cpu.load 0.75 1712000000 host=web-1 env=prod`, want: `"cpu.load" 0.75 1712000000 source="web-1" "env"="prod"` + "\n"},
		{line: `cpu.load 1 1712000000.25 source=a`, ms: 1712000000250, want: `"cpu.load" 1 1712000000 source="a"` + "\n"},
		{line: `req.count 5 1712000000123 source=a host=b tag=x`, ms: 1712000000123, src: "a", tags: `"_host"="b" "_tag"="x"`},
		{line: `req.count 5 1712000000123456`, ms: 1712000000123, src: "app-7"},
		{line: `req.count 5 1712000000123456789 source=a`, ms: 1712000000123, src: "a"},
		{line: `"disk.used" 12 source="db 1" "mount"="/var/lib"`, src: "db 1", tags: `"mount"="/var/lib"`},
		{line: `disk used 12 source=a`, code: CodeParse, reason: `Invalid value: "used"`},
		{line: `"disk used" 12 source=a`, code: CodeNameChars},
		{line: `jobs 1 source=a "team name"=x`, code: CodeTagKeyChars},
		{line: `jobs 1 source=a team=""`, code: CodeTagValueEmpty},
		{line: `∆jobs.done 3 source=w1`, src: "w1"},
		{line: `∆jobs.done 0 source=w1`, code: CodeDelta},
		{line: `m 1 9k=v source=a`, code: CodeParse, reason: "looks like a tag key"},
		{line: `temp +Inf source=a`, code: CodeParse, reason: `Invalid value: "+Inf"`},
		{line: `q 1 source=a k="it\"s"`, want: `"q" 1 1712000100 source="a" "k"="it\"s"` + "\n"},
	}
	d := newTestDecoder()
	for _, tc := range tests {
		var p Point
		err := d.DecodePoint([]byte(tc.line), &p)
		if tc.code != "" {
			if codeOf(err) != tc.code || !strings.Contains(err.Error(), tc.reason) {
				t.Errorf("%s: err = %v, want %s containing %q", tc.line, err, tc.code, tc.reason)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.line, err)
			continue
		}
		if tc.want != "" {
			if got := string(AppendPoint(nil, &p)); got != tc.want {
				t.Errorf("%s:\n got %s\nwant %s", tc.line, got, tc.want)
			}
		}
		if tc.ms != 0 && d.TimestampMillis() != tc.ms {
			t.Errorf("%s: ms = %d, want %d", tc.line, d.TimestampMillis(), tc.ms)
		}
		if tc.src != "" && string(p.Source) != tc.src {
			t.Errorf("%s: source = %q, want %q", tc.line, p.Source, tc.src)
		}
		if tc.tags != "" && tagsString(p.Tags) != tc.tags {
			t.Errorf("%s: tags = %s, want %s", tc.line, tagsString(p.Tags), tc.tags)
		}
	}
}

func TestValueSyntax(t *testing.T) {
	ok := map[string]float64{
		"93": 93, "-0.5": -0.5, "+5": 5, ".5": 0.5, "1.": 1, "1.5e3": 1500, "2E-4": 2e-4,
		"Infinity": math.Inf(1), "+Infinity": math.Inf(1), "-Infinity": math.Inf(-1),
		"1.5d": 1.5, "2f": 2, "3D": 3, "4F": 4, "0x1.8p1": 3, "0X10P-4": 1, "-0x.8p1": -1,
		"1e400": math.Inf(1), "1e-400": 0, "007": 7, "1.e2": 100,
	}
	for s, want := range ok {
		got, valid := parseJavaDouble([]byte(s))
		if !valid || got != want {
			t.Errorf("parseJavaDouble(%q) = %v, %v; want %v", s, got, valid, want)
		}
	}
	if v, valid := parseJavaDouble([]byte("NaN")); !valid || !math.IsNaN(v) {
		t.Errorf("NaN: %v %v", v, valid)
	}
	for _, s := range []string{"+Inf", "Inf", "inf", "infinity", "0x10", "1_000", "", "+", ".", "e5", "1e", "1e+",
		"0x", "0xp1", "1.5dd", "NaNd", "nan", "1,5", "0x1.8", "1 2", "--1", "1e5.5"} {
		if v, valid := parseJavaDouble([]byte(s)); valid {
			t.Errorf("parseJavaDouble(%q) = %v, want rejection", s, v)
		}
	}
	lenient := map[string]float64{"+Inf": math.Inf(1), "-inf": math.Inf(-1), "INF": math.Inf(1), "infinity": math.Inf(1)}
	d := newTestDecoder()
	d.LenientNonFinite = true
	for s, want := range lenient {
		if got, valid := d.parseValue([]byte(s)); !valid || got != want {
			t.Errorf("lenient %q = %v %v", s, got, valid)
		}
	}
	if v, valid := d.parseValue([]byte("nAn")); !valid || !math.IsNaN(v) {
		t.Errorf("lenient nAn: %v %v", v, valid)
	}
}

func TestTimestampUnits(t *testing.T) {
	for _, tc := range []struct {
		ts string
		ms int64
	}{
		{"1712000000", 1712000000000},
		{"1712000000.9999", 1712000000999},
		{"1712000000123", 1712000000123},
		{"1712000000123.7", 1712000000123},
		{"1712000000123456", 1712000000123},
		{"1712000000123456789", 1712000000123},
		{"0x1.8p0", 1500},
	} {
		d := &Decoder{Limits: &Limits{MaxSourceLength: 9, MaxNameLength: 9}}
		var p Point
		if err := d.ParsePoint([]byte("m 1 "+tc.ts), &p); err != nil {
			t.Fatal(err)
		}
		if d.TimestampMillis() != tc.ms || p.Timestamp != tc.ms/1000 {
			t.Errorf("%s: ms %d ts %d, want %d", tc.ts, d.TimestampMillis(), p.Timestamp, tc.ms)
		}
	}
}

func TestTokenizer(t *testing.T) {
	tests := []struct {
		line string
		toks []string // quoted tokens are written «x»
		err  string
	}{
		{line: `a b=c`, toks: []string{"a", "b", "=", "c"}},
		{line: "a\tb \r c\rd\r\n", toks: []string{"a", "b", "c\rd"}},
		{line: `#3 a#b`, toks: []string{"#", "3", "a#b"}},
		{line: `"a"b 'c d'e`, toks: []string{"«a»", "b", "«c d»", "e"}},
		{line: `a"b'c`, toks: []string{`a"b'c`}},
		{line: `"it\"s" 'it\'s' "a'b"`, toks: []string{`«it"s»`, "«it's»", "«a'b»"}},
		{line: `"a\nb" "a\\nb" "a\xb" "a\\" "a\\\"b"`, toks: []string{"«a\nb»", `«a\nb»`, `«a\xb»`, `«a\»`, `«a\"b»`}},
		{line: `"=" "#"`, toks: []string{"«=»", "«#»"}},
		{line: `""`, toks: []string{"«»"}},
		{line: "\u2003a\u00a0", toks: []string{"a\u00a0"}},
		{line: `a "b`, err: "Unmatched quote character: (\")"},
		{line: `a "b\"`, err: "Unmatched quote character"},
		{line: `a 'b\'`, err: "Unmatched quote character: (')"},
		{line: "a\x04", err: "'EOT'"},
	}
	for _, tc := range tests {
		var d Decoder
		err := d.tokenize([]byte(tc.line))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Reason, tc.err) || err.Code != CodeParse {
				t.Errorf("%q: err = %v, want %q", tc.line, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.line, err)
			continue
		}
		var got []string
		for _, tok := range d.toks {
			s := string(tok.b)
			if tok.kind == tokQuoted {
				s = "«" + s + "»"
			}
			got = append(got, s)
		}
		if strings.Join(got, "|") != strings.Join(tc.toks, "|") {
			t.Errorf("%q: tokens %q, want %q", tc.line, got, tc.toks)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for line, reason := range map[string]string{
		``:                 "Metric name is missing",
		`m`:                "Value is missing",
		`m 1 k`:            "separated by '='",
		`m 1 k=`:           `Value missing for "k"`,
		`m 1 k==`:          `Value missing for "k"`,
		`m 1 = v`:          "where a tag key was expected",
		`m 1 1712000000 5`: "separated by '='",
		`m 1 17120000x0`:   `Invalid timestamp value: "17120000x0"`,
		`m 1 a=b "c`:       "Unmatched quote",
		`m 0x10 source=a`:  `Invalid value: "0x10"`,
		`m 1_000 source=a`: `Invalid value: "1_000"`,
		`m Inf source=a`:   `Invalid value: "Inf"`,
		"m 1 source=a\x04": "EOT",
	} {
		var p Point
		err := newTestDecoder().DecodePoint([]byte(line), &p)
		if codeOf(err) != CodeParse || !strings.Contains(err.Error(), reason) {
			t.Errorf("%q: err = %v, want WF-300 %q", line, err, reason)
		}
	}
}

func TestSourceResolution(t *testing.T) {
	tests := []struct {
		line, src, tags string
		quirk           bool
		custom          []string
	}{
		{line: `m 1 source=a host=b`, src: "a", tags: `"_host"="b"`},
		{line: `m 1 host=b source=a _host=c`, src: "a", tags: `"_host"="b"`},
		{line: `m 1 host=b`, src: "b"},
		{line: `m 1 fqdn=f.example k=v`, src: "f.example", tags: `"fqdn"="f.example" "k"="v"`},
		{line: `m 1 fqdn=f k=v`, src: "app-7", tags: `"fqdn"="f" "k"="v"`, custom: []string{}},
		{line: `m 1 x=1 node=n`, src: "n", tags: `"node"="n" "x"="1"`, custom: []string{"pod", "node"}},
		{line: `m 1 Source=s`, src: "app-7", tags: `"Source"="s"`},
		{line: `m 1 tag=1.9 _tag=old`, src: "app-7", tags: `"_tag"="1.9"`},
		{line: `m 1 source=a source=b k=1 k=2`, src: "b", tags: `"k"="2"`},
		{line: `m 1 resource=x`, src: "app-7", tags: `"resource"="x"`},
		{line: `m 1 resource=x`, src: "unknown", tags: `"resource"="x"`, quirk: true},
		{line: `m 1 resource= "x y"`, src: "app-7", tags: `"resource"="x y"`, quirk: true},
		{line: `m 1 xhost="y"`, src: "unknown", tags: `"xhost"="y"`, quirk: true},
	}
	for _, tc := range tests {
		d := newTestDecoder()
		d.SourceSubstringQuirk = tc.quirk
		d.CustomSourceTags = tc.custom
		var p Point
		if err := d.ParsePoint([]byte(tc.line), &p); err != nil {
			t.Errorf("%s: %v", tc.line, err)
			continue
		}
		if string(p.Source) != tc.src || tagsString(p.Tags) != tc.tags {
			t.Errorf("%s: source %q tags %s; want %q %s", tc.line, p.Source, tagsString(p.Tags), tc.src, tc.tags)
		}
	}
	if d := (&Decoder{}); string(d.defaultSource(nil)) != "unknown" {
		t.Error("empty DefaultSource must give unknown")
	}
}

func TestValidationCodes(t *testing.T) {
	long := func(n int) string { return strings.Repeat("a", n) }
	tests := []struct {
		line, code string
	}{
		{`m 1 source=" "`, CodeSourceMissing},
		{`m 1 source=` + long(1024), CodeSourceTooLong},
		{`m 1 source=` + long(1023), ""},
		{`m 1 source=` + strings.Repeat("é", 1023), ""},               // 2046 bytes, 1023 UTF-16 units
		{`m 1 source=` + strings.Repeat("😀", 512), CodeSourceTooLong}, // 1024 units
		{long(1024) + ` 1 source=a`, CodeNameTooLong},
		{long(1023) + ` 1 source=a`, ""},
		{`a:b 1 source=a`, CodeNameChars},
		{`x.~y 1 source=a`, CodeNameChars},
		{`x∆ 1 source=a`, CodeNameChars},
		{`~proxy.points 1 source=a`, ""},
		{`∆~jobs.done 1 source=a`, ""},
		{`Δ~jobs.done 1 source=a`, ""},
		{`a,b/c-d_e 1 source=a`, ""},
		{`m 1 source=a k=` + long(254-1), ""},
		{`m 1 source=a k=` + long(254), CodeTagTooLong},
		{`m 1 source=a ` + long(254) + `=v`, CodeTagTooLong},
		{`a;b 1 source=a k;=v`, CodeNameChars},
		{`m 1 source=a k;=v`, CodeTagKeyChars},
		{`m 1 source=a ~k=v ∆k=v`, ""},
		{"m 1 source=a k=\" \t\"", CodeTagValueEmpty},
		{`Δx -1 source=a`, CodeDelta},
		{`Δx NaN source=a`, CodeDelta},
		{`Δx 0.1 source=a`, ""},
		{`m 1 1690000000 source=a`, ""},
		{`m 1 1690000000 source=a` + " k=\"", CodeParse},
		{`m 1 1690000000 source=` + long(1024), CodeSourceTooLong},
		{`m 1 1600000000 source=a`, CodeTimeframe},
		{`m 1 1712086500 source=a`, CodeTimeframe},
		{`m 1 1712086499 source=a`, ""},
	}
	d := newTestDecoder()
	for _, tc := range tests {
		var p Point
		if got := codeOf(d.DecodePoint([]byte(tc.line), &p)); got != tc.code {
			t.Errorf("%.80s: code %q, want %q", tc.line, got, tc.code)
		}
	}
	var b strings.Builder
	b.WriteString("m 1 source=a")
	for i := range 101 {
		b.WriteString(" k")
		b.WriteString(strings.Repeat("x", i))
		b.WriteString("=v")
	}
	var p Point
	if got := codeOf(d.DecodePoint([]byte(b.String()), &p)); got != CodeTooManyTags {
		t.Errorf("101 tags: %q", got)
	}
	// WF-412 and WF-413 are unreachable at default limits (WF-411 fires first).
	lim := DefaultLimits()
	lim.MaxTagLength = 1000
	d.Limits = &lim
	for line, code := range map[string]string{
		`m 1 source=a ` + long(254) + `=v`: CodeTagKeyTooLong,
		`m 1 source=a k=` + long(256):      CodeTagValueTooLong,
	} {
		if got := codeOf(d.DecodePoint([]byte(line), &p)); got != code {
			t.Errorf("%.40s: %q, want %q", line, got, code)
		}
	}
	if err := d.DecodePoint([]byte("Δx 0 source=a"), &p); err == nil || !err.(*LineError).Discarded() {
		t.Errorf("delta: %v should be discarded", err)
	}
}

func TestDecoderReuseAndAliasing(t *testing.T) {
	d := newTestDecoder()
	var p Point
	if err := d.DecodePoint([]byte(`m 1 source=a k="x\"y" j=z`), &p); err != nil {
		t.Fatal(err)
	}
	if err := d.DecodePoint([]byte(`n 2 source=b`), &p); err != nil {
		t.Fatal(err)
	}
	if got := pointString(&p); got != `"n" 2 1712000100 src="b" {}` {
		t.Errorf("reuse: %s", got)
	}
}

func TestLines(t *testing.T) {
	for body, want := range map[string][]string{
		"":              nil,
		"a":             {"a"},
		"a\n":           {"a"},
		"a\n\nb":        {"a", "", "b"},
		"a\r\nb\n":      {"a\r", "b"},
		"\n":            {""},
		"one\ntwo\nthr": {"one", "two", "thr"},
	} {
		var got []string
		for line := range Lines([]byte(body)) {
			got = append(got, string(line))
		}
		if !slices.Equal(got, want) {
			t.Errorf("Lines(%q) = %q, want %q", body, got, want)
		}
	}
}
