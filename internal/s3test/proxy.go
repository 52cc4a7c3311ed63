package s3test

import (
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// IgnoringProxy is the one stand-in of the suite: a reverse proxy in front
// of a real server that drops If-None-Match from every request (and signs
// the request again, since the header is signed), as an S3-compatible
// store that ignores conditional writes would.
type IgnoringProxy struct {
	// Endpoint is the proxy's base URL, to use as storage.s3.endpoint.
	Endpoint string
	stripped atomic.Int32
}

// Stripped is how many requests the proxy took If-None-Match from.
func (p *IgnoringProxy) Stripped() int { return int(p.stripped.Load()) }

// IgnoreIfNoneMatch starts an IgnoringProxy in front of s, stopped at the
// test's cleanup.
func (s *Server) IgnoreIfNoneMatch(t testing.TB) *IgnoringProxy {
	t.Helper()
	target, err := url.Parse(s.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	p := &IgnoringProxy{}
	proxy := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(target)
		r := pr.Out
		r.Host = pr.In.Host // the host the client signed
		if r.Header.Get("If-None-Match") == "" {
			return
		}
		p.stripped.Add(1)
		r.Header.Del("If-None-Match")
		r.Header.Del("Authorization")
		creds := aws.Credentials{AccessKeyID: s.AccessKey, SecretAccessKey: s.SecretKey}
		if err := v4.NewSigner().SignHTTP(r.Context(), creds, r, r.Header.Get("X-Amz-Content-Sha256"), "s3", Region, time.Now()); err != nil {
			t.Errorf("s3test: signing again: %v", err)
		}
	}}
	ps := httptest.NewServer(proxy)
	t.Cleanup(ps.Close)
	p.Endpoint = ps.URL
	return p
}
