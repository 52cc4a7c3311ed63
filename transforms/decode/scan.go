package decode

import (
	"encoding/binary"
	"math/bits"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// The scanning primitives below work on the record's bytes and an index.
// Each returns the index just past what it consumed, or ^i (a negative
// number) where i is the offset of the byte that makes the input invalid
// JSON (len(b) when the input ended too soon). None of them allocates, and
// none of them copies a string anywhere: a skipped value is only validated.

// isSpace marks the four JSON whitespace bytes.
var isSpace = [256]bool{' ': true, '\t': true, '\n': true, '\r': true}

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace[b[i]] {
		i++
	}
	return i
}

// String flags reported by scanString.
const (
	strEscaped  uint8 = 1 << iota // the string holds at least one escape
	strNonASCII                   // the string holds a byte ≥ 0x80
)

// SWAR constants: a byte repeated in every lane of a uint64.
const (
	lanes01 = 0x0101010101010101
	lanes80 = 0x8080808080808080
	lanes20 = 0x2020202020202020
	lanesDQ = 0x2222222222222222 // '"'
	lanesBS = 0x5c5c5c5c5c5c5c5c // '\\'
)

// specialMask flags, in the high bit of each byte lane of x, the bytes that
// end the fast path of a string: a quote, a backslash or a control byte
// (< 0x20). The zero-byte tests borrow across lanes, so lanes above a match
// may be flagged falsely, but the lowest flagged lane is always a match:
// the first special byte of x is at bits.TrailingZeros64(mask)/8.
func specialMask(x uint64) uint64 {
	q := x ^ lanesDQ
	s := x ^ lanesBS
	return ((q-lanes01)&^q | (s-lanes01)&^s | (x-lanes20)&^x) & lanes80
}

// scanString validates the string whose opening quote is at b[i]. It
// returns the index just past the closing quote and the string's flags
// (strNonASCII may be set for a string of ASCII when a byte after it is
// not). It validates escapes and rejects raw control bytes, as JSON
// requires, but leaves UTF-8 to the caller: encoding/json accepts invalid
// UTF-8 in values it does not decode, and so does a skipped value here.
func scanString(b []byte, i int) (int, uint8) {
	var flags uint8
	i++
	for {
		for i+8 <= len(b) {
			x := binary.LittleEndian.Uint64(b[i:])
			if x&lanes80 != 0 {
				flags |= strNonASCII
			}
			if m := specialMask(x); m != 0 {
				i += bits.TrailingZeros64(m) >> 3
				break
			}
			i += 8
		}
		if i >= len(b) {
			return ^len(b), 0
		}
		switch c := b[i]; {
		case c == '"':
			return i + 1, flags
		case c == '\\':
			flags |= strEscaped
			if i+1 >= len(b) {
				return ^len(b), 0
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if hex4(b, i+2) < 0 {
					return ^(i + 1), 0
				}
				i += 6
			default:
				return ^(i + 1), 0
			}
		case c < 0x20:
			return ^i, 0
		default:
			if c >= 0x80 {
				flags |= strNonASCII
			}
			i++
		}
	}
}

// hex4 decodes the four hex digits at b[i:i+4], or returns -1.
func hex4(b []byte, i int) rune {
	if i+4 > len(b) {
		return -1
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r<<4 | rune(c)
	}
	return r
}

