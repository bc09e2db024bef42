/* System behaviour through the real run loop (cpu_run) and block cache. */
#include "sys_fixture.h"

static struct cpu_code_map *g_map;
static int g_pending_vector = -1;

static int fx_intr_ack(void *ctx)
{
	int v = g_pending_vector;

	(void)ctx;
	g_pending_vector = -1;
	return v;
}

static void run_setup(void)
{
	fx_setup();
	g_map = cpu_code_map_new(&g_fx->mem);
	g_fx->env.intr_ack = fx_intr_ack;
	cr_assert_eq(cpu_init(g_fx->cpu, &g_fx->mem, g_map, &g_fx->env, g_fx, 0), 0);
	g_fx->cpu->gdtr.base = FX_GDT;
	g_fx->cpu->gdtr.limit = 0x57;
	g_fx->cpu->idtr.base = FX_IDT;
	g_fx->cpu->idtr.limit = 0xfff;
}

static void run_teardown(void)
{
	cpu_destroy(g_fx->cpu);
	cpu_code_map_free(g_map);
	fx_teardown();
}

#define CODE_TF 0x10000ULL

TestSuite(sysrun, .init = run_setup, .fini = run_teardown);

/* The PVH-style path: real-mode trampoline (as an AP after SIPI) to long
 * mode, then HLT; an interrupt wakes it. */
Test(sysrun, sipi_trampoline_to_long_mode_hlt_and_wake)
{
	struct cpu *c = g_fx->cpu;
	uint64_t pml4 = fx_alloc_page(), pdpt = fx_alloc_page(), pd = fx_alloc_page();
	static const uint8_t real[] = {
		0xfa,					  /* cli */
		0x2e, 0x0f, 0x01, 0x16, 0x00, 0x0e,	  /* lgdt cs:[0xe00] */
		0x0f, 0x20, 0xc0,			  /* mov eax, cr0 */
		0x0c, 0x01,				  /* or al, 1 */
		0x0f, 0x22, 0xc0,			  /* mov cr0, eax */
		0x66, 0xea, 0x20, 0x90, 0, 0, 0x28, 0,	  /* jmp dword 0x28:0x9020 */
	};
	uint8_t prot[] = {
		0x66, 0xb8, 0x10, 0x00,	       /* mov ax, 0x10 */
		0x8e, 0xd8,		       /* mov ds, ax */
		0x8e, 0xd0,		       /* mov ss, ax */
		0x0f, 0x20, 0xe0,	       /* mov eax, cr4 */
		0x83, 0xc8, 0x20,	       /* or eax, 0x20 */
		0x0f, 0x22, 0xe0,	       /* mov cr4, eax */
		0xb8, 0, 0, 0, 0,	       /* mov eax, pml4 */
		0x0f, 0x22, 0xd8,	       /* mov cr3, eax */
		0xb9, 0x80, 0x00, 0x00, 0xc0, /* mov ecx, EFER */
		0x0f, 0x32,		       /* rdmsr */
		0x0d, 0x00, 0x09, 0x00, 0x00, /* or eax, LME|NXE */
		0x0f, 0x30,		       /* wrmsr */
		0x0f, 0x20, 0xc0,	       /* mov eax, cr0 */
		0x0d, 0x00, 0x00, 0x01, 0x80, /* or eax, PG|WP */
		0x0f, 0x22, 0xc0,	       /* mov cr0, eax */
		0xea, 0x80, 0x90, 0, 0, 0x08, 0x00, /* jmp 0x08:0x9080 */
	};
	static const uint8_t lm[] = {
		0x48, 0xc7, 0xc4, 0x00, 0x80, 0x00, 0x00, /* mov rsp, 0x8000 */
		0xfb,					  /* sti */
		0xf4,					  /* hlt */
		0xeb, 0xfe,				  /* jmp $ */
	};
	static const uint8_t isr[] = { 0x48, 0xff, 0xc3, 0x48, 0xcf }; /* inc rbx; iretq */
	enum cpu_exit e;

	memcpy(prot + 18, &pml4, 4);
	fx_w64(pml4, pdpt | 3);
	fx_w64(pdpt, pd | 3);
	fx_w64(pd, 0x83);
	fx_w16(0x9e00, 0x57);
	fx_w32(0x9e02, FX_GDT);
	fx_code(0x9000, real, sizeof(real));
	fx_code(0x9020, prot, sizeof(prot));
	fx_code(0x9080, lm, sizeof(lm));
	fx_code(0x20000, isr, sizeof(isr));
	fx_gate64(0x40, SEL_CODE64, 0x20000, 0xe, 0, 0);
	c->gdtr.base = 0;
	c->gdtr.limit = 0xffff;
	cpu_sipi(c, 0x09);
	e = cpu_run(c, 1000);
	cr_assert_eq(e, CPU_EXIT_HLT, "exit %d: %s", e, c->exit_why);
	cr_assert(c->long_mode);
	cr_assert_eq(c->code_bits, 64);
	cr_assert_eq(c->rip, 0x9089);
	/* Still halted without an interrupt. */
	cr_assert_eq(cpu_run(c, 1000), CPU_EXIT_HLT);
	g_pending_vector = 0x40;
	cpu_kick(c, CPU_EV_INTR);
	e = cpu_run(c, 3);
	cr_assert_eq(c->gpr[R_RBX], 1);
	cr_assert_eq(c->rip, 0x9089, "back after the hlt (jmp $): %lx", c->rip);
	cr_assert_eq(c->gpr[R_RSP], 0x8000);
}

