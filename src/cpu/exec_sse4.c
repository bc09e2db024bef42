/*
 * SSE4.1 (66 0F 38 / 66 0F 3A), and PCMPGTQ of SSE4.2.
 *
 * Integer forms are plain C. The floating-point ones (ROUNDxx, DPPS/DPPD)
 * keep the host requirement at SSE2: rounding is done exactly in C, the
 * dot products from SSE2 multiplies and adds in the order the SDM gives.
 */
#include <math.h>
#include <string.h>

#include "cpu/fpu.h"
#include "cpu/insn.h"
#include "cpu/mem.h"

static union cpu_xmm *xr(struct cpu *cpu, unsigned i)
{
	return &cpu->fpu.xmm[i & 15];
}

/* The rm operand as 16 bytes (aligned m128), or `len` bytes unaligned. */
static union cpu_xmm src(struct cpu *cpu, const struct insn *in, unsigned len)
{
	union cpu_xmm s;
	sse_src(cpu, in, &s, len, len == 16);
	return s;
}

/* ---- 0F 38 ---- */

static void blendv(struct cpu *cpu, const struct insn *in)
{
	union cpu_xmm s = src(cpu, in, 16), *d = xr(cpu, in->reg), m = *xr(cpu, 0);
	switch (in->op) {
	case 0x10:
		for (unsigned i = 0; i < 16; i++)
			if (m.b[i] & 0x80)
				d->b[i] = s.b[i];
		break;
	case 0x14:
		for (unsigned i = 0; i < 4; i++)
			if (m.d[i] >> 31)
				d->d[i] = s.d[i];
		break;
	default:
		for (unsigned i = 0; i < 2; i++)
			if (m.q[i] >> 63)
				d->q[i] = s.q[i];
		break;
	}
}

static void ptest(struct cpu *cpu, const struct insn *in)
{
	union cpu_xmm s = src(cpu, in, 16), *d = xr(cpu, in->reg);
	uint64_t fl = cpu_get_rflags(cpu) & ~FL_ARITH;
	if (!((d->q[0] & s.q[0]) | (d->q[1] & s.q[1])))
		fl |= FL_ZF;
	if (!((~d->q[0] & s.q[0]) | (~d->q[1] & s.q[1])))
		fl |= FL_CF;
	cpu_set_rflags(cpu, fl);
}

/* PMOVSX / PMOVZX: op low nibble 0..5 = bw bd bq wd wq dq. */
static void pmovx(struct cpu *cpu, const struct insn *in)
{
	static const uint8_t from[6] = { 1, 1, 1, 2, 2, 4 }, to[6] = { 2, 4, 8, 4, 8, 8 };
	unsigned k = in->op & 0xf;
	bool sx = in->op < 0x30;
	unsigned n = 16 / to[k];
	union cpu_xmm s = src(cpu, in, n * from[k]), r;
	for (unsigned i = 0; i < n; i++) {
		uint64_t v = 0;
		memcpy(&v, s.b + i * from[k], from[k]);
		if (sx) {
			unsigned sh = 64 - 8 * from[k];
			v = (uint64_t)((int64_t)(v << sh) >> sh);
		}
		memcpy(r.b + i * to[k], &v, to[k]);
	}
	*xr(cpu, in->reg) = r;
}

static uint16_t sat_u16(int32_t v)
{
	return (uint16_t)(v < 0 ? 0 : v > 65535 ? 65535 : v);
}

