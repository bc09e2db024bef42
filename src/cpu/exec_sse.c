/*
 * SSE family: shared operand helpers, the 0F AE group (FXSAVE, FXRSTOR,
 * LDMXCSR, STMXCSR, XSAVE, XRSTOR, XSAVEOPT, fences, CLFLUSH), EMMS, and
 * exec_sse_register() which calls each exec_sse_*.c file's registration.
 */
#include <string.h>

#include "cpu/fpu.h"
#include "cpu/insn.h"
#include "cpu/mem.h"

void sse_src(struct cpu *cpu, const struct insn *in, union cpu_xmm *s, unsigned len,
	     bool aligned)
{
	if (in->mod == 3) {
		*s = cpu->fpu.xmm[in->rm];
		return;
	}
	uint64_t ea = insn_ea(cpu, in);
	if (aligned)
		fpu_check_align(cpu, in, ea, 16);
	memset(s, 0, sizeof(*s));
	cpu_read(cpu, in->ea_seg, ea, s, len);
}

uint64_t mmx_get(struct cpu *cpu, unsigned i)
{
	uint64_t v;
	memcpy(&v, cpu->fpu.st[i & 7], 8);
	return v;
}

void mmx_set(struct cpu *cpu, unsigned i, uint64_t v)
{
	memcpy(cpu->fpu.st[i & 7], &v, 8);
	cpu->fpu.st[i & 7][8] = 0xff;
	cpu->fpu.st[i & 7][9] = 0xff;
}

uint64_t mmx_src(struct cpu *cpu, const struct insn *in)
{
	if (in->mod == 3) {
		fpu_mmx_enter(cpu);
		return mmx_get(cpu, in->rm);
	}
	uint64_t v = cpu_read64(cpu, in->ea_seg, insn_ea(cpu, in));
	fpu_mmx_enter(cpu);
	return v;
}

void sse_flags(struct cpu *cpu, uint32_t flags)
{
	uint32_t exc = flags & MXCSR_FLAGS;
	uint32_t unmasked = exc & ~(cpu->fpu.mxcsr >> 7) & MXCSR_FLAGS;
	if (unmasked) {
		/* Invalid, denormal and zero-divide are found before computing:
		 * then only they are reported. (With overflow/underflow unmasked,
		 * hardware sets PE by the exactness of the unbounded-exponent
		 * result; we keep the masked computation's PE.) */
		uint32_t pre = exc & 0x7;
		if (pre & unmasked)
			exc = pre;
		cpu->fpu.mxcsr |= exc;
		fpu_simd_fault(cpu);
	}
	cpu->fpu.mxcsr |= exc;
}

/* ---- 0F AE ---- */

static void xsave_checks(struct cpu *cpu, const struct insn *in, uint64_t ea)
{
	if (!(cpu->cr4 & CR4_OSXSAVE))
		cpu_fault(cpu, EXC_UD, 0);
	if (cpu->cr0 & CR0_TS)
		cpu_fault(cpu, EXC_NM, 0);
	fpu_check_align(cpu, in, ea, 64);
}

static void exec_0fae(struct cpu *cpu, const struct insn *in)
{
	unsigned r = in->reg & 7;
	bool w = (in->rex & 8) != 0;
	if (in->mod == 3) {
		/* LFENCE, MFENCE, SFENCE: our memory is sequentially consistent
		 * enough per access; a host fence keeps other vCPUs honest. */
		if (r < 5)
			cpu_fault(cpu, EXC_UD, 0);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		return;
	}
	uint64_t ea = insn_ea(cpu, in);
	switch (r) {
	case 0: /* FXSAVE */
	case 1: /* FXRSTOR */
		if (cpu->cr0 & (CR0_EM | CR0_TS))
			cpu_fault(cpu, EXC_NM, 0);
		fpu_check_align(cpu, in, ea, 16);
		if (r == 0)
			fpu_fxsave(cpu, in->ea_seg, ea, w);
		else
			fpu_fxrstor(cpu, in->ea_seg, ea, w);
		return;
	case 2: { /* LDMXCSR */
		fpu_check_sse(cpu);
		uint32_t v = cpu_read32(cpu, in->ea_seg, ea);
		if (v & ~MXCSR_MASK)
			cpu_fault(cpu, EXC_GP, 0);
		cpu->fpu.mxcsr = v;
		return;
	}
	case 3: /* STMXCSR */
		fpu_check_sse(cpu);
		cpu_write32(cpu, in->ea_seg, ea, cpu->fpu.mxcsr);
		return;
	case 4: /* XSAVE */
	case 6: /* XSAVEOPT: saving everything is a valid XSAVEOPT */
		xsave_checks(cpu, in, ea);
		fpu_xsave(cpu, in->ea_seg, ea, w);
		return;
	case 5: /* XRSTOR */
		xsave_checks(cpu, in, ea);
		fpu_xrstor(cpu, in->ea_seg, ea, w);
		return;
	case 7: /* CLFLUSH: no cache to flush; faults as a byte read would. */
		cpu_linear(cpu, in->ea_seg, ea, 1, false);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		return;
	}
}

/* 0F 77: EMMS. */
static void exec_emms(struct cpu *cpu, const struct insn *in)
{
	(void)in;
	if (cpu->cr0 & CR0_EM)
		cpu_fault(cpu, EXC_UD, 0);
	if (cpu->cr0 & CR0_TS)
		cpu_fault(cpu, EXC_NM, 0);
	if ((cpu->fpu.fsw & FSW_ES) && (cpu->cr0 & CR0_NE))
		cpu_fault(cpu, EXC_MF, 0);
	cpu->fpu.ftw = 0xffff;
}

void exec_sse_register(void)
{
	cpu_dispatch[MAP_0F][0xae][MP_NONE] = exec_0fae;
	cpu_dispatch[MAP_0F][0x77][MP_NONE] = exec_emms;
	sse_int_register();
	sse_mov_register();
	sse_fp_register();
	sse4_register();
	sse42_register();
}
