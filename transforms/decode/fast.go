package decode

import (
	"encoding/binary"
	"math/bits"

	"github.com/mya/deid/pipeline"
)

// The fast path: stage 1 (stage1.go) marks the record's quotes in one pass;
// stage 2, below, walks the record from string to string by that mask,
// names keys by a perfect hash of their first and last bytes and their
// length, parses counters eight digits at a time, keeps the date of the
// last timestamp, and maps closed value sets through small tables. It
// handles the common shape of a record only: anything else — an escape, a
// control byte, whitespace between tokens, a non-ASCII byte in a value it
// keeps, null, a value out of its domain, a duplicate field, a record that
// is malformed in any way — makes it give up, and the exact decoder
// (decode.go) decodes the record from the start. So the fast path never
// decides that a record is malformed, nor why: it only ever returns the
// event the exact decoder would return, and FuzzFastDecode holds it to
// that.

// Decoding paths of a Decoder.
const (
	pathExact    uint8 = iota // the exact decoder alone
	pathPortable              // stage 1 in portable Go, stage 2, else the exact decoder
	pathAVX2                  // stage 1 in AVX2 assembly, stage 2, else the exact decoder
)

// defaultPath is the path of New's decoders on this processor.
func defaultPath() uint8 {
	if hasAVX2 {
		return pathAVX2
	}
	return pathPortable
}

// maxFastBytes bounds the records the fast path reads; longer ones, far
// from the usual few hundred bytes, go to the exact decoder.
const maxFastBytes = 1 << 16

// hashSlots is the size of a perfect-hash table.
const hashSlots = 32

// nameHash hashes a name by its first and last bytes and its length into
// hashSlots. The constants make it perfect on each table below (newTable
// checks).
func nameHash(first, last byte, n int) uint32 {
	return (uint32(first)*5 + uint32(last)*45 + uint32(n)*53) * 0x9e3779b1 >> 27
}

// nameTable maps names to their index+1 (0: not in the table) by nameHash.
// Beside each name it keeps its length and its bytes as two words, so that
// a key of up to 16 bytes is compared in two loads.
type nameTable struct {
	names [hashSlots]string
	ids   [hashSlots]uint8
	lens  [hashSlots]uint8
	// lo is the name's first 8 bytes (zero-padded when shorter), hi its
	// last 8 when it has 8 or more.
	lo, hi [hashSlots]uint64
}

// newTable builds the table of names, which must be non-empty lower-case
// ASCII of at most 255 bytes with distinct hashes: a collision is a
// programming error, caught by every test of this package.
func newTable(names ...string) *nameTable {
	t := new(nameTable)
	for k, name := range names {
		h := nameHash(name[0], name[len(name)-1], len(name))
		if t.ids[h] != 0 {
			panic("decode: " + name + " and " + t.names[h] + " share a hash slot")
		}
		t.names[h], t.ids[h], t.lens[h] = name, uint8(k+1), uint8(len(name))
		var pad [8]byte
		copy(pad[:], name)
		t.lo[h] = binary.LittleEndian.Uint64(pad[:])
		if len(name) >= 8 {
			t.hi[h] = binary.LittleEndian.Uint64([]byte(name[len(name)-8:]))
		}
	}
	return t
}

// key returns the id of the key b[i:e] (exact bytes), or 0.
func (t *nameTable) key(b []byte, i, e int) uint8 {
	n := e - i
	if n < 8 || n > 16 {
		return t.keyOdd(b, i, e)
	}
	h := nameHash(b[i], b[e-1], n)
	if int(t.lens[h]) != n || binary.LittleEndian.Uint64(b[i:]) != t.lo[h] || binary.LittleEndian.Uint64(b[e-8:]) != t.hi[h] {
		return 0
	}
	return t.ids[h]
}

// keyOdd is key for a key shorter than 8 bytes or longer than 16.
//
//go:noinline
func (t *nameTable) keyOdd(b []byte, i, e int) uint8 {
	n := e - i
	if n <= 0 {
		return 0
	}
	h := nameHash(b[i], b[e-1], n)
	if int(t.lens[h]) != n {
		return 0
	}
	if n < 8 && i+8 <= len(b) {
		if binary.LittleEndian.Uint64(b[i:])&(1<<(8*uint(n))-1) != t.lo[h] {
			return 0
		}
	} else if t.names[h] != string(b[i:e]) {
		return 0
	}
	return t.ids[h]
}

