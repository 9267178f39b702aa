// Package httpbody reads the bodies of ingestion requests — the proxy's and
// the server's — with one size limit that also holds after decompression.
package httpbody

import (
	"compress/flate"
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/klauspost/compress/gzip"
)

// Read reads r's body up to limit bytes, decompressing gzip or deflate, and
// returns the HTTP status to answer on failure: 413 over the limit (checked
// after decompression too, against gzip bombs), 400 for a body that cannot
// be read or decompressed.
func Read(r *http.Request, limit int) ([]byte, int, error) {
	var rd io.Reader = http.MaxBytesReader(nil, r.Body, int64(limit))
	switch r.Header.Get("Content-Encoding") {
	case "gzip":
		zr, err := gzip.NewReader(rd)
		if err != nil {
			return nil, http.StatusBadRequest, errors.New("bad gzip body: " + err.Error())
		}
		defer zr.Close()
		rd = zr
	case "deflate":
		rd = flate.NewReader(rd)
	}
	body, err := io.ReadAll(io.LimitReader(rd, int64(limit)+1))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig), len(body) > limit:
		return nil, http.StatusRequestEntityTooLarge, errors.New("request body over " + strconv.Itoa(limit) + " bytes")
	case err != nil:
		return nil, http.StatusBadRequest, errors.New("reading body: " + err.Error())
	}
	return body, 0, nil
}
