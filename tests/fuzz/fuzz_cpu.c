/*
 * libFuzzer target: random code on ember's software CPU (src/cpu).
 *
 * Input: a 4-byte header, then code.
 *   byte 0  bits 0-1: mode (0 real, 1 32-bit protected, 2 64-bit long mode,
 *                     3 virtual-8086 under 32-bit protected mode)
 *           bit 2:    CPL 3 (protected and long mode)
 *           bit 3:    no IDT (limit 0): the first exception triple-faults
 *           bit 4:    exception handlers hlt (else they iret back)
 *           bit 5:    32-bit protected mode with PAE paging
 *           bit 6:    IOPL 3
 *           bit 7:    on HLT, raise an NMI once (wakes the CPU)
 *   byte 1  instruction budget per cpu_run(): 16 << (n % 4) (a rep
 *           string instruction counts once per 16384 elements)
 *   byte 2  cpu_run() calls: 1 + n % 3
 *   byte 3  initial value of the general registers: n * 0x0101010101010101
 * The code goes to CODE_GPA in 4 MiB of fake guest RAM that also holds a
 * GDT, an IDT (or real-mode IVT) whose handlers are stubs, TSSs, stacks and
 * (long mode, PAE) an identity map of 0-4 GiB in 2 MiB pages. Everything
 * outside RAM is MMIO that reads all-ones; ports read all-ones; CPUID is
 * ember's soft model; MSRs the CPU does not own #GP; no interrupts.
 *
 * The CPU must not crash, leak or trip a sanitizer, and every cpu_run()
 * must return one of enum cpu_exit; SHUTDOWN and ERROR carry a reason.
 * Port and MMIO accesses are slow (each one a callback): after IO_LIMIT of
 * them the input ends (cpu_kick, as the monitor stops a vCPU), so that a
 * rep ins/outs/movs over MMIO (16384 elements per instruction) stays quick.
 * FUZZ_CPU_TRACE=1 in the environment prints each cpu_run()'s exit.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/cpu.h"
#include "cpu/mem.h"
#include "cpu/seg.h"
#include "vmm/x86/cpuid.h"

#define RAM_SIZE (4u << 20)
#define GDT_GPA 0x1000
#define IDT_GPA 0x2000 /* 256 * 16 bytes (real mode: the IVT is at 0) */
#define TSS64_GPA 0x3000
#define TSS32_GPA 0x3100
#define STUB_GPA 0x5000 /* handler stubs, 16 bytes per vector */
#define KSTACK_TOP 0x9000
#define USTACK_TOP 0xf000
#define PT_GPA 0x10000 /* PML4, PDPT, 4 PDs, PAE PDPT */
#define CODE_GPA 0x20000
#define CODE_MAX 0x10000
#define IO_LIMIT 4096

/* GDT selectors. */
#define SEL_CODE64 0x08
#define SEL_DATA 0x10
#define SEL_UDATA 0x18
#define SEL_UCODE64 0x20
#define SEL_CODE32 0x28
#define SEL_UCODE32 0x30
#define SEL_TSS64 0x38 /* 16 bytes */
#define SEL_TSS32 0x48
#define GDT_LIMIT 0x4f

#define PTE_P 1ull
#define PTE_W 2ull
#define PTE_U 4ull
#define PTE_PS 0x80ull

struct fuzz {
	uint8_t *ram;
	struct guest_mem mem;
	struct cpu_env env;
	uint64_t tsc, cr8;
	struct cpu *cpu;
	unsigned io; /* port and MMIO accesses so far */
};

static void io_count(void *ctx)
{
	struct fuzz *f = ctx;

	if (++f->io == IO_LIMIT)
		cpu_kick(f->cpu, CPU_EV_EXIT);
}

static const struct kvm_cpuid2 *g_cpuid;

static bool f_pio_read(void *ctx, uint16_t port, void *data, unsigned len)
{
	(void)port, (void)data, (void)len;
	io_count(ctx);
	return false;
}

static bool f_pio_write(void *ctx, uint16_t port, const void *data, unsigned len)
{
	(void)port, (void)data, (void)len;
	io_count(ctx);
	return false;
}

static bool f_mmio_read(void *ctx, uint64_t gpa, void *data, unsigned len)
{
	(void)gpa, (void)data, (void)len;
	io_count(ctx);
	return false;
}

static bool f_mmio_write(void *ctx, uint64_t gpa, const void *data, unsigned len)
{
	(void)gpa, (void)data, (void)len;
	io_count(ctx);
	return false;
}

static void f_cpuid(void *ctx, uint32_t leaf, uint32_t sub, uint32_t out[4])
{
	(void)ctx;
	cpuid_lookup(g_cpuid, leaf, sub, out);
}

