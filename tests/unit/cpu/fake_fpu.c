/*
 * The fpu helper's test harness (see fake_fpu.h), and weak stand-ins for
 * contract functions other parts may not have written yet (the real ones
 * win at link time).
 */
#include "fake_fpu.h"

#include <setjmp.h>
#include <signal.h>
#include <ucontext.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "cpu/fpu.h"
#include "cpu/insn.h"
#include "cpu/mem.h"

/* ---- weak stand-ins ---- */

__attribute__((weak)) void exec_int_register(void) {}
__attribute__((weak)) uint8_t cpu_read8(struct cpu *cpu, int seg, uint64_t off)
{
	uint8_t v;
	cpu_read(cpu, seg, off, &v, 1);
	return v;
}
__attribute__((weak)) uint16_t cpu_read16(struct cpu *cpu, int seg, uint64_t off)
{
	uint16_t v;
	cpu_read(cpu, seg, off, &v, 2);
	return v;
}
__attribute__((weak)) uint32_t cpu_read32(struct cpu *cpu, int seg, uint64_t off)
{
	uint32_t v;
	cpu_read(cpu, seg, off, &v, 4);
	return v;
}
__attribute__((weak)) uint64_t cpu_read64(struct cpu *cpu, int seg, uint64_t off)
{
	uint64_t v;
	cpu_read(cpu, seg, off, &v, 8);
	return v;
}
__attribute__((weak)) void cpu_write8(struct cpu *cpu, int seg, uint64_t off, uint8_t v)
{
	cpu_write(cpu, seg, off, &v, 1);
}
__attribute__((weak)) void cpu_write16(struct cpu *cpu, int seg, uint64_t off, uint16_t v)
{
	cpu_write(cpu, seg, off, &v, 2);
}
__attribute__((weak)) void cpu_write32(struct cpu *cpu, int seg, uint64_t off, uint32_t v)
{
	cpu_write(cpu, seg, off, &v, 4);
}
__attribute__((weak)) void cpu_write64(struct cpu *cpu, int seg, uint64_t off, uint64_t v)
{
	cpu_write(cpu, seg, off, &v, 8);
}

/* ---- the guest ---- */

#define RAM_SIZE (4u << 20)

static struct {
	uint8_t *ram;
	struct guest_mem mem;
	struct cpu_code_map *map;
	struct cpu cpu;
	bool live;
} G;

static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

static const struct cpu_env env; /* no devices */

struct cpu *ff_guest(void)
{
	ff_free();
	G.ram = aligned_alloc(4096, RAM_SIZE);
	memset(G.ram, 0, RAM_SIZE);
	struct gmem_region r = { .gpa = 0, .size = RAM_SIZE, .hva = G.ram };
	gmem_init_fake(&G.mem, &r, 1);
	G.map = cpu_code_map_new(&G.mem);
	cpu_init(&G.cpu, &G.mem, G.map, &env, NULL, 0);
	struct cpu *c = &G.cpu;
	/* Identity map of the first 4 MiB with 2 MiB pages. */
	put64(G.ram + 0x1000, 0x2000 | 0x7);
	put64(G.ram + 0x2000, 0x3000 | 0x7);
	put64(G.ram + 0x3000, 0x000000 | 0x87);
	put64(G.ram + 0x3008, 0x200000 | 0x87);
	c->cr3 = 0x1000;
	c->cr4 = CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT | CR4_OSXSAVE;
	c->efer = EFER_LME | EFER_LMA | EFER_SCE;
	c->cr0 = CR0_PE | CR0_PG | CR0_NE | CR0_ET | CR0_MP;
	c->xcr0 = 3;
	for (int s = 0; s < 6; s++) {
		c->seg[s].base = 0;
		c->seg[s].limit = 0xffffffff;
		c->seg[s].sel = s == SEG_CS ? 0x8 : 0x10;
		c->seg[s].attr = s == SEG_CS ? 0x209b : 0xc093;
	}
	c->seg[SEG_TR].attr = 0x8b;
	c->seg[SEG_LDTR].attr = SEG_ATTR_UNUSABLE;
	cpu_set_rflags(c, 0x2);
	cpu_update_mode(c);
	cpu_tlb_flush(c, true);
	cpu_fpu_reset(&c->fpu);
	G.live = true;
	return c;
}

