package objstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// S3 is a Store under a prefix of an S3 bucket, on AWS S3 or an
// S3-compatible store. Objects are written with one PUT, or from
// storage.s3.multipart_threshold on with a multipart upload completed only
// once every part is stored; a conditional create sends If-None-Match: *.
// The AWS SDK's own retries are off: every request is retried here, within
// storage.s3.retry_budget, so that a store restarting costs a pause, not a
// run.
type S3 struct {
	client  *s3.Client
	bucket  string
	prefix  string // without a trailing '/'; empty for the whole bucket
	cfg     S3Config
	onRetry func(op string, err error)
}

// Option changes what code injects into a store.
type Option func(*options)

type options struct {
	onRetry func(op string, err error)
}

// OnRetry has f called (from the goroutine of the operation) before each
// wait after a transient failure, with the operation's name ("put", "get",
// "upload part"…) and the failure, e.g. to log or count it.
func OnRetry(f func(op string, err error)) Option { return func(o *options) { o.onRetry = f } }

var bucketRE = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

// ParseS3URL splits "s3://bucket/prefix" into its bucket and its prefix
// (without a trailing '/'; empty for "s3://bucket").
func ParseS3URL(u string) (bucket, prefix string, err error) {
	scheme, rest, ok := strings.Cut(u, "://")
	if !ok || !strings.EqualFold(scheme, "s3") {
		return "", "", fmt.Errorf("objstore: %q is not an s3://bucket/prefix URL", u)
	}
	if strings.Contains(rest, "@") {
		// Not repeated: what stands before '@' may be a secret.
		return "", "", errors.New("objstore: an s3:// URL has no user part; credentials come from the AWS credential chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, the shared config, an instance role)")
	}
	if strings.ContainsAny(rest, "?#") {
		return "", "", fmt.Errorf("objstore: %q: an s3:// URL has no query or fragment", u)
	}
	bucket, prefix, _ = strings.Cut(rest, "/")
	if !bucketRE.MatchString(bucket) {
		return "", "", fmt.Errorf("objstore: %q: %q is not a bucket name (3 to 63 lowercase letters, digits, '.' and '-')", u, bucket)
	}
	prefix = strings.TrimSuffix(prefix, "/")
	if prefix != "" {
		if err := checkPath(prefix); err != nil {
			return "", "", fmt.Errorf("objstore: %q: invalid prefix: %w", u, err)
		}
	}
	return bucket, prefix, nil
}