Test(sysrun, triple_fault_shuts_down)
{
	struct cpu *c = g_fx->cpu;
	static const uint8_t code[] = { 0x0f, 0x0b }; /* ud2 */

	fx_long_mode();
	c->idtr.limit = 0;
	fx_code(CODE_TF, code, sizeof(code));
	c->rip = CODE_TF;
	cr_assert_eq(cpu_run(c, 100), CPU_EXIT_SHUTDOWN);
	cr_assert(strstr(c->exit_why, "triple fault") != NULL, "%s", c->exit_why);
}

Test(sysrun, user_mode_syscall_loop)
{
	struct cpu *c = g_fx->cpu;
	/* user: syscall; jmp back (3 times counted in the kernel) */
	static const uint8_t user[] = { 0x0f, 0x05, 0xeb, 0xfc };
	/* kernel: swapgs; inc rbx; cmp rbx, 3; je out; swapgs; sysretq; out: hlt */
	static const uint8_t kern[] = { 0x0f, 0x01, 0xf8, 0x48, 0xff, 0xc3, 0x48, 0x83,
					0xfb, 0x03, 0x74, 0x06, 0x0f, 0x01, 0xf8, 0x48,
					0x0f, 0x07, 0xf4 };
	enum cpu_exit e;

	fx_long_mode();
	fx_map64(0x400000, 0x400000, PTE_P | PTE_U);
	fx_code(0x400000, user, sizeof(user));
	fx_code(0x20000, kern, sizeof(kern));
	c->star = (0x10ULL << 48) | (0x08ULL << 32);
	c->lstar = 0x20000;
	c->fmask = FL_IF;
	c->kernel_gs_base = 0xffff888000000000ULL;
	fx_seg(SEG_CS, SEL_UCODE64);
	fx_seg(SEG_SS, SEL_UDATA);
	cpu_update_mode(c);
	c->rip = 0x400000;
	e = cpu_run(c, 1000);
	cr_assert_eq(e, CPU_EXIT_HLT, "%d %s", e, c->exit_why);
	cr_assert_eq(c->gpr[R_RBX], 3);
	cr_assert_eq(c->cpl, 0);
	cr_assert_eq(c->seg[SEG_GS].base, 0xffff888000000000ULL);
}

/*
 * kvm-unit-tests syscall "TF handling", through the run loop: a SYSCALL
 * executed with TF set, whose FMASK clears TF, is not single-stepped in the
 * kernel; a SYSRET whose R11 sets TF traps right after it, in user mode.
 * The #DB handler records the CS it interrupted and clears TF.
 */
