// Package httpbody reads the bodies of ingestion requests — the proxy's and
// the server's — with one size limit that also holds after decompression.
// Bodies may be plain or gzip, deflate, zstd or s2 encoded; a server says
// so to its clients with Accept-Encoding: Encodings in its responses
// (RFC 7694), which is how meshwave's proxy learns it may send zstd, or
// its queue's S2 blocks as they are.
package httpbody

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

// Encodings are the content codings Read decodes, for a server's
// Accept-Encoding response header.
const Encodings = "s2, zstd, gzip, deflate"

// maxZstdWindow bounds the window a zstd body may ask for (the format
// allows up to 3.75 TB): every sender meshwave knows uses 8 MiB or less.
const maxZstdWindow = 8 << 20

// Read reads r's body up to limit bytes, decompressing gzip, deflate, zstd
// or s2, and returns the HTTP status to answer on failure: 413 over the
// limit (checked after decompression too, against gzip bombs), 415 for an
// encoding it does not know, 400 for a body that cannot be read or
// decompressed.
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
	case "s2":
		return readS2(dst, rd, r.ContentLength, limit)
	case "", "identity":
		size = r.ContentLength
	default:
		return dst[:0], http.StatusUnsupportedMediaType, errors.New("unsupported body encoding " + strconv.Quote(r.Header.Get("Content-Encoding")) + "; use one of " + Encodings)
	}
	body, err := readAll(dst[:0], rd, limit, size)
	if code, err := check(body, err, limit); err != nil {
		return dst[:0], code, err
	}
	return body, 0, nil
}

// check turns readAll's outcome into Read's status and error.
func check(body []byte, err error, limit int) (int, error) {
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig), len(body) > limit:
		return http.StatusRequestEntityTooLarge, errors.New("request body over " + strconv.Itoa(limit) + " bytes")
	case err != nil:
		return http.StatusBadRequest, errors.New("reading body: " + err.Error())
	}
	return 0, nil
}

// s2Blocks keeps the compressed bodies of s2 requests for reuse, up to
// maxPooledBlock each, so one huge request does not pin its size.
var s2Blocks sync.Pool

const maxPooledBlock = 4 << 20

// readS2 reads a body that is one S2 block (klauspost/compress/s2's block
// format, as Prometheus remote write sends one snappy block): meshwave's
// proxy posts its queue's compressed records as they are, so neither side
// compresses them again. The block says its decoded size up front, which
// is checked against limit before anything is decoded.
func readS2(dst []byte, rd io.Reader, size int64, limit int) ([]byte, int, error) {
	buf, _ := s2Blocks.Get().(*[]byte)
	if buf == nil {
		buf = new([]byte)
	}
	block, err := readAll((*buf)[:0], rd, limit, size)
	if *buf = block; cap(block) <= maxPooledBlock {
		defer s2Blocks.Put(buf)
	}
	if code, err := check(block, err, limit); err != nil {
		return dst[:0], code, err
	}
	n, err := s2.DecodedLen(block)
	switch {
	case err != nil:
		return dst[:0], http.StatusBadRequest, errors.New("bad s2 body: " + err.Error())
	case n > limit:
		return dst[:0], http.StatusRequestEntityTooLarge, errors.New("request body over " + strconv.Itoa(limit) + " bytes once decoded")
	}
	if cap(dst) < n {
		dst = make([]byte, n)
	}
	body, err := s2.Decode(dst[:cap(dst)], block)
	if err != nil {
		return dst[:0], http.StatusBadRequest, errors.New("bad s2 body: " + err.Error())
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
