/*
 * Hostile actions (README.md, "Hostile actions"): the guest misbehaves on
 * purpose so the host can check that the monitor survives it. Each one
 * either gets a guest exception, which hostile_trap() reports as
 * "guest: exception <vector> at 0x<rip> ...", or makes the VM crash
 * (triple fault), which ember reports on stderr.
 */
#include "guest.h"

#define LAPIC_DEFAULT 0xfee00000ull
#define IOAPIC_DEFAULT 0xfec00000ull
#define NONCANONICAL 0x8000000000000000ul
#define UNMAPPED 0x100000000000ul /* 16 TiB: PML4 slot 32, empty */
#define GARBAGE_SIZE 4096

/* What an exception means while an action runs. */
enum expect {
	EXPECT_NONE,   /* a real failure: main.c's report */
	EXPECT_FINAL,  /* report it, then power off */
	EXPECT_RESUME, /* report it, then continue at hostile_resume() at CPL 3 */
};

static volatile enum expect g_expect;
static volatile unsigned int g_step;
static unsigned int g_in_trap;
static const struct acpi_info *g_ai;
static uint64_t g_rng;
static uint8_t garbage[GARBAGE_SIZE + 16] __attribute__((aligned(4096)));
static uint8_t resume_stack[8192] __attribute__((aligned(16)));
uint64_t hostile_target; /* where hostile_jump0 goes (entry of the garbage) */

/* Runs fn(arg) at CPL 0 through the int3 system call (as bench_cpu.c does). */
static void call_cpl0(void (*fn)(void *), void *arg)
{
	__asm__ volatile("int3" : : "a"(SYS_CALL0), "D"(fn), "S"(arg) : "memory");
}

static uint64_t rng_next(void)
{
	/* xorshift64* */
	g_rng ^= g_rng >> 12;
	g_rng ^= g_rng << 25;
	g_rng ^= g_rng >> 27;
	return g_rng * 0x2545f4914f6cdd1dull;
}

static void rng_seed(uint64_t seed)
{
	g_rng = seed * 0x9e3779b97f4a7c15ull + 0x6a09e667f3bcc909ull;
	if (!g_rng)
		g_rng = 1;
}

static void report(const struct trap_frame *f)
{
	uint64_t cr2 = 0;

	if (f->vector == 14)
		__asm__ volatile("mov %%cr2, %0" : "=r"(cr2));
	gprintf("guest: exception %lu at 0x%lx error=0x%lx cs=0x%lx cr2=0x%lx\n", f->vector, f->rip,
		f->error, f->cs, cr2);
}

static void __attribute__((noreturn)) hostile_resume(void);

bool hostile_trap(struct trap_frame *f)
{
	enum expect e = g_expect;

	if (e == EXPECT_NONE || g_in_trap++)
		return false; /* main.c reports it (and a fault while reporting stops the VM) */
	g_expect = EXPECT_NONE;
	report(f);
	if (e == EXPECT_RESUME && (f->cs & 3) == 3) {
		/* Back to CPL 3 on a fresh stack, as if hostile_resume() had been called. */
		f->rip = (uintptr_t)hostile_resume;
		f->rsp = (uintptr_t)(resume_stack + sizeof(resume_stack) - 8);
		g_step++;
		g_in_trap = 0;
		return true;
	}
	gprintf("guest: hostile done\n");
	acpi_poweroff(g_ai);
	__asm__ volatile("cli; hlt");
	return true;
}

/* At CPL 0 (through the system call): every register zeroed, then the garbage. */
static void __attribute__((noreturn)) hostile_jump0(void *unused)
{
	(void)unused;
	__asm__ volatile("xor %%eax, %%eax\n\t"
			 "xor %%ebx, %%ebx\n\t"
			 "xor %%ecx, %%ecx\n\t"
			 "xor %%edx, %%edx\n\t"
			 "xor %%esi, %%esi\n\t"
			 "xor %%edi, %%edi\n\t"
			 "xor %%ebp, %%ebp\n\t"
			 "xor %%r8d, %%r8d\n\t"
			 "xor %%r9d, %%r9d\n\t"
			 "xor %%r10d, %%r10d\n\t"
			 "xor %%r11d, %%r11d\n\t"
			 "xor %%r12d, %%r12d\n\t"
			 "xor %%r13d, %%r13d\n\t"
			 "xor %%r14d, %%r14d\n\t"
			 "xor %%r15d, %%r15d\n\t"
			 "jmp *hostile_target(%%rip)" ::: "memory");
	__builtin_unreachable();
}

static void garbage_run(const char *cmdline)
{
	uint64_t seed = cmdline_num(cmdline, "seed=", 1);

	rng_seed(seed);
	for (unsigned int i = 0; i < GARBAGE_SIZE; i += 8) {
		uint64_t v = rng_next();

		memcpy(garbage + i, &v, 8);
	}
	for (unsigned int i = GARBAGE_SIZE; i < sizeof(garbage); i += 2) {
		garbage[i] = 0x0f; /* ud2 after the page */
		garbage[i + 1] = 0x0b;
	}
	hostile_target = (uintptr_t)garbage;
	gprintf("guest: garbage seed=%lu at=0x%lx\n", seed, hostile_target);
	g_expect = EXPECT_FINAL;
	call_cpl0(hostile_jump0, NULL);
	g_expect = EXPECT_NONE;
	gprintf("guest: garbage returned\n"); /* it may: a stray ret lands here */
}

