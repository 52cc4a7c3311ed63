package decode

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"unicode/utf8"

	"github.com/mya/deid/pipeline"
)

// Decoder is the allowlist decoder: it implements pipeline.Decoder. Make
// one with New (or Decoders.NewDecoder); the zero value is not usable. Each
// worker owns one: Decode is not safe for concurrent use, DroppedFields is.
type Decoder struct {
	cfg Config

	// ids holds one scratch buffer per id field, for ids written with JSON
	// escapes. Each has room for MaxIDBytes+utf8.UTFMax and is never
	// reallocated, so an id unescaped early in a record stays valid while
	// later ones are unescaped.
	ids [numIDSlots][]byte
	// text holds an escaped dimension string or timestamp, unescaped, until
	// it is normalized.
	text []byte
	// lowBuf holds a lower-cased dimension string until it is matched or
	// interned.
	lowBuf []byte
	// keyBuf holds an escaped object key, unescaped.
	keyBuf []byte
	// strs interns open dimension values (industry, feature); recent caches
	// its entries by a hash of their bytes.
	strs   map[string]string
	recent [1 << recentBits]string

	drops *dropCounts
	// pending counts the fields dropped from the current record, added to
	// its kind once the record turns out well-formed.
	pending int64

	// err is the current record's first semantic error.
	err *pipeline.MalformedError
	// depth is the depth of the object being decoded: 1 for the record, 2
	// for its payload.
	depth int
	// tooDeep tells that the record's invalid JSON is excess nesting.
	tooDeep bool

	// path selects the exact decoder alone or the fast path before it
	// (fast.go).
	path uint8
	// mask is stage 1's quote mask of the current record.
	mask []uint64
	// The date of the last timestamp the fast path parsed: its first ten
	// bytes and its days since the epoch.
	dateKey  uint64
	dateLo   uint16
	dateDays int64
	dateOK   bool
}

// Id scratch slots, one per id field of Event.
const (
	slotEventID = iota
	slotEventType
	slotWorkspaceID
	slotUserID
	slotCampaignID
	slotCreatorID
	numIDSlots
)

// maxEventTypeBytes bounds event_type, which is written to the exclusion
// log; it does not follow Config.MaxIDBytes, so that a small id bound cannot
// make the known types unreadable.
const maxEventTypeBytes = 128

// maxKeyBytes bounds the object keys the decoder unescapes; a longer
// escaped key matches no allowlisted name and is dropped.
const maxKeyBytes = 64

var _ pipeline.Decoder = (*Decoder)(nil)

// New returns a decoder with cfg's bounds, or the configuration's problems.
func New(cfg Config) (*Decoder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return newDecoder(cfg), nil
}

// newDecoder returns a decoder with cfg, which must be valid.
func newDecoder(cfg Config) *Decoder {
	d := &Decoder{
		cfg:    cfg,
		path:   defaultPath(),
		text:   make([]byte, 0, max(cfg.MaxDimensionBytes, maxTimestampBytes)+utf8.UTFMax),
		lowBuf: make([]byte, 0, 2*cfg.MaxDimensionBytes),
		keyBuf: make([]byte, 0, maxKeyBytes+utf8.UTFMax),
		strs:   make(map[string]string, min(cfg.InternEntries, 1024)),
		drops:  new(dropCounts),
	}
	for s := range d.ids {
		d.ids[s] = make([]byte, 0, cfg.MaxIDBytes+utf8.UTFMax)
	}
	d.ids[slotEventType] = make([]byte, 0, maxEventTypeBytes+utf8.UTFMax)
	return d
}

// Decode fills ev from one record (contract §3.1–§3.3, §3.6). It returns a
// *pipeline.MalformedError, with one of the Code* codes, when the record is
// malformed; ev is then undefined. It reads only the allowlisted fields;
// every other value is validated as JSON and skipped without being copied.
//
// ev's byte slices alias value, or, for ids written with JSON escapes, the
// decoder's scratch buffers: either way they are valid until the next call
// to Decode and until value is reused. Its dimension strings are constants
// or interned, shared between events; never modify them. A well-formed
// record allocates nothing in steady state.
func (d *Decoder) Decode(value []byte, ev *pipeline.Event) error {
	*ev = pipeline.Event{}
	if d.path != pathExact && d.decodeFast(value, ev) {
		return nil
	}
	return d.decodeExact(value, ev)
}

// decodeExact is the exact decoder: it reads any record, and decides
// whether it is malformed and why. The fast path defers to it.
func (d *Decoder) decodeExact(value []byte, ev *pipeline.Event) error {
	*ev = pipeline.Event{}
	d.err, d.tooDeep = nil, false
	d.pending = 0
	if n := d.record(value, ev); n < 0 {
		return d.invalidJSON(value, ^n)
	}
	if d.err != nil {
		return d.err
	}
	if d.pending > 0 {
		d.drops[ev.Kind].Add(d.pending)
	}
	return nil
}

