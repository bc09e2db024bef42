/*
 * Integer instructions against the host CPU: the same bytes run natively
 * and in the interpreter from the same registers and flags, at every
 * operand size and edge values; flags the SDM leaves undefined are masked.
 */
#include <stdio.h>

#include "core_fixture.h"

static struct cfx *F;
static void setup(void) { F = cfx_new(64); }
static void teardown(void) { cfx_free(F); }
TestSuite(alu, .init = setup, .fini = teardown);

static const uint64_t vals[] = {
	0, 1, 2, 7, 8, 9, 0xf, 0x10, 0x1f, 0x20, 0x21, 0x3f, 0x40, 0x41, 0x7f, 0x80, 0x81, 0xfe, 0xff,
	0x100, 0x7fff, 0x8000, 0x8001, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0x80000001,
	0xffffffff, 0x100000000ULL, 0x7fffffffffffffffULL, 0x8000000000000000ULL,
	0x8000000000000001ULL, 0xfffffffffffffffeULL, 0xffffffffffffffffULL,
	0x123456789abcdef0ULL, 0xfedcba9876543210ULL, 0x00000000ffff0000ULL, 0x5555aaaa5555aaaaULL,
};
#define NV (sizeof(vals) / sizeof(vals[0]))
static const uint64_t fl_in[] = { 0x2, 0x2 | FL_CF, 0x2 | FL_ARITH };

/* What the SDM leaves undefined, as a function of the inputs. */
typedef uint64_t (*undef_fn)(unsigned size, uint64_t a, uint64_t b);

static uint64_t u_none(unsigned s, uint64_t a, uint64_t b) { (void)s; (void)a; (void)b; return 0; }
static uint64_t u_af(unsigned s, uint64_t a, uint64_t b) { (void)s; (void)a; (void)b; return FL_AF; }
static uint64_t u_mul(unsigned s, uint64_t a, uint64_t b) { (void)s; (void)a; (void)b; return FL_SF | FL_ZF | FL_AF | FL_PF; }
static uint64_t u_all(unsigned s, uint64_t a, uint64_t b) { (void)s; (void)a; (void)b; return FL_ARITH; }
static uint64_t u_bt(unsigned s, uint64_t a, uint64_t b) { (void)s; (void)a; (void)b; return FL_OF | FL_SF | FL_AF | FL_PF; }
static uint64_t u_bsf(unsigned s, uint64_t a, uint64_t b) { (void)s; (void)a; (void)b; return FL_CF | FL_OF | FL_SF | FL_AF | FL_PF; }
static uint64_t u_tz(unsigned s, uint64_t a, uint64_t b) { (void)s; (void)a; (void)b; return FL_OF | FL_SF | FL_AF | FL_PF; }
/* shifts by cl (b): AF undefined; OF when the masked count is not 1 */
static uint64_t u_shift(unsigned s, uint64_t a, uint64_t b)
{
	(void)a;
	unsigned c = (unsigned)(b & (s == 8 ? 63 : 31));
	if (c == 0)
		return 0;
	return FL_AF | (c != 1 ? FL_OF : 0);
}
static uint64_t u_af_of(unsigned s, uint64_t a, uint64_t b) { (void)s; (void)a; (void)b; return FL_AF | FL_OF; }
static uint64_t u_rot_imm(unsigned s, uint64_t a, uint64_t b) { (void)s; (void)a; (void)b; return FL_OF; }
static uint64_t u_rot(unsigned s, uint64_t a, uint64_t b)
{
	(void)a;
	unsigned c = (unsigned)(b & (s == 8 ? 63 : 31));
	return c > 1 ? FL_OF : 0;
}

struct acase {
	const char *name;
	uint8_t op[6];	 /* opcode bytes after the size prefix */
	unsigned oplen;
	uint8_t sizes;	 /* bit mask of 1, 2, 4, 8 */
	bool byte_op;	 /* size 1 uses the opcode - 1 form (first opcode byte) */
	undef_fn undef;
	bool skip_wide_shift16; /* shld/shrd: 16-bit counts above 16 are undefined */
	uint8_t pre; /* a legacy prefix before the size prefix (f3) */
};

#define S_ALL 0xf
#define S_WIDE 0xe