// member returns the member of a closed set that v names ignoring ASCII
// case, or "" when v is not exactly one (the caller then asks closed).
func (t *nameTable) member(v []byte) string {
	if len(v) == 0 {
		return ""
	}
	h := nameHash(v[0]|0x20, v[len(v)-1]|0x20, len(v))
	if m := t.names[h]; len(m) == len(v) && foldEqual(v, m) {
		return m
	}
	return ""
}

// The keys of each object, in the order of their bits (decode.go,
// payload.go): a key's id is its bit's index + 1.
var (
	envelopeKeys = newTable("event_id", "event_type", "occurred_at", "workspace_id", "user_id", "payload")
	campaignKeys = newTable("campaign_id", "creator_id", "platform", "content_type", "industry", "audience_country",
		"follower_count", "creator_age", "guardian_consent", "impressions", "reach", "clicks", "likes", "comments",
		"shares", "saves", "video_views", "conversions", "spend_cents", "revenue_cents")
	usageKeys = newTable("feature", "action", "plan_tier", "device_type", "team_size", "duration_ms")

	platformTable    = newTable(platforms...)
	contentTypeTable = newTable(contentTypes...)
	actionTable      = newTable(actions...)
	planTierTable    = newTable(planTiers...)
	deviceTypeTable  = newTable(deviceTypes...)
)

// fastRecord is the fast path's view of one record.
type fastRecord struct {
	d    *Decoder
	b    []byte
	mask []uint64
	// nonASCII tells that the record holds a byte ≥ 0x80 somewhere, so
	// that each kept string must be checked.
	nonASCII bool
	// pending counts the fields dropped from the record.
	pending int64
}

// decodeFast decodes b on the fast path. It returns true when it filled ev
// with the event the exact decoder makes of b, which is then well-formed;
// false when b holds anything the fast path does not handle, and then ev is
// for the exact decoder to reset and fill.
func (d *Decoder) decodeFast(b []byte, ev *pipeline.Event) bool {
	n := len(b)
	if n < 2 || n > maxFastBytes || b[0] != '{' {
		return false
	}
	words := n/stage1Block + 2
	if cap(d.mask) < words {
		d.mask = make([]uint64, words, maxFastBytes/stage1Block+2)
	}
	mask := d.mask[:words]
	class := scanStructure(b, mask, d.path == pathAVX2)
	if class&classFallback != 0 {
		return false
	}
	r := fastRecord{d: d, b: b, mask: mask, nonASCII: class&classNonASCII != 0}
	if !r.envelope(ev) {
		return false
	}
	if r.pending > 0 {
		d.drops[ev.Kind].Add(r.pending)
	}
	return true
}

// envelope reads the record's object into ev.
func (r *fastRecord) envelope(ev *pipeline.Event) bool {
	b, n := r.b, len(r.b)
	var seen uint32
	payloadAt := -1
	i := 1
	for {
		if i >= n || b[i] != '"' {
			return false
		}
		e := closeQuote(r.mask, i)
		if e < 0 || e+2 >= n || b[e+1] != ':' {
			return false
		}
		id := envelopeKeys.key(b, i+1, e)
		i = e + 2
		if id != 0 {
			bit := uint32(1) << (id - 1)
			if seen&bit != 0 {
				return false
			}
			seen |= bit
		}
		var v []byte
		switch uint32(1) << (id - 1) { // 0 for an unknown key (id 0)
		case eEventID:
			if v, i = r.id(i, r.d.cfg.MaxIDBytes); v == nil {
				return false
			}
			ev.EventID = v
		case eWorkspaceID:
			if v, i = r.id(i, r.d.cfg.MaxIDBytes); v == nil {
				return false
			}
			ev.WorkspaceID = v
		case eEventType:
			if v, i = r.id(i, maxEventTypeBytes); v == nil {
				return false
			}
			ev.EventType, ev.Kind = v, classify(v)
		case eUserID:
			if v, i = r.str(i); i < 0 || len(v) > r.d.cfg.MaxIDBytes {
				return false
			}
			if len(v) > 0 { // an empty user_id is no user_id
				ev.UserID = v
				seen |= ePresentUser
			}
		case eOccurredAt:
			if v, i = r.str(i); i < 0 {
				return false
			}
			t, ok := r.d.timestamp(v)
			if !ok {
				return false
			}
			ev.OccurredAt = t
		case ePayload:
			if b[i] != '{' {
				return false
			}
			if aggregated(ev.Kind) {
				i = r.payload(i, ev)
			} else {
				// The type is not known yet, or its payload is not read:
				// validate it, and come back if the type turns out to be
				// aggregated.
				payloadAt = i
				i = r.skipContainer(i, 2)
			}
		default:
			r.pending++
			i = r.skip(i, 1)
		}
		if i < 0 || i >= n {
			return false
		}
		c := b[i]
		i++
		if c == ',' {
			continue
		}
		if c != '}' {
			return false
		}
		break
	}
	const required = eEventID | eEventType | eOccurredAt | eWorkspaceID | ePayload
	if i != n || seen&required != required {
		return false
	}
	if payloadAt >= 0 && aggregated(ev.Kind) && r.payload(payloadAt, ev) < 0 {
		return false
	}
	return ev.Kind != pipeline.KindUsageInteraction || seen&ePresentUser != 0
}

