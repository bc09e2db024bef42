/*
 * Integer arithmetic and logic: add..cmp, inc/dec, neg/not, test, mul/div,
 * shifts and rotates, bit tests and scans, xchg/xadd/cmpxchg, and the
 * locked read-modify-write they share.
 */
#include <string.h>
#include <sys/random.h>

#include "cpu/exec_int.h"

/* ---- locked and plain memory read-modify-write ---- */

#define CAS_LOOP(T)                                                                        \
	do {                                                                               \
		T *q = p;                                                                  \
		T o = __atomic_load_n(q, __ATOMIC_RELAXED), n;                             \
		do                                                                         \
			n = (T)rmw_calc(op, o, s, c, m);                                   \
		while (!__atomic_compare_exchange_n(q, &o, n, false, __ATOMIC_SEQ_CST,    \
						    __ATOMIC_RELAXED));                    \
		d = o;                                                                     \
		r = n;                                                                     \
	} while (0)

/*
 * Before cpu_lock_slow(): raise now any fault the locked access would (a
 * fault under the lock would leave it held). Both ends are checked for
 * writing; MMIO and code pages just give no pointer.
 */
static void lock_probe(struct cpu *cpu, const struct insn *in, uint64_t ea, unsigned size)
{
	uint64_t last = ea + size - 1;
	last = in->adsize == 8 ? last : in->adsize == 4 ? (uint32_t)last : (uint16_t)last;
	(void)cpu_rmw_ptr(cpu, in->ea_seg, ea, 1);
	(void)cpu_rmw_ptr(cpu, in->ea_seg, last, 1);
}

uint64_t rmw_mem(struct cpu *cpu, const struct insn *in, uint64_t ea, unsigned size, unsigned op,
		 uint64_t s, bool c, uint64_t *res)
{
	uint64_t m = sz_mask(size), d, r;

	if ((in->pfx & PFX_LOCK) || op == RMW_XCHG) {
		void *p = cpu_rmw_ptr(cpu, in->ea_seg, ea, size);
		if (p) {
			switch (size) {
			case 1: CAS_LOOP(uint8_t); break;
			case 2: CAS_LOOP(uint16_t); break;
			case 4: CAS_LOOP(uint32_t); break;
			default: CAS_LOOP(uint64_t); break;
			}
			*res = r;
			return d;
		}
		/* MMIO, code page or across pages: under the slow lock. */
		lock_probe(cpu, in, ea, size);
		cpu_lock_slow(cpu);
		d = cpu_read_sz(cpu, in->ea_seg, ea, size);
		r = rmw_calc(op, d, s, c, m);
		cpu_write_sz(cpu, in->ea_seg, ea, r, size);
		cpu_unlock_slow(cpu);
		*res = r;
		return d;
	}
	void *p = fast_w(cpu, in->ea_seg, ea, size);
	if (p) {
		d = load_sz(p, size);
		r = rmw_calc(op, d, s, c, m);
		store_sz(p, r, size);
	} else {
		d = cpu_read_sz(cpu, in->ea_seg, ea, size);
		r = rmw_calc(op, d, s, c, m);
		cpu_write_sz(cpu, in->ea_seg, ea, r, size);
	}
	*res = r;
	return d;
}

/* ---- add, or, adc, sbb, and, sub, xor, cmp ---- */

static const uint8_t alu_lf[8] = { LF_ADD, LF_LOGIC, LF_ADC, LF_SBB, LF_LOGIC, LF_SUB, LF_LOGIC, LF_SUB };

/* r/m (dest) op= src */
static inline void alu_rm(struct cpu *cpu, const struct insn *in, unsigned aop, unsigned size,
			  uint64_t s)
{
	uint64_t m = sz_mask(size), d, r;
	bool c = (aop == RMW_ADC || aop == RMW_SBB) && flag_cf(cpu);

	s &= m;
	if (in->mod == 3) {
		d = greg_read(cpu, in, in->rm, size);
		r = rmw_calc(aop, d, s, c, m);
		if (aop != RMW_CMP)
			greg_write(cpu, in, in->rm, r, size);
	} else if (aop == RMW_CMP) {
		d = mem_read(cpu, in->ea_seg, ea_of(cpu, in), size);
		r = (d - s) & m;
	} else {
		d = rmw_mem(cpu, in, ea_of(cpu, in), size, aop, s, c, &r);
	}
	flags_set(cpu, alu_lf[aop], size, d, s, r);
}

HANDLER(h_alu_eg) /* 00 01 08 09 ... Eb,Gb / Ev,Gv */
{
	unsigned size = size_w(in);
	alu_rm(cpu, in, in->op >> 3, size, greg_read(cpu, in, in->reg, size));
}

