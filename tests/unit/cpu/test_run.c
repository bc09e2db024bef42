/* The run loop and block cache: budgets, HLT, self-modifying code, cross-page code. */
#include "core_fixture.h"

static struct cfx *F;
static void setup(void) { F = cfx_new(64); }
static void teardown(void) { cfx_free(F); }
TestSuite(run, .init = setup, .fini = teardown);

static void load(uint64_t at, const uint8_t *code, unsigned len)
{
	memcpy(F->ram + at, code, len);
	cpu_code_written(F->map, at, len);
	F->cpu.rip = at;
}
#define LOAD(at, ...)                                              \
	do {                                                       \
		static const uint8_t c_[] = { __VA_ARGS__ };       \
		load((at), c_, sizeof(c_));                        \
	} while (0)

Test(run, loop_until_hlt)
{
	struct cpu *c = &F->cpu;
	/* mov ecx, 1000; xor eax, eax; l: add rax, rcx; dec ecx; jnz l; hlt */
	LOAD(0x1000, 0xb9, 0xe8, 0x03, 0, 0, 0x31, 0xc0, 0x48, 0x01, 0xc8, 0xff, 0xc9, 0x75, 0xf9, 0xf4);
	enum cpu_exit e_ = cpu_run(c, 1000000);
	cr_assert_eq(e_, CPU_EXIT_HLT, "exit %d: %s rip %#lx exc %d", e_, c->exit_why, c->rip, c->exc_vector);
	cr_assert_eq(c->gpr[R_RAX], 500500);
	cr_assert_eq(c->rip, 0x100f);
	cr_assert_eq(c->insn_count, 2 + 3000 + 1);
	/* still halted: nothing to deliver */
	cr_assert_eq(cpu_run(c, 1000), CPU_EXIT_HLT);
}

Test(run, exact_budget)
{
	struct cpu *c = &F->cpu;
	/* l: inc rax; inc rax; inc rax; jmp l */
	LOAD(0x1000, 0x48, 0xff, 0xc0, 0x48, 0xff, 0xc0, 0x48, 0xff, 0xc0, 0xeb, 0xf5);
	cr_assert_eq(cpu_run(c, 10), CPU_EXIT_BUDGET);
	cr_assert_eq(c->insn_count, 10);
	cr_assert_eq(c->gpr[R_RAX], 8); /* 3 + 3 + 2 incs, 2 jmps */
	cr_assert_eq(c->rip, 0x1006);
	cr_assert_eq(cpu_run(c, 1), CPU_EXIT_BUDGET);
	cr_assert_eq(c->gpr[R_RAX], 9);
	/* an exit request */
	cpu_kick(c, CPU_EV_EXIT);
	uint64_t n = c->insn_count;
	cr_assert_eq(cpu_run(c, 1000), CPU_EXIT_BUDGET);
	cr_assert_eq(c->insn_count, n);
	cr_assert_eq(cpu_run(c, 5), CPU_EXIT_BUDGET);
	cr_assert_eq(c->insn_count, n + 5);
}

Test(run, self_modifying_same_block)
{
	struct cpu *c = &F->cpu;
	/* mov byte [rip+1], 0x2a; mov al, 0; hlt */
	LOAD(0x1000, 0xc6, 0x05, 0x01, 0, 0, 0, 0x2a, 0xb0, 0x00, 0xf4);
	cr_assert_eq(cpu_run(c, 100), CPU_EXIT_HLT);
	cr_assert_eq(c->gpr[R_RAX] & 0xff, 0x2a);
}

Test(run, monitor_write_invalidates)
{
	struct cpu *c = &F->cpu;
	LOAD(0x1000, 0xb0, 0x01, 0xf4); /* mov al, 1; hlt */
	cr_assert_eq(cpu_run(c, 100), CPU_EXIT_HLT);
	cr_assert_eq(c->gpr[R_RAX] & 0xff, 1);
	c->halted = false;
	F->ram[0x1001] = 2;
	cpu_code_written(F->map, 0x1001, 1);
	c->rip = 0x1000;
	cr_assert_eq(cpu_run(c, 100), CPU_EXIT_HLT);
	cr_assert_eq(c->gpr[R_RAX] & 0xff, 2);
	cr_assert(code_map_test(F->map, 0x1000));
	cr_assert(!code_map_test(F->map, 0x5000));
}