static const struct acase cases[] = {
	{ "add", { 0x01, 0xc8 }, 2, S_ALL, true, u_none },
	{ "or", { 0x09, 0xc8 }, 2, S_ALL, true, u_af },
	{ "adc", { 0x11, 0xc8 }, 2, S_ALL, true, u_none },
	{ "sbb", { 0x19, 0xc8 }, 2, S_ALL, true, u_none },
	{ "and", { 0x21, 0xc8 }, 2, S_ALL, true, u_af },
	{ "sub", { 0x29, 0xc8 }, 2, S_ALL, true, u_none },
	{ "xor", { 0x31, 0xc8 }, 2, S_ALL, true, u_af },
	{ "cmp", { 0x39, 0xc8 }, 2, S_ALL, true, u_none },
	{ "add_ge", { 0x03, 0xc1 }, 2, S_ALL, true, u_none },
	{ "sbb_ge", { 0x1b, 0xc1 }, 2, S_ALL, true, u_none },
	{ "test", { 0x85, 0xc8 }, 2, S_ALL, true, u_af },
	{ "xchg", { 0x87, 0xc8 }, 2, S_ALL, true, u_none },
	{ "inc", { 0xff, 0xc0 }, 2, S_ALL, true, u_none },
	{ "dec", { 0xff, 0xc8 }, 2, S_ALL, true, u_none },
	{ "not", { 0xf7, 0xd0 }, 2, S_ALL, true, u_none },
	{ "neg", { 0xf7, 0xd8 }, 2, S_ALL, true, u_none },
	{ "mul", { 0xf7, 0xe1 }, 2, S_ALL, true, u_mul },
	{ "imul1", { 0xf7, 0xe9 }, 2, S_ALL, true, u_mul },
	{ "div", { 0xf7, 0xf1 }, 2, S_ALL, true, u_all },
	{ "idiv", { 0xf7, 0xf9 }, 2, S_ALL, true, u_all },
	{ "imul2", { 0x0f, 0xaf, 0xc1 }, 3, S_WIDE, false, u_mul },
	{ "imul3", { 0x6b, 0xc1, 0x85 }, 3, S_WIDE, false, u_mul },
	{ "imul3z", { 0x69, 0xc1, 0x01, 0x80, 0x00, 0x00 }, 6, 0xc, false, u_mul },
	{ "imul3w", { 0x69, 0xc1, 0x01, 0x80 }, 4, 0x2, false, u_mul },
	{ "rol", { 0xd3, 0xc0 }, 2, S_ALL, true, u_rot },
	{ "ror", { 0xd3, 0xc8 }, 2, S_ALL, true, u_rot },
	{ "rcl", { 0xd3, 0xd0 }, 2, S_ALL, true, u_rot },
	{ "rcr", { 0xd3, 0xd8 }, 2, S_ALL, true, u_rot },
	{ "shl", { 0xd3, 0xe0 }, 2, S_ALL, true, u_shift },
	{ "shr", { 0xd3, 0xe8 }, 2, S_ALL, true, u_shift },
	{ "sar", { 0xd3, 0xf8 }, 2, S_ALL, true, u_shift },
	{ "shl1", { 0xd1, 0xe0 }, 2, S_ALL, true, u_af },
	{ "shr1", { 0xd1, 0xe8 }, 2, S_ALL, true, u_af },
	{ "sar1", { 0xd1, 0xf8 }, 2, S_ALL, true, u_af },
	{ "rcl1", { 0xd1, 0xd0 }, 2, S_ALL, true, u_none },
	{ "rcr1", { 0xd1, 0xd8 }, 2, S_ALL, true, u_none },
	{ "rol1", { 0xd1, 0xc0 }, 2, S_ALL, true, u_none },
	{ "ror1", { 0xd1, 0xc8 }, 2, S_ALL, true, u_none },
	{ "shld", { 0x0f, 0xa5, 0xc8 }, 3, S_WIDE, false, u_shift, true },
	{ "shrd", { 0x0f, 0xad, 0xc8 }, 3, S_WIDE, false, u_shift, true },
	{ "bt", { 0x0f, 0xa3, 0xc8 }, 3, S_WIDE, false, u_bt },
	{ "bts", { 0x0f, 0xab, 0xc8 }, 3, S_WIDE, false, u_bt },
	{ "btr", { 0x0f, 0xb3, 0xc8 }, 3, S_WIDE, false, u_bt },
	{ "btc", { 0x0f, 0xbb, 0xc8 }, 3, S_WIDE, false, u_bt },
	{ "bts_imm", { 0x0f, 0xba, 0xe8, 0x25 }, 4, S_WIDE, false, u_bt },
	{ "bsf", { 0x0f, 0xbc, 0xc1 }, 3, S_WIDE, false, u_bsf },
	{ "bsr", { 0x0f, 0xbd, 0xc1 }, 3, S_WIDE, false, u_bsf },
	{ "tzcnt", { 0x0f, 0xbc, 0xc1 }, 3, S_WIDE, false, u_tz, false, 0xf3 },
	{ "lzcnt", { 0x0f, 0xbd, 0xc1 }, 3, S_WIDE, false, u_tz, false, 0xf3 },
	{ "popcnt", { 0x0f, 0xb8, 0xc1 }, 3, S_WIDE, false, u_none, false, 0xf3 },
	{ "xadd", { 0x0f, 0xc1, 0xc8 }, 3, S_ALL, true, u_none },
	{ "cmpxchg", { 0x0f, 0xb1, 0xc8 }, 3, S_ALL, true, u_none },
	{ "movzx8", { 0x0f, 0xb6, 0xc1 }, 3, S_WIDE, false, u_none },
	{ "movsx8", { 0x0f, 0xbe, 0xc1 }, 3, S_WIDE, false, u_none },
	{ "movsx16", { 0x0f, 0xbf, 0xc1 }, 3, 0xc, false, u_none },
	{ "cmovb", { 0x0f, 0x42, 0xc1 }, 3, S_WIDE, false, u_none },
	{ "cmovle", { 0x0f, 0x4e, 0xc1 }, 3, S_WIDE, false, u_none },
	{ "bswap", { 0x0f, 0xc8 }, 2, 0xc, false, u_none },
	{ "cbw", { 0x98 }, 1, S_WIDE, false, u_none },
	{ "cwd", { 0x99 }, 1, S_WIDE, false, u_none },
	{ "lea", { 0x8d, 0x44, 0x48, 0x7f }, 4, S_WIDE, false, u_none },
	{ "adcx", { 0x0f, 0x38, 0xf6, 0xc1 }, 4, 0x4, false, u_none, false, 0x66 },
	{ "adox", { 0x0f, 0x38, 0xf6, 0xc1 }, 4, 0xc, false, u_none, false, 0xf3 },
	{ "shl_imm", { 0xc1, 0xe0, 0x05 }, 3, S_ALL, true, u_af },
	{ "rol_imm", { 0xc1, 0xc0, 0x0c }, 3, S_ALL, true, u_rot_imm },
	{ "sar_imm", { 0xc1, 0xf8, 0x3f }, 3, S_ALL, true, u_af_of },
	{ "shrd_imm", { 0x0f, 0xac, 0xc8, 0x07 }, 4, S_WIDE, false, u_af_of },
	{ "bsf_eq", { 0x0f, 0xbc, 0xc0 }, 3, S_WIDE, false, u_bsf },
	{ "test_imm", { 0xf7, 0xc1, 0x80, 0x00, 0x00, 0x80 }, 6, 0xc, false, u_af },
	{ "neg_ah", { 0xf6, 0xdc }, 2, 0x1, false, u_none },
	{ "setcc_all", { 0x0f, 0x9f, 0xc1 }, 3, 0x1, false, u_none },
};

