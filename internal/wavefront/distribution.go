package wavefront

import "strconv"

// Granularity is a histogram's bin width. The zero value is Minute, the only
// one the collector uses.
type Granularity uint8

const (
	Minute Granularity = iota // !M
	Hour                      // !H
	Day                       // !D
)

// String returns the line-format literal: "!M", "!H" or "!D".
func (g Granularity) String() string {
	switch g {
	case Hour:
		return "!H"
	case Day:
		return "!D"
	}
	return "!M"
}

// Millis returns the bin width in milliseconds.
func (g Granularity) Millis() int64 {
	switch g {
	case Hour:
		return 3_600_000
	case Day:
		return 86_400_000
	}
	return 60_000
}

// Centroid is one histogram bin: Count samples around Mean. The line format
// carries counts as 32-bit integers.
type Centroid struct {
	Count int
	Mean  float64
}

// Distribution is one Wavefront histogram (proxy.md §3). Like Point, its
// byte slices may alias a producer's buffers.
type Distribution struct {
	Granularity Granularity
	Timestamp   int64 // Unix seconds, the bin start; 0 means "let the receiver assign it"
	Centroids   []Centroid
	Name        []byte
	Source      []byte
	Tags        []Tag
}

// AppendDistribution appends h in the histogram line format (collector.md
// §6.3, proxy.md §3.2), with names, source and tags treated as AppendPoint
// does:
//
//	!M [<ts>] #<count> <mean> ... "<name>" source="<source>" "<k>"="<v>" ...\n
//
// Centroids are written as given; merging is the caller's policy.
func AppendDistribution(dst []byte, h *Distribution) []byte {
	dst = append(dst, h.Granularity.String()...)
	if h.Timestamp != 0 {
		dst = append(dst, ' ')
		dst = strconv.AppendInt(dst, h.Timestamp, 10)
	}
	for _, c := range h.Centroids {
		dst = append(dst, " #"...)
		dst = strconv.AppendInt(dst, int64(c.Count), 10)
		dst = append(dst, ' ')
		dst = AppendValue(dst, c.Mean)
	}
	dst = append(dst, ' ')
	dst = appendSanitizedName(dst, h.Name)
	dst = appendSourceAndTags(dst, h.Source, h.Tags)
	return append(dst, '\n')
}
