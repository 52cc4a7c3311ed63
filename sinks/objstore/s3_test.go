package objstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/mya/deid/internal/s3test"
)

func random(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// smallParts makes Put upload from 5 MiB on, in 5 MiB parts.
func smallParts(c *Config) {
	c.S3.PartSize = minPartSize
	c.S3.MultipartThreshold = minPartSize
}

func TestS3MultipartAboveTheThreshold(t *testing.T) {
	srv := s3test.Require(t)
	s := openS3(t, srv, smallParts)
	ctx := context.Background()
	for _, tc := range []struct {
		name      string
		size      int
		cond      bool
		wantParts string // the ETag's suffix: "-N" for an upload of N parts
	}{
		{"an object below the threshold is one PUT", minPartSize - 1, false, ""},
		{"an object of 12 MiB goes up in three parts", 12 << 20, false, "-3\""},
		{"a conditional create of 11 MiB goes up in three parts", 11 << 20, true, "-3\""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := random(t, tc.size)
			key := "mp/" + strings.ReplaceAll(tc.name, " ", "-")
			if err := s.Put(ctx, key, bytes.NewReader(data), PutOptions{IfNotExists: tc.cond}); err != nil {
				t.Fatal(err)
			}
			got := sha256.Sum256([]byte(get(t, s, key)))
			if got != sha256.Sum256(data) {
				t.Error("the object read back differs from what was put")
			}
			head, err := srv.Client().HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.bucket, Key: aws.String(s.full(key))})
			if err != nil {
				t.Fatal(err)
			}
			etag := aws.ToString(head.ETag)
			if tc.wantParts == "" && strings.Contains(etag, "-") || tc.wantParts != "" && !strings.HasSuffix(etag, tc.wantParts) {
				t.Errorf("ETag %s, want an upload ending %q", etag, tc.wantParts)
			}
		})
	}
	t.Run("a conditional multipart create on an existing key is ErrExists and leaves the object", func(t *testing.T) {
		first := random(t, 6<<20)
		if err := s.Put(ctx, "mp/cond", bytes.NewReader(first), PutOptions{IfNotExists: true}); err != nil {
			t.Fatal(err)
		}
		err := s.Put(ctx, "mp/cond", bytes.NewReader(random(t, 6<<20)), PutOptions{IfNotExists: true})
		if !errors.Is(err, ErrExists) {
			t.Fatalf("second create: %v, want ErrExists", err)
		}
		if sha256.Sum256([]byte(get(t, s, "mp/cond"))) != sha256.Sum256(first) {
			t.Error("the object was replaced")
		}
		// The refused upload was aborted: no parts are left behind.
		ups, err := srv.Client().ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: &s.bucket})
		if err != nil {
			t.Fatal(err)
		}
		if len(ups.Uploads) != 0 {
			t.Errorf("%d multipart uploads left open", len(ups.Uploads))
		}
	})
	t.Run("nothing is visible until the upload completes, and a failed one is aborted", func(t *testing.T) {
		// A body that fails after its first part: the upload never completes.
		body := &failingReader{ReadSeeker: bytes.NewReader(random(t, 12<<20)), failAt: 6 << 20}
		err := s.Put(ctx, "mp/broken", body, PutOptions{})
		if err == nil || !strings.Contains(err.Error(), "reading the body") {
			t.Fatalf("put: %v, want the body's error", err)
		}
		if _, err := s.Stat(ctx, "mp/broken"); !errors.Is(err, ErrNotFound) {
			t.Errorf("stat: %v, want ErrNotFound", err)
		}
		ups, err := srv.Client().ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: &s.bucket})
		if err != nil {
			t.Fatal(err)
		}
		if len(ups.Uploads) != 0 {
			t.Errorf("%d multipart uploads left open", len(ups.Uploads))
		}
	})
}

// failingReader fails every read that reaches failAt.
type failingReader struct {
	io.ReadSeeker
	pos, failAt int64
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.pos+int64(len(p)) > f.failAt {
		return 0, errors.New("disk gone")
	}
	n, err := f.ReadSeeker.Read(p)
	f.pos += int64(n)
	return n, err
}

