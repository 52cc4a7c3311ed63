package gen

import (
	"math"
	"math/bits"
	"math/rand/v2"
	"unicode/utf8"
)

// rng is a PCG generator with the few draws the generator needs, as direct
// (inlinable) methods.
type rng struct{ p rand.PCG }

func newRNG(seed int64, stream uint64) *rng {
	r := &rng{}
	r.p.Seed(uint64(seed), stream*0x9e3779b97f4a7c15+0x632be59bd9b4e019)
	return r
}

func (r *rng) u64() uint64 { return r.p.Uint64() }

// float returns a uniform float64 in [0, 1).
func (r *rng) float() float64 { return float64(r.p.Uint64()>>11) / (1 << 53) }

// intn returns a uniform int in [0, n), n > 0 (Lemire's method).
func (r *rng) intn(n int) int {
	hi, lo := bits.Mul64(r.p.Uint64(), uint64(n))
	if lo < uint64(n) {
		thresh := -uint64(n) % uint64(n)
		for lo < thresh {
			hi, lo = bits.Mul64(r.p.Uint64(), uint64(n))
		}
	}
	return int(hi)
}

// between returns a uniform int64 in [lo, hi].
func (r *rng) between(lo, hi int64) int64 { return lo + int64(r.intn(int(hi-lo+1))) }

// uniform returns a uniform float64 in [lo, hi).
func (r *rng) uniform(lo, hi float64) float64 { return lo + (hi-lo)*r.float() }

// chance returns true with probability p.
func (r *rng) chance(p float64) bool { return r.float() < p }

// normal returns a standard normal draw (Box-Muller, one of the pair).
func (r *rng) normal() float64 {
	u := 1 - r.float()
	return math.Sqrt(-2*math.Log(u)) * math.Cos(2*math.Pi*r.float())
}

// lognormal returns exp(mu + sigma·N(0,1)).
func (r *rng) lognormal(mu, sigma float64) float64 { return math.Exp(mu + sigma*r.normal()) }

// pareto returns a truncated Pareto draw in [lo, hi] with tail index alpha:
// a power law, most values near lo, a few near hi.
func (r *rng) pareto(lo, hi, alpha float64) float64 {
	u := r.float()
	ratio := math.Pow(lo/hi, alpha)
	return lo / math.Pow(1-u*(1-ratio), 1/alpha)
}

func pick[T any](r *rng, s []T) T { return s[r.intn(len(s))] }

const hexDigits = "0123456789abcdef"

// appendHex appends the n low hex digits of v.
func appendHex(b []byte, v uint64, n int) []byte {
	for i := n - 1; i >= 0; i-- {
		b = append(b, hexDigits[(v>>(4*uint(i)))&0xf])
	}
	return b
}

// appendUUID appends a random version-4 UUID.
func appendUUID(b []byte, r *rng) []byte {
	hi, lo := r.u64(), r.u64()
	hi = hi&^0xf000 | 0x4000
	lo = lo&^(0xc<<60) | 0x8<<60
	b = appendHex(b, hi>>32, 8)
	b = append(b, '-')
	b = appendHex(b, hi>>16, 4)
	b = append(b, '-')
	b = appendHex(b, hi, 4)
	b = append(b, '-')
	b = appendHex(b, lo>>48, 4)
	b = append(b, '-')
	return appendHex(b, lo, 12)
}

// crockford is the alphabet of ULIDs (Crockford's base32).
const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// appendULID appends a random id in the shape of a ULID: 26 characters of
// Crockford's base32, as many producers write event ids.
func appendULID(b []byte, r *rng) []byte {
	var v uint64
	for i := range 26 {
		if i%12 == 0 {
			v = r.u64()
		}
		b = append(b, crockford[v&31])
		v >>= 5
	}
	return b
}

// appendKey appends `"key":`.
func appendKey(b []byte, key string) []byte {
	b = append(b, '"')
	b = append(b, key...)
	return append(b, '"', ':')
}

