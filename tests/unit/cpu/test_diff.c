/*
 * Differential test: random sequences of integer instructions (registers
 * only, no RSP, flags the SDM defines) run natively in an executable buffer
 * and in the interpreter through cpu_run (decoder, block cache, dispatch);
 * registers and flags must match.
 */
#include <stdio.h>

#include "core_fixture.h"

static struct cfx *F;
static void setup(void) { F = cfx_new(64); }
static void teardown(void) { cfx_free(F); }
TestSuite(diff, .init = setup, .fini = teardown);

struct gen {
	uint64_t s;
	uint8_t *p;
};

static uint64_t rnd(struct gen *g)
{
	g->s ^= g->s << 13;
	g->s ^= g->s >> 7;
	g->s ^= g->s << 17;
	return g->s;
}

static unsigned pick(struct gen *g, unsigned n) { return (unsigned)(rnd(g) % n); }

static void put(struct gen *g, uint8_t b) { *g->p++ = b; }

/* A general register other than rsp. */
static unsigned greg(struct gen *g)
{
	unsigned r;
	do
		r = pick(g, 16);
	while (r == R_RSP);
	return r;
}

static const unsigned sizes[] = { 1, 2, 4, 8 };

/*
 * Prefixes and REX for an instruction of `size` with ModRM reg/rm registers;
 * byte operands without REX may use AH..BH (4..7), with REX never SPL.
 */
static void pre(struct gen *g, unsigned size, unsigned *reg, unsigned *rm, bool byte_op)
{
	bool rex = size == 8 || *reg >= 8 || *rm >= 8;
	if (byte_op && size == 1 && !rex && pick(g, 4) == 0)
		rex = true; /* sil/dil/bpl forms */
	if (rex && byte_op && size == 1) {
		if (*reg == 4)
			*reg = 5;
		if (*rm == 4)
			*rm = 6;
	}
	if (size == 2)
		put(g, 0x66);
	if (rex)
		put(g, (uint8_t)(0x40 | (size == 8 ? 8 : 0) | ((*reg >> 3) << 2) | (*rm >> 3)));
}

static void modrm_rr(struct gen *g, unsigned reg, unsigned rm)
{
	put(g, (uint8_t)(0xc0 | ((reg & 7) << 3) | (rm & 7)));
}

static void imm(struct gen *g, unsigned n)
{
	uint64_t v = rnd(g);
	for (unsigned i = 0; i < n; i++)
		put(g, (uint8_t)(v >> (8 * i)));
}

