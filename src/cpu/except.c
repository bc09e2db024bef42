/*
 * Exceptions and interrupts: recording faults (longjmp to the run loop),
 * delivery through the IVT / IDT in every mode, #DF and triple-fault
 * escalation, NMI blocking, and IRET.
 *
 * cpu->delivering is -1 or the vector being delivered, | DELIV_HW when the
 * event is not a software interrupt (its faults carry EXT = 1 and count for
 * double-fault escalation).
 */
#include <stdio.h>

#include "cpu/except.h"
#include "cpu/mem.h"
#include "cpu/mmu.h"
#include "cpu/seg.h"

#define DELIV_HW 0x100

#define D_TYPE(d) ((unsigned)((d) >> 40) & 0xf)
#define D_S(d) (((d) >> 44) & 1)
#define D_DPL(d) ((unsigned)((d) >> 45) & 3)
#define D_P(d) (((d) >> 47) & 1)
#define D_L(d) (((d) >> 53) & 1)
#define D_DB(d) (((d) >> 54) & 1)
#define D_CODE(d) (D_S(d) && (D_TYPE(d) & 8))
#define D_CONFORMING(d) (D_CODE(d) && (D_TYPE(d) & 4))

_Noreturn void cpu_fault(struct cpu *cpu, int vector, uint32_t error_code)
{
	cpu->exc_vector = vector;
	cpu->exc_error = error_code;
	cpu->exc_has_error = vector == EXC_DF || (vector >= EXC_TS && vector <= EXC_PF) ||
			     vector == EXC_AC;
	cpu->exc_kind = DELIVER_FAULT;
	longjmp(cpu->fault_jmp, 1);
}

_Noreturn void cpu_fault_pf(struct cpu *cpu, uint64_t lin, uint32_t error_code)
{
	cpu->cr2 = lin;
	cpu_fault(cpu, EXC_PF, error_code);
}

_Noreturn void cpu_raise_soft(struct cpu *cpu, int vector, enum deliver_kind kind)
{
	cpu->exc_vector = vector;
	cpu->exc_error = 0;
	cpu->exc_has_error = false;
	cpu->exc_kind = (uint8_t)kind;
	longjmp(cpu->fault_jmp, 1);
}

_Noreturn void cpu_raise_trap(struct cpu *cpu, int vector)
{
	cpu_raise_soft(cpu, vector, DELIVER_TRAP);
}

_Noreturn void cpu_unimplemented(struct cpu *cpu, const char *what)
{
	snprintf(cpu->exit_why, sizeof(cpu->exit_why), "unimplemented: %s at rip %#llx",
		 what, (unsigned long long)cpu->rip);
	cpu->exc_vector = EXC_UNIMPLEMENTED;
	cpu->exc_has_error = false;
	longjmp(cpu->fault_jmp, 1);
}

static const char *mode_name(const struct cpu *cpu)
{
	if (!(cpu->cr0 & CR0_PE))
		return "real";
	if (cpu->rflags & FL_VM)
		return "virtual-8086";
	if (cpu->code_bits == 64)
		return "64-bit";
	if (cpu->long_mode)
		return "compatibility";
	return cpu->code_bits == 32 ? "protected 32-bit" : "protected 16-bit";
}

/* ---- Delivery ---- */

struct event {
	int vector;
	bool has_err;
	uint32_t err;
	enum deliver_kind kind;
	uint32_t ext; /* EXT bit for error codes this delivery raises */
};