HANDLER(h_alu_ge) /* 02 03 ... Gb,Eb / Gv,Ev */
{
	unsigned size = size_w(in), aop = in->op >> 3;
	uint64_t m = sz_mask(size);
	uint64_t d = greg_read(cpu, in, in->reg, size), s = rm_read(cpu, in, size);
	bool c = (aop == RMW_ADC || aop == RMW_SBB) && flag_cf(cpu);
	uint64_t r = rmw_calc(aop, d, s, c, m);
	if (aop != RMW_CMP)
		greg_write(cpu, in, in->reg, r, size);
	flags_set(cpu, alu_lf[aop], size, d, s, r);
}

HANDLER(h_alu_ai) /* 04 05 ... AL,ib / eAX,iz */
{
	unsigned size = size_w(in), aop = in->op >> 3;
	uint64_t m = sz_mask(size);
	uint64_t d = reg_read(cpu, R_RAX, size), s = in->imm & m;
	bool c = (aop == RMW_ADC || aop == RMW_SBB) && flag_cf(cpu);
	uint64_t r = rmw_calc(aop, d, s, c, m);
	if (aop != RMW_CMP)
		reg_write(cpu, R_RAX, r, size);
	flags_set(cpu, alu_lf[aop], size, d, s, r);
}

HANDLER(h_grp1) /* 80 81 82 83 */
{
	unsigned size = (in->op == 0x81 || in->op == 0x83) ? in->opsize : 1;
	alu_rm(cpu, in, in->reg & 7, size, in->imm);
}

/* ---- test, inc/dec, not/neg ---- */

HANDLER(h_test_eg) /* 84 85 */
{
	unsigned size = size_w(in);
	uint64_t r = rm_read(cpu, in, size) & greg_read(cpu, in, in->reg, size);
	flags_set(cpu, LF_LOGIC, size, r, 0, r);
}

HANDLER(h_test_ai) /* a8 a9 */
{
	unsigned size = size_w(in);
	uint64_t r = reg_read(cpu, R_RAX, size) & in->imm & sz_mask(size);
	flags_set(cpu, LF_LOGIC, size, r, 0, r);
}

/* inc/dec keep CF: it moves to rflags before the lazy state changes. */
static inline void incdec_flags(struct cpu *cpu, bool dec, unsigned size, uint64_t d, uint64_t r)
{
	bool cf = flag_cf(cpu);
	cpu->rflags = (cpu->rflags & ~FL_CF) | (cf ? FL_CF : 0);
	flags_set(cpu, dec ? LF_DEC : LF_INC, size, d, 1, r);
}

HANDLER(h_incdec_r) /* 40..4f (16/32-bit code) */
{
	unsigned size = in->opsize, r = in->op & 7;
	bool dec = in->op & 8;
	uint64_t d = reg_read(cpu, r, size), res = (dec ? d - 1 : d + 1) & sz_mask(size);
	reg_write(cpu, r, res, size);
	incdec_flags(cpu, dec, size, d, res);
}

static void incdec_rm(struct cpu *cpu, const struct insn *in, unsigned size, bool dec)
{
	uint64_t d, r;
	if (in->mod == 3) {
		d = greg_read(cpu, in, in->rm, size);
		r = (dec ? d - 1 : d + 1) & sz_mask(size);
		greg_write(cpu, in, in->rm, r, size);
	} else {
		d = rmw_mem(cpu, in, ea_of(cpu, in), size, dec ? RMW_DEC : RMW_INC, 0, false, &r);
	}
	incdec_flags(cpu, dec, size, d, r);
}

static void exec_mul(struct cpu *cpu, const struct insn *in, unsigned size, bool sign);
static void exec_div(struct cpu *cpu, const struct insn *in, unsigned size, bool sign);

HANDLER(h_grp3) /* f6 f7 */
{
	unsigned size = size_w(in);
	uint64_t m = sz_mask(size), d, r;

	switch (in->reg & 7) {
	case 0:
	case 1: /* test */
		r = rm_read(cpu, in, size) & in->imm & m;
		flags_set(cpu, LF_LOGIC, size, r, 0, r);
		break;
	case 2: /* not: no flags */
		if (in->mod == 3)
			greg_write(cpu, in, in->rm, ~greg_read(cpu, in, in->rm, size), size);
		else
			rmw_mem(cpu, in, ea_of(cpu, in), size, RMW_NOT, 0, false, &r);
		break;
	case 3: /* neg: flags of 0 - d */
		if (in->mod == 3) {
			d = greg_read(cpu, in, in->rm, size);
			r = -d & m;
			greg_write(cpu, in, in->rm, r, size);
		} else {
			d = rmw_mem(cpu, in, ea_of(cpu, in), size, RMW_NEG, 0, false, &r);
		}
		flags_set(cpu, LF_SUB, size, 0, d, r);
		break;
	case 4: exec_mul(cpu, in, size, false); break;
	case 5: exec_mul(cpu, in, size, true); break;
	case 6: exec_div(cpu, in, size, false); break;
	case 7: exec_div(cpu, in, size, true); break;
	}
}