/* One instruction (or a pair, when the first leaves flags undefined). */
static void gen_one(struct gen *g)
{
	unsigned size = sizes[pick(g, 4)], reg = greg(g), rm = greg(g);
	unsigned w = size == 1 ? 0 : 1;
	switch (pick(g, 22)) {
	case 0:
	case 1:
	case 2: /* alu r/m, reg */
		pre(g, size, &reg, &rm, true);
		put(g, (uint8_t)(pick(g, 8) * 8 + w + 2 * pick(g, 2)));
		modrm_rr(g, reg, rm);
		break;
	case 3: /* alu r/m, imm */
		pre(g, size, &reg, &rm, true);
		if (size == 1) {
			put(g, 0x80);
			modrm_rr(g, pick(g, 8), rm);
			imm(g, 1);
		} else if (pick(g, 2)) {
			put(g, 0x83);
			modrm_rr(g, pick(g, 8), rm);
			imm(g, 1);
		} else {
			put(g, 0x81);
			modrm_rr(g, pick(g, 8), rm);
			imm(g, size == 2 ? 2 : 4);
		}
		break;
	case 4: /* not/neg/test imm */
		pre(g, size, &reg, &rm, true);
		put(g, (uint8_t)(0xf6 + w));
		{
			unsigned sub = pick(g, 3) + 1; /* 1 (test alias 0/1), 2, 3 */
			if (sub == 1)
				sub = 0;
			modrm_rr(g, sub, rm);
			if (sub == 0)
				imm(g, size == 1 ? 1 : size == 2 ? 2 : 4);
		}
		break;
	case 5: /* inc/dec */
		pre(g, size, &reg, &rm, true);
		put(g, (uint8_t)(0xfe + w));
		modrm_rr(g, pick(g, 2), rm);
		break;
	case 6: { /* shift/rotate by 1 (OF defined) */
		static const unsigned subs[] = { 0, 1, 2, 3, 4, 5, 7 };
		pre(g, size, &reg, &rm, true);
		put(g, (uint8_t)(0xd0 + w));
		modrm_rr(g, subs[pick(g, 7)], rm);
		break;
	}
	case 7: /* setcc */
		size = 1;
		pre(g, size, &reg, &rm, true);
		put(g, 0x0f);
		put(g, (uint8_t)(0x90 + pick(g, 16)));
		modrm_rr(g, 0, rm);
		break;
	case 8: /* cmovcc */
		if (size == 1)
			size = 4;
		pre(g, size, &reg, &rm, false);
		put(g, 0x0f);
		put(g, (uint8_t)(0x40 + pick(g, 16)));
		modrm_rr(g, reg, rm);
		break;
	case 9: /* imul r, r/m then cmp (flags defined again) */
		if (size == 1)
			size = 8;
		pre(g, size, &reg, &rm, false);
		put(g, 0x0f);
		put(g, 0xaf);
		modrm_rr(g, reg, rm);
		reg = greg(g);
		rm = greg(g);
		pre(g, 8, &reg, &rm, false);
		put(g, 0x39);
		modrm_rr(g, reg, rm);
		break;
	case 10: /* bswap */
		if (size < 4)
			size = 4;
		if (size == 8 || rm >= 8)
			put(g, (uint8_t)(0x40 | (size == 8 ? 8 : 0) | (rm >> 3)));
		put(g, 0x0f);
		put(g, (uint8_t)(0xc8 + (rm & 7)));
		break;
	case 11: /* xchg / xadd / cmpxchg reg forms */
		pre(g, size, &reg, &rm, true);
		switch (pick(g, 3)) {
		case 0: put(g, (uint8_t)(0x86 + w)); break;
		case 1: put(g, 0x0f); put(g, (uint8_t)(0xc0 + w)); break;
		default: put(g, 0x0f); put(g, (uint8_t)(0xb0 + w)); break;
		}
		modrm_rr(g, reg, rm);
		break;
	case 12: /* movzx/movsx */
		if (size == 1)
			size = 4;
		{
			unsigned src = pick(g, 2);
			/* byte source: rm must not be AH..BH with REX */
			bool rex = size == 8 || reg >= 8 || rm >= 8;
			if (!src && rex && rm == 4)
				rm = 6;
			pre(g, size, &reg, &rm, false);
			put(g, 0x0f);
			put(g, (uint8_t)((pick(g, 2) ? 0xb6 : 0xbe) + src));
			modrm_rr(g, reg, rm);
		}
		break;
	case 13: { /* lea reg, [base + index*s + disp8] */
		unsigned base = greg(g), idx = greg(g);
		if (size == 1)
			size = 8;
		unsigned sz = size;
		put(g, 0x40 == 0 ? 0 : 0x90); /* nop keeps the stream aligned to nothing */
		if (sz == 2)
			put(g, 0x66);
		put(g, (uint8_t)(0x40 | (sz == 8 ? 8 : 0) | ((reg >> 3) << 2) | ((idx >> 3) << 1) | (base >> 3)));
		put(g, 0x8d);
		put(g, (uint8_t)(0x44 | ((reg & 7) << 3)));
		put(g, (uint8_t)((pick(g, 4) << 6) | ((idx & 7) << 3) | (base & 7)));
		imm(g, 1);
		break;
	}
	case 14: /* bt/bts/btr/btc imm, then test (flags defined again) */
		if (size == 1)
			size = 4;
		pre(g, size, &reg, &rm, false);
		put(g, 0x0f);
		put(g, 0xba);
		modrm_rr(g, 4 + pick(g, 4), rm);
		imm(g, 1);
		reg = greg(g);
		rm = greg(g);
		pre(g, 4, &reg, &rm, false);
		put(g, 0x85);
		modrm_rr(g, reg, rm);
		break;
	case 15: /* mov r, imm */
		if (size == 8 && pick(g, 2)) {
			put(g, (uint8_t)(0x48 | (rm >> 3)));
			put(g, (uint8_t)(0xb8 + (rm & 7)));
			imm(g, 8);
		} else {
			if (size == 8)
				size = 4;
			reg = 0;
			pre(g, size, &reg, &rm, true);
			put(g, (uint8_t)((size == 1 ? 0xb0 : 0xb8) + (rm & 7)));
			imm(g, size);
		}
		break;
	case 16: /* cbw/cwd family */
		if (size == 1)
			size = 4;
		if (size == 2)
			put(g, 0x66);
		if (size == 8)
			put(g, 0x48);
		put(g, pick(g, 2) ? 0x98 : 0x99);
		break;
	case 17: /* clc/stc/cmc/sahf */
		put(g, (uint8_t[]){ 0xf8, 0xf9, 0xf5, 0x9e }[pick(g, 4)]);
		break;
	case 18: /* shld/shrd by 1 */
		if (size == 1)
			size = 4;
		pre(g, size, &reg, &rm, false);
		put(g, 0x0f);
		put(g, pick(g, 2) ? 0xa4 : 0xac);
		modrm_rr(g, reg, rm);
		put(g, 1);
		break;
	case 19: /* mov reg forms */
		pre(g, size, &reg, &rm, true);
		put(g, (uint8_t)(0x88 + w + 2 * pick(g, 2)));
		modrm_rr(g, reg, rm);
		break;
	case 20: /* mul/imul one-operand, then add (defines flags) */
		pre(g, size, &reg, &rm, true);
		put(g, (uint8_t)(0xf6 + w));
		modrm_rr(g, 4 + pick(g, 2), rm);
		reg = greg(g);
		rm = greg(g);
		pre(g, 8, &reg, &rm, false);
		put(g, 0x01);
		modrm_rr(g, reg, rm);
		break;
	default: /* alu rax, imm */
		if (size == 2)
			put(g, 0x66);
		if (size == 8)
			put(g, 0x48);
		put(g, (uint8_t)(pick(g, 8) * 8 + 4 + w));
		imm(g, size == 1 ? 1 : size == 2 ? 2 : 4);
		break;
	}
}

