/* Exception and interrupt delivery, #DF, triple fault, IRET (except.c). */
#include "sys_fixture.h"

TestSuite(except, .init = fx_setup, .fini = fx_teardown);

#define CODE 0x10000ULL
#define HANDLER 0x20000ULL

Test(except, real_mode_int_and_iret)
{
	struct cpu *c = g_fx->cpu;
	static const uint8_t code[] = { 0xcd, 0x21 };
	static const uint8_t iret[] = { 0xcf };

	seg_load_real(c, SEG_CS, 0);
	seg_load_real(c, SEG_SS, 0);
	c->rip = 0x7c00;
	c->gpr[R_RSP] = 0x8000;
	c->idtr.base = 0;
	c->idtr.limit = 0x3ff;
	cpu_set_rflags(c, FL_IF | FL_CF);
	fx_w32(0x21 * 4, 0x20000100);
	fx_code(0x7c00, code, sizeof(code));
	fx_code(0x20100, iret, sizeof(iret));
	cr_assert_eq(fx_step(), 0x21);
	cr_assert_eq(c->seg[SEG_CS].sel, 0x2000);
	cr_assert_eq(c->seg[SEG_CS].base, 0x20000);
	cr_assert_eq(c->rip, 0x100);
	cr_assert_eq(c->gpr[R_RSP], 0x7ffa);
	cr_assert_eq(fx_r16(0x7ffa), 0x7c02);
	cr_assert_eq(fx_r16(0x7ffc), 0);
	cr_assert_eq(fx_r16(0x7ffe), 0x203);
	cr_assert_not(cpu_get_rflags(c) & FL_IF);
	cr_assert_eq(fx_run(1), -1);
	cr_assert_eq(c->rip, 0x7c02);
	cr_assert_eq(c->seg[SEG_CS].base, 0);
	cr_assert_eq(c->gpr[R_RSP], 0x8000);
	cr_assert(cpu_get_rflags(c) & FL_IF);
}

Test(except, protected_mode_gp_with_selector_error_code)
{
	struct cpu *c = g_fx->cpu;
	static const uint8_t code[] = { 0x8e, 0xd8 }; /* mov ds, ax */

	fx_prot32();
	fx_gate32(EXC_GP, SEL_CODE32, HANDLER, 0xe, 0);
	fx_code(CODE, code, sizeof(code));
	c->rip = CODE;
	c->gpr[R_RSP] = 0x9000;
	c->gpr[R_RAX] = 0x5b; /* beyond the GDT limit */
	c->gdtr.limit = 0x57;
	cpu_set_rflags(c, FL_IF);
	cr_assert_eq(fx_step(), EXC_GP);
	cr_assert_eq(c->rip, HANDLER);
	cr_assert_eq(c->gpr[R_RSP], 0x9000 - 16);
	cr_assert_eq(fx_r32(0x9000 - 16), 0x58);	  /* error code: selector, RPL dropped */
	cr_assert_eq(fx_r32(0x9000 - 12), CODE);	  /* EIP of the faulting insn */
	cr_assert_eq(fx_r32(0x9000 - 8), SEL_CODE32);	  /* CS */
	cr_assert_eq(fx_r32(0x9000 - 4), 0x10202);	  /* EFLAGS with RF */
	cr_assert_not(cpu_get_rflags(c) & FL_IF);	  /* interrupt gate */
}

