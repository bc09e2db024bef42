/*
 * x87 instructions (D8-DF, 9B FWAIT).
 *
 * Arithmetic runs on the host's own x87 unit (ember runs on x86-64 hosts
 * only): each operation loads its 80-bit operands and the guest's control
 * word and condition codes, executes the same instruction and reads back
 * the result and the status word (see host_env). That gives the
 * hardware's results, flags and condition codes bit for bit
 * (transcendentals and unmasked-exception responses included). What the
 * host cannot do for us is done here: the register stack, tags, stack
 * faults, ES/B and #MF at the next waiting instruction, memory stores
 * suppressed by unmasked exceptions, and the environment images.
 */
#include <string.h>

#include "cpu/fpu.h"
#include "cpu/insn.h"
#include "cpu/mem.h"

typedef uint8_t f80_t[10];

/*
 * The environment the host x87 starts each operation from (FLDENV, 32-bit
 * format): the guest's control word as it is, its condition codes (so what
 * an instruction leaves unchanged stays so), no exception flags, all
 * registers empty. An unmasked exception is only signalled by the next
 * waiting x87 instruction, so each sequence clears it (FNCLEX) right after
 * reading the status word: the host then gives the hardware's unmasked
 * responses (destination untouched, bias-adjusted overflow/underflow
 * results) without ever trapping. FNINIT at the end empties the host stack
 * whatever an unmasked exception left on it.
 */
typedef struct {
	uint32_t w[7];
} henv_t;

/* Binary operations, in ModRM.reg order of D8/DC/DA/DE, then FUCOM. */
enum { OP_ADD, OP_MUL, OP_COM, OP_COMP, OP_SUB, OP_SUBR, OP_DIV, OP_DIVR, OP_UCOM };

/* Memory operand kinds. */
enum { K_F32, K_F64, K_F80, K_I16, K_I32, K_I64, K_BCD, K_T16, K_T32, K_T64 };
static const uint8_t kind_len[] = { 4, 8, 10, 2, 4, 8, 10, 2, 4, 8 };

/* The QNaN "real indefinite". */
static const uint8_t INDEF[10] = { 0, 0, 0, 0, 0, 0, 0, 0xc0, 0xff, 0xff };

/* ---- host x87 primitives: return the host status word ---- */

#define HPRE "fnstcw %[save]\n\tfldenv %[env]\n\t"
#define HPOST "\n\tfninit\n\tfldcw %[save]"
#define X80(p) (*(uint8_t(*)[10])(p))
#define CX80(p) (*(const uint8_t(*)[10])(p))
#define HOUT [sw] "=m"(sw), [save] "=m"(save)

/* x = x op y (80-bit y); compares leave x alone. */
static uint16_t h_bin80(unsigned op, uint8_t *x, const uint8_t *y, henv_t env)
{
	uint16_t sw = 0, save;
#define B80(insn)                                                                          \
	__asm__ volatile(HPRE "fldt %[y]\n\tfldt %[x]\n\t" insn "\n\tfnstsw %[sw]\n\tfnclex\n\t"          \
			  "fstpt %[x]\n\tfstp %%st(0)" HPOST                                \
		     : [x] "+m"(X80(x)), HOUT                                              \
		     : [y] "m"(CX80(y)), [env] "m"(env)                                      \
		     : "st", "st(1)")
	switch (op) {
	case OP_ADD: B80("fadd %%st(1), %%st"); break;
	case OP_MUL: B80("fmul %%st(1), %%st"); break;
	case OP_COM:
	case OP_COMP: B80("fcom %%st(1)"); break;
	case OP_UCOM: B80("fucom %%st(1)"); break;
	case OP_SUB: B80("fsub %%st(1), %%st"); break;
	case OP_SUBR: B80("fsubr %%st(1), %%st"); break;
	case OP_DIV: B80("fdiv %%st(1), %%st"); break;
	case OP_DIVR: B80("fdivr %%st(1), %%st"); break;
	}
#undef B80
	return sw;
}

/* FCOMI / FUCOMI of x with y: the host's EFLAGS result. */
static uint16_t h_comi(unsigned op, const uint8_t *x, const uint8_t *y, henv_t env, uint8_t *zf,
		       uint8_t *pf, uint8_t *cf)
{
	uint16_t sw = 0, save;
#define CI(insn)                                                                           \
	__asm__ volatile(HPRE "fldt %[y]\n\tfldt %[x]\n\t" insn " %%st(1), %%st\n\t"          \
			  "fnstsw %[sw]\n\tfnclex\n\tsetz %[zf]\n\tsetp %[pf]\n\tsetc %[cf]" HPOST \
		     : HOUT, [zf] "=m"(*zf), [pf] "=m"(*pf), [cf] "=m"(*cf)                \
		     : [x] "m"(CX80(x)), [y] "m"(CX80(y)), [env] "m"(env)                  \
		     : "st", "st(1)", "cc")
	if (op == OP_UCOM)
		CI("fucomi");
	else
		CI("fcomi");
#undef CI
	return sw;
}

