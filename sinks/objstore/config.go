package objstore

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"time"

	"github.com/mya/deid/internal/backoff"
)

// Config is the `storage` block of deid's configuration: how to reach a
// store that `out` or `state_dir` names by URL.
type Config struct {
	// S3 configures s3:// URLs.
	S3 S3Config `yaml:"s3"`
	// LeaseTTL is how long the lock of a root on object storage (an s3://
	// out or state_dir, which have no flock) outlives its holder's last
	// heartbeat before another run may take it over; the holder renews it
	// every third of it. A run killed without releasing it holds the next
	// one off that long. Not used by this package: the lock is the claim's.
	LeaseTTL time.Duration `yaml:"lease_ttl"`
}

// S3Config configures the S3 client. It holds no credential: those come
// from the standard AWS chain (AWS_ACCESS_KEY_ID and friends, the shared
// config and credentials files, web identity, container and instance
// roles), never from deid's YAML.
type S3Config struct {
	// Endpoint is the base URL of an S3-compatible store
	// ("https://s3.example.internal:9000"); empty means AWS S3.
	Endpoint string `yaml:"endpoint"`
	// Region is the signing region; empty takes the AWS chain's
	// (AWS_REGION, the shared config's profile).
	Region string `yaml:"region"`
	// ForcePathStyle addresses buckets as endpoint/bucket/key instead of
	// bucket.endpoint/key, as most S3-compatible stores need.
	ForcePathStyle bool `yaml:"force_path_style"`
	// MultipartThreshold is the object size from which Put uploads in
	// parts (completed only once every part is stored).
	MultipartThreshold int64 `yaml:"multipart_threshold"`
	// PartSize is the size of each part but the last (at least 5 MiB, the
	// S3 minimum). A Put holds one part in memory.
	PartSize int64 `yaml:"part_size"`
	// RequestTimeout bounds one HTTP request (one attempt).
	RequestTimeout time.Duration `yaml:"request_timeout"`
	// Settings are the retries after a transient failure: RetryBackoff,
	// RetryBackoffMax, and RetryBudget, how long one operation may keep
	// failing transiently (the store restarting, throttling) before it
	// gives up.
	backoff.Settings `yaml:",inline"`
}

// Limits of S3 multipart uploads.
const (
	minPartSize = 5 << 20
	maxPartSize = 5 << 30
	maxParts    = 10000
)

// DefaultConfig returns the defaults: AWS S3 in the chain's region,
// virtual-hosted addressing, multipart from 64 MiB in 16 MiB parts, and a
// minute of retries.
func DefaultConfig() Config {
	return Config{LeaseTTL: 30 * time.Second, S3: S3Config{
		MultipartThreshold: 64 << 20,
		PartSize:           16 << 20,
		RequestTimeout:     2 * time.Minute,
		Settings: backoff.Settings{
			RetryBackoff:    100 * time.Millisecond,
			RetryBackoffMax: 5 * time.Second,
			RetryBudget:     time.Minute,
		},
	}}
}

var regionRE = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)

// Validate reports every problem of the configuration, joined, each
// prefixed with its YAML path.
func (c Config) Validate() error {
	var errs []error
	if c.LeaseTTL < 3*time.Second {
		// S3 keeps an object's time in whole seconds.
		errs = append(errs, fmt.Errorf("storage.lease_ttl: must be at least 3s, well above the store's one-second clock and any clock skew, e.g. 30s (got %s)", c.LeaseTTL))
	}
	s := c.S3
	if s.Endpoint != "" {
		errs = append(errs, checkEndpoint(s.Endpoint))
	}
	if s.Region != "" && !regionRE.MatchString(s.Region) {
		errs = append(errs, fmt.Errorf("storage.s3.region: %q is not a region name, e.g. us-east-1", s.Region))
	}
	if s.PartSize < minPartSize || s.PartSize > maxPartSize {
		errs = append(errs, fmt.Errorf("storage.s3.part_size: must be between 5 MiB and 5 GiB, e.g. 16777216 (got %d)", s.PartSize))
	}
	if s.MultipartThreshold < s.PartSize {
		errs = append(errs, fmt.Errorf("storage.s3.multipart_threshold: must be at least part_size (%d), e.g. 67108864 (got %d)", s.PartSize, s.MultipartThreshold))
	}
	if s.RequestTimeout <= 0 {
		errs = append(errs, fmt.Errorf("storage.s3.request_timeout: must be positive, e.g. 2m (got %s)", s.RequestTimeout))
	}
	errs = append(errs, s.Settings.Problems("storage.s3", "5s")...)
	return errors.Join(errs...)
}

// checkEndpoint checks storage.s3.endpoint. A URL with credentials in it is
// refused without repeating it, so the secret does not reach a log.
func checkEndpoint(e string) error {
	u, err := url.Parse(e)
	if err != nil {
		return fmt.Errorf("storage.s3.endpoint: not a URL, e.g. https://s3.example.internal:9000")
	}
	switch {
	case u.User != nil:
		return errors.New("storage.s3.endpoint: must not carry credentials; they come from the AWS credential chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, the shared config, an instance role)")
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("storage.s3.endpoint: %q must start with https:// (or http://), e.g. https://s3.example.internal:9000", e)
	case u.Host == "":
		return fmt.Errorf("storage.s3.endpoint: %q names no host", e)
	case (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "":
		return fmt.Errorf("storage.s3.endpoint: %q must be a base URL without a path or query; the bucket and prefix go in the s3:// URL", e)
	}
	return nil
}
