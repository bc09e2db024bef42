/*
 * CPU and idle benchmark actions (README.md, "CPU benchmark actions"), for
 * bench/cpu.sh and bench/idle.sh. The guest keeps no time: the host times
 * the whole run against a run with 0 iterations (cpu.sh) or the serial lines
 * around the idle phase (idle.sh).
 *
 *   action=bench-cpu bench-cpu=int|copy|chase bench-iters=N [bench-cpl=0|3]
 *   action=idle [idle=SECONDS] [idle-hz=HZ]
 *
 * The loops are bench/cpubench_kernels.h, the same source the host runs
 * natively. At CPL 0 they run inside the int3 system call (SYS_CALL0).
 */
#include "guest.h"

#include "../../bench/cpubench_kernels.h"

#define SCRATCH_ADDR 0x800000ull /* 8 MiB: above the image, below the balloon's 16 MiB */
#define LAPIC_DEFAULT 0xfee00000ull
#define LAPIC_EOI 0xb0
#define LAPIC_SVR 0xf0
#define LAPIC_LVT_TIMER 0x320
#define LAPIC_TIMER_INIT 0x380
#define LAPIC_TIMER_CUR 0x390
#define LAPIC_TIMER_DIV 0x3e0
#define LVT_MASKED (1u << 16)
#define LVT_PERIODIC (1u << 17)
#define TIMER_DIV_16 0x3
#define TICK_VECTOR 0x40
#define SPURIOUS_VECTOR 0xff
#define IDT_INTR_GATE 0x8e
#define RTC_WAIT 8000000000ull /* TSC cycles for an RTC second to pass */

/* Runs fn(arg) at CPL 0 through the int3 system call; registers survive. */
static void call_cpl0(void (*fn)(void *), void *arg)
{
	__asm__ volatile("int3" : : "a"(SYS_CALL0), "D"(fn), "S"(arg) : "memory");
}

static uint16_t cpl(void)
{
	uint16_t cs;

	__asm__ volatile("mov %%cs, %0" : "=r"(cs));
	return cs & 3;
}

/* Whether [a, a+len) lies inside one RAM entry of the memory map. */
static bool ram_ok(const struct boot_info *bi, uint64_t a, uint64_t len)
{
	for (unsigned int i = 0; i < bi->nmem; i++)
		if (bi->mem[i].type == E820_RAM && bi->mem[i].start <= a &&
		    a + len <= bi->mem[i].end)
			return phys_ok(a, len);
	return false;
}

struct cpu_job {
	char kind[8];
	uint64_t iters, result;
	unsigned int cpl;
};

static void cpu_job_run(void *arg)
{
	struct cpu_job *j = arg;

	j->result = cpubench_run(j->kind, j->iters, phys(SCRATCH_ADDR));
	j->cpl = cpl();
}

void bench_cpu_run(const struct boot_info *bi)
{
	struct cpu_job j = {.iters = cmdline_num(bi->cmdline, "bench-iters=", 0)};
	uint64_t want_cpl = cmdline_num(bi->cmdline, "bench-cpl=", 3);
	size_t len;
	const char *k = cmdline_word(bi->cmdline, "bench-cpu=", &len);

	if (!k) {
		k = "int";
		len = 3;
	}
	memcpy(j.kind, k, len < sizeof(j.kind) - 1 ? len : sizeof(j.kind) - 1);
	gprintf("guest: bench cpu kernel=%s iters=%lu cpl=%lu\n", j.kind, j.iters, want_cpl);
	if (want_cpl != 0 && want_cpl != 3) {
		gfail("bench cpu bench-cpl=%lu: not 0 or 3", want_cpl);
		return;
	}
	if (strlen(j.kind) != len || (memcmp(j.kind, "int", 4) && memcmp(j.kind, "copy", 5) &&
				      memcmp(j.kind, "chase", 6))) {
		gfail("bench cpu bench-cpu=%s: not int, copy or chase", j.kind);
		return;
	}
	if (!ram_ok(bi, SCRATCH_ADDR, CPUBENCH_SCRATCH_BYTES)) {
		gfail("bench cpu scratch 0x%llx-0x%llx is not RAM", SCRATCH_ADDR,
		      SCRATCH_ADDR + CPUBENCH_SCRATCH_BYTES);
		return;
	}
	if (want_cpl == 0)
		call_cpl0(cpu_job_run, &j);
	else
		cpu_job_run(&j);
	gprintf("guest: bench cpu done cpl=%u result=0x%lx\n", j.cpl, j.result);
}