// ePresentUser marks, in envelope's seen set, a non-empty user_id.
const ePresentUser = ePayload << 1

// payload reads the payload object at b[i] for ev's aggregated kind.
func (r *fastRecord) payload(i int, ev *pipeline.Event) int {
	if ev.Kind == pipeline.KindCampaignMetrics {
		return r.campaign(i, &ev.Campaign)
	}
	return r.usage(i, &ev.Usage)
}

// next reads what follows a member's value at b[i]: the index of the next
// member and true after a comma, the index past the object and false
// after its closing brace, or -1.
func (r *fastRecord) next(i int) (int, bool) {
	if i < 0 || i >= len(r.b) {
		return -1, false
	}
	switch r.b[i] {
	case ',':
		return i + 1, true
	case '}':
		return i + 1, false
	}
	return -1, false
}

// campaign reads a campaign.metrics payload at b[i].
func (r *fastRecord) campaign(i int, c *pipeline.CampaignMetrics) int {
	b, n := r.b, len(r.b)
	c.Platform, c.ContentType, c.Industry, c.Country = Other, Other, Other, UnknownCountry
	var seen uint32
	more := true
	for i++; more; {
		if i >= n || b[i] != '"' {
			return -1
		}
		e := closeQuote(r.mask, i)
		if e < 0 || e+2 >= n || b[e+1] != ':' {
			return -1
		}
		id := campaignKeys.key(b, i+1, e)
		i = e + 2
		bit := uint32(1) << (id - 1)
		if id != 0 {
			if seen&bit != 0 {
				return -1
			}
			seen |= bit
		}
		var v []byte
		switch bit {
		case cCampaignID:
			v, i = r.id(i, r.d.cfg.MaxIDBytes)
			c.CampaignID = v
		case cCreatorID:
			v, i = r.id(i, r.d.cfg.MaxIDBytes)
			c.CreatorID = v
		case cPlatform:
			if v, i = r.dim(i); i >= 0 {
				c.Platform = r.d.closedTable(v, platformTable, platforms)
			}
		case cContentType:
			if v, i = r.dim(i); i >= 0 {
				c.ContentType = r.d.closedTable(v, contentTypeTable, contentTypes)
			}
		case cIndustry:
			if v, i = r.dim(i); i >= 0 {
				c.Industry = r.d.open(v)
			}
		case cCountry:
			if v, i = r.dim(i); i >= 0 {
				c.Country = country(v)
			}
		case cFollowerCount:
			c.FollowerCount, i = r.counter(i)
		case cCreatorAge:
			if c.CreatorAge, i = r.counter(i); c.CreatorAge > maxCreatorAge {
				return -1
			}
			c.HasAge = true
		case cGuardianConsent:
			c.GuardianConsent, i = r.boolean(i)
		case cImpressions:
			c.Impressions, i = r.counter(i)
		case cReach:
			c.Reach, i = r.counter(i)
		case cClicks:
			c.Clicks, i = r.counter(i)
		case cLikes:
			c.Likes, i = r.counter(i)
		case cComments:
			c.Comments, i = r.counter(i)
		case cShares:
			c.Shares, i = r.counter(i)
		case cSaves:
			c.Saves, i = r.counter(i)
		case cVideoViews:
			c.VideoViews, i = r.counter(i)
		case cConversions:
			c.Conversions, i = r.counter(i)
		case cSpendCents:
			c.SpendCents, i = r.counter(i)
		case cRevenueCents:
			c.RevenueCents, i = r.counter(i)
		default:
			r.pending++
			i = r.skip(i, 2)
		}
		if i, more = r.next(i); i < 0 {
			return -1
		}
	}
	const required = cCampaignID | cCreatorID | cFollowerCount
	if seen&required != required {
		return -1
	}
	return i
}

