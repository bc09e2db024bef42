/* System instructions (exec_sys.c, seg.c, msr.c) driven as machine code. */
#include "sys_fixture.h"

#include "cpu/msr.h"

TestSuite(sys, .init = fx_setup, .fini = fx_teardown);

#define CODE 0x10000ULL

static int run_code(const void *code, size_t n, int steps)
{
	fx_code(CODE, code, n);
	g_fx->cpu->rip = CODE;
	return fx_run(steps);
}

/* Real mode -> protected mode -> long mode, the way a boot loader does it. */
Test(sys, real_to_protected_to_long_mode)
{
	struct cpu *c = g_fx->cpu;
	uint64_t pml4 = fx_alloc_page(), pdpt = fx_alloc_page(), pd = fx_alloc_page();
	static const uint8_t real[] = {
		0xfa,				    /* cli */
		0x0f, 0x01, 0x16, 0x00, 0x7e,	    /* lgdt [0x7e00] */
		0x0f, 0x20, 0xc0,		    /* mov eax, cr0 */
		0x0c, 0x01,			    /* or al, 1 */
		0x0f, 0x22, 0xc0,		    /* mov cr0, eax */
		0x66, 0xea, 0x20, 0x7c, 0, 0, 0x28, 0, /* jmp dword 0x28:0x7c20 */
	};
	uint8_t prot[] = {
		0x66, 0xb8, 0x10, 0x00,		     /* mov ax, 0x10 */
		0x8e, 0xd8,			     /* mov ds, ax */
		0x8e, 0xd0,			     /* mov ss, ax */
		0x0f, 0x20, 0xe0,		     /* mov eax, cr4 */
		0x83, 0xc8, 0x20,		     /* or eax, 0x20 (PAE) */
		0x0f, 0x22, 0xe0,		     /* mov cr4, eax */
		0xb8, 0, 0, 0, 0,		     /* mov eax, pml4 */
		0x0f, 0x22, 0xd8,		     /* mov cr3, eax */
		0xb9, 0x80, 0x00, 0x00, 0xc0,	     /* mov ecx, EFER */
		0x0f, 0x32,			     /* rdmsr */
		0x0d, 0x00, 0x01, 0x00, 0x00,	     /* or eax, LME */
		0x0f, 0x30,			     /* wrmsr */
		0x0f, 0x20, 0xc0,		     /* mov eax, cr0 */
		0x0d, 0x00, 0x00, 0x00, 0x80,	     /* or eax, PG */
		0x0f, 0x22, 0xc0,		     /* mov cr0, eax */
		0xea, 0x80, 0x7c, 0, 0, 0x08, 0x00, /* jmp 0x08:0x7c80 */
	};
	static const uint8_t lm[] = {
		0x48, 0xb8, 0x89, 0x67, 0x45, 0x23, 0x01, 0, 0, 0, /* mov rax, 0x123456789 */
		0xf4,						     /* hlt */
	};
	int r;

	memcpy(prot + 18, &pml4, 4);
	fx_w64(pml4, pdpt | 3);
	fx_w64(pdpt, pd | 3);
	fx_w64(pd, 0x83);
	fx_w16(0x7e00, 0x57);
	fx_w32(0x7e02, FX_GDT);
	fx_code(0x7c00, real, sizeof(real));
	fx_code(0x7c20, prot, sizeof(prot));
	fx_code(0x7c80, lm, sizeof(lm));
	c->gdtr.base = 0;
	c->gdtr.limit = 0xffff;
	seg_load_real(c, SEG_CS, 0);
	c->rip = 0x7c00;

	r = fx_run(6);
	cr_assert_eq(r, -1);
	cr_assert_eq(c->code_bits, 32);
	cr_assert_eq(c->rip, 0x7c20);
	cr_assert_eq(c->gdtr.base, FX_GDT);
	r = fx_run(16);
	cr_assert_eq(r, -1, "vector %d at %lx", r, c->rip);
	cr_assert(c->long_mode);
	cr_assert(c->efer & EFER_LMA);
	cr_assert_eq(c->code_bits, 64);
	cr_assert_eq(c->rip, 0x7c80);
	r = fx_run(2);
	cr_assert_eq(c->gpr[R_RAX], 0x123456789ULL);
	cr_assert(c->halted);
}

Test(sys, syscall_sysret_round_trip)
{
	struct cpu *c = g_fx->cpu;
	static const uint8_t user[] = { 0x0f, 0x05 };
	static const uint8_t kern[] = { 0x48, 0x0f, 0x07 };

	fx_long_mode();
	fx_map64(0x400000, 0x400000, PTE_P | PTE_U | PTE_W);
	fx_code(0x400000, user, sizeof(user));
	fx_code(0x20000, kern, sizeof(kern));
	c->star = (0x10ULL << 48) | (0x08ULL << 32);
	c->lstar = 0x20000;
	c->fmask = FL_IF | FL_TF | FL_DF | FL_AC;
	fx_seg(SEG_CS, SEL_UCODE64);
	fx_seg(SEG_SS, SEL_UDATA);
	cpu_update_mode(c);
	cpu_set_rflags(c, FL_IF | FL_DF | FL_CF);
	c->rip = 0x400000;
	cr_assert_eq(fx_step(), -1);
	cr_assert_eq(c->cpl, 0);
	cr_assert_eq(c->rip, 0x20000);
	cr_assert_eq(c->gpr[R_RCX], 0x400002);
	cr_assert_eq(c->gpr[R_R11], 0x603);
	cr_assert_eq(cpu_get_rflags(c), 0x3);
	cr_assert_eq(c->seg[SEG_CS].sel, 0x08);
	cr_assert_eq(c->seg[SEG_SS].sel, 0x10);
	cr_assert_eq(fx_step(), -1);
	cr_assert_eq(c->cpl, 3);
	cr_assert_eq(c->code_bits, 64);
	cr_assert_eq(c->rip, 0x400002);
	cr_assert_eq(c->seg[SEG_CS].sel, SEL_UCODE64);
	cr_assert_eq(c->seg[SEG_SS].sel, SEL_UDATA);
	cr_assert_eq(cpu_get_rflags(c), 0x603);
	/* sysret to a non-canonical RIP: #GP at CPL 0. */
	fx_gate64(EXC_GP, SEL_CODE64, 0x30000, 0xe, 0, 0);
	fx_w64(FX_TSS + 4, 0x9000);
	c->rip = 0x400000;
	cr_assert_eq(fx_step(), -1);
	c->gpr[R_RCX] = 0x0000800000000000ULL;
	c->gpr[R_RSP] = 0x9000;
	cr_assert_eq(fx_step(), EXC_GP);
	cr_assert_eq(c->rip, 0x30000);
	/* Without EFER.SCE: #UD. */
	c->efer &= ~EFER_SCE;
	fx_gate64(EXC_UD, SEL_CODE64, 0x30100, 0xe, 0, 0);
	c->rip = 0x400000;
	cr_assert_eq(fx_step(), EXC_UD);
}