HANDLER(h_grp4) /* fe: inc/dec Eb */
{
	unsigned r = in->reg & 7;
	if (r > 1)
		cpu_fault(cpu, EXC_UD, 0);
	incdec_rm(cpu, in, 1, r == 1);
}

void exec_grp5_incdec(struct cpu *cpu, const struct insn *in)
{
	incdec_rm(cpu, in, in->opsize, (in->reg & 7) == 1);
}

/* ---- multiply and divide ---- */

/* CF = OF = the high half matters; SF/ZF/PF from the low half, AF clear
 * (undefined in the SDM). */
static void mul_flags(struct cpu *cpu, bool ovf, uint64_t lo, unsigned size)
{
	uint64_t f = flags_szp(lo, size);
	if (ovf)
		f |= FL_CF | FL_OF;
	flags_set_all(cpu, f);
}

static void exec_mul(struct cpu *cpu, const struct insn *in, unsigned size, bool sign)
{
	uint64_t s = rm_read(cpu, in, size), a = reg_read(cpu, R_RAX, size);
	uint64_t lo, hi;
	bool ovf;

	if (size == 8) {
		if (sign) {
			__int128 p = (__int128)(int64_t)a * (int64_t)s;
			lo = (uint64_t)p;
			hi = (uint64_t)(p >> 64);
			ovf = p != (__int128)(int64_t)lo;
		} else {
			unsigned __int128 p = (unsigned __int128)a * s;
			lo = (uint64_t)p;
			hi = (uint64_t)(p >> 64);
			ovf = hi != 0;
		}
	} else {
		unsigned bits = size * 8;
		uint64_t p;
		if (sign) {
			int64_t sp = sz_sext(a, size) * sz_sext(s, size);
			p = (uint64_t)sp;
			ovf = sp != sz_sext((uint64_t)sp, size);
		} else {
			p = a * s;
			ovf = (p >> bits) != 0;
		}
		lo = p & sz_mask(size);
		hi = (p >> bits) & sz_mask(size);
	}
	if (size == 1) {
		reg_write(cpu, R_RAX, lo | (hi << 8), 2);
	} else {
		reg_write(cpu, R_RAX, lo, size);
		reg_write(cpu, R_RDX, hi, size);
	}
	mul_flags(cpu, ovf, lo, size);
}

static void exec_div(struct cpu *cpu, const struct insn *in, unsigned size, bool sign)
{
	uint64_t s = rm_read(cpu, in, size);
	uint64_t q, r;

	if (s == 0)
		cpu_fault(cpu, EXC_DE, 0);
	if (size == 8) {
		unsigned __int128 n = ((unsigned __int128)cpu->gpr[R_RDX] << 64) | cpu->gpr[R_RAX];
		if (sign) {
			__int128 sn = (__int128)n, sd = (int64_t)s;
			if (sd == -1 && n == (unsigned __int128)1 << 127) /* -2^127 / -1 */
				cpu_fault(cpu, EXC_DE, 0);
			__int128 sq = sn / sd, sr = sn % sd;
			if (sq != (int64_t)sq)
				cpu_fault(cpu, EXC_DE, 0);
			q = (uint64_t)sq;
			r = (uint64_t)sr;
		} else {
			unsigned __int128 uq = n / s;
			if (uq >> 64)
				cpu_fault(cpu, EXC_DE, 0);
			q = (uint64_t)uq;
			r = (uint64_t)(n % s);
		}
	} else {
		unsigned bits = size * 8;
		uint64_t n = size == 1 ? reg_read(cpu, R_RAX, 2)
				       : (reg_read(cpu, R_RDX, size) << bits) | reg_read(cpu, R_RAX, size);
		if (sign) {
			int64_t sn = sz_sext(n, size * 2), sd = sz_sext(s, size);
			if (sd == -1 && sn == INT64_MIN)
				cpu_fault(cpu, EXC_DE, 0);
			int64_t sq = sn / sd, sr = sn % sd;
			if (sq != sz_sext((uint64_t)sq, size))
				cpu_fault(cpu, EXC_DE, 0);
			q = (uint64_t)sq & sz_mask(size);
			r = (uint64_t)sr & sz_mask(size);
		} else {
			q = n / s;
			r = n % s;
			if (q >> bits)
				cpu_fault(cpu, EXC_DE, 0);
		}
	}
	if (size == 1) {
		reg_write(cpu, R_RAX, (q & 0xff) | ((r & 0xff) << 8), 2);
	} else {
		reg_write(cpu, R_RAX, q, size);
		reg_write(cpu, R_RDX, r, size);
	}
}