// NewS3 opens the store that url ("s3://bucket/prefix") names, with cfg.S3.
// It checks the configuration and loads the AWS configuration (region,
// credentials chain) but sends no request: Probe does.
func NewS3(url string, cfg Config, opts ...Option) (*S3, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	bucket, prefix, err := ParseS3URL(url)
	if err != nil {
		return nil, err
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	c := cfg.S3
	load := []func(*config.LoadOptions) error{
		config.WithRetryer(func() aws.Retryer { return aws.NopRetryer{} }),
		config.WithHTTPClient(awshttp.NewBuildableClient().WithTimeout(c.RequestTimeout)),
	}
	if c.Region != "" {
		load = append(load, config.WithRegion(c.Region))
	}
	ac, err := config.LoadDefaultConfig(context.Background(), load...)
	if err != nil {
		return nil, fmt.Errorf("objstore: %s: loading the AWS configuration (environment, shared config): %w", url, err)
	}
	if ac.Region == "" {
		return nil, fmt.Errorf("objstore: %s: no region: set storage.s3.region, or AWS_REGION (us-east-1 suits most S3-compatible stores)", url)
	}
	client := s3.NewFromConfig(ac, func(so *s3.Options) {
		if c.Endpoint != "" {
			so.BaseEndpoint = aws.String(strings.TrimSuffix(c.Endpoint, "/"))
		}
		so.UsePathStyle = c.ForcePathStyle
	})
	return &S3{client: client, bucket: bucket, prefix: prefix, cfg: c, onRetry: o.onRetry}, nil
}

// String returns the store's s3:// URL.
func (s *S3) String() string {
	if s.prefix == "" {
		return "s3://" + s.bucket
	}
	return "s3://" + s.bucket + "/" + s.prefix
}

// full returns the bucket key of a store key.
func (s *S3) full(key string) string {
	if s.prefix == "" {
		return key
	}
	return s.prefix + "/" + key
}

func (s *S3) name(key string) string { return s.String() + "/" + key }

func (s *S3) retrier() *retrier { return &retrier{cfg: &s.cfg, onRetry: s.onRetry} }

// fail wraps a request's error with the operation and the object.
func (s *S3) fail(op, key string, err error) error {
	return fmt.Errorf("objstore: %s %s: %w", op, s.name(key), err)
}

// Put implements Store.
func (s *S3) Put(ctx context.Context, key string, body io.ReadSeeker, opts PutOptions) error {
	if err := checkKey(key); err != nil {
		return err
	}
	n, err := size(body)
	if err != nil {
		return err
	}
	if n >= s.cfg.MultipartThreshold {
		return s.putMultipart(ctx, key, body, n, opts)
	}
	// uncertain: an attempt failed without an answer, so it may have
	// stored the object all the same.
	uncertain := false
	err = s.retrier().do(ctx, "put", func(ctx context.Context) error {
		if _, err := body.Seek(0, io.SeekStart); err != nil {
			return fmt.Errorf("rewinding the body: %w", err)
		}
		in := &s3.PutObjectInput{Bucket: &s.bucket, Key: aws.String(s.full(key)), Body: body, ContentLength: aws.Int64(n)}
		if opts.IfNotExists {
			in.IfNoneMatch = aws.String("*")
		}
		_, err := s.client.PutObject(ctx, in)
		uncertain = uncertain || transient(err)
		return err
	})
	return s.settle(ctx, "put", key, body, n, opts, uncertain, err)
}

// settle turns a write's final error into Put's: nil, ErrExists, or the
// error. A conditional create refused (or an upload gone) after an attempt
// without an answer is that attempt's own success when the object in place
// has the same bytes.
func (s *S3) settle(ctx context.Context, op, key string, body io.ReadSeeker, n int64, opts PutOptions, uncertain bool, err error) error {
	if err == nil {
		return nil
	}
	if opts.IfNotExists && (preconditionFailed(err) || (uncertain && noSuchUpload(err))) {
		if uncertain {
			if same, serr := s.sameContent(ctx, key, body, n); serr == nil && same {
				return nil
			}
		}
		return fmt.Errorf("objstore: %s: %w", s.name(key), ErrExists)
	}
	return s.fail(op, key, err)
}

// putMultipart uploads body in parts and completes the upload only once
// every part is stored; on any failure it aborts the upload, so nothing
// becomes visible.
func (s *S3) putMultipart(ctx context.Context, key string, body io.ReadSeeker, n int64, opts PutOptions) error {
	r := s.retrier()
	full := aws.String(s.full(key))
	var id *string
	err := r.do(ctx, "create multipart upload", func(ctx context.Context) error {
		out, err := s.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &s.bucket, Key: full})
		if err == nil {
			id = out.UploadId
		}
		return err
	})
	if err != nil {
		return s.fail("create multipart upload", key, err)
	}
	completed := false
	defer func() {
		if !completed {
			s.abort(ctx, full, id)
		}
	}()
	// Parts of at least PartSize, and few enough for S3's part limit.
	partSize := max(s.cfg.PartSize, (n+maxParts-1)/maxParts)
	buf := make([]byte, min(partSize, n))
	var parts []types.CompletedPart
	for num, off := int32(1), int64(0); off < n; num++ {
		l := min(partSize, n-off)
		if _, err := body.Seek(off, io.SeekStart); err != nil {
			return s.fail("upload part", key, err)
		}
		if _, err := io.ReadFull(body, buf[:l]); err != nil {
			return s.fail("upload part", key, fmt.Errorf("reading the body: %w", err))
		}
		var etag *string
		err := r.do(ctx, "upload part", func(ctx context.Context) error {
			out, err := s.client.UploadPart(ctx, &s3.UploadPartInput{
				Bucket: &s.bucket, Key: full, UploadId: id, PartNumber: aws.Int32(num),
				Body: bytes.NewReader(buf[:l]), ContentLength: aws.Int64(l),
			})
			if err == nil {
				etag = out.ETag
			}
			return err
		})
		if err != nil {
			return s.fail(fmt.Sprintf("upload part %d of", num), key, err)
		}
		parts = append(parts, types.CompletedPart{ETag: etag, PartNumber: aws.Int32(num)})
		off += l
	}
	uncertain := false
	err = r.do(ctx, "complete multipart upload", func(ctx context.Context) error {
		in := &s3.CompleteMultipartUploadInput{
			Bucket: &s.bucket, Key: full, UploadId: id,
			MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
		}
		if opts.IfNotExists {
			in.IfNoneMatch = aws.String("*")
		}
		_, err := s.client.CompleteMultipartUpload(ctx, in)
		uncertain = uncertain || transient(err)
		return err
	})
	if err == nil {
		completed = true
		return nil
	}
	err = s.settle(ctx, "complete multipart upload", key, body, n, opts, uncertain, err)
	completed = err == nil
	return err
}