Test(sys, segment_loads_with_bad_descriptors)
{
	struct cpu *c = g_fx->cpu;

	fx_prot32();
	fx_w64(FX_GDT + 0x48, fx_desc(0, 0xfffff, 0x13, 0xc));	/* data, not present */
	fx_w64(FX_GDT + 0x50, fx_desc(0, 0xfffff, 0x91, 0xc));	/* read-only data */
	fx_w64(FX_GDT + 0x40, fx_desc(0, 0xfffff, 0x98, 0xc));	/* execute-only code */
	cr_assert_eq(FX_TRY(seg_load(c, SEG_DS, 0x5b)), EXC_GP);
	cr_assert_eq(c->exc_error, 0x58);
	cr_assert_eq(FX_TRY(seg_load(c, SEG_DS, SEL_TSS)), EXC_GP);
	cr_assert_eq(c->exc_error, SEL_TSS);
	cr_assert_eq(FX_TRY(seg_load(c, SEG_DS, 0x48)), EXC_NP);
	cr_assert_eq(c->exc_error, 0x48);
	cr_assert_eq(FX_TRY(seg_load(c, SEG_DS, 0x40)), EXC_GP);
	cr_assert_eq(FX_TRY(seg_load(c, SEG_DS, SEL_CODE32)), -1); /* readable code is fine */
	cr_assert_eq(FX_TRY(seg_load(c, SEG_SS, 0x50)), EXC_GP);
	cr_assert_eq(FX_TRY(seg_load(c, SEG_SS, 0x48)), EXC_SS);
	cr_assert_eq(c->exc_error, 0x48);
	cr_assert_eq(FX_TRY(seg_load(c, SEG_SS, SEL_DATA | 1)), EXC_GP);
	cr_assert_eq(FX_TRY(seg_load(c, SEG_SS, 0)), EXC_GP);
	cr_assert_eq(c->exc_error, 0);
	cr_assert_eq(FX_TRY(seg_load(c, SEG_SS, SEL_UDATA)), EXC_GP);
	/* Accessed bit set in memory. */
	fx_w64(FX_GDT + 0x50, fx_desc(0, 0xfffff, 0x92, 0xc));
	cr_assert_eq(FX_TRY(seg_load(c, SEG_ES, 0x50)), -1);
	cr_assert(fx_r64(FX_GDT + 0x50) & (1ULL << 40));
	cr_assert_eq(c->seg[SEG_ES].limit, 0xffffffff);
	/* From CPL 3, a DPL 0 data segment is out of reach. */
	fx_seg(SEG_CS, SEL_UCODE32);
	fx_seg(SEG_SS, SEL_UDATA);
	cpu_update_mode(c);
	cr_assert_eq(FX_TRY(seg_load(c, SEG_DS, SEL_DATA)), EXC_GP);
	cr_assert_eq(FX_TRY(seg_load(c, SEG_DS, SEL_UDATA)), -1);
	/* Null loads work; using the null segment faults. */
	cr_assert_eq(FX_TRY(seg_load(c, SEG_DS, 0)), -1);
	cr_assert_eq(FX_TRY(cpu_read8(c, SEG_DS, 0)), EXC_GP);
}

Test(sys, mov_sreg_pop_ss_shadow_and_push_pop_fs)
{
	struct cpu *c = g_fx->cpu;
	static const uint8_t code[] = {
		0x8c, 0xd8,	  /* mov eax, ds */
		0x0f, 0xa0,	  /* push fs */
		0x0f, 0xa9,	  /* pop gs */
		0x8e, 0xd0,	  /* mov ss, ax */
	};

	fx_long_mode();
	c->gpr[R_RSP] = 0x9000;
	c->gpr[R_RAX] = ~0ULL;
	cr_assert_eq(run_code(code, sizeof(code), 3), -1);
	cr_assert_eq(c->gpr[R_RAX], SEL_DATA);
	cr_assert_eq(c->seg[SEG_GS].sel, SEL_DATA);
	cr_assert_eq(c->gpr[R_RSP], 0x9000);
	cr_assert_eq(fx_step(), -1);
	cr_assert_eq(c->intr_shadow, 2); /* MOV SS: interrupts and debug traps held */
}

Test(sys, port_io_iopl_and_bitmap)
{
	struct cpu *c = g_fx->cpu;
	static const uint8_t code[] = {
		0xee,	    /* out dx, al */
		0xe5, 0x80, /* in eax, 0x80 (unclaimed) */
		0x66, 0xed, /* in ax, dx */
	};

	fx_prot32();
	fx_seg(SEG_TR, SEL_TSS);
	c->seg[SEG_TR].attr = 0x8b;
	fx_w16(FX_TSS + 0x66, 0x68);
	fx_gate32(EXC_GP, SEL_CODE32, 0x30000, 0xe, 0);
	fx_w32(FX_TSS + 4, 0x8000);
	fx_w32(FX_TSS + 8, SEL_DATA);
	fx_seg(SEG_CS, SEL_UCODE32);
	fx_seg(SEG_SS, SEL_UDATA);
	cpu_update_mode(c);
	c->gpr[R_RSP] = 0x9000;
	c->gpr[R_RDX] = 0x3f8;
	c->gpr[R_RAX] = 0x41;
	g_fx->port_val[0x3f8] = 0x34;
	g_fx->port_val[0x3f9] = 0x12;
	/* IOPL 0, bitmap clear: allowed. */
	cr_assert_eq(run_code(code, sizeof(code), 3), -1);
	cr_assert_eq(g_fx->last_port, 0x3f8);
	cr_assert_eq(g_fx->last_out, 0x41);
	cr_assert_eq(c->gpr[R_RAX], 0xffff1234); /* in ax keeps the upper bits */
	/* Bit set for port 0x3f9: a 2-byte access at 0x3f8 touches it. */
	g_fx->ram[FX_TSS + 0x68 + 0x3f9 / 8] |= 1u << (0x3f9 & 7);
	c->rip = CODE + 3;
	cr_assert_eq(fx_step(), EXC_GP);
	cr_assert_eq(c->rip, 0x30000);
	/* A one-byte out to 0x3f8 is still fine. */
	fx_seg(SEG_CS, SEL_UCODE32);
	fx_seg(SEG_SS, SEL_UDATA);
	cpu_update_mode(c);
	c->rip = CODE;
	cr_assert_eq(fx_step(), -1);
	/* IOPL 3 skips the bitmap. */
	cpu_set_rflags(c, FL_IOPL);
	c->rip = CODE + 3;
	cr_assert_eq(fx_step(), -1);
}

Test(sys, unclaimed_in_reads_all_ones)
{
	struct cpu *c = g_fx->cpu;
	static const uint8_t code[] = { 0xe5, 0x80 };

	fx_prot32();
	c->gpr[R_RAX] = 0x1234567800000000ULL;
	cr_assert_eq(run_code(code, sizeof(code), 1), -1);
	cr_assert_eq(c->gpr[R_RAX], 0xffffffffULL);
}