/* x = x op m (m32fp, m64fp, m16int, m32int). */
static uint16_t h_binm(unsigned op, unsigned kind, uint8_t *x, const void *m, henv_t env)
{
	uint16_t sw = 0, save;
#define BM(insn, T)                                                                        \
	__asm__ volatile(HPRE "fldt %[x]\n\t" insn " %[y]\n\tfnstsw %[sw]\n\tfnclex\n\tfstpt %[x]" HPOST   \
		     : [x] "+m"(X80(x)), HOUT                                              \
		     : [y] "m"(*(const T *)m), [env] "m"(env)                                \
		     : "st")
#define BM_ALL(pfx, sfx, T)                                                                \
	switch (op) {                                                                      \
	case OP_ADD: BM(pfx "add" sfx, T); break;                                          \
	case OP_MUL: BM(pfx "mul" sfx, T); break;                                          \
	case OP_COM:                                                                       \
	case OP_COMP: BM(pfx "com" sfx, T); break;                                         \
	case OP_SUB: BM(pfx "sub" sfx, T); break;                                          \
	case OP_SUBR: BM(pfx "subr" sfx, T); break;                                        \
	case OP_DIV: BM(pfx "div" sfx, T); break;                                          \
	case OP_DIVR: BM(pfx "divr" sfx, T); break;                                        \
	}
	switch (kind) {
	case K_F32: BM_ALL("f", "s", uint32_t); break;
	case K_F64: BM_ALL("f", "l", uint64_t); break;
	case K_I16: BM_ALL("fi", "s", uint16_t); break;
	case K_I32: BM_ALL("fi", "l", uint32_t); break;
	}
#undef BM_ALL
#undef BM
	return sw;
}

/* out = (extended) m. */
static uint16_t h_load(unsigned kind, const void *m, uint8_t *out, henv_t env)
{
	uint16_t sw = 0, save;
#define LD(insn, T)                                                                        \
	__asm__ volatile(HPRE insn " %[m]\n\tfnstsw %[sw]\n\tfnclex\n\tfstpt %[o]" HPOST                  \
		     : [o] "=m"(X80(out)), HOUT                                            \
		     : [m] "m"(*(const T *)m), [env] "m"(env)                                \
		     : "st")
	switch (kind) {
	case K_F32: LD("flds", uint32_t); break;
	case K_F64: LD("fldl", uint64_t); break;
	case K_F80: LD("fldt", f80_t); break;
	case K_I16: LD("filds", uint16_t); break;
	case K_I32: LD("fildl", uint32_t); break;
	case K_I64: LD("fildll", uint64_t); break;
	case K_BCD: LD("fbld", f80_t); break;
	}
#undef LD
	return sw;
}

/* m = (kind) x. */
static uint16_t h_store(unsigned kind, const uint8_t *x, void *m, henv_t env)
{
	uint16_t sw = 0, save;
#define ST(insn, T)                                                                        \
	__asm__ volatile(HPRE "fldt %[x]\n\t" insn " %[m]\n\tfnstsw %[sw]\n\tfnclex" HPOST                \
		     : [m] "=m"(*(T *)m), HOUT                                             \
		     : [x] "m"(CX80(x)), [env] "m"(env)                                      \
		     : "st")
	switch (kind) {
	case K_F32: ST("fstps", uint32_t); break;
	case K_F64: ST("fstpl", uint64_t); break;
	case K_F80: ST("fstpt", f80_t); break;
	case K_I16: ST("fistps", uint16_t); break;
	case K_I32: ST("fistpl", uint32_t); break;
	case K_I64: ST("fistpll", uint64_t); break;
	case K_BCD: ST("fbstp", f80_t); break;
	}
#undef ST
	return sw;
}

/* One-operand operations on ST(0) (D9 E0..FF), by the low 5 bits of the
 * opcode; ftst/fxam leave x alone. */
enum { U_CHS = 0x0, U_ABS = 0x1, U_TST = 0x4, U_XAM = 0x5, U_F2XM1 = 0x10, U_SQRT = 0x1a,
       U_RNDINT = 0x1c, U_SIN = 0x1e, U_COS = 0x1f };

static uint16_t h_unary(unsigned u, uint8_t *x, henv_t env)
{
	uint16_t sw = 0, save;
#define UN(insn)                                                                           \
	__asm__ volatile(HPRE "fldt %[x]\n\t" insn "\n\tfnstsw %[sw]\n\tfnclex\n\tfstpt %[x]" HPOST        \
		     : [x] "+m"(X80(x)), HOUT                                              \
		     : [env] "m"(env)                                                        \
		     : "st")
	switch (u) {
	case U_CHS: UN("fchs"); break;
	case U_ABS: UN("fabs"); break;
	case U_TST: UN("ftst"); break;
	case U_XAM: UN("fxam"); break;
	case U_F2XM1: UN("f2xm1"); break;
	case U_SQRT: UN("fsqrt"); break;
	case U_RNDINT: UN("frndint"); break;
	case U_SIN: UN("fsin"); break;
	case U_COS: UN("fcos"); break;
	}
#undef UN
	return sw;
}

/* Operations on ST(0)=x and ST(1)=y with one result r. */
enum { S_YL2X, S_PATAN, S_YL2XP1, S_PREM, S_PREM1, S_SCALE };

static uint16_t h_stack2(unsigned s, const uint8_t *x, const uint8_t *y, uint8_t *r, henv_t env)
{
	uint16_t sw = 0, save;
	/* Pop-style: one value left (the new ST(0)). */
#define P1(insn)                                                                           \
	__asm__ volatile(HPRE "fldt %[y]\n\tfldt %[x]\n\t" insn "\n\tfnstsw %[sw]\n\tfnclex\n\tfstpt %[r]" \
			  HPOST                                                             \
		     : [r] "=m"(X80(r)), HOUT                                              \
		     : [x] "m"(CX80(x)), [y] "m"(CX80(y)), [env] "m"(env)                    \
		     : "st", "st(1)")
	/* ST(1) kept: new ST(0) is r. */
#define P2(insn)                                                                           \
	__asm__ volatile(HPRE "fldt %[y]\n\tfldt %[x]\n\t" insn "\n\tfnstsw %[sw]\n\tfnclex\n\tfstpt %[r]" \
			  "\n\tfstp %%st(0)" HPOST                                          \
		     : [r] "=m"(X80(r)), HOUT                                              \
		     : [x] "m"(CX80(x)), [y] "m"(CX80(y)), [env] "m"(env)                    \
		     : "st", "st(1)")
	switch (s) {
	case S_YL2X: P1("fyl2x"); break;
	case S_PATAN: P1("fpatan"); break;
	case S_YL2XP1: P1("fyl2xp1"); break;
	case S_PREM: P2("fprem"); break;
	case S_PREM1: P2("fprem1"); break;
	case S_SCALE: P2("fscale"); break;
	}
#undef P1
#undef P2
	return sw;
}

