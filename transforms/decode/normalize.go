package decode

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"unicode"
	"unicode/utf8"
)

// Normalization of dimension strings (contract §3.6). Every result is either a
// constant of a closed set, a constant country code, or an interned string:
// a well-formed event allocates no string in steady state.

// Other is the value of a dimension string that is absent, empty or outside
// its closed set.
const Other = "other"

// UnknownCountry is the value of an absent or unrecognized audience_country.
const UnknownCountry = "ZZ"

// The closed value sets of contract §3.3.
var (
	platforms    = []string{"instagram", "tiktok", "x", "linkedin", "youtube"}
	contentTypes = []string{"post", "reel", "story", "video", "short", "live", "article"}
	actions      = []string{"view", "click", "create", "update", "delete", "export"}
	planTiers    = []string{"free", "pro", "business", "enterprise"}
	deviceTypes  = []string{"desktop", "mobile", "tablet"}
)

// countryCodes holds every two-letter code "AA" … "ZZ", so that a country
// is a constant string, never an allocation.
var countryCodes = func() (t [26 * 26]string) {
	for i := range t {
		t[i] = string([]byte{'A' + byte(i/26), 'A' + byte(i%26)})
	}
	return t
}()

// lower returns s lower-cased: s itself when it has no upper-case letter,
// else a copy in the decoder's buffer, valid until the next call. It
// lower-cases rune by rune with unicode.ToLower, as strings.ToLower does, so
// "LIN\u212aEDIN" (with a Kelvin sign) reads "linkedin". s must be valid
// UTF-8.
func (d *Decoder) lower(s []byte) []byte {
	ascii, upper := true, false
	for _, c := range s {
		if c >= utf8.RuneSelf {
			ascii = false
			break
		}
		upper = upper || ('A' <= c && c <= 'Z')
	}
	if ascii {
		if !upper {
			return s
		}
		dst := d.lowBuf[:0]
		for _, c := range s {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			dst = append(dst, c)
		}
		d.lowBuf = dst
		return dst
	}
	dst := d.lowBuf[:0]
	for len(s) > 0 {
		r, n := utf8.DecodeRune(s)
		dst = utf8.AppendRune(dst, unicode.ToLower(r))
		s = s[n:]
	}
	d.lowBuf = dst
	return dst
}

// closed returns the member of set that s names once trimmed and
// lower-cased, or Other.
func (d *Decoder) closed(s []byte, set []string) string {
	// Fast path: no space at either end, so trimming is a no-op, and an
	// ASCII comparison that ignores case.
	if n := len(s); n > 0 && s[0] > ' ' && s[n-1] > ' ' {
		for _, v := range set {
			if len(v) == n && foldEqual(s, v) {
				return v
			}
		}
		if ascii(s) {
			return Other
		}
	}
	s = d.lower(bytes.TrimSpace(s))
	for _, v := range set {
		if string(s) == v {
			return v
		}
	}
	return Other
}

// foldEqual tells whether s equals the lower-case ASCII string v, ignoring
// ASCII case.
func foldEqual(s []byte, v string) bool {
	for k := 0; k < len(v); k++ {
		c := s[k]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != v[k] {
			return false
		}
	}
	return true
}

func ascii(s []byte) bool {
	for _, c := range s {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// open returns a dotted-taxonomy value (industry, feature) trimmed and
// lower-cased, interned; empty becomes Other.
func (d *Decoder) open(s []byte) string {
	if n := len(s); n == 0 || s[0] <= ' ' || s[n-1] <= ' ' || s[0] >= utf8.RuneSelf || s[n-1] >= utf8.RuneSelf {
		if s = bytes.TrimSpace(s); len(s) == 0 {
			return Other
		}
	}
	return d.intern(d.lower(s))
}

// country returns an ISO 3166-1 alpha-2 code upper-cased, or UnknownCountry
// for anything that is not exactly two ASCII letters once trimmed.
func country(s []byte) string {
	s = bytes.TrimSpace(s)
	if len(s) != 2 {
		return UnknownCountry
	}
	a, b := s[0]|0x20, s[1]|0x20 // ASCII lower case
	if a < 'a' || a > 'z' || b < 'a' || b > 'z' {
		return UnknownCountry
	}
	return countryCodes[int(a-'a')*26+int(b-'a')]
}

// intern returns s as a string shared between events. The table is bounded
// by Config.InternEntries; past it, values are allocated per event.
func (d *Decoder) intern(s []byte) string {
	slot := &d.recent[quickHash(s, recentBits)]
	if *slot == string(s) && len(s) > 0 {
		return *slot
	}
	v, ok := d.strs[string(s)]
	if !ok {
		v = string(s)
		if len(d.strs) >= d.cfg.InternEntries {
			return v
		}
		d.strs[v] = v
	}
	*slot = v
	return v
}

// recentBits sizes the decoder's direct-mapped cache of interned values.
const recentBits = 8

// quickHash hashes a short name into n bits, for the direct-mapped caches
// in front of the decoder's maps: from its length and its first and last
// eight bytes, in constant time. A collision only costs a map lookup.
func quickHash(s []byte, n uint) uint32 {
	var h uint64
	if l := len(s); l >= 8 {
		h = binary.LittleEndian.Uint64(s) ^ bits.RotateLeft64(binary.LittleEndian.Uint64(s[l-8:]), 29) ^ uint64(l)
	} else {
		h = uint64(l)
		for _, c := range s {
			h = h<<8 | uint64(c)
		}
	}
	return uint32((h * 0x9e3779b97f4a7c15) >> (64 - n))
}