static void real_mode_deliver(struct cpu *cpu, const struct event *ev, uint64_t ret)
{
	struct stack_ctx s;
	uint32_t ent;
	uint64_t fl = cpu_get_rflags(cpu);

	if ((uint32_t)ev->vector * 4 + 3 > cpu->idtr.limit)
		cpu_fault(cpu, EXC_GP, 0);
	cpu_read_lin(cpu, cpu->idtr.base + (uint32_t)ev->vector * 4, &ent, 4, true);
	stk_current(cpu, &s);
	stk_push(cpu, &s, fl & 0xffff, 2);
	stk_push(cpu, &s, cpu->seg[SEG_CS].sel, 2);
	stk_push(cpu, &s, ret & 0xffff, 2);
	stk_commit(cpu, &s);
	seg_load_real(cpu, SEG_CS, (uint16_t)(ent >> 16));
	cpu_set_rflags(cpu, fl & ~(FL_IF | FL_TF | FL_AC | FL_RF));
	cpu->rip = cpu->next_rip = ent & 0xffff;
}

/* The stack for a privilege change to `dpl` (TSS), or an IST stack. */
static void inner_stack(struct cpu *cpu, struct stack_ctx *s, unsigned dpl, unsigned ist,
			uint32_t ext)
{
	const struct cpu_seg *tr = &cpu->seg[SEG_TR];

	s->cpl = dpl;
	s->fault_sel = 0;
	if (cpu->long_mode) {
		unsigned at = ist ? 0x24 + 8 * (ist - 1) : 4 + 8 * dpl;
		uint64_t rsp;

		if (at + 7 > tr->limit || (tr->attr & SEG_ATTR_UNUSABLE))
			cpu_fault(cpu, EXC_TS, (tr->sel & 0xfffc) | ext);
		cpu_read_lin(cpu, tr->base + at, &rsp, 8, true);
		s->sp = rsp;
		s->bits = 64;
		return;
	}
	{
		bool tss32 = (tr->attr & 0x8) != 0;
		unsigned at = tss32 ? 4 + 8 * dpl : 2 + 4 * dpl;
		uint32_t esp = 0;
		uint16_t ss = 0;
		uint64_t sd;

		if (at + (tss32 ? 5 : 3) > tr->limit || (tr->attr & SEG_ATTR_UNUSABLE))
			cpu_fault(cpu, EXC_TS, (tr->sel & 0xfffc) | ext);
		cpu_read_lin(cpu, tr->base + at, &esp, tss32 ? 4 : 2, true);
		cpu_read_lin(cpu, tr->base + at + (tss32 ? 4 : 2), &ss, 2, true);
		if (!(ss & ~3u))
			cpu_fault(cpu, EXC_TS, ext);
		sd = seg_read_desc(cpu, ss, EXC_TS, ext);
		if ((ss & 3u) != dpl || D_DPL(sd) != dpl || !D_S(sd) || (D_TYPE(sd) & 0xa) != 2)
			cpu_fault(cpu, EXC_TS, (ss & 0xfffc) | ext);
		if (!D_P(sd))
			cpu_fault(cpu, EXC_SS, (ss & 0xfffc) | ext);
		seg_set_accessed(cpu, ss, &sd);
		seg_cache_from_desc(&s->ss, ss, sd);
		s->sp = esp;
		s->bits = D_DB(sd) ? 32 : 16;
		s->fault_sel = (ss & 0xfffc) | (uint16_t)ext;
	}
}