void ff_free(void)
{
	if (!G.live)
		return;
	cpu_destroy(&G.cpu);
	cpu_code_map_free(G.map);
	free(G.ram);
	G.live = false;
}

int ff_exec(struct cpu *cpu, const uint8_t *bytes, unsigned len)
{
	struct insn in;
	memset(&in, 0, sizeof(in));
	int n = insn_decode(&in, bytes, len, cpu->code_bits);
	if (n != (int)len) {
		fprintf(stderr, "ff_exec: decode gave %d for %u bytes\n", n, len);
		return -100;
	}
	cpu->rip = 0x10000;
	cpu->next_rip = cpu->rip + (unsigned)n;
	cpu->exc_vector = -1;
	if (setjmp(cpu->fault_jmp))
		return cpu->exc_vector;
	in.fn(cpu, &in);
	return -1;
}

/* ---- the host stub ---- */

typedef void (*stub_fn)(struct fstate *st);

static unsigned emit(uint8_t *p, const char *hex)
{
	unsigned n = 0;
	while (*hex) {
		if (*hex == ' ') {
			hex++;
			continue;
		}
		p[n++] = (uint8_t)strtoul((char[3]){ hex[0], hex[1], 0 }, NULL, 16);
		hex += 2;
	}
	return n;
}

static unsigned emit32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
	return 4;
}

/* mov r64, [r15+disp32] (load) or mov [r15+disp32], r64 (store). */
static unsigned mov_gpr(uint8_t *p, unsigned r, uint32_t disp, bool store)
{
	unsigned n = 0;
	p[n++] = (uint8_t)(0x49 | ((r & 8) ? 4 : 0)); /* REX.W B [R] */
	p[n++] = store ? 0x89 : 0x8b;
	p[n++] = (uint8_t)(0x87 | ((r & 7) << 3)); /* mod 10, rm 111 */
	n += emit32(p + n, disp);
	return n;
}

#define OFF_GPR 512
#define OFF_RFL (512 + 128)
#define OFF_HOST 1024 /* host's own FXSAVE area, after fstate */

/* An unmasked SIMD exception on the host: skip the instruction, as the
 * guest's #XM handler would see it (destination untouched, flags set). */
static volatile sig_atomic_t fpe_hit;
static volatile unsigned fpe_len;

static void on_sigfpe(int sig, siginfo_t *si, void *uc_)
{
	(void)sig;
	(void)si;
	ucontext_t *uc = uc_;
	uc->uc_mcontext.gregs[REG_RIP] += fpe_len;
	fpe_hit = 1;
}

bool ff_host_faulted(void)
{
	return fpe_hit;
}

void ff_host(struct fstate *st, const uint8_t *bytes, unsigned len)
{
	struct sigaction sa, old;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sigfpe;
	sa.sa_flags = SA_SIGINFO;
	sigaction(SIGFPE, &sa, &old);
	fpe_hit = 0;
	fpe_len = len;
	static uint8_t *code;
	if (!code)
		code = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	/* Box: fstate then the host's own save area, 16-aligned. */
	static uint8_t box[sizeof(struct fstate) + 1024] __attribute__((aligned(64)));
	size_t host_off = (sizeof(struct fstate) + 63) & ~(size_t)63;
	memcpy(box, st, sizeof(*st));
	/* Registers pointing into the guest's data point at the box's copy. */
	struct fstate *b = (struct fstate *)box;
	for (unsigned r = 0; r < 16; r++)
		if (b->gpr[r] - DATA_GPA < DATA_LEN)
			b->gpr[r] = (uint64_t)(uintptr_t)b->data + (b->gpr[r] - DATA_GPA);

	uint8_t *p = code;
	unsigned n = 0;
	n += emit(p + n, "53 55 41 54 41 55 41 56 41 57"); /* push rbx rbp r12-r15 */
	n += emit(p + n, "49 89 ff");			   /* mov r15, rdi */
	n += emit(p + n, "49 0f ae 87");		   /* fxsave64 [r15+host] */
	n += emit32(p + n, (uint32_t)host_off);
	n += emit(p + n, "49 0f ae 0f"); /* fxrstor64 [r15] */
	for (unsigned r = 0; r < 15; r++)
		if (r != R_RSP)
			n += mov_gpr(p + n, r, OFF_GPR + 8 * r, false);
	n += emit(p + n, "41 ff b7"); /* push [r15+rfl] */
	n += emit32(p + n, OFF_RFL);
	n += emit(p + n, "9d"); /* popfq */
	memcpy(p + n, bytes, len);
	n += len;
	n += emit(p + n, "9c"); /* pushfq */
	n += emit(p + n, "41 8f 87"); /* pop [r15+rfl] */
	n += emit32(p + n, OFF_RFL);
	for (unsigned r = 0; r < 15; r++)
		if (r != R_RSP)
			n += mov_gpr(p + n, r, OFF_GPR + 8 * r, true);
	n += emit(p + n, "49 0f ae 07"); /* fxsave64 [r15] */
	n += emit(p + n, "49 0f ae 8f"); /* fxrstor64 [r15+host] */
	n += emit32(p + n, (uint32_t)host_off);
	n += emit(p + n, "41 5f 41 5e 41 5d 41 5c 5d 5b c3");
	((stub_fn)(void *)code)(b);
	sigaction(SIGFPE, &old, NULL);
	uint64_t base = (uint64_t)(uintptr_t)b->data;
	for (unsigned r = 0; r < 16; r++)
		if (b->gpr[r] - base < DATA_LEN)
			b->gpr[r] = DATA_GPA + (b->gpr[r] - base);
	memcpy(st, box, sizeof(*st));
}