/* Two results: a = new ST(1), b = new ST(0); for fptan/fsincos with C2
 * set (operand out of range) only a is written (ST(0) unchanged). */
enum { T_PTAN, T_SINCOS, T_XTRACT };

static uint16_t h_two(unsigned t, const uint8_t *x, uint8_t *a, uint8_t *b, henv_t env)
{
	uint16_t sw = 0, save;
	/* Two values on the host stack iff TOP is 6. */
#define TW(insn)                                                                           \
	__asm__ volatile(HPRE "fldt %[x]\n\t" insn "\n\tfnstsw %[sw]\n\tfnclex\n\t"      \
			  "fnstsw %%ax\n\tandw $0x3800, %%ax\n\tcmpw $0x3000, %%ax\n\t"       \
			  "jne 1f\n\tfstpt %[b]\n1:\tfstpt %[a]" HPOST                          \
		     : [a] "=m"(X80(a)), [b] "=m"(X80(b)), HOUT                            \
		     : [x] "m"(CX80(x)), [env] "m"(env)                                    \
		     : "st", "st(1)", "ax", "cc")
	switch (t) {
	case T_PTAN: TW("fptan"); break;
	case T_SINCOS: TW("fsincos"); break;
	case T_XTRACT: TW("fxtract"); break;
	}
#undef TW
	return sw;
}

/* Constants D9 E8..EE. */
static uint16_t h_const(unsigned k, uint8_t *out, henv_t env)
{
	uint16_t sw = 0, save;
#define CO(insn)                                                                           \
	__asm__ volatile(HPRE insn "\n\tfnstsw %[sw]\n\tfnclex\n\tfstpt %[o]" HPOST                         \
		     : [o] "=m"(X80(out)), HOUT                                            \
		     : [env] "m"(env)                                                        \
		     : "st")
	switch (k) {
	case 0: CO("fld1"); break;
	case 1: CO("fldl2t"); break;
	case 2: CO("fldl2e"); break;
	case 3: CO("fldpi"); break;
	case 4: CO("fldlg2"); break;
	case 5: CO("fldln2"); break;
	default: CO("fldz"); break;
	}
#undef CO
	return sw;
}

/* ---- guest state helpers ---- */

/* FCW as loaded: reserved bits 13-15 and 7 read 0, bit 6 reads 1. */
static uint16_t fcw_value(uint16_t v)
{
	return (uint16_t)((v & 0x1f3f) | 0x40);
}

static henv_t host_env(const struct cpu_fpu *f)
{
	henv_t e = { { 0xffff0000u | f->fcw, 0xffff0000u | (f->fsw & FSW_CC), 0xffffffffu,
		       0, 0, 0, 0xffff0000u } };
	return e;
}

static bool empty(const struct cpu_fpu *f, unsigned i)
{
	return fpu_tag(f, i) == TAG_EMPTY;
}

static void st_write(struct cpu_fpu *f, unsigned i, const uint8_t *v)
{
	memcpy(f->st[i], v, 10);
	fpu_set_tag(f, i, fpu_classify(v));
}

static void pop(struct cpu_fpu *f)
{
	fpu_set_tag(f, 0, TAG_EMPTY);
	fpu_set_top(f, fpu_top(f) + 1);
}

static void push_raw(struct cpu_fpu *f, const uint8_t *v)
{
	fpu_set_top(f, fpu_top(f) - 1);
	st_write(f, 0, v);
}

static void set_c1(struct cpu_fpu *f, bool on)
{
	f->fsw = (uint16_t)(on ? (f->fsw | FSW_C1) : (f->fsw & ~FSW_C1));
}

/* Stack overflow/underflow: IE|SF, C1 says which. True if masked (the
 * instruction goes on with the indefinite). */
static bool stack_fault(struct cpu_fpu *f, bool overflow)
{
	f->fsw |= FSW_IE | FSW_SF;
	set_c1(f, overflow);
	if (f->fcw & FSW_IE)
		return true;
	f->fsw |= FSW_ES | FSW_B;
	return false;
}

/*
 * Folds a host status word into *fsw: exception flags, and the condition
 * codes in ccmask. False if an unmasked exception forbids writing the
 * result: invalid, denormal or zero-divide for register results (strict:
 * any unmasked exception but precision for memory destinations).
 */
static bool merge(const struct cpu_fpu *f, uint16_t *fsw, uint16_t hsw, uint16_t ccmask,
		  bool mem_dest)
{
	uint16_t exc = hsw & 0x3f;
	*fsw = (uint16_t)((*fsw & ~ccmask) | (hsw & ccmask) | exc);
	uint16_t unmasked = exc & ~f->fcw & 0x3f;
	if (!unmasked)
		return true;
	*fsw |= FSW_ES | FSW_B;
	uint16_t fatal = mem_dest ? (uint16_t)(unmasked & ~FSW_PE)
				  : (uint16_t)(unmasked & (FSW_IE | FSW_DE | FSW_ZE));
	return fatal == 0;
}

/* The host's TOP right after the operation: it started at 0, so this says
 * how many values the host instruction pushed or popped. */
static unsigned host_top(uint16_t hsw)
{
	return (hsw >> 11) & 7;
}

