package wavefront

import (
	"strings"
	"testing"
)

func TestSpanLogsDecode(t *testing.T) {
	line := `{"traceId":"t","spanId":"s","_spanSecondaryId":"server","logs":[{"timestamp":1712000000123456,"fields":{"event":"retry","attempt":2,"ok":true,"gone":null}}],"span":"op source=a traceId=t spanId=s 1 2"}`
	var sl SpanLogs
	if err := DecodeSpanLogs([]byte(line), &sl); err != nil {
		t.Fatal(err)
	}
	if sl.SpanSecondaryID == nil || *sl.SpanSecondaryID != "server" || sl.Logs[0].Timestamp != 1712000000123456 ||
		sl.Logs[0].Fields["attempt"] != "2" || sl.Logs[0].Fields["ok"] != "true" || len(sl.Logs[0].Fields) != 3 {
		t.Errorf("%+v", sl)
	}
	sl.Customer = "c"
	sl.SpanSecondaryID = nil
	sl.Span = "_sampledByPolicy=NONE"
	sl.Logs[0].Fields = LogFields{"event": "retry"}
	b, err := AppendSpanLogs(nil, &sl)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"customer":"c","traceId":"t","spanId":"s","spanSecondaryId":null,"logs":[{"timestamp":1712000000123456,"fields":{"event":"retry"}}],"span":"_sampledByPolicy=NONE"}` + "\n"
	if string(b) != want {
		t.Errorf("\n got %s\nwant %s", b, want)
	}
	for in, reason := range map[string]string{
		`{"spanId":"s","logs":[]}`:                                  "traceId is missing",
		`{"traceId":"t","logs":[]}`:                                 "spanId is missing",
		`{"traceId":"t","spanId":"s","logs":[{"fields":{"a":{}}}]}`: "Cannot parse span logs",
		`{"traceId":"t","spanId":"s"} x`:                            "Cannot parse span logs",
		`{"traceId":"t","spanId":"s","logs":[{"timestamp":"x"}]}`:   "Cannot parse span logs",
	} {
		err := DecodeSpanLogs([]byte(in), &sl)
		if codeOf(err) != CodeParse || !strings.Contains(err.Error(), reason) {
			t.Errorf("%s: %v", in, err)
		}
	}
}
