/*
 * SSE/SSE2/SSE3 floating point: arithmetic, compares, conversions.
 *
 * Like the x87 part, these run the host's own SSE2 instruction with the
 * guest's MXCSR (rounding, DAZ, FTZ; every exception masked) on copies of
 * the operands, then read back the result and the exception flags. The
 * flags decide (sse_flags) whether the result is written or #XM/#UD is
 * raised. SSE3's horizontal and add/sub forms are composed from SSE2
 * operations on rearranged operands, so only SSE2 is needed on the host.
 */
#include <string.h>

#include "cpu/fpu.h"
#include "cpu/insn.h"
#include "cpu/mem.h"

static uint32_t host_mxcsr(const struct cpu *cpu)
{
	return (cpu->fpu.mxcsr | MXCSR_MASKS) & ~MXCSR_FLAGS & MXCSR_MASK;
}

#define K(op, mp) ((unsigned)(op) << 2 | (mp))

#define XOP(insn)                                                                          \
	__asm__ volatile("stmxcsr %[save]\n\tldmxcsr %[m]\n\tmovdqu %[d], %%xmm0\n\t"       \
			 "movdqu %[s], %%xmm1\n\t" insn " %%xmm1, %%xmm0\n\t"               \
			 "movdqu %%xmm0, %[d]\n\tstmxcsr %[m]\n\tldmxcsr %[save]"           \
			 : [d] "+m"(*d), [m] "+m"(mx), [save] "=m"(save)                    \
			 : [s] "m"(*s)                                                      \
			 : "xmm0", "xmm1")

#define CASE4(op, name)                                                                    \
	case K(op, MP_NONE): XOP(name "ps"); break;                                        \
	case K(op, MP_66): XOP(name "pd"); break;                                          \
	case K(op, MP_F3): XOP(name "ss"); break;                                          \
	case K(op, MP_F2): XOP(name "sd"); break;

/* d = d op s on the host; returns the exception flags. */
static uint32_t h_fp(unsigned key, union cpu_xmm *d, const union cpu_xmm *s, uint32_t mx)
{
	uint32_t save;
	switch (key) {
	CASE4(0x51, "sqrt")
	CASE4(0x58, "add")
	CASE4(0x59, "mul")
	CASE4(0x5c, "sub")
	CASE4(0x5d, "min")
	CASE4(0x5e, "div")
	CASE4(0x5f, "max")
	case K(0x52, MP_NONE): XOP("rsqrtps"); break;
	case K(0x52, MP_F3): XOP("rsqrtss"); break;
	case K(0x53, MP_NONE): XOP("rcpps"); break;
	case K(0x53, MP_F3): XOP("rcpss"); break;
	case K(0x5a, MP_NONE): XOP("cvtps2pd"); break;
	case K(0x5a, MP_66): XOP("cvtpd2ps"); break;
	case K(0x5a, MP_F3): XOP("cvtss2sd"); break;
	case K(0x5a, MP_F2): XOP("cvtsd2ss"); break;
	case K(0x5b, MP_NONE): XOP("cvtdq2ps"); break;
	case K(0x5b, MP_66): XOP("cvtps2dq"); break;
	case K(0x5b, MP_F3): XOP("cvttps2dq"); break;
	case K(0xe6, MP_66): XOP("cvttpd2dq"); break;
	case K(0xe6, MP_F3): XOP("cvtdq2pd"); break;
	case K(0xe6, MP_F2): XOP("cvtpd2dq"); break;
	}
	return mx & MXCSR_FLAGS;
}

static uint32_t h_cmp(unsigned mp, unsigned imm, union cpu_xmm *d, const union cpu_xmm *s,
		      uint32_t mx)
{
	uint32_t save;
#define CMP8(sfx)                                                                          \
	switch (imm & 7) {                                                                 \
	case 0: XOP("cmpeq" sfx); break;                                                   \
	case 1: XOP("cmplt" sfx); break;                                                   \
	case 2: XOP("cmple" sfx); break;                                                   \
	case 3: XOP("cmpunord" sfx); break;                                                \
	case 4: XOP("cmpneq" sfx); break;                                                  \
	case 5: XOP("cmpnlt" sfx); break;                                                  \
	case 6: XOP("cmpnle" sfx); break;                                                  \
	default: XOP("cmpord" sfx); break;                                                 \
	}
	switch (mp) {
	case MP_NONE: CMP8("ps"); break;
	case MP_66: CMP8("pd"); break;
	case MP_F3: CMP8("ss"); break;
	default: CMP8("sd"); break;
	}
#undef CMP8
	return mx & MXCSR_FLAGS;
}

