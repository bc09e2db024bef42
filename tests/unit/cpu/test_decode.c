/* Decoder: lengths, operands, prefixes and invalid encodings. */
#include "core_fixture.h"

static struct cfx *F;
static void setup(void) { F = cfx_new(64); }
static void teardown(void) { cfx_free(F); }

static int dec(struct insn *in, unsigned bits, const uint8_t *b, unsigned n)
{
	return insn_decode(in, b, n, bits);
}

#define DEC(in, bits, ...)                                                  \
	({                                                                  \
		static const uint8_t b_[] = { __VA_ARGS__ };                \
		dec((in), (bits), b_, sizeof(b_));                          \
	})

TestSuite(decode, .init = setup, .fini = teardown);

Test(decode, sib_disp32)
{
	struct insn in;
	cr_assert_eq(DEC(&in, 64, 0x48, 0x8b, 0x84, 0x88, 0x78, 0x56, 0x34, 0x12), 8);
	cr_assert_eq(in.opsize, 8);
	cr_assert_eq(in.reg, R_RAX);
	cr_assert_eq(in.base, R_RAX);
	cr_assert_eq(in.index, R_RCX);
	cr_assert_eq(in.scale, 2);
	cr_assert_eq(in.disp, 0x12345678);
	cr_assert_eq(in.ea_seg, SEG_DS);
	F->cpu.gpr[R_RAX] = 0x1000;
	F->cpu.gpr[R_RCX] = 3;
	cr_assert_eq(insn_ea(&F->cpu, &in), 0x1000 + 12 + 0x12345678);
}

Test(decode, rex_position)
{
	struct insn in;
	/* REX before 66: ignored. */
	cr_assert_eq(DEC(&in, 64, 0x48, 0x66, 0x89, 0xc0), 4);
	cr_assert_eq(in.opsize, 2);
	cr_assert_eq(in.rex, 0);
	/* 66 then REX.W: REX.W wins. */
	cr_assert_eq(DEC(&in, 64, 0x66, 0x48, 0x89, 0xc0), 4);
	cr_assert_eq(in.opsize, 8);
	/* Two REX: the last counts. */
	cr_assert_eq(DEC(&in, 64, 0x41, 0x44, 0x89, 0xc0), 4);
	cr_assert_eq(in.reg, 8);
	cr_assert_eq(in.rm, 0);
	/* In 32-bit code 0x48 is dec eax. */
	cr_assert_eq(DEC(&in, 32, 0x48), 1);
	cr_assert_eq(in.op, 0x48);
}

Test(decode, rip_relative)
{
	struct insn in;
	cr_assert_eq(DEC(&in, 64, 0x8b, 0x05, 0x10, 0, 0, 0), 6);
	cr_assert(in.rip_rel);
	F->cpu.rip = 0x4000;
	cr_assert_eq(insn_ea(&F->cpu, &in), 0x4000 + 6 + 0x10);
	/* In 32-bit code mod 0 rm 5 is an absolute disp32. */
	cr_assert_eq(DEC(&in, 32, 0x8b, 0x05, 0x10, 0, 0, 0), 6);
	cr_assert(!in.rip_rel);
	cr_assert_eq(insn_ea(&F->cpu, &in), 0x10);
	/* SIB with no base and no index: absolute in 64-bit too. */
	cr_assert_eq(DEC(&in, 64, 0x8b, 0x04, 0x25, 0x44, 0x33, 0x22, 0x11), 7);
	cr_assert(!in.rip_rel);
	cr_assert_eq(in.base, EA_NONE);
	cr_assert_eq(in.index, EA_NONE);
	cr_assert_eq(in.disp, 0x11223344);
}