static void int_op(struct cpu *cpu, const struct insn *in)
{
	union cpu_xmm s = src(cpu, in, 16), a = *xr(cpu, in->reg), r;
	switch (in->op) {
	case 0x28: /* PMULDQ */
		for (unsigned i = 0; i < 2; i++)
			r.q[i] = (uint64_t)((int64_t)(int32_t)a.d[2 * i] * (int32_t)s.d[2 * i]);
		break;
	case 0x29: /* PCMPEQQ */
		for (unsigned i = 0; i < 2; i++)
			r.q[i] = a.q[i] == s.q[i] ? ~0ULL : 0;
		break;
	case 0x2b: /* PACKUSDW */
		for (unsigned i = 0; i < 4; i++) {
			r.w[i] = sat_u16((int32_t)a.d[i]);
			r.w[4 + i] = sat_u16((int32_t)s.d[i]);
		}
		break;
	case 0x37: /* PCMPGTQ */
		for (unsigned i = 0; i < 2; i++)
			r.q[i] = (int64_t)a.q[i] > (int64_t)s.q[i] ? ~0ULL : 0;
		break;
	case 0x38: /* PMINSB */
	case 0x3c: /* PMAXSB */
		for (unsigned i = 0; i < 16; i++) {
			int8_t x = (int8_t)a.b[i], y = (int8_t)s.b[i];
			r.b[i] = (uint8_t)((in->op == 0x38) == (x < y) ? x : y);
		}
		break;
	case 0x39: /* PMINSD */
	case 0x3d: /* PMAXSD */
		for (unsigned i = 0; i < 4; i++) {
			int32_t x = (int32_t)a.d[i], y = (int32_t)s.d[i];
			r.d[i] = (uint32_t)((in->op == 0x39) == (x < y) ? x : y);
		}
		break;
	case 0x3a: /* PMINUW */
	case 0x3e: /* PMAXUW */
		for (unsigned i = 0; i < 8; i++)
			r.w[i] = (in->op == 0x3a) == (a.w[i] < s.w[i]) ? a.w[i] : s.w[i];
		break;
	case 0x3b: /* PMINUD */
	case 0x3f: /* PMAXUD */
		for (unsigned i = 0; i < 4; i++)
			r.d[i] = (in->op == 0x3b) == (a.d[i] < s.d[i]) ? a.d[i] : s.d[i];
		break;
	case 0x40: /* PMULLD */
		for (unsigned i = 0; i < 4; i++)
			r.d[i] = a.d[i] * s.d[i];
		break;
	default: { /* 0x41 PHMINPOSUW */
		unsigned idx = 0;
		for (unsigned i = 1; i < 8; i++)
			if (s.w[i] < s.w[idx])
				idx = i;
		memset(&r, 0, sizeof(r));
		r.w[0] = s.w[idx];
		r.w[1] = (uint16_t)idx;
		break;
	}
	}
	*xr(cpu, in->reg) = r;
}

static void movntdqa(struct cpu *cpu, const struct insn *in)
{
	if (in->mod == 3)
		cpu_fault(cpu, EXC_UD, 0);
	*xr(cpu, in->reg) = src(cpu, in, 16);
}

static void exec_0f38(struct cpu *cpu, const struct insn *in)
{
	fpu_check_sse(cpu);
	switch (in->op) {
	case 0x10: case 0x14: case 0x15: blendv(cpu, in); return;
	case 0x17: ptest(cpu, in); return;
	case 0x2a: movntdqa(cpu, in); return;
	}
	if ((in->op >= 0x20 && in->op <= 0x25) || (in->op >= 0x30 && in->op <= 0x35))
		pmovx(cpu, in);
	else
		int_op(cpu, in);
}

/* ---- 0F 3A ---- */

/* Rounds a float/double exactly by imm8 (bits 1:0 mode unless bit 2:
 * MXCSR.RC), with DAZ; flags: IE for SNaN, PE when inexact unless bit 3. */
static double round_mode(double x, unsigned mode)
{
	switch (mode) {
	case 1: return floor(x);
	case 2: return ceil(x);
	case 3: return trunc(x);
	}
	double f = floor(x), diff = x - f;
	if (diff > 0.5 || (diff == 0.5 && fmod(f, 2.0) != 0.0))
		f += 1.0;
	return f;
}