/*
 * The host runs with every exception masked, and a masked underflow is
 * only flagged when the tiny result is also inexact; unmasked, any tiny
 * result underflows (and FTZ does not apply). So with UE unmasked, the
 * operations that can underflow run again without FTZ to look for a
 * denormal result in the lanes they write.
 */
static bool tiny32(uint32_t v)
{
	return !(v & 0x7f800000u) && (v & 0x7fffffu);
}

static bool tiny64(uint64_t v)
{
	return !(v & 0x7ff0000000000000ULL) && (v & 0xfffffffffffffULL);
}

static uint32_t fp_op(struct cpu *cpu, unsigned key, union cpu_xmm *d, const union cpu_xmm *s)
{
	union cpu_xmm in = *d;
	uint32_t mx = host_mxcsr(cpu);
	uint32_t f = h_fp(key, d, s, mx);
	unsigned op = key >> 2, mp = key & 3;
	bool can = op == 0x58 || op == 0x59 || op == 0x5c || op == 0x5e ||
		   (op == 0x5a && (mp == MP_66 || mp == MP_F2));
	if (!can || (cpu->fpu.mxcsr & 0x800) || (f & 0x10))
		return f;
	union cpu_xmm r = in;
	h_fp(key, &r, s, mx & ~0x8000u);
	bool tiny = false;
	if (op == 0x5a) /* to single: lanes 0 (and 1 for cvtpd2ps) */
		tiny = tiny32(r.d[0]) || (mp == MP_66 && tiny32(r.d[1]));
	else if (mp == MP_NONE)
		tiny = tiny32(r.d[0]) || tiny32(r.d[1]) || tiny32(r.d[2]) || tiny32(r.d[3]);
	else if (mp == MP_66)
		tiny = tiny64(r.q[0]) || tiny64(r.q[1]);
	else if (mp == MP_F3)
		tiny = tiny32(r.d[0]);
	else
		tiny = tiny64(r.q[0]);
	return tiny ? f | 0x10 : f;
}

/* Memory operand size of each form. */
static unsigned src_len(unsigned op, unsigned mp)
{
	if (op == 0x5a && mp == MP_NONE)
		return 8; /* cvtps2pd m64 */
	if (op == 0xe6 && mp == MP_F3)
		return 8; /* cvtdq2pd m64 */
	if (mp == MP_F3)
		return op == 0x5b ? 16 : 4;
	if (mp == MP_F2)
		return op == 0xe6 ? 16 : 8;
	return 16;
}

/* 0F 51..5F (not the logic ops), 0F 5A/5B, 0F E6. */
static void exec_fp(struct cpu *cpu, const struct insn *in)
{
	fpu_check_sse(cpu);
	unsigned len = src_len(in->op, in->mandatory);
	union cpu_xmm s, d = cpu->fpu.xmm[in->reg];
	sse_src(cpu, in, &s, len, len == 16);
	uint32_t f = fp_op(cpu, K(in->op, in->mandatory), &d, &s);
	sse_flags(cpu, f);
	cpu->fpu.xmm[in->reg] = d;
}

/* 0F C2: CMPPS/CMPPD/CMPSS/CMPSD with the predicate in imm8[2:0]. */
static void exec_cmp(struct cpu *cpu, const struct insn *in)
{
	fpu_check_sse(cpu);
	unsigned mp = in->mandatory, len = mp == MP_F3 ? 4 : mp == MP_F2 ? 8 : 16;
	union cpu_xmm s, d = cpu->fpu.xmm[in->reg];
	sse_src(cpu, in, &s, len, len == 16);
	uint32_t f = h_cmp(mp, (unsigned)in->imm, &d, &s, host_mxcsr(cpu));
	sse_flags(cpu, f);
	cpu->fpu.xmm[in->reg] = d;
}