Test(decode, rex_x_index_r12)
{
	struct insn in;
	cr_assert_eq(DEC(&in, 64, 0x4a, 0x8b, 0x04, 0x20), 4);
	cr_assert_eq(in.index, 12);
	cr_assert_eq(in.base, R_RAX);
	/* Base r13 (mod 1) is DS, base rbp is SS, base rsp is SS. */
	cr_assert_eq(DEC(&in, 64, 0x41, 0x8b, 0x45, 0x08), 4);
	cr_assert_eq(in.base, 13);
	cr_assert_eq(in.ea_seg, SEG_DS);
	cr_assert_eq(DEC(&in, 64, 0x8b, 0x45, 0x08), 3);
	cr_assert_eq(in.ea_seg, SEG_SS);
	cr_assert_eq(DEC(&in, 64, 0x8b, 0x44, 0x24, 0x08), 4);
	cr_assert_eq(in.ea_seg, SEG_SS);
	cr_assert_eq(in.base, R_RSP);
}

Test(decode, addr16)
{
	struct insn in;
	cr_assert_eq(DEC(&in, 16, 0x8b, 0x46, 0xfe), 3);
	cr_assert_eq(in.base, R_RBP);
	cr_assert_eq(in.ea_seg, SEG_SS);
	cr_assert_eq(in.disp, -2);
	F->cpu.gpr[R_RBP] = 1;
	cr_assert_eq(insn_ea(&F->cpu, &in), 0xffff);
	cr_assert_eq(DEC(&in, 16, 0x8b, 0x06, 0x34, 0x12), 4);
	cr_assert_eq(in.base, EA_NONE);
	cr_assert_eq(in.disp, 0x1234);
	cr_assert_eq(in.ea_seg, SEG_DS);
	cr_assert_eq(DEC(&in, 16, 0x8b, 0x00), 2); /* [bx+si] */
	cr_assert_eq(in.base, R_RBX);
	cr_assert_eq(in.index, R_RSI);
	cr_assert_eq(DEC(&in, 16, 0x8b, 0x04), 2); /* [si] */
	cr_assert_eq(in.base, R_RSI);
	cr_assert_eq(in.index, EA_NONE);
	/* 67 in 32-bit code: 16-bit addressing; 66: 16-bit operands. */
	cr_assert_eq(DEC(&in, 32, 0x67, 0x66, 0x8b, 0x46, 0x01), 5);
	cr_assert_eq(in.adsize, 2);
	cr_assert_eq(in.opsize, 2);
	/* 16-bit code with 66: imm32. */
	cr_assert_eq(DEC(&in, 16, 0x66, 0xb8, 0x78, 0x56, 0x34, 0x12), 6);
	cr_assert_eq(in.opsize, 4);
	cr_assert_eq(in.imm, 0x12345678);
}

