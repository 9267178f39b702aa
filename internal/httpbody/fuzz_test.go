package httpbody

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
)

// FuzzReadInto: any body in any coding is read or refused with a status,
// never a panic, and what is read is within the limit.
func FuzzReadInto(f *testing.F) {
	for _, enc := range []string{"", "gzip", "deflate", "zstd", "s2"} {
		f.Add(enc, []byte("a 1 1700000000 source=s\n"), 100)
	}
	f.Add("gzip", gz([]byte("b 2\n")), 100)
	f.Add("zstd", zst(bytes.Repeat([]byte("c 3\n"), 50)), 64)
	f.Add("zstd", zstdFrameHeader(1<<30), 100)
	f.Add("deflate", deflate([]byte("d 4\n")), 10)
	f.Fuzz(func(t *testing.T, encoding string, body []byte, limit int) {
		if limit <= 0 || limit > 1<<20 {
			return
		}
		r := httptest.NewRequest(http.MethodPost, "/report", bytes.NewReader(body))
		r.Header.Set("Content-Encoding", encoding)
		got, code, err := ReadInto(make([]byte, 0, 16), r, limit)
		switch {
		case err == nil && (code != 0 || len(got) > limit):
			t.Fatalf("read %d bytes, code %d, limit %d", len(got), code, limit)
		case err != nil && code/100 != 4:
			t.Fatalf("error %v with status %d", err, code)
		}
	})
}