static bool merge_st(struct cpu_fpu *f, uint16_t hsw, uint16_t ccmask)
{
	return merge(f, &f->fsw, hsw, ccmask, false);
}

/* Pushes v, or takes the stack-overflow path. */
static void push(struct cpu_fpu *f, const uint8_t *v)
{
	if (!empty(f, 7)) {
		if (stack_fault(f, true))
			push_raw(f, INDEF);
		return;
	}
	set_c1(f, false);
	push_raw(f, v);
}

static uint8_t modrm(const struct insn *in)
{
	return (uint8_t)((in->mod << 6) | ((in->reg & 7) << 3) | (in->rm & 7));
}

/* Last-instruction pointers, for non-control instructions. */
static void note(struct cpu *cpu, const struct insn *in, uint64_t ea)
{
	struct cpu_fpu *f = &cpu->fpu;
	f->fop = (uint16_t)(((in->op & 7) << 8) | modrm(in));
	f->fip = cpu->rip;
	if (in->mod != 3)
		f->fdp = ea;
}

/* ---- arithmetic and compares ---- */

static void set_compare(struct cpu_fpu *f, uint16_t cc)
{
	f->fsw = (uint16_t)((f->fsw & ~FSW_CC) | cc);
}

/* ST(d) = ST(d) op ST(s); compares: ST(0) with ST(s). npop pops after. */
static void arith_reg(struct cpu_fpu *f, unsigned op, unsigned d, unsigned s, unsigned npop)
{
	bool cmp = op == OP_COM || op == OP_COMP || op == OP_UCOM;
	if (empty(f, d) || empty(f, s)) {
		bool masked = stack_fault(f, false);
		if (cmp) /* "unordered", even when the fault is unmasked */
			set_compare(f, FSW_C0 | FSW_C2 | FSW_C3 | (f->fsw & FSW_C1));
		if (!masked)
			return;
		if (!cmp)
			st_write(f, d, INDEF);
	} else {
		uint8_t x[10];
		memcpy(x, f->st[d], 10);
		uint16_t hsw = h_bin80(op, x, f->st[s], host_env(f));
		bool done = merge_st(f, hsw, FSW_CC);
		if (!cmp)
			st_write(f, d, x); /* the host left it alone if not done */
		if (!done)
			return;
	}
	while (npop--)
		pop(f);
}

static void arith_mem(struct cpu *cpu, const struct insn *in, unsigned kind)
{
	struct cpu_fpu *f = &cpu->fpu;
	uint64_t ea = insn_ea(cpu, in);
	uint8_t m[8];
	cpu_read(cpu, in->ea_seg, ea, m, kind_len[kind]);
	note(cpu, in, ea);
	unsigned op = in->reg & 7;
	bool cmp = op == OP_COM || op == OP_COMP;
	if (empty(f, 0)) {
		bool masked = stack_fault(f, false);
		if (cmp)
			set_compare(f, FSW_C0 | FSW_C2 | FSW_C3 | (f->fsw & FSW_C1));
		if (!masked)
			return;
		if (!cmp)
			st_write(f, 0, INDEF);
	} else {
		uint8_t x[10];
		memcpy(x, f->st[0], 10);
		uint16_t hsw = h_binm(op, kind, x, m, host_env(f));
		bool done = merge_st(f, hsw, FSW_CC);
		if (!cmp)
			st_write(f, 0, x);
		if (!done)
			return;
	}
	if (op == OP_COMP)
		pop(f);
}

/* FCOMI/FUCOMI(P): ZF, PF, CF from the compare; OF, SF, AF cleared. */
static void comi(struct cpu *cpu, unsigned op, unsigned s, bool p)
{
	struct cpu_fpu *f = &cpu->fpu;
	uint8_t zf = 1, pf = 1, cf = 1; /* unordered */
	bool done = true;
	if (empty(f, 0) || empty(f, s)) {
		done = stack_fault(f, false);
	} else {
		uint16_t hsw = h_comi(op, f->st[0], f->st[s], host_env(f), &zf, &pf, &cf);
		/* FCOMI leaves the condition codes alone (the host's loads do not). */
		done = merge_st(f, hsw, 0);
	}
	/* EFLAGS are written even when an unmasked exception stops the rest. */
	uint64_t fl = cpu_get_rflags(cpu) & ~FL_ARITH;
	fl |= (zf ? FL_ZF : 0) | (pf ? FL_PF : 0) | (cf ? FL_CF : 0);
	cpu_set_rflags(cpu, fl);
	if (p && done)
		pop(f);
}

/* ---- loads and stores ---- */

static void load_mem(struct cpu *cpu, const struct insn *in, unsigned kind)
{
	struct cpu_fpu *f = &cpu->fpu;
	uint64_t ea = insn_ea(cpu, in);
	uint8_t m[10], v[10];
	cpu_read(cpu, in->ea_seg, ea, m, kind_len[kind]);
	note(cpu, in, ea);
	if (!empty(f, 7)) {
		push(f, INDEF); /* overflow path */
		return;
	}
	uint16_t hsw = h_load(kind, m, v, host_env(f));
	merge_st(f, hsw, FSW_CC);
	if (host_top(hsw) == 7) /* loaded (an unmasked fault may prevent it) */
		push_raw(f, v);
}