static void idt_deliver(struct cpu *cpu, const struct event *ev, uint64_t ret)
{
	bool lm = cpu->long_mode, v86 = (cpu->rflags & FL_VM) != 0;
	unsigned gsize = lm ? 16 : 8, idx = (unsigned)ev->vector;
	uint32_t ext = ev->ext, idt_err = idx * 8 + 2 + ext;
	uint64_t d, hi = 0, cd, off, fl = cpu_get_rflags(cpu);
	unsigned type, size, new_cpl, ist, old_cpl = cpu->cpl;
	struct stack_ctx s;
	struct cpu_seg old_ss = cpu->seg[SEG_SS];
	uint64_t old_rsp = cpu->gpr[R_RSP];
	uint16_t sel;

	if (idx * gsize + gsize - 1 > cpu->idtr.limit)
		cpu_fault(cpu, EXC_GP, idt_err);
	cpu_read_lin(cpu, cpu->idtr.base + idx * gsize, &d, 8, true);
	type = D_TYPE(d);
	if (!lm && type == 5)
		cpu_unimplemented(cpu, "interrupt through a task gate");
	if (D_S(d) || (lm ? (type != 0xe && type != 0xf)
			  : (type != 6 && type != 7 && type != 0xe && type != 0xf)))
		cpu_fault(cpu, EXC_GP, idt_err);
	if (ev->kind == DELIVER_SOFT_INT && D_DPL(d) < old_cpl)
		cpu_fault(cpu, EXC_GP, idx * 8 + 2);
	if (ev->kind == DELIVER_SOFT_INT && v86 && ((fl & FL_IOPL) >> 12) < 3)
		cpu_fault(cpu, EXC_GP, 0);
	if (!D_P(d))
		cpu_fault(cpu, EXC_NP, idt_err);
	if (lm)
		cpu_read_lin(cpu, cpu->idtr.base + idx * 16 + 8, &hi, 8, true);
	sel = (uint16_t)(d >> 16);
	off = (d & 0xffff) | ((d >> 32) & 0xffff0000ULL) | (hi << 32);
	if (!lm && !(type & 8))
		off &= 0xffff;
	ist = lm ? (unsigned)(d >> 32) & 7 : 0;
	size = lm ? 8 : (type & 8) ? 4 : 2;

	if (!(sel & ~3u))
		cpu_fault(cpu, EXC_GP, ext);
	cd = seg_read_desc(cpu, sel, EXC_GP, ext);
	if (!D_CODE(cd) || D_DPL(cd) > old_cpl)
		cpu_fault(cpu, EXC_GP, (sel & 0xfffc) | ext);
	if (!D_P(cd))
		cpu_fault(cpu, EXC_NP, (sel & 0xfffc) | ext);
	if (lm && (!D_L(cd) || D_DB(cd)))
		cpu_fault(cpu, EXC_GP, (sel & 0xfffc) | ext);
	new_cpl = D_CONFORMING(cd) ? old_cpl : D_DPL(cd);
	if (v86 && new_cpl != 0)
		cpu_fault(cpu, EXC_GP, (sel & 0xfffc) | ext);

	if (new_cpl < old_cpl || (lm && ist)) {
		inner_stack(cpu, &s, new_cpl, ist, ext);
		if (lm && new_cpl < old_cpl) {
			s.ss.sel = (uint16_t)new_cpl;
			s.ss.base = 0;
			s.ss.limit = 0;
			s.ss.attr = SEG_ATTR_UNUSABLE | (new_cpl << SEG_ATTR_DPL_SHIFT);
		} else if (lm) {
			s.ss = old_ss;
		}
	} else {
		stk_current(cpu, &s);
		s.cpl = new_cpl;
	}
	if (lm) { /* IA-32e delivery: 64-bit pushes on a 16-byte aligned RSP */
		s.bits = 64;
		s.sp &= ~0xfULL;
	}
	if (v86) {
		stk_push(cpu, &s, cpu->seg[SEG_GS].sel, size);
		stk_push(cpu, &s, cpu->seg[SEG_FS].sel, size);
		stk_push(cpu, &s, cpu->seg[SEG_DS].sel, size);
		stk_push(cpu, &s, cpu->seg[SEG_ES].sel, size);
	}
	if (lm || new_cpl < old_cpl) {
		stk_push(cpu, &s, old_ss.sel, size);
		stk_push(cpu, &s, old_rsp, size);
	}
	if (ev->kind == DELIVER_FAULT && ev->vector != EXC_DB)
		fl |= FL_RF;
	stk_push(cpu, &s, fl, size);
	stk_push(cpu, &s, cpu->seg[SEG_CS].sel, size);
	stk_push(cpu, &s, ret, size);
	if (ev->has_err)
		stk_push(cpu, &s, ev->err, size);

	/* Commit: nothing below faults. */
	seg_set_accessed(cpu, sel, &cd);
	stk_commit(cpu, &s);
	seg_cache_from_desc(&cpu->seg[SEG_CS], (uint16_t)((sel & ~3u) | new_cpl), cd);
	if (v86) {
		static const int regs[] = { SEG_ES, SEG_DS, SEG_FS, SEG_GS };

		for (unsigned i = 0; i < 4; i++) {
			cpu->seg[regs[i]].sel = 0;
			cpu->seg[regs[i]].attr = SEG_ATTR_UNUSABLE;
		}
	}
	fl &= ~(FL_TF | FL_NT | FL_RF | FL_VM);
	if (!(type & 1))
		fl &= ~FL_IF;
	cpu_set_rflags(cpu, fl);
	cpu_update_mode(cpu);
	cpu->rip = cpu->next_rip = off;
}