/* 0F 2E/2F: UCOMISS/COMISS (none), UCOMISD/COMISD (66). */
static void exec_comis(struct cpu *cpu, const struct insn *in)
{
	fpu_check_sse(cpu);
	bool dbl = in->mandatory == MP_66;
	union cpu_xmm s, dd = cpu->fpu.xmm[in->reg], *d = &dd;
	sse_src(cpu, in, &s, dbl ? 8 : 4, false);
	uint32_t mx = host_mxcsr(cpu), save;
	uint8_t zf, pf, cf;
#define COMI(insn)                                                                         \
	__asm__ volatile("stmxcsr %[save]\n\tldmxcsr %[m]\n\tmovdqu %[d], %%xmm0\n\t"       \
			 "movdqu %[s], %%xmm1\n\t" insn " %%xmm1, %%xmm0\n\t"               \
			 "setz %[zf]\n\tsetp %[pf]\n\tsetc %[cf]\n\t"                       \
			 "stmxcsr %[m]\n\tldmxcsr %[save]"                                  \
			 : [m] "+m"(mx), [save] "=m"(save), [zf] "=qm"(zf), [pf] "=qm"(pf), \
			   [cf] "=qm"(cf)                                                   \
			 : [s] "m"(s), [d] "m"(*d)                                          \
			 : "xmm0", "xmm1", "cc")
	switch ((in->op & 1) | (dbl << 1)) {
	case 0: COMI("ucomiss"); break;
	case 1: COMI("comiss"); break;
	case 2: COMI("ucomisd"); break;
	default: COMI("comisd"); break;
	}
#undef COMI
	sse_flags(cpu, mx & MXCSR_FLAGS);
	uint64_t fl = cpu_get_rflags(cpu) & ~FL_ARITH;
	fl |= (zf ? FL_ZF : 0) | (pf ? FL_PF : 0) | (cf ? FL_CF : 0);
	cpu_set_rflags(cpu, fl);
}

/* F3/F2 0F 2A: CVTSI2SS/CVTSI2SD from r/m32 or r/m64 (REX.W). */
static void exec_cvtsi2f(struct cpu *cpu, const struct insn *in)
{
	fpu_check_sse(cpu);
	bool w = in->rex & 8;
	uint64_t v = in->mod == 3 ? cpu->gpr[in->rm]
				  : cpu_read_sz(cpu, in->ea_seg, insn_ea(cpu, in), w ? 8 : 4);
	uint32_t mx = host_mxcsr(cpu), save;
	union cpu_xmm dd = cpu->fpu.xmm[in->reg], *d = &dd;
	uint32_t v32 = (uint32_t)v;
#define CVI(insn, val)                                                                     \
	__asm__ volatile("stmxcsr %[save]\n\tldmxcsr %[m]\n\tmovdqu %[d], %%xmm0\n\t"       \
			 insn " %[v], %%xmm0\n\tmovdqu %%xmm0, %[d]\n\t"                    \
			 "stmxcsr %[m]\n\tldmxcsr %[save]"                                  \
			 : [d] "+m"(*d), [m] "+m"(mx), [save] "=m"(save)                    \
			 : [v] "m"(val)                                                     \
			 : "xmm0")
	if (in->mandatory == MP_F3) {
		if (w)
			CVI("cvtsi2ssq", v);
		else
			CVI("cvtsi2ssl", v32);
	} else {
		if (w)
			CVI("cvtsi2sdq", v);
		else
			CVI("cvtsi2sdl", v32);
	}
#undef CVI
	sse_flags(cpu, mx & MXCSR_FLAGS);
	cpu->fpu.xmm[in->reg] = dd;
}