// Envelope fields, as bits of a seen/present set.
const (
	eEventID uint32 = 1 << iota
	eEventType
	eOccurredAt
	eWorkspaceID
	eUserID
	ePayload
)

// record decodes the record's object. It returns the index past the
// record, or ^offset when the record is not valid JSON.
func (d *Decoder) record(b []byte, ev *pipeline.Event) int {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return ^i
	}
	var seen, present uint32
	payloadAt, decoded := -1, false
	i, more := first(b, i)
	for more {
		d.depth = 1
		name, at := d.key(b, i)
		if at < 0 {
			return at
		}
		i = at
		switch string(name) {
		case "event_id":
			d.once(&seen, eEventID, "event_id")
			i = d.id(b, i, &present, eEventID, slotEventID, "event_id", &ev.EventID)
		case "event_type":
			d.once(&seen, eEventType, "event_type")
			v, ok, n := d.str(b, i, "event_type", d.ids[slotEventType], maxEventTypeBytes, CodeTooLong)
			switch {
			case !ok:
			case len(v) == 0:
				d.fail(CodeInvalidValue, "event_type", "must not be empty")
			default:
				ev.EventType, ev.Kind = v, classify(v)
				present |= eEventType
			}
			i = n
		case "occurred_at":
			d.once(&seen, eOccurredAt, "occurred_at")
			v, ok, n := d.str(b, i, "occurred_at", d.text, maxTimestampBytes, CodeInvalidTimestamp)
			if ok {
				if t, valid := parseTimestamp(v); valid {
					ev.OccurredAt = t
					present |= eOccurredAt
				} else {
					d.fail(CodeInvalidTimestamp, "occurred_at", "not an RFC 3339 timestamp")
				}
			}
			i = n
		case "workspace_id":
			d.once(&seen, eWorkspaceID, "workspace_id")
			i = d.id(b, i, &present, eWorkspaceID, slotWorkspaceID, "workspace_id", &ev.WorkspaceID)
		case "user_id":
			d.once(&seen, eUserID, "user_id")
			v, ok, n := d.str(b, i, "user_id", d.ids[slotUserID], d.cfg.MaxIDBytes, CodeTooLong)
			if ok && len(v) > 0 { // an empty user_id is no user_id
				ev.UserID = v
				present |= eUserID
			}
			i = n
		case "payload":
			d.once(&seen, ePayload, "payload")
			switch b[i] {
			case '{':
				present |= ePayload
				if aggregated(ev.Kind) {
					i, decoded = d.payload(b, i, ev), true
				} else {
					// The type is not known yet, or its payload is not to be
					// read: validate it, and come back if the type turns out
					// to be aggregated.
					payloadAt = i
					i = d.skip(b, i, 1)
				}
			case 'n':
				i = skipLiteral(b, i, "null")
			default:
				d.fail(CodeWrongType, "payload", "must be an object")
				i = d.skip(b, i, 1)
			}
		default:
			d.pending++
			i = d.skip(b, i, 1)
		}
		if i < 0 {
			return i
		}
		i, more = next(b, i)
		if i < 0 {
			return i
		}
	}
	if i = skipSpace(b, i); i != len(b) {
		return ^i // data after the record
	}
	for _, r := range [...]struct {
		bit   uint32
		field string
	}{{eEventID, "event_id"}, {eEventType, "event_type"}, {eOccurredAt, "occurred_at"}, {eWorkspaceID, "workspace_id"}, {ePayload, "payload"}} {
		if present&r.bit == 0 {
			d.fail(CodeMissingField, r.field, "required")
		}
	}
	if d.err != nil {
		return i
	}
	if payloadAt >= 0 && !decoded && aggregated(ev.Kind) {
		if n := d.payload(b, payloadAt, ev); n < 0 {
			return n
		}
	}
	if ev.Kind == pipeline.KindUsageInteraction && present&eUserID == 0 {
		d.fail(CodeMissingField, "user_id", "required for usage.interaction")
	}
	return i
}

// aggregated tells whether events of kind k have a payload to read.
func aggregated(k pipeline.EventKind) bool {
	return k == pipeline.KindCampaignMetrics || k == pipeline.KindUsageInteraction
}