static int f_rdmsr(void *ctx, uint32_t msr, uint64_t *val)
{
	(void)ctx, (void)msr;
	*val = 0;
	return -1;
}

static int f_wrmsr(void *ctx, uint32_t msr, uint64_t val)
{
	(void)ctx, (void)msr, (void)val;
	return -1;
}

static int f_intr_ack(void *ctx)
{
	(void)ctx;
	return -1;
}

static uint64_t f_rdtsc(void *ctx)
{
	struct fuzz *f = ctx;

	return f->tsc += 1000;
}

static void f_set_cr8(void *ctx, uint64_t cr8)
{
	((struct fuzz *)ctx)->cr8 = cr8;
}

static uint64_t f_get_cr8(void *ctx)
{
	return ((struct fuzz *)ctx)->cr8;
}

static void w16(struct fuzz *f, uint64_t gpa, uint16_t v)
{
	memcpy(f->ram + gpa, &v, 2);
}

static void w32(struct fuzz *f, uint64_t gpa, uint32_t v)
{
	memcpy(f->ram + gpa, &v, 4);
}

static void w64(struct fuzz *f, uint64_t gpa, uint64_t v)
{
	memcpy(f->ram + gpa, &v, 8);
}

static uint64_t desc(uint32_t base, uint32_t limit, unsigned access, unsigned flags)
{
	return (limit & 0xffffull) | ((uint64_t)(base & 0xffffff) << 16) |
	       ((uint64_t)access << 40) | ((uint64_t)((limit >> 16) & 0xf) << 48) |
	       ((uint64_t)flags << 52) | ((uint64_t)(base >> 24) << 56);
}

static void seg_from_gdt(struct fuzz *f, struct cpu *c, int sr, uint16_t sel)
{
	uint64_t d;

	memcpy(&d, f->ram + GDT_GPA + (sel & ~7u), 8);
	seg_cache_from_desc(&c->seg[sr], sel, d);
}

static void build_tables(struct fuzz *f)
{
	/* GDT */
	w64(f, GDT_GPA + SEL_CODE64, desc(0, 0xfffff, 0x9b, 0xa));
	w64(f, GDT_GPA + SEL_DATA, desc(0, 0xfffff, 0x93, 0xc));
	w64(f, GDT_GPA + SEL_UDATA, desc(0, 0xfffff, 0xf3, 0xc));
	w64(f, GDT_GPA + SEL_UCODE64, desc(0, 0xfffff, 0xfb, 0xa));
	w64(f, GDT_GPA + SEL_CODE32, desc(0, 0xfffff, 0x9b, 0xc));
	w64(f, GDT_GPA + SEL_UCODE32, desc(0, 0xfffff, 0xfb, 0xc));
	w64(f, GDT_GPA + SEL_TSS64, desc(TSS64_GPA, 0x67, 0x8b, 0));
	w64(f, GDT_GPA + SEL_TSS64 + 8, 0);
	w64(f, GDT_GPA + SEL_TSS32, desc(TSS32_GPA, 0x67, 0x8b, 0));
	/* 64-bit TSS: RSP0 and IST1 (for #DF). */
	w64(f, TSS64_GPA + 4, KSTACK_TOP);
	w64(f, TSS64_GPA + 0x24, KSTACK_TOP - 0x800);
	w16(f, TSS64_GPA + 0x66, 0x68); /* no I/O bitmap */
	/* 32-bit TSS: ESP0, SS0. */
	w32(f, TSS32_GPA + 4, KSTACK_TOP);
	w32(f, TSS32_GPA + 8, SEL_DATA);
	w16(f, TSS32_GPA + 0x66, 0x68);

	/* Identity map of 0-4 GiB, 2 MiB pages, user accessible. */
	uint64_t pml4 = PT_GPA, pdpt = PT_GPA + 0x1000, pd = PT_GPA + 0x2000;
	uint64_t pae_pdpt = PT_GPA + 0x6000;

	w64(f, pml4, pdpt | PTE_P | PTE_W | PTE_U);
	for (uint64_t g = 0; g < 4; g++) {
		w64(f, pdpt + g * 8, (pd + g * 0x1000) | PTE_P | PTE_W | PTE_U);
		w64(f, pae_pdpt + g * 8, (pd + g * 0x1000) | PTE_P);
		for (uint64_t i = 0; i < 512; i++)
			w64(f, pd + g * 0x1000 + i * 8,
			    ((g << 30) | (i << 21)) | PTE_P | PTE_W | PTE_U | PTE_PS);
	}
}