/* The tick: count, EOI. Interrupts come only at CPL 0 (hlt below). */
__asm__(".text\n"
	".balign 16\n"
	"bench_tick_stub:\n"
	"	pushq %rax\n"
	"	incq bench_ticks(%rip)\n"
	"	movq bench_lapic_eoi(%rip), %rax\n"
	"	movl $0, (%rax)\n"
	"	popq %rax\n"
	"	iretq\n"
	"bench_spurious_stub:\n"
	"	iretq\n");
extern char bench_tick_stub[], bench_spurious_stub[];
volatile uint64_t bench_ticks;
uint64_t bench_lapic_eoi;

static void gate(unsigned int vec, uint64_t handler)
{
	uint8_t *g = idt + vec * 16;
	uint16_t sel = SEL_KCODE;

	memset(g, 0, 16);
	memcpy(g + 0, &handler, 2);
	memcpy(g + 2, &sel, 2);
	g[5] = IDT_INTR_GATE;
	memcpy(g + 6, (uint8_t *)&handler + 2, 6);
}

struct idle_job {
	uint64_t lapic, initial, ticks;
};

/* At CPL 0: periodic LAPIC timer, sti; hlt until the ticks are in. */
static void idle_job_run(void *arg)
{
	struct idle_job *j = arg;

	bench_ticks = 0;
	mmio_write32(j->lapic + LAPIC_TIMER_DIV, TIMER_DIV_16);
	mmio_write32(j->lapic + LAPIC_LVT_TIMER, TICK_VECTOR | LVT_PERIODIC);
	mmio_write32(j->lapic + LAPIC_TIMER_INIT, (uint32_t)j->initial);
	while (bench_ticks < j->ticks)
		__asm__ volatile("sti; hlt; cli" ::: "memory");
	mmio_write32(j->lapic + LAPIC_LVT_TIMER, TICK_VECTOR | LVT_MASKED);
	mmio_write32(j->lapic + LAPIC_TIMER_INIT, 0);
}

/* Waits for the RTC's seconds register to change; false after RTC_WAIT cycles. */
static bool rtc_next_second(void)
{
	int s0 = rtc_read_seconds(), s;
	uint64_t t0 = rdtsc();

	while (s0 < 0 && rdtsc() - t0 < RTC_WAIT)
		s0 = rtc_read_seconds();
	do
		s = rtc_read_seconds();
	while ((s < 0 || s == s0) && rdtsc() - t0 < RTC_WAIT);
	return s >= 0 && s != s0;
}

void bench_idle_run(const struct acpi_info *ai, const struct boot_info *bi)
{
	struct idle_job j = {.lapic = ai->lapic_addr ? ai->lapic_addr : LAPIC_DEFAULT};
	uint64_t secs = cmdline_num(bi->cmdline, "idle=", 10);
	uint64_t hz = cmdline_num(bi->cmdline, "idle-hz=", 250);
	uint32_t left;

	if (!phys_ok(j.lapic, 0x400) || !hz) {
		gfail("idle local APIC at 0x%lx not addressable or idle-hz=0", j.lapic);
		return;
	}
	bench_lapic_eoi = j.lapic + LAPIC_EOI;
	gate(TICK_VECTOR, (uintptr_t)bench_tick_stub);
	gate(SPURIOUS_VECTOR, (uintptr_t)bench_spurious_stub);
	mmio_write32(j.lapic + LAPIC_SVR, 0x100 | SPURIOUS_VECTOR);
	/* The timer's rate (divided by 16) over one RTC second, one-shot, masked. */
	mmio_write32(j.lapic + LAPIC_TIMER_DIV, TIMER_DIV_16);
	mmio_write32(j.lapic + LAPIC_LVT_TIMER, TICK_VECTOR | LVT_MASKED);
	if (!rtc_next_second()) {
		gfail("idle rtc seconds do not advance");
		return;
	}
	mmio_write32(j.lapic + LAPIC_TIMER_INIT, 0xffffffffu);
	if (!rtc_next_second()) {
		gfail("idle rtc seconds do not advance");
		return;
	}
	left = mmio_read32(j.lapic + LAPIC_TIMER_CUR);
	mmio_write32(j.lapic + LAPIC_TIMER_INIT, 0);
	j.initial = (uint64_t)(0xffffffffu - left) / hz;
	if (!j.initial || j.initial > 0xffffffffull) {
		gfail("idle timer counted %u in one second", 0xffffffffu - left);
		return;
	}
	j.ticks = secs * hz;
	gprintf("guest: idle timer-hz=%lu tick-hz=%lu seconds=%lu\n",
		(uint64_t)(0xffffffffu - left) * 16, hz, secs);
	gprintf("guest: idle start\n");
	call_cpl0(idle_job_run, &j);
	gprintf("guest: idle done ticks=%lu\n", bench_ticks);
}
