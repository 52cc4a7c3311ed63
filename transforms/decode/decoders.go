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
	live map[*dropTable]struct{}
	// gone sums the counts of decoders that were garbage collected.
	gone map[DroppedField]int64
}

// NewDecoders returns a maker of decoders with cfg, or cfg's problems.
func NewDecoders(cfg Config) (*Decoders, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Decoders{cfg: cfg, live: map[*dropTable]struct{}{}, gone: map[DroppedField]int64{}}, nil
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
func (s *Decoders) fold(t *dropTable) {
	counts := t.snapshot()
	s.mu.Lock()
	defer s.mu.Unlock()
	for f, n := range counts {
		s.gone[f] += n
	}
	delete(s.live, t)
}

// DroppedFields sums DroppedFields over every decoder made so far.
func (s *Decoders) DroppedFields() map[DroppedField]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[DroppedField]int64, len(s.gone))
	for f, n := range s.gone {
		out[f] = n
	}
	for t := range s.live {
		for f, n := range t.snapshot() {
			out[f] += n
		}
	}
	return out
}