/* Vectors that push an error code in protected and long mode. */
static bool has_error(unsigned v)
{
	return v == 8 || (v >= 10 && v <= 14) || v == 17 || v == 21 || v == 29 || v == 30;
}

/*
 * Handler stubs at STUB_GPA + vector * 16: hlt (stays halted: no
 * interrupts come) or drop the error code and iret back.
 */
static void build_handlers(struct fuzz *f, unsigned mode, bool halt)
{
	for (unsigned v = 0; v < 256; v++) {
		uint8_t *p = f->ram + STUB_GPA + v * 16;
		uint64_t off = STUB_GPA + v * 16;

		if (halt) {
			p[0] = 0xf4; /* hlt; jmp .-3 */
			p[1] = 0xeb;
			p[2] = 0xfd;
		} else if (mode == 0) {
			p[0] = 0xcf; /* iret */
		} else if (mode == 2) {
			unsigned n = 0;
			if (has_error(v)) {
				memcpy(p, "\x48\x83\xc4\x08", 4); /* add rsp, 8 */
				n = 4;
			}
			p[n] = 0x48; /* iretq */
			p[n + 1] = 0xcf;
		} else {
			unsigned n = 0;
			if (has_error(v)) {
				memcpy(p, "\x83\xc4\x04", 3); /* add esp, 4 */
				n = 3;
			}
			p[n] = 0xcf;
		}
		if (mode == 0) {
			/* IVT: offset, segment 0. */
			w16(f, v * 4, (uint16_t)off);
			w16(f, v * 4 + 2, 0);
		} else if (mode == 2) {
			uint64_t lo = (off & 0xffff) | ((uint64_t)SEL_CODE64 << 16) |
				      ((uint64_t)(v == 8 ? 1 : 0) << 32) | (0x8eull << 40) |
				      ((off >> 16) & 0xffff) << 48;
			/* int3 and into callable from CPL 3. */
			if (v == 3 || v == 4)
				lo |= 0x60ull << 40;
			w64(f, IDT_GPA + v * 16, lo);
			w64(f, IDT_GPA + v * 16 + 8, off >> 32);
		} else {
			uint64_t lo = (off & 0xffff) | ((uint64_t)SEL_CODE32 << 16) |
				      (0x8eull << 40) | ((off >> 16) & 0xffff) << 48;
			if (v == 3 || v == 4)
				lo |= 0x60ull << 40;
			w64(f, IDT_GPA + v * 8, lo);
		}
	}
}

