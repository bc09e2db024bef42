/*
 * Lazy arithmetic flags: handlers record the operation, its operands and
 * result (masked to the operand size); the six arithmetic flags are worked
 * out only when something reads them. lf_op == LF_NONE: rflags holds them.
 * LF_INC/LF_DEC keep CF in rflags (they do not change it).
 */
#ifndef EMBER_CPU_FLAGS_H
#define EMBER_CPU_FLAGS_H

#include <stdbool.h>
#include <stdint.h>

#include "cpu/cpu.h"

enum {
	LF_NONE,
	LF_ADD,
	LF_ADC,
	LF_SUB,
	LF_SBB,
	LF_LOGIC,
	LF_INC,
	LF_DEC,
	LF_SHL, /* src2: count (1..63) */
	LF_SHR,
	LF_SAR,
};

static inline uint64_t sz_mask(unsigned size)
{
	return size >= 8 ? ~0ULL : (1ULL << (size * 8)) - 1;
}

static inline uint64_t sz_sign(unsigned size)
{
	return 1ULL << (size * 8 - 1);
}

static inline int64_t sz_sext(uint64_t v, unsigned size)
{
	unsigned sh = 64 - size * 8;
	return (int64_t)(v << sh) >> sh;
}

static inline void flags_set(struct cpu *cpu, unsigned op, unsigned size, uint64_t s1, uint64_t s2,
			     uint64_t res)
{
	cpu->lf_op = op;
	cpu->lf_size = size;
	cpu->lf_src1 = s1;
	cpu->lf_src2 = s2;
	cpu->lf_res = res;
}

/* The six arithmetic flags (FL_ARITH bits) the lazy state stands for. */
uint64_t flags_arith(const struct cpu *cpu);

/* Makes rflags hold the arithmetic flags (lf_op = LF_NONE). */
static inline void flags_materialize(struct cpu *cpu)
{
	if (cpu->lf_op != LF_NONE) {
		cpu->rflags = (cpu->rflags & ~FL_ARITH) | flags_arith(cpu);
		cpu->lf_op = LF_NONE;
	}
}

static inline bool flag_cf(const struct cpu *cpu)
{
	switch (cpu->lf_op) {
	case LF_NONE:
	case LF_INC:
	case LF_DEC:
		return cpu->rflags & FL_CF;
	case LF_ADD:
		return cpu->lf_res < cpu->lf_src1;
	case LF_SUB:
		return cpu->lf_src1 < cpu->lf_src2;
	case LF_LOGIC:
		return false;
	default:
		return flags_arith(cpu) & FL_CF;
	}
}

static inline bool flag_zf(const struct cpu *cpu)
{
	return cpu->lf_op == LF_NONE ? (cpu->rflags & FL_ZF) != 0 : cpu->lf_res == 0;
}

/* Sets (on) or clears the given arithmetic flags, keeping the others. */
static inline void flags_put(struct cpu *cpu, uint64_t bits, bool on)
{
	flags_materialize(cpu);
	cpu->rflags = on ? cpu->rflags | bits : cpu->rflags & ~bits;
}

/* Replaces all six arithmetic flags. */
static inline void flags_set_all(struct cpu *cpu, uint64_t arith)
{
	cpu->lf_op = LF_NONE;
	cpu->rflags = (cpu->rflags & ~FL_ARITH) | (arith & FL_ARITH);
}

static inline uint64_t flags_szp(uint64_t res, unsigned size)
{
	uint64_t f = 0;
	res &= sz_mask(size);
	if (res == 0)
		f |= FL_ZF;
	if (res & sz_sign(size))
		f |= FL_SF;
	if (!__builtin_parity((unsigned)(res & 0xff)))
		f |= FL_PF;
	return f;
}

static inline bool cond_from_flags(uint64_t f, unsigned cc)
{
	bool r;
	switch ((cc >> 1) & 7) {
	case 0: r = f & FL_OF; break;
	case 1: r = f & FL_CF; break;
	case 2: r = f & FL_ZF; break;
	case 3: r = f & (FL_CF | FL_ZF); break;
	case 4: r = f & FL_SF; break;
	case 5: r = f & FL_PF; break;
	case 6: r = !(f & FL_SF) != !(f & FL_OF); break;
	default: r = (f & FL_ZF) || (!(f & FL_SF) != !(f & FL_OF)); break;
	}
	return r ^ (cc & 1);
}

/* Condition code cc (0..15, the low nibble of jcc/setcc/cmovcc). */
static inline bool cond(const struct cpu *cpu, unsigned cc)
{
	if (cpu->lf_op == LF_SUB) { /* cmp + jcc: the common case */
		uint64_t a = cpu->lf_src1, b = cpu->lf_src2;
		int64_t sa = sz_sext(a, cpu->lf_size), sb = sz_sext(b, cpu->lf_size);
		bool r;
		switch (cc >> 1) {
		case 1: r = a < b; break;
		case 2: r = a == b; break;
		case 3: r = a <= b; break;
		case 6: r = sa < sb; break;
		case 7: r = sa <= sb; break;
		default: return cond_from_flags(flags_arith(cpu), cc);
		}
		return r ^ (cc & 1);
	}
	if (cpu->lf_op == LF_NONE)
		return cond_from_flags(cpu->rflags, cc);
	/* ZF and SF come straight from the result for every lazy operation. */
	if ((cc >> 1) == 2)
		return (cpu->lf_res == 0) ^ (cc & 1);
	if ((cc >> 1) == 4)
		return !!(cpu->lf_res & sz_sign(cpu->lf_size)) ^ (cc & 1);
	return cond_from_flags(flags_arith(cpu), cc);
}

#endif
