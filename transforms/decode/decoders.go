package decode

import (
	"runtime"
	"sync"

	"github.com/mya/deid/pipeline"
)

// Decoders makes the decoders of a run, one per worker, and sums their
// dropped-field counts for metrics. It validates the configuration once, so
// that making a decoder cannot fail. A decoder that is no longer used (a
// worker of an earlier Kafka generation) is not kept alive: when it is
// garbage collected its counts are folded into a total, so they never go
// backwards and nothing accumulates. Safe for concurrent use.
type Decoders struct {
	cfg Config

	mu sync.Mutex
	// live holds the counters of decoders that may still be in use.
	live map[*dropCounts]struct{}
	// gone sums the counts of decoders that were garbage collected.
	gone map[pipeline.EventKind]int64
}

// NewDecoders returns a maker of decoders with cfg, or cfg's problems.
func NewDecoders(cfg Config) (*Decoders, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Decoders{cfg: cfg, live: map[*dropCounts]struct{}{}, gone: map[pipeline.EventKind]int64{}}, nil
}

// NewDecoder returns a new decoder; it fits pipeline.Stages.NewDecoder.
func (s *Decoders) NewDecoder() pipeline.Decoder {
	d := newDecoder(s.cfg)
	s.mu.Lock()
	s.live[d.drops] = struct{}{}
	s.mu.Unlock()
	runtime.AddCleanup(d, s.fold, d.drops)
	return d
}

// fold moves the counts of a collected decoder into the total. The decoder
// is unreachable, so its counters no longer change.
func (s *Decoders) fold(c *dropCounts) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c.addTo(s.gone)
	delete(s.live, c)
}

// DroppedFields sums DroppedFields over every decoder made so far.
func (s *Decoders) DroppedFields() map[pipeline.EventKind]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[pipeline.EventKind]int64, numKinds)
	for k, n := range s.gone {
		out[k] = n
	}
	for c := range s.live {
		c.addTo(out)
	}
	return out
}
