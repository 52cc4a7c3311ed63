// Package anchorstest helps test code that anchors its commits: a Recorder
// stands in for the anchor log.
package anchorstest

import (
	"context"
	"sync"
	"time"

	"github.com/mya/deid/sinks/anchors"
)

// Recorder records the lines anchored to it, with their times zeroed so
// that tests can compare them, or fails every Anchor with Err when set. Safe
// for concurrent use.
type Recorder struct {
	// Err, when set, is what every Anchor returns.
	Err error

	mu    sync.Mutex
	lines []anchors.Line
}

// Anchor records l, or returns Err.
func (r *Recorder) Anchor(_ context.Context, l anchors.Line) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.Err != nil {
		return r.Err
	}
	l.Time = time.Time{}
	r.lines = append(r.lines, l)
	return nil
}

// Lines returns the lines recorded so far.
func (r *Recorder) Lines() []anchors.Line {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]anchors.Line(nil), r.lines...)
}