Test(decode, immediates)
{
	struct insn in;
	cr_assert_eq(DEC(&in, 64, 0xf6, 0xc0, 0x12), 3);
	cr_assert_eq(in.imm, 0x12);
	cr_assert_eq(DEC(&in, 64, 0xf6, 0xd0), 2); /* not al: no imm */
	cr_assert_eq(DEC(&in, 64, 0x66, 0xf7, 0xc0, 0x34, 0x12), 5);
	cr_assert_eq(DEC(&in, 64, 0x48, 0xf7, 0xc0, 0xff, 0xff, 0xff, 0xff), 7);
	cr_assert_eq(in.imm, ~0ULL);
	cr_assert_eq(DEC(&in, 64, 0xf7, 0x18), 2); /* neg [rax] */
	cr_assert_eq(DEC(&in, 64, 0xc8, 0x10, 0x00, 0x02), 4);
	cr_assert_eq(in.imm, 0x10);
	cr_assert_eq(in.imm2, 2);
	cr_assert_eq(DEC(&in, 32, 0xea, 0x78, 0x56, 0x34, 0x12, 0x08, 0x00), 7);
	cr_assert_eq(in.imm, 0x12345678);
	cr_assert_eq(in.imm2, 8);
	cr_assert_eq(DEC(&in, 16, 0xea, 0x78, 0x56, 0x08, 0x00), 5);
	cr_assert_eq(in.imm, 0x5678);
	cr_assert_eq(DEC(&in, 64, 0xa1, 1, 2, 3, 4, 5, 6, 7, 8), 9);
	cr_assert_eq(in.imm, 0x0807060504030201ULL);
	cr_assert_eq(DEC(&in, 64, 0x67, 0xa1, 1, 2, 3, 4), 6);
	cr_assert_eq(DEC(&in, 32, 0xa1, 1, 2, 3, 4), 5);
	cr_assert_eq(DEC(&in, 16, 0xa1, 1, 2), 3);
	cr_assert_eq(DEC(&in, 64, 0x48, 0xb8, 1, 2, 3, 4, 5, 6, 7, 8), 10);
	cr_assert_eq(in.imm, 0x0807060504030201ULL);
	cr_assert_eq(DEC(&in, 64, 0xb8, 1, 2, 3, 4), 5);
	cr_assert_eq(DEC(&in, 64, 0x41, 0xb0, 0x55), 3);
	cr_assert_eq(in.rm, 8);
	cr_assert_eq(DEC(&in, 64, 0x66, 0x0f, 0x3a, 0x0f, 0xc1, 0x08), 6);
	cr_assert_eq(in.map, MAP_0F3A);
	cr_assert_eq(in.mandatory, MP_66);
	cr_assert_eq(in.imm, 8);
	cr_assert_eq(DEC(&in, 64, 0x0f, 0x38, 0xf0, 0x00), 4);
	cr_assert_eq(in.map, MAP_0F38);
	cr_assert_eq(DEC(&in, 64, 0x6b, 0xc0, 0xff), 3);
	cr_assert_eq(in.imm, ~0ULL);
	cr_assert_eq(DEC(&in, 64, 0x83, 0xc0, 0x80), 3);
	cr_assert_eq(in.imm, (uint64_t)-128);
	cr_assert_eq(DEC(&in, 64, 0xc2, 0x08, 0x00), 3);
	cr_assert_eq(DEC(&in, 64, 0x0f, 0xba, 0xe0, 0x05), 4);
	cr_assert_eq(DEC(&in, 64, 0x0f, 0xa4, 0xc0, 0x05), 4);
	cr_assert_eq(DEC(&in, 64, 0x0f, 0xc2, 0xc1, 0x01), 4); /* cmpps */
	cr_assert_eq(DEC(&in, 64, 0x0f, 0x71, 0xd0, 0x01), 4); /* psrlw mm, ib */
	cr_assert_eq(DEC(&in, 64, 0xd8, 0xc1), 2); /* fadd */
	cr_assert_eq(DEC(&in, 64, 0xdd, 0x44, 0x24, 0x08), 4);
}

Test(decode, branch_sizes)
{
	struct insn in;
	cr_assert_eq(DEC(&in, 64, 0x0f, 0x84, 1, 0, 0, 0), 6);
	cr_assert_eq(in.opsize, 8);
	cr_assert_eq(DEC(&in, 64, 0x66, 0xe8, 1, 0, 0, 0), 6); /* 66 ignored (Intel) */
	cr_assert_eq(DEC(&in, 16, 0x0f, 0x84, 1, 0), 4);
	cr_assert_eq(DEC(&in, 32, 0x66, 0xe9, 1, 0), 4);
	cr_assert_eq(DEC(&in, 64, 0x66, 0xff, 0xd0), 3); /* call rax */
	cr_assert_eq(in.opsize, 8);
	cr_assert_eq(DEC(&in, 64, 0xff, 0x30), 2); /* push [rax] */
	cr_assert_eq(in.opsize, 8);
	cr_assert_eq(DEC(&in, 64, 0x66, 0x50), 2);
	cr_assert_eq(in.opsize, 2);
	cr_assert_eq(DEC(&in, 64, 0x50), 1);
	cr_assert_eq(in.opsize, 8);
	cr_assert_eq(DEC(&in, 64, 0x41, 0x57), 2);
	cr_assert_eq(in.rm, 15);
}