/* imul Gv, Ev, imm / imul Gv, Ev */
static void imul_to_reg(struct cpu *cpu, const struct insn *in, uint64_t a, uint64_t b)
{
	unsigned size = in->opsize;
	uint64_t lo;
	bool ovf;
	if (size == 8) {
		__int128 p = (__int128)(int64_t)a * (int64_t)b;
		lo = (uint64_t)p;
		ovf = p != (__int128)(int64_t)lo;
	} else {
		int64_t p = sz_sext(a, size) * sz_sext(b, size);
		lo = (uint64_t)p & sz_mask(size);
		ovf = p != sz_sext(lo, size);
	}
	reg_write(cpu, in->reg, lo, size);
	mul_flags(cpu, ovf, lo, size);
}

HANDLER(h_imul_imm) /* 69 6b */
{
	imul_to_reg(cpu, in, rm_read(cpu, in, in->opsize), in->imm);
}

HANDLER(h_imul_gv) /* 0f af */
{
	imul_to_reg(cpu, in, reg_read(cpu, in->reg, in->opsize), rm_read(cpu, in, in->opsize));
}

/* ---- shifts and rotates ---- */

static void shift_op(struct cpu *cpu, const struct insn *in, unsigned size, unsigned count)
{
	unsigned op = in->reg & 7, bits = size * 8;
	uint64_t m = sz_mask(size), sign = sz_sign(size), d, r = 0, ea = 0;

	count &= size == 8 ? 63 : 31;
	if (in->mod == 3) {
		d = greg_read(cpu, in, in->rm, size);
	} else {
		ea = ea_of(cpu, in);
		d = cpu_read_sz(cpu, in->ea_seg, ea, size);
	}
	if (count == 0) {
		if (in->mod == 3 && size == 4) /* still written: zero-extended */
			greg_write(cpu, in, in->rm, d, 4);
		return;
	}

	bool cf = false, of = false, lazy = true;
	unsigned lf = LF_SHL;
	switch (op) {
	case 0: { /* rol */
		unsigned c = count & (bits - 1);
		r = c ? ((d << c) | (d >> (bits - c))) & m : d;
		cf = r & 1;
		of = cf ^ !!(r & sign);
		lazy = false;
		break;
	}
	case 1: { /* ror */
		unsigned c = count & (bits - 1);
		r = c ? ((d >> c) | (d << (bits - c))) & m : d;
		cf = r & sign;
		of = !!(r & sign) ^ !!(r & (sign >> 1));
		lazy = false;
		break;
	}
	case 2: { /* rcl */
		unsigned c = size == 1 ? count % 9 : size == 2 ? count % 17 : count;
		bool carry = flag_cf(cpu);
		r = d;
		for (unsigned i = 0; i < c; i++) {
			bool out = r & sign;
			r = ((r << 1) | carry) & m;
			carry = out;
		}
		cf = carry;
		of = cf ^ !!(r & sign);
		lazy = false;
		break;
	}
	case 3: { /* rcr */
		unsigned c = size == 1 ? count % 9 : size == 2 ? count % 17 : count;
		bool carry = flag_cf(cpu);
		of = !!(d & sign) ^ carry;
		r = d;
		for (unsigned i = 0; i < c; i++) {
			bool out = r & 1;
			r = (r >> 1) | (carry ? sign : 0);
			carry = out;
		}
		cf = carry;
		lazy = false;
		break;
	}
	case 4:
	case 6: /* shl / sal */
		r = count < 64 ? (d << count) & m : 0;
		lf = LF_SHL;
		break;
	case 5: /* shr */
		r = d >> count;
		lf = LF_SHR;
		break;
	case 7: /* sar */
		r = (uint64_t)(sz_sext(d, size) >> count) & m;
		lf = LF_SAR;
		break;
	}
	if (in->mod == 3)
		greg_write(cpu, in, in->rm, r, size);
	else
		cpu_write_sz(cpu, in->ea_seg, ea, r, size);
	if (lazy) {
		flags_set(cpu, lf, size, d, count, r);
	} else {
		flags_materialize(cpu);
		cpu->rflags = (cpu->rflags & ~(FL_CF | FL_OF)) | (cf ? FL_CF : 0) | (of ? FL_OF : 0);
	}
}