/* F3/F2 0F 2C/2D: CVT(T)SS2SI / CVT(T)SD2SI to r32 or r64. */
static void exec_cvtf2si(struct cpu *cpu, const struct insn *in)
{
	fpu_check_sse(cpu);
	bool w = in->rex & 8, dbl = in->mandatory == MP_F2, trunc = in->op == 0x2c;
	union cpu_xmm s;
	sse_src(cpu, in, &s, dbl ? 8 : 4, false);
	uint32_t mx = host_mxcsr(cpu), save;
	uint64_t r64 = 0;
	uint32_t r32 = 0;
#define CVF(insn, out, sz)                                                                 \
	__asm__ volatile("stmxcsr %[save]\n\tldmxcsr %[m]\n\tmovdqu %[s], %%xmm0\n\t"       \
			 insn " %%xmm0, %" sz "[r]\n\tstmxcsr %[m]\n\tldmxcsr %[save]"        \
			 : [r] "=r"(out), [m] "+m"(mx), [save] "=m"(save)                   \
			 : [s] "m"(s)                                                       \
			 : "xmm0")
	switch ((unsigned)trunc | (unsigned)dbl << 1 | (unsigned)w << 2) {
	case 0: CVF("cvtss2si", r32, "k"); break;
	case 1: CVF("cvttss2si", r32, "k"); break;
	case 2: CVF("cvtsd2si", r32, "k"); break;
	case 3: CVF("cvttsd2si", r32, "k"); break;
	case 4: CVF("cvtss2si", r64, "q"); break;
	case 5: CVF("cvttss2si", r64, "q"); break;
	case 6: CVF("cvtsd2si", r64, "q"); break;
	default: CVF("cvttsd2si", r64, "q"); break;
	}
#undef CVF
	sse_flags(cpu, mx & MXCSR_FLAGS);
	cpu->gpr[in->reg] = w ? r64 : r32;
}

/* 0F 2A (none/66): CVTPI2PS / CVTPI2PD xmm, mm/m64. */
static void exec_cvtpi2f(struct cpu *cpu, const struct insn *in)
{
	fpu_check_sse(cpu);
	uint64_t v;
	if (in->mod == 3) {
		fpu_check_mmx(cpu);
		fpu_mmx_enter(cpu);
		v = mmx_get(cpu, in->rm);
	} else {
		v = cpu_read64(cpu, in->ea_seg, insn_ea(cpu, in));
	}
	union cpu_xmm s, d;
	memset(&s, 0, sizeof(s));
	s.q[0] = v;
	d = cpu->fpu.xmm[in->reg];
	bool pd = in->mandatory == MP_66;
	uint32_t f = h_fp(pd ? K(0xe6, MP_F3) : K(0x5b, MP_NONE), &d, &s, host_mxcsr(cpu));
	sse_flags(cpu, f);
	if (pd)
		cpu->fpu.xmm[in->reg] = d;
	else
		cpu->fpu.xmm[in->reg].q[0] = d.q[0];
}

/* 0F 2C/2D (none/66): CVT(T)PS2PI / CVT(T)PD2PI mm, xmm/m. */
static void exec_cvtf2pi(struct cpu *cpu, const struct insn *in)
{
	fpu_check_sse(cpu);
	fpu_check_mmx(cpu);
	bool pd = in->mandatory == MP_66, trunc = in->op == 0x2c;
	union cpu_xmm s, d;
	sse_src(cpu, in, &s, pd ? 16 : 8, pd);
	if (!pd)
		s.q[1] = 0;
	memset(&d, 0, sizeof(d));
	unsigned key = pd ? (trunc ? K(0xe6, MP_66) : K(0xe6, MP_F2))
			  : (trunc ? K(0x5b, MP_F3) : K(0x5b, MP_66));
	uint32_t f = h_fp(key, &d, &s, host_mxcsr(cpu));
	fpu_mmx_enter(cpu); /* happens even when #XM follows */
	sse_flags(cpu, f);
	mmx_set(cpu, in->reg, d.q[0]);
}

/* ---- SSE3 ---- */

/* 0F 7C/7D: HADDPD/HSUBPD (66), HADDPS/HSUBPS (F2). */
static void exec_hop(struct cpu *cpu, const struct insn *in)
{
	fpu_check_sse(cpu);
	union cpu_xmm s, a = cpu->fpu.xmm[in->reg], x, y;
	sse_src(cpu, in, &s, 16, true);
	bool pd = in->mandatory == MP_66, sub = in->op == 0x7d;
	if (pd) {
		x.q[0] = a.q[0], x.q[1] = s.q[0];
		y.q[0] = a.q[1], y.q[1] = s.q[1];
	} else {
		x.d[0] = a.d[0], x.d[1] = a.d[2], x.d[2] = s.d[0], x.d[3] = s.d[2];
		y.d[0] = a.d[1], y.d[1] = a.d[3], y.d[2] = s.d[1], y.d[3] = s.d[3];
	}
	uint32_t f = fp_op(cpu, K(sub ? 0x5c : 0x58, pd ? MP_66 : MP_NONE), &x, &y);
	sse_flags(cpu, f);
	cpu->fpu.xmm[in->reg] = x;
}