/* The bytes for one size: prefix, and the byte form's opcode one lower. */
static unsigned build(const struct acase *c, unsigned size, bool hibyte, uint8_t *out)
{
	unsigned n = 0;
	if (c->pre)
		out[n++] = c->pre;
	if (size == 2)
		out[n++] = 0x66;
	if (size == 8)
		out[n++] = 0x48;
	memcpy(out + n, c->op, c->oplen);
	if (size == 1 && c->byte_op) {
		unsigned i = c->op[0] == 0x0f ? 1 : 0;
		out[n + i] -= 1;
		if (hibyte) /* rm = ah instead of al */
			out[n + i + 1] = (uint8_t)((out[n + i + 1] & ~7) | 4);
	}
	return n + c->oplen;
}

static void run_case(const struct acase *c, unsigned size, bool hibyte)
{
	uint8_t code[16];
	unsigned len = build(c, size, hibyte, code);
	for (unsigned i = 0; i < NV; i++) {
		for (unsigned j = 0; j < NV; j++) {
			for (unsigned k = 0; k < 3; k++) {
				uint64_t a = vals[i], b = vals[j];
				if (c->skip_wide_shift16 && size == 2 && (b & 31) > 16)
					continue;
				struct nstate in = { .flags = fl_in[k] }, ns, is;
				for (unsigned r = 0; r < 16; r++)
					in.gpr[r] = 0x1111111111111111ULL * r;
				in.gpr[R_RAX] = a;
				in.gpr[R_RCX] = b;
				in.gpr[R_RDX] = vals[(i + j) % NV] & (size == 8 ? ~0ULL : 3);
				in.gpr[R_RSP] = 0;
				is = in;
				int v = interp_run(F, code, len, &is);
				if (v >= 0) {
					cr_assert(!strcmp(c->name, "div") || !strcmp(c->name, "idiv"),
						  "%s: exception %d", c->name, v);
					cr_assert_eq(v, EXC_DE);
					continue;
				}
				ns = in;
				if (getenv("ALU_TRACE"))
					fprintf(stderr, "%s size %u len %u\n", c->name, size, len);
				native_run(code, len, &ns);
				uint64_t mask = FL_ARITH & ~c->undef(size, a, b);
				for (unsigned r = 0; r < 16; r++)
					cr_assert_eq(is.gpr[r], ns.gpr[r],
						     "%s size %u%s a=%#lx b=%#lx f=%#lx: r%u %#lx != host %#lx",
						     c->name, size, hibyte ? " (ah)" : "", a, b, in.flags, r,
						     is.gpr[r], ns.gpr[r]);
				cr_assert_eq(is.flags & mask, ns.flags & mask,
					     "%s size %u%s a=%#lx b=%#lx f=%#lx: flags %#lx != host %#lx",
					     c->name, size, hibyte ? " (ah)" : "", a, b, in.flags,
					     is.flags & mask, ns.flags & mask);
			}
		}
	}
}

