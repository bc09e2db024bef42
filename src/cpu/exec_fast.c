/*
 * Specialised handlers for the hottest integer forms, chosen once when a
 * block is decoded (cache.c calls exec_int_specialize): register-register
 * ALU ops, immediate ALU ops on registers, register and 64-bit-code memory
 * moves, shifts by a non-zero immediate, imul, jcc. Operand size, form
 * and operation are constants in each, so the hot handler has no switch.
 * Each does exactly what the generic handler would for that form; anything
 * unusual (LOCK, byte or 16-bit operands, a zero shift count) keeps the
 * generic handler.
 */
#include "cpu/block.h"
#include "cpu/exec_int.h"

#define ALWAYS_INLINE static inline __attribute__((always_inline))

static const uint8_t fast_alu_lf[8] = { LF_ADD, LF_LOGIC, LF_ADC, LF_SBB,
					LF_LOGIC, LF_SUB, LF_LOGIC, LF_SUB };

/* dst op= src on registers (size 4 or 8: no byte-register quirks). */
ALWAYS_INLINE void alu_regs(struct cpu *cpu, unsigned dst, uint64_t s, unsigned aop, unsigned size)
{
	uint64_t m = sz_mask(size), d = cpu->gpr[dst] & m;
	bool c = (aop == RMW_ADC || aop == RMW_SBB) && flag_cf(cpu);
	uint64_t r = rmw_calc(aop, d, s & m, c, m);

	if (aop != RMW_CMP)
		cpu->gpr[dst] = r; /* masked: a 32-bit write zero-extends */
	flags_set(cpu, fast_alu_lf[aop], size, d, s & m, r);
}

#define DEF_ALU(aop, size)                                                                 \
	static void h_alu_eg_##aop##_##size(struct cpu *cpu, const struct insn *in)        \
	{                                                                                  \
		alu_regs(cpu, in->rm, cpu->gpr[in->reg], aop, size);                       \
	}                                                                                  \
	static void h_alu_ge_##aop##_##size(struct cpu *cpu, const struct insn *in)        \
	{                                                                                  \
		alu_regs(cpu, in->reg, cpu->gpr[in->rm], aop, size);                       \
	}                                                                                  \
	static void h_alu_ei_##aop##_##size(struct cpu *cpu, const struct insn *in)        \
	{                                                                                  \
		alu_regs(cpu, in->rm, in->imm, aop, size);                                 \
	}
#define DEF_ALU_SIZES(aop) DEF_ALU(aop, 4) DEF_ALU(aop, 8)
DEF_ALU_SIZES(0) DEF_ALU_SIZES(1) DEF_ALU_SIZES(2) DEF_ALU_SIZES(3)
DEF_ALU_SIZES(4) DEF_ALU_SIZES(5) DEF_ALU_SIZES(6) DEF_ALU_SIZES(7)