/* 0F D0: ADDSUBPD (66), ADDSUBPS (F2): even lanes subtract, odd add. The
 * unused lanes of each half are zero (0 +- 0 raises nothing). */
static void exec_addsub(struct cpu *cpu, const struct insn *in)
{
	fpu_check_sse(cpu);
	union cpu_xmm s, a = cpu->fpu.xmm[in->reg], xs, ys, xa, ya;
	sse_src(cpu, in, &s, 16, true);
	bool pd = in->mandatory == MP_66;
	memset(&xs, 0, 16), memset(&ys, 0, 16), memset(&xa, 0, 16), memset(&ya, 0, 16);
	if (pd) {
		xs.q[0] = a.q[0], ys.q[0] = s.q[0];
		xa.q[1] = a.q[1], ya.q[1] = s.q[1];
	} else {
		for (unsigned i = 0; i < 4; i += 2) {
			xs.d[i] = a.d[i], ys.d[i] = s.d[i];
			xa.d[i + 1] = a.d[i + 1], ya.d[i + 1] = s.d[i + 1];
		}
	}
	unsigned mp = pd ? MP_66 : MP_NONE;
	uint32_t f = fp_op(cpu, K(0x5c, mp), &xs, &ys) | fp_op(cpu, K(0x58, mp), &xa, &ya);
	sse_flags(cpu, f);
	union cpu_xmm *d = &cpu->fpu.xmm[in->reg];
	if (pd) {
		d->q[0] = xs.q[0];
		d->q[1] = xa.q[1];
	} else {
		for (unsigned i = 0; i < 4; i += 2) {
			d->d[i] = xs.d[i];
			d->d[i + 1] = xa.d[i + 1];
		}
	}
}

void sse_fp_register(void)
{
	static const uint8_t all4[] = { 0x51, 0x58, 0x59, 0x5a, 0x5c, 0x5d, 0x5e, 0x5f };
	for (unsigned i = 0; i < sizeof(all4); i++)
		for (unsigned p = 0; p < 4; p++)
			cpu_dispatch[MAP_0F][all4[i]][p] = exec_fp;
	cpu_dispatch[MAP_0F][0x52][MP_NONE] = exec_fp;
	cpu_dispatch[MAP_0F][0x52][MP_F3] = exec_fp;
	cpu_dispatch[MAP_0F][0x53][MP_NONE] = exec_fp;
	cpu_dispatch[MAP_0F][0x53][MP_F3] = exec_fp;
	for (unsigned p = MP_NONE; p <= MP_F3; p++)
		cpu_dispatch[MAP_0F][0x5b][p] = exec_fp;
	for (unsigned p = MP_66; p <= MP_F2; p++)
		cpu_dispatch[MAP_0F][0xe6][p] = exec_fp;
	for (unsigned p = 0; p < 4; p++)
		cpu_dispatch[MAP_0F][0xc2][p] = exec_cmp;
	for (unsigned p = MP_NONE; p <= MP_66; p++) {
		cpu_dispatch[MAP_0F][0x2e][p] = exec_comis;
		cpu_dispatch[MAP_0F][0x2f][p] = exec_comis;
		cpu_dispatch[MAP_0F][0x2a][p] = exec_cvtpi2f;
		cpu_dispatch[MAP_0F][0x2c][p] = exec_cvtf2pi;
		cpu_dispatch[MAP_0F][0x2d][p] = exec_cvtf2pi;
	}
	for (unsigned p = MP_F3; p <= MP_F2; p++) {
		cpu_dispatch[MAP_0F][0x2a][p] = exec_cvtsi2f;
		cpu_dispatch[MAP_0F][0x2c][p] = exec_cvtf2si;
		cpu_dispatch[MAP_0F][0x2d][p] = exec_cvtf2si;
	}
	cpu_dispatch[MAP_0F][0x7c][MP_66] = exec_hop;
	cpu_dispatch[MAP_0F][0x7c][MP_F2] = exec_hop;
	cpu_dispatch[MAP_0F][0x7d][MP_66] = exec_hop;
	cpu_dispatch[MAP_0F][0x7d][MP_F2] = exec_hop;
	cpu_dispatch[MAP_0F][0xd0][MP_66] = exec_addsub;
	cpu_dispatch[MAP_0F][0xd0][MP_F2] = exec_addsub;
}