// classify maps an event_type to its kind (contract §3.2). The aggregated types
// match exactly; message types match without regard to ASCII case, so that
// "Message.Direct" is still excluded as a message, not as an unknown type.
func classify(t []byte) pipeline.EventKind {
	switch string(t) {
	case "campaign.metrics":
		return pipeline.KindCampaignMetrics
	case "usage.interaction":
		return pipeline.KindUsageInteraction
	}
	if hasPrefixFold(t, "message.") || len(t) == len("support.message") && hasPrefixFold(t, "support.message") {
		return pipeline.KindMessage
	}
	return pipeline.KindUnsupported
}

// hasPrefixFold tells whether s starts with the lower-case ASCII prefix p,
// ignoring ASCII case.
func hasPrefixFold(s []byte, p string) bool {
	if len(s) < len(p) {
		return false
	}
	for k := 0; k < len(p); k++ {
		c := s[k]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != p[k] {
			return false
		}
	}
	return true
}

// payload decodes the payload object at b[i] for ev's kind.
func (d *Decoder) payload(b []byte, i int, ev *pipeline.Event) int {
	d.depth = 2
	if ev.Kind == pipeline.KindCampaignMetrics {
		return d.campaign(b, i, &ev.Campaign)
	}
	return d.usage(b, i, &ev.Usage)
}

// first enters the object whose brace is at b[i]: it returns the index of
// its first key and true, or the index past an empty object and false.
func first(b []byte, i int) (int, bool) {
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, false
	}
	return i, true
}

// next consumes what follows a member's value: it returns the index of the
// next key and true after a comma, or the index past the closing brace and
// false.
func next(b []byte, i int) (int, bool) {
	if i+1 < len(b) && b[i] == ',' && b[i+1] == '"' {
		return i + 1, true
	}
	i = skipSpace(b, i)
	if i < len(b) {
		switch b[i] {
		case ',':
			return skipSpace(b, i+1), true
		case '}':
			return i + 1, false
		}
	}
	return ^i, false
}

// key reads the object key at b[i] and the colon after it. It returns the
// key's name and the index of its value, which is within b. An escaped key
// is unescaped into the decoder's key buffer; one longer than maxKeyBytes
// reads as nil.
func (d *Decoder) key(b []byte, i int) ([]byte, int) {
	if i >= len(b) || b[i] != '"' {
		return nil, ^i
	}
	var name []byte
	end := 0
	// Fast path: a key of up to 23 bytes without escapes, the common case.
	if j := i + 1; j+24 <= len(b) {
		m := specialMask(binary.LittleEndian.Uint64(b[j:]))
		k := j
		if m == 0 {
			k += 8
			if m = specialMask(binary.LittleEndian.Uint64(b[k:])); m == 0 {
				k += 8
				m = specialMask(binary.LittleEndian.Uint64(b[k:]))
			}
		}
		if m != 0 {
			if k += bits.TrailingZeros64(m) >> 3; b[k] == '"' {
				name, end = b[j:k], k+1
			}
		}
	}
	if end == 0 {
		var flags uint8
		if end, flags = scanString(b, i); end < 0 {
			return nil, end
		}
		name = b[i+1 : end-1]
		if flags&strEscaped != 0 {
			var ok bool
			if d.keyBuf, ok = unescape(d.keyBuf[:0], name, maxKeyBytes); ok {
				name = d.keyBuf
			} else {
				name = nil
			}
		}
	}
	if end < len(b) && b[end] == ':' {
		end++
	} else if end = skipSpace(b, end); end < len(b) && b[end] == ':' {
		end++
	} else {
		return nil, ^end
	}
	if end = skipSpace(b, end); end >= len(b) {
		return nil, ^end
	}
	return name, end
}

// once records that the field with bit was seen in the current object, and
// a duplicate_field error when it was seen before.
func (d *Decoder) once(seen *uint32, bit uint32, field string) {
	if *seen&bit != 0 {
		d.fail(CodeDuplicateField, field, "appears more than once")
	}
	*seen |= bit
}

// skip validates the value at b[i], in a container at depth, without
// keeping anything of it.
func (d *Decoder) skip(b []byte, i, depth int) int {
	if i >= len(b) {
		return ^i
	}
	switch b[i] {
	case '"':
		n, _ := scanString(b, i)
		return n
	case '{', '[':
		return d.skipContainer(b, i, depth+1)
	case 't':
		return skipLiteral(b, i, "true")
	case 'f':
		return skipLiteral(b, i, "false")
	case 'n':
		return skipLiteral(b, i, "null")
	}
	return skipNumber(b, i)
}