static void deliver(struct cpu *cpu, const struct event *ev)
{
	uint64_t ret = (ev->kind == DELIVER_TRAP || ev->kind == DELIVER_SOFT_INT) ? cpu->next_rip
										   : cpu->rip;

	if (!(cpu->cr0 & CR0_PE))
		real_mode_deliver(cpu, ev, ret);
	else
		idt_deliver(cpu, ev, ret);
	cpu->intr_shadow = 0;
}

static bool contributory(int v)
{
	return v == EXC_DE || (v >= EXC_TS && v <= EXC_GP);
}

bool cpu_exception_deliver(struct cpu *cpu)
{
	struct event ev = {
		.vector = cpu->exc_vector,
		.has_err = cpu->exc_has_error,
		.err = cpu->exc_error,
		.kind = (enum deliver_kind)cpu->exc_kind,
	};
	int prev = cpu->delivering;

	if (ev.vector == EXC_UNIMPLEMENTED)
		return false;
	if (prev >= 0 && (prev & DELIV_HW)) {
		int pv = prev & 0xff;

		if (pv == EXC_DF) {
			snprintf(cpu->exit_why, sizeof(cpu->exit_why),
				 "triple fault: vector %d (error %#x) while delivering #DF, rip %#llx, "
				 "cr2 %#llx, %s mode, cpl %u",
				 ev.vector, ev.err, (unsigned long long)cpu->rip,
				 (unsigned long long)cpu->cr2, mode_name(cpu), cpu->cpl);
			cpu->delivering = -1;
			return false;
		}
		if ((contributory(pv) && contributory(ev.vector)) ||
		    (pv == EXC_PF && (ev.vector == EXC_PF || contributory(ev.vector)))) {
			ev.vector = EXC_DF;
			ev.has_err = true;
			ev.err = 0;
			ev.kind = DELIVER_FAULT;
			cpu->exc_vector = EXC_DF;
			cpu->exc_error = 0;
			cpu->exc_has_error = true;
			cpu->exc_kind = DELIVER_FAULT;
		}
	}
	ev.ext = 0;
	if (ev.kind == DELIVER_FAULT || ev.kind == DELIVER_EXT)
		ev.ext = 1;
	cpu->delivering = ev.vector | (ev.ext ? DELIV_HW : 0);
	deliver(cpu, &ev);
	cpu->delivering = -1;
	return true;
}

void cpu_interrupt_deliver(struct cpu *cpu, uint8_t vector)
{
	struct event ev = { .vector = vector, .kind = DELIVER_EXT, .ext = 1 };

	cpu->halted = false;
	cpu->delivering = vector | DELIV_HW;
	deliver(cpu, &ev);
	cpu->delivering = -1;
}

void cpu_nmi_deliver(struct cpu *cpu)
{
	struct event ev = { .vector = EXC_NMI, .kind = DELIVER_EXT, .ext = 1 };

	if (cpu->nmi_blocked) {
		cpu->nmi_pending = true;
		return;
	}
	cpu->halted = false;
	cpu->nmi_blocked = true;
	cpu->delivering = EXC_NMI | DELIV_HW;
	deliver(cpu, &ev);
	cpu->delivering = -1;
}

