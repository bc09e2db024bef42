/*
 * SSE4.2: the string compares PCMPESTRI/PCMPESTRM/PCMPISTRI/PCMPISTRM
 * (66 0F 3A 60..63) and CRC32 (F2 0F 38 F0/F1). PCMPGTQ is in exec_sse4.c.
 */
#include <string.h>

#include "cpu/fpu.h"
#include "cpu/insn.h"
#include "cpu/mem.h"

/* Element i of a string: bytes or words, signed or not (imm8[1:0]). */
static int32_t elem(const union cpu_xmm *v, unsigned fmt, unsigned i)
{
	switch (fmt & 3) {
	case 0: return v->b[i];
	case 1: return v->w[i];
	case 2: return (int8_t)v->b[i];
	default: return (int16_t)v->w[i];
	}
}

static unsigned implicit_len(const union cpu_xmm *v, unsigned fmt, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (elem(v, fmt, i) == 0)
			return i;
	return n;
}

static unsigned explicit_len(const struct cpu *cpu, const struct insn *in, unsigned r, unsigned n)
{
	int64_t v = (in->rex & 8) ? (int64_t)cpu->gpr[r] : (int64_t)(int32_t)cpu->gpr[r];
	uint64_t a = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
	return a > n ? n : (unsigned)a;
}

/* IntRes2 of the SDM's pseudo-code: bit j for element j. */
static uint32_t compare(const union cpu_xmm *a, const union cpu_xmm *b, unsigned imm,
			unsigned la, unsigned lb, unsigned n)
{
	unsigned fmt = imm & 3, agg = (imm >> 2) & 3;
	uint32_t res = 0;
	switch (agg) {
	case 0: /* equal any */
		for (unsigned j = 0; j < lb; j++)
			for (unsigned i = 0; i < la; i++)
				if (elem(a, fmt, i) == elem(b, fmt, j)) {
					res |= 1u << j;
					break;
				}
		break;
	case 1: /* ranges: pairs of a */
		for (unsigned j = 0; j < lb; j++)
			for (unsigned i = 0; i + 1 < la; i += 2) {
				int32_t x = elem(b, fmt, j);
				if (x >= elem(a, fmt, i) && x <= elem(a, fmt, i + 1)) {
					res |= 1u << j;
					break;
				}
			}
		break;
	case 2: /* equal each */
		for (unsigned i = 0; i < n; i++) {
			bool va = i < la, vb = i < lb;
			bool m = va && vb ? elem(a, fmt, i) == elem(b, fmt, i) : !va && !vb;
			if (m)
				res |= 1u << i;
		}
		break;
	default: /* equal ordered: a as a substring starting at b[j] */
		for (unsigned j = 0; j < n; j++) {
			bool m = true;
			for (unsigned k = 0; k + j < n && m; k++) {
				if (k >= la)
					break; /* a ended: match */
				if (j + k >= lb)
					m = false;
				else
					m = elem(a, fmt, k) == elem(b, fmt, j + k);
			}
			if (m)
				res |= 1u << j;
		}
		break;
	}
	uint32_t all = (1u << n) - 1;
	switch ((imm >> 4) & 3) {
	case 1: res ^= all; break;
	case 3: res ^= (1u << lb) - 1; break;
	}
	return res & all;
}

static void exec_pcmpstr(struct cpu *cpu, const struct insn *in)
{
	fpu_check_sse(cpu);
	unsigned imm = (uint8_t)in->imm, n = (imm & 1) ? 8 : 16;
	union cpu_xmm b, a = cpu->fpu.xmm[in->reg];
	sse_src(cpu, in, &b, 16, false);
	bool explicit = in->op <= 0x61, index = in->op & 1;
	unsigned la, lb;
	if (explicit) {
		la = explicit_len(cpu, in, R_RAX, n);
		lb = explicit_len(cpu, in, R_RDX, n);
	} else {
		la = implicit_len(&a, imm, n);
		lb = implicit_len(&b, imm, n);
	}
	uint32_t res = compare(&a, &b, imm, la, lb, n);
	if (index) {
		unsigned idx = n;
		if (res)
			idx = (imm & 0x40) ? 31u - (unsigned)__builtin_clz(res)
					   : (unsigned)__builtin_ctz(res);
		cpu->gpr[R_RCX] = idx;
	} else {
		union cpu_xmm m;
		memset(&m, 0, sizeof(m));
		if (!(imm & 0x40))
			m.d[0] = res;
		else
			for (unsigned i = 0; i < n; i++)
				if (res >> i & 1) {
					if (n == 16)
						m.b[i] = 0xff;
					else
						m.w[i] = 0xffff;
				}
		cpu->fpu.xmm[0] = m;
	}
	uint64_t fl = cpu_get_rflags(cpu) & ~FL_ARITH;
	if (res)
		fl |= FL_CF;
	if (lb < n)
		fl |= FL_ZF;
	if (la < n)
		fl |= FL_SF;
	if (res & 1)
		fl |= FL_OF;
	cpu_set_rflags(cpu, fl);
}

/* CRC-32C (Castagnoli, reflected), no pre/post inversion: what CRC32 does. */
static uint32_t crc32c(uint32_t crc, uint64_t v, unsigned bytes)
{
	for (unsigned i = 0; i < bytes; i++) {
		crc ^= (uint8_t)(v >> (8 * i));
		for (unsigned k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0x82f63b78u & (0u - (crc & 1)));
	}
	return crc;
}

/* F2 0F 38 F0: CRC32 r, r/m8; F1: CRC32 r, r/m16/32/64. No SSE state. */
static void exec_crc32(struct cpu *cpu, const struct insn *in)
{
	unsigned size = in->op == 0xf0 ? 1 : in->opsize;
	uint64_t v;
	if (in->mod == 3) {
		v = cpu->gpr[in->rm];
		/* Byte registers: AH..BH without REX. */
		if (size == 1 && !(in->pfx & PFX_REX) && in->rm >= 4 && in->rm < 8)
			v = cpu->gpr[in->rm - 4] >> 8;
	} else {
		v = cpu_read_sz(cpu, in->ea_seg, insn_ea(cpu, in), size);
	}
	cpu->gpr[in->reg] = crc32c((uint32_t)cpu->gpr[in->reg], v, size);
}

void sse42_register(void)
{
	for (unsigned op = 0x60; op <= 0x63; op++)
		cpu_dispatch[MAP_0F3A][op][MP_66] = exec_pcmpstr;
	cpu_dispatch[MAP_0F38][0xf0][MP_F2] = exec_crc32;
	cpu_dispatch[MAP_0F38][0xf1][MP_F2] = exec_crc32;
}
