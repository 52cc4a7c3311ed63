package exclusions

import (
	"errors"
	"fmt"
	"time"

	"github.com/mya/deid/pipeline"
	"github.com/mya/deid/sinks/anchors"
	"github.com/mya/deid/sinks/objstore"
	"github.com/mya/deid/sinks/signing"
)

// Compression codecs a Config accepts.
const (
	CompressionSnappy = "snappy"
	CompressionZstd   = "zstd"
)

// Config configures the exclusion log.
type Config struct {
	// Dir is the output directory <out>; the log goes to <out>/exclusions.
	// cmd/deid sets it from the top-level out key or --out.
	Dir string `yaml:"-"`
	// Compression is the segments' Parquet codec: "snappy" (default) or
	// "zstd".
	Compression string `yaml:"compression"`
}

// DefaultConfig returns Snappy-compressed segments.
func DefaultConfig() Config { return Config{Compression: CompressionSnappy} }

// Validate reports every problem, each prefixed with its YAML path.
func (c Config) Validate() error {
	var errs []error
	if c.Dir == "" {
		errs = append(errs, errors.New("out: must name the output directory (or pass --out)"))
	}
	if c.Compression != CompressionSnappy && c.Compression != CompressionZstd {
		errs = append(errs, fmt.Errorf("exclusions.compression: must be %q or %q (got %q)", CompressionSnappy, CompressionZstd, c.Compression))
	}
	return errors.Join(errs...)
}

// Option customizes a Log with something code injects.
type Option func(*Log)

// WithDatasets names the dimensions of cell-level entries: a cell of a
// known dataset is written "platform=instagram/region=EU"; without its spec,
// by position ("dim0=instagram/dim1=EU").
func WithDatasets(specs ...*pipeline.DatasetSpec) Option {
	return func(l *Log) {
		for _, s := range specs {
			names := make([]string, len(s.Dimensions))
			for i, d := range s.Dimensions {
				names[i] = d.Name
			}
			l.dims[s.Name] = names
		}
	}
}

// WithClock sets the clock that dates entries appended without a decision
// time (DecidedAt 0). The default is time.Now.
func WithClock(now func() time.Time) Option { return func(l *Log) { l.now = now } }

// WithStore writes the log to st (a directory or s3://bucket/prefix)
// instead of the directory cfg.Dir.
func WithStore(st objstore.Store) Option { return func(l *Log) { l.st = st } }

// WithSigner signs every segment the log commits with signer: a detached
// signature, segment-000001.parquet.sig, signs the segment's path and
// SHA-256 (its chain head), and is written beside it before the segment is
// published, so no committed segment is unsigned. A nil signer leaves the
// log unsigned (hash-chained only).
func WithSigner(signer signing.Signer) Option { return func(l *Log) { l.signer = signer } }

// WithAnchors appends one line per committed segment to a (the anchor log
// outside the output): the chain, the segment's number, its SHA-256 and the
// previous segment's, after the segment is committed and before Commit
// returns. Opening a chain anchors its newest segment again, and Rollback
// appends a rollback line before it removes anything. A nil a anchors
// nothing.
func WithAnchors(a anchors.Anchorer) Option {
	return func(l *Log) {
		if a != nil {
			l.anchor = a
		}
	}
}
