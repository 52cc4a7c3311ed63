//go:build amd64 && !purego

package decode

import "golang.org/x/sys/cpu"

// hasAVX2 tells whether this processor runs stage 1's vector code. The
// operating system must save the vector registers too, which cpu checks.
var hasAVX2 = cpu.X86.HasAVX2

// scanBlocksAVX2 is stage 1 in AVX2 assembly (stage1_amd64.s): len(b) is a
// multiple of 64, mask has a word for each 64 bytes. Only call it when
// hasAVX2 is true.
//
//go:noescape
func scanBlocksAVX2(b []byte, mask []uint64) uint64
