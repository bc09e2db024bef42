/*
 * Segment registers: descriptor loads with the protected-mode checks, real
 * and virtual-8086 loads, and far JMP/CALL/RET (call gates included).
 */
#include "cpu/seg.h"

#include "cpu/mem.h"
#include "cpu/mmu.h"

#define D_TYPE(d) ((unsigned)((d) >> 40) & 0xf)
#define D_S(d) (((d) >> 44) & 1)
#define D_DPL(d) ((unsigned)((d) >> 45) & 3)
#define D_P(d) (((d) >> 47) & 1)
#define D_L(d) (((d) >> 53) & 1)
#define D_DB(d) (((d) >> 54) & 1)
#define D_CODE(d) (D_S(d) && (D_TYPE(d) & 8))
#define D_CONFORMING(d) (D_CODE(d) && (D_TYPE(d) & 4))

static bool prot_mode(const struct cpu *cpu)
{
	return (cpu->cr0 & CR0_PE) && !(cpu->rflags & FL_VM);
}

uint64_t seg_read_desc(struct cpu *cpu, uint16_t sel, int vector, uint32_t ext)
{
	uint64_t base, d;
	uint32_t limit;

	if (sel & 4) {
		const struct cpu_seg *ldt = &cpu->seg[SEG_LDTR];

		if ((ldt->attr & SEG_ATTR_UNUSABLE) || !(ldt->attr & SEG_ATTR_P))
			cpu_fault(cpu, vector, (sel & 0xfffc) | ext);
		base = ldt->base;
		limit = ldt->limit;
	} else {
		base = cpu->gdtr.base;
		limit = cpu->gdtr.limit;
	}
	if ((uint32_t)(sel & ~7u) + 7 > limit)
		cpu_fault(cpu, vector, (sel & 0xfffc) | ext);
	if (!cpu->long_mode)
		base = (uint32_t)base;
	cpu_read_lin(cpu, base + (sel & ~7u), &d, 8, true);
	return d;
}

uint64_t seg_read_desc_hi(struct cpu *cpu, uint16_t sel, int vector, uint32_t ext)
{
	return seg_read_desc(cpu, (uint16_t)((sel & ~7u) + 8 + (sel & 7u)), vector, ext);
}

void seg_set_accessed(struct cpu *cpu, uint16_t sel, uint64_t *desc)
{
	uint64_t base = (sel & 4) ? cpu->seg[SEG_LDTR].base : cpu->gdtr.base;
	uint8_t b;

	if (!D_S(*desc) || (*desc & (1ULL << 40)))
		return;
	*desc |= 1ULL << 40;
	b = (uint8_t)(*desc >> 40);
	cpu_write_lin(cpu, base + (sel & ~7u) + 5, &b, 1, true);
}

void seg_cache_from_desc(struct cpu_seg *s, uint16_t sel, uint64_t desc)
{
	s->sel = sel;
	s->base = desc_base(desc);
	s->limit = desc_limit(desc);
	s->attr = desc_attr(desc);
}

void seg_load_real(struct cpu *cpu, int sreg, uint16_t sel)
{
	struct cpu_seg *s = &cpu->seg[sreg];

	s->sel = sel;
	s->base = (uint64_t)sel << 4;
	if (cpu->rflags & FL_VM) {
		s->limit = 0xffff;
		s->attr = 0xf3 | (sreg == SEG_CS ? 0x8 : 0);
	} else {
		/* Real mode keeps the cached limit and attributes (unreal mode),
		 * but the segment becomes usable and present. */
		s->attr = (s->attr & ~SEG_ATTR_UNUSABLE) | SEG_ATTR_P | SEG_ATTR_S;
		if (sreg == SEG_CS)
			s->attr = (s->attr & ~0x6fu) | 0xb; /* DPL 0 code */
		else if ((s->attr & 0xf) < 2 || (s->attr & 8))
			s->attr = (s->attr & ~0x6fu) | 0x3; /* DPL 0 writable data */
		else
			s->attr &= ~0x60u;
	}
	if (sreg == SEG_CS || sreg == SEG_SS)
		cpu_update_mode(cpu);
}

