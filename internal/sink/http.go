package sink

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/klauspost/compress/gzip"
)

// gzipLevel matches the reference proxy's default: most of the ratio of
// level 6 for much less CPU.
const gzipLevel = 4

// maxBodySnippet bounds how much of an error response is logged.
const maxBodySnippet = 256

// NewHTTP returns a Writer for Wavefront direct ingestion (proxy.md §7.2):
// batches of up to BatchLines lines are gzipped and sent as
// POST <server>/report?f=<Format> with a bearer token, over one reused
// keep-alive client with a WriteTimeout (10 s) request timeout.
//
// Transport errors, 5xx, 406, 408 and 429 are retried with backoff
// (honouring Retry-After); other 4xx (400, 401, 403, 413, …) reject the
// batch for good: it is dropped, counted as errors and logged with the
// status and the start of the body. A nil m or log means unregistered
// metrics and slog.Default().
func NewHTTP(server, token string, opt Options, m *Metrics, log *slog.Logger) Writer {
	opt = opt.withDefaults(true)
	endpoint := strings.TrimSuffix(server, "/") + "/report?f=" + url.QueryEscape(opt.Format)
	dest := endpoint
	if u, err := url.Parse(endpoint); err == nil {
		dest = u.Redacted() // logs must not carry credentials
	}
	c := newCore(opt, m, log, dest)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	gz, _ := gzip.NewWriterLevel(io.Discard, gzipLevel) // the level is valid
	return c.start(&httpTransport{
		c:      c,
		url:    endpoint,
		auth:   "Bearer " + token,
		tr:     tr,
		client: &http.Client{Transport: tr, Timeout: opt.WriteTimeout},
		gz:     gz,
	})
}

type httpTransport struct {
	c      *core
	url    string
	auth   string
	tr     *http.Transport
	client *http.Client
	gz     *gzip.Writer
	body   bytes.Buffer
}

func (h *httpTransport) send(ctx context.Context, b *block) error {
	// Compressed again on each attempt: retries are rare and this keeps no
	// state tied to a batch that may be abandoned.
	h.body.Reset()
	h.gz.Reset(&h.body)
	if _, err := h.gz.Write(b.data()); err != nil {
		return err
	}
	if err := h.gz.Close(); err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url, bytes.NewReader(h.body.Bytes()))
	if err != nil {
		return &statusError{body: err.Error(), permanent: true}
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("Content-Encoding", "gzip")
	req.Header.Set("Authorization", h.auth)
	resp, err := h.client.Do(req)
	if err != nil {
		return err
	}
	var snippet []byte
	if resp.StatusCode/100 != 2 {
		snippet, _ = io.ReadAll(io.LimitReader(resp.Body, maxBodySnippet))
	}
	// Drain (bounded) so the keep-alive connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode/100 == 2 {
		h.c.release(b)
		return nil
	}
	return &statusError{
		code:      resp.StatusCode,
		body:      strings.ToValidUTF8(strings.TrimSpace(string(snippet)), string(utf8.RuneError)),
		permanent: !retryable(resp.StatusCode),
		after:     parseRetryAfter(resp.Header.Get("Retry-After")),
	}
}

// retryable: server-side trouble and push-back. 408 is a timeout, like a
// transport error, so it is retried too (as the reference proxy does). An
// unexpected 1xx/3xx final answer is a misconfiguration: not retried.
func retryable(code int) bool {
	switch code {
	case http.StatusNotAcceptable, http.StatusRequestTimeout, http.StatusTooManyRequests:
		return true
	}
	return code >= 500
}

func parseRetryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return time.Until(t)
	}
	return 0
}

func (h *httpTransport) pending() bool { return false }

func (h *httpTransport) close() error {
	h.tr.CloseIdleConnections()
	return nil
}