// abort aborts a multipart upload, best effort and even when ctx is done:
// an upload left behind is invisible, and a bucket lifecycle rule
// (AbortIncompleteMultipartUpload) removes its parts.
func (s *S3) abort(ctx context.Context, full, id *string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	s.retrier().do(ctx, "abort multipart upload", func(ctx context.Context) error {
		_, err := s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &s.bucket, Key: full, UploadId: id})
		if noSuchUpload(err) {
			return nil
		}
		return err
	})
}

// sameContent tells whether the object under key holds exactly body's n
// bytes.
func (s *S3) sameContent(ctx context.Context, key string, body io.ReadSeeker, n int64) (bool, error) {
	rc, err := s.Get(ctx, key)
	if err != nil {
		return false, err
	}
	defer rc.Close()
	if _, err := body.Seek(0, io.SeekStart); err != nil {
		return false, err
	}
	a, b := make([]byte, 64<<10), make([]byte, 64<<10)
	var read int64
	for {
		na, ea := io.ReadFull(rc, a)
		nb, eb := io.ReadFull(body, b[:na])
		if nb != na || !bytes.Equal(a[:na], b[:nb]) {
			return false, nil
		}
		read += int64(na)
		if ea == io.EOF || ea == io.ErrUnexpectedEOF {
			return read == n, nil
		}
		if ea != nil {
			return false, ea
		}
		if eb != nil {
			return false, nil
		}
	}
}

// Get implements Store.
func (s *S3) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	var out *s3.GetObjectOutput
	err := s.retrier().do(ctx, "get", func(ctx context.Context) error {
		o, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.bucket, Key: aws.String(s.full(key))})
		out = o
		return err
	})
	if err != nil {
		return nil, s.missing("get", key, err)
	}
	return out.Body, nil
}

// Stat implements Store.
func (s *S3) Stat(ctx context.Context, key string) (Info, error) {
	if err := checkKey(key); err != nil {
		return Info{}, err
	}
	var out *s3.HeadObjectOutput
	err := s.retrier().do(ctx, "stat", func(ctx context.Context) error {
		o, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.bucket, Key: aws.String(s.full(key))})
		out = o
		return err
	})
	if err != nil {
		return Info{}, s.missing("stat", key, err)
	}
	return Info{Key: key, Size: aws.ToInt64(out.ContentLength), ModTime: aws.ToTime(out.LastModified)}, nil
}

// missing wraps a read's error, as ErrNotFound when the object is missing
// (not when the bucket is: that is a configuration error).
func (s *S3) missing(op, key string, err error) error {
	if notFound(err) {
		return fmt.Errorf("objstore: %s: %w", s.name(key), ErrNotFound)
	}
	return s.fail(op, key, err)
}

// List implements Store.
func (s *S3) List(ctx context.Context, prefix string) ([]Info, error) {
	if err := checkPrefix(prefix); err != nil {
		return nil, err
	}
	base := ""
	if s.prefix != "" {
		base = s.prefix + "/"
	}
	var out []Info
	r := s.retrier()
	var token *string
	for {
		var page *s3.ListObjectsV2Output
		err := r.do(ctx, "list", func(ctx context.Context) error {
			o, err := s.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{
				Bucket: &s.bucket, Prefix: aws.String(base + prefix), ContinuationToken: token,
			})
			page = o
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("objstore: list %s/%s: %w", s, prefix, err)
		}
		for _, o := range page.Contents {
			k, ok := strings.CutPrefix(aws.ToString(o.Key), base)
			if !ok {
				continue
			}
			out = append(out, Info{Key: k, Size: aws.ToInt64(o.Size), ModTime: aws.ToTime(o.LastModified)})
		}
		if !aws.ToBool(page.IsTruncated) || page.NextContinuationToken == nil {
			break
		}
		token = page.NextContinuationToken
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// Delete implements Store.
func (s *S3) Delete(ctx context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	err := s.retrier().do(ctx, "delete", func(ctx context.Context) error {
		_, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.bucket, Key: aws.String(s.full(key))})
		return err
	})
	if err != nil && !notFound(err) {
		return s.fail("delete", key, err)
	}
	return nil
}

// status returns the HTTP status of a request's error, or 0.
func status(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// code returns the S3 error code of a request's error, or "".
func code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// preconditionFailed tells whether a conditional write was refused because
// the object exists.
func preconditionFailed(err error) bool {
	return status(err) == http.StatusPreconditionFailed || code(err) == "PreconditionFailed"
}

// noSuchUpload tells whether a multipart upload is gone (completed or
// aborted).
func noSuchUpload(err error) bool { return code(err) == "NoSuchUpload" }

// notFound tells whether a request found no object (a missing bucket is
// not "no object").
func notFound(err error) bool {
	switch code(err) {
	case "NoSuchBucket":
		return false
	case "NoSuchKey", "NotFound":
		return true
	}
	return status(err) == http.StatusNotFound && code(err) != "NoSuchUpload"
}
