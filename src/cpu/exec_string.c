/*
 * String instructions: movs, cmps, stos, lods, scas with rep/repe/repne in
 * every address size and direction. A long rep stops after a chunk with
 * RIP unchanged (the registers say how far it got), so interrupts are
 * taken; rep movs / rep stos copy a page at a time on host pointers when
 * the TLB allows (RAM, not code).
 */
#include <string.h>

#include "cpu/exec_int.h"
#include "cpu/mmu.h"

#define STR_CHUNK 16384 /* elements per handler call */

static inline uint64_t areg(const struct cpu *cpu, unsigned r, unsigned as)
{
	return cpu->gpr[r] & sz_mask(as);
}

static inline void advance(struct cpu *cpu, unsigned r, int64_t delta, unsigned as)
{
	reg_write(cpu, r, cpu->gpr[r] + (uint64_t)delta, as);
}

static inline int64_t step_of(const struct cpu *cpu, unsigned size)
{
	return (cpu->rflags & FL_DF) ? -(int64_t)size : (int64_t)size;
}

static inline bool has_rep(const struct insn *in)
{
	return in->pfx & (PFX_REP | PFX_REPNE);
}

/* Remaining count; when it is not done yet after a chunk, restart the insn. */
static inline void rep_yield(struct cpu *cpu)
{
	cpu->next_rip = cpu->rip;
}

/* The source segment: override or DS (the decoder put it in ea_seg). */
static inline int src_seg(const struct insn *in)
{
	return in->ea_seg;
}

static void movs_one(struct cpu *cpu, const struct insn *in, unsigned size)
{
	unsigned as = in->adsize;
	uint64_t v = cpu_read_sz(cpu, src_seg(in), areg(cpu, R_RSI, as), size);
	cpu_write_sz(cpu, SEG_ES, areg(cpu, R_RDI, as), v, size);
	int64_t st = step_of(cpu, size);
	advance(cpu, R_RSI, st, as);
	advance(cpu, R_RDI, st, as);
}

/* Elements that fit before either address reaches its page end or wraps. */
static uint64_t run_len(uint64_t off, uint64_t lin, unsigned size, unsigned as, uint64_t n)
{
	uint64_t k = (4096 - (lin & 4095)) / size;
	if (as != 8) {
		uint64_t w = (sz_mask(as) - off + 1) / size;
		if (w < k)
			k = w;
	}
	return k < n ? k : n;
}

/* A bulk forward copy on host pointers; 0 when the slow path must do one. */
static uint64_t movs_bulk(struct cpu *cpu, const struct insn *in, unsigned size, uint64_t n)
{
	unsigned as = in->adsize;
	uint64_t si = areg(cpu, R_RSI, as), di = areg(cpu, R_RDI, as);
	uint64_t ls = cpu->seg[src_seg(in)].base + si, ld = cpu->seg[SEG_ES].base + di;
	if (cpu->code_bits != 64) {
		ls = (uint32_t)ls;
		ld = (uint32_t)ld;
	}
	uint64_t k = run_len(si, ls, size, as, n);
	uint64_t k2 = run_len(di, ld, size, as, n);
	if (k2 < k)
		k = k2;
	if (k < 2)
		return 0;
	unsigned bytes = (unsigned)(k * size);
	ls = cpu_linear(cpu, src_seg(in), si, bytes, false);
	ld = cpu_linear(cpu, SEG_ES, di, bytes, true);
	const uint8_t *ps = mmu_fast_r(cpu, ls, bytes);
	uint8_t *pd = mmu_fast_w(cpu, ld, bytes);
	if (!ps || !pd)
		return 0;
	if (pd > ps && pd < ps + bytes) {
		/* Overlap ahead of the source: element by element, as the CPU does. */
		for (uint64_t i = 0; i < k; i++)
			memmove(pd + i * size, ps + i * size, size);
	} else {
		memmove(pd, ps, bytes);
	}
	advance(cpu, R_RSI, (int64_t)bytes, as);
	advance(cpu, R_RDI, (int64_t)bytes, as);
	return k;
}

HANDLER(h_movs) /* a4 a5 */
{
	unsigned size = size_w(in), as = in->adsize;
	if (!has_rep(in)) {
		movs_one(cpu, in, size);
		return;
	}
	uint64_t n = areg(cpu, R_RCX, as), done = 0;
	while (n) {
		uint64_t k = (cpu->rflags & FL_DF) ? 0 : movs_bulk(cpu, in, size, n);
		if (!k) {
			movs_one(cpu, in, size);
			k = 1;
		}
		n -= k;
		reg_write(cpu, R_RCX, n, as);
		done += k;
		if (done >= STR_CHUNK && n) {
			rep_yield(cpu);
			return;
		}
	}
}