static void store_mem(struct cpu *cpu, const struct insn *in, unsigned kind, bool p)
{
	struct cpu_fpu *f = &cpu->fpu;
	uint64_t ea = insn_ea(cpu, in);
	uint8_t m[10];
	uint16_t fsw = f->fsw;
	const uint8_t *x = f->st[0];
	if (empty(f, 0)) {
		fsw |= FSW_IE | FSW_SF;
		fsw &= (uint16_t)~FSW_C1;
		if (!(f->fcw & FSW_IE)) {
			note(cpu, in, ea);
			f->fsw = fsw | FSW_ES | FSW_B;
			return;
		}
		x = INDEF;
	}
	henv_t env = host_env(f);
	unsigned hkind = kind;
	if (kind >= K_T16) { /* FISTTP: FISTP with chop rounding (no SSE3 on the host) */
		env.w[0] |= 0xc00;
		hkind = K_I16 + (kind - K_T16);
	}
	uint16_t hsw = h_store(hkind, x, m, env);
	if (kind >= K_T16)
		hsw &= (uint16_t)~FSW_C1;
	bool ok = merge(f, &fsw, hsw, FSW_CC, true);
	if (ok)
		cpu_write(cpu, in->ea_seg, ea, m, kind_len[kind]);
	note(cpu, in, ea);
	f->fsw = fsw;
	if (ok && p)
		pop(f);
}

/* FST/FSTP ST(i). */
static void store_reg(struct cpu_fpu *f, unsigned i, bool p)
{
	if (empty(f, 0)) {
		if (!stack_fault(f, false))
			return;
		st_write(f, i, INDEF);
	} else {
		set_c1(f, false);
		uint8_t v[10];
		memcpy(v, f->st[0], 10);
		st_write(f, i, v);
	}
	if (p)
		pop(f);
}

static void fxch(struct cpu_fpu *f, unsigned i)
{
	if (empty(f, 0) || empty(f, i)) {
		if (!stack_fault(f, false))
			return;
		if (empty(f, 0))
			st_write(f, 0, INDEF);
		if (empty(f, i))
			st_write(f, i, INDEF);
	}
	uint8_t t0[10], ti[10];
	memcpy(t0, f->st[0], 10);
	memcpy(ti, f->st[i], 10);
	st_write(f, 0, ti);
	st_write(f, i, t0);
	set_c1(f, false);
}

/* ---- D9 E0..FF ---- */

static void unary(struct cpu_fpu *f, unsigned u)
{
	bool test = u == U_TST || u == U_XAM;
	if (empty(f, 0)) {
		if (u == U_XAM) { /* empty: C3=C0=1, C1 = sign */
			uint16_t cc = FSW_C3 | FSW_C0;
			if (f->st[0][9] & 0x80)
				cc |= FSW_C1;
			set_compare(f, cc);
			return;
		}
		if (u == U_SIN || u == U_COS)
			f->fsw &= (uint16_t)~FSW_C2;
		bool masked = stack_fault(f, false);
		if (test)
			set_compare(f, FSW_C0 | FSW_C2 | FSW_C3 | (f->fsw & FSW_C1));
		else if (masked)
			st_write(f, 0, INDEF);
		return;
	}
	uint8_t x[10];
	memcpy(x, f->st[0], 10);
	uint16_t hsw = h_unary(u, x, host_env(f));
	merge_st(f, hsw, FSW_CC);
	if (!test)
		st_write(f, 0, x);
}

static void stack2(struct cpu_fpu *f, unsigned s)
{
	bool popping = s <= S_YL2XP1;
	if (empty(f, 0) || empty(f, 1)) {
		if (s == S_PREM || s == S_PREM1)
			f->fsw &= (uint16_t)~FSW_C2;
		if (!stack_fault(f, false))
			return;
		if (popping) {
			st_write(f, 1, INDEF);
			pop(f);
		} else {
			st_write(f, 0, INDEF);
		}
		return;
	}
	uint8_t r[10];
	uint16_t hsw = h_stack2(s, f->st[0], f->st[1], r, host_env(f));
	merge_st(f, hsw, FSW_CC);
	if (!popping) {
		st_write(f, 0, r); /* unchanged when an unmasked fault stopped it */
	} else if (host_top(hsw) == 7) { /* popped: done */
		st_write(f, 1, r);
		pop(f);
	}
}

static void two(struct cpu_fpu *f, unsigned t)
{
	if (empty(f, 0) || !empty(f, 7)) {
		if (t != T_XTRACT)
			f->fsw &= (uint16_t)~FSW_C2;
		if (!stack_fault(f, !empty(f, 0)))
			return;
		st_write(f, 0, INDEF);
		push_raw(f, INDEF);
		return;
	}
	uint8_t a[10], b[10];
	uint16_t hsw = h_two(t, f->st[0], a, b, host_env(f));
	merge_st(f, hsw, FSW_CC);
	st_write(f, 0, a);
	if (host_top(hsw) == 6) /* pushed (not when out of range or faulted) */
		push_raw(f, b);
}