/* ---- IRET ---- */

static void nmi_unblock(struct cpu *cpu)
{
	cpu->nmi_blocked = false;
	if (cpu->nmi_pending) {
		cpu->nmi_pending = false;
		atomic_fetch_or(&cpu->events, CPU_EV_NMI);
	}
}

static void iret_flags(struct cpu *cpu, uint64_t nf, unsigned opsize, unsigned old_cpl, bool real)
{
	uint64_t cur = cpu_get_rflags(cpu);
	uint64_t mask = FL_ARITH | FL_TF | FL_DF | FL_NT | FL_RF | FL_AC | FL_ID;
	unsigned iopl = (unsigned)(cur & FL_IOPL) >> 12;

	if (old_cpl <= iopl)
		mask |= FL_IF;
	if (old_cpl == 0)
		mask |= FL_IOPL | (real ? 0 : FL_VIF | FL_VIP);
	if (opsize == 2)
		mask &= 0xffff;
	/* RF only suppresses instruction breakpoints for one instruction, and
	 * there are none: keep it clear rather than let it linger. */
	cpu_set_rflags(cpu, ((cur & ~mask) | (nf & mask) | 2) & ~FL_RF);
}

static void iret_real(struct cpu *cpu, unsigned opsize)
{
	struct stack_ctx s;
	uint64_t ip, fl;
	uint16_t cs;

	stk_current(cpu, &s);
	ip = stk_pop(cpu, &s, opsize);
	cs = (uint16_t)stk_pop(cpu, &s, opsize);
	fl = stk_pop(cpu, &s, opsize);
	if (cpu->rflags & FL_VM) {
		/* v86 without VME: only with IOPL 3, which stays as it is. */
		if ((cpu->rflags & FL_IOPL) != FL_IOPL)
			cpu_fault(cpu, EXC_GP, 0);
		fl = (fl & ~FL_IOPL) | FL_IOPL;
	}
	if (ip > cpu->seg[SEG_CS].limit && !(cpu->rflags & FL_VM) && opsize == 4)
		cpu_fault(cpu, EXC_GP, 0);
	stk_commit(cpu, &s);
	seg_load_real(cpu, SEG_CS, cs);
	iret_flags(cpu, fl, opsize, cpu->rflags & FL_VM ? 3 : 0, true);
	cpu->next_rip = ip & (opsize == 2 ? 0xffff : 0xffffffffULL);
}

/* IRET from CPL 0 back to virtual-8086 mode (32-bit protected mode only). */
static void iret_to_v86(struct cpu *cpu, struct stack_ctx *s, uint64_t ip, uint16_t cs, uint64_t fl)
{
	uint32_t esp = (uint32_t)stk_pop(cpu, s, 4);
	uint16_t ss = (uint16_t)stk_pop(cpu, s, 4);
	uint16_t es = (uint16_t)stk_pop(cpu, s, 4);
	uint16_t ds = (uint16_t)stk_pop(cpu, s, 4);
	uint16_t fs = (uint16_t)stk_pop(cpu, s, 4);
	uint16_t gs = (uint16_t)stk_pop(cpu, s, 4);

	cpu_set_rflags(cpu, (fl & 0x3f7fd5ULL) | 2 | FL_VM);
	seg_load_real(cpu, SEG_CS, cs);
	seg_load_real(cpu, SEG_SS, ss);
	seg_load_real(cpu, SEG_ES, es);
	seg_load_real(cpu, SEG_DS, ds);
	seg_load_real(cpu, SEG_FS, fs);
	seg_load_real(cpu, SEG_GS, gs);
	cpu->gpr[R_RSP] = esp;
	cpu->next_rip = ip & 0xffff;
	cpu_update_mode(cpu);
}