Test(sys, rep_insb_outsw)
{
	struct cpu *c = g_fx->cpu;
	static const uint8_t code[] = {
		0xf3, 0x6c,	  /* rep insb */
		0xf3, 0x66, 0x6f, /* rep outsw */
	};

	fx_prot32();
	g_fx->port_val[0x60] = 0xab;
	c->gpr[R_RDX] = 0x60;
	c->gpr[R_RDI] = 0x8000;
	c->gpr[R_RCX] = 5;
	cr_assert_eq(run_code(code, sizeof(code), 1), -1);
	cr_assert_eq(c->gpr[R_RCX], 0);
	cr_assert_eq(c->gpr[R_RDI], 0x8005);
	cr_assert_eq(g_fx->ram[0x8004], 0xab);
	cr_assert_eq(g_fx->nin, 5);
	c->gpr[R_RSI] = 0x8000;
	c->gpr[R_RCX] = 2;
	cr_assert_eq(fx_step(), -1);
	cr_assert_eq(g_fx->nout, 2);
	cr_assert_eq(g_fx->last_len, 2);
	cr_assert_eq(g_fx->last_out, 0xabab);
	cr_assert_eq(c->gpr[R_RSI], 0x8004);
}

/* A huge rep outsb gives control back after a chunk, RIP on the instruction
 * (found by fuzz_cpu: ECX = -1 kept the vCPU thread in cpu_run for good). */
Test(sys, long_rep_outs_stops_after_a_chunk)
{
	struct cpu *c = g_fx->cpu;
	static const uint8_t code[] = { 0xf3, 0x6e }; /* rep outsb */

	fx_prot32();
	c->gpr[R_RDX] = 0x80;
	c->gpr[R_RSI] = 0x8000;
	c->gpr[R_RCX] = 0xffffffff;
	cr_assert_eq(run_code(code, sizeof(code), 1), -1);
	cr_assert_eq(c->rip, CODE, "rip 0x%llx", (unsigned long long)c->rip);
	cr_assert_gt(g_fx->nout, 0);
	cr_assert_lt(g_fx->nout, 100000);
	cr_assert_eq(c->gpr[R_RCX], 0xffffffffull - g_fx->nout);
}

Test(sys, msrs)
{
	struct cpu *c = g_fx->cpu;
	uint64_t v;

	fx_long_mode();
	cr_assert_eq(msr_write(c, MSR_EFER, c->efer & ~EFER_LME), -1, "LME while paging");
	cr_assert_eq(msr_write(c, MSR_EFER, c->efer | (1ULL << 20)), -1);
	cr_assert_eq(msr_write(c, MSR_EFER, c->efer & ~EFER_NXE), 0);
	cr_assert(c->efer & EFER_LMA);
	cr_assert_eq(msr_write(c, MSR_FS_BASE, 0x0000800000000000ULL), -1);
	cr_assert_eq(msr_write(c, MSR_GS_BASE, 0xffff800000001000ULL), 0);
	cr_assert_eq(c->seg[SEG_GS].base, 0xffff800000001000ULL);
	cr_assert_eq(msr_write(c, 0x277, 0x0202020202020202ULL), -1);
	cr_assert_eq(msr_write(c, 0x277, 0x0007040600070406ULL), 0);
	cr_assert_eq(msr_read(c, 0x1b, &v), 0);
	cr_assert_eq(v, 0xfee00900);
	cr_assert_eq(msr_read(c, 0x12345, &v), -1);
	cr_assert_eq(msr_read(c, 0x401, &v), -1); /* no MC banks */
	cr_assert_eq(msr_write(c, MSR_TSC, 5000), 0);
	cr_assert_eq(msr_read(c, MSR_TSC, &v), 0);
	cr_assert_eq(v, 5000);
	cr_assert_eq(msr_tsc(c), 5000);
}

Test(sys, rdmsr_wrmsr_instructions_and_cpl)
{
	struct cpu *c = g_fx->cpu;
	static const uint8_t code[] = { 0x0f, 0x32, 0x0f, 0x30 };

	fx_long_mode();
	fx_gate64(EXC_GP, SEL_CODE64, 0x30000, 0xe, 0, 0);
	c->gpr[R_RSP] = 0x9000;
	c->gpr[R_RCX] = MSR_LSTAR;
	c->lstar = 0xffffffff81000000ULL;
	cr_assert_eq(run_code(code, sizeof(code), 1), -1);
	cr_assert_eq(c->gpr[R_RAX], 0x81000000);
	cr_assert_eq(c->gpr[R_RDX], 0xffffffff);
	c->gpr[R_RCX] = 0x999;
	cr_assert_eq(fx_step(), EXC_GP);
	cr_assert_eq(c->rip, 0x30000);
}

Test(sys, control_register_checks)
{
	struct cpu *c = g_fx->cpu;
	static const uint8_t mov_cr0[] = { 0x0f, 0x22, 0xc0 };
	static const uint8_t mov_cr4[] = { 0x0f, 0x22, 0xe0 };
	static const uint8_t mov_cr1[] = { 0x0f, 0x22, 0xc8 };
	static const uint8_t mov_cr8[] = { 0x44, 0x0f, 0x22, 0xc0, 0x44, 0x0f, 0x20, 0xc3 };
	static const uint8_t mov_dr4[] = { 0x0f, 0x23, 0xe0 };

	fx_long_mode();
	fx_gate64(EXC_GP, SEL_CODE64, 0x30000, 0xe, 0, 0);
	fx_gate64(EXC_UD, SEL_CODE64, 0x30100, 0xe, 0, 0);
	c->gpr[R_RSP] = 0x9000;
	c->gpr[R_RAX] = CR0_PG | CR0_ET; /* PG without PE */
	cr_assert_eq(run_code(mov_cr0, 3, 1), EXC_GP);
	c->gpr[R_RAX] = c->cr4 & ~CR4_PAE; /* PAE off in long mode */
	cr_assert_eq(run_code(mov_cr4, 3, 1), EXC_GP);
	c->gpr[R_RAX] = c->cr4 | (1ULL << 30);
	cr_assert_eq(run_code(mov_cr4, 3, 1), EXC_GP);
	c->gpr[R_RAX] = c->cr4 | CR4_SMEP;
	cr_assert_eq(run_code(mov_cr4, 3, 1), -1);
	cr_assert(c->cr4 & CR4_SMEP);
	cr_assert_eq(run_code(mov_cr1, 3, 1), EXC_UD);
	c->gpr[R_RAX] = 5;
	cr_assert_eq(run_code(mov_cr8, sizeof(mov_cr8), 2), -1);
	cr_assert_eq(fx_cr8, 5);
	cr_assert_eq(c->gpr[R_RBX], 5);
	c->gpr[R_RAX] = 0;
	cr_assert_eq(run_code(mov_dr4, 3, 1), -1); /* DR4 aliases DR6 */
	cr_assert_eq(c->dr[6], 0xffff0ff0);
	c->cr4 |= CR4_DE;
	cr_assert_eq(run_code(mov_dr4, 3, 1), EXC_UD);
	/* Leaving long mode from 64-bit code is #GP. */
	c->gpr[R_RAX] = c->cr0 & ~CR0_PG;
	cr_assert_eq(run_code(mov_cr0, 3, 1), EXC_GP);
}

Test(sys, cr0_pg_with_lme_needs_pae)
{
	struct cpu *c = g_fx->cpu;
	static const uint8_t mov_cr0[] = { 0x0f, 0x22, 0xc0 };

	fx_prot32();
	c->efer = EFER_LME;
	c->gpr[R_RAX] = CR0_PE | CR0_PG | CR0_ET;
	c->idtr.limit = 0; /* any fault becomes a shutdown */
	cr_assert_eq(run_code(mov_cr0, 3, 1), -3);
}