func (f *failingReader) Seek(off int64, whence int) (int64, error) {
	n, err := f.ReadSeeker.Seek(off, whence)
	f.pos = n
	return n, err
}

func TestS3RetriesAcrossAServerRestart(t *testing.T) {
	srv := s3test.Private(t)
	retried := make(chan struct{}, 1)
	var retries atomic.Int32
	s := openS3(t, srv, func(c *Config) {
		c.S3.RetryBackoff = 50 * time.Millisecond
		c.S3.RetryBackoffMax = 500 * time.Millisecond
		c.S3.RetryBudget = time.Minute
	})
	s.onRetry = func(op string, err error) {
		retries.Add(1)
		select {
		case retried <- struct{}{}:
		default:
		}
	}
	ctx := context.Background()
	put(t, s, "before", "kept across the restart")

	srv.Stop(t)
	done := make(chan error, 1)
	go func() {
		done <- s.Put(ctx, "w/_manifest.json", strings.NewReader("committed"), PutOptions{IfNotExists: true})
	}()
	select {
	case <-retried: // the put is failing and retrying: bring the server back
	case err := <-done:
		t.Fatalf("the put returned while the server was down: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the put did not retry within 30s")
	}
	srv.Start(t)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("put across the restart: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the put did not finish within its budget after the restart")
	}
	if got := get(t, s, "w/_manifest.json"); got != "committed" {
		t.Errorf("get = %q", got)
	}
	if got := get(t, s, "before"); got != "kept across the restart" {
		t.Errorf("get = %q", got)
	}
	if retries.Load() == 0 {
		t.Error("no retry was counted")
	}
}

func TestS3GivesUpCleanlyPastTheRetryBudget(t *testing.T) {
	srv := s3test.Private(t)
	s := openS3(t, srv, func(c *Config) {
		c.S3.RetryBackoff = 20 * time.Millisecond
		c.S3.RetryBackoffMax = 100 * time.Millisecond
		c.S3.RetryBudget = 700 * time.Millisecond
	})
	srv.Stop(t)
	startedAt := time.Now()
	err := s.Put(context.Background(), "w/_manifest.json", strings.NewReader("x"), PutOptions{IfNotExists: true})
	took := time.Since(startedAt)
	if err == nil {
		t.Fatal("put succeeded with the server down")
	}
	for _, want := range []string{"storage.s3.retry_budget", s.String() + "/w/_manifest.json"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q: %v", want, err)
		}
	}
	if !errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, ErrExists) {
		t.Errorf("the error does not wrap the refused connection alone: %v", err)
	}
	if took < 700*time.Millisecond || took > 10*time.Second {
		t.Errorf("gave up after %s, want just past the 700ms budget", took)
	}
}