static void load_null(struct cpu *cpu, int sreg, uint16_t sel)
{
	struct cpu_seg *s = &cpu->seg[sreg];

	s->sel = sel;
	s->base = 0;
	s->limit = 0;
	s->attr = SEG_ATTR_UNUSABLE;
}

static void load_ss(struct cpu *cpu, uint16_t sel)
{
	unsigned cpl = cpu->cpl;
	uint64_t d;

	if (!(sel & ~3u)) {
		/* 64-bit mode allows a null SS below CPL 3 (RPL = CPL). */
		if (cpu_is64(cpu) && cpl != 3 && (sel & 3) == cpl) {
			load_null(cpu, SEG_SS, sel);
			cpu->seg[SEG_SS].attr |= cpl << SEG_ATTR_DPL_SHIFT;
			return;
		}
		cpu_fault(cpu, EXC_GP, 0);
	}
	d = seg_read_desc(cpu, sel, EXC_GP, 0);
	if ((sel & 3) != cpl || !D_S(d) || (D_TYPE(d) & 0xa) != 2 || D_DPL(d) != cpl)
		cpu_fault(cpu, EXC_GP, sel & 0xfffc);
	if (!D_P(d))
		cpu_fault(cpu, EXC_SS, sel & 0xfffc);
	seg_set_accessed(cpu, sel, &d);
	seg_cache_from_desc(&cpu->seg[SEG_SS], sel, d);
}

static void load_data(struct cpu *cpu, int sreg, uint16_t sel)
{
	unsigned rpl = sel & 3;
	uint64_t d;

	if (!(sel & ~3u)) {
		load_null(cpu, sreg, sel);
		return;
	}
	d = seg_read_desc(cpu, sel, EXC_GP, 0);
	if (!D_S(d) || (D_CODE(d) && !(D_TYPE(d) & 2)))
		cpu_fault(cpu, EXC_GP, sel & 0xfffc);
	if (!D_CONFORMING(d) && (rpl > D_DPL(d) || cpu->cpl > D_DPL(d)))
		cpu_fault(cpu, EXC_GP, sel & 0xfffc);
	if (!D_P(d))
		cpu_fault(cpu, EXC_NP, sel & 0xfffc);
	seg_set_accessed(cpu, sel, &d);
	seg_cache_from_desc(&cpu->seg[sreg], sel, d);
}

void seg_load(struct cpu *cpu, int sreg, uint16_t sel)
{
	if (!prot_mode(cpu)) {
		seg_load_real(cpu, sreg, sel);
	} else if (sreg == SEG_SS) {
		load_ss(cpu, sel);
	} else {
		load_data(cpu, sreg, sel);
	}
	if (sreg == SEG_SS) {
		/* 2, not STI's 1: a MOV SS / POP SS shadow also holds debug
		 * traps (single-step) until after the next instruction (run.c). */
		cpu->intr_shadow = 2;
		cpu_update_mode(cpu);
	}
}

void seg_null_invalid(struct cpu *cpu)
{
	static const int regs[] = { SEG_ES, SEG_DS, SEG_FS, SEG_GS };

	for (unsigned i = 0; i < 4; i++) {
		struct cpu_seg *s = &cpu->seg[regs[i]];
		unsigned dpl = (s->attr >> SEG_ATTR_DPL_SHIFT) & 3;
		bool conforming = (s->attr & 0xc) == 0xc && (s->attr & SEG_ATTR_S);

		if (s->attr & SEG_ATTR_UNUSABLE)
			continue;
		if (!conforming && dpl < cpu->cpl) {
			/* Intel keeps the selector's hidden base on a null here in
			 * 64-bit mode; clearing it matches a null load. */
			s->sel = 0;
			s->attr = SEG_ATTR_UNUSABLE;
		}
	}
}

/* ---- Stacks ---- */