Test(sys, hlt_cli_sti_pushf_popf)
{
	struct cpu *c = g_fx->cpu;
	static const uint8_t code[] = {
		0xfb,	    /* sti */
		0x9c,	    /* pushfq */
		0xfa,	    /* cli */
		0x9d,	    /* popfq */
		0xf4,	    /* hlt */
	};

	fx_long_mode();
	c->gpr[R_RSP] = 0x9000;
	cr_assert_eq(run_code(code, sizeof(code), 1), -1);
	cr_assert(cpu_get_rflags(c) & FL_IF);
	cr_assert_eq(c->intr_shadow, 1);
	cr_assert_eq(fx_step(), -1);
	cr_assert_eq(c->gpr[R_RSP], 0x8ff8);
	cr_assert_eq(fx_r64(0x8ff8), 0x202);
	cr_assert_eq(fx_step(), -1);
	cr_assert_not(cpu_get_rflags(c) & FL_IF);
	cr_assert_eq(fx_step(), -1);
	cr_assert(cpu_get_rflags(c) & FL_IF);
	cr_assert_eq(fx_step(), -1);
	cr_assert(c->halted);

	/* CPL 3: cli and hlt are #GP, popf leaves IF and IOPL alone. */
	fx_map64(0x400000, 0x400000, PTE_P | PTE_W | PTE_U);
	fx_code(0x400000, code, sizeof(code));
	fx_gate64(EXC_GP, SEL_CODE64, 0x30000, 0xe, 0, 0);
	fx_w64(FX_TSS + 4, 0x9000);
	fx_seg(SEG_CS, SEL_UCODE64);
	fx_seg(SEG_SS, SEL_UDATA);
	cpu_update_mode(c);
	cpu_set_rflags(c, FL_IF);
	c->gpr[R_RSP] = 0x400f00;
	fx_w64(0x400f00, FL_IOPL | FL_CF);
	c->rip = 0x400003; /* popf */
	cr_assert_eq(fx_step(), -1);
	cr_assert_eq(cpu_get_rflags(c), FL_IF | FL_CF | 2);
	c->rip = 0x400002; /* cli */
	cr_assert_eq(fx_step(), EXC_GP);
}

Test(sys, far_call_and_ret_protected)
{
	struct cpu *c = g_fx->cpu;
	static const uint8_t code[] = {
		0x9a, 0x00, 0x00, 0x02, 0x00, SEL_CODE32, 0x00, /* call 0x28:0x20000 */
	};
	static const uint8_t target[] = { 0xca, 0x04, 0x00 }; /* retf 4 */

	fx_prot32();
	fx_code(0x20000, target, sizeof(target));
	c->gpr[R_RSP] = 0x9000;
	cr_assert_eq(run_code(code, sizeof(code), 1), -1);
	cr_assert_eq(c->rip, 0x20000);
	cr_assert_eq(fx_r32(0x9000 - 8), CODE + 7);
	cr_assert_eq(fx_r32(0x9000 - 4), SEL_CODE32);
	cr_assert_eq(fx_step(), -1);
	cr_assert_eq(c->rip, CODE + 7);
	cr_assert_eq(c->gpr[R_RSP], 0x9004);
}

Test(sys, far_jmp_to_16bit_and_mode_bits)
{
	struct cpu *c = g_fx->cpu;
	static const uint8_t code[] = { 0xea, 0x00, 0x10, 0x00, 0x00, SEL_CODE16, 0x00 };

	fx_prot32();
	cr_assert_eq(run_code(code, sizeof(code), 1), -1);
	cr_assert_eq(c->code_bits, 16);
	cr_assert_eq(c->rip, 0x1000);
	/* Target not a code segment: #GP(sel). */
	fx_prot32();
	fx_gate32(EXC_GP, SEL_CODE32, 0x30000, 0xe, 0);
	c->gpr[R_RSP] = 0x9000;
	{
		uint8_t bad[sizeof(code)];

		memcpy(bad, code, sizeof(code));
		bad[5] = SEL_DATA;
		cr_assert_eq(run_code(bad, sizeof(bad), 1), EXC_GP);
		cr_assert_eq(fx_r32(0x9000 - 16), SEL_DATA);
	}
}

Test(sys, call_gate_64_to_ring0_and_retf_back)
{
	struct cpu *c = g_fx->cpu;
	static const uint8_t code[] = { 0xff, 0x1c, 0x25, 0x00, 0x08, 0x40, 0x00 }; /* call far [0x400800] */
	static const uint8_t ret[] = { 0x48, 0xcb };				   /* retfq */
	uint64_t gate_lo;

	fx_long_mode();
	/* 64-bit call gate at 0x58, DPL 3, to SEL_CODE64:0x20000. */
	gate_lo = 0x0000 | ((uint64_t)SEL_CODE64 << 16) | (0xecULL << 40) | (0x0002ULL << 48);
	fx_w64(FX_GDT + 0x58, gate_lo);
	fx_w64(FX_GDT + 0x60, 0);
	c->gdtr.limit = 0x67;
	fx_w64(FX_TSS + 4, 0x8800);
	fx_map64(0x400000, 0x400000, PTE_P | PTE_W | PTE_U);
	fx_code(0x400000, code, sizeof(code));
	fx_code(0x20000, ret, sizeof(ret));
	fx_w32(0x400800, 0);
	fx_w16(0x400804, 0x58 | 3);
	fx_seg(SEG_CS, SEL_UCODE64);
	fx_seg(SEG_SS, SEL_UDATA);
	cpu_update_mode(c);
	c->rip = 0x400000;
	c->gpr[R_RSP] = 0x400f00;
	cr_assert_eq(fx_step(), -1, "%d %x rip %lx", c->exc_vector, c->exc_error, c->rip);
	cr_assert_eq(c->cpl, 0);
	cr_assert_eq(c->rip, 0x20000);
	cr_assert_eq(c->gpr[R_RSP], 0x8800 - 32);
	cr_assert_eq(fx_r64(0x8800 - 32), 0x400007);
	cr_assert_eq(fx_r64(0x8800 - 24), SEL_UCODE64);
	cr_assert_eq(fx_r64(0x8800 - 16), 0x400f00);
	cr_assert_eq(fx_r64(0x8800 - 8), SEL_UDATA);
	cr_assert_eq(fx_step(), -1);
	cr_assert_eq(c->cpl, 3);
	cr_assert_eq(c->rip, 0x400007);
	cr_assert_eq(c->gpr[R_RSP], 0x400f00);
}

