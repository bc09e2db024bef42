/*
 * Integer SIMD: MMX (no prefix, 64-bit mm registers), SSE2 (66 prefix,
 * xmm registers) and SSSE3 (0F 38 00..1E, both forms). Every operation is
 * written once for a vector of n = 8 or 16 bytes.
 */
#include <string.h>

#include "cpu/fpu.h"
#include "cpu/insn.h"
#include "cpu/mem.h"

union vec {
	uint8_t b[16];
	int8_t sb[16];
	uint16_t w[8];
	int16_t sw[8];
	uint32_t d[4];
	int32_t sd[4];
	uint64_t q[2];
	int64_t sq[2];
};

typedef void (*vop_fn)(union vec *r, const union vec *a, const union vec *b, unsigned n);

static int8_t sat_s8(int v) { return (int8_t)(v > 127 ? 127 : v < -128 ? -128 : v); }
static uint8_t sat_u8(int v) { return (uint8_t)(v > 255 ? 255 : v < 0 ? 0 : v); }
static int16_t sat_s16(int v) { return (int16_t)(v > 32767 ? 32767 : v < -32768 ? -32768 : v); }
static uint16_t sat_u16(int v) { return (uint16_t)(v > 65535 ? 65535 : v < 0 ? 0 : v); }

/* Element-wise r.f[i] = expr over n bytes. */
#define VOP(name, f, expr)                                                                 \
	static void name(union vec *r, const union vec *a, const union vec *b, unsigned n)  \
	{                                                                                  \
		(void)a;                                                                   \
		(void)b;                                                                   \
		for (unsigned i = 0; i < n / sizeof(r->f[0]); i++)                         \
			r->f[i] = (expr);                                                  \
	}

VOP(v_paddb, b, (uint8_t)(a->b[i] + b->b[i]))
VOP(v_paddw, w, (uint16_t)(a->w[i] + b->w[i]))
VOP(v_paddd, d, a->d[i] + b->d[i])
VOP(v_paddq, q, a->q[i] + b->q[i])
VOP(v_psubb, b, (uint8_t)(a->b[i] - b->b[i]))
VOP(v_psubw, w, (uint16_t)(a->w[i] - b->w[i]))
VOP(v_psubd, d, a->d[i] - b->d[i])
VOP(v_psubq, q, a->q[i] - b->q[i])
VOP(v_paddsb, sb, sat_s8(a->sb[i] + b->sb[i]))
VOP(v_paddsw, sw, sat_s16(a->sw[i] + b->sw[i]))
VOP(v_paddusb, b, sat_u8(a->b[i] + b->b[i]))
VOP(v_paddusw, w, sat_u16(a->w[i] + b->w[i]))
VOP(v_psubsb, sb, sat_s8(a->sb[i] - b->sb[i]))
VOP(v_psubsw, sw, sat_s16(a->sw[i] - b->sw[i]))
VOP(v_psubusb, b, sat_u8(a->b[i] - b->b[i]))
VOP(v_psubusw, w, sat_u16(a->w[i] - b->w[i]))
VOP(v_pmullw, w, (uint16_t)((uint32_t)a->w[i] * b->w[i]))
VOP(v_pmulhw, sw, (int16_t)(((int32_t)a->sw[i] * b->sw[i]) >> 16))
VOP(v_pmulhuw, w, (uint16_t)(((uint32_t)a->w[i] * b->w[i]) >> 16))
VOP(v_pmuludq, q, (uint64_t)(uint32_t)a->q[i] * (uint32_t)b->q[i])
VOP(v_pmaddwd, d,
    (uint32_t)((int64_t)a->sw[2 * i] * b->sw[2 * i] + (int64_t)a->sw[2 * i + 1] * b->sw[2 * i + 1]))
