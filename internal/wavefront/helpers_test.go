package wavefront

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// testNow is inside the WF-402 window of the reference's worked examples.
var testNow = time.Unix(1712000100, 0)

func newTestDecoder() *Decoder {
	return &Decoder{
		Now:           func() time.Time { return testNow },
		DefaultSource: []byte("app-7"),
	}
}

// tagsString renders tags sorted, for order-insensitive comparison.
func tagsString(tags []Tag) string {
	s := make([]string, len(tags))
	for i, t := range tags {
		s[i] = fmt.Sprintf("%q=%q", t.Key, t.Value)
	}
	slices.Sort(s)
	return strings.Join(s, " ")
}

func pointString(p *Point) string {
	return fmt.Sprintf("%q %v %d src=%q {%s}", p.Name, p.Value, p.Timestamp, p.Source, tagsString(p.Tags))
}

func codeOf(err error) string {
	var le *LineError
	if errors.As(err, &le) {
		return le.Code
	}
	if err != nil {
		return "non-LineError: " + err.Error()
	}
	return ""
}
