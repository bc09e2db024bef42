/*
 * x87 against the host CPU: every D8..DF form runs on random register
 * stacks (random TOP, tags with empty slots for stack faults, NaNs,
 * infinities, denormals, unnormals, precision and rounding control) on
 * the host and the emulator; the FXSAVE image, flags, AX and memory must
 * match. Then the environment formats, #NM, #MF and FXSAVE/XSAVE.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/fpu.h"
#include "cpu/insn.h"
#include "fake_fpu.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const char *const x87_insns[] = {
	"d8 06",
	"d8 0e",
	"d8 16",
	"d8 1e",
	"d8 26",
	"d8 2e",
	"d8 36",
	"d8 3e",
	"d8 c0",
	"d8 c1",
	"d8 c2",
	"d8 c3",
	"d8 c4",
	"d8 c5",
	"d8 c6",
	"d8 c7",
	"d8 c8",
	"d8 c9",
	"d8 ca",
	"d8 cb",
	"d8 cc",
	"d8 cd",
	"d8 ce",
	"d8 cf",
	"d8 d0",
	"d8 d1",
	"d8 d2",
	"d8 d3",
	"d8 d4",
	"d8 d5",
	"d8 d6",
	"d8 d7",
	"d8 d8",
	"d8 d9",
	"d8 da",
	"d8 db",
	"d8 dc",
	"d8 dd",
	"d8 de",
	"d8 df",
	"d8 e0",
	"d8 e1",
	"d8 e2",
	"d8 e3",
	"d8 e4",
	"d8 e5",
	"d8 e6",
	"d8 e7",
	"d8 e8",
	"d8 e9",
	"d8 ea",
	"d8 eb",
	"d8 ec",
	"d8 ed",
	"d8 ee",
	"d8 ef",
	"d8 f0",
	"d8 f1",
	"d8 f2",
	"d8 f3",
	"d8 f4",
	"d8 f5",
	"d8 f6",
	"d8 f7",
	"d8 f8",
	"d8 f9",
	"d8 fa",
	"d8 fb",
	"d8 fc",
	"d8 fd",
	"d8 fe",
	"d8 ff",
	"d9 06",
	"d9 16",
	"d9 1e",
	"d9 2e",
	"d9 3e",
	"d9 c0",
	"d9 c1",
	"d9 c2",
	"d9 c3",
	"d9 c4",
	"d9 c5",
	"d9 c6",
	"d9 c7",
	"d9 c8",
	"d9 c9",
	"d9 ca",
	"d9 cb",
	"d9 cc",
	"d9 cd",
	"d9 ce",
	"d9 cf",
	"d9 d0",
	"d9 e0",
	"d9 e1",
	"d9 e4",
	"d9 e5",
	"d9 e8",
	"d9 e9",
	"d9 ea",
	"d9 eb",
	"d9 ec",
	"d9 ed",
	"d9 ee",
	"d9 f0",
	"d9 f1",
	"d9 f2",
	"d9 f3",
	"d9 f4",
	"d9 f5",
	"d9 f6",
	"d9 f7",
	"d9 f8",
	"d9 f9",
	"d9 fa",
	"d9 fb",
	"d9 fc",
	"d9 fd",
	"d9 fe",
	"d9 ff",
	"da 06",
	"da 0e",
	"da 16",
	"da 1e",
	"da 26",
	"da 2e",
	"da 36",
	"da 3e",
	"da c0",
	"da c1",
	"da c2",
	"da c3",
	"da c4",
	"da c5",
	"da c6",
	"da c7",
	"da c8",
	"da c9",
	"da ca",
	"da cb",
	"da cc",
	"da cd",
	"da ce",
	"da cf",
	"da d0",
	"da d1",
	"da d2",
	"da d3",
	"da d4",
	"da d5",
	"da d6",
	"da d7",
	"da d8",
	"da d9",
	"da da",
	"da db",
	"da dc",
	"da dd",
	"da de",
	"da df",
	"da e9",
	"db 06",
	"db 0e",
	"db 16",
	"db 1e",
	"db 2e",
	"db 3e",
	"db c0",
	"db c1",
	"db c2",
	"db c3",
	"db c4",
	"db c5",
	"db c6",
	"db c7",
	"db c8",
	"db c9",
	"db ca",
	"db cb",
	"db cc",
	"db cd",
	"db ce",
	"db cf",
	"db d0",
	"db d1",
	"db d2",
	"db d3",
	"db d4",
	"db d5",
	"db d6",
	"db d7",
	"db d8",
	"db d9",
	"db da",
	"db db",
	"db dc",
	"db dd",
	"db de",
	"db df",
	"db e2",
	"db e3",
	"db e8",
	"db e9",
	"db ea",
	"db eb",
	"db ec",
	"db ed",
	"db ee",
	"db ef",
	"db f0",
	"db f1",
	"db f2",
	"db f3",
	"db f4",
	"db f5",
	"db f6",
	"db f7",
	"dc 06",
	"dc 0e",
	"dc 16",
	"dc 1e",
	"dc 26",
	"dc 2e",
	"dc 36",
	"dc 3e",
	"dc c0",
	"dc c1",
	"dc c2",
	"dc c3",
	"dc c4",
	"dc c5",
	"dc c6",
	"dc c7",
	"dc c8",
	"dc c9",
	"dc ca",
	"dc cb",
	"dc cc",
	"dc cd",
	"dc ce",
	"dc cf",
	"dc d0",
	"dc d1",
	"dc d2",
	"dc d3",
	"dc d4",
	"dc d5",
	"dc d6",
	"dc d7",
	"dc d8",
	"dc d9",
	"dc da",
	"dc db",
	"dc dc",
	"dc dd",
	"dc de",
	"dc df",
	"dc e0",
	"dc e1",
	"dc e2",
	"dc e3",
	"dc e4",
	"dc e5",
	"dc e6",
	"dc e7",
	"dc e8",
	"dc e9",
	"dc ea",
	"dc eb",
	"dc ec",
	"dc ed",
	"dc ee",
	"dc ef",
	"dc f0",
	"dc f1",
	"dc f2",
	"dc f3",
	"dc f4",
	"dc f5",
	"dc f6",
	"dc f7",
	"dc f8",
	"dc f9",
	"dc fa",
	"dc fb",
	"dc fc",
	"dc fd",
	"dc fe",
	"dc ff",
	"dd 06",
	"dd 0e",
	"dd 16",
	"dd 1e",
	"dd 3e",
	"dd c0",
	"dd c1",
	"dd c2",
	"dd c3",
	"dd c4",
	"dd c5",
	"dd c6",
	"dd c7",
	"dd d0",
	"dd d1",
	"dd d2",
	"dd d3",
	"dd d4",
	"dd d5",
	"dd d6",
	"dd d7",
	"dd d8",
	"dd d9",
	"dd da",
	"dd db",
	"dd dc",
	"dd dd",
	"dd de",
	"dd df",
	"dd e0",
	"dd e1",
	"dd e2",
	"dd e3",
	"dd e4",
	"dd e5",
	"dd e6",
	"dd e7",
	"dd e8",
	"dd e9",
	"dd ea",
	"dd eb",
	"dd ec",
	"dd ed",
	"dd ee",
	"dd ef",
	"de 06",
	"de 0e",
	"de 16",
	"de 1e",
	"de 26",
	"de 2e",
	"de 36",
	"de 3e",
	"de c0",
	"de c1",
	"de c2",
	"de c3",
	"de c4",
	"de c5",
	"de c6",
	"de c7",
	"de c8",
	"de c9",
	"de ca",
	"de cb",
	"de cc",
	"de cd",
	"de ce",
	"de cf",
	"de d9",
	"de e0",
	"de e1",
	"de e2",
	"de e3",
	"de e4",
	"de e5",
	"de e6",
	"de e7",
	"de e8",
	"de e9",
	"de ea",
	"de eb",
	"de ec",
	"de ed",
	"de ee",
	"de ef",
	"de f0",
	"de f1",
	"de f2",
	"de f3",
	"de f4",
	"de f5",
	"de f6",
	"de f7",
	"de f8",
	"de f9",
	"de fa",
	"de fb",
	"de fc",
	"de fd",
	"de fe",
	"de ff",
	"df 06",
	"df 0e",
	"df 16",
	"df 1e",
	"df 26",
	"df 2e",
	"df 36",
	"df 3e",
	"df c0",
	"df c1",
	"df c2",
	"df c3",
	"df c4",
	"df c5",
	"df c6",
	"df c7",
	"df e0",
	"df e8",
	"df e9",
	"df ea",
	"df eb",
	"df ec",
	"df ed",
	"df ee",
	"df ef",
	"df f0",
	"df f1",
	"df f2",
	"df f3",
	"df f4",
	"df f5",
	"df f6",
	"df f7",
	"9b",
	"48 dd 06",
	"66 d9 06",
	"48 df 3e",
};

Test(x87, all_vs_host)
{
	cr_expect_eq(ff_diff(x87_insns, N(x87_insns), 200, FF_X87, 11), 0);
}

/* Runs bytes on host and guest from the same random state; the bytes at
 * [skip_lo, skip_hi) of data (instruction/operand pointers) are not compared. */