Test(except, protected_mode_privilege_change_through_tss)
{
	struct cpu *c = g_fx->cpu;
	static const uint8_t code[] = { 0xcd, 0x80, 0xcd, 0x81 };

	fx_prot32();
	fx_w32(FX_TSS + 4, 0x7000);   /* esp0 */
	fx_w32(FX_TSS + 8, SEL_DATA); /* ss0 */
	fx_seg(SEG_TR, SEL_TSS);
	c->seg[SEG_TR].attr = 0x8b;
	fx_gate32(0x80, SEL_CODE32, HANDLER, 0xf, 3); /* trap gate, DPL 3 */
	fx_gate32(0x81, SEL_CODE32, HANDLER, 0xe, 0);
	fx_gate32(EXC_GP, SEL_CODE32, HANDLER + 0x100, 0xe, 0);
	fx_seg(SEG_CS, SEL_UCODE32);
	fx_seg(SEG_SS, SEL_UDATA);
	fx_seg(SEG_DS, SEL_UDATA);
	cpu_update_mode(c);
	cr_assert_eq(c->cpl, 3);
	fx_code(CODE, code, sizeof(code));
	c->rip = CODE;
	c->gpr[R_RSP] = 0x9000;
	cpu_set_rflags(c, FL_IF);
	cr_assert_eq(fx_step(), 0x80);
	cr_assert_eq(c->cpl, 0);
	cr_assert_eq(c->rip, HANDLER);
	cr_assert_eq(c->gpr[R_RSP], 0x7000 - 20);
	cr_assert_eq(fx_r32(0x7000 - 20), CODE + 2);
	cr_assert_eq(fx_r32(0x7000 - 16), SEL_UCODE32);
	cr_assert_eq(fx_r32(0x7000 - 12), 0x202);
	cr_assert_eq(fx_r32(0x7000 - 8), 0x9000);
	cr_assert_eq(fx_r32(0x7000 - 4), SEL_UDATA);
	cr_assert(cpu_get_rflags(c) & FL_IF, "trap gates keep IF");
	/* Back to CPL 3 with iret, then int 0x81 (gate DPL 0) -> #GP(0x81*8+2). */
	{
		static const uint8_t iret[] = { 0xcf };

		fx_code(HANDLER, iret, 1);
	}
	cr_assert_eq(fx_run(1), -1);
	cr_assert_eq(c->cpl, 3);
	cr_assert_eq(c->rip, CODE + 2);
	cr_assert_eq(c->gpr[R_RSP], 0x9000);
	cr_assert_eq(c->seg[SEG_SS].sel, SEL_UDATA);
	cr_assert_eq(fx_step(), EXC_GP);
	cr_assert_eq(c->rip, HANDLER + 0x100);
	cr_assert_eq(fx_r32(c->gpr[R_RSP]), 0x81 * 8 + 2);
	cr_assert_eq(fx_r32(c->gpr[R_RSP] + 4), CODE + 2);
}

static void long_user(void)
{
	struct cpu *c = g_fx->cpu;

	fx_seg(SEG_CS, SEL_UCODE64);
	fx_seg(SEG_SS, SEL_UDATA);
	fx_seg(SEG_DS, SEL_UDATA);
	cpu_update_mode(c);
	cr_assert_eq(c->cpl, 3);
}

Test(except, long_mode_fault_from_cpl3_switches_to_rsp0)
{
	struct cpu *c = g_fx->cpu;
	/* mov ds, [0x600000] (unmapped) */
	static const uint8_t code[] = { 0x8e, 0x1c, 0x25, 0x00, 0x00, 0x60, 0x00 };
	uint64_t sp;

	fx_long_mode();
	fx_map64(0x400000, 0x400000, PTE_P | PTE_W | PTE_U);
	fx_code(0x400000, code, sizeof(code));
	fx_w64(FX_TSS + 4, 0x8008); /* rsp0, not 16-byte aligned */
	fx_gate64(EXC_PF, SEL_CODE64, HANDLER, 0xe, 0, 0);
	long_user();
	c->rip = 0x400000;
	c->gpr[R_RSP] = 0x400ff8;
	cpu_set_rflags(c, FL_IF);
	cr_assert_eq(fx_step(), EXC_PF);
	cr_assert_eq(c->cr2, 0x600000);
	cr_assert_eq(c->cpl, 0);
	cr_assert_eq(c->rip, HANDLER);
	sp = c->gpr[R_RSP];
	cr_assert_eq(sp, 0x8000 - 48);
	cr_assert_eq(fx_r64(sp), PF_U);		 /* error: user read, not present */
	cr_assert_eq(fx_r64(sp + 8), 0x400000);	 /* RIP */
	cr_assert_eq(fx_r64(sp + 16), SEL_UCODE64);
	cr_assert_eq(fx_r64(sp + 24), 0x10202); /* RFLAGS, RF set for a fault */
	cr_assert_eq(fx_r64(sp + 32), 0x400ff8);
	cr_assert_eq(fx_r64(sp + 40), SEL_UDATA);
	cr_assert_eq(c->seg[SEG_SS].sel, 0, "SS = NULL with RPL = new CPL");
	cr_assert(c->seg[SEG_SS].attr & SEG_ATTR_UNUSABLE);
	cr_assert_eq(c->seg[SEG_CS].sel, SEL_CODE64);
	cr_assert_not(cpu_get_rflags(c) & FL_IF);
}

