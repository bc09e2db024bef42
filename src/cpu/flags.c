/* Lazy arithmetic flags: working them out from the recorded operation. */
#include "cpu/flags.h"

uint64_t flags_arith(const struct cpu *cpu)
{
	unsigned size = cpu->lf_size, bits = size * 8;
	uint64_t s1 = cpu->lf_src1, s2 = cpu->lf_src2, res = cpu->lf_res;
	uint64_t m = sz_mask(size), sign = sz_sign(size);
	uint64_t f, c;
	bool cf = false, of = false, af = false;

	switch (cpu->lf_op) {
	case LF_NONE:
		return cpu->rflags & FL_ARITH;
	case LF_ADD:
		cf = res < s1;
		of = ((s1 ^ res) & (s2 ^ res)) & sign;
		af = (s1 ^ s2 ^ res) & 0x10;
		break;
	case LF_ADC:
		c = (res - s1 - s2) & m;
		cf = c ? res <= s1 : res < s1;
		of = ((s1 ^ res) & (s2 ^ res)) & sign;
		af = (s1 ^ s2 ^ res) & 0x10;
		break;
	case LF_SUB:
		cf = s1 < s2;
		of = ((s1 ^ s2) & (s1 ^ res)) & sign;
		af = (s1 ^ s2 ^ res) & 0x10;
		break;
	case LF_SBB:
		c = (s1 - s2 - res) & m;
		cf = c ? s1 <= s2 : s1 < s2;
		of = ((s1 ^ s2) & (s1 ^ res)) & sign;
		af = (s1 ^ s2 ^ res) & 0x10;
		break;
	case LF_LOGIC:
		break;
	case LF_INC:
		cf = cpu->rflags & FL_CF;
		of = res == sign;
		af = (res & 0xf) == 0;
		break;
	case LF_DEC:
		cf = cpu->rflags & FL_CF;
		of = res == sign - 1;
		af = (res & 0xf) == 0xf;
		break;
	case LF_SHL:
		cf = s2 <= bits ? (s1 >> (bits - s2)) & 1 : 0;
		of = cf ^ !!(res & sign);
		break;
	case LF_SHR:
		cf = (s1 >> (s2 - 1)) & 1;
		of = s2 == 1 ? !!(s1 & sign) : false;
		break;
	case LF_SAR:
		cf = (sz_sext(s1, size) >> (s2 - 1 > 63 ? 63 : s2 - 1)) & 1;
		break;
	}
	f = flags_szp(res, size);
	if (cf)
		f |= FL_CF;
	if (of)
		f |= FL_OF;
	if (af)
		f |= FL_AF;
	return f;
}

uint64_t cpu_get_rflags(struct cpu *cpu)
{
	flags_materialize(cpu);
	return cpu->rflags | 2;
}

void cpu_set_rflags(struct cpu *cpu, uint64_t rflags)
{
	cpu->lf_op = LF_NONE;
	cpu->rflags = rflags | 2;
}