Test(sysrun, syscall_sysret_single_step)
{
	struct cpu *c = g_fx->cpu;
	static const uint8_t user[] = { 0x0f, 0x05, 0x0f, 0x05 }; /* syscall; syscall */
	static const uint8_t kern[] = {
		0x48, 0x85, 0xed,		    /* test rbp, rbp */
		0x75, 0x09,			    /* jnz out */
		0x41, 0xbb, 0x02, 0x03, 0x00, 0x00, /* mov r11d, IF|TF|2 */
		0x48, 0x0f, 0x07,		    /* sysretq */
		0xf4,				    /* out: hlt */
	};
	static const uint8_t db[] = {
		0x48, 0x8b, 0x6c, 0x24, 0x08,		  /* mov rbp, [rsp + 8] (CS) */
		0x81, 0x64, 0x24, 0x10, 0xff, 0xfe, 0xff, 0xff, /* and dword [rsp + 16], ~TF */
		0x48, 0xcf,				  /* iretq */
	};
	enum cpu_exit e;

	fx_long_mode();
	fx_map64(0x400000, 0x400000, PTE_P | PTE_U);
	fx_code(0x400000, user, sizeof(user));
	fx_code(0x20000, kern, sizeof(kern));
	fx_code(0x30000, db, sizeof(db));
	fx_gate64(EXC_DB, SEL_CODE64, 0x30000, 0xe, 0, 0);
	fx_w64(FX_TSS + 4, 0x9000);
	c->star = (0x10ULL << 48) | (0x08ULL << 32);
	c->lstar = 0x20000;
	c->fmask = FL_IF | FL_TF;
	fx_seg(SEG_CS, SEL_UCODE64);
	fx_seg(SEG_SS, SEL_UDATA);
	cpu_update_mode(c);
	cpu_set_rflags(c, FL_TF | 2);
	c->gpr[R_RBP] = 0;
	c->rip = 0x400000;
	e = cpu_run(c, 1000);
	cr_assert_eq(e, CPU_EXIT_HLT, "%d %s", e, c->exit_why);
	cr_assert_eq(c->gpr[R_RBP], SEL_UCODE64, "#DB interrupted CS %#llx",
		     (unsigned long long)c->gpr[R_RBP]);
	cr_assert_eq(c->rip, 0x20000 + sizeof(kern));
}

/*
 * MOV SS holds the single-step trap until after the next instruction
 * (kvm-unit-tests debug "Single-step #DB w/ MOVSS blocking"): with TF set,
 * "mov ss, ax; nop; nop" traps after each nop only. The #DB handler logs
 * the RIP it returns to at [0x8000 + 8 * n].
 */
Test(sysrun, mov_ss_holds_single_step)
{
	struct cpu *c = g_fx->cpu;
	static const uint8_t code[] = {
		0x8e, 0xd0, /* mov ss, ax */
		0x90,	    /* nop */
		0x90,	    /* nop */
		0xfa,	    /* cli: TF cleared by the handler after 2 traps */
		0xf4,	    /* hlt */
	};
	static const uint8_t db[] = {
		0x48, 0x8b, 0x04, 0x24,			  /* mov rax, [rsp] */
		0x48, 0x89, 0x04, 0xdd, 0x00, 0x80, 0x00, 0x00, /* mov [rbx*8 + 0x8000], rax */
		0x48, 0xff, 0xc3,			  /* inc rbx */
		0x48, 0x83, 0xfb, 0x02,			  /* cmp rbx, 2 */
		0x75, 0x08,				  /* jne 1f */
		0x81, 0x64, 0x24, 0x10, 0xff, 0xfe, 0xff, 0xff, /* and dword [rsp + 16], ~TF */
		0x66, 0xb8, 0x10, 0x00,			  /* 1: mov ax, SEL_DATA */
		0x48, 0xcf,				  /* iretq */
	};
	enum cpu_exit e;

	fx_long_mode();
	fx_code(0x10000, code, sizeof(code));
	fx_code(0x30000, db, sizeof(db));
	fx_gate64(EXC_DB, SEL_CODE64, 0x30000, 0xe, 0, 0);
	c->gpr[R_RSP] = 0x9000;
	c->gpr[R_RAX] = SEL_DATA;
	c->gpr[R_RBX] = 0;
	cpu_set_rflags(c, FL_TF | 2);
	c->rip = 0x10000;
	e = cpu_run(c, 1000);
	cr_assert_eq(e, CPU_EXIT_HLT, "%d %s", e, c->exit_why);
	cr_assert_eq(c->gpr[R_RBX], 2);
	cr_assert_eq(fx_r64(0x8000), 0x10003, "first trap after the first nop");
	cr_assert_eq(fx_r64(0x8008), 0x10004);
}
