/*
 * The system helper's test fixture: fake guest RAM, a fake env (port I/O,
 * MMIO, CPUID, MSRs), descriptor tables and page tables built in guest
 * memory, and a tiny step loop (fetch, decode, execute, deliver faults) so
 * the tests do not depend on the run loop.
 */
#ifndef SYS_FIXTURE_H
#define SYS_FIXTURE_H

#include <criterion/criterion.h>

#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wclobbered"
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/cpu.h"
#include "cpu/except.h"
#include "cpu/insn.h"
#include "cpu/mem.h"
#include "cpu/mmu.h"
#include "cpu/seg.h"

#define FX_RAM (16u << 20)
#define FX_GDT 0x1000
#define FX_IDT 0x2000
#define FX_TSS 0x3000
#define FX_PT 0x100000 /* page-table pool */
#define FX_MMIO 0xfee00000ULL

/* GDT selectors. */
#define SEL_CODE64 0x08
#define SEL_DATA 0x10
#define SEL_UDATA 0x1b
#define SEL_UCODE64 0x23
#define SEL_CODE32 0x28
#define SEL_TSS 0x30 /* 16 bytes in long mode */
#define SEL_UCODE32 0x43
#define SEL_CODE16 0x48
#define SEL_DATA16 0x50

struct fx {
	struct guest_mem mem;
	uint8_t *ram;
	struct cpu *cpu;
	struct cpu_env env;
	uint64_t pt_next;
	/* I/O log */
	uint16_t last_port;
	uint32_t last_out;
	unsigned last_len, nout, nin;
	uint64_t mmio_gpa;
	uint64_t mmio_val;
	unsigned nmmio;
	uint8_t port_val[65536];
};

static struct fx *g_fx;

static bool fx_pio_read(void *ctx, uint16_t port, void *data, unsigned len)
{
	struct fx *f = ctx;

	f->nin++;
	if (port == 0x80)
		return false;
	memcpy(data, &f->port_val[port], len);
	return true;
}

static bool fx_pio_write(void *ctx, uint16_t port, const void *data, unsigned len)
{
	struct fx *f = ctx;

	f->nout++;
	f->last_port = port;
	f->last_len = len;
	f->last_out = 0;
	memcpy(&f->last_out, data, len);
	return true;
}

static bool fx_mmio_read(void *ctx, uint64_t gpa, void *data, unsigned len)
{
	struct fx *f = ctx;

	f->nmmio++;
	f->mmio_gpa = gpa;
	memcpy(data, &f->mmio_val, len);
	return true;
}

static bool fx_mmio_write(void *ctx, uint64_t gpa, const void *data, unsigned len)
{
	struct fx *f = ctx;

	f->nmmio++;
	f->mmio_gpa = gpa;
	f->mmio_val = 0;
	memcpy(&f->mmio_val, data, len);
	return true;
}

static void fx_cpuid(void *ctx, uint32_t leaf, uint32_t sub, uint32_t out[4])
{
	(void)ctx;
	(void)sub;
	memset(out, 0, 16);
	if (leaf == 0) {
		out[0] = 0xd;
		memcpy(&out[1], "Genu", 4);
		memcpy(&out[3], "ineI", 4);
		memcpy(&out[2], "ntel", 4);
	} else if (leaf == 1) {
		out[0] = 0x806c1;
		out[2] = (1u << 17) | (1u << 26); /* PCID, XSAVE */
	} else if (leaf == 7) {
		out[1] = (1u << 0) | (1u << 7) | (1u << 10) | (1u << 20); /* FSGSBASE, SMEP, INVPCID, SMAP */
		out[2] = 1u << 2;			    /* UMIP */
	} else if (leaf == 0xd) {
		out[0] = 7;
	}
}

static int fx_rdmsr(void *ctx, uint32_t msr, uint64_t *v)
{
	(void)ctx;
	if (msr == 0x1b) {
		*v = 0xfee00900;
		return 0;
	}
	return -1;
}

static int fx_wrmsr(void *ctx, uint32_t msr, uint64_t v)
{
	(void)ctx;
	(void)v;
	return msr == 0x1b ? 0 : -1;
}