Test(except, long_mode_ist_and_same_privilege)
{
	struct cpu *c = g_fx->cpu;
	static const uint8_t code[] = { 0xcc, 0x0f, 0x0b }; /* int3; ud2 */

	fx_long_mode();
	fx_code(CODE, code, sizeof(code));
	fx_w64(FX_TSS + 0x24 + 8, 0xa000); /* IST2 */
	fx_gate64(EXC_BP, SEL_CODE64, HANDLER, 0xf, 3, 2);
	fx_gate64(EXC_UD, SEL_CODE64, HANDLER + 0x10, 0xe, 0, 0);
	c->rip = CODE;
	c->gpr[R_RSP] = 0x9008;
	cr_assert_eq(fx_step(), EXC_BP);
	cr_assert_eq(c->rip, HANDLER);
	cr_assert_eq(c->gpr[R_RSP], 0xa000 - 40);
	cr_assert_eq(fx_r64(0xa000 - 40), CODE + 1); /* trap: next instruction */
	cr_assert_eq(fx_r64(0xa000 - 8), SEL_DATA);	 /* SS pushed even at the same CPL */
	cr_assert_eq(fx_r64(0xa000 - 16), 0x9008);
	c->rip = CODE + 1;
	c->gpr[R_RSP] = 0x9008;
	cr_assert_eq(fx_step(), EXC_UD);
	cr_assert_eq(c->rip, HANDLER + 0x10);
	cr_assert_eq(c->gpr[R_RSP], 0x9000 - 40, "aligned to 16 first");
	cr_assert_eq(fx_r64(0x9000 - 40), CODE + 1);
}

Test(except, double_fault_and_triple_fault)
{
	struct cpu *c = g_fx->cpu;
	static const uint8_t code[] = { 0x8e, 0xd8 }; /* mov ds, ax */

	fx_long_mode();
	fx_code(CODE, code, sizeof(code));
	c->gpr[R_RAX] = 0x5b;
	c->rip = CODE;
	c->gpr[R_RSP] = 0x9000;
	/* #GP's gate is not present: #NP while delivering #GP -> #DF. */
	fx_gate64(EXC_GP, SEL_CODE64, HANDLER, 0xe, 0, 0);
	fx_w64(FX_IDT + EXC_GP * 16, fx_r64(FX_IDT + EXC_GP * 16) & ~(1ULL << 47));
	fx_gate64(EXC_DF, SEL_CODE64, HANDLER + 0x40, 0xe, 0, 1);
	fx_w64(FX_TSS + 0x24, 0xb000);
	cr_assert_eq(fx_step(), EXC_DF);
	cr_assert_eq(c->rip, HANDLER + 0x40);
	cr_assert_eq(c->gpr[R_RSP], 0xb000 - 48);
	cr_assert_eq(fx_r64(0xb000 - 48), 0, "#DF pushes error code 0");
	cr_assert_eq(c->delivering, -1);

	/* No usable IDT at all: #GP -> #DF -> shutdown. */
	c->rip = CODE;
	c->idtr.limit = 0;
	cr_assert_eq(fx_step(), -3);
	cr_assert(strstr(c->exit_why, "triple fault") != NULL, "%s", c->exit_why);
}

