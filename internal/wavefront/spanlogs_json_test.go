package wavefront

import (
	"encoding/json"
	"testing"
)

// FuzzAppendJSONString checks the hand-written encoder against
// encoding/json, which AppendSpanLogs uses, byte for byte.
func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "ss", `a"b\c`, "\b\f\n\r\t\x00\x1f\x7f", "<a href=x>&amp;</a>", "é😀\u2028\u2029", "\xff\xc3(", "\xed\xa0\x80"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, s []byte) {
		want, err := json.Marshal(string(s))
		if err != nil {
			t.Fatal(err)
		}
		if got := AppendJSONString([]byte("x"), s); string(got[1:]) != string(want) || got[0] != 'x' {
			t.Fatalf("AppendJSONString(%q)\n got %s\nwant %s", s, got[1:], want)
		}
	})
}