void stk_current(struct cpu *cpu, struct stack_ctx *s)
{
	s->ss = cpu->seg[SEG_SS];
	s->sp = cpu->gpr[R_RSP];
	s->bits = cpu_is64(cpu) ? 64 : (s->ss.attr & SEG_ATTR_DB) ? 32 : 16;
	s->cpl = cpu->cpl;
	s->fault_sel = 0;
}

static uint64_t stk_lin(struct cpu *cpu, struct stack_ctx *s, uint64_t off, unsigned size)
{
	if (s->bits == 64) {
		if (!mmu_canonical(off) || !mmu_canonical(off + size - 1))
			cpu_fault(cpu, EXC_SS, s->fault_sel);
		return off;
	}
	if ((s->ss.attr & 0xc) == 4) { /* expand-down */
		uint64_t top = (s->ss.attr & SEG_ATTR_DB) ? 0xffffffffULL : 0xffffULL;

		if (off <= s->ss.limit || off + size - 1 > top)
			cpu_fault(cpu, EXC_SS, s->fault_sel);
	} else if (off + size - 1 > s->ss.limit) {
		cpu_fault(cpu, EXC_SS, s->fault_sel);
	}
	return (uint32_t)(s->ss.base + off);
}

static uint64_t sp_mask(unsigned bits)
{
	return bits == 64 ? ~0ULL : bits == 32 ? 0xffffffffULL : 0xffffULL;
}

void stk_push(struct cpu *cpu, struct stack_ctx *s, uint64_t v, unsigned size)
{
	uint64_t mask = sp_mask(s->bits);
	uint64_t sp = (s->sp - size) & mask;
	uint64_t lin = stk_lin(cpu, s, sp, size);

	cpu_write_lin(cpu, lin, &v, size, s->cpl != 3);
	s->sp = (s->sp & ~mask) | sp;
}

uint64_t stk_pop(struct cpu *cpu, struct stack_ctx *s, unsigned size)
{
	uint64_t mask = sp_mask(s->bits);
	uint64_t sp = s->sp & mask;
	uint64_t lin = stk_lin(cpu, s, sp, size);
	uint64_t v = 0;

	cpu_read_lin(cpu, lin, &v, size, s->cpl != 3);
	s->sp = (s->sp & ~mask) | ((sp + size) & mask);
	return v;
}

void stk_commit(struct cpu *cpu, const struct stack_ctx *s)
{
	cpu->seg[SEG_SS] = s->ss;
	cpu->gpr[R_RSP] = s->sp;
}

/* ---- Far transfers ---- */

static uint64_t off_mask(unsigned opsize)
{
	return opsize == 8 ? ~0ULL : opsize == 4 ? 0xffffffffULL : 0xffffULL;
}

/* Loads CS (RPL = cpl) and sets next_rip, checking the offset. */
static void enter_cs(struct cpu *cpu, uint16_t sel, uint64_t d, unsigned cpl, uint64_t off)
{
	struct cpu_seg cs;

	seg_cache_from_desc(&cs, (uint16_t)((sel & ~3u) | cpl), d);
	if (!(cpu->long_mode && (cs.attr & SEG_ATTR_L))) {
		if (off > cs.limit)
			cpu_fault(cpu, EXC_GP, 0);
	} else if (!mmu_canonical(off)) {
		cpu_fault(cpu, EXC_GP, 0);
	}
	seg_set_accessed(cpu, sel, &d);
	cs.attr = desc_attr(d);
	cpu->seg[SEG_CS] = cs;
	cpu->next_rip = off;
	cpu_update_mode(cpu);
}

/* The checks a code-segment target of JMP/CALL makes. */
static void check_code_target(struct cpu *cpu, uint16_t sel, uint64_t d, bool via_gate)
{
	unsigned cpl = cpu->cpl;

	if (!D_CODE(d))
		cpu_fault(cpu, EXC_GP, sel & 0xfffc);
	if (D_CONFORMING(d)) {
		if (D_DPL(d) > cpl)
			cpu_fault(cpu, EXC_GP, sel & 0xfffc);
	} else if (via_gate ? D_DPL(d) > cpl : ((sel & 3) > cpl || D_DPL(d) != cpl)) {
		cpu_fault(cpu, EXC_GP, sel & 0xfffc);
	}
	if (cpu->long_mode && D_L(d) && D_DB(d))
		cpu_fault(cpu, EXC_GP, sel & 0xfffc);
	if (!D_P(d))
		cpu_fault(cpu, EXC_NP, sel & 0xfffc);
}