static void set_state(struct fuzz *f, struct cpu *c, const uint8_t *hdr)
{
	unsigned mode = hdr[0] & 3;
	bool user = hdr[0] & 4, no_idt = hdr[0] & 8, pae = hdr[0] & 0x20;
	uint64_t fill = hdr[3] * 0x0101010101010101ull;
	uint64_t rflags = 2 | ((hdr[0] & 0x40) ? FL_IOPL : 0);

	for (int i = 0; i < 16; i++)
		c->gpr[i] = fill;
	c->gdtr.base = GDT_GPA;
	c->gdtr.limit = GDT_LIMIT;
	c->idtr.base = mode == 0 ? 0 : IDT_GPA;
	c->idtr.limit = no_idt ? 0 : (mode == 0 ? 0x3ff : mode == 2 ? 0xfff : 0x7ff);

	if (mode == 0) {
		/* Real mode: CS = CODE_GPA >> 4, stack below 0x8000. */
		c->seg[SEG_CS].sel = CODE_GPA >> 4;
		c->seg[SEG_CS].base = CODE_GPA;
		c->rip = 0;
		c->gpr[R_RSP] = 0x8000;
		c->cr0 = 0x60000010;
		cpu_set_rflags(c, rflags);
		cpu_update_mode(c);
		cpu_tlb_flush(c, true);
		return;
	}

	c->cr0 = CR0_PE | CR0_ET | CR0_NE;
	c->rip = CODE_GPA;
	if (mode == 2) {
		c->cr3 = PT_GPA;
		c->cr0 |= CR0_PG | CR0_WP;
		c->cr4 = CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT;
		c->efer = EFER_LME | EFER_LMA | EFER_NXE | EFER_SCE;
		seg_from_gdt(f, c, SEG_TR, SEL_TSS64);
		c->seg[SEG_TR].attr = 0x8b;
		seg_from_gdt(f, c, SEG_CS, user ? SEL_UCODE64 | 3 : SEL_CODE64);
	} else {
		if (pae && mode == 1) {
			c->cr3 = PT_GPA + 0x6000;
			c->cr0 |= CR0_PG;
			c->cr4 = CR4_PAE;
		}
		seg_from_gdt(f, c, SEG_TR, SEL_TSS32);
		c->seg[SEG_TR].attr = 0x8b;
		seg_from_gdt(f, c, SEG_CS, user ? SEL_UCODE32 | 3 : SEL_CODE32);
	}
	for (int s = 0; s < 6; s++)
		if (s != SEG_CS)
			seg_from_gdt(f, c, s, user ? SEL_UDATA | 3 : SEL_DATA);
	c->gpr[R_RSP] = user ? USTACK_TOP : KSTACK_TOP - 0x1000;

	if (mode == 3) {
		/* Virtual-8086: real-mode style segments at CPL 3. */
		rflags |= FL_VM;
		for (int s = 0; s < 6; s++) {
			uint16_t sel = s == SEG_CS ? CODE_GPA >> 4 : 0;
			c->seg[s].sel = sel;
			c->seg[s].base = (uint64_t)sel << 4;
			c->seg[s].limit = 0xffff;
			c->seg[s].attr = (s == SEG_CS ? 0xfb : 0xf3);
		}
		c->rip = 0;
		c->gpr[R_RSP] = 0x8000;
	}
	cpu_set_rflags(c, rflags);
	cpu_update_mode(c);
	cpu_tlb_flush(c, true);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t *ram;
	struct fuzz f = {0};
	struct gmem_region region;
	struct cpu_code_map *map;
	struct cpu *c;
	uint8_t hdr[4] = {0};

	if (size < sizeof(hdr))
		return 0;
	memcpy(hdr, data, sizeof(hdr));
	data += sizeof(hdr);
	size -= sizeof(hdr);
	if (size > CODE_MAX)
		size = CODE_MAX;

	if (!g_cpuid && !(g_cpuid = cpuid_soft_model()))
		abort();
	if (!ram && !(ram = aligned_alloc(4096, RAM_SIZE)))
		abort();
	memset(ram, 0, RAM_SIZE);
	f.ram = ram;
	region = (struct gmem_region){.gpa = 0, .size = RAM_SIZE, .hva = ram};
	gmem_init_fake(&f.mem, &region, 1);
	f.env = (struct cpu_env){
		.pio_read = f_pio_read,
		.pio_write = f_pio_write,
		.mmio_read = f_mmio_read,
		.mmio_write = f_mmio_write,
		.cpuid = f_cpuid,
		.rdmsr = f_rdmsr,
		.wrmsr = f_wrmsr,
		.intr_ack = f_intr_ack,
		.rdtsc = f_rdtsc,
		.set_cr8 = f_set_cr8,
		.get_cr8 = f_get_cr8,
	};

	build_tables(&f);
	build_handlers(&f, hdr[0] & 3, hdr[0] & 0x10);
	memcpy(ram + CODE_GPA, data, size);

	map = cpu_code_map_new(&f.mem);
	c = aligned_alloc(64, (sizeof(*c) + 63) & ~(size_t)63);
	if (!map || !c || cpu_init(c, &f.mem, map, &f.env, &f, 0))
		abort();
	f.cpu = c;
	set_state(&f, c, hdr);

	uint64_t budget = 16ull << (hdr[1] % 4);
	unsigned runs = 1 + hdr[2] % 3;
	bool nmi = hdr[0] & 0x80;
	static int trace = -1;

	if (trace < 0)
		trace = getenv("FUZZ_CPU_TRACE") != NULL; /* one line per cpu_run() */

	for (unsigned i = 0; i < runs; i++) {
		enum cpu_exit r = cpu_run(c, budget);
		uint64_t gpa;

		if (trace)
			fprintf(stderr, "fuzz_cpu: run %u: exit %d rip=0x%llx insns=%llu why=%s\n", i,
				(int)r, (unsigned long long)c->rip,
				(unsigned long long)c->insn_count, c->exit_why);

		switch (r) {
		case CPU_EXIT_BUDGET:
			if (f.io >= IO_LIMIT)
				goto out;
			break;
		case CPU_EXIT_HLT:
			if (!nmi)
				goto out;
			nmi = false;
			cpu_kick(c, CPU_EV_NMI);
			break;
		case CPU_EXIT_SHUTDOWN:
		case CPU_EXIT_ERROR:
			/* The crash report: a reason, and the walk it does for RIP. */
			if (!c->exit_why[0] || !memchr(c->exit_why, 0, sizeof(c->exit_why)))
				abort();
			(void)cpu_translate(c, c->seg[SEG_CS].base + c->rip, &gpa);
			goto out;
		case CPU_EXIT_INIT:
			goto out; /* nothing sends INIT here */
		default:
			abort(); /* not an enum cpu_exit */
		}
	}
out:
	cpu_destroy(c);
	free(c);
	cpu_code_map_free(map);
	return 0;
}
