package httpbody

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

func zst(b []byte) []byte {
	enc, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest))
	return enc.EncodeAll(b, nil)
}

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
		{"identity", "identity", []byte("g 7\n"), 100, 0, "g 7\n"},
		{"unknown encoding", "br", []byte("h 8\n"), 100, http.StatusUnsupportedMediaType, ""},
		{"zstd", "zstd", zst([]byte("e 5\n")), 100, 0, "e 5\n"},
		{"s2", "s2", s2.Encode(nil, []byte("i 9\n")), 100, 0, "i 9\n"},
		{"s2 bomb", "s2", s2.Encode(nil, bytes.Repeat([]byte("a"), 1<<20)), 64 << 10, http.StatusRequestEntityTooLarge, ""},
		{"bad s2", "s2", []byte{0x05, 0xff, 0xff}, 100, http.StatusBadRequest, ""},
		{"truncated s2", "s2", s2.Encode(nil, bytes.Repeat([]byte("j 10\n"), 20))[:6], 100, http.StatusBadRequest, ""},
		{"zstd bomb", "zstd", zst(bytes.Repeat([]byte("a"), 1<<20)), 64 << 10, http.StatusRequestEntityTooLarge, ""},
		{"bad zstd", "zstd", []byte("not zstd"), 100, http.StatusBadRequest, ""},
		{"truncated zstd", "zstd", zst([]byte("f 6\n"))[:8], 100, http.StatusBadRequest, ""},
		{"zstd window 1 MiB", "zstd", zstdFrameHeader(1 << 20), 100, 0, "x"},
		{"zstd window too large", "zstd", zstdFrameHeader(1 << 30), 100, http.StatusBadRequest, ""},
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

// TestReadIntoReuses reads plain, gzip, zstd and s2 bodies in turn into one buffer
// (each pooled decoder is used again):
// each result is exact, and once the buffer is large enough it is reused.
func TestReadIntoReuses(t *testing.T) {
	buf := make([]byte, 0, 1<<16)
	for i := range 6 {
		want := strings.Repeat("line "+string(rune('a'+i))+" 1\n", 100+i*50)
		body := []byte(want)
		r := httptest.NewRequest(http.MethodPost, "/report", bytes.NewReader(body))
		switch i % 4 {
		case 1:
			r = httptest.NewRequest(http.MethodPost, "/report", bytes.NewReader(gz(body)))
			r.Header.Set("Content-Encoding", "gzip")
		case 2:
			r = httptest.NewRequest(http.MethodPost, "/report", bytes.NewReader(zst(body)))
			r.Header.Set("Content-Encoding", "zstd")
		case 3:
			r = httptest.NewRequest(http.MethodPost, "/report", bytes.NewReader(s2.Encode(nil, body)))
			r.Header.Set("Content-Encoding", "s2")
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

// zstdFrameHeader is the start of a zstd frame that asks for a window of
// the given size (a power of two, at least 1 KiB), without content size.
func zstdFrameHeader(window int) []byte {
	exp := 0
	for 1<<(10+exp) < window {
		exp++
	}
	// Magic, then the frame header descriptor (no single segment, no
	// checksum, no dictionary, no content size) and the window
	// descriptor (exponent only), then a last raw block of 1 byte.
	return []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, byte(exp << 3), 0x09, 0x00, 0x00, 'x'}
}