struct gate {
	uint16_t sel;
	uint64_t off;
	unsigned params, size; /* size: 2, 4 or 8 (gate width) */
};

/* Reads and checks a call gate; returns its target's descriptor. */
static uint64_t read_call_gate(struct cpu *cpu, uint16_t sel, uint64_t d, struct gate *g)
{
	unsigned type = D_TYPE(d);
	uint64_t td;

	if (cpu->long_mode ? type != 0xc : (type != 4 && type != 0xc))
		cpu_fault(cpu, EXC_GP, sel & 0xfffc);
	if (D_DPL(d) < cpu->cpl || D_DPL(d) < (sel & 3u))
		cpu_fault(cpu, EXC_GP, sel & 0xfffc);
	if (!D_P(d))
		cpu_fault(cpu, EXC_NP, sel & 0xfffc);
	g->sel = (uint16_t)(d >> 16);
	g->params = (unsigned)(d >> 32) & 0x1f;
	g->off = (d & 0xffff) | ((d >> 32) & 0xffff0000ULL);
	g->size = type == 4 ? 2 : 4;
	if (type == 4)
		g->off &= 0xffff;
	if (cpu->long_mode) {
		g->off |= (seg_read_desc_hi(cpu, sel, EXC_GP, 0) & 0xffffffffULL) << 32;
		g->size = 8;
		g->params = 0;
	}
	if (!(g->sel & ~3u))
		cpu_fault(cpu, EXC_GP, 0);
	td = seg_read_desc(cpu, g->sel, EXC_GP, 0);
	if (cpu->long_mode && (!D_L(td) || D_DB(td)))
		cpu_fault(cpu, EXC_GP, g->sel & 0xfffc);
	return td;
}

static uint64_t far_target_desc(struct cpu *cpu, uint16_t sel)
{
	if (!(sel & ~3u))
		cpu_fault(cpu, EXC_GP, 0);
	return seg_read_desc(cpu, sel, EXC_GP, 0);
}

void seg_far_jmp(struct cpu *cpu, uint16_t sel, uint64_t off, unsigned opsize)
{
	uint64_t d, td;
	struct gate g;

	if (!prot_mode(cpu)) {
		seg_load_real(cpu, SEG_CS, sel);
		cpu->next_rip = off & off_mask(opsize);
		return;
	}
	d = far_target_desc(cpu, sel);
	if (D_S(d)) {
		check_code_target(cpu, sel, d, false);
		enter_cs(cpu, sel, d, cpu->cpl, off & off_mask(opsize));
		return;
	}
	if (D_TYPE(d) == 5 || (D_TYPE(d) & 5) == 1)
		cpu_unimplemented(cpu, "far jmp to a task gate or TSS (task switch)");
	td = read_call_gate(cpu, sel, d, &g);
	check_code_target(cpu, g.sel, td, true);
	if (!D_CONFORMING(td) && D_DPL(td) != cpu->cpl)
		cpu_fault(cpu, EXC_GP, g.sel & 0xfffc);
	enter_cs(cpu, g.sel, td, cpu->cpl, g.off);
}

