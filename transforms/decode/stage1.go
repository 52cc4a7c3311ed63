package decode

import (
	"encoding/binary"
	"math/bits"
)

// Stage 1 of the fast path: one pass over the record that marks where its
// quote bytes are and tells whether anything in it needs the exact decoder.
//
// The pass writes one bit per byte of the record into a mask (bit k of word
// w is byte 64w+k), set for every '"'. It returns classFallback when the
// record holds a backslash or a control byte (< 0x20) anywhere, and
// classNonASCII when it holds a byte ≥ 0x80 anywhere. Without a backslash
// no quote is escaped, so every quote opens or closes a string, and a
// string's end is the next set bit of the mask. A control byte is either
// JSON whitespace (which the fast path does not expect) or invalid inside a
// string; either way the exact decoder reads that record.
//
// Two implementations compute the same result: AVX2 assembly over 64-byte
// blocks (stage1_amd64.s), chosen at run time on processors that have
// AVX2, and portable Go over 8-byte words everywhere else.

// Stage 1 results, as bits.
const (
	classFallback uint64 = 1 << iota // a backslash or a control byte
	classNonASCII                    // a byte ≥ 0x80
)

// stage1Block is the number of bytes each step of a stage 1 implementation
// covers: one mask word.
const stage1Block = 64

// scanStructure runs stage 1 over b into mask, which must hold at least
// len(b)/64+1 words; it sets the words after the record's to zero. avx2 selects
// the vector implementation, which only a processor with AVX2 may run.
func scanStructure(b []byte, mask []uint64, avx2 bool) uint64 {
	full := len(b) &^ (stage1Block - 1)
	var class uint64
	if full > 0 {
		if avx2 {
			class = scanBlocksAVX2(b[:full], mask)
		} else {
			class = scanBlocksPortable(b[:full], mask)
		}
	}
	// The tail, padded with spaces: a space is neither a quote nor a
	// control byte, and its bits are zero.
	w := full / stage1Block
	if full < len(b) {
		tail := spaces
		copy(tail[:], b[full:])
		if avx2 {
			class |= scanBlocksAVX2(tail[:], mask[w:w+1])
		} else {
			class |= scanBlocksPortable(tail[:], mask[w:w+1])
		}
		w++
	}
	clear(mask[w:])
	return class
}

// spaces pads the tail of a record to a whole block.
var spaces = [stage1Block]byte{' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ',
	' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ',
	' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ',
	' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '}

// SWAR constants for stage 1 (see scan.go for the lane constants).
const (
	lanes7F  = 0x7f7f7f7f7f7f7f7f
	lanesMul = 0x0102040810204080 // gathers the low bit of each lane into the top byte
)

// scanBlocksPortable is stage 1 in portable Go, 8 bytes at a time; len(b)
// is a multiple of 64.
func scanBlocksPortable(b []byte, mask []uint64) uint64 {
	var special, high uint64
	for w := range mask[:len(b)/stage1Block] {
		blk := (*[stage1Block]byte)(b[w*stage1Block:])
		x0 := binary.LittleEndian.Uint64(blk[0:])
		x1 := binary.LittleEndian.Uint64(blk[8:])
		x2 := binary.LittleEndian.Uint64(blk[16:])
		x3 := binary.LittleEndian.Uint64(blk[24:])
		x4 := binary.LittleEndian.Uint64(blk[32:])
		x5 := binary.LittleEndian.Uint64(blk[40:])
		x6 := binary.LittleEndian.Uint64(blk[48:])
		x7 := binary.LittleEndian.Uint64(blk[56:])
		mask[w] = quoteBits(x0) | quoteBits(x1)<<8 | quoteBits(x2)<<16 | quoteBits(x3)<<24 |
			quoteBits(x4)<<32 | quoteBits(x5)<<40 | quoteBits(x6)<<48 | quoteBits(x7)<<56
		special |= specialLanes(x0) | specialLanes(x1) | specialLanes(x2) | specialLanes(x3) |
			specialLanes(x4) | specialLanes(x5) | specialLanes(x6) | specialLanes(x7)
		high |= x0 | x1 | x2 | x3 | x4 | x5 | x6 | x7
	}
	var class uint64
	if special&lanes80 != 0 {
		class |= classFallback
	}
	if high&lanes80 != 0 {
		class |= classNonASCII
	}
	return class
}

// quoteBits returns one bit per byte of x, set for a quote. The zero test
// of x^'"' borrows nothing across lanes, so it is exact.
func quoteBits(x uint64) uint64 {
	q := x ^ lanesDQ
	q = ^((q&lanes7F + lanes7F) | q | lanes7F)
	return (q >> 7) * lanesMul >> 56
}

// specialLanes is non-zero in its high lane bits when x holds a backslash
// or a control byte. Its zero tests may flag lanes above a true match,
// never without one, which is all a yes-or-no answer needs.
func specialLanes(x uint64) uint64 {
	s := x ^ lanesBS
	return (s-lanes01)&^s | (x-lanes20)&^x
}

// closeQuote returns the index of the quote that closes the string opened
// at b[i], from stage 1's mask, or -1 when the record ends first.
func closeQuote(mask []uint64, i int) int {
	i++
	if m := mask[i>>6] >> (uint(i) & 63); m != 0 {
		return i + bits.TrailingZeros64(m)
	}
	return closeQuoteFar(mask, i)
}

// closeQuoteFar is closeQuote for a string that goes on past the mask word
// of b[i], where i is the index after its opening quote.
func closeQuoteFar(mask []uint64, i int) int {
	for w := i>>6 + 1; w < len(mask); w++ {
		if m := mask[w]; m != 0 {
			return w<<6 + bits.TrailingZeros64(m)
		}
	}
	return -1
}
