// Package httpbody reads the bodies of ingestion requests — the proxy's and
// the server's — with one size limit that also holds after decompression.
package httpbody

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/gzip"
)

// Read reads r's body up to limit bytes, decompressing gzip or deflate, and
// returns the HTTP status to answer on failure: 413 over the limit (checked
// after decompression too, against gzip bombs), 400 for a body that cannot
// be read or decompressed.
func Read(r *http.Request, limit int) ([]byte, int, error) {
	return ReadInto(nil, r, limit)
}

// gzipReaders keeps gzip readers for reuse: each holds a 32 KiB window and
// tables that would otherwise be allocated per request.
var gzipReaders sync.Pool

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
	case "deflate":
		// klauspost's inflater, as for gzip: the same format, decoded faster
		// than compress/flate's.
		fr := flate.NewReader(rd)
		defer fr.Close()
		rd = fr
	default:
		size = r.ContentLength
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