/* Call through a gate to a more privileged non-conforming segment. */
static void call_gate_inner(struct cpu *cpu, const struct gate *g, uint64_t td)
{
	unsigned dpl = D_DPL(td);
	struct stack_ctx old, s;
	uint64_t params[32];
	const struct cpu_seg *tr = &cpu->seg[SEG_TR];

	stk_current(cpu, &old);
	if (cpu->long_mode) {
		uint64_t rsp;

		if (4 + 8 * dpl + 7 > tr->limit)
			cpu_fault(cpu, EXC_TS, tr->sel & 0xfffc);
		cpu_read_lin(cpu, tr->base + 4 + 8 * dpl, &rsp, 8, true);
		s.ss.sel = (uint16_t)dpl;
		s.ss.base = 0;
		s.ss.limit = 0;
		s.ss.attr = SEG_ATTR_UNUSABLE | (dpl << SEG_ATTR_DPL_SHIFT);
		s.sp = rsp;
		s.bits = 64;
	} else {
		bool tss32 = (tr->attr & 0xf) == 0xb || (tr->attr & 0xf) == 0x9;
		uint32_t esp = 0;
		uint16_t ss = 0;
		unsigned at = tss32 ? 4 + 8 * dpl : 2 + 4 * dpl;
		uint64_t sd;

		if (at + (tss32 ? 5 : 3) > tr->limit)
			cpu_fault(cpu, EXC_TS, tr->sel & 0xfffc);
		cpu_read_lin(cpu, tr->base + at, &esp, tss32 ? 4 : 2, true);
		cpu_read_lin(cpu, tr->base + at + (tss32 ? 4 : 2), &ss, 2, true);
		if (!(ss & ~3u))
			cpu_fault(cpu, EXC_TS, 0);
		sd = seg_read_desc(cpu, ss, EXC_TS, 0);
		if ((ss & 3) != dpl || D_DPL(sd) != dpl || !D_S(sd) || (D_TYPE(sd) & 0xa) != 2)
			cpu_fault(cpu, EXC_TS, ss & 0xfffc);
		if (!D_P(sd))
			cpu_fault(cpu, EXC_SS, ss & 0xfffc);
		seg_set_accessed(cpu, ss, &sd);
		seg_cache_from_desc(&s.ss, ss, sd);
		s.sp = esp;
		s.bits = D_DB(sd) ? 32 : 16;
		s.fault_sel = ss & 0xfffc;
	}
	s.cpl = dpl;
	/* Parameters are read from the old stack first (at the old CPL). */
	for (unsigned i = 0; i < g->params; i++) {
		struct stack_ctx t = old;

		t.sp = old.sp + (uint64_t)i * g->size;
		params[i] = stk_pop(cpu, &t, g->size);
	}
	stk_push(cpu, &s, old.ss.sel, g->size);
	stk_push(cpu, &s, old.sp, g->size);
	for (unsigned i = g->params; i-- > 0;)
		stk_push(cpu, &s, params[i], g->size);
	stk_push(cpu, &s, cpu->seg[SEG_CS].sel, g->size);
	stk_push(cpu, &s, cpu->next_rip, g->size);
	stk_commit(cpu, &s);
	/* CS with the new CPL (ss.sel's RPL keeps it for update_mode). */
	enter_cs(cpu, g->sel, td, dpl, g->off);
}

void seg_far_call(struct cpu *cpu, uint16_t sel, uint64_t off, unsigned opsize)
{
	struct stack_ctx s;
	uint64_t d, td;
	struct gate g;

	stk_current(cpu, &s);
	if (!prot_mode(cpu)) {
		stk_push(cpu, &s, cpu->seg[SEG_CS].sel, opsize);
		stk_push(cpu, &s, cpu->next_rip, opsize);
		stk_commit(cpu, &s);
		seg_load_real(cpu, SEG_CS, sel);
		cpu->next_rip = off & off_mask(opsize);
		return;
	}
	d = far_target_desc(cpu, sel);
	if (D_S(d)) {
		check_code_target(cpu, sel, d, false);
		stk_push(cpu, &s, cpu->seg[SEG_CS].sel, opsize);
		stk_push(cpu, &s, cpu->next_rip, opsize);
		enter_cs(cpu, sel, d, cpu->cpl, off & off_mask(opsize));
		stk_commit(cpu, &s);
		return;
	}
	if (D_TYPE(d) == 5 || (D_TYPE(d) & 5) == 1)
		cpu_unimplemented(cpu, "far call to a task gate or TSS (task switch)");
	td = read_call_gate(cpu, sel, d, &g);
	check_code_target(cpu, g.sel, td, true);
	if (!D_CONFORMING(td) && D_DPL(td) < cpu->cpl) {
		call_gate_inner(cpu, &g, td);
		return;
	}
	stk_push(cpu, &s, cpu->seg[SEG_CS].sel, g.size);
	stk_push(cpu, &s, cpu->next_rip, g.size);
	enter_cs(cpu, g.sel, td, cpu->cpl, g.off);
	stk_commit(cpu, &s);
}

