package parquet

import (
	"context"
	"errors"
	"fmt"

	"github.com/mya/deid/sinks/anchors"
	"github.com/mya/deid/sinks/objstore"
	"github.com/mya/deid/sinks/signing"
)

// Compression codecs a Config accepts.
const (
	CompressionSnappy = "snappy"
	CompressionZstd   = "zstd"
)

// Config configures the dataset sink.
type Config struct {
	// Dir is the output directory <out>; datasets go to <out>/datasets.
	// cmd/deid sets it from the top-level out key or --out.
	Dir string `yaml:"-"`
	// Compression is the Parquet codec: "snappy" (default) or "zstd".
	Compression string `yaml:"compression"`
	// MaxRowGroupRows caps the rows of one row group.
	MaxRowGroupRows int `yaml:"max_row_group_rows"`
	// MaxRowGroupBytes caps a row group's uncompressed size (estimated from
	// the schema's row width), so a row group never exceeds it.
	MaxRowGroupBytes int64 `yaml:"max_row_group_bytes"`
}

// DefaultConfig returns Snappy and row groups of at most 1Mi rows and
// 128 MiB.
func DefaultConfig() Config {
	return Config{
		Compression:      CompressionSnappy,
		MaxRowGroupRows:  1 << 20,
		MaxRowGroupBytes: 128 << 20,
	}
}

// Validate reports every problem, each prefixed with its YAML path.
func (c Config) Validate() error {
	var errs []error
	if c.Dir == "" {
		errs = append(errs, errors.New("out: must name the output directory (or pass --out)"))
	}
	if c.Compression != CompressionSnappy && c.Compression != CompressionZstd {
		errs = append(errs, fmt.Errorf("parquet.compression: must be %q or %q (got %q)", CompressionSnappy, CompressionZstd, c.Compression))
	}
	if c.MaxRowGroupRows < 1 {
		errs = append(errs, fmt.Errorf("parquet.max_row_group_rows: must be at least 1, e.g. 1048576 (got %d)", c.MaxRowGroupRows))
	}
	if c.MaxRowGroupBytes < 1<<20 {
		errs = append(errs, fmt.Errorf("parquet.max_row_group_bytes: must be at least 1048576 (1 MiB), e.g. 134217728 (got %d)", c.MaxRowGroupBytes))
	}
	return errors.Join(errs...)
}

// Option customizes a Sink with something code injects.
type Option func(*Sink)

// WithStore writes the output to st (a directory or s3://bucket/prefix)
// instead of the directory cfg.Dir.
func WithStore(st objstore.Store) Option { return func(s *Sink) { s.st = st } }

// WithFence has every commit call fence before it writes or removes
// anything and again just before it creates the window's manifest, and
// fail with its error, removing nothing and writing no manifest: the
// output's lease (an s3:// output), checked so that a process another one
// took the output over commits nothing more and deletes none of the files
// the new owner is writing (a data file is named by its bytes, so both
// write the same one).
func WithFence(fence func(ctx context.Context) error) Option {
	return func(s *Sink) { s.fence = fence }
}

// WithSigner signs every manifest the sink commits with signer: a detached
// signature, _manifest.json.sig, is written beside the manifest before the
// manifest itself, so no committed window is unsigned. A nil signer leaves
// the outputs unsigned.
func WithSigner(signer signing.Signer) Option { return func(s *Sink) { s.signer = signer } }

// WithAnchors appends one line per committed manifest to a (the anchor log
// outside the output): the dataset, the window's directory, the manifest's
// SHA-256 and the previous manifest's, after the manifest is committed and
// before Commit returns. A nil a anchors nothing.
func WithAnchors(a anchors.Anchorer) Option {
	return func(s *Sink) {
		if a != nil {
			s.anchor = a
		}
	}
}