/* [size 4, size 8][aop] */
#define ALU_ROW(form, size)                                                                \
	{ h_alu_##form##_0_##size, h_alu_##form##_1_##size, h_alu_##form##_2_##size,       \
	  h_alu_##form##_3_##size, h_alu_##form##_4_##size, h_alu_##form##_5_##size,       \
	  h_alu_##form##_6_##size, h_alu_##form##_7_##size }
static const insn_handler alu_eg[2][8] = { ALU_ROW(eg, 4), ALU_ROW(eg, 8) };
static const insn_handler alu_ge[2][8] = { ALU_ROW(ge, 4), ALU_ROW(ge, 8) };
static const insn_handler alu_ei[2][8] = { ALU_ROW(ei, 4), ALU_ROW(ei, 8) };

static void h_test_rr4(struct cpu *cpu, const struct insn *in)
{
	uint64_t r = (uint32_t)(cpu->gpr[in->rm] & cpu->gpr[in->reg]);
	flags_set(cpu, LF_LOGIC, 4, r, 0, r);
}

static void h_test_rr8(struct cpu *cpu, const struct insn *in)
{
	uint64_t r = cpu->gpr[in->rm] & cpu->gpr[in->reg];
	flags_set(cpu, LF_LOGIC, 8, r, 0, r); /* as h_test_eg records it */
}

/* ---- moves ---- */

static void h_mov_rr4(struct cpu *cpu, const struct insn *in) /* 89 mod 3 */
{
	cpu->gpr[in->rm] = (uint32_t)cpu->gpr[in->reg];
}

static void h_mov_rr8(struct cpu *cpu, const struct insn *in)
{
	cpu->gpr[in->rm] = cpu->gpr[in->reg];
}

static void h_mov_rr4_ge(struct cpu *cpu, const struct insn *in) /* 8b mod 3 */
{
	cpu->gpr[in->reg] = (uint32_t)cpu->gpr[in->rm];
}

static void h_mov_rr8_ge(struct cpu *cpu, const struct insn *in)
{
	cpu->gpr[in->reg] = cpu->gpr[in->rm];
}

/* Memory moves in 64-bit code (the block was decoded for 64-bit code, so
 * it runs only there): the TLB hit inline, else the full path. */
ALWAYS_INLINE uint64_t load64_mode(struct cpu *cpu, const struct insn *in, unsigned size)
{
	uint64_t ea = insn_ea_inline(cpu, in);
	void *p = mmu_fast_r(cpu, fast_lin(cpu, in->ea_seg, ea), size);
	if (__builtin_expect(p != NULL, 1))
		return load_sz(p, size);
	return cpu_read_sz(cpu, in->ea_seg, ea, size);
}

ALWAYS_INLINE void store64_mode(struct cpu *cpu, const struct insn *in, uint64_t v, unsigned size)
{
	uint64_t ea = insn_ea_inline(cpu, in);
	void *p = mmu_fast_w(cpu, fast_lin(cpu, in->ea_seg, ea), size);
	if (__builtin_expect(p != NULL, 1))
		store_sz(p, v, size);
	else
		cpu_write_sz(cpu, in->ea_seg, ea, v, size);
}

static void h_mov_load4(struct cpu *cpu, const struct insn *in)
{
	cpu->gpr[in->reg] = load64_mode(cpu, in, 4);
}

static void h_mov_load8(struct cpu *cpu, const struct insn *in)
{
	cpu->gpr[in->reg] = load64_mode(cpu, in, 8);
}

static void h_mov_store4(struct cpu *cpu, const struct insn *in)
{
	store64_mode(cpu, in, cpu->gpr[in->reg], 4);
}

static void h_mov_store8(struct cpu *cpu, const struct insn *in)
{
	store64_mode(cpu, in, cpu->gpr[in->reg], 8);
}

/* ---- shifts by a non-zero immediate (c1 /4 /5 /7, mod 3) ---- */

ALWAYS_INLINE void shift_imm(struct cpu *cpu, const struct insn *in, unsigned lf, unsigned size)
{
	uint64_t m = sz_mask(size), d = cpu->gpr[in->rm] & m, r;
	unsigned count = (unsigned)in->imm & (size == 8 ? 63 : 31); /* != 0 (decode time) */

	if (lf == LF_SHL)
		r = (d << count) & m;
	else if (lf == LF_SHR)
		r = d >> count;
	else
		r = (uint64_t)(sz_sext(d, size) >> count) & m;
	cpu->gpr[in->rm] = r;
	flags_set(cpu, lf, size, d, count, r);
}

#define DEF_SHIFT(name, lf)                                                                \
	static void h_##name##4(struct cpu *cpu, const struct insn *in)                    \
	{                                                                                  \
		shift_imm(cpu, in, lf, 4);                                                 \
	}                                                                                  \
	static void h_##name##8(struct cpu *cpu, const struct insn *in)                    \
	{                                                                                  \
		shift_imm(cpu, in, lf, 8);                                                 \
	}
DEF_SHIFT(shl, LF_SHL)
DEF_SHIFT(shr, LF_SHR)
DEF_SHIFT(sar, LF_SAR)

/* ---- imul r64, r/m64 (0f af, mod 3) ---- */

static void h_imul_rr8(struct cpu *cpu, const struct insn *in)
{
	int64_t lo;
	bool ovf = __builtin_mul_overflow((int64_t)cpu->gpr[in->reg], (int64_t)cpu->gpr[in->rm], &lo);
	uint64_t f = flags_szp((uint64_t)lo, 8);

	cpu->gpr[in->reg] = (uint64_t)lo;
	flags_set_all(cpu, ovf ? f | FL_CF | FL_OF : f);
}

/* ---- je / jne in 64-bit code: ZF is the zero result for every lazy op ---- */

static inline bool zf_now(const struct cpu *cpu)
{
	return cpu->lf_op == LF_NONE ? (cpu->rflags & FL_ZF) != 0 : cpu->lf_res == 0;
}

static void h_je64(struct cpu *cpu, const struct insn *in)
{
	if (zf_now(cpu))
		cpu->next_rip += in->imm;
}

static void h_jne64(struct cpu *cpu, const struct insn *in)
{
	if (!zf_now(cpu))
		cpu->next_rip += in->imm;
}

/* The other conditions: cond() with the condition a constant. */
#define DEF_JCC(cc)                                                                        \
	static void h_jcc64_##cc(struct cpu *cpu, const struct insn *in)                   \
	{                                                                                  \
		if (cond(cpu, cc))                                                         \
			cpu->next_rip += in->imm;                                          \
	}
DEF_JCC(0) DEF_JCC(1) DEF_JCC(2) DEF_JCC(3) DEF_JCC(4) DEF_JCC(5) DEF_JCC(6) DEF_JCC(7)
DEF_JCC(8) DEF_JCC(9) DEF_JCC(10) DEF_JCC(11) DEF_JCC(12) DEF_JCC(13) DEF_JCC(14) DEF_JCC(15)

static const insn_handler jcc64[16] = {
	h_jcc64_0, h_jcc64_1, h_jcc64_2,  h_jcc64_3,  h_jcc64_4,  h_jcc64_5,  h_jcc64_6,  h_jcc64_7,
	h_jcc64_8, h_jcc64_9, h_jcc64_10, h_jcc64_11, h_jcc64_12, h_jcc64_13, h_jcc64_14, h_jcc64_15,
};

static insn_handler specialize_jcc64(unsigned cc)
{
	return cc == 4 ? h_je64 : cc == 5 ? h_jne64 : jcc64[cc];
}

/* ---- the choice ---- */

static insn_handler specialize_1b(const struct insn *in, unsigned code_bits)
{
	unsigned op = in->op, s8 = in->opsize == 8;
	bool reg = in->mod == 3, wide = in->opsize == 4 || in->opsize == 8;

	if (op < 0x40 && (op & 7) == 1 && reg && wide)
		return alu_eg[s8][op >> 3];
	if (op < 0x40 && (op & 7) == 3 && reg && wide)
		return alu_ge[s8][op >> 3];
	if ((op == 0x81 || op == 0x83) && reg && wide)
		return alu_ei[s8][in->reg & 7];
	if (op == 0x85 && reg && wide)
		return s8 ? h_test_rr8 : h_test_rr4;
	if (op == 0x89 && wide)
		return reg ? (s8 ? h_mov_rr8 : h_mov_rr4)
			   : code_bits == 64 ? (s8 ? h_mov_store8 : h_mov_store4) : NULL;
	if (op == 0x8b && wide)
		return reg ? (s8 ? h_mov_rr8_ge : h_mov_rr4_ge)
			   : code_bits == 64 ? (s8 ? h_mov_load8 : h_mov_load4) : NULL;
	if (op == 0xc1 && reg && wide && (in->imm & (s8 ? 63 : 31))) {
		switch (in->reg & 7) {
		case 4: case 6: return s8 ? h_shl8 : h_shl4;
		case 5: return s8 ? h_shr8 : h_shr4;
		case 7: return s8 ? h_sar8 : h_sar4;
		}
	}
	if (op >= 0x70 && op <= 0x7f && code_bits == 64 && in->opsize == 8)
		return specialize_jcc64(op & 15);
	return NULL;
}

insn_handler exec_int_specialize(const struct insn *in, unsigned code_bits)
{
	if ((in->pfx & (PFX_LOCK | PFX_VEX)) || in->fn == exec_ud)
		return in->fn;
	insn_handler h = NULL;
	if (in->map == MAP_1B)
		h = specialize_1b(in, code_bits);
	else if (in->map == MAP_0F && in->op == 0xaf && in->mod == 3 && in->opsize == 8)
		h = h_imul_rr8;
	else if (in->map == MAP_0F && in->op >= 0x80 && in->op <= 0x8f && code_bits == 64 &&
		 in->opsize == 8)
		h = specialize_jcc64(in->op & 15);
	return h ? h : in->fn;
}