Test(sys, lar_lsl_verr_verw_ltr_lldt)
{
	struct cpu *c = g_fx->cpu;
	static const uint8_t code[] = {
		0x0f, 0x02, 0xc3,	    /* lar eax, ebx */
		0x0f, 0x03, 0xcb,	    /* lsl ecx, ebx */
		0x0f, 0x00, 0xe3,	    /* verr bx */
		0x0f, 0x00, 0xeb,	    /* verw bx */
		0x0f, 0x00, 0xde,	    /* ltr si */
		0x0f, 0x00, 0xc8,	    /* str eax */
	};

	fx_prot32();
	c->gpr[R_RBX] = SEL_CODE32;
	c->gpr[R_RSI] = SEL_TSS;
	cr_assert_eq(run_code(code, sizeof(code), 2), -1);
	cr_assert_eq(c->gpr[R_RAX], 0x00c09b00);
	cr_assert_eq(c->gpr[R_RCX], 0xffffffff);
	cr_assert(cpu_get_rflags(c) & FL_ZF);
	cr_assert_eq(fx_step(), -1);
	cr_assert(cpu_get_rflags(c) & FL_ZF, "code readable");
	cr_assert_eq(fx_step(), -1);
	cr_assert_not(cpu_get_rflags(c) & FL_ZF, "code not writable");
	cr_assert_eq(fx_step(), -1);
	cr_assert_eq(c->seg[SEG_TR].sel, SEL_TSS);
	cr_assert_eq(c->seg[SEG_TR].attr & 0xf, 0xb);
	cr_assert_eq((fx_r64(FX_GDT + SEL_TSS) >> 40) & 0xf, 0xb, "busy in the GDT");
	cr_assert_eq(fx_step(), -1);
	cr_assert_eq(c->gpr[R_RAX], SEL_TSS);
	/* ltr of a busy TSS: #GP(sel). */
	fx_gate32(EXC_GP, SEL_CODE32, 0x30000, 0xe, 0);
	c->gpr[R_RSP] = 0x9000;
	c->rip = CODE + 12;
	cr_assert_eq(fx_step(), EXC_GP);
	cr_assert_eq(fx_r32(c->gpr[R_RSP]), SEL_TSS);
}

Test(sys, cpuid_rdtsc_swapgs_fsgsbase_xsetbv)
{
	struct cpu *c = g_fx->cpu;
	static const uint8_t code[] = {
		0x0f, 0xa2,		  /* cpuid */
		0x0f, 0x31,		  /* rdtsc */
		0x0f, 0x01, 0xf8,	  /* swapgs */
		0xf3, 0x48, 0x0f, 0xae, 0xc0, /* rdfsbase rax */
		0xf3, 0x48, 0x0f, 0xae, 0xd3, /* wrfsbase rbx */
		0x0f, 0x01, 0xd1,	  /* xsetbv */
		0x0f, 0x01, 0xd0,	  /* xgetbv */
	};

	fx_long_mode();
	c->cr4 |= CR4_FSGSBASE | CR4_OSXSAVE;
	c->gpr[R_RAX] = 0;
	cr_assert_eq(run_code(code, sizeof(code), 1), -1);
	cr_assert_eq(c->gpr[R_RAX], 0xd);
	cr_assert_eq(c->gpr[R_RBX], 0x756e6547); /* "Genu" */
	cr_assert_eq(fx_step(), -1);
	cr_assert_eq(c->gpr[R_RAX], 1000000);
	cr_assert_eq(c->gpr[R_RDX], 0);
	c->kernel_gs_base = 0x1234;
	cr_assert_eq(fx_step(), -1);
	cr_assert_eq(c->seg[SEG_GS].base, 0x1234);
	c->seg[SEG_FS].base = 0xabc;
	cr_assert_eq(fx_step(), -1);
	cr_assert_eq(c->gpr[R_RAX], 0xabc);
	c->gpr[R_RBX] = 0xffff888000000000ULL;
	cr_assert_eq(fx_step(), -1);
	cr_assert_eq(c->seg[SEG_FS].base, 0xffff888000000000ULL);
	c->gpr[R_RCX] = 0;
	c->gpr[R_RAX] = 7;
	c->gpr[R_RDX] = 0;
	cr_assert_eq(fx_step(), -1);
	cr_assert_eq(c->xcr0, 7);
	c->gpr[R_RAX] = 0;
	cr_assert_eq(fx_step(), -1);
	cr_assert_eq(c->gpr[R_RAX], 7);
	/* AVX without SSE is invalid. */
	fx_gate64(EXC_GP, SEL_CODE64, 0x30000, 0xe, 0, 0);
	c->gpr[R_RSP] = 0x9000;
	c->gpr[R_RAX] = 5;
	c->rip = CODE + 17;
	cr_assert_eq(fx_step(), EXC_GP);
}

Test(sys, reset_and_sipi_state)
{
	struct cpu *c = g_fx->cpu;

	c->cr0 = CR0_PE | CR0_PG;
	cpu_reset(c);
	cr_assert_eq(c->cr0, 0x60000010);
	cr_assert_eq(c->seg[SEG_CS].sel, 0xf000);
	cr_assert_eq(c->seg[SEG_CS].base, 0xffff0000);
	cr_assert_eq(c->rip, 0xfff0);
	cr_assert_eq(c->gpr[R_RDX], 0x806c1);
	cr_assert_eq(c->fpu.fcw, 0x37f);
	cr_assert_eq(c->fpu.mxcsr, 0x1f80);
	cr_assert_eq(c->code_bits, 16);
	cr_assert_eq(c->cpl, 0);
	c->halted = true;
	cpu_sipi(c, 0x9a);
	cr_assert_eq(c->seg[SEG_CS].sel, 0x9a00);
	cr_assert_eq(c->seg[SEG_CS].base, 0x9a000);
	cr_assert_eq(c->rip, 0);
	cr_assert_not(c->halted);
	cpu_dump(c); /* readable on stderr, no crash */
}

Test(sys, sysenter_sysexit_64)
{
	struct cpu *c = g_fx->cpu;
	static const uint8_t user[] = { 0x0f, 0x34 };
	static const uint8_t kern[] = { 0x48, 0x0f, 0x35 };

	fx_long_mode();
	fx_map64(0x400000, 0x400000, PTE_P | PTE_U);
	fx_code(0x400000, user, sizeof(user));
	fx_code(0x20000, kern, sizeof(kern));
	/* sysexit 64: CS = base + 32, SS = base + 40: GDT 0x08 -> 0x28/0x30 are
	 * not user segments here; the loads are flat by definition anyway. */
	c->sysenter_cs = SEL_CODE64;
	c->sysenter_eip = 0x20000;
	c->sysenter_esp = 0x9000;
	fx_seg(SEG_CS, SEL_UCODE64);
	fx_seg(SEG_SS, SEL_UDATA);
	cpu_update_mode(c);
	cpu_set_rflags(c, FL_IF);
	c->rip = 0x400000;
	cr_assert_eq(fx_step(), -1);
	cr_assert_eq(c->cpl, 0);
	cr_assert_eq(c->rip, 0x20000);
	cr_assert_eq(c->gpr[R_RSP], 0x9000);
	cr_assert_not(cpu_get_rflags(c) & FL_IF);
	c->gpr[R_RDX] = 0x400002;
	c->gpr[R_RCX] = 0x400f00;
	cr_assert_eq(fx_step(), -1);
	cr_assert_eq(c->cpl, 3);
	cr_assert_eq(c->code_bits, 64);
	cr_assert_eq(c->rip, 0x400002);
	cr_assert_eq(c->gpr[R_RSP], 0x400f00);
	cr_assert_eq(c->seg[SEG_CS].sel, (SEL_CODE64 + 32) | 3);
}

