/* String instructions: rep forms, both directions, address sizes, restarts. */
#include "core_fixture.h"

static struct cfx *F;
static void setup(void) { F = cfx_new(64); }
static void teardown(void) { cfx_free(F); }
TestSuite(string, .init = setup, .fini = teardown);

/* Runs a rep instruction to completion (it may stop after a chunk with RIP unchanged). */
static void run_rep(const uint8_t *code, unsigned len)
{
	for (int i = 0; i < 1000; i++) {
		cr_assert_eq(cfx_exec(F, code, len), -1);
		if (F->cpu.rip != CFX_CODE)
			return;
	}
	cr_assert_fail("rep never finished");
}
#define REP(...)                                                  \
	do {                                                      \
		static const uint8_t c_[] = { __VA_ARGS__ };      \
		run_rep(c_, sizeof(c_));                          \
	} while (0)

Test(string, movsb_forward_overlap_replicates)
{
	struct cpu *c = &F->cpu;
	uint8_t *m = F->ram + 0x10000;
	for (int i = 0; i < 16; i++)
		m[i] = (uint8_t)(i + 1);
	c->gpr[R_RSI] = 0x10000;
	c->gpr[R_RDI] = 0x10001;
	c->gpr[R_RCX] = 15;
	REP(0xf3, 0xa4);
	for (int i = 0; i < 16; i++)
		cr_assert_eq(m[i], 1, "byte %d", i);
	cr_assert_eq(c->gpr[R_RCX], 0);
	cr_assert_eq(c->gpr[R_RSI], 0x1000f);
	cr_assert_eq(c->gpr[R_RDI], 0x10010);
}

Test(string, movs_large_across_pages_and_chunks)
{
	struct cpu *c = &F->cpu;
	uint8_t *src = F->ram + 0x100003, *dst = F->ram + 0x200001;
	unsigned n = 100000;
	for (unsigned i = 0; i < n; i++)
		src[i] = (uint8_t)(i * 7 + 3);
	c->gpr[R_RSI] = 0x100003;
	c->gpr[R_RDI] = 0x200001;
	c->gpr[R_RCX] = n;
	REP(0xf3, 0xa4);
	cr_assert_eq(memcmp(src, dst, n), 0);
	cr_assert_eq(c->gpr[R_RCX], 0);
	cr_assert_eq(c->gpr[R_RDI], 0x200001 + n);
	/* quadwords */
	memset(dst, 0, n);
	c->gpr[R_RSI] = 0x100003;
	c->gpr[R_RDI] = 0x200001;
	c->gpr[R_RCX] = n / 8;
	REP(0xf3, 0x48, 0xa5);
	cr_assert_eq(memcmp(src, dst, n / 8 * 8), 0);
	cr_assert_eq(c->gpr[R_RSI], 0x100003 + n / 8 * 8);
}

Test(string, movsd_backward)
{
	struct cpu *c = &F->cpu;
	uint32_t *m = (uint32_t *)(F->ram + 0x10000);
	for (int i = 0; i < 8; i++)
		m[i] = 100 + i;
	cpu_set_rflags(c, 2 | FL_DF);
	/* move m[0..3] to m[2..5], backwards (overlap safe) */
	c->gpr[R_RSI] = 0x10000 + 12;
	c->gpr[R_RDI] = 0x10000 + 20;
	c->gpr[R_RCX] = 4;
	REP(0xf3, 0xa5);
	cr_assert_eq(m[2], 100);
	cr_assert_eq(m[5], 103);
	cr_assert_eq(c->gpr[R_RSI], 0x10000 - 4);
	cr_assert_eq(c->gpr[R_RDI], 0x10000 + 4);
}

Test(string, stos)
{
	struct cpu *c = &F->cpu;
	c->gpr[R_RAX] = 0x1122334455667788ULL;
	c->gpr[R_RDI] = 0x10ff8;
	c->gpr[R_RCX] = 1000;
	REP(0xf3, 0x48, 0xab);
	uint64_t *q = (uint64_t *)(F->ram + 0x10ff8);
	for (int i = 0; i < 1000; i++)
		cr_assert_eq(q[i], 0x1122334455667788ULL);
	cr_assert_eq(c->gpr[R_RDI], 0x10ff8 + 8000);
	c->gpr[R_RDI] = 0x20000;
	c->gpr[R_RCX] = 50000;
	REP(0xf3, 0xaa);
	for (int i = 0; i < 50000; i++)
		cr_assert_eq(F->ram[0x20000 + i], 0x88);
	cr_assert_eq(F->ram[0x20000 + 50000], 0);
	/* rcx = 0: nothing */
	c->gpr[R_RDI] = 0x30000;
	c->gpr[R_RCX] = 0;
	REP(0xf3, 0xaa);
	cr_assert_eq(F->ram[0x30000], 0);
	cr_assert_eq(c->gpr[R_RDI], 0x30000);
	/* stosw backwards */
	cpu_set_rflags(c, 2 | FL_DF);
	c->gpr[R_RDI] = 0x30010;
	cr_assert_eq(EXEC(F, 0x66, 0xab), -1);
	cr_assert_eq(*(uint16_t *)(F->ram + 0x30010), 0x7788);
	cr_assert_eq(c->gpr[R_RDI], 0x3000e);
}

