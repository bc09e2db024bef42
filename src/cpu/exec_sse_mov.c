/*
 * SSE/SSE2/SSE3 data movement: register and memory moves of XMM and MMX
 * registers, MOVD/MOVQ with general registers, the bitwise logic and
 * shuffle/unpack operations of the floating-point domain (no FP
 * exceptions), MOVMSKPS/PD, MOVNTI.
 */
#include <string.h>

#include "cpu/fpu.h"
#include "cpu/insn.h"
#include "cpu/mem.h"

static union cpu_xmm *xr(struct cpu *cpu, unsigned i)
{
	return &cpu->fpu.xmm[i & 15];
}

static void store(struct cpu *cpu, const struct insn *in, const void *src, unsigned len,
		  bool aligned)
{
	uint64_t ea = insn_ea(cpu, in);
	if (aligned)
		fpu_check_align(cpu, in, ea, 16);
	cpu_write(cpu, in->ea_seg, ea, src, len);
}

static void need_mem(struct cpu *cpu, const struct insn *in)
{
	if (in->mod == 3)
		cpu_fault(cpu, EXC_UD, 0);
}

/* 0F 10: MOVUPS/MOVUPD/MOVSS/MOVSD load. */
static void exec_0f10(struct cpu *cpu, const struct insn *in)
{
	fpu_check_sse(cpu);
	union cpu_xmm s;
	switch (in->mandatory) {
	case MP_F3:
		if (in->mod == 3) {
			xr(cpu, in->reg)->d[0] = xr(cpu, in->rm)->d[0];
			return;
		}
		sse_src(cpu, in, &s, 4, false);
		break;
	case MP_F2:
		if (in->mod == 3) {
			xr(cpu, in->reg)->q[0] = xr(cpu, in->rm)->q[0];
			return;
		}
		sse_src(cpu, in, &s, 8, false);
		break;
	default:
		sse_src(cpu, in, &s, 16, false);
		break;
	}
	*xr(cpu, in->reg) = s;
}

/* 0F 11: stores. */
static void exec_0f11(struct cpu *cpu, const struct insn *in)
{
	fpu_check_sse(cpu);
	union cpu_xmm v = *xr(cpu, in->reg);
	unsigned len = in->mandatory == MP_F3 ? 4 : in->mandatory == MP_F2 ? 8 : 16;
	if (in->mod == 3) {
		memcpy(xr(cpu, in->rm), &v, len);
		return;
	}
	store(cpu, in, &v, len, false);
}

/* 0F 28 / 0F 29: MOVAPS/MOVAPD. */
static void exec_movap_load(struct cpu *cpu, const struct insn *in)
{
	fpu_check_sse(cpu);
	union cpu_xmm s;
	sse_src(cpu, in, &s, 16, true);
	*xr(cpu, in->reg) = s;
}

static void exec_movap_store(struct cpu *cpu, const struct insn *in)
{
	fpu_check_sse(cpu);
	union cpu_xmm v = *xr(cpu, in->reg);
	if (in->mod == 3)
		*xr(cpu, in->rm) = v;
	else
		store(cpu, in, &v, 16, true);
}

/* 0F 2B: MOVNTPS/MOVNTPD; 66 0F E7: MOVNTDQ. */
static void exec_movnt(struct cpu *cpu, const struct insn *in)
{
	need_mem(cpu, in);
	fpu_check_sse(cpu);
	union cpu_xmm v = *xr(cpu, in->reg);
	store(cpu, in, &v, 16, true);
}

/* 0F 12: MOVLPS / MOVHLPS / MOVLPD / MOVSLDUP / MOVDDUP. */
static void exec_0f12(struct cpu *cpu, const struct insn *in)
{
	fpu_check_sse(cpu);
	union cpu_xmm s, *d = xr(cpu, in->reg);
	switch (in->mandatory) {
	case MP_NONE:
		if (in->mod == 3) {
			d->q[0] = xr(cpu, in->rm)->q[1]; /* MOVHLPS */
			return;
		}
		sse_src(cpu, in, &s, 8, false);
		d->q[0] = s.q[0];
		return;
	case MP_66:
		need_mem(cpu, in);
		sse_src(cpu, in, &s, 8, false);
		d->q[0] = s.q[0];
		return;
	case MP_F3: /* MOVSLDUP */
		sse_src(cpu, in, &s, 16, true);
		d->d[0] = d->d[1] = s.d[0];
		d->d[2] = d->d[3] = s.d[2];
		return;
	case MP_F2: /* MOVDDUP */
		sse_src(cpu, in, &s, 8, false);
		d->q[0] = d->q[1] = s.q[0];
		return;
	}
}