static uint64_t fx_rdtsc(void *ctx)
{
	(void)ctx;
	return 1000000;
}

static uint64_t fx_cr8;
static void fx_set_cr8(void *ctx, uint64_t v)
{
	(void)ctx;
	fx_cr8 = v;
}
static uint64_t fx_get_cr8(void *ctx)
{
	(void)ctx;
	return fx_cr8;
}

static void fx_w64(uint64_t gpa, uint64_t v)
{
	memcpy(g_fx->ram + gpa, &v, 8);
}
static void fx_w32(uint64_t gpa, uint32_t v)
{
	memcpy(g_fx->ram + gpa, &v, 4);
}
static void fx_w16(uint64_t gpa, uint16_t v)
{
	memcpy(g_fx->ram + gpa, &v, 2);
}
static uint64_t fx_r64(uint64_t gpa)
{
	uint64_t v;
	memcpy(&v, g_fx->ram + gpa, 8);
	return v;
}
static uint32_t fx_r32(uint64_t gpa)
{
	uint32_t v;
	memcpy(&v, g_fx->ram + gpa, 4);
	return v;
}
static uint16_t fx_r16(uint64_t gpa)
{
	uint16_t v;
	memcpy(&v, g_fx->ram + gpa, 2);
	return v;
}

/* A segment descriptor. type includes S (0x10) and DPL bits of the access byte. */
static uint64_t fx_desc(uint32_t base, uint32_t limit, unsigned access, unsigned flags)
{
	return (limit & 0xffffULL) | ((uint64_t)(base & 0xffffff) << 16) |
	       ((uint64_t)access << 40) | ((uint64_t)((limit >> 16) & 0xf) << 48) |
	       ((uint64_t)flags << 52) | ((uint64_t)(base >> 24) << 56);
}

static void fx_setup(void)
{
	struct gmem_region r;
	struct fx *f = calloc(1, sizeof(*f));

	g_fx = f;
	f->ram = aligned_alloc(4096, FX_RAM);
	memset(f->ram, 0, FX_RAM);
	r.gpa = 0;
	r.size = FX_RAM;
	r.hva = f->ram;
	gmem_init_fake(&f->mem, &r, 1);
	f->env.pio_read = fx_pio_read;
	f->env.pio_write = fx_pio_write;
	f->env.mmio_read = fx_mmio_read;
	f->env.mmio_write = fx_mmio_write;
	f->env.cpuid = fx_cpuid;
	f->env.rdmsr = fx_rdmsr;
	f->env.wrmsr = fx_wrmsr;
	f->env.rdtsc = fx_rdtsc;
	f->env.set_cr8 = fx_set_cr8;
	f->env.get_cr8 = fx_get_cr8;
	f->cpu = aligned_alloc(64, (sizeof(struct cpu) + 63) & ~63ul);
	memset(f->cpu, 0, sizeof(struct cpu));
	f->cpu->mem = &f->mem;
	f->cpu->env = &f->env;
	f->cpu->env_ctx = f;
	cpu_reset(f->cpu);
	f->pt_next = FX_PT;
	dispatch_init();

	/* GDT */
	fx_w64(FX_GDT + 0x00, 0);
	fx_w64(FX_GDT + 0x08, fx_desc(0, 0xfffff, 0x9b, 0xa));	  /* code64 */
	fx_w64(FX_GDT + 0x10, fx_desc(0, 0xfffff, 0x93, 0xc));	  /* data */
	fx_w64(FX_GDT + 0x18, fx_desc(0, 0xfffff, 0xf3, 0xc));	  /* user data */
	fx_w64(FX_GDT + 0x20, fx_desc(0, 0xfffff, 0xfb, 0xa));	  /* user code64 */
	fx_w64(FX_GDT + 0x28, fx_desc(0, 0xfffff, 0x9b, 0xc));	  /* code32 */
	fx_w64(FX_GDT + 0x30, fx_desc(FX_TSS, 0x67 + 0x2000 / 8 + 1, 0x89, 0)); /* TSS lo */
	fx_w64(FX_GDT + 0x38, 0);				  /* TSS hi */
	fx_w64(FX_GDT + 0x40, fx_desc(0, 0xfffff, 0xfb, 0xc));	  /* user code32 */
	fx_w64(FX_GDT + 0x48, fx_desc(0, 0xffff, 0x9b, 0));	  /* code16 */
	fx_w64(FX_GDT + 0x50, fx_desc(0, 0xffff, 0x93, 0));	  /* data16 */
	f->cpu->gdtr.base = FX_GDT;
	f->cpu->gdtr.limit = 0x57;
	f->cpu->idtr.base = FX_IDT;
	f->cpu->idtr.limit = 0xfff;
}