HANDLER(h_grp2) /* c0 c1 d0 d1 d2 d3 */
{
	unsigned count;
	if (in->op >= 0xd2)
		count = (uint8_t)cpu->gpr[R_RCX];
	else if (in->op >= 0xd0)
		count = 1;
	else
		count = (uint8_t)in->imm;
	shift_op(cpu, in, size_w(in), count);
}

HANDLER(h_shld_shrd) /* 0f a4 a5 ac ad */
{
	unsigned size = in->opsize, bits = size * 8;
	unsigned count = (in->op & 1) ? (uint8_t)cpu->gpr[R_RCX] : (uint8_t)in->imm;
	bool left = in->op < 0xa8;
	uint64_t m = sz_mask(size), sign = sz_sign(size), d, s, r, ea = 0;
	bool cf;

	count &= size == 8 ? 63 : 31;
	s = reg_read(cpu, in->reg, size);
	if (in->mod == 3) {
		d = reg_read(cpu, in->rm, size);
	} else {
		ea = ea_of(cpu, in);
		d = cpu_read_sz(cpu, in->ea_seg, ea, size);
	}
	if (count == 0) {
		if (in->mod == 3 && size == 4)
			reg_write(cpu, in->rm, d, 4);
		return;
	}
	if (size == 2) {
		/* Counts above 16 shift through d:s:d, as Intel CPUs do. */
		if (left) {
			uint64_t x = (d << 48) | (s << 32) | (d << 16);
			r = (x << count) >> 48;
			cf = (x >> (64 - count)) & 1;
		} else {
			uint64_t x = d | (s << 16) | (d << 32);
			r = (x >> count) & 0xffff;
			cf = (x >> (count - 1)) & 1;
		}
	} else if (left) {
		r = ((d << count) | (s >> (bits - count))) & m;
		cf = (d >> (bits - count)) & 1;
	} else {
		r = ((d >> count) | (s << (bits - count))) & m;
		cf = (d >> (count - 1)) & 1;
	}
	if (in->mod == 3)
		reg_write(cpu, in->rm, r, size);
	else
		cpu_write_sz(cpu, in->ea_seg, ea, r, size);
	uint64_t f = flags_szp(r, size);
	if (cf)
		f |= FL_CF;
	if ((r ^ d) & sign)
		f |= FL_OF;
	flags_set_all(cpu, f);
}

/* ---- bit test, scan, count ---- */

static void bt_common(struct cpu *cpu, const struct insn *in, uint64_t off, bool reg_offset)
{
	unsigned size = in->opsize, bits = size * 8;
	unsigned kind = in->map == MAP_0F && in->op == 0xba ? (in->reg & 7) - 4 : (in->op >> 3) & 3;
	/* kind: 0 bt, 1 bts, 2 btr, 3 btc */
	static const uint8_t rmw_of[4] = { 0, RMW_BTS, RMW_BTR, RMW_BTC };
	uint64_t d, r, bit;

	if (in->mod == 3) {
		bit = 1ULL << (off & (bits - 1));
		d = reg_read(cpu, in->rm, size);
		r = rmw_calc(rmw_of[kind], d, bit, false, sz_mask(size));
		if (kind)
			reg_write(cpu, in->rm, r, size);
	} else {
		uint64_t ea = ea_of(cpu, in);
		if (reg_offset) {
			/* The offset addresses bits beyond the operand (signed). */
			int64_t so = sz_sext(off, size);
			ea += (uint64_t)((so >> (size == 8 ? 6 : size == 4 ? 5 : 4)) * (int64_t)size);
			ea = in->adsize == 8 ? ea : in->adsize == 4 ? (uint32_t)ea : (uint16_t)ea;
		}
		bit = 1ULL << (off & (bits - 1));
		if (kind == 0)
			d = cpu_read_sz(cpu, in->ea_seg, ea, size);
		else
			d = rmw_mem(cpu, in, ea, size, rmw_of[kind], bit, false, &r);
	}
	flags_put(cpu, FL_CF, (d & bit) != 0);
}

HANDLER(h_bt_reg) /* 0f a3 ab b3 bb */
{
	bt_common(cpu, in, reg_read(cpu, in->reg, in->opsize), true);
}

HANDLER(h_bt_imm) /* 0f ba /4../7 */
{
	if ((in->reg & 7) < 4)
		cpu_fault(cpu, EXC_UD, 0);
	bt_common(cpu, in, in->imm & 0xff, false);
}

