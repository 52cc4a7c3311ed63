package privacy

import "math/bits"

// The rules of contract §7 compare products of int64 totals and percentages,
// which can exceed int64 (100·X overflows for X above 9.2·10^16). They are
// computed exactly in 128 bits instead, so a large but valid cell is judged
// on its true values, never on a wrapped product.

// u128 is an unsigned 128-bit integer.
type u128 struct{ hi, lo uint64 }

// mul returns a·b exactly; a and b must not be negative.
func mul(a, b int64) u128 {
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	return u128{hi, lo}
}

// less tells whether x < y.
func (x u128) less(y u128) bool {
	return x.hi < y.hi || x.hi == y.hi && x.lo < y.lo
}

// dominated applies the (n, k%) dominance rule to a measure with total
// total > 0 whose n largest workspace totals sum to topN: the cell fails
// when 100·topN > kdom·total. All arguments are non-negative.
func dominated(topN, total, kdom int64) bool {
	return mul(kdom, total).less(mul(100, topN))
}

// pRuleFails applies the p% rule to a measure with total total > 0 whose
// two largest workspace totals are x1 ≥ x2: the cell fails when the rest is
// within p% of the largest, 100·(total − x1 − x2) < p·x1, so that the
// second-largest contributor could estimate the largest too closely. All
// arguments are non-negative and x1 + x2 ≤ total.
func pRuleFails(total, x1, x2, p int64) bool {
	return mul(100, total-x1-x2).less(mul(p, x1))
}

// topN keeps the largest values seen, in descending order, without
// allocating: values are non-negative, so the zero value of the buffer is a
// neutral start, and a cell with fewer contributors than the buffer simply
// has zeros for the missing ones.
type topN []int64

// reset zeroes the buffer.
func (t topN) reset() { clear(t) }

// add offers v.
func (t topN) add(v int64) {
	last := len(t) - 1
	if v <= t[last] {
		return
	}
	i := last
	for i > 0 && t[i-1] < v {
		t[i] = t[i-1]
		i--
	}
	t[i] = v
}

// sum returns the sum of the n largest values; it cannot overflow when
// every value was part of a total that did not.
func (t topN) sum(n int) int64 {
	var s int64
	for _, v := range t[:n] {
		s += v
	}
	return s
}