void ff_guest_run(struct cpu *cpu, struct fstate *st, const uint8_t *bytes, unsigned len, int *vec)
{
	uint8_t *ram = (uint8_t *)gmem_ptr(cpu->mem, 0, RAM_SIZE);
	memcpy(ram + IMG_GPA, st->fx, 512);
	memcpy(ram + DATA_GPA, st->data, DATA_LEN);
	memcpy(cpu->gpr, st->gpr, sizeof(st->gpr));
	cpu->gpr[R_R15] = IMG_GPA;
	cpu_set_rflags(cpu, st->rflags);
	static const uint8_t rstor[] = { 0x49, 0x0f, 0xae, 0x0f }, save[] = { 0x49, 0x0f, 0xae, 0x07 };
	int v = ff_exec(cpu, rstor, sizeof(rstor));
	if (v != -1) {
		*vec = 1000 + v;
		return;
	}
	*vec = ff_exec(cpu, bytes, len);
	cpu->gpr[R_R15] = IMG_GPA;
	ff_exec(cpu, save, sizeof(save));
	memcpy(st->fx, ram + IMG_GPA, 512);
	memcpy(st->data, ram + DATA_GPA, DATA_LEN);
	memcpy(st->gpr, cpu->gpr, sizeof(st->gpr));
	st->gpr[R_R15] = 0;
	st->rflags = cpu_get_rflags(cpu);
}

void ff_image(struct fstate *st, uint16_t fcw, uint16_t fsw, uint8_t tag, uint32_t mxcsr)
{
	memcpy(st->fx + 0, &fcw, 2);
	memcpy(st->fx + 2, &fsw, 2);
	st->fx[4] = tag;
	memcpy(st->fx + 24, &mxcsr, 4);
	uint32_t mask = 0xffff;
	memcpy(st->fx + 28, &mask, 4);
}