static void __attribute__((noreturn)) jump_to(uint64_t addr)
{
	__asm__ volatile("jmp *%0" : : "r"(addr));
	__builtin_unreachable();
}

/* jump-unmapped, one step per call; an exception comes back here at CPL 3. */
static void __attribute__((noreturn)) hostile_resume(void)
{
	switch (g_step) {
	case 0:
		gprintf("guest: jump-unmapped non-canonical 0x%lx\n", NONCANONICAL);
		g_expect = EXPECT_RESUME;
		jump_to(NONCANONICAL);
	case 1:
		gprintf("guest: jump-unmapped unmapped 0x%lx\n", UNMAPPED);
		g_expect = EXPECT_RESUME;
		jump_to(UNMAPPED);
	default:
		gprintf("guest: jump-unmapped done\n");
		acpi_poweroff(g_ai);
		for (;;)
			cpu_relax();
	}
}

static uint64_t g_idt_base;
static uint16_t g_idt_limit;

/* At CPL 0: load the bad IDT, then int3. Nothing can be delivered. */
static void bad_idt0(void *unused)
{
	struct __attribute__((packed)) {
		uint16_t limit;
		uint64_t base;
	} d = {g_idt_limit, g_idt_base};

	(void)unused;
	__asm__ volatile("lidt %0\n\tint3" : : "m"(d) : "memory");
}

static void bad_idt_run(const char *cmdline)
{
	size_t len;
	const char *v = cmdline_word(cmdline, "bad-idt=", &len);

	if (v && len == 7 && !memcmp(v, "garbage", 7)) {
		/*
		 * Pseudo-random, canonical (a non-canonical base makes lidt itself
		 * #GP, with the good IDT still loaded) and unmapped: at or above
		 * 16 TiB, below 128 TiB, where no PML4 slot is filled.
		 */
		rng_seed(cmdline_num(cmdline, "seed=", 1));
		g_idt_base = (rng_next() & 0x00007fffffffffffull) | UNMAPPED;
		g_idt_limit = 0xfff;
	} else {
		g_idt_base = 0;
		g_idt_limit = 0;
	}
	gprintf("guest: bad-idt limit=0x%x base=0x%lx\n", g_idt_limit, g_idt_base);
	call_cpl0(bad_idt0, NULL);
	gfail("bad-idt: int3 returned");
}

static void apic_garbage_run(const char *cmdline, const struct acpi_info *ai)
{
	uint64_t lapic = ai->lapic_addr ? ai->lapic_addr : LAPIC_DEFAULT;
	uint64_t ioapic = IOAPIC_DEFAULT;
	uint64_t seed = cmdline_num(cmdline, "seed=", 1);

	rng_seed(seed);
	gprintf("guest: apic-garbage lapic=0x%lx ioapic=0x%lx seed=%lu\n", lapic, ioapic, seed);
	for (unsigned int off = 0; off <= 0x3f0; off += 0x10) {
		uint32_t v = (uint32_t)rng_next();

		/* ICR: garbage, but a fixed-delivery one: an INIT, SIPI or NMI to
		 * ourselves would legitimately end or interrupt the guest. */
		if (off == 0x300)
			v &= ~0x700u;
		mmio_write32(lapic + off, v);
	}
	/* IOAPIC: every register index through the window, then random selects. */
	for (unsigned int i = 0; i < 256; i++) {
		mmio_write32(ioapic, i);
		mmio_write32(ioapic + 0x10, (uint32_t)rng_next());
	}
	for (unsigned int i = 0; i < 64; i++) {
		mmio_write32(ioapic, (uint32_t)rng_next());
		mmio_write32(ioapic + 0x10, (uint32_t)rng_next());
	}
	uint32_t lver = mmio_read32(lapic + 0x30);

	mmio_write32(ioapic, 1);
	gprintf("guest: apic-garbage alive lapic-version=0x%x ioapic-version=0x%x\n", lver,
		mmio_read32(ioapic + 0x10));
}

void hostile_run(enum hostile_action a, const struct boot_info *bi, const struct acpi_info *ai)
{
	g_ai = ai;
	switch (a) {
	case HOSTILE_GARBAGE:
		garbage_run(bi->cmdline);
		break;
	case HOSTILE_JUMP_UNMAPPED:
		g_step = 0;
		hostile_resume();
	case HOSTILE_BAD_IDT:
		bad_idt_run(bi->cmdline);
		break;
	case HOSTILE_APIC_GARBAGE:
		apic_garbage_run(bi->cmdline, ai);
		break;
	}
}