// skipContainer validates the object or array at b[i], which is at depth.
// Recursion is bounded by Config.MaxDepth.
func (d *Decoder) skipContainer(b []byte, i, depth int) int {
	if depth > d.cfg.MaxDepth {
		d.tooDeep = true
		return ^i
	}
	obj := b[i] == '{'
	closing := byte(']')
	if obj {
		closing = '}'
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == closing {
		return i + 1
	}
	for {
		if obj {
			if i >= len(b) || b[i] != '"' {
				return ^i
			}
			n, _ := scanString(b, i)
			if n < 0 {
				return n
			}
			if i = skipSpace(b, n); i >= len(b) || b[i] != ':' {
				return ^i
			}
			i = skipSpace(b, i+1)
		}
		if i = d.skip(b, i, depth); i < 0 {
			return i
		}
		if i = skipSpace(b, i); i >= len(b) {
			return ^i
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case closing:
			return i + 1
		default:
			return ^i
		}
	}
}

// str reads the string value of an allowlisted field at b[i]: its
// contents, unescaped into buf when they hold escapes, at most max bytes
// (else longCode). It returns ok false with no error for null; for any
// other problem it records the field's error and returns ok false.
func (d *Decoder) str(b []byte, i int, field string, buf []byte, max int, longCode string) (v []byte, ok bool, n int) {
	switch b[i] {
	case '"':
	case 'n':
		return nil, false, skipLiteral(b, i, "null")
	default:
		d.fail(CodeWrongType, field, "must be a string")
		return nil, false, d.skip(b, i, d.depth)
	}
	end, flags := scanString(b, i)
	if end < 0 {
		return nil, false, end
	}
	v = b[i+1 : end-1 : end-1] // capped: nothing past the value is reachable through ev
	if flags&strNonASCII != 0 && !utf8.Valid(v) {
		d.fail(CodeInvalidValue, field, "not valid UTF-8")
		return nil, false, end
	}
	if flags&strEscaped != 0 {
		v, ok = unescape(buf[:0], v, max)
	} else {
		ok = len(v) <= max
	}
	if !ok {
		d.fail(longCode, field, fmt.Sprintf("longer than %d bytes", max))
		return nil, false, end
	}
	return v, true, end
}

// id reads an identifier field (1 to MaxIDBytes bytes of UTF-8) into dst
// and marks it present.
func (d *Decoder) id(b []byte, i int, present *uint32, bit uint32, slot int, field string, dst *[]byte) int {
	v, ok, n := d.str(b, i, field, d.ids[slot], d.cfg.MaxIDBytes, CodeTooLong)
	if ok {
		if len(v) == 0 {
			d.fail(CodeInvalidValue, field, "must not be empty")
		} else {
			*dst = v
			*present |= bit
		}
	}
	return n
}

// integer reads an integer field. It returns ok false with no error for
// null; for any other problem it records the field's error and returns ok
// false.
func (d *Decoder) integer(b []byte, i int, field string) (mag int64, neg, ok bool, n int) {
	if b[i] == 'n' {
		return 0, false, false, skipLiteral(b, i, "null")
	}
	mag, neg, n, res := scanInt(b, i)
	switch res {
	case intOK:
		return mag, neg, true, n
	case intNotFound:
		d.fail(CodeWrongType, field, "must be an integer")
		return 0, false, false, d.skip(b, i, d.depth)
	case intNotInt:
		d.fail(CodeWrongType, field, "must be an integer, without fraction or exponent")
	}
	return 0, false, false, n
}

// counter reads a counter (an integer from 0 to 10^12) into dst. It
// returns whether a value was stored.
func (d *Decoder) counter(b []byte, i int, seen *uint32, bit uint32, field string, dst *int64) (bool, int) {
	d.once(seen, bit, field)
	mag, neg, ok, n := d.integer(b, i, field)
	switch {
	case !ok:
		return false, n
	case neg:
		d.fail(CodeNegativeCounter, field, "must not be negative")
		return false, n
	case mag > plausibleMax:
		d.fail(CodeImplausibleCounter, field, "above 10^12")
		return false, n
	}
	*dst = mag
	return true, n
}

// boolean reads a boolean field. It returns ok false with no error for
// null.
func (d *Decoder) boolean(b []byte, i int, field string) (v, ok bool, n int) {
	switch b[i] {
	case 't':
		n = skipLiteral(b, i, "true")
		return true, n >= 0, n
	case 'f':
		n = skipLiteral(b, i, "false")
		return false, n >= 0, n
	case 'n':
		return false, false, skipLiteral(b, i, "null")
	}
	d.fail(CodeWrongType, field, "must be a boolean")
	return false, false, d.skip(b, i, d.depth)
}

// dim reads a dimension string, ready to normalize; it is valid until the
// next string is read.
func (d *Decoder) dim(b []byte, i int, seen *uint32, bit uint32, field string) ([]byte, bool, int) {
	d.once(seen, bit, field)
	return d.str(b, i, field, d.text, d.cfg.MaxDimensionBytes, CodeTooLong)
}