// unescape appends the decoded contents of a JSON string body (the bytes
// between the quotes, already validated by scanString) to dst. It stops and
// returns false as soon as the result would exceed max bytes, so dst never
// grows past max+utf8.UTFMax. Invalid surrogate escapes become U+FFFD, as
// encoding/json makes them.
func unescape(dst, s []byte, max int) ([]byte, bool) {
	for i := 0; i < len(s); {
		c := s[i]
		if c != '\\' {
			dst = append(dst, c)
			i++
		} else {
			switch s[i+1] {
			case 'b':
				dst = append(dst, '\b')
			case 'f':
				dst = append(dst, '\f')
			case 'n':
				dst = append(dst, '\n')
			case 'r':
				dst = append(dst, '\r')
			case 't':
				dst = append(dst, '\t')
			case 'u':
				r := hex4(s, i+2)
				i += 6
				if utf16.IsSurrogate(r) {
					if i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' {
						if pair := utf16.DecodeRune(r, hex4(s, i+2)); pair != unicode.ReplacementChar {
							r = pair
							i += 6
						} else {
							r = unicode.ReplacementChar
						}
					} else {
						r = unicode.ReplacementChar
					}
				}
				dst = utf8.AppendRune(dst, r)
				if len(dst) > max {
					return dst, false
				}
				continue
			default: // '"', '\\', '/'
				dst = append(dst, s[i+1])
			}
			i += 2
		}
		if len(dst) > max {
			return dst, false
		}
	}
	return dst, true
}

// skipNumber validates the JSON number at b[i].
func skipNumber(b []byte, i int) int {
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i >= len(b):
		return ^i
	case b[i] == '0':
		i++
	case '1' <= b[i] && b[i] <= '9':
		i = skipDigits(b, i+1)
	default:
		return ^i
	}
	if i < len(b) && b[i] == '.' {
		if i+1 >= len(b) || !isDigit(b[i+1]) {
			return ^(i + 1)
		}
		i = skipDigits(b, i+2)
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || !isDigit(b[i]) {
			return ^i
		}
		i = skipDigits(b, i+1)
	}
	return i
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func skipDigits(b []byte, i int) int {
	for i < len(b) && isDigit(b[i]) {
		i++
	}
	return i
}

// skipLiteral matches lit ("true", "false", "null") at b[i].
func skipLiteral(b []byte, i int, lit string) int {
	if len(b)-i >= len(lit) && string(b[i:i+len(lit)]) == lit {
		return i + len(lit)
	}
	for k := 0; k < len(lit) && i+k < len(b); k++ {
		if b[i+k] != lit[k] {
			return ^(i + k)
		}
	}
	return ^len(b)
}

// Integer scan results.
const (
	intOK       = iota
	intNotInt   // a valid JSON number with a fraction or an exponent
	intNotJSON  // not a valid JSON number
	intNotFound // the value is not a number at all
)

// plausibleMax is the largest value a counter may take in one event
// (contract §3.6). Parsed magnitudes saturate just above it.
const plausibleMax = 1_000_000_000_000

// scanInt reads the JSON integer at b[i]. It returns its magnitude,
// saturated at plausibleMax+1, whether it carried a minus sign, the index
// after it (or ^offset) and one of the int* results. "-0" is zero, not
// negative.
func scanInt(b []byte, i int) (mag int64, neg bool, next int, res int) {
	start := i
	if b[i] == '-' {
		neg = true
		i++
	}
	switch {
	case i >= len(b):
		return 0, false, ^i, intNotJSON
	case b[i] == '0':
		i++
	case '1' <= b[i] && b[i] <= '9':
		// Accumulate freely (a long run wraps around) and saturate after:
		// 13 digits or fewer never overflow.
		j := i
		var u uint64
		for ; i < len(b); i++ {
			c := b[i] - '0'
			if c > 9 {
				break
			}
			u = u*10 + uint64(c)
		}
		if i-j > 13 || u > plausibleMax {
			u = plausibleMax + 1
		}
		mag = int64(u)
	default:
		if neg {
			return 0, false, ^i, intNotJSON
		}
		return 0, false, i, intNotFound
	}
	if i < len(b) && (b[i] == '.' || b[i] == 'e' || b[i] == 'E') {
		if n := skipNumber(b, start); n < 0 {
			return 0, false, n, intNotJSON
		} else {
			return 0, false, n, intNotInt
		}
	}
	return mag, neg && mag != 0, i, intOK
}