VOP(v_pavgb, b, (uint8_t)((a->b[i] + b->b[i] + 1) >> 1))
VOP(v_pavgw, w, (uint16_t)((a->w[i] + b->w[i] + 1) >> 1))
VOP(v_pminub, b, a->b[i] < b->b[i] ? a->b[i] : b->b[i])
VOP(v_pmaxub, b, a->b[i] > b->b[i] ? a->b[i] : b->b[i])
VOP(v_pminsw, sw, a->sw[i] < b->sw[i] ? a->sw[i] : b->sw[i])
VOP(v_pmaxsw, sw, a->sw[i] > b->sw[i] ? a->sw[i] : b->sw[i])
VOP(v_pcmpeqb, b, (uint8_t)(a->b[i] == b->b[i] ? 0xff : 0))
VOP(v_pcmpeqw, w, (uint16_t)(a->w[i] == b->w[i] ? 0xffff : 0))
VOP(v_pcmpeqd, d, a->d[i] == b->d[i] ? 0xffffffffu : 0)
VOP(v_pcmpgtb, b, (uint8_t)(a->sb[i] > b->sb[i] ? 0xff : 0))
VOP(v_pcmpgtw, w, (uint16_t)(a->sw[i] > b->sw[i] ? 0xffff : 0))
VOP(v_pcmpgtd, d, a->sd[i] > b->sd[i] ? 0xffffffffu : 0)
VOP(v_pand, q, a->q[i] & b->q[i])
VOP(v_pandn, q, ~a->q[i] & b->q[i])
VOP(v_por, q, a->q[i] | b->q[i])
VOP(v_pxor, q, a->q[i] ^ b->q[i])

/* Shifts by the count in the source's low 64 bits. */
VOP(v_psllw, w, (uint16_t)(b->q[0] > 15 ? 0 : (uint32_t)a->w[i] << b->q[0]))
VOP(v_pslld, d, b->q[0] > 31 ? 0 : a->d[i] << b->q[0])
VOP(v_psllq, q, b->q[0] > 63 ? 0 : a->q[i] << b->q[0])
VOP(v_psrlw, w, (uint16_t)(b->q[0] > 15 ? 0 : a->w[i] >> b->q[0]))
VOP(v_psrld, d, b->q[0] > 31 ? 0 : a->d[i] >> b->q[0])
VOP(v_psrlq, q, b->q[0] > 63 ? 0 : a->q[i] >> b->q[0])
VOP(v_psraw, sw, (int16_t)(a->sw[i] >> (b->q[0] > 15 ? 15 : b->q[0])))
VOP(v_psrad, sd, a->sd[i] >> (b->q[0] > 31 ? 31 : b->q[0]))

static void v_psadbw(union vec *r, const union vec *a, const union vec *b, unsigned n)
{
	for (unsigned l = 0; l < n / 8; l++) {
		unsigned sum = 0;
		for (unsigned i = 0; i < 8; i++) {
			int d = a->b[8 * l + i] - b->b[8 * l + i];
			sum += (unsigned)(d < 0 ? -d : d);
		}
		r->q[l] = sum;
	}
}

/* Interleave the low (or high) halves, elements of es bytes. */
static void unpack(union vec *r, const union vec *a, const union vec *b, unsigned n, unsigned es,
		   bool high)
{
	unsigned half = n / 2, off = high ? half : 0;
	for (unsigned i = 0; i < half / es; i++) {
		memcpy(r->b + 2 * i * es, a->b + off + i * es, es);
		memcpy(r->b + (2 * i + 1) * es, b->b + off + i * es, es);
	}
}

#define UNPACK(name, es, high)                                                             \
	static void name(union vec *r, const union vec *a, const union vec *b, unsigned n)  \
	{                                                                                  \
		unpack(r, a, b, n, es, high);                                              \
	}
UNPACK(v_punpcklbw, 1, false)
UNPACK(v_punpcklwd, 2, false)
UNPACK(v_punpckldq, 4, false)
UNPACK(v_punpcklqdq, 8, false)
UNPACK(v_punpckhbw, 1, true)
UNPACK(v_punpckhwd, 2, true)
UNPACK(v_punpckhdq, 4, true)
UNPACK(v_punpckhqdq, 8, true)

static void v_packsswb(union vec *r, const union vec *a, const union vec *b, unsigned n)
{
	unsigned h = n / 2;
	for (unsigned i = 0; i < h; i++) {
		r->sb[i] = sat_s8(a->sw[i]);
		r->sb[h + i] = sat_s8(b->sw[i]);
	}
}