static void fx_teardown(void)
{
	free(g_fx->ram);
	free(g_fx->cpu);
	free(g_fx);
	g_fx = NULL;
}

static void fx_seg(int sr, uint16_t sel)
{
	uint64_t d = fx_r64(FX_GDT + (sel & ~7u));

	seg_cache_from_desc(&g_fx->cpu->seg[sr], sel, d);
}

static uint64_t fx_alloc_page(void)
{
	uint64_t p = g_fx->pt_next;

	g_fx->pt_next += 4096;
	memset(g_fx->ram + p, 0, 4096);
	return p;
}

/* 4-level (or PAE with levels = 3 via cr3 PDPT) mapping of a 4 KiB page. */
#define PTE_P 1ULL
#define PTE_W 2ULL
#define PTE_U 4ULL
#define PTE_A 0x20ULL
#define PTE_D 0x40ULL
#define PTE_PS 0x80ULL
#define PTE_G 0x100ULL
#define PTE_NX (1ULL << 63)

/* Walks/creates the long-mode tables down to `level` (1 = PT) and returns
 * the gpa of the entry for lin at that level. Upper levels get P|W|U. */
static uint64_t fx_entry64(uint64_t lin, int level)
{
	uint64_t table = g_fx->cpu->cr3 & ~0xfffULL;

	for (int l = 4; l > level; l--) {
		uint64_t e = table + ((lin >> (12 + 9 * (l - 1))) & 0x1ff) * 8;

		if (!(fx_r64(e) & PTE_P))
			fx_w64(e, fx_alloc_page() | PTE_P | PTE_W | PTE_U);
		table = fx_r64(e) & 0xffffffffff000ULL;
	}
	return table + ((lin >> (12 + 9 * (level - 1))) & 0x1ff) * 8;
}

static void fx_map64(uint64_t lin, uint64_t gpa, uint64_t flags)
{
	fx_w64(fx_entry64(lin, 1), gpa | flags);
}

/* Long mode, CPL 0, 64-bit code, paging on with an identity map of the
 * first 4 MiB (2 MiB pages) and a TSS. */
static void fx_long_mode(void)
{
	struct cpu *c = g_fx->cpu;

	c->cr3 = fx_alloc_page();
	c->cr0 = CR0_PE | CR0_PG | CR0_ET | CR0_WP | CR0_NE;
	c->cr4 = CR4_PAE | CR4_PGE | CR4_OSFXSR;
	c->efer = EFER_LME | EFER_LMA | EFER_NXE | EFER_SCE;
	fx_w64(fx_entry64(0, 2), 0 | PTE_P | PTE_W | PTE_PS);
	fx_w64(fx_entry64(0x200000, 2), 0x200000 | PTE_P | PTE_W | PTE_PS);
	fx_seg(SEG_CS, SEL_CODE64);
	fx_seg(SEG_SS, SEL_DATA);
	fx_seg(SEG_DS, SEL_DATA);
	fx_seg(SEG_ES, SEL_DATA);
	fx_seg(SEG_FS, SEL_DATA);
	fx_seg(SEG_GS, SEL_DATA);
	fx_seg(SEG_TR, SEL_TSS);
	c->seg[SEG_TR].attr = 0x8b;
	c->gdtr.limit = 0x57;
	cpu_update_mode(c);
	cpu_tlb_flush(c, true);
	cr_assert_eq(c->code_bits, 64);
}