Test(sys, legacy_call_gate_with_params_and_retf_to_outer)
{
	struct cpu *c = g_fx->cpu;
	static const uint8_t code[] = { 0x9a, 0, 0, 0, 0, 0x5b, 0x00 }; /* call 0x5b:0 */
	static const uint8_t kern[] = { 0xca, 0x08, 0x00 };		/* retf 8 */
	uint64_t gate;

	fx_prot32();
	/* 32-bit call gate, DPL 3, 2 dword parameters, to CODE32:0x20000. */
	gate = 0x0000 | ((uint64_t)SEL_CODE32 << 16) | (2ULL << 32) | (0xecULL << 40) |
	       (0x0002ULL << 48);
	fx_w64(FX_GDT + 0x58, gate);
	c->gdtr.limit = 0x5f;
	fx_seg(SEG_TR, SEL_TSS);
	c->seg[SEG_TR].attr = 0x8b;
	fx_w32(FX_TSS + 4, 0x7000);
	fx_w32(FX_TSS + 8, SEL_DATA);
	fx_code(0x20000, kern, sizeof(kern));
	fx_seg(SEG_CS, SEL_UCODE32);
	fx_seg(SEG_SS, SEL_UDATA);
	fx_seg(SEG_DS, SEL_DATA); /* DPL 0: nulled on the way back out */
	cpu_update_mode(c);
	c->gpr[R_RSP] = 0x9000 - 8;
	fx_w32(0x9000 - 8, 0x11111111); /* param 1 (lowest) */
	fx_w32(0x9000 - 4, 0x22222222);
	cr_assert_eq(run_code(code, sizeof(code), 1), -1, "%d %x", c->exc_vector, c->exc_error);
	cr_assert_eq(c->cpl, 0);
	cr_assert_eq(c->rip, 0x20000);
	cr_assert_eq(c->gpr[R_RSP], 0x7000 - 24);
	cr_assert_eq(fx_r32(0x7000 - 4), SEL_UDATA);
	cr_assert_eq(fx_r32(0x7000 - 8), 0x9000 - 8);
	cr_assert_eq(fx_r32(0x7000 - 12), 0x22222222);
	cr_assert_eq(fx_r32(0x7000 - 16), 0x11111111);
	cr_assert_eq(fx_r32(0x7000 - 20), SEL_UCODE32);
	cr_assert_eq(fx_r32(0x7000 - 24), CODE + 7);
	cr_assert_eq(c->seg[SEG_SS].sel, SEL_DATA);
	cr_assert_eq(fx_step(), -1, "%d %x", c->exc_vector, c->exc_error);
	cr_assert_eq(c->cpl, 3);
	cr_assert_eq(c->rip, CODE + 7);
	cr_assert_eq(c->gpr[R_RSP], 0x9000);
	cr_assert_eq(c->seg[SEG_SS].sel, SEL_UDATA);
	cr_assert(c->seg[SEG_DS].attr & SEG_ATTR_UNUSABLE);
}

Test(sys, descriptor_table_instructions_64)
{
	struct cpu *c = g_fx->cpu;
	static const uint8_t code[] = {
		0x0f, 0x01, 0x04, 0x25, 0x00, 0x80, 0x00, 0x00, /* sgdt [0x8000] */
		0x0f, 0x01, 0x1c, 0x25, 0x10, 0x80, 0x00, 0x00, /* lidt [0x8010] */
		0x0f, 0x00, 0xd0,				/* lldt ax */
		0x0f, 0x01, 0x1c, 0x25, 0x10, 0x80, 0x00, 0x00, /* lidt again (at CPL 3) */
	};
	uint64_t ldt;

	fx_long_mode();
	fx_w16(0x8010, 0x123);
	fx_w64(0x8012, 0xffff888000001000ULL);
	/* A 16-byte LDT descriptor at 0x58 (base 0x00001234_9abcdef0, limit 0xff). */
	ldt = fx_desc(0x9abcdef0, 0xff, 0x82, 0);
	fx_w64(FX_GDT + 0x58, ldt);
	fx_w64(FX_GDT + 0x60, 0x1234);
	c->gdtr.limit = 0x67;
	c->gpr[R_RAX] = 0x58;
	cr_assert_eq(run_code(code, sizeof(code), 3), -1);
	cr_assert_eq(fx_r16(0x8000), 0x67);
	cr_assert_eq(fx_r64(0x8002), FX_GDT);
	cr_assert_eq(c->idtr.limit, 0x123);
	cr_assert_eq(c->idtr.base, 0xffff888000001000ULL);
	cr_assert_eq(c->seg[SEG_LDTR].base, 0x12349abcdef0ULL);
	cr_assert_eq(c->seg[SEG_LDTR].limit, 0xff);
	/* lidt at CPL 3: #GP(0); the IDT is back at FX_IDT for the delivery. */
	c->idtr.base = FX_IDT;
	c->idtr.limit = 0xfff;
	fx_gate64(EXC_GP, SEL_CODE64, 0x30000, 0xe, 0, 0);
	fx_w64(FX_TSS + 4, 0x9000);
	fx_map64(0x400000, 0x400000, PTE_P | PTE_U);
	fx_code(0x400000, code + 19, 8);
	fx_seg(SEG_CS, SEL_UCODE64);
	fx_seg(SEG_SS, SEL_UDATA);
	cpu_update_mode(c);
	c->rip = 0x400000;
	cr_assert_eq(fx_step(), EXC_GP);
	cr_assert_eq(fx_r64(c->gpr[R_RSP]), 0);
}

Test(sys, iret_at_cpl3_keeps_if_and_iopl)
{
	struct cpu *c = g_fx->cpu;
	static const uint8_t code[] = { 0x48, 0xcf };

	fx_long_mode();
	fx_map64(0x400000, 0x400000, PTE_P | PTE_U | PTE_W);
	fx_code(0x400000, code, sizeof(code));
	fx_seg(SEG_CS, SEL_UCODE64);
	fx_seg(SEG_SS, SEL_UDATA);
	cpu_update_mode(c);
	cpu_set_rflags(c, FL_IF);
	c->rip = 0x400000;
	c->gpr[R_RSP] = 0x400800;
	fx_w64(0x400800, 0x400000);
	fx_w64(0x400808, SEL_UCODE64);
	fx_w64(0x400810, FL_IOPL | FL_CF | FL_AC);	/* IF clear, IOPL 3 */
	fx_w64(0x400818, 0x400f00);
	fx_w64(0x400820, SEL_UDATA);
	cr_assert_eq(fx_step(), -1);
	cr_assert_eq(cpu_get_rflags(c), FL_IF | FL_CF | FL_AC | 2);
	cr_assert_eq(c->gpr[R_RSP], 0x400f00);
}

/* A CPUID model with none of the optional CR4 features (no XSAVE, PCID,
 * FSGSBASE, SMEP, SMAP, UMIP). */
static void bare_cpuid(void *ctx, uint32_t leaf, uint32_t sub, uint32_t out[4])
{
	(void)ctx;
	(void)sub;
	memset(out, 0, 16);
	if (leaf == 0)
		out[0] = 7;
}

/* CR4 bits of features the CPUID model does not offer are reserved: #GP,
 * as the guest of a CPU without them sees (kvm-unit-tests access, xsave). */
