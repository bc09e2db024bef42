/*
 * The core helper's test fixture: fake flat guest RAM (no paging, segment
 * bases 0), a vCPU in 16-, 32- or 64-bit mode, one-instruction execution
 * with the exception it raised, and a native runner that executes the same
 * instruction bytes on the host for comparison (registers and flags).
 */
#ifndef CORE_FIXTURE_H
#define CORE_FIXTURE_H

#include <criterion/criterion.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "cpu/cache.h"
#include "cpu/cpu.h"
#include "cpu/flags.h"
#include "cpu/insn.h"
#include "cpu/mem.h"

#define CFX_RAM (4u << 20)
#define CFX_CODE 0x1000ULL

struct cfx {
	struct guest_mem mem;
	uint8_t *ram;
	struct cpu_code_map *map;
	struct cpu cpu;
};

static inline void cfx_set_mode(struct cfx *f, unsigned bits)
{
	struct cpu *c = &f->cpu;
	for (int s = 0; s < 6; s++) {
		c->seg[s].base = 0;
		c->seg[s].limit = 0xffffffff;
		c->seg[s].sel = 0x10;
		c->seg[s].attr = 0x3 | SEG_ATTR_S | SEG_ATTR_P | SEG_ATTR_DB | SEG_ATTR_G;
	}
	c->seg[SEG_CS].sel = 0x8;
	c->seg[SEG_CS].attr = 0xb | SEG_ATTR_S | SEG_ATTR_P | SEG_ATTR_G;
	c->cr0 = CR0_PE | CR0_ET | CR0_NE;
	c->efer = 0;
	if (bits == 64) {
		c->efer = EFER_LME | EFER_LMA;
		c->seg[SEG_CS].attr |= SEG_ATTR_L;
	} else if (bits == 32) {
		c->seg[SEG_CS].attr |= SEG_ATTR_DB;
	} else {
		for (int s = 0; s < 6; s++) {
			c->seg[s].limit = 0xffff;
			c->seg[s].attr &= ~(SEG_ATTR_DB | SEG_ATTR_G);
		}
	}
	cpu_set_rflags(c, 2);
	cpu_update_mode(c);
	cpu_tlb_flush(c, true);
}

static inline struct cfx *cfx_new(unsigned bits)
{
	struct cfx *f = calloc(1, sizeof(*f));
	f->ram = aligned_alloc(4096, CFX_RAM);
	memset(f->ram, 0, CFX_RAM);
	struct gmem_region r = { .gpa = 0, .size = CFX_RAM, .hva = f->ram };
	gmem_init_fake(&f->mem, &r, 1);
	f->map = cpu_code_map_new(&f->mem);
	cr_assert_eq(cpu_init(&f->cpu, &f->mem, f->map, NULL, NULL, 0), 0);
	cfx_set_mode(f, bits);
	f->cpu.gpr[R_RSP] = 0x80000;
	return f;
}

static inline void cfx_free(struct cfx *f)
{
	cpu_destroy(&f->cpu);
	cpu_code_map_free(f->map);
	free(f->ram);
	free(f);
}

/* Decodes and runs one instruction at CFX_CODE; the exception vector it
 * raised, or -1. RIP is left at the next instruction (or branch target). */
static inline int cfx_exec_at(struct cfx *f, uint64_t at, const uint8_t *code, unsigned len)
{
	struct cpu *c = &f->cpu;
	struct insn in;
	memcpy(f->ram + at, code, len);
	code_map_write(f->map, at, len);
	c->rip = at;
	int r = insn_decode(&in, f->ram + at, 4096 - (unsigned)(at & 4095), c->code_bits);
	(void)r;
	c->exc_vector = -1;
	if (setjmp(c->fault_jmp))
		return c->exc_vector;
	c->next_rip = c->rip + in.len;
	in.fn(c, &in);
	c->rip = c->next_rip;
	return -1;
}

static inline int cfx_exec(struct cfx *f, const uint8_t *code, unsigned len)
{
	return cfx_exec_at(f, CFX_CODE, code, len);
}

#define EXEC(f, ...)                                                       \
	({                                                                 \
		static const uint8_t code_[] = { __VA_ARGS__ };            \
		cfx_exec((f), code_, sizeof(code_));                       \
	})

/* ---- native execution of register-only instructions ---- */