HANDLER(h_bsf) /* 0f bc (no f3) */
{
	unsigned size = in->opsize;
	uint64_t s = rm_read(cpu, in, size);
	if (s == 0) {
		flags_put(cpu, FL_ZF, true);
		return;
	}
	reg_write(cpu, in->reg, (uint64_t)__builtin_ctzll(s), size);
	flags_put(cpu, FL_ZF, false);
}

HANDLER(h_bsr) /* 0f bd (no f3) */
{
	unsigned size = in->opsize;
	uint64_t s = rm_read(cpu, in, size);
	if (s == 0) {
		flags_put(cpu, FL_ZF, true);
		return;
	}
	reg_write(cpu, in->reg, (uint64_t)(63 - __builtin_clzll(s)), size);
	flags_put(cpu, FL_ZF, false);
}

HANDLER(h_tzcnt) /* f3 0f bc */
{
	unsigned size = in->opsize;
	uint64_t s = rm_read(cpu, in, size);
	uint64_t r = s ? (uint64_t)__builtin_ctzll(s) : size * 8;
	reg_write(cpu, in->reg, r, size);
	flags_materialize(cpu);
	cpu->rflags = (cpu->rflags & ~(FL_CF | FL_ZF)) | (s ? 0 : FL_CF) | (r ? 0 : FL_ZF);
}

HANDLER(h_lzcnt) /* f3 0f bd */
{
	unsigned size = in->opsize;
	uint64_t s = rm_read(cpu, in, size);
	uint64_t r = s ? (uint64_t)(__builtin_clzll(s) - (64 - size * 8)) : size * 8;
	reg_write(cpu, in->reg, r, size);
	flags_materialize(cpu);
	cpu->rflags = (cpu->rflags & ~(FL_CF | FL_ZF)) | (s ? 0 : FL_CF) | (r ? 0 : FL_ZF);
}

HANDLER(h_popcnt) /* f3 0f b8 */
{
	unsigned size = in->opsize;
	uint64_t s = rm_read(cpu, in, size);
	reg_write(cpu, in->reg, (uint64_t)__builtin_popcountll(s), size);
	flags_set_all(cpu, s ? 0 : FL_ZF);
}

HANDLER(h_bswap) /* 0f c8+r */
{
	unsigned r = in->rm;
	if (in->opsize == 8)
		cpu->gpr[r] = __builtin_bswap64(cpu->gpr[r]);
	else if (in->opsize == 4)
		cpu->gpr[r] = __builtin_bswap32((uint32_t)cpu->gpr[r]);
	else
		cpu->gpr[r] &= ~0xffffULL; /* undefined; Intel CPUs give 0 */
}

/* ---- exchange and compare ---- */

HANDLER(h_xchg_rm) /* 86 87 */
{
	unsigned size = size_w(in);
	uint64_t s = greg_read(cpu, in, in->reg, size), d, r;
	if (in->mod == 3) {
		d = greg_read(cpu, in, in->rm, size);
		greg_write(cpu, in, in->rm, s, size);
	} else {
		d = rmw_mem(cpu, in, ea_of(cpu, in), size, RMW_XCHG, s, false, &r);
	}
	greg_write(cpu, in, in->reg, d, size);
}

HANDLER(h_xchg_ax) /* 90+r; 90 without REX.B is nop (pause with f3) */
{
	unsigned r = in->rm, size = in->opsize;
	if (r == R_RAX) {
		if (in->pfx & PFX_REP) /* pause: spin-wait loops ease off the host core */
			__builtin_ia32_pause();
		return;
	}
	uint64_t a = reg_read(cpu, R_RAX, size), b = reg_read(cpu, r, size);
	reg_write(cpu, R_RAX, b, size);
	reg_write(cpu, r, a, size);
}

HANDLER(h_xadd) /* 0f c0 c1 */
{
	unsigned size = size_w(in);
	uint64_t s = greg_read(cpu, in, in->reg, size), d, r;
	if (in->mod == 3) {
		d = greg_read(cpu, in, in->rm, size);
		r = (d + s) & sz_mask(size);
		greg_write(cpu, in, in->reg, d, size);
		greg_write(cpu, in, in->rm, r, size);
	} else {
		d = rmw_mem(cpu, in, ea_of(cpu, in), size, RMW_XADD, s, false, &r);
		greg_write(cpu, in, in->reg, d, size);
	}
	flags_set(cpu, LF_ADD, size, d, s, r);
}