func TestS3ReturnsNonTransientErrorsAtOnce(t *testing.T) {
	srv := s3test.Require(t)
	srv.Setenv(t)
	cfg := DefaultConfig()
	cfg.S3.Endpoint = srv.Endpoint
	cfg.S3.ForcePathStyle = true
	cfg.S3.RetryBudget = time.Minute
	for _, tc := range []struct {
		name string
		url  string
		env  map[string]string
		want string
	}{
		{"a missing bucket", "s3://deid-no-such-bucket/p", nil, "NoSuchBucket"},
		{"a wrong secret", "s3://" + srv.Bucket(t) + "/p", map[string]string{"AWS_SECRET_ACCESS_KEY": "wrong"}, "SignatureDoesNotMatch"},
		{"no credentials in the chain", "s3://" + srv.Bucket(t) + "/p", map[string]string{"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""}, "credentials"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			s, err := NewS3(tc.url, cfg)
			if err != nil {
				t.Fatal(err)
			}
			var retries atomic.Int32
			s.onRetry = func(string, error) { retries.Add(1) }
			start := time.Now()
			err = s.Put(context.Background(), "k", strings.NewReader("x"), PutOptions{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("put: %v, want %s", err, tc.want)
			}
			if retries.Load() != 0 || time.Since(start) > 10*time.Second {
				t.Errorf("retried %d times over %s", retries.Load(), time.Since(start))
			}
			if secret := srv.SecretKey; strings.Contains(err.Error(), secret) {
				t.Error("the error holds the secret key")
			}
		})
	}
}

func TestS3ConditionalCreateRetriedAfterAnUnknownOutcome(t *testing.T) {
	// An attempt whose answer was lost may have stored the object: the
	// retry's 412 is then that attempt's success if the bytes are ours.
	srv := s3test.Require(t)
	s := openS3(t, srv, nil)
	ctx := context.Background()
	put(t, s, "m", "ours")
	for _, tc := range []struct {
		name      string
		body      string
		uncertain bool
		want      error
	}{
		{"the same bytes after an unanswered attempt are a success", "ours", true, nil},
		{"other bytes after an unanswered attempt are ErrExists", "theirs", true, ErrExists},
		{"a longer body with the same start is ErrExists", "ours and more", true, ErrExists},
		{"the same bytes without an unanswered attempt are ErrExists", "ours", false, ErrExists},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := strings.NewReader(tc.body)
			refused := s.client.PutObject
			_, perr := refused(ctx, &s3.PutObjectInput{Bucket: &s.bucket, Key: aws.String(s.full("m")), Body: strings.NewReader("x"), IfNoneMatch: aws.String("*")})
			if !preconditionFailed(perr) {
				t.Fatalf("the store did not refuse: %v", perr)
			}
			err := s.settle(ctx, "put", "m", body, int64(len(tc.body)), PutOptions{IfNotExists: true}, tc.uncertain, perr)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Errorf("settle = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestProbeRefusesAStoreThatIgnoresIfNoneMatch(t *testing.T) {
	srv := s3test.Require(t)
	// The one stand-in of these tests: a store that ignores If-None-Match.
	ps := srv.IgnoreIfNoneMatch(t)

	bucket := srv.Bucket(t)
	srv.Setenv(t)
	for _, tc := range []struct {
		name     string
		endpoint string
		want     string // "" for no error
	}{
		{"the real store honours conditional writes", srv.Endpoint, ""},
		{"a store that ignores If-None-Match is refused, by name", ps.Endpoint, "s3://" + bucket + "/out does not honour conditional writes (If-None-Match); deid cannot commit windows safely there"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.S3.Endpoint = tc.endpoint
			cfg.S3.ForcePathStyle = true
			s, err := NewS3("s3://"+bucket+"/out/", cfg)
			if err != nil {
				t.Fatal(err)
			}
			err = Probe(context.Background(), s)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("probe: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("probe: %v, want %q", err, tc.want)
			}
			if got := keys(t, s, ProbePrefix); len(got) != 0 {
				t.Errorf("the probe left %v", got)
			}
		})
	}
	if ps.Stripped() != 2 {
		t.Errorf("the proxy stripped If-None-Match from %d requests, want the probe's 2", ps.Stripped())
	}
}

func TestS3TakesCredentialsFromTheSharedFiles(t *testing.T) {
	// The standard chain beyond the environment: a named profile of the
	// shared credentials file, and the region from the shared config.
	srv := s3test.Require(t)
	bucket := srv.Bucket(t)
	srv.Setenv(t)
	dir := t.TempDir()
	creds := filepath.Join(dir, "credentials")
	conf := filepath.Join(dir, "config")
	if err := os.WriteFile(creds, []byte("[deid-test]\naws_access_key_id = "+srv.AccessKey+"\naws_secret_access_key = "+srv.SecretKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(conf, []byte("[profile deid-test]\nregion = "+s3test.Region+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_REGION": "",
		"AWS_SHARED_CREDENTIALS_FILE": creds, "AWS_CONFIG_FILE": conf, "AWS_PROFILE": "deid-test",
	} {
		t.Setenv(k, v)
	}
	cfg := DefaultConfig()
	cfg.S3.Endpoint = srv.Endpoint
	cfg.S3.ForcePathStyle = true
	s, err := NewS3("s3://"+bucket+"/p", cfg)
	if err != nil {
		t.Fatal(err)
	}
	put(t, s, "k", "from the profile")
	if got := get(t, s, "k"); got != "from the profile" {
		t.Errorf("get = %q", got)
	}
}