Test(decode, mandatory_prefix)
{
	struct insn in;
	cr_assert_eq(DEC(&in, 64, 0x66, 0xf3, 0x0f, 0xb8, 0xc0), 5);
	cr_assert_eq(in.mandatory, MP_F3);
	cr_assert_eq(DEC(&in, 64, 0xf3, 0x66, 0x0f, 0xb8, 0xc0), 5);
	cr_assert_eq(in.mandatory, MP_F3);
	cr_assert_eq(DEC(&in, 64, 0xf2, 0xf3, 0x0f, 0x10, 0xc0), 5);
	cr_assert_eq(in.mandatory, MP_F3);
	cr_assert_eq(DEC(&in, 64, 0xf3, 0xf2, 0x0f, 0x10, 0xc0), 5);
	cr_assert_eq(in.mandatory, MP_F2);
	cr_assert_eq(DEC(&in, 64, 0x66, 0x0f, 0x10, 0xc0), 4);
	cr_assert_eq(in.mandatory, MP_66);
	cr_assert_eq(DEC(&in, 64, 0x0f, 0x10, 0xc0), 3);
	cr_assert_eq(in.mandatory, MP_NONE);
	cr_assert_eq(DEC(&in, 64, 0xf3, 0x90), 2); /* pause */
	cr_assert_eq(in.mandatory, MP_NONE);
	cr_assert(in.pfx & PFX_REP);
}

Test(decode, segment_override)
{
	struct insn in;
	cr_assert_eq(DEC(&in, 32, 0x64, 0x26, 0x8b, 0x00), 4);
	cr_assert_eq(in.seg, SEG_ES);
	cr_assert_eq(in.ea_seg, SEG_ES);
	cr_assert_eq(DEC(&in, 32, 0x26, 0x64, 0x8b, 0x00), 4);
	cr_assert_eq(in.ea_seg, SEG_FS);
	cr_assert_eq(DEC(&in, 32, 0x3e, 0x8b, 0x45, 0x00), 4); /* ds:[ebp] */
	cr_assert_eq(in.ea_seg, SEG_DS);
	/* 64-bit: es/cs/ss/ds overrides are ignored. */
	cr_assert_eq(DEC(&in, 64, 0x26, 0x8b, 0x00), 3);
	cr_assert_eq(in.ea_seg, SEG_DS);
	cr_assert_eq(DEC(&in, 64, 0x65, 0x26, 0x8b, 0x00), 4);
	cr_assert_eq(in.ea_seg, SEG_GS);
	/* movs source: override; default DS. */
	cr_assert_eq(DEC(&in, 32, 0x2e, 0xa4), 2);
	cr_assert_eq(in.ea_seg, SEG_CS);
}

Test(decode, length_limit)
{
	struct insn in;
	uint8_t b[16];
	memset(b, 0x66, sizeof(b));
	b[14] = 0x90;
	cr_assert_eq(insn_decode(&in, b, 16, 64), 15);
	b[14] = 0x66;
	b[15] = 0x90;
	cr_assert_eq(insn_decode(&in, b, 16, 64), -1);
	F->cpu.exc_vector = -1;
	cr_assert_eq(cfx_exec(F, b, 16), EXC_GP);
	cr_assert_eq(F->cpu.exc_error, 0);
	/* 14 prefixes + mov eax, imm32: 19 bytes. */
	memset(b, 0x66, sizeof(b));
	b[10] = 0xb8;
	cr_assert_eq(insn_decode(&in, b, 16, 32), 13); /* 10 x 66 + b8 iw */
	/* More bytes needed than available: 0. */
	cr_assert_eq(DEC(&in, 64, 0x48, 0x8b, 0x84, 0x88), 0);
	cr_assert_eq(DEC(&in, 64, 0x0f), 0);
	cr_assert_eq(DEC(&in, 64, 0x66), 0);
}

