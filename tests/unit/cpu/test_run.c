/* The run loop and block cache: budgets, HLT, self-modifying code, cross-page code. */
#include <pthread.h>

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

Test(run, protected_32bit_calls_and_stack)
{
	struct cpu *c = &F->cpu;
	cfx_set_mode(F, 32);
	c->gpr[R_RSP] = 0xffffffff00008000ULL; /* upper half ignored, cleared by pushes */
	/* 1000: mov ecx, 10; l: call f; loop l; hlt; f: push ebp; mov ebp, esp; add eax, [ebp+4]; leave; ret */
	LOAD(0x1000, 0xb9, 10, 0, 0, 0, 0xe8, 0x03, 0, 0, 0, 0xe2, 0xf9, 0xf4, 0x55, 0x89, 0xe5,
	     0x03, 0x45, 0x04, 0xc9, 0xc3);
	c->gpr[R_RAX] = 0;
	cr_assert_eq(cpu_run(c, 1000), CPU_EXIT_HLT);
	cr_assert_eq(c->gpr[R_RAX], 10 * 0x100a);
	cr_assert_eq(c->gpr[R_RSP] & 0xffffffff, 0x8000);
	cr_assert_eq(c->rip, 0x100d);
}

Test(run, real_mode_16bit_code)
{
	struct cpu *c = &F->cpu;
	c->cr0 = 0;
	for (int s = 0; s < 6; s++) {
		c->seg[s].sel = 0x100;
		c->seg[s].base = 0x1000;
		c->seg[s].limit = 0xffff;
		c->seg[s].attr = 0x93;
	}
	c->seg[SEG_CS].attr = 0x9b;
	c->efer = 0;
	cpu_update_mode(c);
	cr_assert_eq(c->code_bits, 16);
	c->gpr[R_RSP] = 0x2000;
	/* at cs:0: mov si, 0x300; mov cx, 3; l: lodsb; add bl, al; loop l; push bx; pop dx;
	 * mov di, 0x400; mov ax, 0x1234; stosw; hlt */
	LOAD(0x1000, 0xbe, 0x00, 0x03, 0xb9, 0x03, 0x00, 0xac, 0x00, 0xc3, 0xe2, 0xfb, 0x53, 0x5a,
	     0xbf, 0x00, 0x04, 0xb8, 0x34, 0x12, 0xab, 0xf4);
	c->rip = 0;
	F->ram[0x1300] = 1;
	F->ram[0x1301] = 2;
	F->ram[0x1302] = 3;
	c->gpr[R_RBX] = 0;
	cr_assert_eq(cpu_run(c, 1000), CPU_EXIT_HLT);
	cr_assert_eq(c->gpr[R_RDX] & 0xffff, 6);
	cr_assert_eq(*(uint16_t *)(F->ram + 0x1400), 0x1234);
	cr_assert_eq(c->rip, 0x15);
	cr_assert_eq(c->gpr[R_RSP], 0x2000);
}

Test(run, trap_flag_single_step_real_mode)
{
	struct cpu *c = &F->cpu;
	c->cr0 = 0;
	for (int s = 0; s < 6; s++) {
		c->seg[s].sel = 0;
		c->seg[s].base = 0;
		c->seg[s].limit = 0xffff;
		c->seg[s].attr = 0x93;
	}
	c->seg[SEG_CS].attr = 0x9b;
	c->efer = 0;
	cpu_update_mode(c);
	c->gpr[R_RSP] = 0x7000;
	/* #DB handler at 0:0x3000: inc si; iret */
	*(uint32_t *)(F->ram + 1 * 4) = 0x3000;
	LOAD(0x3000, 0x46, 0xcf);
	/* nop; nop; pushf; pop ax; and ax, ~0x100; push ax; popf; hlt with TF set: a trap after
	 * each instruction up to and including the popf that clears TF */
	LOAD(0x1000, 0x90, 0x90, 0x9c, 0x58, 0x25, 0xff, 0xfe, 0x50, 0x9d, 0xf4);
	cpu_set_rflags(c, 2 | FL_TF);
	c->gpr[R_RSI] = 0;
	enum cpu_exit e = cpu_run(c, 1000);
	cr_assert_eq(e, CPU_EXIT_HLT, "exit %d %s rip %#lx si %lu", e, c->exit_why, c->rip, c->gpr[R_RSI]);
	cr_assert_eq(c->gpr[R_RSI], 7);
	cr_assert_eq(c->rip, 0x100a);
	cr_assert(c->dr[6] & 0x4000);
}

static void *run_thread(void *arg)
{
	struct cpu *c = arg;
	enum cpu_exit e = cpu_run(c, 100000000);
	return (void *)(uintptr_t)e;
}

Test(run, two_vcpus_locked_increments)
{
	struct cpu *c0 = &F->cpu;
	struct cpu *c1 = calloc(1, sizeof(*c1));
	cr_assert_eq(cpu_init(c1, &F->mem, F->map, NULL, NULL, 1), 0);
	/* mov ecx, 100000; l: lock inc qword [rbx]; lock add [rbx+8], rdx; dec ecx; jnz l; hlt */
	LOAD(0x1000, 0xb9, 0xa0, 0x86, 0x01, 0x00, 0xf0, 0x48, 0xff, 0x03, 0xf0, 0x48, 0x01,
	     0x53, 0x08, 0xff, 0xc9, 0x75, 0xf3, 0xf4);
	memcpy(c1->seg, c0->seg, sizeof(c0->seg));
	c1->cr0 = c0->cr0;
	c1->efer = c0->efer;
	cpu_set_rflags(c1, 2);
	cpu_update_mode(c1);
	c0->gpr[R_RBX] = c1->gpr[R_RBX] = 0x5000;
	c0->gpr[R_RDX] = c1->gpr[R_RDX] = 3;
	c0->gpr[R_RSP] = 0x80000;
	c1->gpr[R_RSP] = 0x90000;
	c1->rip = 0x1000;
	pthread_t t0, t1;
	void *r0, *r1;
	pthread_create(&t0, NULL, run_thread, c0);
	pthread_create(&t1, NULL, run_thread, c1);
	pthread_join(t0, &r0);
	pthread_join(t1, &r1);
	cr_assert_eq((uintptr_t)r0, CPU_EXIT_HLT);
	cr_assert_eq((uintptr_t)r1, CPU_EXIT_HLT);
	uint64_t *m = (uint64_t *)(F->ram + 0x5000);
	cr_assert_eq(m[0], 200000, "m0 %lu m1 %lu rcx %lx %lx", m[0], m[1], c0->gpr[R_RCX], c1->gpr[R_RCX]);
	cr_assert_eq(m[1], 600000);
	cpu_destroy(c1);
	free(c1);
}
