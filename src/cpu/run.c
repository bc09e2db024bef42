/*
 * The run loop: events and interrupts between blocks, the decoded block's
 * instructions in a tight loop, faults back here by longjmp; and the vCPU
 * lifecycle.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "cpu/block.h"
#include "cpu/cache.h"
#include "cpu/cpu.h"
#include "cpu/except.h"
#include "cpu/mem.h"

static pthread_once_t dispatch_once = PTHREAD_ONCE_INIT;

int cpu_init(struct cpu *cpu, const struct guest_mem *mem, struct cpu_code_map *map,
	     const struct cpu_env *env, void *env_ctx, uint32_t apic_id)
{
	memset(cpu, 0, sizeof(*cpu));
	pthread_once(&dispatch_once, dispatch_init);
	cpu->mem = mem;
	cpu->code_map = map;
	cpu->env = env;
	cpu->env_ctx = env_ctx;
	cpu->apic_id = apic_id;
	cpu->exc_vector = -1;
	cpu->delivering = -1;
	cpu->cache = block_cache_new();
	if (!cpu->cache)
		return -ENOMEM;
	cpu_reset(cpu);
	return 0;
}

void cpu_destroy(struct cpu *cpu)
{
	block_cache_free(cpu->cache);
	cpu->cache = NULL;
}

void cpu_kick(struct cpu *cpu, unsigned int ev)
{
	atomic_fetch_or(&cpu->events, ev);
}

static void ev_clear(struct cpu *cpu, unsigned ev)
{
	atomic_fetch_and(&cpu->events, ~ev);
}

/* Events and HLT between blocks: an exit reason, or -1 to go on running. */
static int handle_events(struct cpu *cpu)
{
	unsigned ev = atomic_load_explicit(&cpu->events, memory_order_acquire);

	if (ev & CPU_EV_INIT) {
		ev_clear(cpu, CPU_EV_INIT);
		return CPU_EXIT_INIT;
	}
	if (ev & CPU_EV_NMI) {
		ev_clear(cpu, CPU_EV_NMI);
		cpu_nmi_deliver(cpu); /* wakes from HLT unless NMIs are blocked */
	} else if ((ev & CPU_EV_INTR) && (cpu->rflags & FL_IF) && !cpu->intr_shadow) {
		ev_clear(cpu, CPU_EV_INTR);
		int v = cpu->env && cpu->env->intr_ack ? cpu->env->intr_ack(cpu->env_ctx) : -1;
		if (v >= 0) {
			/* Ask again next time: more may be pending. */
			atomic_fetch_or(&cpu->events, CPU_EV_INTR);
			cpu->halted = false;
			cpu_interrupt_deliver(cpu, (uint8_t)v);
		}
	}
	/* Halted (HLT also requests an exit): report HLT, the stronger reason. */
	if (cpu->halted) {
		ev_clear(cpu, CPU_EV_EXIT);
		return CPU_EXIT_HLT;
	}
	if (ev & CPU_EV_EXIT) {
		ev_clear(cpu, CPU_EV_EXIT);
		return CPU_EXIT_BUDGET;
	}
	return -1;
}

static uint64_t rip_mask(const struct cpu *cpu)
{
	return cpu->code_bits == 64 ? ~0ULL : 0xffffffffULL;
}

/* SYSCALL and SYSRET (0F 05, 0F 07) take their single-step trap after the
 * TF they load, not the one they found (exec_sys.c raises it). */
static bool own_step_trap(const struct insn *in)
{
	return in->map == MAP_0F && (in->op == 0x05 || in->op == 0x07);
}

/* One instruction with an interrupt shadow or TF: the shadow ends after it,
 * TF raises the single-step #DB trap after it, except that a MOV SS / POP SS
 * shadow (intr_shadow 2, seg.c) holds the trap until after the next one. */