static void v_packuswb(union vec *r, const union vec *a, const union vec *b, unsigned n)
{
	unsigned h = n / 2;
	for (unsigned i = 0; i < h; i++) {
		r->b[i] = sat_u8(a->sw[i]);
		r->b[h + i] = sat_u8(b->sw[i]);
	}
}

static void v_packssdw(union vec *r, const union vec *a, const union vec *b, unsigned n)
{
	unsigned h = n / 4;
	for (unsigned i = 0; i < h; i++) {
		r->sw[i] = sat_s16(a->sd[i]);
		r->sw[h + i] = sat_s16(b->sd[i]);
	}
}

/* ---- SSSE3 ---- */

static void v_pshufb(union vec *r, const union vec *a, const union vec *b, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		r->b[i] = (b->b[i] & 0x80) ? 0 : a->b[b->b[i] & (n - 1)];
}

/* Horizontal pairs: the first half of r from a, the second from b. */
#define HOP(name, f, T, expr)                                                              \
	static void name(union vec *r, const union vec *a, const union vec *b, unsigned n)  \
	{                                                                                  \
		unsigned h = n / sizeof(r->f[0]) / 2;                                      \
		for (unsigned i = 0; i < h; i++) {                                         \
			const union vec *v = a;                                            \
			T x = v->f[2 * i], y = v->f[2 * i + 1];                            \
			r->f[i] = (expr);                                                  \
			v = b;                                                             \
			x = v->f[2 * i], y = v->f[2 * i + 1];                              \
			r->f[h + i] = (expr);                                              \
		}                                                                          \
	}
HOP(v_phaddw, w, uint16_t, (uint16_t)(x + y))
HOP(v_phaddd, d, uint32_t, x + y)
HOP(v_phaddsw, sw, int16_t, sat_s16(x + y))
HOP(v_phsubw, w, uint16_t, (uint16_t)(x - y))
HOP(v_phsubd, d, uint32_t, x - y)
HOP(v_phsubsw, sw, int16_t, sat_s16(x - y))

VOP(v_pmaddubsw, sw,
    sat_s16(a->b[2 * i] * b->sb[2 * i] + a->b[2 * i + 1] * b->sb[2 * i + 1]))
VOP(v_pmulhrsw, sw, (int16_t)((((int32_t)a->sw[i] * b->sw[i] >> 14) + 1) >> 1))
VOP(v_psignb, b, (uint8_t)(b->sb[i] < 0 ? 0u - a->b[i] : b->sb[i] ? a->b[i] : 0))
VOP(v_psignw, w, (uint16_t)(b->sw[i] < 0 ? 0u - a->w[i] : b->sw[i] ? a->w[i] : 0))
VOP(v_psignd, d, b->sd[i] < 0 ? 0u - a->d[i] : b->sd[i] ? a->d[i] : 0)
VOP(v_pabsb, b, (uint8_t)(b->sb[i] < 0 ? 0u - b->b[i] : b->b[i]))
VOP(v_pabsw, w, (uint16_t)(b->sw[i] < 0 ? 0u - b->w[i] : b->w[i]))
VOP(v_pabsd, d, b->sd[i] < 0 ? 0u - b->d[i] : b->d[i])

/* ---- dispatch ---- */

/* The xmm rm operand (m128 aligned). */
static void xsrc(struct cpu *cpu, const struct insn *in, union vec *v)
{
	union cpu_xmm t;
	sse_src(cpu, in, &t, 16, true);
	memcpy(v, &t, 16);
}