static uint32_t round_f32(uint32_t *v, unsigned mode, bool daz)
{
	uint32_t b = *v, e = (b >> 23) & 0xff;
	if (e == 0xff) {
		if ((b & 0x7fffff) && !(b & 0x400000)) {
			*v = b | 0x400000;
			return 0x1; /* IE */
		}
		return 0;
	}
	if (e == 0 && daz) {
		*v = b & 0x80000000u;
		return 0;
	}
	if (e >= 127 + 23)
		return 0;
	float x;
	memcpy(&x, &b, 4);
	double r = round_mode(x, mode);
	float rf = (float)r;
	if (rf == 0.0f)
		rf = copysignf(0.0f, x);
	memcpy(v, &rf, 4);
	return rf != x ? 0x20 : 0;
}

static uint32_t round_f64(uint64_t *v, unsigned mode, bool daz)
{
	uint64_t b = *v, e = (b >> 52) & 0x7ff;
	if (e == 0x7ff) {
		if ((b & 0xfffffffffffffULL) && !(b & (1ULL << 51))) {
			*v = b | 1ULL << 51;
			return 0x1;
		}
		return 0;
	}
	if (e == 0 && daz) {
		*v = b & (1ULL << 63);
		return 0;
	}
	if (e >= 1023 + 52)
		return 0;
	double x;
	memcpy(&x, &b, 8);
	double r = round_mode(x, mode);
	if (r == 0.0)
		r = copysign(0.0, x);
	memcpy(v, &r, 8);
	return r != x ? 0x20 : 0;
}

static void exec_round(struct cpu *cpu, const struct insn *in)
{
	unsigned imm = (uint8_t)in->imm, op = in->op;
	unsigned mode = (imm & 4) ? (cpu->fpu.mxcsr >> 13) & 3 : imm & 3;
	bool daz = cpu->fpu.mxcsr & MXCSR_DAZ;
	unsigned len = op == 0x0a ? 4 : op == 0x0b ? 8 : 16;
	union cpu_xmm s = src(cpu, in, len), r = *xr(cpu, in->reg);
	uint32_t f = 0;
	switch (op) {
	case 0x08:
		for (unsigned i = 0; i < 4; i++) {
			r.d[i] = s.d[i];
			f |= round_f32(&r.d[i], mode, daz);
		}
		break;
	case 0x09:
		for (unsigned i = 0; i < 2; i++) {
			r.q[i] = s.q[i];
			f |= round_f64(&r.q[i], mode, daz);
		}
		break;
	case 0x0a:
		r.d[0] = s.d[0];
		f = round_f32(&r.d[0], mode, daz);
		break;
	default:
		r.q[0] = s.q[0];
		f = round_f64(&r.q[0], mode, daz);
		break;
	}
	if (imm & 8)
		f &= ~0x20u;
	sse_flags(cpu, f);
	*xr(cpu, in->reg) = r;
}

static void exec_blend_imm(struct cpu *cpu, const struct insn *in)
{
	unsigned imm = (uint8_t)in->imm;
	union cpu_xmm s = src(cpu, in, 16), *d = xr(cpu, in->reg);
	switch (in->op) {
	case 0x0c:
		for (unsigned i = 0; i < 4; i++)
			if (imm >> i & 1)
				d->d[i] = s.d[i];
		break;
	case 0x0d:
		for (unsigned i = 0; i < 2; i++)
			if (imm >> i & 1)
				d->q[i] = s.q[i];
		break;
	default:
		for (unsigned i = 0; i < 8; i++)
			if (imm >> i & 1)
				d->w[i] = s.w[i];
		break;
	}
}

/* PEXTRB/W/D/Q, EXTRACTPS: to a register (zero-extended) or memory. */
static void exec_extract(struct cpu *cpu, const struct insn *in)
{
	unsigned imm = (uint8_t)in->imm;
	const union cpu_xmm *s = xr(cpu, in->reg);
	unsigned size;
	uint64_t v;
	switch (in->op) {
	case 0x14: size = 1, v = s->b[imm & 15]; break;
	case 0x15: size = 2, v = s->w[imm & 7]; break;
	case 0x16:
		if (in->rex & 8)
			size = 8, v = s->q[imm & 1];
		else
			size = 4, v = s->d[imm & 3];
		break;
	default: size = 4, v = s->d[imm & 3]; break;
	}
	if (in->mod == 3)
		cpu->gpr[in->rm] = (in->rex & 8) && size == 8 ? v : (uint32_t)v;
	else
		cpu_write_sz(cpu, in->ea_seg, insn_ea(cpu, in), v, size);
}

