package wavefront

import (
	"strings"
	"testing"
)

func TestDistributionWorkedExample(t *testing.T) {
	d := newTestDecoder()
	for _, tc := range []struct {
		line string
		ts   int64
		want string
	}{
		{`!M 1712000059 #2 1.5 #1 4 lat.ms source=a`, 1712000040, "!M 1712000040 #2 1.5 #1 4 \"lat.ms\" source=\"a\"\n"},
		{`!H 1712000059 #2 1.5 #1 4 lat.ms source=a`, 1711998000, "!H 1711998000 #2 1.5 #1 4 \"lat.ms\" source=\"a\"\n"},
		{`!D 1712000059 #2 1.5 #1 4 lat.ms source=a`, 1711929600, "!D 1711929600 #2 1.5 #1 4 \"lat.ms\" source=\"a\"\n"},
		{`!M 1712000059123 #3 1.5 #1 1.5 #0 2 "lat.ms" host=h tag=t`, 1712000040, "!M 1712000040 #3 1.5 #1 1.5 #0 2 \"lat.ms\" source=\"h\" \"_tag\"=\"t\"\n"},
		{`!M #1 0x1p1 m fqdn=f`, 1712000100, "!M 1712000100 #1 2 \"m\" source=\"app-7\" \"fqdn\"=\"f\"\n"},
	} {
		var h Distribution
		if err := d.DecodeDistribution([]byte(tc.line), &h); err != nil {
			t.Errorf("%s: %v", tc.line, err)
			continue
		}
		if h.Timestamp != tc.ts || d.TimestampMillis() != tc.ts*1000 {
			t.Errorf("%s: ts %d (%d ms), want %d", tc.line, h.Timestamp, d.TimestampMillis(), tc.ts)
		}
		if got := string(AppendDistribution(nil, &h)); got != tc.want {
			t.Errorf("%s:\n got %q\nwant %q", tc.line, got, tc.want)
		}
	}
}

func TestDistributionErrors(t *testing.T) {
	for line, want := range map[string]string{
		`!M 1712000059 lat.ms source=a`:            "WF-300: Empty histogram (no centroids)",
		`!M #0 1 #0 2 lat.ms source=a`:             "WF-405: Empty histogram",
		`!m #1 1 lat.ms source=a`:                  "WF-300: Invalid histogram granularity",
		`"!M" #1 1 lat.ms source=a`:                "WF-300: Histogram granularity is missing",
		`!M #1.5 1 lat.ms source=a`:                `WF-300: Invalid centroid count: "1.5"`,
		`!M #-1 1 lat.ms source=a`:                 `WF-300: Invalid centroid count: "-1"`,
		`!M #2147483648 1 lat.ms source=a`:         `WF-300: Invalid centroid count`,
		`!M #1 +Inf lat.ms source=a`:               `WF-300: Invalid centroid mean: "+Inf"`,
		`!M #1`:                                    "WF-300: Centroid mean is missing",
		`!M #`:                                     "WF-300: Centroid count is missing",
		`!M #1 1`:                                  "WF-300: Metric name is missing",
		`!M #1 1 a:b source=a`:                     "WF-400",
		`!M #1 1 ` + strings.Repeat("a", 1024):     "WF-409",
		`!M #1 1 m`:                                "",
		`!M 1600000000 #1 1 m`:                     "WF-402",
		`!M #1 1 m k=v source=a "#"=x`:             "WF-401",
		`!M #1 1 m k=v # 1 2`:                      "WF-300: Unexpected \"#\"",
		`!M #2147483647 1 #-0 2 m source=a host=b`: "",
	} {
		var h Distribution
		err := newTestDecoder().DecodeDistribution([]byte(line), &h)
		if want == "" {
			if err != nil {
				t.Errorf("%.60s: %v", line, err)
			}
			continue
		}
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%.60s: err %v, want %s", line, err, want)
		}
	}
}

func TestGranularity(t *testing.T) {
	for g, want := range map[Granularity]string{Minute: "!M", Hour: "!H", Day: "!D"} {
		if g.String() != want {
			t.Errorf("%d: %s", g, g.String())
		}
	}
	var zero Distribution
	if zero.Granularity != Minute {
		t.Error("zero granularity must be Minute")
	}
	if got := string(AppendDistribution(nil, &Distribution{Granularity: Hour, Centroids: []Centroid{{1, 0.5}}, Name: []byte("a b"), Source: []byte(" s "), Tags: []Tag{{[]byte("k"), []byte("v")}}})); got != "!H #1 0.5 \"a-b\" source=\"s\" \"k\"=\"v\"\n" {
		t.Errorf("AppendDistribution: %q", got)
	}
}