/* 0F 16: MOVHPS / MOVLHPS / MOVHPD / MOVSHDUP. */
static void exec_0f16(struct cpu *cpu, const struct insn *in)
{
	fpu_check_sse(cpu);
	union cpu_xmm s, *d = xr(cpu, in->reg);
	switch (in->mandatory) {
	case MP_NONE:
		if (in->mod == 3) {
			d->q[1] = xr(cpu, in->rm)->q[0]; /* MOVLHPS */
			return;
		}
		sse_src(cpu, in, &s, 8, false);
		d->q[1] = s.q[0];
		return;
	case MP_66:
		need_mem(cpu, in);
		sse_src(cpu, in, &s, 8, false);
		d->q[1] = s.q[0];
		return;
	case MP_F3: /* MOVSHDUP */
		sse_src(cpu, in, &s, 16, true);
		d->d[0] = d->d[1] = s.d[1];
		d->d[2] = d->d[3] = s.d[3];
		return;
	}
	cpu_fault(cpu, EXC_UD, 0);
}

/* 0F 13 / 0F 17: MOVLPS/MOVLPD and MOVHPS/MOVHPD stores. */
static void exec_movlh_store(struct cpu *cpu, const struct insn *in)
{
	need_mem(cpu, in);
	fpu_check_sse(cpu);
	uint64_t v = xr(cpu, in->reg)->q[in->op == 0x17];
	store(cpu, in, &v, 8, false);
}

/* 0F 14/15: UNPCKLPS/PD, UNPCKHPS/PD. */
static void exec_unpck(struct cpu *cpu, const struct insn *in)
{
	fpu_check_sse(cpu);
	union cpu_xmm s, *d = xr(cpu, in->reg), a = *d;
	sse_src(cpu, in, &s, 16, true);
	bool high = in->op == 0x15;
	if (in->mandatory == MP_66) {
		d->q[0] = a.q[high];
		d->q[1] = s.q[high];
	} else {
		unsigned o = high ? 2 : 0;
		d->d[0] = a.d[o];
		d->d[1] = s.d[o];
		d->d[2] = a.d[o + 1];
		d->d[3] = s.d[o + 1];
	}
}

/* 0F 54..57: ANDPS/ANDNPS/ORPS/XORPS (and PD). */
static void exec_logic(struct cpu *cpu, const struct insn *in)
{
	fpu_check_sse(cpu);
	union cpu_xmm s, *d = xr(cpu, in->reg);
	sse_src(cpu, in, &s, 16, true);
	for (unsigned i = 0; i < 2; i++) {
		switch (in->op) {
		case 0x54: d->q[i] &= s.q[i]; break;
		case 0x55: d->q[i] = ~d->q[i] & s.q[i]; break;
		case 0x56: d->q[i] |= s.q[i]; break;
		default: d->q[i] ^= s.q[i]; break;
		}
	}
}

/* 0F C6: SHUFPS / SHUFPD. */
static void exec_shuf(struct cpu *cpu, const struct insn *in)
{
	fpu_check_sse(cpu);
	union cpu_xmm s, *d = xr(cpu, in->reg), a = *d;
	sse_src(cpu, in, &s, 16, true);
	unsigned imm = (uint8_t)in->imm;
	if (in->mandatory == MP_66) {
		d->q[0] = a.q[imm & 1];
		d->q[1] = s.q[(imm >> 1) & 1];
	} else {
		d->d[0] = a.d[imm & 3];
		d->d[1] = a.d[(imm >> 2) & 3];
		d->d[2] = s.d[(imm >> 4) & 3];
		d->d[3] = s.d[(imm >> 6) & 3];
	}
}