Test(except, page_fault_then_page_fault_is_double_fault)
{
	struct cpu *c = g_fx->cpu;
	static const uint8_t code[] = { 0x8e, 0x1c, 0x25, 0x00, 0x00, 0x60, 0x00 };

	fx_long_mode();
	fx_code(CODE, code, sizeof(code));
	fx_gate64(EXC_PF, SEL_CODE64, HANDLER, 0xe, 0, 0);
	fx_gate64(EXC_DF, SEL_CODE64, HANDLER + 0x40, 0xe, 0, 1);
	fx_w64(FX_TSS + 0x24, 0xb000);
	c->rip = CODE;
	c->gpr[R_RSP] = 0x700000; /* unmapped stack: pushing the #PF frame faults */
	cr_assert_eq(fx_step(), EXC_DF);
	cr_assert_eq(c->cr2, 0x700000 - 8);
	cr_assert_eq(c->rip, HANDLER + 0x40);
	cr_assert_eq(fx_r64(0xb000 - 48 + 8), CODE);
	/* Without the IST the #DF frame cannot be pushed either: shutdown. */
	fx_gate64(EXC_DF, SEL_CODE64, HANDLER + 0x40, 0xe, 0, 0);
	c->rip = CODE;
	c->gpr[R_RSP] = 0x700000;
	cr_assert_eq(fx_step(), -3);
	cr_assert(strstr(c->exit_why, "triple fault") != NULL);
}

Test(except, iretq_to_cpl3_nulls_data_segments)
{
	struct cpu *c = g_fx->cpu;
	static const uint8_t code[] = { 0x48, 0xcf };

	fx_long_mode();
	fx_code(CODE, code, sizeof(code));
	c->rip = CODE;
	c->gpr[R_RSP] = 0x9000 - 40;
	fx_w64(0x9000 - 40, 0x401000);		/* RIP */
	fx_w64(0x9000 - 32, SEL_UCODE64);	/* CS */
	fx_w64(0x9000 - 24, 0x3202 | FL_CF);	/* RFLAGS (IOPL 3 from CPL 0) */
	fx_w64(0x9000 - 16, 0x7fff0000);	/* RSP */
	fx_w64(0x9000 - 8, SEL_UDATA);		/* SS */
	fx_seg(SEG_ES, SEL_DATA);
	fx_seg(SEG_FS, SEL_UDATA);
	cr_assert_eq(fx_step(), -1);
	cr_assert_eq(c->cpl, 3);
	cr_assert_eq(c->code_bits, 64);
	cr_assert_eq(c->rip, 0x401000);
	cr_assert_eq(c->gpr[R_RSP], 0x7fff0000);
	cr_assert_eq(c->seg[SEG_SS].sel, SEL_UDATA);
	cr_assert_eq(cpu_get_rflags(c), 0x3203);
	cr_assert(c->seg[SEG_ES].attr & SEG_ATTR_UNUSABLE, "DPL 0 data segment nulled");
	cr_assert_eq(c->seg[SEG_FS].sel, SEL_UDATA);
}

Test(except, iretq_to_compat_mode_and_bad_cs)
{
	struct cpu *c = g_fx->cpu;
	static const uint8_t code[] = { 0x48, 0xcf };

	fx_long_mode();
	fx_gate64(EXC_GP, SEL_CODE64, HANDLER, 0xe, 0, 0);
	fx_code(CODE, code, sizeof(code));
	c->rip = CODE;
	c->gpr[R_RSP] = 0x9000 - 40;
	fx_w64(0x9000 - 40, 0x1000);
	fx_w64(0x9000 - 32, SEL_UCODE32);
	fx_w64(0x9000 - 24, 0x202);
	fx_w64(0x9000 - 16, 0x8000);
	fx_w64(0x9000 - 8, SEL_UDATA);
	cr_assert_eq(fx_step(), -1);
	cr_assert_eq(c->code_bits, 32);
	cr_assert(c->long_mode);
	cr_assert_eq(c->cpl, 3);
	/* A return to a DPL 0 selector with RPL 3 is #GP(sel). */
	fx_long_mode();
	c->rip = CODE;
	c->gpr[R_RSP] = 0x9000 - 40;
	fx_w64(0x9000 - 32, SEL_CODE64 | 3);
	cr_assert_eq(fx_step(), EXC_GP);
	cr_assert_eq(fx_r64(c->gpr[R_RSP]), SEL_CODE64);
}