// usage reads a usage.interaction payload at b[i].
func (r *fastRecord) usage(i int, u *pipeline.UsageInteraction) int {
	b, n := r.b, len(r.b)
	u.Feature, u.Action, u.PlanTier, u.DeviceType = Other, Other, Other, Other
	var seen uint32
	more := true
	for i++; more; {
		if i >= n || b[i] != '"' {
			return -1
		}
		e := closeQuote(r.mask, i)
		if e < 0 || e+2 >= n || b[e+1] != ':' {
			return -1
		}
		id := usageKeys.key(b, i+1, e)
		i = e + 2
		bit := uint32(1) << (id - 1)
		if id != 0 {
			if seen&bit != 0 {
				return -1
			}
			seen |= bit
		}
		var v []byte
		switch bit {
		case uFeature:
			if v, i = r.dim(i); i >= 0 {
				u.Feature = r.d.open(v)
			}
		case uAction:
			if v, i = r.dim(i); i >= 0 {
				u.Action = r.d.closedTable(v, actionTable, actions)
			}
		case uPlanTier:
			if v, i = r.dim(i); i >= 0 {
				u.PlanTier = r.d.closedTable(v, planTierTable, planTiers)
			}
		case uDeviceType:
			if v, i = r.dim(i); i >= 0 {
				u.DeviceType = r.d.closedTable(v, deviceTypeTable, deviceTypes)
			}
		case uTeamSize:
			if u.TeamSize, i = r.counter(i); u.TeamSize < 1 {
				return -1
			}
		case uDurationMs:
			u.DurationMs, i = r.counter(i)
		default:
			r.pending++
			i = r.skip(i, 2)
		}
		if i, more = r.next(i); i < 0 {
			return -1
		}
	}
	if seen&uTeamSize == 0 {
		return -1
	}
	return i
}

// str reads the string at b[i] for a field the decoder keeps: its
// contents, capped so that nothing after them is reachable, and the index
// past it; -1 when the value is not a string or holds a non-ASCII byte.
func (r *fastRecord) str(i int) ([]byte, int) {
	if r.b[i] != '"' {
		return nil, -1
	}
	e := closeQuote(r.mask, i)
	if e < 0 {
		return nil, -1
	}
	v := r.b[i+1 : e : e]
	if r.nonASCII && !ascii(v) {
		return nil, -1
	}
	return v, e + 1
}

// id reads an identifier of 1 to max bytes; v is nil when there is none.
func (r *fastRecord) id(i, max int) (v []byte, next int) {
	if v, next = r.str(i); next < 0 || len(v) == 0 || len(v) > max {
		return nil, -1
	}
	return v, next
}

// dim reads a dimension string of at most MaxDimensionBytes.
func (r *fastRecord) dim(i int) ([]byte, int) {
	v, next := r.str(i)
	if len(v) > r.d.cfg.MaxDimensionBytes {
		return nil, -1
	}
	return v, next
}

// boolean reads true or false.
func (r *fastRecord) boolean(i int) (bool, int) {
	b := r.b
	switch {
	case len(b)-i >= 4 && string(b[i:i+4]) == "true":
		return true, i + 4
	case len(b)-i >= 5 && string(b[i:i+5]) == "false":
		return false, i + 5
	}
	return false, -1
}