static unsigned env_diff(const char *name, const uint8_t *bytes, unsigned len, bool valid_env,
			 unsigned skip_lo, unsigned skip_hi, unsigned iters)
{
	struct cpu *cpu = ff_guest();
	uint64_t seed = 21;
	unsigned bad = 0;
	for (unsigned it = 0; it < iters && !bad; it++) {
		struct fstate in, h, g;
		ff_random(&in, &seed, FF_X87);
		if (valid_env) {
			/* A loadable environment: random CW (masked), SW, TW. */
			uint32_t cw = 0xffff037fu | (uint32_t)(ff_rand(&seed) & 0xf00);
			uint32_t sw = (uint32_t)(ff_rand(&seed) & 0x7f00);
			uint32_t tw = (uint32_t)ff_rand(&seed);
			if (len == 3 && bytes[0] == 0x66) { /* 16-bit format */
				memcpy(in.data, &cw, 2);
				memcpy(in.data + 2, &sw, 2);
				memcpy(in.data + 4, &tw, 2);
			} else {
				memcpy(in.data, &cw, 4);
				memcpy(in.data + 4, &sw, 4);
				memcpy(in.data + 8, &tw, 4);
			}
		}
		h = in;
		g = in;
		ff_host(&h, bytes, len);
		int vec;
		ff_guest_run(cpu, &g, bytes, len, &vec);
		memset(h.data + skip_lo, 0, skip_hi - skip_lo);
		memset(g.data + skip_lo, 0, skip_hi - skip_lo);
		char why[200] = "";
		if (vec != -1 || !ff_same(&h, &g, why, sizeof(why))) {
			fprintf(stderr, "MISMATCH %s iter %u: vec %d %s\n", name, it, vec, why);
			bad++;
		}
	}
	ff_free();
	return bad;
}