void cpu_iret(struct cpu *cpu, unsigned opsize)
{
	struct stack_ctx s;
	uint64_t ip, fl, d;
	uint16_t cs;
	unsigned rpl, old_cpl = cpu->cpl;
	bool to64;

	nmi_unblock(cpu);
	if (!(cpu->cr0 & CR0_PE) || (cpu->rflags & FL_VM)) {
		iret_real(cpu, opsize);
		return;
	}
	if (cpu->rflags & FL_NT) {
		if (cpu->long_mode)
			cpu_fault(cpu, EXC_GP, 0);
		cpu_unimplemented(cpu, "iret with NT set (task return)");
	}
	stk_current(cpu, &s);
	ip = stk_pop(cpu, &s, opsize);
	cs = (uint16_t)stk_pop(cpu, &s, opsize);
	fl = stk_pop(cpu, &s, opsize);
	if (opsize == 2)
		fl = (cpu_get_rflags(cpu) & ~0xffffULL) | fl;
	if (!cpu->long_mode && (fl & FL_VM) && old_cpl == 0 && opsize == 4) {
		iret_to_v86(cpu, &s, ip, cs, fl);
		return;
	}
	rpl = cs & 3u;
	if (!(cs & ~3u))
		cpu_fault(cpu, EXC_GP, 0);
	d = seg_read_desc(cpu, cs, EXC_GP, 0);
	if (!D_CODE(d) || rpl < old_cpl ||
	    (D_CONFORMING(d) ? D_DPL(d) > rpl : D_DPL(d) != rpl))
		cpu_fault(cpu, EXC_GP, cs & 0xfffc);
	to64 = cpu->long_mode && D_L(d);
	if (cpu->long_mode && D_L(d) && D_DB(d))
		cpu_fault(cpu, EXC_GP, cs & 0xfffc);
	if (!D_P(d))
		cpu_fault(cpu, EXC_NP, cs & 0xfffc);
	if (!to64 && ip > desc_limit(d))
		cpu_fault(cpu, EXC_GP, 0);
	if (to64 && !mmu_canonical(ip))
		cpu_fault(cpu, EXC_GP, 0);

	if (rpl == old_cpl && !cpu_is64(cpu)) {
		/* Same privilege (legacy or compatibility mode): no SS:ESP. */
		struct cpu_seg ncs;

		seg_cache_from_desc(&ncs, cs, d);
		seg_set_accessed(cpu, cs, &d);
		ncs.attr = desc_attr(d);
		stk_commit(cpu, &s);
		cpu->seg[SEG_CS] = ncs;
		iret_flags(cpu, fl, opsize, old_cpl, false);
		cpu_update_mode(cpu);
		cpu->next_rip = opsize == 2 ? ip & 0xffff : ip;
		return;
	}
	{
		uint64_t sp = stk_pop(cpu, &s, opsize);
		uint16_t ss = (uint16_t)stk_pop(cpu, &s, opsize);
		struct stack_ctx n = { .cpl = rpl };
		struct cpu_seg ncs;

		if (!(ss & ~3u)) {
			if (!(to64 && rpl != 3 && (ss & 3u) == rpl))
				cpu_fault(cpu, EXC_GP, 0);
			n.ss.sel = ss;
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
		if (to64 || opsize == 8)
			n.sp = sp;
		else if (opsize == 4 || (n.ss.attr & SEG_ATTR_DB))
			n.sp = (uint32_t)sp;
		else
			n.sp = (cpu->gpr[R_RSP] & ~0xffffULL) | (sp & 0xffff);
		seg_cache_from_desc(&ncs, cs, d);
		seg_set_accessed(cpu, cs, &d);
		ncs.attr = desc_attr(d);
		iret_flags(cpu, fl, opsize, old_cpl, false);
		stk_commit(cpu, &n);
		cpu->seg[SEG_CS] = ncs;
		cpu_update_mode(cpu);
		cpu->next_rip = opsize == 2 ? ip & 0xffff : ip;
		if (rpl > old_cpl)
			seg_null_invalid(cpu);
	}
}