Test(run, instruction_across_pages)
{
	struct cpu *c = &F->cpu;
	/* nop; nop; mov rax, imm64 straddling 0x2000; hlt */
	LOAD(0x1ffa, 0x90, 0x90, 0x48, 0xb8, 1, 2, 3, 4, 5, 6, 7, 8, 0xf4);
	cr_assert_eq(cpu_run(c, 100), CPU_EXIT_HLT);
	cr_assert_eq(c->gpr[R_RAX], 0x0807060504030201ULL);
	cr_assert_eq(c->rip, 0x2007);
	/* run it again (cached parts, uncached straddler) after changing the second page */
	c->halted = false;
	c->rip = 0x1ffa;
	F->ram[0x2000] = 0x33;
	cpu_code_written(F->map, 0x2000, 1);
	cr_assert_eq(cpu_run(c, 100), CPU_EXIT_HLT);
	cr_assert_eq(c->gpr[R_RAX], 0x0807060504330201ULL);
}

Test(run, call_ret_push_pop_enter_leave)
{
	struct cpu *c = &F->cpu;
	c->gpr[R_RSP] = 0x8000;
	/* 1000: call 1010; hlt
	 * 1010: push rbp; mov rbp, rsp; push 0x1234; pop rbx; enter 16, 0; leave; pop rbp; ret */
	LOAD(0x1000, 0xe8, 0x0b, 0, 0, 0, 0xf4);
	LOAD(0x1010, 0x55, 0x48, 0x89, 0xe5, 0x68, 0x34, 0x12, 0, 0, 0x5b, 0xc8, 0x10, 0, 0, 0xc9,
	     0x5d, 0xc3);
	c->rip = 0x1000;
	c->gpr[R_RBP] = 0xbbbb;
	cr_assert_eq(cpu_run(c, 100), CPU_EXIT_HLT);
	cr_assert_eq(c->rip, 0x1006);
	cr_assert_eq(c->gpr[R_RSP], 0x8000);
	cr_assert_eq(c->gpr[R_RBX], 0x1234);
	cr_assert_eq(c->gpr[R_RBP], 0xbbbb);
}

Test(run, loop_jrcxz_indirect)
{
	struct cpu *c = &F->cpu;
	/* mov ecx, 5; l: inc rax; loop l; jrcxz t; hlt; t: lea rbx, [rip+2]; jmp rbx; hlt; hlt(target) */
	LOAD(0x1000, 0xb9, 5, 0, 0, 0, 0x48, 0xff, 0xc0, 0xe2, 0xfb, 0xe3, 0x01, 0xf4, 0x48, 0x8d,
	     0x1d, 0x03, 0, 0, 0, 0xff, 0xe3, 0xf4, 0xb0, 0x77, 0xf4);
	cr_assert_eq(cpu_run(c, 100), CPU_EXIT_HLT);
	cr_assert_eq(c->gpr[R_RAX], 0x77);
	cr_assert_eq(c->rip, 0x101a);
}

static int ack_vec;
static int t_ack(void *ctx)
{
	(void)ctx;
	int v = ack_vec;
	ack_vec = -1;
	return v;
}

Test(run, real_mode_interrupt_wakes_hlt)
{
	struct cpu *c = &F->cpu;
	static struct cpu_env env = { .intr_ack = t_ack };
	c->env = &env;
	cfx_set_mode(F, 16);
	c->cr0 = 0;
	cpu_update_mode(c);
	for (int s = 0; s < 6; s++) {
		c->seg[s].sel = 0;
		c->seg[s].base = 0;
		c->seg[s].limit = 0xffff;
		c->seg[s].attr = 0x93;
	}
	c->seg[SEG_CS].attr = 0x9b;
	cpu_update_mode(c);
	cr_assert_eq(c->code_bits, 16);
	c->gpr[R_RSP] = 0x7000;
	/* IVT 0x20 -> 0000:0x3000: mov al, 0x55; iret */
	*(uint32_t *)(F->ram + 0x20 * 4) = 0x3000;
	LOAD(0x3000, 0xb0, 0x55, 0xcf);
	/* sti; hlt; mov bl, al; hlt */
	LOAD(0x1000, 0xfb, 0xf4, 0x88, 0xc3, 0xf4);
	cr_assert_eq(cpu_run(c, 100), CPU_EXIT_HLT);
	cr_assert_eq(c->rip, 0x1002);
	ack_vec = 0x20;
	cpu_kick(c, CPU_EV_INTR);
	cr_assert_eq(cpu_run(c, 100), CPU_EXIT_HLT);
	cr_assert_eq(c->gpr[R_RBX] & 0xff, 0x55);
	cr_assert_eq(c->rip, 0x1005);
}

Test(run, triple_fault_and_unimplemented)
{
	struct cpu *c = &F->cpu;
	c->idtr.limit = 0;
	LOAD(0x1000, 0x0f, 0x0b);
	cr_assert_eq(cpu_run(c, 100), CPU_EXIT_SHUTDOWN);
	/* INIT */
	cpu_kick(c, CPU_EV_INIT);
	cr_assert_eq(cpu_run(c, 100), CPU_EXIT_INIT);
}