Test(string, cmps_scas_lods)
{
	struct cpu *c = &F->cpu;
	memcpy(F->ram + 0x10000, "hello world", 11);
	memcpy(F->ram + 0x11000, "hello there", 11);
	c->gpr[R_RSI] = 0x10000;
	c->gpr[R_RDI] = 0x11000;
	c->gpr[R_RCX] = 11;
	REP(0xf3, 0xa6); /* repe cmpsb */
	cr_assert_eq(c->gpr[R_RCX], 11 - 7);
	cr_assert_eq(c->gpr[R_RSI], 0x10007);
	cr_assert(!flag_zf(c));
	cr_assert(!flag_cf(c)); /* 'w' > 't' */
	c->gpr[R_RDI] = 0x10000;
	c->gpr[R_RCX] = 100;
	c->gpr[R_RAX] = 'w';
	REP(0xf2, 0xae); /* repne scasb */
	cr_assert(flag_zf(c));
	cr_assert_eq(c->gpr[R_RDI], 0x10007);
	cr_assert_eq(c->gpr[R_RCX], 100 - 7);
	/* not found: rcx runs out, ZF clear */
	c->gpr[R_RDI] = 0x10000;
	c->gpr[R_RCX] = 5;
	REP(0xf2, 0xae);
	cr_assert(!flag_zf(c));
	cr_assert_eq(c->gpr[R_RCX], 0);
	/* lodsw */
	c->gpr[R_RSI] = 0x10000;
	c->gpr[R_RAX] = 0xffffffffffffffffULL;
	cr_assert_eq(EXEC(F, 0x66, 0xad), -1);
	cr_assert_eq(c->gpr[R_RAX], 0xffffffffffff6568ULL);
	cr_assert_eq(c->gpr[R_RSI], 0x10002);
	/* single cmpsq sets flags, advances */
	c->gpr[R_RSI] = 0x10000;
	c->gpr[R_RDI] = 0x11000;
	cr_assert_eq(EXEC(F, 0x48, 0xa7), -1);
	cr_assert(!flag_zf(c));
	cr_assert_eq(c->gpr[R_RDI], 0x11008);
}

Test(string, address_size_wrap)
{
	struct cpu *c = &F->cpu;
	/* 64-bit code, 67: esi/edi, zero-extended when written */
	F->ram[0x10000] = 0x5a;
	c->gpr[R_RSI] = 0xffffffff00010000ULL;
	c->gpr[R_RDI] = 0x20000;
	cr_assert_eq(EXEC(F, 0x67, 0xa4), -1);
	cr_assert_eq(F->ram[0x20000], 0x5a);
	cr_assert_eq(c->gpr[R_RSI], 0x10001);
	/* 16-bit code: si wraps at 64K, upper bits kept */
	cfx_set_mode(F, 16);
	F->ram[0xffff] = 0x77;
	c->gpr[R_RSI] = 0x1234ffff;
	c->gpr[R_RDI] = 0x5000;
	c->gpr[R_RCX] = 0xabcd0001;
	REP(0xf3, 0xa4);
	cr_assert_eq(F->ram[0x5000], 0x77);
	cr_assert_eq(c->gpr[R_RSI], 0x12340000);
	cr_assert_eq(c->gpr[R_RCX], 0xabcd0000);
	/* segment override on the source, es fixed for the destination */
	c->seg[SEG_FS].base = 0x40000;
	F->ram[0x40010] = 0x99;
	c->gpr[R_RSI] = 0x10;
	c->gpr[R_RDI] = 0x6000;
	cr_assert_eq(EXEC(F, 0x64, 0xa4), -1);
	cr_assert_eq(F->ram[0x6000], 0x99);
}