Test(alu, against_host)
{
	for (unsigned ci = 0; ci < sizeof(cases) / sizeof(cases[0]); ci++) {
		const struct acase *c = &cases[ci];
		for (unsigned size = 1; size <= 8; size *= 2) {
			if (!(c->sizes & size))
				continue;
			run_case(c, size, false);
			if (size == 1 && c->byte_op)
				run_case(c, size, true);
		}
	}
}

Test(alu, div_faults)
{
	/* div ecx with ecx = 0 */
	F->cpu.gpr[R_RCX] = 0;
	cr_assert_eq(EXEC(F, 0xf7, 0xf1), EXC_DE);
	/* idiv: INT64_MIN / -1 */
	F->cpu.gpr[R_RAX] = 0;
	F->cpu.gpr[R_RDX] = 0x8000000000000000ULL;
	F->cpu.gpr[R_RCX] = ~0ULL;
	cr_assert_eq(EXEC(F, 0x48, 0xf7, 0xf9), EXC_DE);
	F->cpu.gpr[R_RDX] = ~0ULL;
	F->cpu.gpr[R_RAX] = 0x8000000000000000ULL;
	cr_assert_eq(EXEC(F, 0x48, 0xf7, 0xf9), EXC_DE);
	/* 32-bit: edx:eax = 0x80000000:0 / -1 */
	F->cpu.gpr[R_RDX] = 0x80000000;
	F->cpu.gpr[R_RAX] = 0;
	cr_assert_eq(EXEC(F, 0xf7, 0xf9), EXC_DE);
	/* quotient too large for div */
	F->cpu.gpr[R_RDX] = 5;
	F->cpu.gpr[R_RCX] = 5;
	cr_assert_eq(EXEC(F, 0x48, 0xf7, 0xf1), EXC_DE);
	F->cpu.gpr[R_RCX] = 6;
	cr_assert_eq(EXEC(F, 0x48, 0xf7, 0xf1), -1);
	/* aam 0 (32-bit code) */
	cfx_set_mode(F, 32);
	cr_assert_eq(EXEC(F, 0xd4, 0x00), EXC_DE);
}