/* The element-wise operations by opcode. */
static const vop_fn tab_0f[256] = {
	[0x60] = v_punpcklbw,
	[0x61] = v_punpcklwd,
	[0x62] = v_punpckldq,
	[0x63] = v_packsswb,
	[0x64] = v_pcmpgtb,
	[0x65] = v_pcmpgtw,
	[0x66] = v_pcmpgtd,
	[0x67] = v_packuswb,
	[0x68] = v_punpckhbw,
	[0x69] = v_punpckhwd,
	[0x6a] = v_punpckhdq,
	[0x6b] = v_packssdw,
	[0x6c] = v_punpcklqdq,
	[0x6d] = v_punpckhqdq,
	[0x74] = v_pcmpeqb,
	[0x75] = v_pcmpeqw,
	[0x76] = v_pcmpeqd,
	[0xd1] = v_psrlw,
	[0xd2] = v_psrld,
	[0xd3] = v_psrlq,
	[0xd4] = v_paddq,
	[0xd5] = v_pmullw,
	[0xd8] = v_psubusb,
	[0xd9] = v_psubusw,
	[0xda] = v_pminub,
	[0xdb] = v_pand,
	[0xdc] = v_paddusb,
	[0xdd] = v_paddusw,
	[0xde] = v_pmaxub,
	[0xdf] = v_pandn,
	[0xe0] = v_pavgb,
	[0xe1] = v_psraw,
	[0xe2] = v_psrad,
	[0xe3] = v_pavgw,
	[0xe4] = v_pmulhuw,
	[0xe5] = v_pmulhw,
	[0xe8] = v_psubsb,
	[0xe9] = v_psubsw,
	[0xea] = v_pminsw,
	[0xeb] = v_por,
	[0xec] = v_paddsb,
	[0xed] = v_paddsw,
	[0xee] = v_pmaxsw,
	[0xef] = v_pxor,
	[0xf1] = v_psllw,
	[0xf2] = v_pslld,
	[0xf3] = v_psllq,
	[0xf4] = v_pmuludq,
	[0xf5] = v_pmaddwd,
	[0xf6] = v_psadbw,
	[0xf8] = v_psubb,
	[0xf9] = v_psubw,
	[0xfa] = v_psubd,
	[0xfb] = v_psubq,
	[0xfc] = v_paddb,
	[0xfd] = v_paddw,
	[0xfe] = v_paddd,
};

static const vop_fn tab_0f38[256] = {
	[0x00] = v_pshufb,
	[0x01] = v_phaddw,
	[0x02] = v_phaddd,
	[0x03] = v_phaddsw,
	[0x04] = v_pmaddubsw,
	[0x05] = v_phsubw,
	[0x06] = v_phsubd,
	[0x07] = v_phsubsw,
	[0x08] = v_psignb,
	[0x09] = v_psignw,
	[0x0a] = v_psignd,
	[0x0b] = v_pmulhrsw,
	[0x1c] = v_pabsb,
	[0x1d] = v_pabsw,
	[0x1e] = v_pabsd,
};

/* r = op(reg, rm) for the mm (no prefix) or xmm (66) form. */
static void exec_vop(struct cpu *cpu, const struct insn *in)
{
	vop_fn fn = (in->map == MAP_0F ? tab_0f : tab_0f38)[in->op];
	union vec a, b, r;
	if (in->mandatory == MP_66) {
		fpu_check_sse(cpu);
		xsrc(cpu, in, &b);
		memcpy(&a, &cpu->fpu.xmm[in->reg], 16);
		r = a;
		fn(&r, &a, &b, 16);
		memcpy(&cpu->fpu.xmm[in->reg], &r, 16);
		return;
	}
	fpu_check_mmx(cpu);
	b.q[0] = mmx_src(cpu, in);
	a.q[0] = mmx_get(cpu, in->reg);
	r = a;
	fn(&r, &a, &b, 8);
	mmx_set(cpu, in->reg, r.q[0]);
}

/* 0F 71/72/73: shifts of the rm register by an immediate. */
static void exec_shift_imm(struct cpu *cpu, const struct insn *in)
{
	static const vop_fn grp[3][8] = {
		{ [2] = v_psrlw, [4] = v_psraw, [6] = v_psllw },
		{ [2] = v_psrld, [4] = v_psrad, [6] = v_pslld },
		{ [2] = v_psrlq, [6] = v_psllq },
	};
	unsigned r = in->reg & 7;
	bool x = in->mandatory == MP_66;
	bool dq = x && in->op == 0x73 && (r == 3 || r == 7); /* psrldq / pslldq */
	vop_fn fn = grp[in->op - 0x71][r];
	if (in->mod != 3 || (!fn && !dq))
		cpu_fault(cpu, EXC_UD, 0);
	union vec a, b, res;
	memset(&b, 0, sizeof(b));
	b.q[0] = (uint8_t)in->imm;
	if (x) {
		fpu_check_sse(cpu);
		memcpy(&a, &cpu->fpu.xmm[in->rm], 16);
		if (dq) {
			unsigned k = (uint8_t)in->imm;
			memset(&res, 0, sizeof(res));
			for (unsigned i = 0; i < 16; i++) {
				if (r == 3 && i + k < 16)
					res.b[i] = a.b[i + k];
				if (r == 7 && i >= k)
					res.b[i] = a.b[i - k];
			}
		} else {
			res = a;
			fn(&res, &a, &b, 16);
		}
		memcpy(&cpu->fpu.xmm[in->rm], &res, 16);
		return;
	}
	fpu_check_mmx(cpu);
	fpu_mmx_enter(cpu);
	a.q[0] = mmx_get(cpu, in->rm);
	res = a;
	fn(&res, &a, &b, 8);
	mmx_set(cpu, in->rm, res.q[0]);
}

