package httpbody

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/gzip"
)

func deflate(b []byte) []byte {
	var buf bytes.Buffer
	w, _ := flate.NewWriter(&buf, flate.BestSpeed)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

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
		{"deflate", "deflate", deflate([]byte("d 4\n")), 100, 0, "d 4\n"},
		{"deflate bomb", "deflate", deflate(bytes.Repeat([]byte("a"), 1<<20)), 64 << 10, http.StatusRequestEntityTooLarge, ""},
		{"bad deflate", "deflate", []byte{0xff, 0xff, 0xff}, 100, http.StatusBadRequest, ""},
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

// TestReadIntoReuses reads plain and gzip bodies in turn into one buffer:
// each result is exact, and once the buffer is large enough it is reused.
func TestReadIntoReuses(t *testing.T) {
	buf := make([]byte, 0, 1<<16)
	for i := range 6 {
		want := strings.Repeat("line "+string(rune('a'+i))+" 1\n", 100+i*50)
		body := []byte(want)
		r := httptest.NewRequest(http.MethodPost, "/report", bytes.NewReader(body))
		if i%2 == 1 {
			r = httptest.NewRequest(http.MethodPost, "/report", bytes.NewReader(gz(body)))
			r.Header.Set("Content-Encoding", "gzip")
		}
		got, code, err := ReadInto(buf, r, 1<<20)
		if err != nil || code != 0 || string(got) != want {
			t.Fatalf("request %d: %d, %v, %d bytes; want %d", i, code, err, len(got), len(want))
		}
		if &got[:1][0] != &buf[:1][0] {
			t.Errorf("request %d: the body did not reuse the buffer", i)
		}
		buf = got
	}
}

// TestReadIntoLyingLength: a Content-Length larger than the limit is not
// allocated up front, and a short body under a larger declared length is
// still read whole.
func TestReadIntoLyingLength(t *testing.T) {
	r := httptest.NewRequest(http.MethodPost, "/report", strings.NewReader("a 1\n"))
	r.ContentLength = 1 << 40
	got, code, err := ReadInto(nil, r, 100)
	if err != nil || code != 0 || string(got) != "a 1\n" || cap(got) > 1<<20 {
		t.Fatalf("got %q (cap %d), %d, %v", got, cap(got), code, err)
	}
}