/* 0F 50: MOVMSKPS / MOVMSKPD. */
static void exec_movmsk(struct cpu *cpu, const struct insn *in)
{
	if (in->mod != 3)
		cpu_fault(cpu, EXC_UD, 0);
	fpu_check_sse(cpu);
	const union cpu_xmm *s = xr(cpu, in->rm);
	uint32_t m;
	if (in->mandatory == MP_66)
		m = (uint32_t)(s->q[0] >> 63) | (uint32_t)(s->q[1] >> 63) << 1;
	else
		m = (s->d[0] >> 31) | (s->d[1] >> 31) << 1 | (s->d[2] >> 31) << 2 |
		    (s->d[3] >> 31) << 3;
	cpu->gpr[in->reg] = m;
}

/* 0F 6E: MOVD/MOVQ mm|xmm, r/m32|64. */
static void exec_movd_load(struct cpu *cpu, const struct insn *in)
{
	bool x = in->mandatory == MP_66, w = in->rex & 8;
	if (x)
		fpu_check_sse(cpu);
	else
		fpu_check_mmx(cpu);
	uint64_t v;
	if (in->mod == 3)
		v = w ? cpu->gpr[in->rm] : (uint32_t)cpu->gpr[in->rm];
	else
		v = cpu_read_sz(cpu, in->ea_seg, insn_ea(cpu, in), w ? 8 : 4);
	if (x) {
		union cpu_xmm *d = xr(cpu, in->reg);
		d->q[0] = v;
		d->q[1] = 0;
		return;
	}
	fpu_mmx_enter(cpu);
	mmx_set(cpu, in->reg, v);
}

/* 0F 7E: MOVD/MOVQ r/m32|64, mm|xmm; F3 0F 7E: MOVQ xmm, xmm/m64. */
static void exec_0f7e(struct cpu *cpu, const struct insn *in)
{
	if (in->mandatory == MP_F3) {
		fpu_check_sse(cpu);
		union cpu_xmm s;
		sse_src(cpu, in, &s, 8, false);
		union cpu_xmm *d = xr(cpu, in->reg);
		d->q[0] = s.q[0];
		d->q[1] = 0;
		return;
	}
	bool x = in->mandatory == MP_66, w = in->rex & 8;
	uint64_t v;
	if (x) {
		fpu_check_sse(cpu);
		v = xr(cpu, in->reg)->q[0];
	} else {
		fpu_check_mmx(cpu);
		v = mmx_get(cpu, (in->reg - fpu_top(&cpu->fpu)) & 7);
	}
	if (!w)
		v = (uint32_t)v;
	if (in->mod == 3)
		cpu->gpr[in->rm] = v;
	else
		cpu_write_sz(cpu, in->ea_seg, insn_ea(cpu, in), v, w ? 8 : 4);
	if (!x)
		fpu_mmx_enter(cpu);
}

/* 0F 6F: MOVQ mm, mm/m64; MOVDQA (66); MOVDQU (F3). */
static void exec_0f6f(struct cpu *cpu, const struct insn *in)
{
	if (in->mandatory == MP_NONE) {
		fpu_check_mmx(cpu);
		mmx_set(cpu, in->reg, mmx_src(cpu, in));
		return;
	}
	fpu_check_sse(cpu);
	union cpu_xmm s;
	sse_src(cpu, in, &s, 16, in->mandatory == MP_66);
	*xr(cpu, in->reg) = s;
}

/* 0F 7F: the stores. */
static void exec_0f7f(struct cpu *cpu, const struct insn *in)
{
	if (in->mandatory == MP_NONE) {
		fpu_check_mmx(cpu);
		uint64_t v = mmx_get(cpu, (in->reg - fpu_top(&cpu->fpu)) & 7);
		if (in->mod == 3) {
			fpu_mmx_enter(cpu);
			mmx_set(cpu, in->rm, v);
			return;
		}
		cpu_write64(cpu, in->ea_seg, insn_ea(cpu, in), v);
		fpu_mmx_enter(cpu);
		return;
	}
	fpu_check_sse(cpu);
	union cpu_xmm v = *xr(cpu, in->reg);
	if (in->mod == 3)
		*xr(cpu, in->rm) = v;
	else
		store(cpu, in, &v, 16, in->mandatory == MP_66);
}