Test(except, nmi_blocked_until_iret)
{
	struct cpu *c = g_fx->cpu;
	static const uint8_t code[] = { 0x48, 0xcf };

	fx_long_mode();
	fx_gate64(EXC_NMI, SEL_CODE64, HANDLER, 0xe, 0, 0);
	fx_code(HANDLER, code, sizeof(code));
	c->rip = CODE;
	c->gpr[R_RSP] = 0x9000;
	c->halted = true;
	cr_assert_eq(FX_TRY(cpu_nmi_deliver(c)), -1);
	cr_assert_not(c->halted);
	cr_assert_eq(c->rip, HANDLER);
	cr_assert_eq(fx_r64(c->gpr[R_RSP]), CODE);
	cr_assert_eq(FX_TRY(cpu_nmi_deliver(c)), -1);
	cr_assert_eq(c->rip, HANDLER, "second NMI held back");
	cr_assert_eq(atomic_load(&c->events) & CPU_EV_NMI, 0);
	cr_assert_eq(fx_step(), -1); /* iretq */
	cr_assert_eq(c->rip, CODE);
	cr_assert_eq(c->gpr[R_RSP], 0x9000);
	cr_assert(atomic_load(&c->events) & CPU_EV_NMI, "pending NMI raised again");
	cr_assert_not(c->nmi_blocked);
}

Test(except, external_interrupt_returns_to_current_rip)
{
	struct cpu *c = g_fx->cpu;

	fx_long_mode();
	fx_gate64(0x30, SEL_CODE64, HANDLER, 0xe, 0, 0);
	c->rip = CODE;
	c->gpr[R_RSP] = 0x9000;
	cpu_set_rflags(c, FL_IF | FL_ZF);
	cr_assert_eq(FX_TRY(cpu_interrupt_deliver(c, 0x30)), -1);
	cr_assert_eq(c->rip, HANDLER);
	cr_assert_eq(fx_r64(c->gpr[R_RSP]), CODE);
	cr_assert_eq(fx_r64(c->gpr[R_RSP] + 16), 0x242);
	cr_assert_not(cpu_get_rflags(c) & FL_IF);
}

Test(except, soft_int_gate_dpl_and_error_code)
{
	struct cpu *c = g_fx->cpu;
	static const uint8_t code[] = { 0xcd, 0x40 };

	fx_long_mode();
	fx_map64(0x400000, 0x400000, PTE_P | PTE_W | PTE_U);
	fx_code(0x400000, code, sizeof(code));
	fx_w64(FX_TSS + 4, 0x8000);
	fx_gate64(0x40, SEL_CODE64, HANDLER, 0xe, 0, 0);
	fx_gate64(EXC_GP, SEL_CODE64, HANDLER + 0x80, 0xe, 0, 0);
	long_user();
	c->rip = 0x400000;
	c->gpr[R_RSP] = 0x400ff0;
	cr_assert_eq(fx_step(), EXC_GP);
	cr_assert_eq(c->rip, HANDLER + 0x80);
	cr_assert_eq(fx_r64(c->gpr[R_RSP]), 0x40 * 8 + 2);
	cr_assert_eq(fx_r64(c->gpr[R_RSP] + 8), 0x400000);
}

Test(except, ext_bit_for_external_event_faults)
{
	struct cpu *c = g_fx->cpu;

	fx_long_mode();
	fx_gate64(0x30, SEL_CODE64, HANDLER, 0xe, 0, 0);
	fx_w64(FX_IDT + 0x30 * 16, fx_r64(FX_IDT + 0x30 * 16) & ~(1ULL << 47)); /* not present */
	fx_gate64(EXC_NP, SEL_CODE64, HANDLER + 0x40, 0xe, 0, 0);
	c->rip = CODE;
	c->gpr[R_RSP] = 0x9000;
	cr_assert_eq(FX_TRY(cpu_interrupt_deliver(c, 0x30)), EXC_NP);
	cr_assert_eq(c->exc_error, 0x30 * 8 + 2 + 1, "IDT bit and EXT");
	cr_assert_eq(fx_deliver_pending(), EXC_NP);
	cr_assert_eq(c->rip, HANDLER + 0x40);
	cr_assert_eq(fx_r64(c->gpr[R_RSP]), 0x30 * 8 + 3);
	cr_assert_eq(fx_r64(c->gpr[R_RSP] + 8), CODE);
}