bool ff_same(const struct fstate *h, const struct fstate *g, char *why, unsigned whylen)
{
	static const struct { unsigned off, len; const char *name; } parts[] = {
		{ 0, 2, "fcw" }, { 2, 2, "fsw" }, { 4, 1, "ftw" }, { 24, 4, "mxcsr" },
	};
	for (unsigned i = 0; i < 4; i++)
		if (memcmp(h->fx + parts[i].off, g->fx + parts[i].off, parts[i].len)) {
			uint32_t a = 0, b = 0;
			memcpy(&a, h->fx + parts[i].off, parts[i].len);
			memcpy(&b, g->fx + parts[i].off, parts[i].len);
			snprintf(why, whylen, "%s host %#x guest %#x", parts[i].name, a, b);
			return false;
		}
	for (unsigned i = 0; i < 8; i++)
		if (memcmp(h->fx + 32 + 16 * i, g->fx + 32 + 16 * i, 10)) {
			uint64_t a, b;
			uint16_t ea, eb;
			memcpy(&a, h->fx + 32 + 16 * i, 8);
			memcpy(&ea, h->fx + 40 + 16 * i, 2);
			memcpy(&b, g->fx + 32 + 16 * i, 8);
			memcpy(&eb, g->fx + 40 + 16 * i, 2);
			snprintf(why, whylen, "st%u host %04x:%016llx guest %04x:%016llx", i, ea,
				 (unsigned long long)a, eb, (unsigned long long)b);
			return false;
		}
	for (unsigned i = 0; i < 16; i++)
		if (memcmp(h->fx + 160 + 16 * i, g->fx + 160 + 16 * i, 16)) {
			uint64_t a[2], b[2];
			memcpy(a, h->fx + 160 + 16 * i, 16);
			memcpy(b, g->fx + 160 + 16 * i, 16);
			snprintf(why, whylen, "xmm%u host %016llx_%016llx guest %016llx_%016llx", i,
				 (unsigned long long)a[1], (unsigned long long)a[0],
				 (unsigned long long)b[1], (unsigned long long)b[0]);
			return false;
		}
	for (unsigned r = 0; r < 15; r++)
		if (r != R_RSP && h->gpr[r] != g->gpr[r]) {
			snprintf(why, whylen, "gpr%u host %#llx guest %#llx", r,
				 (unsigned long long)h->gpr[r], (unsigned long long)g->gpr[r]);
			return false;
		}
	if ((h->rflags ^ g->rflags) & FL_ARITH) {
		snprintf(why, whylen, "rflags host %#llx guest %#llx",
			 (unsigned long long)h->rflags, (unsigned long long)g->rflags);
		return false;
	}
	if (memcmp(h->data, g->data, DATA_LEN)) {
		for (unsigned i = 0; i < DATA_LEN; i++)
			if (h->data[i] != g->data[i]) {
				snprintf(why, whylen, "data[%u] host %#x guest %#x", i, h->data[i],
					 g->data[i]);
				break;
			}
		return false;
	}
	return true;
}