static void d9_reg(struct cpu *cpu, const struct insn *in)
{
	struct cpu_fpu *f = &cpu->fpu;
	unsigned i = in->rm & 7, r = in->reg & 7;
	switch (r) {
	case 0: { /* FLD ST(i): an empty source is an underflow whatever ST(7) holds */
		if (empty(f, i)) {
			if (stack_fault(f, false))
				push_raw(f, INDEF);
			return;
		}
		uint8_t v[10];
		memcpy(v, f->st[i], 10);
		push(f, v);
		return;
	}
	case 1: fxch(f, i); return;
	case 2:
		if (i != 0)
			cpu_fault(cpu, EXC_UD, 0);
		return; /* FNOP */
	case 3: store_reg(f, i, true); return; /* FSTP1, undocumented alias */
	}
	unsigned u = modrm(in) & 0x1f; /* E0..FF -> 0..1f */
	switch (u) {
	case U_CHS: case U_ABS: case U_TST: case U_XAM:
	case U_F2XM1: case U_SQRT: case U_RNDINT: case U_SIN: case U_COS:
		unary(f, u);
		return;
	case 0x08: case 0x09: case 0x0a: case 0x0b: case 0x0c: case 0x0d: case 0x0e: {
		uint8_t v[10];
		uint16_t hsw = h_const(u - 8, v, host_env(f));
		if (!empty(f, 7)) {
			push(f, v);
			return;
		}
		merge_st(f, hsw, FSW_CC);
		push(f, v);
		return;
	}
	case 0x11: stack2(f, S_YL2X); return;
	case 0x12: two(f, T_PTAN); return;
	case 0x13: stack2(f, S_PATAN); return;
	case 0x14: two(f, T_XTRACT); return;
	case 0x15: stack2(f, S_PREM1); return;
	case 0x16: fpu_set_top(f, fpu_top(f) - 1); set_c1(f, false); return;
	case 0x17: fpu_set_top(f, fpu_top(f) + 1); set_c1(f, false); return;
	case 0x18: stack2(f, S_PREM); return;
	case 0x19: stack2(f, S_YL2XP1); return;
	case 0x1b: two(f, T_SINCOS); return;
	case 0x1d: stack2(f, S_SCALE); return;
	}
	cpu_fault(cpu, EXC_UD, 0);
}

/* ---- environment ---- */

static bool real_format(struct cpu *cpu)
{
	return !(cpu->cr0 & CR0_PE) || (cpu->rflags & FL_VM);
}

static void put16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static uint16_t get16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }

/* The FSTENV image (14 or 28 bytes). FCS/FDS are stored as 0. */
static unsigned env_image(struct cpu *cpu, uint8_t *b, bool o16)
{
	const struct cpu_fpu *f = &cpu->fpu;
	uint32_t ip = (uint32_t)f->fip, dp = (uint32_t)f->fdp;
	bool real = real_format(cpu);
	if (o16) {
		put16(b + 0, f->fcw);
		put16(b + 2, f->fsw);
		put16(b + 4, f->ftw);
		put16(b + 6, (uint16_t)ip);
		put16(b + 8, real ? (uint16_t)(((ip >> 4) & 0xf000) | (f->fop & 0x7ff)) : 0);
		put16(b + 10, (uint16_t)dp);
		put16(b + 12, real ? (uint16_t)((dp >> 4) & 0xf000) : 0);
		return 14;
	}
	put32(b + 0, 0xffff0000u | f->fcw);
	put32(b + 4, 0xffff0000u | f->fsw);
	put32(b + 8, 0xffff0000u | f->ftw);
	if (real) {
		put32(b + 12, 0xffff0000u | (ip & 0xffff));
		put32(b + 16, ((ip >> 4) & 0x0ffff000u) | (f->fop & 0x7ffu));
		put32(b + 20, 0xffff0000u | (dp & 0xffff));
		put32(b + 24, (dp >> 4) & 0x0ffff000u);
	} else {
		put32(b + 12, ip);
		put32(b + 16, (uint32_t)(f->fop & 0x7ff) << 16);
		put32(b + 20, dp);
		put32(b + 24, 0xffff0000u);
	}
	return 28;
}

static void env_load(struct cpu *cpu, const uint8_t *b, bool o16)
{
	struct cpu_fpu *f = &cpu->fpu;
	bool real = real_format(cpu);
	uint16_t cw, sw, tw;
	uint32_t ip, dp, op;
	if (o16) {
		cw = get16(b);
		sw = get16(b + 2);
		tw = get16(b + 4);
		ip = get16(b + 6);
		dp = get16(b + 10);
		op = real ? get16(b + 8) & 0x7ffu : 0;
		if (real) {
			ip |= (uint32_t)(get16(b + 8) & 0xf000) << 4;
			dp |= (uint32_t)(get16(b + 12) & 0xf000) << 4;
		}
	} else {
		cw = get16(b);
		sw = get16(b + 4);
		tw = get16(b + 8);
		if (real) {
			ip = (get32(b + 12) & 0xffff) | ((get32(b + 16) & 0x0ffff000u) << 4);
			op = get32(b + 16) & 0x7ff;
			dp = (get32(b + 20) & 0xffff) | ((get32(b + 24) & 0x0ffff000u) << 4);
		} else {
			ip = get32(b + 12);
			op = (get32(b + 16) >> 16) & 0x7ff;
			dp = get32(b + 20);
		}
	}
	f->fcw = fcw_value(cw);
	f->fsw = sw;
	f->fip = ip;
	f->fdp = dp;
	f->fop = (uint16_t)op;
	/* Only empty / non-empty comes from memory; classes from contents. */
	uint8_t ab = 0;
	for (unsigned p = 0; p < 8; p++)
		if (((tw >> (2 * p)) & 3) != TAG_EMPTY)
			ab |= (uint8_t)(1u << p);
	fpu_expand_tw(f, ab);
	fpu_update_es(f);
}

static void fninit(struct cpu_fpu *f)
{
	fpu_set_top(f, 0);
	f->fcw = 0x37f;
	f->fsw = 0;
	f->ftw = 0xffff;
	f->fop = 0;
	f->fip = f->fdp = 0;
}

static void fnstenv(struct cpu *cpu, const struct insn *in)
{
	uint8_t b[28];
	unsigned n = env_image(cpu, b, in->opsize == 2);
	cpu_write(cpu, in->ea_seg, insn_ea(cpu, in), b, n);
	cpu->fpu.fcw |= 0x3f;
	fpu_update_es(&cpu->fpu);
}

static void fldenv(struct cpu *cpu, const struct insn *in)
{
	uint8_t b[28];
	bool o16 = in->opsize == 2;
	cpu_read(cpu, in->ea_seg, insn_ea(cpu, in), b, o16 ? 14 : 28);
	/* Registers stay where they are physically: move TOP first. */
	fpu_set_top(&cpu->fpu, (get16(b + (o16 ? 2 : 4)) >> 11) & 7);
	env_load(cpu, b, o16);
}