Test(except, protected_16bit_gate_pushes_words)
{
	struct cpu *c = g_fx->cpu;
	static const uint8_t code[] = { 0xcd, 0x50 };

	fx_prot32();
	fx_gate32(0x50, SEL_CODE32, 0x3000, 0x6, 0); /* 16-bit interrupt gate */
	fx_code(CODE, code, sizeof(code));
	c->rip = CODE;
	c->gpr[R_RSP] = 0x9000;
	cr_assert_eq(fx_step(), 0x50);
	cr_assert_eq(c->gpr[R_RSP], 0x9000 - 6);
	cr_assert_eq(fx_r16(0x9000 - 6), (CODE + 2) & 0xffff);
	cr_assert_eq(fx_r16(0x9000 - 4), SEL_CODE32);
	cr_assert_eq(c->rip, 0x3000);
}

Test(except, v86_round_trip_through_protected_mode_handler)
{
	struct cpu *c = g_fx->cpu;
	static const uint8_t iretd[] = { 0xcf };
	static const uint8_t v86code[] = { 0xcd, 0x21 };
	uint32_t sp;

	fx_prot32();
	fx_seg(SEG_TR, SEL_TSS);
	c->seg[SEG_TR].attr = 0x8b;
	fx_w32(FX_TSS + 4, 0x7000);
	fx_w32(FX_TSS + 8, SEL_DATA);
	fx_gate32(0x21, SEL_CODE32, HANDLER, 0xe, 3);
	fx_code(CODE, iretd, 1);
	fx_code(HANDLER, iretd, 1);
	fx_code(0x1230 + 0x10, v86code, sizeof(v86code));
	/* Frame for IRETD to v86: EIP CS EFLAGS ESP SS ES DS FS GS. */
	c->gpr[R_RSP] = 0x8000;
	fx_w32(0x8000, 0x10);
	fx_w32(0x8004, 0x123);
	fx_w32(0x8008, FL_VM | FL_IOPL | FL_IF | 2);
	fx_w32(0x800c, 0x100);
	fx_w32(0x8010, 0x200);
	fx_w32(0x8014, 0x300);
	fx_w32(0x8018, 0x400);
	fx_w32(0x801c, 0x500);
	fx_w32(0x8020, 0x600);
	c->rip = CODE;
	cr_assert_eq(fx_step(), -1);
	cr_assert(c->rflags & FL_VM);
	cr_assert_eq(c->cpl, 3);
	cr_assert_eq(c->code_bits, 16);
	cr_assert_eq(c->seg[SEG_CS].base, 0x1230);
	cr_assert_eq(c->seg[SEG_DS].base, 0x4000);
	cr_assert_eq(c->rip, 0x10);
	cr_assert_eq(fx_step(), 0x21);
	cr_assert_eq(c->cpl, 0);
	cr_assert_not(c->rflags & FL_VM);
	cr_assert_eq(c->rip, HANDLER);
	sp = (uint32_t)c->gpr[R_RSP];
	cr_assert_eq(sp, 0x7000 - 36);
	cr_assert_eq(fx_r32(sp), 0x12);		/* EIP */
	cr_assert_eq(fx_r32(sp + 4), 0x123);	/* CS */
	cr_assert(fx_r32(sp + 8) & FL_VM);
	cr_assert_eq(fx_r32(sp + 12), 0x100);	/* ESP */
	cr_assert_eq(fx_r32(sp + 16), 0x200);	/* SS */
	cr_assert_eq(fx_r32(sp + 20), 0x300);	/* ES */
	cr_assert_eq(fx_r32(sp + 32), 0x600);	/* GS */
	cr_assert(c->seg[SEG_DS].attr & SEG_ATTR_UNUSABLE);
	cr_assert_eq(fx_step(), -1); /* iretd back */
	cr_assert(c->rflags & FL_VM);
	cr_assert_eq(c->rip, 0x12);
	cr_assert_eq(c->seg[SEG_GS].sel, 0x600);
	cr_assert_eq(c->gpr[R_RSP], 0x100);
}