static uint64_t stos_bulk(struct cpu *cpu, const struct insn *in, unsigned size, uint64_t n,
			  uint64_t v)
{
	unsigned as = in->adsize;
	uint64_t di = areg(cpu, R_RDI, as);
	uint64_t ld = cpu->seg[SEG_ES].base + di;
	if (cpu->code_bits != 64)
		ld = (uint32_t)ld;
	uint64_t k = run_len(di, ld, size, as, n);
	if (k < 2)
		return 0;
	unsigned bytes = (unsigned)(k * size);
	ld = cpu_linear(cpu, SEG_ES, di, bytes, true);
	uint8_t *pd = mmu_fast_w(cpu, ld, bytes);
	if (!pd)
		return 0;
	if (size == 1) {
		memset(pd, (int)v, bytes);
	} else {
		for (uint64_t i = 0; i < k; i++)
			memcpy(pd + i * size, &v, size);
	}
	advance(cpu, R_RDI, (int64_t)bytes, as);
	return k;
}

HANDLER(h_stos) /* aa ab */
{
	unsigned size = size_w(in), as = in->adsize;
	uint64_t v = reg_read(cpu, R_RAX, size);
	if (!has_rep(in)) {
		cpu_write_sz(cpu, SEG_ES, areg(cpu, R_RDI, as), v, size);
		advance(cpu, R_RDI, step_of(cpu, size), as);
		return;
	}
	uint64_t n = areg(cpu, R_RCX, as), done = 0;
	while (n) {
		uint64_t k = (cpu->rflags & FL_DF) ? 0 : stos_bulk(cpu, in, size, n, v);
		if (!k) {
			cpu_write_sz(cpu, SEG_ES, areg(cpu, R_RDI, as), v, size);
			advance(cpu, R_RDI, step_of(cpu, size), as);
			k = 1;
		}
		n -= k;
		reg_write(cpu, R_RCX, n, as);
		done += k;
		if (done >= STR_CHUNK && n) {
			rep_yield(cpu);
			return;
		}
	}
}

HANDLER(h_lods) /* ac ad */
{
	unsigned size = size_w(in), as = in->adsize;
	uint64_t n = has_rep(in) ? areg(cpu, R_RCX, as) : 1, done = 0;
	while (n) {
		uint64_t v = cpu_read_sz(cpu, src_seg(in), areg(cpu, R_RSI, as), size);
		reg_write(cpu, R_RAX, v, size);
		advance(cpu, R_RSI, step_of(cpu, size), as);
		n--;
		if (!has_rep(in))
			return;
		reg_write(cpu, R_RCX, n, as);
		if (++done >= STR_CHUNK && n) {
			rep_yield(cpu);
			return;
		}
	}
}

/* cmps / scas: repe (f3) stops when not equal, repne (f2) when equal. */
static void cmp_loop(struct cpu *cpu, const struct insn *in, bool scas)
{
	unsigned size = size_w(in), as = in->adsize;
	bool rep = has_rep(in), repne = (in->pfx & PFX_REPNE) && !(in->pfx & PFX_REP);
	uint64_t n = rep ? areg(cpu, R_RCX, as) : 1, done = 0, m = sz_mask(size);
	int64_t st = step_of(cpu, size);

	while (n) {
		uint64_t a, b;
		if (scas) {
			a = reg_read(cpu, R_RAX, size);
			b = cpu_read_sz(cpu, SEG_ES, areg(cpu, R_RDI, as), size);
		} else {
			a = cpu_read_sz(cpu, src_seg(in), areg(cpu, R_RSI, as), size);
			b = cpu_read_sz(cpu, SEG_ES, areg(cpu, R_RDI, as), size);
			advance(cpu, R_RSI, st, as);
		}
		advance(cpu, R_RDI, st, as);
		flags_set(cpu, LF_SUB, size, a, b, (a - b) & m);
		if (!rep)
			return;
		n--;
		reg_write(cpu, R_RCX, n, as);
		if ((a == b) == repne)
			return;
		if (++done >= STR_CHUNK && n) {
			rep_yield(cpu);
			return;
		}
	}
}

HANDLER(h_cmps) /* a6 a7 */
{
	cmp_loop(cpu, in, false);
}

HANDLER(h_scas) /* ae af */
{
	cmp_loop(cpu, in, true);
}

void exec_string_register(void)
{
	reg_op(MAP_1B, 0xa4, h_movs);
	reg_op(MAP_1B, 0xa5, h_movs);
	reg_op(MAP_1B, 0xa6, h_cmps);
	reg_op(MAP_1B, 0xa7, h_cmps);
	reg_op(MAP_1B, 0xaa, h_stos);
	reg_op(MAP_1B, 0xab, h_stos);
	reg_op(MAP_1B, 0xac, h_lods);
	reg_op(MAP_1B, 0xad, h_lods);
	reg_op(MAP_1B, 0xae, h_scas);
	reg_op(MAP_1B, 0xaf, h_scas);
}
