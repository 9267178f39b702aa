package httpbody

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
)

func gz(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func TestRead(t *testing.T) {
	bomb := gz(bytes.Repeat([]byte("a"), 1<<20))
	for _, c := range []struct {
		name, encoding string
		body           []byte
		limit, code    int
		want           string
	}{
		{"plain", "", []byte("a 1\n"), 100, 0, "a 1\n"},
		{"gzip", "gzip", gz([]byte("b 2\n")), 100, 0, "b 2\n"},
		{"too big", "", bytes.Repeat([]byte("x"), 101), 100, http.StatusRequestEntityTooLarge, ""},
		{"gzip bomb", "gzip", bomb, 64 << 10, http.StatusRequestEntityTooLarge, ""},
		{"bad gzip", "gzip", []byte("not gzip"), 100, http.StatusBadRequest, ""},
		{"truncated gzip", "gzip", gz([]byte("c 3\n"))[:10], 100, http.StatusBadRequest, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/report", bytes.NewReader(c.body))
			if c.encoding != "" {
				r.Header.Set("Content-Encoding", c.encoding)
			}
			got, code, err := Read(r, c.limit)
			if code != c.code || (c.code == 0) != (err == nil) || string(got) != c.want {
				t.Errorf("got %q, %d, %v; want %q, %d", got, code, err, c.want, c.code)
			}
			if err != nil && !strings.Contains(err.Error(), "body") {
				t.Errorf("error %q does not say what failed", err)
			}
		})
	}
}