/* 0F D6: MOVQ xmm/m64, xmm (66); MOVQ2DQ (F3); MOVDQ2Q (F2). */
static void exec_0fd6(struct cpu *cpu, const struct insn *in)
{
	switch (in->mandatory) {
	case MP_66: {
		fpu_check_sse(cpu);
		uint64_t v = xr(cpu, in->reg)->q[0];
		if (in->mod == 3) {
			xr(cpu, in->rm)->q[0] = v;
			xr(cpu, in->rm)->q[1] = 0;
		} else {
			store(cpu, in, &v, 8, false);
		}
		return;
	}
	case MP_F3: { /* MOVQ2DQ xmm, mm */
		if (in->mod != 3)
			cpu_fault(cpu, EXC_UD, 0);
		fpu_check_sse(cpu);
		fpu_check_mmx(cpu);
		fpu_mmx_enter(cpu);
		union cpu_xmm *d = xr(cpu, in->reg);
		d->q[0] = mmx_get(cpu, in->rm);
		d->q[1] = 0;
		return;
	}
	case MP_F2: /* MOVDQ2Q mm, xmm */
		if (in->mod != 3)
			cpu_fault(cpu, EXC_UD, 0);
		fpu_check_sse(cpu);
		fpu_check_mmx(cpu);
		fpu_mmx_enter(cpu);
		mmx_set(cpu, in->reg, xr(cpu, in->rm)->q[0]);
		return;
	}
	cpu_fault(cpu, EXC_UD, 0);
}

/* 0F E7: MOVNTQ m64, mm. */
static void exec_movntq(struct cpu *cpu, const struct insn *in)
{
	need_mem(cpu, in);
	fpu_check_mmx(cpu);
	uint64_t v = mmx_get(cpu, (in->reg - fpu_top(&cpu->fpu)) & 7);
	cpu_write64(cpu, in->ea_seg, insn_ea(cpu, in), v);
	fpu_mmx_enter(cpu);
}

/* F2 0F F0: LDDQU. */
static void exec_lddqu(struct cpu *cpu, const struct insn *in)
{
	need_mem(cpu, in);
	fpu_check_sse(cpu);
	union cpu_xmm s;
	sse_src(cpu, in, &s, 16, false);
	*xr(cpu, in->reg) = s;
}

/* 0F C3: MOVNTI m32/64, r32/64 (a plain store; no SSE state involved). */
static void exec_movnti(struct cpu *cpu, const struct insn *in)
{
	need_mem(cpu, in);
	unsigned sz = (in->rex & 8) ? 8 : 4;
	cpu_write_sz(cpu, in->ea_seg, insn_ea(cpu, in), cpu->gpr[in->reg], sz);
}

static void reg(unsigned op, unsigned mp, insn_handler h)
{
	cpu_dispatch[MAP_0F][op][mp] = h;
}

void sse_mov_register(void)
{
	for (unsigned p = 0; p < 4; p++) {
		reg(0x10, p, exec_0f10);
		reg(0x11, p, exec_0f11);
		reg(0x12, p, exec_0f12);
	}
	reg(0x16, MP_NONE, exec_0f16);
	reg(0x16, MP_66, exec_0f16);
	reg(0x16, MP_F3, exec_0f16);
	for (unsigned p = MP_NONE; p <= MP_66; p++) {
		reg(0x13, p, exec_movlh_store);
		reg(0x17, p, exec_movlh_store);
		reg(0x14, p, exec_unpck);
		reg(0x15, p, exec_unpck);
		reg(0x28, p, exec_movap_load);
		reg(0x29, p, exec_movap_store);
		reg(0x2b, p, exec_movnt);
		reg(0x50, p, exec_movmsk);
		for (unsigned op = 0x54; op <= 0x57; op++)
			reg(op, p, exec_logic);
		reg(0xc6, p, exec_shuf);
		reg(0x6e, p, exec_movd_load);
		reg(0x7e, p, exec_0f7e);
	}
	reg(0x7e, MP_F3, exec_0f7e);
	for (unsigned p = MP_NONE; p <= MP_F3; p++) {
		reg(0x6f, p, exec_0f6f);
		reg(0x7f, p, exec_0f7f);
	}
	reg(0xd6, MP_66, exec_0fd6);
	reg(0xd6, MP_F3, exec_0fd6);
	reg(0xd6, MP_F2, exec_0fd6);
	reg(0xe7, MP_NONE, exec_movntq);
	reg(0xe7, MP_66, exec_movnt);
	reg(0xf0, MP_F2, exec_lddqu);
	reg(0xc3, MP_NONE, exec_movnti);
}
