/*
 * Near control transfers and the stack: jmp/jcc/call/ret, loop/jcxz,
 * push/pop forms, pusha/popa, enter/leave, group 5 (FF).
 */
#include "cpu/exec_int.h"
#include "cpu/seg.h"

static inline uint64_t sp_mask(const struct cpu *cpu)
{
	return sz_mask(stack_size(cpu));
}

/* ---- branches ---- */

HANDLER(h_jcc) /* 70..7f, 0f 80..8f */
{
	if (cond(cpu, in->op & 15))
		branch_to(cpu, cpu->next_rip + in->imm, in->opsize);
}

HANDLER(h_jmp_rel) /* e9 eb */
{
	branch_to(cpu, cpu->next_rip + in->imm, in->opsize);
}

HANDLER(h_call_rel) /* e8 */
{
	uint64_t ret = cpu->next_rip;
	cpu_push(cpu, ret, in->opsize);
	branch_to(cpu, ret + in->imm, in->opsize);
}

HANDLER(h_ret) /* c3 c2 */
{
	uint64_t target = cpu_pop(cpu, in->opsize);
	if (in->op == 0xc2) {
		unsigned ss = stack_size(cpu);
		reg_write(cpu, R_RSP, cpu->gpr[R_RSP] + (in->imm & 0xffff), ss);
	}
	branch_to(cpu, target, in->opsize);
}

HANDLER(h_loop) /* e0 loopne, e1 loope, e2 loop */
{
	unsigned as = in->adsize;
	uint64_t c = (cpu->gpr[R_RCX] - 1) & sz_mask(as);
	reg_write(cpu, R_RCX, c, as);
	bool take = c != 0;
	if (in->op == 0xe0)
		take = take && !flag_zf(cpu);
	else if (in->op == 0xe1)
		take = take && flag_zf(cpu);
	if (take)
		branch_to(cpu, cpu->next_rip + in->imm, in->opsize);
}

HANDLER(h_jcxz) /* e3 */
{
	if (reg_read(cpu, R_RCX, in->adsize) == 0)
		branch_to(cpu, cpu->next_rip + in->imm, in->opsize);
}

/* ---- group 5 ---- */

static void far_indirect(struct cpu *cpu, const struct insn *in, bool call)
{
	if (in->mod == 3)
		cpu_fault(cpu, EXC_UD, 0);
	unsigned os = in->opsize;
	uint64_t ea = ea_of(cpu, in);
	uint64_t off = cpu_read_sz(cpu, in->ea_seg, ea, os);
	uint64_t ea2 = ea + os;
	ea2 = in->adsize == 8 ? ea2 : in->adsize == 4 ? (uint32_t)ea2 : (uint16_t)ea2;
	uint16_t sel = cpu_read16(cpu, in->ea_seg, ea2);
	if (call)
		seg_far_call(cpu, sel, off, os);
	else
		seg_far_jmp(cpu, sel, off, os);
}

HANDLER(h_grp5) /* ff */
{
	uint64_t v;
	switch (in->reg & 7) {
	case 0:
	case 1:
		exec_grp5_incdec(cpu, in);
		break;
	case 2: { /* call near Ev: a non-canonical target faults before the push */
		uint64_t ret = cpu->next_rip;
		v = rm_read(cpu, in, in->opsize);
		branch_to(cpu, v, in->opsize);
		cpu_push(cpu, ret, in->opsize);
		break;
	}
	case 3:
		far_indirect(cpu, in, true);
		break;
	case 4: /* jmp near Ev */
		branch_to(cpu, rm_read(cpu, in, in->opsize), in->opsize);
		break;
	case 5:
		far_indirect(cpu, in, false);
		break;
	case 6: /* push Ev */
		v = rm_read(cpu, in, in->opsize);
		cpu_push(cpu, v, in->opsize);
		break;
	default:
		cpu_fault(cpu, EXC_UD, 0);
	}
}

/* ---- push and pop ---- */

HANDLER(h_push_r) /* 50+r: push rsp pushes the value before the push */
{
	cpu_push(cpu, reg_read(cpu, in->rm, in->opsize), in->opsize);
}

HANDLER(h_pop_r) /* 58+r */
{
	uint64_t v = cpu_pop(cpu, in->opsize);
	reg_write(cpu, in->rm, v, in->opsize);
}

HANDLER(h_push_imm) /* 68 6a */
{
	cpu_push(cpu, in->imm & sz_mask(in->opsize), in->opsize);
}