static bool cas_host(void *p, unsigned size, uint64_t *expected, uint64_t desired)
{
	switch (size) {
	case 1: {
		uint8_t e = (uint8_t)*expected;
		bool ok = __atomic_compare_exchange_n((uint8_t *)p, &e, (uint8_t)desired, false,
						      __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
		*expected = e;
		return ok;
	}
	case 2: {
		uint16_t e = (uint16_t)*expected;
		bool ok = __atomic_compare_exchange_n((uint16_t *)p, &e, (uint16_t)desired, false,
						      __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
		*expected = e;
		return ok;
	}
	case 4: {
		uint32_t e = (uint32_t)*expected;
		bool ok = __atomic_compare_exchange_n((uint32_t *)p, &e, (uint32_t)desired, false,
						      __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
		*expected = e;
		return ok;
	}
	default:
		return __atomic_compare_exchange_n((uint64_t *)p, expected, desired, false,
						   __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
	}
}

HANDLER(h_cmpxchg) /* 0f b0 b1 */
{
	unsigned size = size_w(in);
	uint64_t a = reg_read(cpu, R_RAX, size), s = greg_read(cpu, in, in->reg, size), d;
	bool eq;

	if (in->mod == 3) {
		d = greg_read(cpu, in, in->rm, size);
		eq = d == a;
		/* A register destination is untouched (not even zero-extended)
		 * when the comparison fails. */
		if (eq)
			greg_write(cpu, in, in->rm, s, size);
	} else {
		uint64_t ea = ea_of(cpu, in);
		void *p = (in->pfx & PFX_LOCK) ? cpu_rmw_ptr(cpu, in->ea_seg, ea, size) : NULL;
		if (p) {
			d = a;
			eq = cas_host(p, size, &d, s);
		} else {
			bool lk = in->pfx & PFX_LOCK;
			if (lk) {
				lock_probe(cpu, in, ea, size);
				cpu_lock_slow(cpu);
			}
			d = cpu_read_sz(cpu, in->ea_seg, ea, size);
			eq = d == a;
			cpu_write_sz(cpu, in->ea_seg, ea, eq ? s : d, size);
			if (lk)
				cpu_unlock_slow(cpu);
		}
	}
	if (!eq)
		reg_write(cpu, R_RAX, d, size);
	flags_set(cpu, LF_SUB, size, a, d, (a - d) & sz_mask(size));
}

static bool cas16_host(void *p, uint64_t *lo, uint64_t *hi, uint64_t nlo, uint64_t nhi)
{
	bool ok;
	__asm__ volatile("lock cmpxchg16b %1"
			 : "=@ccz"(ok), "+m"(*(unsigned __int128 *)p), "+a"(*lo), "+d"(*hi)
			 : "b"(nlo), "c"(nhi)
			 : "memory");
	return ok;
}

static void cmpxchg8b16b(struct cpu *cpu, const struct insn *in)
{
	bool wide = in->opsize == 8;
	unsigned size = wide ? 16 : 8;
	uint64_t ea = ea_of(cpu, in), lo, hi, nlo, nhi;
	uint64_t alo = cpu->gpr[R_RAX], ahi = cpu->gpr[R_RDX];
	bool eq;

	if (wide && (ea & 15))
		cpu_fault(cpu, EXC_GP, 0);
	if (wide) {
		nlo = cpu->gpr[R_RBX];
		nhi = cpu->gpr[R_RCX];
	} else {
		alo = (uint32_t)alo | (ahi << 32);
		nlo = (uint32_t)cpu->gpr[R_RBX] | (cpu->gpr[R_RCX] << 32);
		ahi = nhi = 0;
	}
	void *p = cpu_rmw_ptr(cpu, in->ea_seg, ea, size);
	if (p && wide) {
		lo = alo;
		hi = ahi;
		eq = cas16_host(p, &lo, &hi, nlo, nhi);
	} else if (p) {
		lo = alo;
		eq = cas_host(p, 8, &lo, nlo);
		hi = 0;
	} else {
		uint64_t v[2] = { 0, 0 };
		lock_probe(cpu, in, ea, size);
		cpu_lock_slow(cpu);
		cpu_read(cpu, in->ea_seg, ea, v, size);
		lo = v[0];
		hi = v[1];
		eq = lo == alo && hi == ahi;
		if (eq) {
			v[0] = nlo;
			v[1] = nhi;
		}
		cpu_write(cpu, in->ea_seg, ea, v, size);
		cpu_unlock_slow(cpu);
	}
	if (!eq) {
		if (wide) {
			cpu->gpr[R_RAX] = lo;
			cpu->gpr[R_RDX] = hi;
		} else {
			cpu->gpr[R_RAX] = (uint32_t)lo;
			cpu->gpr[R_RDX] = lo >> 32;
		}
	}
	flags_put(cpu, FL_ZF, eq);
}

static void rdrand_op(struct cpu *cpu, const struct insn *in)
{
	/* The host's kernel RNG (no dependency on the host CPU having RDRAND). */
	uint64_t v = 0;
	bool ok = getrandom(&v, sizeof(v), GRND_NONBLOCK) == (ssize_t)sizeof(v);
	if (!ok)
		v = 0;
	reg_write(cpu, in->rm, v, in->opsize);
	flags_set_all(cpu, ok ? FL_CF : 0);
}

HANDLER(h_grp9) /* 0f c7 */
{
	unsigned r = in->reg & 7;
	if (in->mod != 3 && r == 1 && in->mandatory != MP_F3 && in->mandatory != MP_F2) {
		cmpxchg8b16b(cpu, in);
		return;
	}
	if (in->mod == 3 && (r == 6 || r == 7) && in->mandatory != MP_F3) {
		rdrand_op(cpu, in);
		return;
	}
	if (in->mod == 3 && r == 7 && in->mandatory == MP_F3) { /* rdpid */
		reg_write(cpu, in->rm, cpu->tsc_aux & 0xffffffff, cpu->code_bits == 64 ? 8 : 4);
		return;
	}
	cpu_fault(cpu, EXC_UD, 0);
}

void exec_alu_register(void)
{
	for (unsigned a = 0; a < 8; a++) {
		reg_op(MAP_1B, a * 8 + 0, h_alu_eg);
		reg_op(MAP_1B, a * 8 + 1, h_alu_eg);
		reg_op(MAP_1B, a * 8 + 2, h_alu_ge);
		reg_op(MAP_1B, a * 8 + 3, h_alu_ge);
		reg_op(MAP_1B, a * 8 + 4, h_alu_ai);
		reg_op(MAP_1B, a * 8 + 5, h_alu_ai);
	}
	for (unsigned o = 0x80; o <= 0x83; o++)
		reg_op(MAP_1B, o, h_grp1);
	for (unsigned o = 0x40; o <= 0x4f; o++)
		reg_op(MAP_1B, o, h_incdec_r);
	reg_op(MAP_1B, 0x84, h_test_eg);
	reg_op(MAP_1B, 0x85, h_test_eg);
	reg_op(MAP_1B, 0xa8, h_test_ai);
	reg_op(MAP_1B, 0xa9, h_test_ai);
	reg_op(MAP_1B, 0xf6, h_grp3);
	reg_op(MAP_1B, 0xf7, h_grp3);
	reg_op(MAP_1B, 0xfe, h_grp4);
	reg_op(MAP_1B, 0x69, h_imul_imm);
	reg_op(MAP_1B, 0x6b, h_imul_imm);
	reg_op(MAP_0F, 0xaf, h_imul_gv);
	for (unsigned o = 0xc0; o <= 0xc1; o++)
		reg_op(MAP_1B, o, h_grp2);
	for (unsigned o = 0xd0; o <= 0xd3; o++)
		reg_op(MAP_1B, o, h_grp2);
	reg_op(MAP_0F, 0xa4, h_shld_shrd);
	reg_op(MAP_0F, 0xa5, h_shld_shrd);
	reg_op(MAP_0F, 0xac, h_shld_shrd);
	reg_op(MAP_0F, 0xad, h_shld_shrd);
	reg_op(MAP_0F, 0xa3, h_bt_reg);
	reg_op(MAP_0F, 0xab, h_bt_reg);
	reg_op(MAP_0F, 0xb3, h_bt_reg);
	reg_op(MAP_0F, 0xbb, h_bt_reg);
	reg_op(MAP_0F, 0xba, h_bt_imm);
	reg_op(MAP_0F, 0xbc, h_bsf);
	reg_op(MAP_0F, 0xbd, h_bsr);
	cpu_dispatch[MAP_0F][0xbc][MP_F3] = h_tzcnt;
	cpu_dispatch[MAP_0F][0xbd][MP_F3] = h_lzcnt;
	cpu_dispatch[MAP_0F][0xb8][MP_F3] = h_popcnt;
	for (unsigned o = 0xc8; o <= 0xcf; o++)
		reg_op(MAP_0F, o, h_bswap);
	reg_op(MAP_1B, 0x86, h_xchg_rm);
	reg_op(MAP_1B, 0x87, h_xchg_rm);
	for (unsigned o = 0x90; o <= 0x97; o++)
		reg_op(MAP_1B, o, h_xchg_ax);
	reg_op(MAP_0F, 0xc0, h_xadd);
	reg_op(MAP_0F, 0xc1, h_xadd);
	reg_op(MAP_0F, 0xb0, h_cmpxchg);
	reg_op(MAP_0F, 0xb1, h_cmpxchg);
	reg_op(MAP_0F, 0xc7, h_grp9);
}
