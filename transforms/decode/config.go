package decode

import (
	"errors"
	"fmt"
)

// Config bounds what the decoder accepts and how much it remembers.
type Config struct {
	// MaxIDBytes bounds event_id, workspace_id, user_id, campaign_id and
	// creator_id, in bytes after unescaping. contract §3.1 sets 128. (event_type
	// has a fixed bound of 128 bytes: it is written to the exclusion log.)
	MaxIDBytes int `yaml:"max_id_bytes"`
	// MaxDimensionBytes bounds a dimension string (platform, industry,
	// feature, …) in bytes after unescaping, so that a free-text value
	// pushed into a dimension field is rejected instead of becoming a cell.
	MaxDimensionBytes int `yaml:"max_dimension_bytes"`
	// MaxDepth bounds the nesting of objects and arrays (the record's own
	// object is depth 1, its payload depth 2), so that a hostile record
	// cannot exhaust the stack.
	MaxDepth int `yaml:"max_depth"`
	// InternEntries bounds the decoder's table of open dimension values
	// (industry, feature). Values beyond it are allocated per event.
	InternEntries int `yaml:"intern_entries"`
}

// DefaultConfig returns the bounds of contract §3.1 and sizes that fit the
// default datasets.
func DefaultConfig() Config {
	return Config{
		MaxIDBytes:        128,
		MaxDimensionBytes: 128,
		MaxDepth:          64,
		InternEntries:     1 << 16,
	}
}

// Limits of the configuration itself: they keep the decoder's scratch
// buffers and recursion small whatever the file says.
const (
	maxIDBytesLimit  = 1024
	maxDimBytesLimit = 1024
	maxDepthLimit    = 1024
	minDepth         = 2 // the record's object and its payload object
	maxInternLimit   = 1 << 24
	yamlPrefix       = "decode."
)

// Validate reports every problem, each prefixed with its YAML path.
func (c Config) Validate() error {
	var errs []error
	if c.MaxIDBytes < 1 || c.MaxIDBytes > maxIDBytesLimit {
		errs = append(errs, fmt.Errorf("%smax_id_bytes: must be between 1 and %d, e.g. 128 as contract §3.1 sets (got %d)", yamlPrefix, maxIDBytesLimit, c.MaxIDBytes))
	}
	if c.MaxDimensionBytes < 1 || c.MaxDimensionBytes > maxDimBytesLimit {
		errs = append(errs, fmt.Errorf("%smax_dimension_bytes: must be between 1 and %d, e.g. 128 (got %d)", yamlPrefix, maxDimBytesLimit, c.MaxDimensionBytes))
	}
	if c.MaxDepth < minDepth || c.MaxDepth > maxDepthLimit {
		errs = append(errs, fmt.Errorf("%smax_depth: must be between %d and %d, e.g. 64 (got %d)", yamlPrefix, minDepth, maxDepthLimit, c.MaxDepth))
	}
	if c.InternEntries < 0 || c.InternEntries > maxInternLimit {
		errs = append(errs, fmt.Errorf("%sintern_entries: must be between 0 and %d, e.g. 65536 (got %d)", yamlPrefix, maxInternLimit, c.InternEntries))
	}
	return errors.Join(errs...)
}