/* Runs code[0..len) both ways from st; true when registers and flags match. */
static bool same(const uint8_t *code, unsigned len, const struct nstate *st, char *why, size_t whylen)
{
	struct cpu *c = &F->cpu;
	struct nstate ns = *st, is;
	native_run(code, len, &ns);
	memcpy(F->ram + CFX_CODE, code, len);
	F->ram[CFX_CODE + len] = 0xf4;
	cpu_code_written(F->map, CFX_CODE, len + 1);
	memcpy(c->gpr, st->gpr, sizeof(st->gpr));
	c->gpr[R_RSP] = 0x80000;
	cpu_set_rflags(c, st->flags);
	c->rip = CFX_CODE;
	c->halted = false;
	enum cpu_exit e = cpu_run(c, 1000000);
	if (e != CPU_EXIT_HLT || c->rip != CFX_CODE + len + 1) {
		snprintf(why, whylen, "exit %d rip %#lx exc %d %s", e, c->rip, c->exc_vector, c->exit_why);
		return false;
	}
	memcpy(is.gpr, c->gpr, sizeof(is.gpr));
	is.flags = cpu_get_rflags(c);
	for (unsigned r = 0; r < 16; r++) {
		if (r != R_RSP && is.gpr[r] != ns.gpr[r]) {
			snprintf(why, whylen, "r%u %#lx != host %#lx", r, is.gpr[r], ns.gpr[r]);
			return false;
		}
	}
	if ((is.flags & FL_ARITH) != (ns.flags & FL_ARITH)) {
		snprintf(why, whylen, "flags %#lx != host %#lx", (unsigned long)(is.flags & FL_ARITH), (unsigned long)(ns.flags & FL_ARITH));
		return false;
	}
	return true;
}

Test(diff, random_alu_sequences)
{
	static uint8_t code[8192];
	static unsigned starts[4096];
	char why[200];
	for (unsigned seed = 1; seed <= 300; seed++) {
		struct gen g = { .s = 0x9e3779b97f4a7c15ULL * seed, .p = code };
		unsigned n = 0;
		while (g.p - code < 4000) {
			starts[n++] = (unsigned)(g.p - code);
			gen_one(&g);
		}
		/* Finish with a cmp: AF after shifts is undefined. */
		starts[n++] = (unsigned)(g.p - code);
		put(&g, 0x48);
		put(&g, 0x39);
		put(&g, 0xd8);
		starts[n] = (unsigned)(g.p - code);
		struct nstate st = { .flags = 2 | (rnd(&g) & FL_ARITH) };
		for (unsigned r = 0; r < 16; r++)
			st.gpr[r] = rnd(&g) >> (pick(&g, 4) * 16);
		st.gpr[R_RSP] = 0;
		if (same(code, starts[n], &st, why, sizeof(why)))
			continue;
		/* Find the first instruction group where they part. */
		unsigned lo = 0, hi = n;
		while (lo + 1 < hi) {
			unsigned mid = (lo + hi) / 2;
			if (same(code, starts[mid], &st, why, sizeof(why)))
				lo = mid;
			else
				hi = mid;
		}
		same(code, starts[hi], &st, why, sizeof(why));
		char hex[64] = "";
		for (unsigned i = starts[hi - 1]; i < starts[hi] && i - starts[hi - 1] < 20; i++)
			snprintf(hex + strlen(hex), sizeof(hex) - strlen(hex), "%02x ", code[i]);
		cr_assert_fail("seed %u: group %u [%s]: %s", seed, hi - 1, hex, why);
	}
}