HANDLER(h_pop_rm) /* 8f /0 */
{
	unsigned os = in->opsize;
	if (in->reg & 7)
		cpu_fault(cpu, EXC_UD, 0);
	if (in->mod == 3) {
		uint64_t v = cpu_pop(cpu, os);
		reg_write(cpu, in->rm, v, os);
		return;
	}
	/* The address uses RSP after the pop; RSP changes only if the store works. */
	uint64_t m = sp_mask(cpu), sp = cpu->gpr[R_RSP];
	uint64_t v = cpu_read_sz(cpu, SEG_SS, sp & m, os);
	uint64_t nsp = (cpu->gpr[R_RSP] & ~m) | ((sp + os) & m);
	cpu->gpr[R_RSP] = nsp;
	uint64_t ea = ea_of(cpu, in);
	cpu->gpr[R_RSP] = sp;
	cpu_write_sz(cpu, in->ea_seg, ea, v, os);
	cpu->gpr[R_RSP] = nsp;
}

HANDLER(h_pusha) /* 60 */
{
	unsigned os = in->opsize;
	uint64_t m = sp_mask(cpu), sp = cpu->gpr[R_RSP];
	for (unsigned i = 0; i < 8; i++)
		cpu_write_sz(cpu, SEG_SS, (sp - (i + 1) * os) & m, reg_read(cpu, i, os), os);
	cpu->gpr[R_RSP] = (sp & ~m) | ((sp - 8 * os) & m);
}

HANDLER(h_popa) /* 61 */
{
	unsigned os = in->opsize;
	uint64_t m = sp_mask(cpu), sp = cpu->gpr[R_RSP], v[8];
	for (unsigned i = 0; i < 8; i++)
		v[i] = cpu_read_sz(cpu, SEG_SS, (sp + (7 - i) * os) & m, os);
	for (unsigned i = 0; i < 8; i++)
		if (i != R_RSP)
			reg_write(cpu, i, v[i], os);
	cpu->gpr[R_RSP] = (sp & ~m) | ((sp + 8 * os) & m);
}

HANDLER(h_enter) /* c8 iw, ib */
{
	unsigned os = in->opsize, level = in->imm2 & 31;
	uint64_t m = sp_mask(cpu);

	cpu_push(cpu, reg_read(cpu, R_RBP, os), os);
	uint64_t frame = cpu->gpr[R_RSP] & m;
	if (level > 0) {
		uint64_t bp = cpu->gpr[R_RBP];
		for (unsigned i = 1; i < level; i++) {
			bp = (bp - os) & m;
			cpu_push(cpu, cpu_read_sz(cpu, SEG_SS, bp, os), os);
		}
		cpu_push(cpu, frame, os);
	}
	reg_write(cpu, R_RBP, frame, os);
	uint64_t sp = cpu->gpr[R_RSP];
	cpu->gpr[R_RSP] = (sp & ~m) | ((sp - (in->imm & 0xffff)) & m);
}

HANDLER(h_leave) /* c9 */
{
	unsigned os = in->opsize;
	uint64_t m = sp_mask(cpu), bp = cpu->gpr[R_RBP] & m;
	uint64_t v = cpu_read_sz(cpu, SEG_SS, bp, os);
	cpu->gpr[R_RSP] = (cpu->gpr[R_RSP] & ~m) | ((bp + os) & m);
	reg_write(cpu, R_RBP, v, os);
}

void exec_ctrl_register(void)
{
	for (unsigned o = 0; o < 16; o++) {
		reg_op(MAP_1B, 0x70 + o, h_jcc);
		reg_op(MAP_0F, 0x80 + o, h_jcc);
	}
	reg_op(MAP_1B, 0xe9, h_jmp_rel);
	reg_op(MAP_1B, 0xeb, h_jmp_rel);
	reg_op(MAP_1B, 0xe8, h_call_rel);
	reg_op(MAP_1B, 0xc3, h_ret);
	reg_op(MAP_1B, 0xc2, h_ret);
	reg_op(MAP_1B, 0xe0, h_loop);
	reg_op(MAP_1B, 0xe1, h_loop);
	reg_op(MAP_1B, 0xe2, h_loop);
	reg_op(MAP_1B, 0xe3, h_jcxz);
	reg_op(MAP_1B, 0xff, h_grp5);
	for (unsigned o = 0; o < 8; o++) {
		reg_op(MAP_1B, 0x50 + o, h_push_r);
		reg_op(MAP_1B, 0x58 + o, h_pop_r);
	}
	reg_op(MAP_1B, 0x68, h_push_imm);
	reg_op(MAP_1B, 0x6a, h_push_imm);
	reg_op(MAP_1B, 0x8f, h_pop_rm);
	reg_op(MAP_1B, 0x60, h_pusha);
	reg_op(MAP_1B, 0x61, h_popa);
	reg_op(MAP_1B, 0xc8, h_enter);
	reg_op(MAP_1B, 0xc9, h_leave);
}