Test(x87, environment_vs_host)
{
	static const uint8_t fnstenv[] = { 0xd9, 0x36 }, fnstenv16[] = { 0x66, 0xd9, 0x36 };
	static const uint8_t fnsave[] = { 0xdd, 0x36 }, fnsave16[] = { 0x66, 0xdd, 0x36 };
	static const uint8_t fldenv[] = { 0xd9, 0x26 }, fldenv16[] = { 0x66, 0xd9, 0x26 };
	static const uint8_t frstor[] = { 0xdd, 0x26 }, frstor16[] = { 0x66, 0xdd, 0x26 };
	static const uint8_t fnstcw[] = { 0xd9, 0x3e }, fnstsw[] = { 0xdd, 0x3e };
	cr_expect_eq(env_diff("fnstenv", fnstenv, 2, false, 12, 28, 200), 0);
	cr_expect_eq(env_diff("fnstenv16", fnstenv16, 3, false, 6, 14, 200), 0);
	cr_expect_eq(env_diff("fnsave", fnsave, 2, false, 12, 28, 200), 0);
	cr_expect_eq(env_diff("fnsave16", fnsave16, 3, false, 6, 14, 200), 0);
	cr_expect_eq(env_diff("fldenv", fldenv, 2, true, 0, 0, 200), 0);
	cr_expect_eq(env_diff("fldenv16", fldenv16, 3, true, 0, 0, 200), 0);
	cr_expect_eq(env_diff("frstor", frstor, 2, true, 0, 0, 200), 0);
	cr_expect_eq(env_diff("frstor16", frstor16, 3, true, 0, 0, 200), 0);
	cr_expect_eq(env_diff("fnstcw", fnstcw, 2, false, 0, 0, 50), 0);
	cr_expect_eq(env_diff("fnstsw", fnstsw, 2, false, 0, 0, 50), 0);
}

static int run(struct cpu *cpu, const char *hex)
{
	uint8_t b[16];
	unsigned n = 0;
	for (const char *p = hex; *p;) {
		if (*p == ' ') {
			p++;
			continue;
		}
		b[n++] = (uint8_t)strtoul((char[3]){ p[0], p[1], 0 }, NULL, 16);
		p += 2;
	}
	return ff_exec(cpu, b, n);
}

static void put_f80(struct cpu *cpu, unsigned i, long double v)
{
	memcpy(cpu->fpu.st[i], &v, 10);
	fpu_set_tag(&cpu->fpu, i, fpu_classify(cpu->fpu.st[i]));
}

static long double get_f80(struct cpu *cpu, unsigned i)
{
	long double v = 0;
	memcpy(&v, cpu->fpu.st[i], 10);
	return v;
}

