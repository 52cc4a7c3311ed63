package objstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/google/go-cmp/cmp"
	"gopkg.in/yaml.v3"
)

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*S3Config)
		want []string // one entry per expected problem, each a substring
	}{
		{"the defaults are valid", func(*S3Config) {}, nil},
		{"an S3-compatible endpoint with a port is valid", func(c *S3Config) { c.Endpoint = "http://127.0.0.1:19000"; c.Region = "us-east-1" }, nil},
		{"an endpoint with credentials is refused without repeating them", func(c *S3Config) { c.Endpoint = "https://AKIA:hunter2@s3.example" },
			[]string{"storage.s3.endpoint: must not carry credentials"}},
		{"an endpoint without a scheme is refused", func(c *S3Config) { c.Endpoint = "s3.example:9000" }, []string{"storage.s3.endpoint:"}},
		{"an endpoint with a path is refused", func(c *S3Config) { c.Endpoint = "https://s3.example/bucket" }, []string{"storage.s3.endpoint: \"https://s3.example/bucket\" must be a base URL without a path"}},
		{"a region that is no region name is refused", func(c *S3Config) { c.Region = "US East" }, []string{"storage.s3.region:"}},
		{"every problem is reported at once", func(c *S3Config) {
			c.PartSize = 1 << 20
			c.MultipartThreshold = 0
			c.RequestTimeout = 0
			c.RetryBackoff = 0
			c.RetryBackoffMax = -1
			c.RetryBudget = -time.Second
		}, []string{"storage.s3.part_size:", "storage.s3.multipart_threshold:", "storage.s3.request_timeout:", "storage.s3.retry_backoff:", "storage.s3.retry_backoff_max:", "storage.s3.retry_budget:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tc.mod(&cfg.S3)
			err := cfg.Validate()
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Validate passed")
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tc.want) {
				t.Errorf("%d problems, want %d:\n%v", len(lines), len(tc.want), err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("no %q in:\n%v", w, err)
				}
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Error("the error repeats the secret")
			}
		})
	}
}

func TestConfigDecodesFromYAML(t *testing.T) {
	doc := "s3:\n  endpoint: http://127.0.0.1:19000\n  region: eu-west-1\n  force_path_style: true\n  retry_budget: 30s\n"
	cfg := DefaultConfig()
	dec := yaml.NewDecoder(strings.NewReader(doc))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		t.Fatal(err)
	}
	want := DefaultConfig()
	want.S3.Endpoint, want.S3.Region, want.S3.ForcePathStyle, want.S3.RetryBudget = "http://127.0.0.1:19000", "eu-west-1", true, 30*time.Second
	if diff := cmp.Diff(want, cfg); diff != "" {
		t.Errorf("decoded (-want +got):\n%s", diff)
	}
	bad := yaml.NewDecoder(strings.NewReader("s3:\n  secret_access_key: x\n"))
	bad.KnownFields(true)
	if err := bad.Decode(&cfg); err == nil {
		t.Error("a credential key in the YAML was accepted")
	}
}

func TestParseS3URL(t *testing.T) {
	for _, tc := range []struct {
		url, bucket, prefix, err string
	}{
		{url: "s3://bucket/out/run-1", bucket: "bucket", prefix: "out/run-1"},
		{url: "s3://bucket/out/", bucket: "bucket", prefix: "out"},
		{url: "s3://bucket", bucket: "bucket"},
		{url: "S3://my.bucket-1/p", bucket: "my.bucket-1", prefix: "p"},
		{url: "s3://Bucket/p", err: "not a bucket name"},
		{url: "s3://b/p", err: "not a bucket name"},
		{url: "s3://bucket/a//b", err: "invalid prefix"},
		{url: "s3://bucket/../b", err: "invalid prefix"},
		{url: "s3://key:secret@bucket/p", err: "credentials come from the AWS credential chain"},
		{url: "s3://bucket/p?versionId=1", err: "no query"},
		{url: "gs://bucket/p", err: "not an s3://"},
	} {
		t.Run(tc.url, func(t *testing.T) {
			b, p, err := ParseS3URL(tc.url)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				if strings.Contains(err.Error(), "secret@") {
					t.Error("the error repeats the credentials")
				}
				return
			}
			if err != nil || b != tc.bucket || p != tc.prefix {
				t.Errorf("= %q, %q, %v; want %q, %q", b, p, err, tc.bucket, tc.prefix)
			}
		})
	}
}

func TestOpenPicksTheStoreByScheme(t *testing.T) {
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	dir := t.TempDir()
	for _, tc := range []struct {
		url, want, err string
	}{
		{url: filepath.Join(dir, "a"), want: "*objstore.Local"},
		{url: "file://" + filepath.Join(dir, "b"), want: "*objstore.Local"},
		{url: "s3://bucket/prefix", want: "*objstore.S3"},
		{url: "file://relative", err: "absolute path"},
		{url: "gs://bucket/prefix", err: `unsupported storage scheme "gs"`},
		{url: "gs://user:hunter2@bucket/prefix", err: `gs://…@bucket/prefix: unsupported storage scheme "gs"`},
	} {
		t.Run(tc.url, func(t *testing.T) {
			s, err := Open(tc.url, DefaultConfig())
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprintf("%T", s); got != tc.want {
				t.Errorf("Open = %s, want %s", got, tc.want)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "b")); err != nil {
		t.Errorf("the local store's directory was not created: %v", err)
	}
}

func TestNewS3RefusesAMissingRegion(t *testing.T) {
	for _, k := range []string{"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"} {
		t.Setenv(k, "")
	}
	t.Setenv("AWS_CONFIG_FILE", os.DevNull)
	_, err := NewS3("s3://bucket/p", DefaultConfig())
	if err == nil || !strings.Contains(err.Error(), "storage.s3.region") {
		t.Fatalf("err = %v, want a missing region", err)
	}
}

// response builds an S3 error as the SDK returns it.
func response(status int, code string) error {
	resp := &smithyhttp.Response{Response: &http.Response{StatusCode: status}}
	var inner error = &smithy.GenericAPIError{Code: code}
	return &awshttp.ResponseError{ResponseError: &smithyhttp.ResponseError{Response: resp, Err: inner}}
}

func TestTransient(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"503 SlowDown is throttling", response(503, "SlowDown"), true},
		{"500 InternalError", response(500, "InternalError"), true},
		{"429 too many requests", response(429, ""), true},
		{"409 ConditionalRequestConflict is a conditional write in flight", response(409, "ConditionalRequestConflict"), true},
		{"409 ExistingObjectIsDirectory is a prefix's directory being created", response(409, "ExistingObjectIsDirectory"), true},
		{"connection refused", &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, true},
		{"connection reset", fmt.Errorf("x: %w", syscall.ECONNRESET), true},
		{"a request that could not be sent", &smithyhttp.RequestSendError{Err: io.ErrUnexpectedEOF}, true},
		{"an attempt that timed out", context.DeadlineExceeded, true},
		{"412 precondition failed", response(412, "PreconditionFailed"), false},
		{"403 access denied", response(403, "AccessDenied"), false},
		{"404 no such bucket", response(404, "NoSuchBucket"), false},
		{"no credentials", &v4.SigningError{Err: errors.New("failed to retrieve credentials")}, false},
		{"a cancelled context", context.Canceled, false},
		{"no error", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := transient(tc.err); got != tc.want {
				t.Errorf("transient(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}
