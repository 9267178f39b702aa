// Package httpbody reads the bodies of ingestion requests — the proxy's and
// the server's — with one size limit that also holds after decompression.
// Bodies may be plain or gzip, deflate or zstd encoded; a server says so
// to its clients with Accept-Encoding: Encodings in its responses
// (RFC 7694), which is how meshwave's proxy learns it may send zstd.
package httpbody

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Encodings are the content codings Read decodes, for a server's
// Accept-Encoding response header.
const Encodings = "zstd, gzip, deflate"

// maxZstdWindow bounds the window a zstd body may ask for (the format
// allows up to 3.75 TB): every sender meshwave knows uses 8 MiB or less.
const maxZstdWindow = 8 << 20

// Read reads r's body up to limit bytes, decompressing gzip, deflate or zstd, and
// returns the HTTP status to answer on failure: 413 over the limit (checked
// after decompression too, against gzip bombs), 415 for an encoding it
// does not know, 400 for a body that cannot be read or decompressed.
func Read(r *http.Request, limit int) ([]byte, int, error) {
	return ReadInto(nil, r, limit)
}

// Error answers a request: code and msg as http.Error does, and for a 415
// (a coding Read does not take) the codings it takes, in Accept-Encoding
// as RFC 7694 asks.
func Error(w http.ResponseWriter, msg string, code int) {
	if code == http.StatusUnsupportedMediaType {
		w.Header().Set("Accept-Encoding", Encodings)
	}
	http.Error(w, msg, code)
}

// gzipReaders keeps gzip readers for reuse: each holds a 32 KiB window and
// tables that would otherwise be allocated per request. zstdReaders
// likewise, each decoding on the request's goroutine (concurrency 1).
var gzipReaders, zstdReaders sync.Pool

// ReadInto is Read appending to dst[:0], so a caller that pools its buffers
// reads a steady stream of requests without allocating; the result aliases
// dst when it fits.
func ReadInto(dst []byte, r *http.Request, limit int) ([]byte, int, error) {
	var rd io.Reader = http.MaxBytesReader(nil, r.Body, int64(limit))
	size := int64(-1)
	switch r.Header.Get("Content-Encoding") {
	case "gzip":
		zr, _ := gzipReaders.Get().(*gzip.Reader)
		var err error
		if zr == nil {
			zr, err = gzip.NewReader(rd)
		} else {
			err = zr.Reset(rd)
		}
		if err != nil {
			return dst[:0], http.StatusBadRequest, errors.New("bad gzip body: " + err.Error())
		}
		defer func() { zr.Close(); gzipReaders.Put(zr) }()
		rd = zr
	case "zstd":
		zr, _ := zstdReaders.Get().(*zstd.Decoder)
		var err error
		if zr == nil {
			zr, err = zstd.NewReader(rd, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(maxZstdWindow))
		} else {
			err = zr.Reset(rd)
		}
		if err != nil {
			return dst[:0], http.StatusBadRequest, errors.New("bad zstd body: " + err.Error())
		}
		defer func() { _ = zr.Reset(nil); zstdReaders.Put(zr) }()
		rd = zr
	case "deflate":
		// klauspost's inflater, as for gzip: the same format, decoded faster
		// than compress/flate's.
		fr := flate.NewReader(rd)
		defer fr.Close()
		rd = fr
	case "", "identity":
		size = r.ContentLength
	default:
		return dst[:0], http.StatusUnsupportedMediaType, errors.New("unsupported body encoding " + strconv.Quote(r.Header.Get("Content-Encoding")) + "; use one of " + Encodings)
	}
	body, err := readAll(dst[:0], rd, limit, size)
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig), len(body) > limit:
		return dst[:0], http.StatusRequestEntityTooLarge, errors.New("request body over " + strconv.Itoa(limit) + " bytes")
	case err != nil:
		return dst[:0], http.StatusBadRequest, errors.New("reading body: " + err.Error())
	}
	return body, 0, nil
}

// readAll appends rd to b until EOF or past limit. A known size (the
// Content-Length of an uncompressed body) is allocated once, instead of
// io.ReadAll's doubling and copying.
func readAll(b []byte, rd io.Reader, limit int, size int64) ([]byte, error) {
	if size >= 0 && size <= int64(limit) && cap(b) < int(size)+1 {
		// One byte more than the body, so the read that finds EOF needs no
		// growth.
		b = make([]byte, 0, size+1)
	}
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := rd.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil || len(b) > limit {
			return b, err
		}
	}
}