Test(alu, memory_forms)
{
	struct cpu *c = &F->cpu;
	uint64_t *m = (uint64_t *)(F->ram + 0x2000);
	*m = 5;
	c->gpr[R_RBX] = 0x2000;
	c->gpr[R_RCX] = 7;
	cr_assert_eq(EXEC(F, 0x48, 0x01, 0x0b), -1); /* add [rbx], rcx */
	cr_assert_eq(*m, 12);
	cr_assert_eq(EXEC(F, 0xf0, 0x48, 0x0f, 0xc1, 0x0b), -1); /* lock xadd [rbx], rcx */
	cr_assert_eq(*m, 19);
	cr_assert_eq(c->gpr[R_RCX], 12);
	cr_assert_eq(EXEC(F, 0xf0, 0x83, 0x2b, 0x13), -1); /* lock sub dword [rbx], 19 */
	cr_assert_eq(*m, 0);
	cr_assert(flag_zf(c));
	/* bt with a register offset beyond the operand, negative too */
	memset(F->ram + 0x2000, 0, 64);
	c->gpr[R_RCX] = 100;
	cr_assert_eq(EXEC(F, 0x48, 0x0f, 0xab, 0x0b), -1); /* bts [rbx], rcx */
	cr_assert_eq(F->ram[0x2000 + 12], 0x10);
	cr_assert(!flag_cf(c));
	cr_assert_eq(EXEC(F, 0x0f, 0xa3, 0x0b), -1); /* bt [rbx], ecx */
	cr_assert(flag_cf(c));
	c->gpr[R_RCX] = (uint64_t)-1;
	cr_assert_eq(EXEC(F, 0xf0, 0x0f, 0xab, 0x0b), -1); /* lock bts [rbx], ecx(-1) */
	cr_assert_eq(F->ram[0x2000 - 1], 0x80);
	/* cmpxchg success and failure */
	*m = 42;
	c->gpr[R_RAX] = 42;
	c->gpr[R_RCX] = 99;
	cr_assert_eq(EXEC(F, 0xf0, 0x48, 0x0f, 0xb1, 0x0b), -1);
	cr_assert_eq(*m, 99);
	cr_assert(flag_zf(c));
	cr_assert_eq(EXEC(F, 0xf0, 0x48, 0x0f, 0xb1, 0x0b), -1);
	cr_assert_eq(c->gpr[R_RAX], 99);
	cr_assert(!flag_zf(c));
	/* cmpxchg8b / cmpxchg16b */
	c->gpr[R_RSI] = 0x2000;
	m[0] = 0x1111111122222222ULL;
	c->gpr[R_RAX] = 0x22222222;
	c->gpr[R_RDX] = 0x11111111;
	c->gpr[R_RBX] = 0x44444444;
	c->gpr[R_RCX] = 0x33333333;
	cr_assert_eq(EXEC(F, 0xf0, 0x0f, 0xc7, 0x0e), -1);
	cr_assert_eq(m[0], 0x3333333344444444ULL, "m0 %#lx zf %d", m[0], flag_zf(c));
	cr_assert(flag_zf(c));
	cr_assert_eq(EXEC(F, 0x0f, 0xc7, 0x0e), -1);
	cr_assert(!flag_zf(c));
	cr_assert_eq(c->gpr[R_RAX], 0x44444444);
	cr_assert_eq(c->gpr[R_RDX], 0x33333333);
	m[0] = 1;
	m[1] = 2;
	c->gpr[R_RAX] = 1;
	c->gpr[R_RDX] = 2;
	c->gpr[R_RBX] = 3;
	c->gpr[R_RCX] = 4;
	cr_assert_eq(EXEC(F, 0xf0, 0x48, 0x0f, 0xc7, 0x0e), -1);
	cr_assert_eq(m[0], 3);
	cr_assert_eq(m[1], 4);
	c->gpr[R_RSI] = 0x2008;
	cr_assert_eq(EXEC(F, 0x48, 0x0f, 0xc7, 0x0e), EXC_GP); /* unaligned */
	/* xchg with memory, neg/not/inc with lock */
	c->gpr[R_RBX] = 0x2000;
	*m = 7;
	c->gpr[R_RCX] = 9;
	cr_assert_eq(EXEC(F, 0x48, 0x87, 0x0b), -1);
	cr_assert_eq(*m, 9);
	cr_assert_eq(c->gpr[R_RCX], 7);
	cr_assert_eq(EXEC(F, 0xf0, 0x48, 0xf7, 0x1b), -1); /* lock neg */
	cr_assert_eq(*m, (uint64_t)-9);
	cr_assert(flag_cf(c));
	cr_assert_eq(EXEC(F, 0xf0, 0x48, 0xff, 0x03), -1); /* lock inc */
	cr_assert_eq(*m, (uint64_t)-8);
	cr_assert(flag_cf(c)); /* inc keeps CF */
	/* moffs, movsxd, setcc to memory, pop to memory */
	*m = 0x8877665544332211ULL;
	cr_assert_eq(EXEC(F, 0x48, 0xa1, 0x00, 0x20, 0, 0, 0, 0, 0, 0), -1);
	cr_assert_eq(c->gpr[R_RAX], 0x8877665544332211ULL);
	c->gpr[R_RCX] = 0x80000000;
	cr_assert_eq(EXEC(F, 0x48, 0x63, 0xc1), -1);
	cr_assert_eq(c->gpr[R_RAX], 0xffffffff80000000ULL);
	/* shift on memory */
	*m = 0x81;
	cr_assert_eq(EXEC(F, 0xd0, 0x23), -1); /* shl byte [rbx], 1 */
	cr_assert_eq(*m, 0x02);
	cr_assert(flag_cf(c));
	cr_assert(flag_cf(c));
}