static void fnsave(struct cpu *cpu, const struct insn *in)
{
	uint8_t b[108];
	unsigned n = env_image(cpu, b, in->opsize == 2);
	for (unsigned i = 0; i < 8; i++)
		memcpy(b + n + 10 * i, cpu->fpu.st[i], 10);
	cpu_write(cpu, in->ea_seg, insn_ea(cpu, in), b, n + 80);
	fninit(&cpu->fpu);
}

static void frstor(struct cpu *cpu, const struct insn *in)
{
	uint8_t b[108];
	bool o16 = in->opsize == 2;
	unsigned n = o16 ? 14 : 28;
	cpu_read(cpu, in->ea_seg, insn_ea(cpu, in), b, n + 80);
	for (unsigned i = 0; i < 8; i++)
		memcpy(cpu->fpu.st[i], b + n + 10 * i, 10);
	env_load(cpu, b, o16);
}

/* ---- escape opcodes ---- */

/* FCMOVcc (DA/DB C0..DF). */
static void fcmov(struct cpu *cpu, const struct insn *in, bool negate)
{
	struct cpu_fpu *f = &cpu->fpu;
	uint64_t fl = cpu_get_rflags(cpu);
	bool c;
	switch ((in->reg & 7) & 3) {
	case 0: c = fl & FL_CF; break;
	case 1: c = fl & FL_ZF; break;
	case 2: c = fl & (FL_CF | FL_ZF); break;
	default: c = fl & FL_PF; break;
	}
	if (negate)
		c = !c;
	unsigned i = in->rm & 7;
	if (empty(f, 0) || empty(f, i)) {
		if (stack_fault(f, false))
			st_write(f, 0, INDEF);
		return;
	}
	if (c) {
		uint8_t v[10];
		memcpy(v, f->st[i], 10);
		st_write(f, 0, v);
	}
}

static void exec_d8(struct cpu *cpu, const struct insn *in)
{
	fpu_check_x87(cpu, true);
	if (in->mod != 3) {
		arith_mem(cpu, in, K_F32);
		return;
	}
	note(cpu, in, 0);
	unsigned op = in->reg & 7;
	arith_reg(&cpu->fpu, op, 0, in->rm & 7, op == OP_COMP);
}

static void exec_dc(struct cpu *cpu, const struct insn *in)
{
	static const uint8_t rev[8] = { OP_ADD, OP_MUL, OP_COM, OP_COMP,
					OP_SUBR, OP_SUB, OP_DIVR, OP_DIV };
	fpu_check_x87(cpu, true);
	if (in->mod != 3) {
		arith_mem(cpu, in, K_F64);
		return;
	}
	note(cpu, in, 0);
	unsigned op = rev[in->reg & 7], i = in->rm & 7;
	if (op == OP_COM || op == OP_COMP)
		arith_reg(&cpu->fpu, op, 0, i, op == OP_COMP);
	else
		arith_reg(&cpu->fpu, op, i, 0, 0);
}

static void exec_da(struct cpu *cpu, const struct insn *in)
{
	fpu_check_x87(cpu, true);
	if (in->mod != 3) {
		arith_mem(cpu, in, K_I32);
		return;
	}
	note(cpu, in, 0);
	if ((in->reg & 7) < 4) {
		fcmov(cpu, in, false);
		return;
	}
	if (modrm(in) == 0xe9) { /* FUCOMPP */
		arith_reg(&cpu->fpu, OP_UCOM, 0, 1, 2);
		return;
	}
	cpu_fault(cpu, EXC_UD, 0);
}

static void exec_de(struct cpu *cpu, const struct insn *in)
{
	static const uint8_t rev[8] = { OP_ADD, OP_MUL, OP_COM, OP_COMP,
					OP_SUBR, OP_SUB, OP_DIVR, OP_DIV };
	fpu_check_x87(cpu, true);
	if (in->mod != 3) {
		arith_mem(cpu, in, K_I16);
		return;
	}
	note(cpu, in, 0);
	unsigned op = rev[in->reg & 7], i = in->rm & 7;
	if (op == OP_COMP) { /* DE D9: FCOMPP; DE D8+i other: reserved */
		if (i != 1)
			cpu_fault(cpu, EXC_UD, 0);
		arith_reg(&cpu->fpu, OP_COM, 0, 1, 2);
	} else if (op == OP_COM) { /* DE D0+i: FCOMP alias */
		arith_reg(&cpu->fpu, OP_COM, 0, i, 1);
	} else {
		arith_reg(&cpu->fpu, op, i, 0, 1);
	}
}

static void exec_d9(struct cpu *cpu, const struct insn *in)
{
	unsigned r = in->reg & 7;
	if (in->mod == 3) {
		fpu_check_x87(cpu, true);
		note(cpu, in, 0);
		d9_reg(cpu, in);
		return;
	}
	fpu_check_x87(cpu, r != 6 && r != 7);
	switch (r) {
	case 0: load_mem(cpu, in, K_F32); return;
	case 2: store_mem(cpu, in, K_F32, false); return;
	case 3: store_mem(cpu, in, K_F32, true); return;
	case 4: fldenv(cpu, in); return;
	case 5:
		cpu->fpu.fcw = fcw_value(cpu_read16(cpu, in->ea_seg, insn_ea(cpu, in)));
		fpu_update_es(&cpu->fpu);
		return;
	case 6: fnstenv(cpu, in); return;
	case 7: cpu_write16(cpu, in->ea_seg, insn_ea(cpu, in), cpu->fpu.fcw); return;
	}
	cpu_fault(cpu, EXC_UD, 0);
}