/* PINSRB/D/Q, INSERTPS. */
static void exec_insert(struct cpu *cpu, const struct insn *in)
{
	unsigned imm = (uint8_t)in->imm;
	union cpu_xmm *d = xr(cpu, in->reg);
	if (in->op == 0x21) { /* INSERTPS */
		uint32_t v;
		if (in->mod == 3)
			v = xr(cpu, in->rm)->d[(imm >> 6) & 3];
		else
			v = cpu_read32(cpu, in->ea_seg, insn_ea(cpu, in));
		d->d[(imm >> 4) & 3] = v;
		for (unsigned i = 0; i < 4; i++)
			if (imm >> i & 1)
				d->d[i] = 0;
		return;
	}
	unsigned size = in->op == 0x20 ? 1 : (in->rex & 8) ? 8 : 4;
	uint64_t v = in->mod == 3 ? cpu->gpr[in->rm]
				  : cpu_read_sz(cpu, in->ea_seg, insn_ea(cpu, in), size);
	switch (size) {
	case 1: d->b[imm & 15] = (uint8_t)v; break;
	case 4: d->d[imm & 3] = (uint32_t)v; break;
	default: d->q[imm & 1] = v; break;
	}
}

/* Host SSE2 helpers for the dot products: d = d op s, flags returned. */
static uint32_t host2(unsigned which, union cpu_xmm *d, const union cpu_xmm *s, uint32_t mx)
{
	uint32_t save;
#define H2(insn)                                                                           \
	__asm__ volatile("stmxcsr %[save]\n\tldmxcsr %[m]\n\tmovdqu %[d], %%xmm0\n\t"       \
			 "movdqu %[s], %%xmm1\n\t" insn " %%xmm1, %%xmm0\n\t"               \
			 "movdqu %%xmm0, %[d]\n\tstmxcsr %[m]\n\tldmxcsr %[save]"           \
			 : [d] "+m"(*d), [m] "+m"(mx), [save] "=m"(save)                    \
			 : [s] "m"(*s)                                                      \
			 : "xmm0", "xmm1")
	switch (which) {
	case 0: H2("mulps"); break;
	case 1: H2("addps"); break;
	case 2: H2("mulpd"); break;
	default: H2("addpd"); break;
	}
#undef H2
	return mx & MXCSR_FLAGS;
}

/*
 * DPPS/DPPD raise in stages: an unmasked exception of the multiplies stops
 * there; one of the additions (denormal intermediate products included)
 * reports the multiplies' flags too.
 */
static void dp_flags(struct cpu *cpu, uint32_t fmul, uint32_t fadd)
{
	uint32_t masks = (cpu->fpu.mxcsr >> 7) & MXCSR_FLAGS;
	if (fmul & ~masks)
		sse_flags(cpu, fmul);
	if ((fadd & 7) & ~masks)
		fadd &= 7;
	cpu->fpu.mxcsr |= fmul | fadd;
	if ((fmul | fadd) & ~masks)
		fpu_simd_fault(cpu);
}