Test(x87, nm_conditions)
{
	struct cpu *cpu = ff_guest();
	cpu->cr0 |= CR0_TS;
	cr_expect_eq(run(cpu, "d9 e8"), EXC_NM); /* fld1 */
	cr_expect_eq(run(cpu, "db e3"), EXC_NM); /* fninit */
	cr_expect_eq(run(cpu, "9b"), EXC_NM);	 /* fwait: MP and TS */
	cpu->cr0 &= ~CR0_MP;
	cr_expect_eq(run(cpu, "9b"), -1); /* fwait: TS without MP */
	cpu->cr0 &= ~CR0_TS;
	cpu->cr0 |= CR0_EM;
	cr_expect_eq(run(cpu, "d9 e8"), EXC_NM);
	cr_expect_eq(run(cpu, "9b"), -1); /* fwait ignores EM */
	cr_expect_eq(run(cpu, "0f fc c1"), EXC_UD); /* MMX with EM */
	ff_free();
}

Test(x87, unmasked_exception_then_mf)
{
	struct cpu *cpu = ff_guest();
	cr_expect_eq(run(cpu, "db e3"), -1); /* fninit */
	cr_expect_eq(cpu->fpu.fcw, 0x37f);
	cpu->fpu.fcw = 0x37b; /* ZE unmasked */
	cr_expect_eq(run(cpu, "d9 ee"), -1); /* fldz */
	cr_expect_eq(run(cpu, "d9 e8"), -1); /* fld1 */
	cr_expect_eq(run(cpu, "d8 f1"), -1); /* fdiv st0, st1: 1/0 */
	cr_expect_eq(cpu->fpu.fsw & (FSW_ZE | FSW_ES | FSW_B), FSW_ZE | FSW_ES | FSW_B);
	cr_expect(get_f80(cpu, 0) == 1.0L, "destination unchanged");
	cr_expect_eq(run(cpu, "d9 e8"), EXC_MF); /* next waiting insn */
	cr_expect_eq(run(cpu, "9b"), EXC_MF);
	cr_expect_eq(run(cpu, "df e0"), -1); /* fnstsw ax: no wait */
	cr_expect_eq(cpu->gpr[R_RAX] & 0xffff, cpu->fpu.fsw);
	cpu->cr0 &= ~CR0_NE; /* FERR# not wired: no #MF */
	cr_expect_eq(run(cpu, "9b"), -1);
	cpu->cr0 |= CR0_NE;
	cr_expect_eq(run(cpu, "db e2"), -1); /* fnclex */
	cr_expect_eq(cpu->fpu.fsw & 0x80ff, 0);
	cr_expect_eq(run(cpu, "9b"), -1);
	/* Masked: the result is +inf. */
	cpu->fpu.fcw = 0x37f;
	cr_expect_eq(run(cpu, "d8 f1"), -1);
	cr_expect(get_f80(cpu, 0) == __builtin_infl());
	cr_expect_eq(cpu->fpu.fsw & (FSW_ZE | FSW_ES), FSW_ZE);
	ff_free();
}

Test(x87, stack_faults)
{
	struct cpu *cpu = ff_guest();
	cr_expect_eq(run(cpu, "db e3"), -1);
	/* Underflow: fadd with an empty stack gives the indefinite. */
	put_f80(cpu, 0, 2.0L);
	cr_expect_eq(run(cpu, "d8 c1"), -1);
	cr_expect_eq(cpu->fpu.fsw & (FSW_IE | FSW_SF | FSW_C1), FSW_IE | FSW_SF);
	cr_expect_eq(cpu->fpu.st[0][9], 0xff);
	cr_expect_eq(cpu->fpu.st[0][7], 0xc0);
	/* Overflow: 9 pushes. */
	cr_expect_eq(run(cpu, "db e3"), -1);
	for (int i = 0; i < 8; i++)
		cr_expect_eq(run(cpu, "d9 e8"), -1);
	cr_expect_eq(cpu->fpu.fsw & FSW_SF, 0);
	cr_expect_eq(cpu->fpu.ftw, 0); /* all valid */
	cr_expect_eq(run(cpu, "d9 e8"), -1);
	cr_expect_eq(cpu->fpu.fsw & (FSW_IE | FSW_SF | FSW_C1), FSW_IE | FSW_SF | FSW_C1);
	ff_free();
}

Test(x87, reset_state)
{
	struct cpu_fpu f;
	memset(&f, 0xa5, sizeof(f));
	cpu_fpu_reset(&f);
	cr_expect_eq(f.fcw, 0x37f);
	cr_expect_eq(f.fsw, 0);
	cr_expect_eq(f.ftw, 0xffff);
	cr_expect_eq(f.mxcsr, 0x1f80);
	cr_expect_eq(f.xmm[15].q[1], 0);
}