static void exec_db(struct cpu *cpu, const struct insn *in)
{
	unsigned r = in->reg & 7;
	if (in->mod != 3) {
		fpu_check_x87(cpu, true);
		switch (r) {
		case 0: load_mem(cpu, in, K_I32); return;
		case 1: store_mem(cpu, in, K_T32, true); return;
		case 2: store_mem(cpu, in, K_I32, false); return;
		case 3: store_mem(cpu, in, K_I32, true); return;
		case 5: load_mem(cpu, in, K_F80); return;
		case 7: store_mem(cpu, in, K_F80, true); return;
		}
		cpu_fault(cpu, EXC_UD, 0);
	}
	uint8_t m = modrm(in);
	if (m == 0xe2 || m == 0xe3) { /* FNCLEX, FNINIT: no wait */
		fpu_check_x87(cpu, false);
		if (m == 0xe2)
			cpu->fpu.fsw &= (uint16_t)~(0xffu | FSW_B);
		else
			fninit(&cpu->fpu);
		return;
	}
	fpu_check_x87(cpu, true);
	if (r < 4) {
		note(cpu, in, 0);
		fcmov(cpu, in, true);
		return;
	}
	if (m == 0xe0 || m == 0xe1 || m == 0xe4) /* FENI, FDISI, FSETPM: no-ops */
		return;
	if (r == 5 || r == 6) { /* FUCOMI, FCOMI */
		note(cpu, in, 0);
		comi(cpu, r == 5 ? OP_UCOM : OP_COM, in->rm & 7, false);
		return;
	}
	cpu_fault(cpu, EXC_UD, 0);
}

static void exec_dd(struct cpu *cpu, const struct insn *in)
{
	struct cpu_fpu *f = &cpu->fpu;
	unsigned r = in->reg & 7, i = in->rm & 7;
	if (in->mod != 3) {
		fpu_check_x87(cpu, r != 6 && r != 7);
		switch (r) {
		case 0: load_mem(cpu, in, K_F64); return;
		case 1: store_mem(cpu, in, K_T64, true); return;
		case 2: store_mem(cpu, in, K_F64, false); return;
		case 3: store_mem(cpu, in, K_F64, true); return;
		case 4: frstor(cpu, in); return;
		case 6: fnsave(cpu, in); return;
		case 7: cpu_write16(cpu, in->ea_seg, insn_ea(cpu, in), f->fsw); return;
		}
		cpu_fault(cpu, EXC_UD, 0);
	}
	fpu_check_x87(cpu, true);
	note(cpu, in, 0);
	switch (r) {
	case 0: fpu_set_tag(f, i, TAG_EMPTY); set_c1(f, false); return; /* FFREE */
	case 1: fxch(f, i); return;
	case 2: store_reg(f, i, false); return;
	case 3: store_reg(f, i, true); return;
	case 4: arith_reg(f, OP_UCOM, 0, i, 0); return;
	case 5: arith_reg(f, OP_UCOM, 0, i, 1); return;
	}
	cpu_fault(cpu, EXC_UD, 0);
}

static void exec_df(struct cpu *cpu, const struct insn *in)
{
	struct cpu_fpu *f = &cpu->fpu;
	unsigned r = in->reg & 7;
	if (in->mod != 3) {
		fpu_check_x87(cpu, true);
		switch (r) {
		case 0: load_mem(cpu, in, K_I16); return;
		case 1: store_mem(cpu, in, K_T16, true); return;
		case 2: store_mem(cpu, in, K_I16, false); return;
		case 3: store_mem(cpu, in, K_I16, true); return;
		case 4: load_mem(cpu, in, K_BCD); return;
		case 5: load_mem(cpu, in, K_I64); return;
		case 6: store_mem(cpu, in, K_BCD, true); return;
		case 7: store_mem(cpu, in, K_I64, true); return;
		}
	}
	if (modrm(in) == 0xe0) { /* FNSTSW AX */
		fpu_check_x87(cpu, false);
		cpu->gpr[R_RAX] = (cpu->gpr[R_RAX] & ~0xffffULL) | f->fsw;
		return;
	}
	fpu_check_x87(cpu, true);
	note(cpu, in, 0);
	unsigned i = in->rm & 7;
	switch (r) {
	case 0: fpu_set_tag(f, i, TAG_EMPTY); set_c1(f, false); pop(f); return; /* FFREEP */
	case 1: fxch(f, i); return;
	case 2: case 3: store_reg(f, i, true); return;
	case 5: comi(cpu, OP_UCOM, i, true); return;
	case 6: comi(cpu, OP_COM, i, true); return;
	}
	cpu_fault(cpu, EXC_UD, 0);
}

/* 9B: FWAIT. */
static void exec_fwait(struct cpu *cpu, const struct insn *in)
{
	(void)in;
	if ((cpu->cr0 & (CR0_MP | CR0_TS)) == (CR0_MP | CR0_TS))
		cpu_fault(cpu, EXC_NM, 0);
	if ((cpu->fpu.fsw & FSW_ES) && (cpu->cr0 & CR0_NE))
		cpu_fault(cpu, EXC_MF, 0);
}

void exec_fpu_register(void)
{
	static const insn_handler esc[8] = { exec_d8, exec_d9, exec_da, exec_db,
					     exec_dc, exec_dd, exec_de, exec_df };
	for (unsigned p = 0; p < 4; p++) {
		for (unsigned i = 0; i < 8; i++)
			cpu_dispatch[MAP_1B][0xd8 + i][p] = esc[i];
		cpu_dispatch[MAP_1B][0x9b][p] = exec_fwait;
	}
}
