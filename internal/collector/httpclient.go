package collector

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/meshwave/meshwave/internal/config"
)

// Paths the reference uses for in-cluster API-server sources without a CA.
const (
	serviceAccountCA = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"
)

// newHTTPClient builds the one client a source keeps for all its scrapes, so
// connections and TLS sessions are reused (the reference rebuilt it on every
// scrape, defect §9.5). The timeout is applied per request by context.
func newHTTPClient(src *config.PrometheusSource) (*http.Client, error) {
	tc := src.HTTPConfig.TLSConfig
	if strings.Contains(src.URL, "kubernetes.default.svc.cluster.local") && tc.CAFile == "" {
		tc.CAFile, tc.InsecureSkipVerify = serviceAccountCA, true
	}
	tlsConf := &tls.Config{ServerName: tc.ServerName, InsecureSkipVerify: tc.InsecureSkipVerify} //nolint:gosec // the user's choice, as in the reference
	if tc.CAFile != "" {
		pem, err := os.ReadFile(tc.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls_config.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls_config.ca_file %s: no PEM certificates found", tc.CAFile)
		}
		tlsConf.RootCAs = pool
	}
	if tc.CertFile != "" || tc.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(tc.CertFile, tc.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls_config.cert_file/key_file: %w", err)
		}
		tlsConf.Certificates = []tls.Certificate{cert}
	}
	tr := &http.Transport{
		TLSClientConfig:       tlsConf,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       5 * time.Minute,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 0, // bounded by the scrape's context
		ForceAttemptHTTP2:     false,
	}
	// Like the reference, ignore HTTP_PROXY: only proxy_url sets a proxy.
	if p := src.HTTPConfig.ProxyURL; p != "" {
		u, err := url.Parse(p)
		if err != nil {
			return nil, fmt.Errorf("proxy_url: %w", err)
		}
		tr.Proxy = http.ProxyURL(u)
	}
	return &http.Client{Transport: tr}, nil
}

// authorize sets the request's credentials. The token file is re-read on
// every scrape so rotated tokens are picked up.
func authorize(req *http.Request, hc *config.HTTPConfig) error {
	switch {
	case hc.BearerToken != "":
		req.Header.Set("Authorization", "Bearer "+hc.BearerToken)
	case hc.BearerTokenFile != "":
		b, err := os.ReadFile(hc.BearerTokenFile)
		if err != nil {
			return fmt.Errorf("bearer_token_file: %w", err)
		}
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(b)))
	case hc.BasicAuth != nil:
		pw := hc.BasicAuth.Password
		if hc.BasicAuth.PasswordFile != "" {
			b, err := os.ReadFile(hc.BasicAuth.PasswordFile)
			if err != nil {
				return fmt.Errorf("basic_auth.password_file: %w", err)
			}
			pw = strings.TrimSpace(string(b))
		}
		req.SetBasicAuth(hc.BasicAuth.Username, pw)
	}
	return nil
}