// Lanes for the digit test.
const (
	lanes46 = 0x4646464646464646 // a lane + this has its high bit set iff lane ≥ '9'+1
	lanes50 = 0x5050505050505050 // a lane + this has its high bit set iff lane ≥ '0'
	lanes0F = 0x0f0f0f0f0f0f0f0f
)

// nonDigits sets the high bit of each lane of x that is not an ASCII digit.
func nonDigits(x uint64) uint64 {
	a := x & lanes7F
	return ((a + lanes46) | ^(a + lanes50) | x) & lanes80
}

// parseDigits returns the number written by the eight ASCII digits of x,
// the first digit in the lowest byte; zero bytes count as zero digits.
func parseDigits(x uint64) uint64 {
	x &= lanes0F
	x = (x*10 + x>>8) & 0x00ff00ff00ff00ff
	x = (x*100 + x>>16) & 0x0000ffff0000ffff
	return (x*10000 + x>>32) & 0xffffffff
}

// counter reads an integer from 0 to 10^12 written without sign: its
// value and the index past it, or -1. A fraction or an exponent is left
// for the caller, whose next byte must end the member.
func (r *fastRecord) counter(i int) (int64, int) {
	b := r.b
	if i+8 <= len(b) {
		x := binary.LittleEndian.Uint64(b[i:])
		if nd := nonDigits(x); nd != 0 {
			k := bits.TrailingZeros64(nd) >> 3 // the number's digits
			if k == 0 || k > 1 && b[i] == '0' {
				return 0, -1
			}
			return int64(parseDigits(x << (64 - 8*k))), i + k
		}
	}
	j := i
	var u uint64
	for ; j < len(b) && isDigit(b[j]); j++ {
		if j-i == 13 {
			return 0, -1
		}
		u = u*10 + uint64(b[j]-'0')
	}
	if j == i || j-i > 1 && b[i] == '0' || u > plausibleMax {
		return 0, -1
	}
	return int64(u), j
}

// skip validates the value at b[i], in a container at depth, as
// Decoder.skip does; the record has no escape and no control byte.
func (r *fastRecord) skip(i, depth int) int {
	b := r.b
	switch b[i] {
	case '"':
		if e := closeQuote(r.mask, i); e >= 0 {
			return e + 1
		}
		return -1
	case '{', '[':
		return r.skipContainer(i, depth+1)
	case 't':
		return skipLiteral(b, i, "true")
	case 'f':
		return skipLiteral(b, i, "false")
	case 'n':
		return skipLiteral(b, i, "null")
	}
	return skipNumber(b, i)
}

// skipContainer validates the object or array at b[i], which is at depth,
// as Decoder.skipContainer does.
func (r *fastRecord) skipContainer(i, depth int) int {
	b := r.b
	if depth > r.d.cfg.MaxDepth {
		return -1
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
				return -1
			}
			e := closeQuote(r.mask, i)
			if e < 0 {
				return -1
			}
			if i = skipSpace(b, e+1); i >= len(b) || b[i] != ':' {
				return -1
			}
			i = skipSpace(b, i+1)
		}
		if i >= len(b) {
			return -1
		}
		if i = r.skip(i, depth); i < 0 {
			return -1
		}
		if i = skipSpace(b, i); i >= len(b) {
			return -1
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case closing:
			return i + 1
		default:
			return -1
		}
	}
}

// closedTable returns the member of set that s names, through its table
// when s is exactly a member but for ASCII case, else as closed decides.
func (d *Decoder) closedTable(s []byte, t *nameTable, set []string) string {
	if m := t.member(s); m != "" {
		return m
	}
	return d.closed(s, set)
}

// timestamp parses occurred_at as parseTimestamp does, keeping the date of
// the last one: the events of a partition mostly share their day.
func (d *Decoder) timestamp(s []byte) (int64, bool) {
	if len(s) < len("2006-01-02T15:04:05Z") || len(s) > maxTimestampBytes {
		return 0, false
	}
	key, lo := binary.LittleEndian.Uint64(s), binary.LittleEndian.Uint16(s[8:])
	if key != d.dateKey || lo != d.dateLo || !d.dateOK {
		days, ok := parseDate(s)
		if !ok {
			return 0, false
		}
		d.dateKey, d.dateLo, d.dateDays, d.dateOK = key, lo, days, true
	}
	return parseClock(s, d.dateDays)
}