uint64_t ff_rand(uint64_t *s)
{
	/* splitmix64 */
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* ---- random states and the differential runner ---- */

static uint32_t rnd_f32(uint64_t *s)
{
	static const uint32_t v[] = {
		0, 0x80000000, 0x3f800000, 0xbf800000, 0x3fc00000, 0x40400000, 0x3dcccccd,
		0x7f7fffff, 0xff7fffff, 0x00000001, 0x007fffff, 0x80400000, 0x7f800000,
		0xff800000, 0x7fc00000, 0x7fc12345, 0x7f800001, 0xff800123, 0xffc00000,
		0x4f000000, 0xcf000000, 0x4effffff, 0x5f000000, 0xdf000000, 0x00800000,
		0x4b000000, 0x3f000000, 0x40200000, 0xc0200000, 0x3effffff,
	};
	uint64_t r = ff_rand(s);
	if (r % 4 == 0)
		return (uint32_t)(r >> 8);
	return v[(r >> 8) % (sizeof(v) / sizeof(v[0]))];
}

static uint64_t rnd_f64(uint64_t *s)
{
	static const uint64_t v[] = {
		0, 0x8000000000000000ULL, 0x3ff0000000000000ULL, 0xbff0000000000000ULL,
		0x3ff8000000000000ULL, 0x3fb999999999999aULL, 0x7fefffffffffffffULL, 1,
		0x000fffffffffffffULL, 0x7ff0000000000000ULL, 0xfff0000000000000ULL,
		0x7ff8000000000000ULL, 0x7ff8000012345678ULL, 0x7ff0000000000001ULL,
		0xfff8000000000000ULL, 0x41e0000000000000ULL, 0xc1e0000000000000ULL,
		0x41dfffffffe00000ULL, 0x43e0000000000000ULL, 0xc3e0000000000000ULL,
		0x7e37e43c8800759cULL, 0x01a56e1fc2f8f359ULL, 0x3fe0000000000000ULL,
		0x4004000000000000ULL, 0x47efffffe0000000ULL, 0x47f0000000000000ULL,
		0x3690000000000000ULL, 0xc004000000000000ULL, 0x3fdfffffffffffffULL,
		0x41dfffffffc00000ULL,
	};
	uint64_t r = ff_rand(s);
	if (r % 4 == 0)
		return ff_rand(s);
	return v[(r >> 8) % (sizeof(v) / sizeof(v[0]))];
}

static uint64_t rnd_int(uint64_t *s)
{
	static const uint8_t bytes[] = { 0, 0x80, 0x7f, 0xff, 0x01, 0xfe, 0x81, 0x40 };
	uint64_t r = ff_rand(s), v = 0;
	switch (r % 4) {
	case 0:
	case 1:
		return ff_rand(s);
	case 2:
		for (unsigned i = 0; i < 8; i++)
			v |= (uint64_t)bytes[ff_rand(s) % 8] << (8 * i);
		return v;
	default:
		return ff_rand(s) % 80;
	}
}

static uint64_t rnd_q(uint64_t *s)
{
	switch (ff_rand(s) % 3) {
	case 0:
		return rnd_f32(s) | (uint64_t)rnd_f32(s) << 32;
	case 1:
		return rnd_f64(s);
	default:
		return rnd_int(s);
	}
}

static void rnd_f80(uint64_t *s, uint8_t *out)
{
	static const struct { uint64_t m; uint16_t e; } v[] = {
		{ 0, 0 }, { 0, 0x8000 }, { 1ULL << 63, 0x3fff }, { 1ULL << 63, 0xbfff },
		{ 0xc90fdaa22168c235ULL, 0x4000 }, { ~0ULL, 0x7ffe }, { 1ULL << 63, 0x0001 },
		{ 0x123456789abcdefULL, 0 }, { 1ULL << 63, 0x7fff }, { 1ULL << 63, 0xffff },
		{ 3ULL << 62, 0x7fff }, { 0xc000000000001234ULL, 0x7fff }, { 0x8000000000000001ULL, 0x7fff },
		{ 3ULL << 62, 0xffff }, { 0x8000000000000000ULL, 0x403e }, { 0xffffffffffffffffULL, 0x403d },
		{ 0x1234567812345678ULL, 0x3fff }, { 0x8000000000000000ULL, 0x0000 },
		{ 0xa000000000000000ULL, 0x4001 }, { 0xb000000000000000ULL, 0x401d },
		{ 0xc000000000000000ULL, 0x3ffe }, { 0x8000000000000000ULL, 0x401e },
	};
	uint64_t r = ff_rand(s);
	uint64_t m;
	uint16_t e;
	if (r % 3 == 0) {
		m = ff_rand(s) | 1ULL << 63;
		e = (uint16_t)(0x3fff + (int)(ff_rand(s) % 128) - 64) | (uint16_t)((r >> 9 & 1) << 15);
	} else {
		unsigned k = (unsigned)((r >> 8) % (sizeof(v) / sizeof(v[0])));
		m = v[k].m;
		e = v[k].e;
	}
	memcpy(out, &m, 8);
	memcpy(out + 8, &e, 2);
}

void ff_random(struct fstate *st, uint64_t *s, unsigned flags)
{
	memset(st, 0, sizeof(*st));
	uint16_t fcw = 0x037f, fsw = 0;
	uint8_t tag = 0;
	if (flags & FF_X87) {
		fcw = (uint16_t)(0x007f | (ff_rand(s) % 4) << 8 | (ff_rand(s) % 4) << 10);
		if (ff_rand(s) % 3 == 0)
			fcw = 0x037f;
		else if (ff_rand(s) % 3 == 0) /* some exceptions unmasked */
			fcw = (uint16_t)((fcw & ~0x3fu) | (ff_rand(s) & 0x3f));
		fsw = (uint16_t)((ff_rand(s) % 8) << 11 | (ff_rand(s) & 0x4700));
		switch (ff_rand(s) % 4) {
		case 0: tag = 0xff; break;
		case 1: tag = 0; break;
		default: tag = (uint8_t)ff_rand(s); break;
		}
	}
	uint32_t mx = 0x1f80;
	if (flags & FF_MXCSR) {
		mx |= (uint32_t)(ff_rand(s) % 4) << 13;
		if (ff_rand(s) % 4 == 0)
			mx |= 0x40; /* DAZ */
		if (ff_rand(s) % 4 == 0)
			mx |= 0x8000; /* FTZ */
		if (ff_rand(s) % 4 == 0)
			mx |= (uint32_t)(ff_rand(s) & 0x3f);
		if ((flags & FF_UNMASK) && ff_rand(s) % 3 == 0)
			/* IE, DE, ZE, PE: with OE/UE unmasked, PE differs (fpu report) */
			mx &= ~((uint32_t)(ff_rand(s) & 0x27) << 7);
	}
	ff_image(st, fcw, fsw, tag, mx);
	for (unsigned i = 0; i < 8; i++) {
		if (flags & FF_X87)
			rnd_f80(s, st->fx + 32 + 16 * i);
		else {
			uint64_t q = rnd_q(s);
			memcpy(st->fx + 32 + 16 * i, &q, 8);
		}
	}
	for (unsigned i = 0; i < 32; i++) {
		uint64_t q = rnd_q(s);
		memcpy(st->fx + 160 + 8 * i, &q, 8);
	}
	for (unsigned i = 0; i < DATA_LEN / 8; i++) {
		uint64_t q = rnd_q(s);
		memcpy(st->data + 8 * i, &q, 8);
	}
	if (flags & FF_X87)
		for (unsigned i = 0; i < 4; i++)
			rnd_f80(s, st->data + 10 * i);
	for (unsigned r = 0; r < 16; r++)
		st->gpr[r] = rnd_int(s);
	st->gpr[R_RSP] = 0;
	st->gpr[R_R15] = 0;
	st->gpr[R_RSI] = DATA_GPA;
	st->gpr[R_RDI] = DATA_GPA + 64;
	st->rflags = 0x202 | (ff_rand(s) & FL_ARITH);
}

static void dump_in(const struct fstate *st)
{
	uint64_t x[4], m[2];
	memcpy(x, st->fx + 160, 32);
	memcpy(m, st->fx + 32, 8);
	memcpy(&m[1], st->fx + 48, 8);
	uint16_t e0, e1, fcw, fsw;
	memcpy(&e0, st->fx + 40, 2);
	memcpy(&e1, st->fx + 56, 2);
	memcpy(&fcw, st->fx, 2);
	memcpy(&fsw, st->fx + 2, 2);
	uint32_t mx;
	memcpy(&mx, st->fx + 24, 4);
	fprintf(stderr,
		"    in: xmm0 %016llx_%016llx xmm1 %016llx_%016llx mxcsr %#x\n"
		"        st0 %04x:%016llx st1 %04x:%016llx fcw %#x fsw %#x tag %#x rax %#llx\n",
		(unsigned long long)x[1], (unsigned long long)x[0], (unsigned long long)x[3],
		(unsigned long long)x[2], mx, e0, (unsigned long long)m[0], e1,
		(unsigned long long)m[1], fcw, fsw, st->fx[4], (unsigned long long)st->gpr[0]);
}

unsigned ff_diff(const char *const *insns, unsigned n, unsigned iters, unsigned flags,
		 uint64_t seed)
{
	struct cpu *cpu = ff_guest();
	unsigned bad = 0;
	/* Longer fuzzing runs: FF_ITERS=n FF_SEED=s. */
	if (getenv("FF_ITERS"))
		iters = (unsigned)strtoul(getenv("FF_ITERS"), NULL, 0);
	if (getenv("FF_SEED"))
		seed ^= strtoull(getenv("FF_SEED"), NULL, 0);
	for (unsigned i = 0; i < n; i++) {
		uint8_t bytes[16];
		unsigned len = emit(bytes, insns[i]);
		for (unsigned it = 0; it < iters; it++) {
			struct fstate in, h, g;
			ff_random(&in, &seed, flags);
			h = in;
			g = in;
			ff_host(&h, bytes, len);
			int vec;
			ff_guest_run(cpu, &g, bytes, len, &vec);
			char why[200] = "";
			int want = ff_host_faulted() ? EXC_XM : -1;
			if (vec != want)
				snprintf(why, sizeof(why), "guest exception %d, host %d", vec, want);
			if (vec != want || !ff_same(&h, &g, why, sizeof(why))) {
				if (bad++ < 60) {
					fprintf(stderr, "MISMATCH [%s] iter %u: %s\n", insns[i], it, why);
					dump_in(&in);
				}
				break;
			}
		}
	}
	ff_free();
	if (getenv("FF_VERBOSE"))
		fprintf(stderr, "ff_diff: %u instructions x %u runs, %u mismatched\n", n, iters, bad);
	return bad;
}