struct nstate {
	uint64_t gpr[16]; /* gpr[4] (rsp) is not loaded */
	uint64_t flags;
};

struct native {
	uint8_t *buf;
	size_t size;
};

static inline void emit(uint8_t **p, const void *b, size_t n)
{
	memcpy(*p, b, n);
	*p += n;
}

/* mov rax, imm64 */
static inline void emit_movabs(uint8_t **p, unsigned reg, uint64_t v)
{
	uint8_t b[2] = { (uint8_t)(0x48 | (reg >> 3)), (uint8_t)(0xb8 + (reg & 7)) };
	emit(p, b, 2);
	emit(p, &v, 8);
}

/* mov reg, [rdi + 8*i] / mov [rdi + 8*i], reg (disp32 form) */
static inline void emit_ld(uint8_t **p, unsigned reg, unsigned off, bool store)
{
	uint8_t b[3] = { (uint8_t)(0x48 | ((reg >> 3) << 2)), store ? 0x89 : 0x8b,
			 (uint8_t)(0x80 | ((reg & 7) << 3) | 7) };
	uint32_t d = off;
	emit(p, b, 3);
	emit(p, &d, 4);
}

/*
 * Builds: save callee-saved regs; rdi = state; flags and registers from the
 * state; the instruction bytes; registers and flags back to the state.
 */
static inline void native_run(const uint8_t *code, unsigned len, struct nstate *st)
{
	static const uint8_t pro[] = { 0x53, 0x55, 0x41, 0x54, 0x41, 0x55, 0x41, 0x56, 0x41, 0x57 };
	static const uint8_t epi[] = { 0xfc, 0x41, 0x5f, 0x41, 0x5e, 0x41, 0x5d, 0x41, 0x5c, 0x5d, 0x5b, 0xc3 };
	size_t sz = (len + 1024 + 4095) & ~(size_t)4095;
	uint8_t *buf = mmap(NULL, sz, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert(buf != MAP_FAILED);
	uint8_t *p = buf;
	uint64_t *slot = (uint64_t *)(buf + sz - 8);
	*slot = (uint64_t)st;
	emit(&p, pro, sizeof(pro));
	/* push [rdi+128]; popfq */
	emit(&p, (uint8_t[]){ 0xff, 0xb7, 0x80, 0, 0, 0, 0x9d }, 7);
	for (unsigned r = 0; r < 16; r++)
		if (r != R_RSP && r != R_RDI)
			emit_ld(&p, r, r * 8, false);
	emit_ld(&p, R_RDI, R_RDI * 8, false);
	emit(&p, code, len);
	/* pushfq; push rdi; mov rdi, slot; mov rdi, [rdi] */
	emit(&p, (uint8_t[]){ 0x9c, 0x57 }, 2);
	emit_movabs(&p, R_RDI, (uint64_t)slot);
	emit(&p, (uint8_t[]){ 0x48, 0x8b, 0x3f }, 3);
	for (unsigned r = 0; r < 16; r++)
		if (r != R_RSP && r != R_RDI)
			emit_ld(&p, r, r * 8, true);
	/* pop rax; mov [rdi+56], rax; pop rax; mov [rdi+128], rax */
	emit(&p, (uint8_t[]){ 0x58 }, 1);
	emit_ld(&p, R_RAX, R_RDI * 8, true);
	emit(&p, (uint8_t[]){ 0x58 }, 1);
	emit_ld(&p, R_RAX, 128, true);
	emit(&p, epi, sizeof(epi));
	((void (*)(struct nstate *))buf)(st);
	munmap(buf, sz);
}

/* Runs code in the interpreter (64-bit mode) from the same state. */
static inline int interp_run(struct cfx *f, const uint8_t *code, unsigned len, struct nstate *st)
{
	struct cpu *c = &f->cpu;
	uint64_t rsp = c->gpr[R_RSP];
	memcpy(c->gpr, st->gpr, sizeof(st->gpr));
	c->gpr[R_RSP] = rsp;
	cpu_set_rflags(c, st->flags);
	int v = cfx_exec(f, code, len);
	memcpy(st->gpr, c->gpr, sizeof(st->gpr));
	st->gpr[R_RSP] = 0;
	st->flags = cpu_get_rflags(c);
	return v;
}

#endif
