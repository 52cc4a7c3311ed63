//go:build !amd64 || purego

package decode

// hasAVX2 is false off amd64: stage 1 runs its portable code.
const hasAVX2 = false

// scanBlocksAVX2 is never called where there is no AVX2 code.
func scanBlocksAVX2(b []byte, mask []uint64) uint64 { return scanBlocksPortable(b, mask) }