Test(sys, cr4_feature_bits_follow_cpuid)
{
	struct cpu *c = g_fx->cpu;
	static const uint8_t mov_cr4[] = { 0x0f, 0x22, 0xe0 };
	static const uint64_t bits[] = { CR4_SMEP,  CR4_SMAP,	  CR4_OSXSAVE,
					 CR4_UMIP,  CR4_FSGSBASE };
	uint64_t cr4;

	fx_long_mode();
	fx_gate64(EXC_GP, SEL_CODE64, 0x30000, 0xe, 0, 0);
	c->gpr[R_RSP] = 0x9000;
	cr4 = c->cr4;
	g_fx->env.cpuid = bare_cpuid;
	for (unsigned i = 0; i < sizeof(bits) / sizeof(bits[0]); i++) {
		c->gpr[R_RAX] = cr4 | bits[i];
		cr_assert_eq(run_code(mov_cr4, 3, 1), EXC_GP, "bit %#llx",
			     (unsigned long long)bits[i]);
		cr_assert_eq(c->cr4, cr4);
	}
	/* Offered (the fixture's model): accepted. */
	g_fx->env.cpuid = fx_cpuid;
	for (unsigned i = 0; i < sizeof(bits) / sizeof(bits[0]); i++) {
		c->gpr[R_RAX] = cr4 | bits[i];
		cr_assert_eq(run_code(mov_cr4, 3, 1), -1, "bit %#llx",
			     (unsigned long long)bits[i]);
		cr_assert_eq(c->cr4, cr4 | bits[i]);
	}
}

/* SYSRET whose R11 sets TF traps at once, in user mode: the #DB frame holds
 * the user CS:RIP. SYSCALL whose FMASK leaves TF set traps at LSTAR. */
Test(sys, syscall_sysret_single_step_uses_new_tf)
{
	struct cpu *c = g_fx->cpu;
	static const uint8_t user[] = { 0x0f, 0x05 };
	static const uint8_t kern[] = { 0x48, 0x0f, 0x07 };

	fx_long_mode();
	fx_map64(0x400000, 0x400000, PTE_P | PTE_U | PTE_W);
	fx_code(0x400000, user, sizeof(user));
	fx_code(0x20000, kern, sizeof(kern));
	fx_gate64(EXC_DB, SEL_CODE64, 0x30000, 0xe, 0, 0);
	fx_w64(FX_TSS + 4, 0x9000);
	c->star = (0x10ULL << 48) | (0x08ULL << 32);
	c->lstar = 0x20000;
	c->fmask = FL_IF;
	/* sysretq with R11.TF: #DB after it, with the user CS. */
	c->rip = 0x20000;
	c->gpr[R_RCX] = 0x400000;
	c->gpr[R_R11] = FL_TF | 2;
	c->gpr[R_RSP] = 0x7000;
	c->dr[6] = 0xffff0ff0;
	cr_assert_eq(fx_step(), EXC_DB);
	cr_assert_eq(c->rip, 0x30000);
	cr_assert_eq(fx_r64(0x9000 - 40), 0x400000);	     /* RIP */
	cr_assert_eq(fx_r64(0x9000 - 32), SEL_UCODE64);	     /* CS */
	cr_assert_eq(fx_r64(0x9000 - 24) & FL_TF, FL_TF);    /* RFLAGS */
	cr_assert(c->dr[6] & 0x4000, "DR6.BS");
	/* syscall with TF left set by FMASK: #DB at LSTAR, kernel CS. */
	fx_seg(SEG_CS, SEL_UCODE64);
	fx_seg(SEG_SS, SEL_UDATA);
	cpu_update_mode(c);
	cpu_set_rflags(c, FL_TF | 2);
	c->rip = 0x400000;
	c->gpr[R_RSP] = 0x9000;
	cr_assert_eq(fx_step(), EXC_DB);
	cr_assert_eq(fx_r64(c->gpr[R_RSP]), 0x20000);
	cr_assert_eq(fx_r64(c->gpr[R_RSP] + 8), SEL_CODE64);
	/* syscall whose FMASK clears TF: no trap of its own. */
	c->fmask = FL_IF | FL_TF;
	fx_seg(SEG_CS, SEL_UCODE64);
	fx_seg(SEG_SS, SEL_UDATA);
	cpu_update_mode(c);
	cpu_set_rflags(c, FL_TF | 2);
	c->rip = 0x400000;
	cr_assert_eq(fx_step(), -1);
	cr_assert_eq(c->rip, 0x20000);
	cr_assert_eq(cpu_get_rflags(c) & FL_TF, 0);
}

/* DR7.GD: the next MOV DR is a fault-like #DB with DR6.BD, and GD clears so
 * the handler can use the debug registers (kvm-unit-tests debug). */
Test(sys, dr7_general_detect)
{
	struct cpu *c = g_fx->cpu;
	static const uint8_t code[] = {
		0x0f, 0x23, 0xf8, /* mov dr7, rax */
		0x0f, 0x23, 0xc3, /* mov dr0, rbx */
	};

	fx_long_mode();
	fx_gate64(EXC_DB, SEL_CODE64, 0x30000, 0xe, 0, 0);
	c->gpr[R_RSP] = 0x9000;
	c->gpr[R_RAX] = 0x2000;
	c->gpr[R_RBX] = 0x1234;
	cr_assert_eq(run_code(code, sizeof(code), 1), -1);
	cr_assert_eq(c->dr[7], 0x2400);
	cr_assert_eq(fx_step(), EXC_DB);
	cr_assert_eq(c->rip, 0x30000);
	cr_assert_eq(fx_r64(c->gpr[R_RSP]), CODE + 3, "fault: RIP of the MOV DR");
	cr_assert_eq(c->dr[0], 0);
	cr_assert_eq(c->dr[6] & 0x2000, 0x2000, "DR6.BD");
	cr_assert_eq(c->dr[7], 0x400);
	c->rip = CODE + 3;
	cr_assert_eq(fx_step(), -1);
	cr_assert_eq(c->dr[0], 0x1234);
}

/* MCG_CAP reports no machine-check banks, so the MCi_CTL/STATUS/ADDR/MISC
 * MSRs (0x400-0x47f) do not exist: RDMSR and WRMSR #GP (kvm-unit-tests msr). */
Test(sys, mce_bank_msrs_absent)
{
	struct cpu *c = g_fx->cpu;
	uint64_t v = 1;

	cr_assert_eq(msr_read(c, 0x179, &v), 0);
	cr_assert_eq(v & 0xff, 0, "no banks");
	for (uint32_t m = 0x400; m < 0x480; m++) {
		cr_assert_neq(msr_read(c, m, &v), 0, "rdmsr %#x", m);
		cr_assert_neq(msr_write(c, m, 0), 0, "wrmsr %#x", m);
	}
}

/* Long mode: LTR / LLDT of a descriptor whose 64-bit base is not canonical
 * is #GP(selector), and nothing is loaded (kvm-unit-tests la57). */