Test(alu, byte_regs_rex)
{
	struct cpu *c = &F->cpu;
	c->gpr[R_RSI] = 0x1234;
	c->gpr[R_RAX] = 0;
	cr_assert_eq(EXEC(F, 0x40, 0x88, 0xf0), -1); /* mov al, sil */
	cr_assert_eq(c->gpr[R_RAX], 0x34);
	c->gpr[R_RDX] = 0xab00;
	cr_assert_eq(EXEC(F, 0x88, 0xf0), -1); /* mov al, dh */
	cr_assert_eq(c->gpr[R_RAX], 0xab);
	cr_assert_eq(EXEC(F, 0x41, 0xb7, 0x99), -1); /* mov r15b, 0x99 */
	cr_assert_eq(c->gpr[15] & 0xff, 0x99);
	c->gpr[R_RAX] = ~0ULL;
	cr_assert_eq(EXEC(F, 0xb8, 1, 0, 0, 0), -1); /* mov eax, 1 zero-extends */
	cr_assert_eq(c->gpr[R_RAX], 1);
	c->gpr[R_RAX] = ~0ULL;
	cr_assert_eq(EXEC(F, 0x66, 0xb8, 1, 0), -1);
	cr_assert_eq(c->gpr[R_RAX], 0xffffffffffff0001ULL);
	c->gpr[R_RAX] = 0xffffffff00000005ULL;
	cr_assert_eq(EXEC(F, 0x90), -1); /* nop does not zero-extend */
	cr_assert_eq(c->gpr[R_RAX], 0xffffffff00000005ULL);
}