static void exec_dp(struct cpu *cpu, const struct insn *in)
{
	unsigned imm = (uint8_t)in->imm;
	uint32_t mx = (cpu->fpu.mxcsr | MXCSR_MASKS) & ~MXCSR_FLAGS & MXCSR_MASK;
	union cpu_xmm s = src(cpu, in, 16), a = *xr(cpu, in->reg), r;
	union cpu_xmm x, y;
	memset(&x, 0, 16), memset(&y, 0, 16), memset(&r, 0, 16);
	uint32_t f, fm;
	if (in->op == 0x40) { /* DPPS */
		for (unsigned i = 0; i < 4; i++)
			if (imm >> (4 + i) & 1)
				x.d[i] = a.d[i], y.d[i] = s.d[i];
		fm = host2(0, &x, &y, mx); /* products, +0 where masked */
		union cpu_xmm u, v;
		memset(&u, 0, 16), memset(&v, 0, 16);
		u.d[0] = x.d[0], v.d[0] = x.d[1];
		u.d[1] = x.d[2], v.d[1] = x.d[3];
		f = host2(1, &u, &v, mx); /* t1 = p0 + p1, t2 = p2 + p3 */
		union cpu_xmm w;
		memset(&w, 0, 16);
		w.d[0] = u.d[1];
		u.d[1] = 0;
		f |= host2(1, &u, &w, mx); /* t1 + t2 */
		for (unsigned i = 0; i < 4; i++)
			if (imm >> i & 1)
				r.d[i] = u.d[0];
	} else { /* DPPD */
		for (unsigned i = 0; i < 2; i++)
			if (imm >> (4 + i) & 1)
				x.q[i] = a.q[i], y.q[i] = s.q[i];
		fm = host2(2, &x, &y, mx);
		union cpu_xmm u, v;
		memset(&u, 0, 16), memset(&v, 0, 16);
		u.q[0] = x.q[0], v.q[0] = x.q[1];
		f = host2(3, &u, &v, mx);
		for (unsigned i = 0; i < 2; i++)
			if (imm >> i & 1)
				r.q[i] = u.q[0];
	}
	dp_flags(cpu, fm, f);
	*xr(cpu, in->reg) = r;
}

static void exec_mpsadbw(struct cpu *cpu, const struct insn *in)
{
	unsigned imm = (uint8_t)in->imm;
	union cpu_xmm s = src(cpu, in, 16), a = *xr(cpu, in->reg), r;
	unsigned so = (imm & 3) * 4, dof = ((imm >> 2) & 1) * 4;
	for (unsigned j = 0; j < 8; j++) {
		unsigned sum = 0;
		for (unsigned k = 0; k < 4; k++) {
			int d = a.b[dof + j + k] - s.b[so + k];
			sum += (unsigned)(d < 0 ? -d : d);
		}
		r.w[j] = (uint16_t)sum;
	}
	*xr(cpu, in->reg) = r;
}

static void exec_0f3a(struct cpu *cpu, const struct insn *in)
{
	fpu_check_sse(cpu);
	switch (in->op) {
	case 0x08: case 0x09: case 0x0a: case 0x0b: exec_round(cpu, in); return;
	case 0x0c: case 0x0d: case 0x0e: exec_blend_imm(cpu, in); return;
	case 0x14: case 0x15: case 0x16: case 0x17: exec_extract(cpu, in); return;
	case 0x20: case 0x21: case 0x22: exec_insert(cpu, in); return;
	case 0x40: case 0x41: exec_dp(cpu, in); return;
	case 0x42: exec_mpsadbw(cpu, in); return;
	}
	cpu_fault(cpu, EXC_UD, 0);
}

void sse4_register(void)
{
	static const uint8_t ops38[] = { 0x10, 0x14, 0x15, 0x17, 0x20, 0x21, 0x22, 0x23, 0x24,
					 0x25, 0x28, 0x29, 0x2a, 0x2b, 0x30, 0x31, 0x32, 0x33,
					 0x34, 0x35, 0x37, 0x38, 0x39, 0x3a, 0x3b, 0x3c, 0x3d,
					 0x3e, 0x3f, 0x40, 0x41 };
	static const uint8_t ops3a[] = { 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x14, 0x15,
					 0x16, 0x17, 0x20, 0x21, 0x22, 0x40, 0x41, 0x42 };
	for (unsigned i = 0; i < sizeof(ops38); i++)
		cpu_dispatch[MAP_0F38][ops38[i]][MP_66] = exec_0f38;
	for (unsigned i = 0; i < sizeof(ops3a); i++)
		cpu_dispatch[MAP_0F3A][ops3a[i]][MP_66] = exec_0f3a;
}
