package decode

import (
	"sync/atomic"

	"github.com/mya/deid/pipeline"
)

// numKinds is the number of pipeline.EventKind values classify returns.
const numKinds = int(pipeline.KindMessage) + 1

// dropCounts counts the fields the allowlist dropped, per event kind. Only
// the count is kept: a field's name is input data too (it can be a phone
// number, an e-mail address or an id, contract §3.3), so it is never stored,
// never becomes a metric label and never reaches a log. The kinds are a
// fixed set, so whatever the input, the counts have the same four keys.
type dropCounts [numKinds]atomic.Int64

// DroppedFields returns how many fields the allowlist dropped from
// well-formed events, per event kind; kinds with none are left out. The
// payload of a message or unsupported event is never read, so only its
// top-level extras are counted. Malformed records are not counted. Safe for
// concurrent use with Decode; the map is a fresh copy.
func (d *Decoder) DroppedFields() map[pipeline.EventKind]int64 {
	out := map[pipeline.EventKind]int64{}
	d.drops.addTo(out)
	return out
}

// addTo adds the non-zero counts to m. Safe for concurrent use with the
// counters' increments.
func (c *dropCounts) addTo(m map[pipeline.EventKind]int64) {
	for k := range c {
		if n := c[k].Load(); n > 0 {
			m[pipeline.EventKind(k)] += n
		}
	}
}