Test(alu, bcd_and_misc_32)
{
	struct cpu *c = &F->cpu;
	cfx_set_mode(F, 32);
	/* daa: 0x19 + 0x28 = 0x41 -> 0x47 */
	c->gpr[R_RAX] = 0x19;
	c->gpr[R_RCX] = 0x28;
	cr_assert_eq(EXEC(F, 0x00, 0xc8), -1);
	cr_assert_eq(EXEC(F, 0x27), -1);
	cr_assert_eq(c->gpr[R_RAX] & 0xff, 0x47);
	/* das: 0x47 - 0x28 = 0x1f -> 0x19 */
	c->gpr[R_RCX] = 0x28;
	cr_assert_eq(EXEC(F, 0x28, 0xc8), -1);
	cr_assert_eq(EXEC(F, 0x2f), -1);
	cr_assert_eq(c->gpr[R_RAX] & 0xff, 0x19);
	/* aaa: al = 9 + 5 = 0x0e -> ax 0x0104 */
	c->gpr[R_RAX] = 9;
	c->gpr[R_RCX] = 5;
	cr_assert_eq(EXEC(F, 0x00, 0xc8), -1);
	cr_assert_eq(EXEC(F, 0x37), -1);
	cr_assert_eq(c->gpr[R_RAX] & 0xffff, 0x0104);
	cr_assert(flag_cf(c));
	/* aas with AH = 0: AX - 6, then AH wraps to 0xff (found by fuzz_cpu) */
	c->gpr[R_RAX] = 0x0c;
	cr_assert_eq(EXEC(F, 0x3f), -1);
	cr_assert_eq(c->gpr[R_RAX] & 0xffff, 0xff06);
	cr_assert(flag_cf(c));
	/* aam / aad */
	c->gpr[R_RAX] = 47;
	cr_assert_eq(EXEC(F, 0xd4, 0x0a), -1);
	cr_assert_eq(c->gpr[R_RAX] & 0xffff, 0x0407);
	cr_assert_eq(EXEC(F, 0xd5, 0x0a), -1);
	cr_assert_eq(c->gpr[R_RAX] & 0xffff, 47);
	/* pusha / popa */
	c->gpr[R_RSP] = 0x8000;
	for (int r = 0; r < 8; r++)
		if (r != R_RSP)
			c->gpr[r] = 0x100 + r;
	cr_assert_eq(EXEC(F, 0x60), -1);
	cr_assert_eq(c->gpr[R_RSP], 0x8000 - 32);
	uint32_t *st = (uint32_t *)(F->ram + 0x8000 - 32);
	cr_assert_eq(st[7], 0x100); /* eax pushed first */
	cr_assert_eq(st[3], 0x8000); /* original esp */
	cr_assert_eq(st[0], 0x107);
	for (int r = 0; r < 8; r++)
		if (r != R_RSP)
			c->gpr[r] = 0;
	cr_assert_eq(EXEC(F, 0x61), -1);
	cr_assert_eq(c->gpr[R_RSP], 0x8000);
	cr_assert_eq(c->gpr[R_RDI], 0x107);
	cr_assert_eq(c->gpr[R_RAX], 0x100);
	/* bound */
	uint32_t *b = (uint32_t *)(F->ram + 0x3000);
	b[0] = 10;
	b[1] = 20;
	c->gpr[R_RBX] = 0x3000;
	c->gpr[R_RAX] = 15;
	cr_assert_eq(EXEC(F, 0x62, 0x03), -1);
	c->gpr[R_RAX] = 21;
	cr_assert_eq(EXEC(F, 0x62, 0x03), EXC_BR);
	/* inc/dec short forms */
	c->gpr[R_RAX] = 0x7fffffff;
	cr_assert_eq(EXEC(F, 0x40), -1);
	cr_assert_eq(c->gpr[R_RAX], 0x80000000);
	cr_assert(cond(c, 0)); /* OF */
}

Test(alu, lahf_sahf_flags)
{
	struct cpu *c = &F->cpu;
	c->gpr[R_RAX] = 0xd500; /* SF ZF AF PF CF */
	cr_assert_eq(EXEC(F, 0x9e), -1);
	cr_assert_eq(cpu_get_rflags(c) & FL_ARITH, FL_SF | FL_ZF | FL_AF | FL_PF | FL_CF);
	cr_assert_eq(EXEC(F, 0xf5), -1); /* cmc */
	cr_assert(!flag_cf(c));
	cr_assert_eq(EXEC(F, 0xf9), -1); /* stc */
	cr_assert_eq(EXEC(F, 0x9f), -1);
	cr_assert_eq((c->gpr[R_RAX] >> 8) & 0xff, 0xd7);
	cr_assert_eq(EXEC(F, 0xfd), -1); /* std */
	cr_assert(cpu_get_rflags(c) & FL_DF);
	cr_assert_eq(EXEC(F, 0xfc), -1);
	cr_assert(!(cpu_get_rflags(c) & FL_DF));
}