void seg_far_ret(struct cpu *cpu, unsigned opsize, uint16_t pop_bytes)
{
	struct stack_ctx s;
	uint64_t off, d;
	uint16_t sel;
	unsigned rpl;

	stk_current(cpu, &s);
	off = stk_pop(cpu, &s, opsize);
	sel = (uint16_t)stk_pop(cpu, &s, opsize);
	if (!prot_mode(cpu)) {
		s.sp = (s.sp & ~sp_mask(s.bits)) | ((s.sp + pop_bytes) & sp_mask(s.bits));
		stk_commit(cpu, &s);
		seg_load_real(cpu, SEG_CS, sel);
		cpu->next_rip = off;
		return;
	}
	rpl = sel & 3u;
	if (!(sel & ~3u))
		cpu_fault(cpu, EXC_GP, 0);
	d = seg_read_desc(cpu, sel, EXC_GP, 0);
	if (rpl < cpu->cpl || !D_CODE(d) || (D_CONFORMING(d) ? D_DPL(d) > rpl : D_DPL(d) != rpl))
		cpu_fault(cpu, EXC_GP, sel & 0xfffc);
	if (cpu->long_mode && D_L(d) && D_DB(d))
		cpu_fault(cpu, EXC_GP, sel & 0xfffc);
	if (!D_P(d))
		cpu_fault(cpu, EXC_NP, sel & 0xfffc);
	s.sp = (s.sp & ~sp_mask(s.bits)) | ((s.sp + pop_bytes) & sp_mask(s.bits));
	if (rpl == cpu->cpl) {
		enter_cs(cpu, sel, d, rpl, off & off_mask(opsize));
		stk_commit(cpu, &s);
		return;
	}
	/* Return to an outer privilege level: SS:RSP from the stack. */
	{
		uint64_t sp = stk_pop(cpu, &s, opsize);
		uint16_t ss = (uint16_t)stk_pop(cpu, &s, opsize);
		struct stack_ctx n;

		n.fault_sel = 0;
		n.cpl = rpl;
		if (!(ss & ~3u)) {
			if (!(cpu->long_mode && D_L(d) && rpl != 3))
				cpu_fault(cpu, EXC_GP, 0);
			n.ss.sel = ss;
			n.ss.base = 0;
			n.ss.limit = 0;
			n.ss.attr = SEG_ATTR_UNUSABLE | (rpl << SEG_ATTR_DPL_SHIFT);
		} else {
			uint64_t sd = seg_read_desc(cpu, ss, EXC_GP, 0);

			if ((ss & 3u) != rpl || D_DPL(sd) != rpl || !D_S(sd) ||
			    (D_TYPE(sd) & 0xa) != 2)
				cpu_fault(cpu, EXC_GP, ss & 0xfffc);
			if (!D_P(sd))
				cpu_fault(cpu, EXC_SS, ss & 0xfffc);
			seg_set_accessed(cpu, ss, &sd);
			seg_cache_from_desc(&n.ss, ss, sd);
		}
		n.sp = sp + pop_bytes;
		if (!(cpu->long_mode && D_L(d)) && !(n.ss.attr & SEG_ATTR_DB))
			n.sp = (cpu->gpr[R_RSP] & ~0xffffULL) | (n.sp & 0xffff);
		else if (!(cpu->long_mode && D_L(d)))
			n.sp = (uint32_t)n.sp;
		enter_cs(cpu, sel, d, rpl, off & off_mask(opsize));
		stk_commit(cpu, &n);
		cpu_update_mode(cpu);
		seg_null_invalid(cpu);
	}
}