/* 32-bit protected mode, flat, no paging, CPL 0. */
static void fx_prot32(void)
{
	struct cpu *c = g_fx->cpu;

	c->cr0 = CR0_PE | CR0_ET;
	fx_seg(SEG_CS, SEL_CODE32);
	fx_seg(SEG_SS, SEL_DATA);
	fx_seg(SEG_DS, SEL_DATA);
	fx_seg(SEG_ES, SEL_DATA);
	fx_seg(SEG_FS, SEL_DATA);
	fx_seg(SEG_GS, SEL_DATA);
	cpu_update_mode(c);
	cpu_tlb_flush(c, true);
}

/* Runs `stmt`; returns -1 if it completed, else the vector it raised. */
#define FX_TRY(stmt)                                                               \
	({                                                                         \
		volatile int _v = -1;                                              \
		g_fx->cpu->exc_vector = -1;                                        \
		if (setjmp(g_fx->cpu->fault_jmp) == 0) {                           \
			stmt;                                                      \
		} else {                                                           \
			_v = g_fx->cpu->exc_vector;                                \
		}                                                                  \
		_v;                                                                \
	})

static void fx_code(uint64_t gpa, const void *bytes, size_t n)
{
	memcpy(g_fx->ram + gpa, bytes, n);
}

/*
 * One instruction: fetch at CS:RIP, decode, execute; a fault is delivered
 * (as the run loop does). Returns -1 when the instruction completed, the
 * vector delivered, or -3 for a shutdown / unimplemented exit.
 */
static int fx_step(void)
{
	struct cpu *c = g_fx->cpu;
	uint8_t buf[16];
	struct insn in;

	if (setjmp(c->fault_jmp) == 0) {
		uint64_t lin = c->code_bits == 64 ? c->rip : (uint32_t)(c->seg[SEG_CS].base + c->rip);
		unsigned avail, got = 0;
		uint64_t gpa;
		int len;

		/* Bytes of the next page only when the decoder asks for them. */
		for (;;) {
			const uint8_t *p = cpu_fetch_ptr(c, lin + got, &avail, &gpa);

			if (avail > 15 - got)
				avail = 15 - got;
			memcpy(buf + got, p, avail);
			got += avail;
			len = insn_decode(&in, buf, got, c->code_bits);
			if (len != 0 || got >= 15)
				break;
		}
		c->next_rip = c->rip + (len > 0 ? len : in.len);
		if (c->code_bits != 64)
			c->next_rip &= c->code_bits == 32 ? 0xffffffffULL : 0xffffULL;
		in.fn(c, &in);
		c->rip = c->next_rip;
		return -1;
	}
	/* Fault: deliver, escalating as needed. */
	for (;;) {
		if (c->exc_vector == EXC_UNIMPLEMENTED)
			return -3;
		if (setjmp(c->fault_jmp) == 0) {
			if (!cpu_exception_deliver(c))
				return -3;
			return c->exc_vector; /* #DF when it escalated */
		}
	}
}

/* Delivers the exception recorded in cpu->exc_* (as the run loop would). */
static int fx_deliver_pending(void)
{
	struct cpu *c = g_fx->cpu;

	for (;;) {
		if (setjmp(c->fault_jmp) == 0)
			return cpu_exception_deliver(c) ? c->exc_vector : -3;
	}
}

static int fx_run(int n)
{
	int r = -1;

	for (int i = 0; i < n && r == -1; i++)
		r = fx_step();
	return r;
}

/* A 64-bit interrupt gate in the IDT. */
static void fx_gate64(unsigned vec, uint16_t sel, uint64_t off, unsigned type, unsigned dpl,
		      unsigned ist)
{
	uint64_t lo = (off & 0xffff) | ((uint64_t)sel << 16) | ((uint64_t)ist << 32) |
		      ((uint64_t)(0x80 | (dpl << 5) | type) << 40) |
		      ((off >> 16) & 0xffff) << 48;

	fx_w64(FX_IDT + vec * 16, lo);
	fx_w64(FX_IDT + vec * 16 + 8, off >> 32);
}

static void fx_gate32(unsigned vec, uint16_t sel, uint32_t off, unsigned type, unsigned dpl)
{
	uint64_t lo = (off & 0xffff) | ((uint64_t)sel << 16) |
		      ((uint64_t)(0x80 | (dpl << 5) | type) << 40) |
		      (uint64_t)((off >> 16) & 0xffff) << 48;

	fx_w64(FX_IDT + vec * 8, lo);
}

#endif