/* 0F 3A 0F: PALIGNR. */
static void exec_palignr(struct cpu *cpu, const struct insn *in)
{
	union vec a, b;
	unsigned n, k = (uint8_t)in->imm;
	if (in->mandatory == MP_66) {
		fpu_check_sse(cpu);
		xsrc(cpu, in, &b);
		memcpy(&a, &cpu->fpu.xmm[in->reg], 16);
		n = 16;
	} else {
		fpu_check_mmx(cpu);
		b.q[0] = mmx_src(cpu, in);
		a.q[0] = mmx_get(cpu, in->reg);
		n = 8;
	}
	uint8_t cat[32];
	memcpy(cat, b.b, n);
	memcpy(cat + n, a.b, n);
	union vec r;
	memset(&r, 0, sizeof(r));
	for (unsigned i = 0; i < n; i++)
		if (k + i < 2 * n)
			r.b[i] = cat[k + i];
	if (n == 16)
		memcpy(&cpu->fpu.xmm[in->reg], &r, 16);
	else
		mmx_set(cpu, in->reg, r.q[0]);
}

/* 0F 70: PSHUFW (mm), PSHUFD (66), PSHUFHW (F3), PSHUFLW (F2). */
static void exec_pshuf(struct cpu *cpu, const struct insn *in)
{
	unsigned imm = (uint8_t)in->imm;
	union vec s, r;
	if (in->mandatory == MP_NONE) {
		fpu_check_mmx(cpu);
		s.q[0] = mmx_src(cpu, in);
		for (unsigned i = 0; i < 4; i++)
			r.w[i] = s.w[(imm >> (2 * i)) & 3];
		mmx_set(cpu, in->reg, r.q[0]);
		return;
	}
	fpu_check_sse(cpu);
	xsrc(cpu, in, &s);
	r = s;
	switch (in->mandatory) {
	case MP_66:
		for (unsigned i = 0; i < 4; i++)
			r.d[i] = s.d[(imm >> (2 * i)) & 3];
		break;
	case MP_F3:
		for (unsigned i = 0; i < 4; i++)
			r.w[4 + i] = s.w[4 + ((imm >> (2 * i)) & 3)];
		break;
	case MP_F2:
		for (unsigned i = 0; i < 4; i++)
			r.w[i] = s.w[(imm >> (2 * i)) & 3];
		break;
	}
	memcpy(&cpu->fpu.xmm[in->reg], &r, 16);
}

/* 0F C4: PINSRW mm/xmm, r32/m16, imm8. */
static void exec_pinsrw(struct cpu *cpu, const struct insn *in)
{
	bool x = in->mandatory == MP_66;
	if (x)
		fpu_check_sse(cpu);
	else
		fpu_check_mmx(cpu);
	uint16_t v = in->mod == 3 ? (uint16_t)cpu->gpr[in->rm]
				  : cpu_read16(cpu, in->ea_seg, insn_ea(cpu, in));
	unsigned sel = (uint8_t)in->imm;
	if (x) {
		cpu->fpu.xmm[in->reg].w[sel & 7] = v;
		return;
	}
	fpu_mmx_enter(cpu);
	union vec r;
	r.q[0] = mmx_get(cpu, in->reg);
	r.w[sel & 3] = v;
	mmx_set(cpu, in->reg, r.q[0]);
}