static void run_one(struct cpu *cpu, const struct insn *in)
{
	bool tf = cpu->rflags & FL_TF, shadow = cpu->intr_shadow;
	cpu->next_rip = (cpu->rip + in->len) & rip_mask(cpu);
	in->fn(cpu, in);
	cpu->rip = cpu->next_rip;
	cpu->insn_count++;
	if (shadow)
		cpu->intr_shadow = 0;
	if (tf && cpu->intr_shadow != 2 && !own_step_trap(in)) {
		cpu->dr[6] |= 0x4000; /* BS */
		cpu_raise_trap(cpu, EXC_DB);
	}
}

/* The generation blocks that are not cached compare against: never moves. */
static const _Atomic uint32_t never_written;

/*
 * Runs up to `left` (> 0) instructions of the block. RIP, the code page's
 * generation and the retired count stay in locals (the handlers see
 * cpu->rip and cpu->next_rip as insn.h says); insn_count is added once at
 * the end (a fault's longjmp skips that: cpu_run counts from the RIP).
 */
static void run_block(struct cpu *cpu, const struct cpu_block *b, uint64_t left)
{
	const struct insn *in = b->insn, *end = in + (b->n < left ? b->n : left);
	const _Atomic uint32_t *genp = b->genp ? b->genp : &never_written;
	uint32_t gen = b->genp ? b->gen : 0;
	uint64_t mask = rip_mask(cpu), rip = cpu->rip;

	do {
		uint64_t next = (rip + in->len) & mask;
		cpu->next_rip = next;
		in->fn(cpu, in);
		rip = cpu->next_rip;
		cpu->rip = rip;
		in++;
		/* A taken branch, a restarted rep, or code written under us: leave. */
		if (rip != next || atomic_load_explicit(genp, memory_order_relaxed) != gen)
			break;
	} while (in < end);
	cpu->insn_count += (uint64_t)(in - b->insn);
}

/* Instructions of b that retired before the one at `rip` faulted (b began at rip0). */
static uint64_t retired_before(const struct cpu *cpu, const struct cpu_block *b, uint64_t rip0,
			       uint64_t rip)
{
	uint64_t n = 0, mask = rip_mask(cpu);
	while (n < b->n && rip0 != rip)
		rip0 = (rip0 + b->insn[n++].len) & mask;
	return rip0 == rip ? n : 0;
}

enum cpu_exit cpu_run(struct cpu *cpu, uint64_t budget)
{
	uint64_t end = cpu->insn_count + budget;
	/* The block running and its first RIP, for the count after a fault. */
	const struct cpu_block *volatile running = NULL;
	volatile uint64_t running_rip = 0;

	if (setjmp(cpu->fault_jmp)) {
		if (running)
			cpu->insn_count += retired_before(cpu, running, running_rip, cpu->rip);
		running = NULL;
		/* A fault (or a fault while delivering one): deliver, then go on. */
		if (cpu->exc_vector == EXC_UNIMPLEMENTED)
			return CPU_EXIT_ERROR;
		if (!cpu_exception_deliver(cpu))
			return CPU_EXIT_SHUTDOWN;
		cpu->halted = false;
	}
	/* The block that ran last (for its successor link); set again after a fault. */
	struct cpu_block *prev = NULL;
	for (;;) {
		if (atomic_load_explicit(&cpu->events, memory_order_relaxed) || cpu->halted) {
			int r = handle_events(cpu);
			if (r >= 0)
				return (enum cpu_exit)r;
			prev = NULL; /* an interrupt may have moved RIP: no link to learn */
		}
		if (cpu->insn_count >= end)
			return CPU_EXIT_BUDGET;
		if (block_cache_epoch_changed(cpu))
			cpu_tlb_flush(cpu, true);
		uint64_t lin = cpu->seg[SEG_CS].base + cpu->rip;
		if (cpu->code_bits != 64)
			lin = (uint32_t)lin;
		struct cpu_block *b = block_next(cpu, prev, lin);
		prev = b->genp ? b : NULL;
		if (__builtin_expect(cpu->intr_shadow || (cpu->rflags & FL_TF), 0)) {
			run_one(cpu, b->insn); /* counts itself */
			continue;
		}
		running = b;
		running_rip = cpu->rip;
		run_block(cpu, b, end - cpu->insn_count);
		running = NULL;
	}
}