Test(alu, locked_across_pages_and_on_code_page)
{
	struct cpu *c = &F->cpu;
	/* a qword across the 0x3000 page boundary: the slow (mutex) path */
	uint64_t v = 0x00ff00ff00ff00ffULL;
	memcpy(F->ram + 0x2ffc, &v, 8);
	c->gpr[R_RBX] = 0x2ffc;
	c->gpr[R_RCX] = 1;
	cr_assert_eq(EXEC(F, 0xf0, 0x48, 0x0f, 0xc1, 0x0b), -1); /* lock xadd [rbx], rcx */
	memcpy(&v, F->ram + 0x2ffc, 8);
	cr_assert_eq(v, 0x00ff00ff00ff0100ULL);
	cr_assert_eq(c->gpr[R_RCX], 0x00ff00ff00ff00ffULL);
	/* the instruction's own page (code): lock inc works and invalidates */
	c->gpr[R_RBX] = CFX_CODE + 0x100;
	F->ram[CFX_CODE + 0x100] = 41;
	cr_assert_eq(EXEC(F, 0xf0, 0xfe, 0x03), -1);
	cr_assert_eq(F->ram[CFX_CODE + 0x100], 42);
}

Test(alu, enter_nesting_and_16bit_branches)
{
	struct cpu *c = &F->cpu;
	/* enter 8, 2 in 64-bit code: push rbp, push [rbp-8], push frame */
	c->gpr[R_RSP] = 0x8000;
	c->gpr[R_RBP] = 0x9000;
	*(uint64_t *)(F->ram + 0x9000 - 8) = 0xabcdef;
	cr_assert_eq(EXEC(F, 0xc8, 0x08, 0x00, 0x02), -1);
	cr_assert_eq(*(uint64_t *)(F->ram + 0x8000 - 8), 0x9000);
	cr_assert_eq(*(uint64_t *)(F->ram + 0x8000 - 16), 0xabcdef);
	cr_assert_eq(*(uint64_t *)(F->ram + 0x8000 - 24), 0x8000 - 8);
	cr_assert_eq(c->gpr[R_RBP], 0x8000 - 8);
	cr_assert_eq(c->gpr[R_RSP], 0x8000 - 24 - 8);
	cr_assert_eq(EXEC(F, 0xc9), -1); /* leave */
	cr_assert_eq(c->gpr[R_RSP], 0x8000);
	cr_assert_eq(c->gpr[R_RBP], 0x9000);
	/* 16-bit code: a jump wraps within 64K */
	cfx_set_mode(F, 16);
	cr_assert_eq(cfx_exec_at(F, 0xfff0, (const uint8_t[]){ 0xeb, 0x20 }, 2), -1);
	cr_assert_eq(c->rip, 0x12);
	/* 32-bit code, 66 jcc rel16: the target is truncated to 16 bits */
	cfx_set_mode(F, 32);
	cpu_set_rflags(c, 2 | FL_ZF);
	cr_assert_eq(cfx_exec_at(F, 0x10000, (const uint8_t[]){ 0x66, 0x0f, 0x84, 0x10, 0x00 }, 5), -1);
	cr_assert_eq(c->rip, 0x0015);
	/* ret imm16 in 32-bit code */
	c->gpr[R_RSP] = 0x7000;
	*(uint32_t *)(F->ram + 0x7000) = 0x1234;
	cr_assert_eq(EXEC(F, 0xc2, 0x08, 0x00), -1);
	cr_assert_eq(c->rip, 0x1234);
	cr_assert_eq(c->gpr[R_RSP], 0x7000 + 4 + 8);
	/* xlat, cmov from memory, movzx from memory */
	F->ram[0x4005] = 0x5e;
	c->gpr[R_RBX] = 0x4000;
	c->gpr[R_RAX] = 5;
	cr_assert_eq(EXEC(F, 0xd7), -1);
	cr_assert_eq(c->gpr[R_RAX], 0x5e);
	cr_assert_eq(EXEC(F, 0x0f, 0xb7, 0x0b), -1); /* movzx ecx, word [ebx] */
	cr_assert_eq(c->gpr[R_RCX], *(uint16_t *)(F->ram + 0x4000));
}

Test(alu, rdrand_sets_cf)
{
	struct cpu *c = &F->cpu;
	c->gpr[R_RAX] = 0;
	cr_assert_eq(EXEC(F, 0x48, 0x0f, 0xc7, 0xf0), -1); /* rdrand rax */
	cr_assert(flag_cf(c));
	cr_assert_eq(EXEC(F, 0x0f, 0xc7, 0x30), EXC_UD); /* /6 with memory */
}
