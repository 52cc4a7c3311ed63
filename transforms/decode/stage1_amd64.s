//go:build amd64 && !purego

#include "textflag.h"

// func scanBlocksAVX2(b []byte, mask []uint64) uint64
//
// Stage 1 over 64 bytes a step, as two 32-byte vectors: VPCMPEQB against
// '"' and VPMOVMSKB give the step's quote mask word; backslashes and
// control bytes (max(x, 0x1f) == 0x1f) are ORed into Y3, every byte into
// Y4 (its high bits are the non-ASCII bytes). Only AVX2 instructions; the
// caller checks the processor has them.
TEXT ·scanBlocksAVX2(SB), NOSPLIT, $0-56
	MOVQ b_base+0(FP), SI
	MOVQ b_len+8(FP), CX
	MOVQ mask_base+24(FP), DI
	MOVL $0x22, AX
	MOVQ AX, X0
	VPBROADCASTB X0, Y0 // '"' in every lane
	MOVL $0x5c, AX
	MOVQ AX, X1
	VPBROADCASTB X1, Y1 // '\\' in every lane
	MOVL $0x1f, AX
	MOVQ AX, X2
	VPBROADCASTB X2, Y2 // 0x1f in every lane
	VPXOR Y3, Y3, Y3
	VPXOR Y4, Y4, Y4

loop:
	CMPQ CX, $64
	JB   done
	VMOVDQU (SI), Y5
	VMOVDQU 32(SI), Y6
	VPCMPEQB Y0, Y5, Y7
	VPCMPEQB Y0, Y6, Y8
	VPMOVMSKB Y7, AX
	VPMOVMSKB Y8, BX
	SHLQ $32, BX
	ORQ  BX, AX
	MOVQ AX, (DI)
	VPCMPEQB Y1, Y5, Y7
	VPCMPEQB Y1, Y6, Y8
	VPOR Y7, Y3, Y3
	VPOR Y8, Y3, Y3
	VPMAXUB Y2, Y5, Y7
	VPMAXUB Y2, Y6, Y8
	VPCMPEQB Y2, Y7, Y7
	VPCMPEQB Y2, Y8, Y8
	VPOR Y7, Y3, Y3
	VPOR Y8, Y3, Y3
	VPOR Y5, Y4, Y4
	VPOR Y6, Y4, Y4
	ADDQ $64, SI
	ADDQ $8, DI
	SUBQ $64, CX
	JMP  loop

done:
	VPMOVMSKB Y3, AX
	VPMOVMSKB Y4, BX
	VZEROUPPER
	XORQ DX, DX
	TESTL AX, AX
	JZ   high
	ORQ  $1, DX // classFallback

high:
	TESTL BX, BX
	JZ   ret
	ORQ  $2, DX // classNonASCII

ret:
	MOVQ DX, ret+48(FP)
	RET