static uint32_t rd32(struct cpu *cpu, uint64_t gpa)
{
	uint32_t v;
	memcpy(&v, gmem_ptr(cpu->mem, gpa, 4), 4);
	return v;
}

/* Real mode ("unreal": 4 GiB data limits): the real-mode FSTENV layout. */
Test(x87, real_mode_environment)
{
	struct cpu *cpu = ff_guest();
	cpu->cr0 = CR0_ET | CR0_NE;
	cpu->efer = 0;
	cpu->cr4 = CR4_OSFXSR;
	cpu->seg[SEG_CS].attr = 0x9b;
	cpu->seg[SEG_CS].limit = 0xffff;
	cpu_update_mode(cpu);
	cpu_tlb_flush(cpu, true);
	cr_expect_eq(cpu->code_bits, 16);
	cpu->fpu.fip = 0x12345;
	cpu->fpu.fop = 0x5a5;
	cpu->fpu.fdp = 0x6789a;
	cpu->gpr[R_RSI] = DATA_GPA;
	cr_expect_eq(run(cpu, "67 66 d9 36"), -1); /* fnstenv [esi], 32-bit format */
	cr_expect_eq(rd32(cpu, DATA_GPA + 12) & 0xffff, 0x2345);
	cr_expect_eq(rd32(cpu, DATA_GPA + 16), 0x15a5);
	cr_expect_eq(rd32(cpu, DATA_GPA + 20) & 0xffff, 0x789a);
	cr_expect_eq(rd32(cpu, DATA_GPA + 24), 0x6000);
	cpu->fpu.fip = cpu->fpu.fdp = cpu->fpu.fop = 0;
	cr_expect_eq(run(cpu, "67 66 d9 26"), -1); /* fldenv */
	cr_expect_eq(cpu->fpu.fip, 0x12345);
	cr_expect_eq(cpu->fpu.fop, 0x5a5);
	cr_expect_eq(cpu->fpu.fdp, 0x6789a);
	/* 16-bit format: FIP[19:16] in bits 15:12 with the opcode. */
	cr_expect_eq(run(cpu, "67 d9 36"), -1);
	uint32_t w = rd32(cpu, DATA_GPA + 8);
	cr_expect_eq(w & 0xffff, 0x15a5);
	/* fxsave in 16-bit code: 8 XMM registers only. */
	cpu->fpu.xmm[8].q[0] = 0x1111;
	memset(gmem_ptr(cpu->mem, DATA_GPA, 512), 0xee, 512);
	cr_expect_eq(run(cpu, "67 0f ae 06"), -1);
	cr_expect_eq(rd32(cpu, DATA_GPA + 160 + 16 * 8), 0xeeeeeeee);
	cr_expect_eq(rd32(cpu, DATA_GPA + 24), 0x1f80);
	ff_free();
}

/* Compatibility mode: FXSAVE saves XMM0-7 and 32-bit pointers. */
Test(x87, compat_mode_fxsave)
{
	struct cpu *cpu = ff_guest();
	cpu->seg[SEG_CS].attr = 0xc09b;
	cpu_update_mode(cpu);
	cr_expect_eq(cpu->code_bits, 32);
	cpu->fpu.fip = 0x1122334455667788ULL;
	cpu->fpu.xmm[7].q[0] = 0x77;
	cpu->fpu.xmm[9].q[0] = 0x99;
	cpu->gpr[R_RSI] = DATA_GPA;
	memset(gmem_ptr(cpu->mem, DATA_GPA, 512), 0xee, 512);
	cr_expect_eq(run(cpu, "0f ae 06"), -1);
	cr_expect_eq(rd32(cpu, DATA_GPA + 8), 0x55667788);
	cr_expect_eq(rd32(cpu, DATA_GPA + 12), 0);
	cr_expect_eq(rd32(cpu, DATA_GPA + 160 + 16 * 7), 0x77);
	cr_expect_eq(rd32(cpu, DATA_GPA + 160 + 16 * 9), 0xeeeeeeee);
	/* fxrstor there leaves XMM8-15 alone. */
	cpu->fpu.xmm[7].q[0] = 0;
	cr_expect_eq(run(cpu, "0f ae 0e"), -1);
	cr_expect_eq(cpu->fpu.xmm[7].q[0], 0x77);
	cr_expect_eq(cpu->fpu.xmm[9].q[0], 0x99);
	ff_free();
}
