package pipeline

import (
	"errors"
	"fmt"
	"time"
)

// Config holds the engine's time semantics (contract §5) and bounds.
type Config struct {
	// Window is the tumbling window size; it must divide 24h so windows
	// align to UTC days.
	Window time.Duration `yaml:"window"`
	// MaxOutOfOrderness is how far behind the newest event time the
	// watermark trails.
	MaxOutOfOrderness time.Duration `yaml:"max_out_of_orderness"`
	// AllowedLateness is how long after its end a window stays open.
	AllowedLateness time.Duration `yaml:"allowed_lateness"`
	// MaxFutureSkew is how far ahead of the processing reference time an
	// event time may be before the record is malformed.
	MaxFutureSkew time.Duration `yaml:"max_future_skew"`
	// IdleTimeout is how long a quiet partition may hold back publication
	// (streaming only).
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// SegmentEntries caps the exclusion entries a partition buffers before
	// it commits a segment on its own.
	SegmentEntries int `yaml:"segment_entries"`
	// CheckpointInterval is how often a partition checkpoints (and commits
	// its offset) between window closes.
	CheckpointInterval time.Duration `yaml:"checkpoint_interval"`

	// PolicyVersion is the hash of the effective configuration, written
	// into every exclusion entry and manifest. Set by the caller.
	PolicyVersion string `yaml:"-"`
	// PipelineVersion is deid's version. Set by the caller.
	PipelineVersion string `yaml:"-"`
}

// DefaultConfig returns the defaults of contract §5.
func DefaultConfig() Config {
	return Config{
		Window:             24 * time.Hour,
		MaxOutOfOrderness:  10 * time.Minute,
		AllowedLateness:    time.Hour,
		MaxFutureSkew:      15 * time.Minute,
		IdleTimeout:        time.Minute,
		SegmentEntries:     100_000,
		CheckpointInterval: 10 * time.Second,
	}
}

// Validate reports every problem, each prefixed with its YAML path.
func (c Config) Validate() error {
	var errs []error
	// Windows are aligned to UTC days and named by the minute they start
	// (dt=…/hour=…/minute=…), so a window is whole minutes that divide a
	// day: 90s divides 24h but would start off the minute.
	if c.Window < time.Minute || c.Window%time.Minute != 0 || (24*time.Hour)%c.Window != 0 {
		errs = append(errs, fmt.Errorf("pipeline.window: must be at least 1m, whole minutes, and divide 24h evenly, e.g. 15m, 1h, 6h or 24h (got %s)", c.Window))
	}
	if c.MaxOutOfOrderness < 0 {
		errs = append(errs, fmt.Errorf("pipeline.max_out_of_orderness: must not be negative (got %s)", c.MaxOutOfOrderness))
	}
	if c.AllowedLateness < 0 {
		errs = append(errs, fmt.Errorf("pipeline.allowed_lateness: must not be negative (got %s)", c.AllowedLateness))
	}
	if c.MaxFutureSkew < 0 {
		errs = append(errs, fmt.Errorf("pipeline.max_future_skew: must not be negative (got %s)", c.MaxFutureSkew))
	}
	if c.IdleTimeout <= 0 {
		errs = append(errs, fmt.Errorf("pipeline.idle_timeout: must be positive, e.g. 1m (got %s)", c.IdleTimeout))
	}
	if c.CheckpointInterval <= 0 {
		errs = append(errs, fmt.Errorf("pipeline.checkpoint_interval: must be positive, e.g. 10s (got %s)", c.CheckpointInterval))
	}
	if c.SegmentEntries < 1 {
		errs = append(errs, fmt.Errorf("pipeline.segment_entries: must be at least 1 (got %d)", c.SegmentEntries))
	}
	return errors.Join(errs...)
}

// windowOf returns the window holding event time t (microseconds).
func (c *Config) windowOf(t int64) Window {
	size := c.Window.Microseconds()
	start := t - mod(t, size)
	return Window{Start: start, End: start + size}
}

func mod(a, b int64) int64 {
	m := a % b
	if m < 0 {
		m += b
	}
	return m
}