/* 0F C5: PEXTRW r32, mm/xmm, imm8 (register source only). */
static void exec_pextrw(struct cpu *cpu, const struct insn *in)
{
	if (in->mod != 3)
		cpu_fault(cpu, EXC_UD, 0);
	unsigned sel = (uint8_t)in->imm;
	uint16_t v;
	if (in->mandatory == MP_66) {
		fpu_check_sse(cpu);
		v = cpu->fpu.xmm[in->rm].w[sel & 7];
	} else {
		fpu_check_mmx(cpu);
		fpu_mmx_enter(cpu);
		union vec s;
		s.q[0] = mmx_get(cpu, in->rm);
		v = s.w[sel & 3];
	}
	cpu->gpr[in->reg] = v;
}

/* 0F D7: PMOVMSKB r32, mm/xmm. */
static void exec_pmovmskb(struct cpu *cpu, const struct insn *in)
{
	if (in->mod != 3)
		cpu_fault(cpu, EXC_UD, 0);
	union vec s;
	unsigned n;
	if (in->mandatory == MP_66) {
		fpu_check_sse(cpu);
		memcpy(&s, &cpu->fpu.xmm[in->rm], 16);
		n = 16;
	} else {
		fpu_check_mmx(cpu);
		fpu_mmx_enter(cpu);
		s.q[0] = mmx_get(cpu, in->rm);
		n = 8;
	}
	uint32_t m = 0;
	for (unsigned i = 0; i < n; i++)
		m |= (uint32_t)(s.b[i] >> 7) << i;
	cpu->gpr[in->reg] = m;
}

/* 0F F7: MASKMOVQ / MASKMOVDQU: bytes of reg selected by rm's top bits
 * go to DS:rDI (segment override allowed). */
static void exec_maskmov(struct cpu *cpu, const struct insn *in)
{
	if (in->mod != 3)
		cpu_fault(cpu, EXC_UD, 0);
	union vec d, m;
	unsigned n;
	if (in->mandatory == MP_66) {
		fpu_check_sse(cpu);
		memcpy(&d, &cpu->fpu.xmm[in->reg], 16);
		memcpy(&m, &cpu->fpu.xmm[in->rm], 16);
		n = 16;
	} else {
		fpu_check_mmx(cpu);
		fpu_mmx_enter(cpu);
		d.q[0] = mmx_get(cpu, in->reg);
		m.q[0] = mmx_get(cpu, in->rm);
		n = 8;
	}
	uint64_t addr = cpu->gpr[R_RDI];
	if (in->adsize == 4)
		addr = (uint32_t)addr;
	else if (in->adsize == 2)
		addr = (uint16_t)addr;
	int seg = in->seg == SEG_NONE ? SEG_DS : in->seg;
	uint64_t amask = in->adsize == 8 ? ~0ULL : in->adsize == 4 ? 0xffffffffULL : 0xffffULL;
	for (unsigned i = 0; i < n; i++)
		if (m.b[i] & 0x80)
			cpu_write8(cpu, seg, (addr + i) & amask, d.b[i]);
}

static void reg2(insn_handler h, unsigned map, unsigned op, bool mmx, bool xmm)
{
	if (mmx)
		cpu_dispatch[map][op][MP_NONE] = h;
	if (xmm)
		cpu_dispatch[map][op][MP_66] = h;
}

void sse_int_register(void)
{
	for (unsigned op = 0; op < 256; op++) {
		/* 0F 6C/6D (PUNPCKxQDQ) have no MMX form. */
		if (tab_0f[op])
			reg2(exec_vop, MAP_0F, op, op != 0x6c && op != 0x6d, true);
		if (tab_0f38[op])
			reg2(exec_vop, MAP_0F38, op, true, true);
	}
	for (unsigned op = 0x71; op <= 0x73; op++)
		reg2(exec_shift_imm, MAP_0F, op, true, true);
	reg2(exec_palignr, MAP_0F3A, 0x0f, true, true);
	for (unsigned p = 0; p < 4; p++)
		cpu_dispatch[MAP_0F][0x70][p] = exec_pshuf;
	reg2(exec_pinsrw, MAP_0F, 0xc4, true, true);
	reg2(exec_pextrw, MAP_0F, 0xc5, true, true);
	reg2(exec_pmovmskb, MAP_0F, 0xd7, true, true);
	reg2(exec_maskmov, MAP_0F, 0xf7, true, true);
}