Test(decode, lock_rules)
{
	struct insn in;
	cr_assert_eq(DEC(&in, 64, 0xf0, 0x01, 0xc0), -1); /* register dest */
	cr_assert_eq(in.fn, exec_ud);
	cr_assert_eq(DEC(&in, 64, 0xf0, 0x01, 0x00), 3);
	cr_assert(in.pfx & PFX_LOCK);
	cr_assert_eq(DEC(&in, 64, 0xf0, 0x89, 0x00), -1); /* mov */
	cr_assert_eq(DEC(&in, 64, 0xf0, 0x83, 0x38, 0x01), -1); /* cmp */
	cr_assert_eq(DEC(&in, 64, 0xf0, 0x83, 0x30, 0x01), 4); /* xor */
	cr_assert_eq(DEC(&in, 64, 0xf0, 0x0f, 0xba, 0x20, 0x01), -1); /* bt */
	cr_assert_eq(DEC(&in, 64, 0xf0, 0x0f, 0xba, 0x28, 0x01), 5); /* bts */
	cr_assert_eq(DEC(&in, 64, 0xf0, 0x0f, 0xc7, 0x08), 4); /* cmpxchg8b */
	cr_assert_eq(DEC(&in, 64, 0xf0, 0x0f, 0xc7, 0x30), -1);
	cr_assert_eq(DEC(&in, 64, 0xf0, 0xf7, 0x18), 3); /* neg */
	cr_assert_eq(DEC(&in, 64, 0xf0, 0xf7, 0x20), -1); /* mul */
	cr_assert_eq(DEC(&in, 64, 0xf0, 0xff, 0x00), 3); /* inc */
	cr_assert_eq(DEC(&in, 64, 0xf0, 0xff, 0x30), -1); /* push */
	cr_assert_eq(DEC(&in, 64, 0xf0, 0x87, 0x00), 3);
	cr_assert_eq(DEC(&in, 64, 0xf0, 0x90), -1);
	cr_assert_eq(EXEC(F, 0xf0, 0x01, 0xc0), EXC_UD);
}

Test(decode, invalid_in_64)
{
	struct insn in;
	static const uint8_t ops[] = { 0x06, 0x07, 0x0e, 0x16, 0x17, 0x1e, 0x1f, 0x27, 0x2f,
				       0x37, 0x3f, 0x60, 0x61, 0x62, 0xc4, 0xc5, 0xce, 0xd4,
				       0xd5, 0xd6, 0x82, 0x9a, 0xea };
	for (unsigned i = 0; i < sizeof(ops); i++) {
		uint8_t b[8] = { ops[i], 0x00, 0, 0, 0, 0, 0, 0 };
		cr_assert_eq(insn_decode(&in, b, 8, 64), -1, "op %#x", ops[i]);
		cr_assert_eq(in.fn, exec_ud);
		cr_assert_gt(insn_decode(&in, b, 8, 32), 0, "op %#x in 32-bit", ops[i]);
	}
	/* VEX form in 32-bit code (mod 3): not supported. */
	cr_assert_eq(DEC(&in, 32, 0xc5, 0xf8, 0x77), -1);
	cr_assert_eq(DEC(&in, 32, 0xc5, 0x06), 2); /* lds eax, [esi] */
	cr_assert_eq(EXEC(F, 0x0f, 0x0b), EXC_UD);
}

Test(decode, mov_cr_is_register_form)
{
	struct insn in;
	cr_assert_eq(DEC(&in, 64, 0x0f, 0x20, 0x00), 3);
	cr_assert_eq(in.mod, 3);
	cr_assert_eq(DEC(&in, 64, 0x44, 0x0f, 0x22, 0xc0), 4);
	cr_assert_eq(in.reg, 8);
}