Test(sys, ltr_lldt_noncanonical_base)
{
	struct cpu *c = g_fx->cpu;
	static const uint8_t code[] = {
		0x0f, 0x00, 0xd8, /* ltr ax */
		0x0f, 0x00, 0xd0, /* lldt ax */
	};

	fx_long_mode();
	fx_gate64(EXC_GP, SEL_CODE64, 0x30000, 0xe, 0, 0);
	c->gpr[R_RSP] = 0x9000;
	c->seg[SEG_TR].sel = 0;
	fx_w64(FX_GDT + 0x38, 0xaaaaaaaa); /* TSS base 0xaaaaaaaa00003000 */
	c->gpr[R_RAX] = SEL_TSS;
	cr_assert_eq(run_code(code, sizeof(code), 1), EXC_GP);
	cr_assert_eq(fx_r64(c->gpr[R_RSP]), SEL_TSS, "error code");
	cr_assert_eq(c->seg[SEG_TR].sel, 0);
	cr_assert_eq((fx_r64(FX_GDT + SEL_TSS) >> 40) & 0xf, 0x9, "not marked busy");
	/* Canonical upper half: loads. */
	fx_w64(FX_GDT + 0x38, 0xffffffff); /* 0xffffffff00003000 */
	c->gpr[R_RSP] = 0x9000;
	cr_assert_eq(run_code(code, 3, 1), -1);
	cr_assert_eq(c->seg[SEG_TR].base, 0xffffffff00003000ULL);
	/* An LDT descriptor (GDT 0x48, 16 bytes) with a non-canonical base. */
	fx_w64(FX_GDT + 0x48, fx_desc(0x5000, 0xfff, 0x82, 0));
	fx_w64(FX_GDT + 0x50, 0x8000);
	c->gpr[R_RAX] = 0x48;
	c->rip = CODE + 3;
	cr_assert_eq(fx_step(), EXC_GP);
	cr_assert_eq(fx_r64(c->gpr[R_RSP]), 0x48);
	fx_w64(FX_GDT + 0x50, 0);
	c->gpr[R_RSP] = 0x9000;
	c->rip = CODE + 3;
	cr_assert_eq(fx_step(), -1);
	cr_assert_eq(c->seg[SEG_LDTR].base, 0x5000);
}

/* INVPCID is #UD unless CPUID.(7,0):EBX.INVPCID offers it (kvm-unit-tests pcid). */
Test(sys, invpcid_needs_cpuid)
{
	struct cpu *c = g_fx->cpu;
	static const uint8_t code[] = { 0x66, 0x0f, 0x38, 0x82, 0x03 }; /* invpcid rax, [rbx] */

	fx_long_mode();
	fx_gate64(EXC_UD, SEL_CODE64, 0x30000, 0xe, 0, 0);
	c->gpr[R_RSP] = 0x9000;
	c->gpr[R_RAX] = 2; /* all contexts, with globals */
	c->gpr[R_RBX] = 0x8000;
	cr_assert_eq(run_code(code, sizeof(code), 1), -1);
	g_fx->env.cpuid = bare_cpuid;
	cr_assert_eq(run_code(code, sizeof(code), 1), EXC_UD);
}

static uint64_t apic_base_val;

static void apic_cpuid(void *ctx, uint32_t leaf, uint32_t sub, uint32_t out[4])
{
	fx_cpuid(ctx, leaf, sub, out);
	if (leaf == 1)
		out[3] |= 1u << 9;
}

static int apic_rdmsr(void *ctx, uint32_t msr, uint64_t *v)
{
	(void)ctx;
	if (msr != 0x1b)
		return -1;
	*v = apic_base_val;
	return 0;
}

/* CPUID.1:EDX.APIC follows IA32_APIC_BASE.EN (kvm-unit-tests apic/x2apic). */
Test(sys, cpuid_apic_bit_follows_apic_base_enable)
{
	struct cpu *c = g_fx->cpu;
	static const uint8_t code[] = { 0x0f, 0xa2 }; /* cpuid */

	fx_long_mode();
	g_fx->env.cpuid = apic_cpuid;
	g_fx->env.rdmsr = apic_rdmsr;
	apic_base_val = 0xfee00900;
	c->gpr[R_RAX] = 1;
	cr_assert_eq(run_code(code, sizeof(code), 1), -1);
	cr_assert_eq(c->gpr[R_RDX] & (1u << 9), 1u << 9);
	apic_base_val = 0xfee00100; /* EN clear */
	c->gpr[R_RAX] = 1;
	cr_assert_eq(run_code(code, sizeof(code), 1), -1);
	cr_assert_eq(c->gpr[R_RDX] & (1u << 9), 0);
}

/* Without x2APIC in CPUID, IA32_APIC_BASE.EXTD is reserved: WRMSR #GP
 * (kvm-unit-tests apic "enable unsupported x2apic"). */
Test(sys, apic_base_extd_needs_x2apic)
{
	struct cpu *c = g_fx->cpu;

	cr_assert_neq(msr_write(c, 0x1b, 0xfee00000ULL | (1u << 11) | (1u << 10)), 0);
	cr_assert_eq(msr_write(c, 0x1b, 0xfee00000ULL | (1u << 11)), 0);
}

/* DAS: CF also takes the borrow of AL - 6 (kvm-unit-tests realmode "DAS"):
 * AL = 0 with AF set gives AL = 0xfa, CF = AF = SF = PF = 1. */
Test(sys, das_borrow_sets_cf)
{
	struct cpu *c = g_fx->cpu;
	static const uint8_t code[] = { 0x2f }; /* das */

	fx_prot32();
	c->gpr[R_RAX] = 0;
	cpu_set_rflags(c, FL_AF | 2);
	cr_assert_eq(run_code(code, sizeof(code), 1), -1);
	cr_assert_eq(c->gpr[R_RAX] & 0xff, 0xfa);
	cr_assert_eq(cpu_get_rflags(c) & 0xff, 0x97);
	/* AL = 0x06, AF: AL - 6 = 0, no borrow, CF stays clear. */
	c->gpr[R_RAX] = 6;
	cpu_set_rflags(c, FL_AF | 2);
	cr_assert_eq(run_code(code, sizeof(code), 1), -1);
	cr_assert_eq(c->gpr[R_RAX] & 0xff, 0);
	cr_assert_eq(cpu_get_rflags(c) & 0xff, 0x56);
}

/* A near branch to a non-canonical address faults on the branch (RIP of
 * the JMP / CALL, nothing pushed), not on the fetch (kvm-unit-tests emulator). */
Test(sys, branch_to_noncanonical_faults_at_branch)
{
	struct cpu *c = g_fx->cpu;
	static const uint8_t code[] = {
		0xff, 0xe0, /* jmp rax */
		0xff, 0xd0, /* call rax */
	};

	fx_long_mode();
	fx_gate64(EXC_GP, SEL_CODE64, 0x30000, 0xe, 0, 0);
	c->gpr[R_RSP] = 0x9000;
	c->gpr[R_RAX] = 0xaaaaaaaaaaaaaaaaULL;
	cr_assert_eq(run_code(code, sizeof(code), 1), EXC_GP);
	cr_assert_eq(fx_r64(c->gpr[R_RSP] + 8), CODE, "RIP of the jmp");
	c->gpr[R_RSP] = 0x9000;
	c->rip = CODE + 2;
	cr_assert_eq(fx_step(), EXC_GP);
	cr_assert_eq(fx_r64(c->gpr[R_RSP] + 8), CODE + 2, "RIP of the call");
	cr_assert_eq(c->gpr[R_RSP], 0x9000 - 48, "no return address pushed");
}