// appendRaw appends s quoted, unescaped: for values known to need no
// escaping (ids, enumerations).
func appendRaw(b []byte, s string) []byte {
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// appendString appends s as a JSON string, escaping what JSON requires.
// With ascii, every non-ASCII rune is written as \uXXXX (surrogate pairs
// beyond the BMP), as producers with an ASCII-only encoder do.
func appendString[T ~string | ~[]byte](b []byte, s T, ascii bool) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\t':
				b = append(b, '\\', 't')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		rn, size := decodeRune(s[i:])
		if !ascii {
			b = append(b, s[i:i+size]...)
			i += size
			continue
		}
		if rn >= 0x10000 {
			rn -= 0x10000
			b = appendU(b, 0xd800+(rn>>10))
			rn = 0xdc00 + rn&0x3ff
		}
		b = appendU(b, rn)
		i += size
	}
	return append(b, '"')
}

func appendU(b []byte, r rune) []byte {
	return append(b, '\\', 'u', hexDigits[r>>12&0xf], hexDigits[r>>8&0xf], hexDigits[r>>4&0xf], hexDigits[r&0xf])
}

// Timestamp styles: how an event time is written. All are RFC 3339.
const (
	tsSeconds = iota // 2026-11-01T03:04:05Z
	tsMillis         // 2026-11-01T03:04:05.123Z
	tsOffset         // 2026-11-01T05:04:05+02:00 (the same instant)
)

// appendTime appends the RFC 3339 form of ms (milliseconds since the Unix
// epoch, UTC) in the given style, quoted.
func appendTime(b []byte, ms int64, style int) []byte {
	b = append(b, '"')
	b = appendTimeBare(b, ms, style)
	return append(b, '"')
}

// offsetMinutes is the zone offset of tsOffset.
const offsetMinutes = 120

func appendTimeBare(b []byte, ms int64, style int) []byte {
	sec := floorDiv(ms, 1000)
	if style == tsOffset {
		sec += offsetMinutes * 60
	}
	days := floorDiv(sec, 86400)
	rem := sec - days*86400
	y, m, d := civil(days)
	b = append4(b, y)
	b = append(b, '-')
	b = append2(b, m)
	b = append(b, '-')
	b = append2(b, d)
	b = append(b, 'T')
	b = append2(b, int(rem/3600))
	b = append(b, ':')
	b = append2(b, int(rem/60%60))
	b = append(b, ':')
	b = append2(b, int(rem%60))
	switch style {
	case tsMillis:
		f := int(ms - floorDiv(ms, 1000)*1000)
		b = append(b, '.', byte('0'+f/100), byte('0'+f/10%10), byte('0'+f%10), 'Z')
	case tsOffset:
		b = append(b, '+')
		b = append2(b, offsetMinutes/60)
		b = append(b, ':')
		b = append2(b, offsetMinutes%60)
	default:
		b = append(b, 'Z')
	}
	return b
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// civil converts days since 1970-01-01 to a Gregorian date (Howard
// Hinnant's days_from_civil inverse).
func civil(z int64) (y, m, d int) {
	z += 719468
	era := floorDiv(z, 146097)
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	yy := yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	dd := doy - (153*mp+2)/5 + 1
	mm := mp + 3
	if mm > 12 {
		mm -= 12
	}
	if mm <= 2 {
		yy++
	}
	return int(yy), int(mm), int(dd)
}

func append2(b []byte, v int) []byte { return append(b, byte('0'+v/10), byte('0'+v%10)) }

func append4(b []byte, v int) []byte {
	return append(b, byte('0'+v/1000%10), byte('0'+v/100%10), byte('0'+v/10%10), byte('0'+v%10))
}

// decodeRune decodes the first UTF-8 rune of s.
func decodeRune[T ~string | ~[]byte](s T) (rune, int) {
	var buf [utf8.UTFMax]byte
	n := copy(buf[:], s[:min(len(s), utf8.UTFMax)])
	return utf8.DecodeRune(buf[:n])
}
