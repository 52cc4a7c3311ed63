package decode

import (
	"sync"
	"sync/atomic"

	"github.com/mya/deid/pipeline"
)

// DroppedField names a field the allowlist dropped (SPEC §3.3): the kind of
// event it came in and its path, "ip" for a top-level field or
// "payload.caption" for a field of the payload. Only field names are kept,
// never values. A name that does not look like an identifier (ASCII
// letters, digits, '_' and '-', at most 64 bytes), and any name past
// Config.MaxDroppedNames, is counted as "*" (or "payload.*"): data used as
// a key (an e-mail address, a phone number) does not become a metric
// label, and the label set stays bounded.
type DroppedField struct {
	Kind  pipeline.EventKind
	Field string
}

// numKinds is the number of pipeline.EventKind values classify returns.
const numKinds = int(pipeline.KindMessage) + 1

// dropCounter counts the drops of one field name, per event kind.
type dropCounter struct {
	path      string // "payload.caption"
	name      string // "caption", a substring of path
	inPayload bool
	counts    [numKinds]atomic.Int64
}

// dropTable maps dropped field names to their counters. The decoder's
// goroutine reads the maps without a lock; it is also the only writer, and
// writes under mu, which DroppedFields takes to read them from elsewhere.
type dropTable struct {
	mu      sync.Mutex
	top     map[string]*dropCounter
	payload map[string]*dropCounter
	all     []*dropCounter
	max     int
	// otherTop and otherPayload count names that are not kept.
	otherTop, otherPayload dropCounter
	// recent caches kept counters by a hash of their name, so that a name
	// seen before costs a probe and a comparison rather than a map lookup.
	// Only the decoder's goroutine uses it.
	recent [64]*dropCounter
}

func newDropTable(max int) *dropTable {
	t := &dropTable{top: map[string]*dropCounter{}, payload: map[string]*dropCounter{}, max: max}
	t.otherTop.path = "*"
	t.otherPayload.path = "payload.*"
	return t
}

// counter returns the counter of a top-level (inPayload false) or payload
// field name, creating it when the name is kept.
func (t *dropTable) counter(name []byte, inPayload bool) *dropCounter {
	slot := &t.recent[quickHash(name, 6)]
	if c := *slot; c != nil && c.inPayload == inPayload && c.name == string(name) {
		return c
	}
	m, other, prefix := t.top, &t.otherTop, ""
	if inPayload {
		m, other, prefix = t.payload, &t.otherPayload, "payload."
	}
	c := m[string(name)]
	if c == nil {
		if len(t.all) >= t.max || !identifier(name) {
			return other
		}
		path := prefix + string(name)
		c = &dropCounter{path: path, name: path[len(prefix):], inPayload: inPayload}
		t.mu.Lock()
		m[c.name] = c
		t.all = append(t.all, c)
		t.mu.Unlock()
	}
	*slot = c
	return c
}

// identifier tells whether a field name may be kept as a metric label.
func identifier(name []byte) bool {
	if len(name) == 0 || len(name) > droppedNameLength {
		return false
	}
	for _, c := range name {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// DroppedFields returns how many times each non-allowlisted field was
// dropped from a well-formed event, by event kind and field path. The
// payload of a message or unsupported event is never read, so only its
// top-level extras are counted. Malformed records are not counted. Safe
// for concurrent use with Decode; the map is a fresh copy.
func (d *Decoder) DroppedFields() map[DroppedField]int64 { return d.drops.snapshot() }

// snapshot returns the table's non-zero counts. Safe for concurrent use
// with counter and the counters' increments.
func (t *dropTable) snapshot() map[DroppedField]int64 {
	t.mu.Lock()
	counters := append([]*dropCounter{&t.otherTop, &t.otherPayload}, t.all...)
	t.mu.Unlock()
	out := make(map[DroppedField]int64)
	for _, c := range counters {
		for k := range c.counts {
			if n := c.counts[k].Load(); n > 0 {
				out[DroppedField{Kind: pipeline.EventKind(k), Field: c.path}] += n
			}
		}
	}
	return out
}
