/*
 * System instructions: segment registers, far transfers, descriptor
 * tables, control and debug registers, MSRs, port I/O, CPUID, TSC,
 * SYSCALL/SYSENTER, interrupt flag, HLT.
 */
#include <string.h>

#include "cpu/except.h"
#include "cpu/flags.h"
#include "cpu/insn.h"
#include "cpu/mem.h"
#include "cpu/mmu.h"
#include "cpu/msr.h"
#include "cpu/seg.h"

#define D_TYPE(d) ((unsigned)((d) >> 40) & 0xf)
#define D_S(d) (((d) >> 44) & 1)
#define D_DPL(d) ((unsigned)((d) >> 45) & 3)
#define D_P(d) (((d) >> 47) & 1)
#define D_CODE(d) (D_S(d) && (D_TYPE(d) & 8))
#define D_CONFORMING(d) (D_CODE(d) && (D_TYPE(d) & 4))

/* ---- Operand helpers ---- */

static void reg_write(struct cpu *cpu, unsigned r, uint64_t v, unsigned size)
{
	switch (size) {
	case 1:
		cpu->gpr[r] = (cpu->gpr[r] & ~0xffULL) | (v & 0xff);
		break;
	case 2:
		cpu->gpr[r] = (cpu->gpr[r] & ~0xffffULL) | (v & 0xffff);
		break;
	case 4:
		cpu->gpr[r] = (uint32_t)v;
		break;
	default:
		cpu->gpr[r] = v;
		break;
	}
}

static uint64_t rm_read(struct cpu *cpu, const struct insn *in, unsigned size)
{
	if (in->mod == 3)
		return cpu->gpr[in->rm] & sz_mask(size);
	return cpu_read_sz(cpu, in->ea_seg, insn_ea(cpu, in), size);
}

static bool prot_mode(const struct cpu *cpu)
{
	return (cpu->cr0 & CR0_PE) && !(cpu->rflags & FL_VM);
}

static void need_cpl0(struct cpu *cpu)
{
	if (cpu->cpl != 0)
		cpu_fault(cpu, EXC_GP, 0);
}

static void set_zf(struct cpu *cpu, bool on)
{
	flags_materialize(cpu);
	if (on)
		cpu->rflags |= FL_ZF;
	else
		cpu->rflags &= ~FL_ZF;
}

static unsigned iopl(const struct cpu *cpu)
{
	return (unsigned)(cpu->rflags & FL_IOPL) >> 12;
}

/* ---- Segment registers ---- */

static void exec_mov_rm_sreg(struct cpu *cpu, const struct insn *in)
{
	unsigned sr = in->reg & 7;

	if (sr > SEG_GS)
		cpu_fault(cpu, EXC_UD, 0);
	if (in->mod == 3)
		reg_write(cpu, in->rm, cpu->seg[sr].sel, in->opsize);
	else
		cpu_write16(cpu, in->ea_seg, insn_ea(cpu, in), cpu->seg[sr].sel);
}

static void exec_mov_sreg_rm(struct cpu *cpu, const struct insn *in)
{
	unsigned sr = in->reg & 7;

	if (sr > SEG_GS || sr == SEG_CS)
		cpu_fault(cpu, EXC_UD, 0);
	seg_load(cpu, (int)sr, (uint16_t)rm_read(cpu, in, 2));
}

static unsigned push_size(const struct cpu *cpu, const struct insn *in)
{
	if (cpu_is64(cpu))
		return in->opsize == 2 ? 2 : 8;
	return in->opsize;
}

static void push_sreg(struct cpu *cpu, const struct insn *in, int sr)
{
	unsigned size = push_size(cpu, in);

	/* A 32-bit push of a segment register writes 16 bits on recent CPUs;
	 * writing the zero-extended selector is also allowed. */
	cpu_push(cpu, cpu->seg[sr].sel, size);
}

/* The load may fault: RSP moves only once it succeeded. */
static void pop_sreg(struct cpu *cpu, const struct insn *in, int sr)
{
	unsigned size = push_size(cpu, in);
	uint64_t sp = cpu->gpr[R_RSP], after;
	uint16_t sel = (uint16_t)cpu_pop(cpu, size);

	after = cpu->gpr[R_RSP];
	cpu->gpr[R_RSP] = sp;
	seg_load(cpu, sr, sel);
	cpu->gpr[R_RSP] = after;
}

static int sreg_of_push(const struct insn *in)
{
	if (in->map == MAP_0F)
		return in->op < 0xa8 ? SEG_FS : SEG_GS;
	return (in->op >> 3) & 3;
}

static void exec_push_sreg(struct cpu *cpu, const struct insn *in)
{
	push_sreg(cpu, in, sreg_of_push(in));
}

static void exec_pop_sreg(struct cpu *cpu, const struct insn *in)
{
	pop_sreg(cpu, in, sreg_of_push(in));
}

/* LES LDS LSS LFS LGS: offset then selector in memory. */
static void exec_lxs(struct cpu *cpu, const struct insn *in)
{
	int sr;
	uint64_t ea, off;
	uint16_t sel;
	uint8_t shadow;

	if (in->mod == 3)
		cpu_fault(cpu, EXC_UD, 0);
	if (in->map == MAP_1B)
		sr = in->op == 0xc4 ? SEG_ES : SEG_DS;
	else
		sr = in->op == 0xb2 ? SEG_SS : in->op == 0xb4 ? SEG_FS : SEG_GS;
	ea = insn_ea(cpu, in);
	off = cpu_read_sz(cpu, in->ea_seg, ea, in->opsize);
	sel = cpu_read16(cpu, in->ea_seg, (ea + in->opsize) & sz_mask(in->adsize));
	shadow = cpu->intr_shadow;
	seg_load(cpu, sr, sel);
	cpu->intr_shadow = shadow; /* only MOV SS and POP SS block interrupts */
	reg_write(cpu, in->reg, off, in->opsize);
}

/* ---- Far transfers ---- */

static void exec_call_far(struct cpu *cpu, const struct insn *in)
{
	seg_far_call(cpu, in->imm2, in->imm, in->opsize);
}

static void exec_jmp_far(struct cpu *cpu, const struct insn *in)
{
	seg_far_jmp(cpu, in->imm2, in->imm, in->opsize);
}

static void exec_retf(struct cpu *cpu, const struct insn *in)
{
	seg_far_ret(cpu, in->opsize, in->op == 0xca ? (uint16_t)in->imm : 0);
}

static void exec_iret(struct cpu *cpu, const struct insn *in)
{
	cpu_iret(cpu, in->opsize);
}

/* ---- Flags ---- */

static void exec_cli(struct cpu *cpu, const struct insn *in)
{
	(void)in;
	if (!prot_mode(cpu) || iopl(cpu) >= cpu->cpl) {
		if ((cpu->rflags & FL_VM) && iopl(cpu) < 3) {
			if (!(cpu->cr4 & CR4_VME))
				cpu_fault(cpu, EXC_GP, 0);
			cpu->rflags &= ~FL_VIF;
			return;
		}
		cpu->rflags &= ~FL_IF;
	} else if (cpu->cpl == 3 && (cpu->cr4 & CR4_PVI)) {
		cpu->rflags &= ~FL_VIF;
	} else {
		cpu_fault(cpu, EXC_GP, 0);
	}
}

static void exec_sti(struct cpu *cpu, const struct insn *in)
{
	bool v86 = (cpu->rflags & FL_VM) != 0;

	(void)in;
	if ((!prot_mode(cpu) && !v86) || iopl(cpu) >= (v86 ? 3u : cpu->cpl)) {
		if (!(cpu->rflags & FL_IF))
			cpu->intr_shadow = 1;
		cpu->rflags |= FL_IF;
	} else if (((v86 && (cpu->cr4 & CR4_VME)) || (cpu->cpl == 3 && (cpu->cr4 & CR4_PVI))) &&
		   !(cpu->rflags & FL_VIP)) {
		cpu->rflags |= FL_VIF;
	} else {
		cpu_fault(cpu, EXC_GP, 0);
	}
}

static void exec_pushf(struct cpu *cpu, const struct insn *in)
{
	unsigned size = push_size(cpu, in);

	if ((cpu->rflags & FL_VM) && iopl(cpu) < 3)
		cpu_fault(cpu, EXC_GP, 0);
	cpu_push(cpu, cpu_get_rflags(cpu) & ~(FL_VM | FL_RF), size);
}

static void exec_popf(struct cpu *cpu, const struct insn *in)
{
	unsigned size = push_size(cpu, in);
	uint64_t cur, nf, mask = FL_ARITH | FL_TF | FL_DF | FL_NT | FL_AC | FL_ID | FL_IF | FL_IOPL;

	if ((cpu->rflags & FL_VM) && iopl(cpu) < 3)
		cpu_fault(cpu, EXC_GP, 0);
	nf = cpu_pop(cpu, size);
	cur = cpu_get_rflags(cpu);
	if (cpu->rflags & FL_VM) {
		mask &= ~FL_IOPL;
	} else if (prot_mode(cpu)) {
		if (cpu->cpl > 0)
			mask &= ~FL_IOPL;
		if (cpu->cpl > iopl(cpu))
			mask &= ~FL_IF;
	}
	if (size == 2)
		mask &= 0xffff;
	cpu_set_rflags(cpu, ((cur & ~mask) | (nf & mask) | 2) & ~FL_RF);
}

/* ---- HLT, misc ---- */

static void exec_hlt(struct cpu *cpu, const struct insn *in)
{
	(void)in;
	need_cpl0(cpu);
	cpu->halted = true; /* the run loop returns CPU_EXIT_HLT between blocks */
}

static void exec_invd(struct cpu *cpu, const struct insn *in)
{
	(void)in;
	need_cpl0(cpu);
}

static void exec_ud2(struct cpu *cpu, const struct insn *in)
{
	(void)in;
	cpu_fault(cpu, EXC_UD, 0);
}

static void exec_clts(struct cpu *cpu, const struct insn *in)
{
	(void)in;
	need_cpl0(cpu);
	cpu->cr0 &= ~CR0_TS;
}

/* ---- Port I/O ---- */

/* Protected-mode I/O permission: IOPL, then the TSS bitmap. */
static void io_check(struct cpu *cpu, uint16_t port, unsigned len)
{
	const struct cpu_seg *tr = &cpu->seg[SEG_TR];
	uint16_t base, bits;

	if (!(cpu->cr0 & CR0_PE))
		return;
	if (!(cpu->rflags & FL_VM) && cpu->cpl <= iopl(cpu))
		return;
	if ((tr->attr & SEG_ATTR_UNUSABLE) || (tr->attr & 0x7) != 3 || !(tr->attr & 8) ||
	    tr->limit < 0x67)
		cpu_fault(cpu, EXC_GP, 0);
	cpu_read_lin(cpu, tr->base + 0x66, &base, 2, true);
	if ((uint32_t)base + port / 8 + 1 > tr->limit)
		cpu_fault(cpu, EXC_GP, 0);
	cpu_read_lin(cpu, tr->base + base + port / 8, &bits, 2, true);
	if ((bits >> (port & 7)) & ((1u << len) - 1))
		cpu_fault(cpu, EXC_GP, 0);
}

static uint32_t pio_in(struct cpu *cpu, uint16_t port, unsigned len)
{
	uint32_t v = 0;

	if (!cpu->env || !cpu->env->pio_read || !cpu->env->pio_read(cpu->env_ctx, port, &v, len))
		v = 0xffffffffu;
	return len == 4 ? v : v & ((1u << (len * 8)) - 1);
}

static void pio_out(struct cpu *cpu, uint16_t port, uint32_t v, unsigned len)
{
	if (cpu->env && cpu->env->pio_write)
		cpu->env->pio_write(cpu->env_ctx, port, &v, len);
}

static unsigned io_size(const struct insn *in)
{
	return (in->op & 1) ? (in->opsize == 2 ? 2 : 4) : 1;
}

static void exec_in(struct cpu *cpu, const struct insn *in)
{
	unsigned len = io_size(in);
	uint16_t port = (in->op & 8) ? (uint16_t)cpu->gpr[R_RDX] : (uint16_t)in->imm;

	io_check(cpu, port, len);
	reg_write(cpu, R_RAX, pio_in(cpu, port, len), len);
}

static void exec_out(struct cpu *cpu, const struct insn *in)
{
	unsigned len = io_size(in);
	uint16_t port = (in->op & 8) ? (uint16_t)cpu->gpr[R_RDX] : (uint16_t)in->imm;

	io_check(cpu, port, len);
	pio_out(cpu, port, (uint32_t)cpu->gpr[R_RAX], len);
}

static void adv_reg(struct cpu *cpu, unsigned r, unsigned adsize, int64_t delta)
{
	uint64_t m = sz_mask(adsize);

	cpu->gpr[r] = adsize == 4 ? (uint32_t)(cpu->gpr[r] + (uint64_t)delta)
				  : (cpu->gpr[r] & ~m) | ((cpu->gpr[r] + (uint64_t)delta) & m);
}

/* INS/OUTS, one element per step; REP repeats with the count in rCX. Each
 * step commits, so a fault part-way leaves the registers consistent. */
#define INS_OUTS_CHUNK 4096

static void exec_ins_outs(struct cpu *cpu, const struct insn *in)
{
	unsigned len = (in->op & 1) ? (in->opsize == 2 ? 2 : 4) : 1;
	bool out = (in->op & 2) != 0, rep = (in->pfx & (PFX_REP | PFX_REPNE)) != 0;
	uint16_t port = (uint16_t)cpu->gpr[R_RDX];
	int64_t delta = (cpu->rflags & FL_DF) ? -(int64_t)len : (int64_t)len;
	uint64_t am = sz_mask(in->adsize);
	int sseg = in->seg != SEG_NONE ? in->seg : SEG_DS;

	io_check(cpu, port, len);
	for (unsigned n = 0;; n++) {
		if (rep && !(cpu->gpr[R_RCX] & am))
			return;
		/* A long rep stops after a chunk and runs again (RIP unchanged), so
		 * interrupts and stop requests are seen, as the other string ops do. */
		if (rep && n == INS_OUTS_CHUNK) {
			cpu->next_rip = cpu->rip;
			return;
		}
		if (out) {
			uint32_t v = (uint32_t)cpu_read_sz(cpu, sseg, cpu->gpr[R_RSI] & am, len);

			pio_out(cpu, port, v, len);
			adv_reg(cpu, R_RSI, in->adsize, delta);
		} else {
			uint64_t di = cpu->gpr[R_RDI] & am;

			cpu_linear(cpu, SEG_ES, di, len, true);
			cpu_write_sz(cpu, SEG_ES, di, pio_in(cpu, port, len), len);
			adv_reg(cpu, R_RDI, in->adsize, delta);
		}
		if (!rep)
			return;
		adv_reg(cpu, R_RCX, in->adsize, -1);
	}
}

/* ---- CPUID, TSC, MSRs ---- */

static void exec_cpuid(struct cpu *cpu, const struct insn *in)
{
	uint32_t out[4] = { 0, 0, 0, 0 };
	uint32_t leaf = (uint32_t)cpu->gpr[R_RAX], sub = (uint32_t)cpu->gpr[R_RCX];

	(void)in;
	if (cpu->env && cpu->env->cpuid)
		cpu->env->cpuid(cpu->env_ctx, leaf, sub, out);
	if (leaf == 1) { /* OSXSAVE mirrors CR4 */
		uint64_t apic_base;

		out[2] &= ~(1u << 27);
		if (cpu->cr4 & CR4_OSXSAVE)
			out[2] |= 1u << 27;
		/* APIC mirrors IA32_APIC_BASE.EN: a disabled local APIC is not there. */
		if (msr_read(cpu, 0x1b, &apic_base) == 0 && !(apic_base & (1u << 11)))
			out[3] &= ~(1u << 9);
	}
	cpu->gpr[R_RAX] = out[0];
	cpu->gpr[R_RBX] = out[1];
	cpu->gpr[R_RCX] = out[2];
	cpu->gpr[R_RDX] = out[3];
}

static void set_edx_eax(struct cpu *cpu, uint64_t v)
{
	cpu->gpr[R_RAX] = (uint32_t)v;
	cpu->gpr[R_RDX] = v >> 32;
}

static void exec_rdtsc(struct cpu *cpu, const struct insn *in)
{
	(void)in;
	if ((cpu->cr4 & CR4_TSD) && cpu->cpl != 0 && (cpu->cr0 & CR0_PE))
		cpu_fault(cpu, EXC_GP, 0);
	set_edx_eax(cpu, msr_tsc(cpu));
}

static void exec_rdtscp(struct cpu *cpu, const struct insn *in)
{
	exec_rdtsc(cpu, in);
	cpu->gpr[R_RCX] = (uint32_t)cpu->tsc_aux;
}

static void exec_rdmsr(struct cpu *cpu, const struct insn *in)
{
	uint64_t v = 0;

	(void)in;
	need_cpl0(cpu);
	if (msr_read(cpu, (uint32_t)cpu->gpr[R_RCX], &v))
		cpu_fault(cpu, EXC_GP, 0);
	set_edx_eax(cpu, v);
}

static void exec_wrmsr(struct cpu *cpu, const struct insn *in)
{
	uint64_t v = (uint32_t)cpu->gpr[R_RAX] | (cpu->gpr[R_RDX] << 32);

	(void)in;
	need_cpl0(cpu);
	if (msr_write(cpu, (uint32_t)cpu->gpr[R_RCX], v))
		cpu_fault(cpu, EXC_GP, 0);
}

static void exec_rdpmc(struct cpu *cpu, const struct insn *in)
{
	(void)in;
	cpu_fault(cpu, EXC_GP, 0);
}

/* ---- Control and debug registers ---- */

#define CR4_KNOWN                                                                          \
	(CR4_VME | CR4_PVI | CR4_TSD | CR4_DE | CR4_PSE | CR4_PAE | CR4_MCE | CR4_PGE |    \
	 CR4_PCE | CR4_OSFXSR | CR4_OSXMMEXCPT | CR4_UMIP | CR4_FSGSBASE | CR4_PCIDE |     \
	 CR4_OSXSAVE | CR4_SMEP | CR4_SMAP)

static void write_cr0(struct cpu *cpu, uint64_t v)
{
	uint64_t old = cpu->cr0;

	if (v >> 32)
		cpu_fault(cpu, EXC_GP, 0);
	v |= CR0_ET;
	if (((v & CR0_PG) && !(v & CR0_PE)) || ((v & CR0_NW) && !(v & CR0_CD)))
		cpu_fault(cpu, EXC_GP, 0);
	if ((v & CR0_PG) && !(old & CR0_PG) && (cpu->efer & EFER_LME)) {
		if (!(cpu->cr4 & CR4_PAE))
			cpu_fault(cpu, EXC_GP, 0);
		cpu->efer |= EFER_LMA;
	}
	if (!(v & CR0_PG) && (old & CR0_PG) && (cpu->efer & EFER_LMA)) {
		if (cpu_is64(cpu))
			cpu_fault(cpu, EXC_GP, 0);
		cpu->efer &= ~EFER_LMA;
	}
	cpu->cr0 = v;
	if ((old ^ v) & (CR0_PG | CR0_WP | CR0_PE))
		cpu_tlb_flush(cpu, true);
	cpu_update_mode(cpu);
}

/* The TLB is not tagged by PCID, so every CR3 write drops the non-global
 * entries, the PCID no-flush bit (63) notwithstanding. */
static void write_cr3(struct cpu *cpu, uint64_t v)
{
	if (cpu->long_mode) {
		if (cpu->cr4 & CR4_PCIDE)
			v &= ~(1ULL << 63);
		if (v >> MMU_PHYS_BITS)
			cpu_fault(cpu, EXC_GP, 0);
	} else {
		v = (uint32_t)v;
	}
	cpu->cr3 = v;
	cpu_tlb_flush(cpu, false);
}

/* The CR4 bits this vCPU accepts: those of features its CPUID model offers
 * (the others are reserved: setting them is #GP, as on a CPU without them).
 * Without a CPUID model, all that src/cpu implements. */
static uint64_t cr4_allowed(struct cpu *cpu)
{
	uint32_t l1[4] = { 0, 0, 0, 0 }, l7[4] = { 0, 0, 0, 0 };
	uint64_t ok = CR4_KNOWN & ~(CR4_UMIP | CR4_FSGSBASE | CR4_PCIDE | CR4_OSXSAVE |
				   CR4_SMEP | CR4_SMAP);

	if (!cpu->env || !cpu->env->cpuid)
		return CR4_KNOWN;
	cpu->env->cpuid(cpu->env_ctx, 1, 0, l1);
	cpu->env->cpuid(cpu->env_ctx, 7, 0, l7);
	if (l1[2] & (1u << 17))
		ok |= CR4_PCIDE;
	if (l1[2] & (1u << 26))
		ok |= CR4_OSXSAVE;
	if (l7[1] & (1u << 0))
		ok |= CR4_FSGSBASE;
	if (l7[1] & (1u << 7))
		ok |= CR4_SMEP;
	if (l7[1] & (1u << 20))
		ok |= CR4_SMAP;
	if (l7[2] & (1u << 2))
		ok |= CR4_UMIP;
	return ok;
}

static void write_cr4(struct cpu *cpu, uint64_t v)
{
	uint64_t old = cpu->cr4;

	if (v & ~cr4_allowed(cpu))
		cpu_fault(cpu, EXC_GP, 0);
	if ((cpu->efer & EFER_LMA) && !(v & CR4_PAE))
		cpu_fault(cpu, EXC_GP, 0);
	if ((v & CR4_PCIDE) && !(old & CR4_PCIDE) &&
	    (!(cpu->efer & EFER_LMA) || (cpu->cr3 & 0xfff)))
		cpu_fault(cpu, EXC_GP, 0);
	cpu->cr4 = v;
	if ((old ^ v) & (CR4_PGE | CR4_PAE | CR4_PSE | CR4_SMEP | CR4_SMAP | CR4_PCIDE))
		cpu_tlb_flush(cpu, true);
}

static void exec_mov_cr(struct cpu *cpu, const struct insn *in)
{
	unsigned cr = in->reg, size = cpu_is64(cpu) ? 8 : 4;
	bool to_cr = in->op == 0x22;

	if (cr != 0 && cr != 2 && cr != 3 && cr != 4 && cr != 8)
		cpu_fault(cpu, EXC_UD, 0);
	need_cpl0(cpu);
	if (to_cr) {
		uint64_t v = cpu->gpr[in->rm] & sz_mask(size);

		switch (cr) {
		case 0:
			write_cr0(cpu, v);
			break;
		case 2:
			cpu->cr2 = v;
			break;
		case 3:
			write_cr3(cpu, v);
			break;
		case 4:
			write_cr4(cpu, v);
			break;
		default:
			if (v >> 4)
				cpu_fault(cpu, EXC_GP, 0);
			if (cpu->env && cpu->env->set_cr8)
				cpu->env->set_cr8(cpu->env_ctx, v);
			break;
		}
		return;
	}
	{
		uint64_t v;

		switch (cr) {
		case 0:
			v = cpu->cr0;
			break;
		case 2:
			v = cpu->cr2;
			break;
		case 3:
			v = cpu->cr3;
			break;
		case 4:
			v = cpu->cr4;
			break;
		default:
			v = cpu->env && cpu->env->get_cr8 ? cpu->env->get_cr8(cpu->env_ctx) : 0;
			break;
		}
		reg_write(cpu, in->rm, v, size);
	}
}

static void exec_mov_dr(struct cpu *cpu, const struct insn *in)
{
	unsigned dr = in->reg, size = cpu_is64(cpu) ? 8 : 4;

	if (dr > 7)
		cpu_fault(cpu, EXC_UD, 0);
	if ((dr == 4 || dr == 5) && (cpu->cr4 & CR4_DE))
		cpu_fault(cpu, EXC_UD, 0);
	need_cpl0(cpu);
	if (cpu->dr[7] & 0x2000) {
		/* General detect: a fault-like #DB before any DR access, with DR6.BD;
		 * GD clears so that the handler may use the debug registers. */
		cpu->dr[6] |= 0x2000;
		cpu->dr[7] &= ~0x2000ULL;
		cpu_fault(cpu, EXC_DB, 0);
	}
	if (dr == 4 || dr == 5)
		dr += 2;
	if (in->op == 0x23) {
		uint64_t v = cpu->gpr[in->rm] & sz_mask(size);

		if (dr >= 6 && (v >> 32))
			cpu_fault(cpu, EXC_GP, 0);
		if (dr == 6)
			v = (v & 0xe00f) | 0xffff0ff0;
		else if (dr == 7)
			v = (v & ~0xd800ULL) | 0x400;
		cpu->dr[dr] = v;
	} else {
		reg_write(cpu, in->rm, cpu->dr[dr], size);
	}
}

/* Whether CPUID.(7,0):EBX has `bit` (an instruction the model offers);
 * without a CPUID model, everything src/cpu implements is on. */
static bool cpuid_7_ebx(struct cpu *cpu, uint32_t bit)
{
	uint32_t out[4] = { 0, 0, 0, 0 };

	if (!cpu->env || !cpu->env->cpuid)
		return true;
	cpu->env->cpuid(cpu->env_ctx, 7, 0, out);
	return (out[1] & bit) != 0;
}

/* INVPCID (66 0F 38 82): the TLB has no PCID tags, so every type flushes at
 * least what it names. */
static void exec_invpcid(struct cpu *cpu, const struct insn *in)
{
	uint64_t type, desc[2];
	uint64_t ea;

	if (in->mod == 3 || !prot_mode(cpu) || !cpuid_7_ebx(cpu, 1u << 10))
		cpu_fault(cpu, EXC_UD, 0);
	need_cpl0(cpu);
	type = cpu_is64(cpu) ? cpu->gpr[in->reg] : (uint32_t)cpu->gpr[in->reg];
	ea = insn_ea(cpu, in);
	cpu_read(cpu, in->ea_seg, ea, desc, 16);
	if (type > 3 || (desc[0] >> 12))
		cpu_fault(cpu, EXC_GP, 0);
	switch (type) {
	case 0:
		if (!mmu_canonical(desc[1]))
			cpu_fault(cpu, EXC_GP, 0);
		cpu_tlb_flush_page(cpu, desc[1]);
		break;
	case 1:
	case 3:
		cpu_tlb_flush(cpu, false);
		break;
	default:
		cpu_tlb_flush(cpu, true);
		break;
	}
}

/* ---- Descriptor tables: 0F 00, 0F 01 ---- */

static void exec_sldt_str(struct cpu *cpu, const struct insn *in, int sr)
{
	if ((cpu->cr4 & CR4_UMIP) && cpu->cpl > 0)
		cpu_fault(cpu, EXC_GP, 0);
	if (in->mod == 3)
		reg_write(cpu, in->rm, cpu->seg[sr].sel, in->opsize);
	else
		cpu_write16(cpu, in->ea_seg, insn_ea(cpu, in), cpu->seg[sr].sel);
}

/* Long mode: the 16-byte LDT / TSS descriptor's base must be canonical. */
static void system_base_check(struct cpu *cpu, uint16_t sel, uint64_t d, uint64_t hi)
{
	uint64_t base = ((d >> 16) & 0xffffff) | ((d >> 32) & 0xff000000ULL) |
			((hi & 0xffffffffULL) << 32);

	if (cpu->long_mode && !mmu_canonical(base))
		cpu_fault(cpu, EXC_GP, sel & 0xfffc);
}

static void exec_lldt(struct cpu *cpu, const struct insn *in)
{
	uint16_t sel = (uint16_t)rm_read(cpu, in, 2);
	struct cpu_seg *s = &cpu->seg[SEG_LDTR];
	uint64_t d, hi = 0;

	need_cpl0(cpu);
	if (!(sel & ~3u)) {
		s->sel = sel;
		s->base = 0;
		s->limit = 0;
		s->attr = SEG_ATTR_UNUSABLE;
		return;
	}
	if (sel & 4)
		cpu_fault(cpu, EXC_GP, sel & 0xfffc);
	d = seg_read_desc(cpu, sel, EXC_GP, 0);
	if (D_S(d) || D_TYPE(d) != 2)
		cpu_fault(cpu, EXC_GP, sel & 0xfffc);
	if (!D_P(d))
		cpu_fault(cpu, EXC_NP, sel & 0xfffc);
	if (cpu->long_mode)
		hi = seg_read_desc_hi(cpu, sel, EXC_GP, 0);
	system_base_check(cpu, sel, d, hi);
	seg_cache_from_desc(s, sel, d);
	s->base |= (hi & 0xffffffffULL) << 32;
}

static void exec_ltr(struct cpu *cpu, const struct insn *in)
{
	uint16_t sel = (uint16_t)rm_read(cpu, in, 2);
	struct cpu_seg *s = &cpu->seg[SEG_TR];
	uint64_t d, hi = 0;
	uint8_t b;

	need_cpl0(cpu);
	if (!(sel & ~3u))
		cpu_fault(cpu, EXC_GP, 0);
	if (sel & 4)
		cpu_fault(cpu, EXC_GP, sel & 0xfffc);
	d = seg_read_desc(cpu, sel, EXC_GP, 0);
	if (D_S(d) || (D_TYPE(d) != 9 && (cpu->long_mode || D_TYPE(d) != 1)))
		cpu_fault(cpu, EXC_GP, sel & 0xfffc);
	if (!D_P(d))
		cpu_fault(cpu, EXC_NP, sel & 0xfffc);
	if (cpu->long_mode)
		hi = seg_read_desc_hi(cpu, sel, EXC_GP, 0);
	system_base_check(cpu, sel, d, hi);
	d |= 2ULL << 40; /* busy */
	b = (uint8_t)(d >> 40);
	cpu_write_lin(cpu, cpu->gdtr.base + (sel & ~7u) + 5, &b, 1, true);
	seg_cache_from_desc(s, sel, d);
	s->base |= (hi & 0xffffffffULL) << 32;
}

static void exec_verr_verw(struct cpu *cpu, const struct insn *in, bool write)
{
	uint16_t sel = (uint16_t)rm_read(cpu, in, 2);
	uint64_t d;
	bool ok;

	if (!(sel & ~3u) || ((sel & 4) ? (uint32_t)(sel & ~7u) + 7 > cpu->seg[SEG_LDTR].limit
				      : (uint32_t)(sel & ~7u) + 7 > cpu->gdtr.limit)) {
		set_zf(cpu, false);
		return;
	}
	d = seg_read_desc(cpu, sel, EXC_GP, 0);
	ok = D_S(d);
	if (ok && !D_CONFORMING(d) && (D_DPL(d) < cpu->cpl || D_DPL(d) < (sel & 3u)))
		ok = false;
	if (ok)
		ok = write ? !D_CODE(d) && (D_TYPE(d) & 2) : !D_CODE(d) || (D_TYPE(d) & 2);
	set_zf(cpu, ok);
}

static void exec_grp6(struct cpu *cpu, const struct insn *in)
{
	if (!prot_mode(cpu))
		cpu_fault(cpu, EXC_UD, 0);
	switch (in->reg & 7) {
	case 0:
		exec_sldt_str(cpu, in, SEG_LDTR);
		break;
	case 1:
		exec_sldt_str(cpu, in, SEG_TR);
		break;
	case 2:
		exec_lldt(cpu, in);
		break;
	case 3:
		exec_ltr(cpu, in);
		break;
	case 4:
		exec_verr_verw(cpu, in, false);
		break;
	case 5:
		exec_verr_verw(cpu, in, true);
		break;
	default:
		cpu_fault(cpu, EXC_UD, 0);
	}
}

/* LAR / LSL: which descriptor types they accept. */
static void exec_lar_lsl(struct cpu *cpu, const struct insn *in)
{
	uint16_t sel = (uint16_t)rm_read(cpu, in, 2);
	bool lsl = in->op == 0x03;
	uint64_t d;
	bool ok;

	if (!prot_mode(cpu))
		cpu_fault(cpu, EXC_UD, 0);
	if (!(sel & ~3u) || ((sel & 4) ? (uint32_t)(sel & ~7u) + 7 > cpu->seg[SEG_LDTR].limit
				      : (uint32_t)(sel & ~7u) + 7 > cpu->gdtr.limit)) {
		set_zf(cpu, false);
		return;
	}
	d = seg_read_desc(cpu, sel, EXC_GP, 0);
	if (D_S(d)) {
		ok = D_CONFORMING(d) || (D_DPL(d) >= cpu->cpl && D_DPL(d) >= (sel & 3u));
	} else {
		unsigned t = D_TYPE(d);

		if (cpu->long_mode)
			ok = t == 2 || t == 9 || t == 0xb || (!lsl && t == 0xc);
		else
			ok = (t >= 1 && t <= 3) || t == 9 || t == 0xb ||
			     (!lsl && (t == 4 || t == 5 || t == 0xc));
		ok = ok && D_DPL(d) >= cpu->cpl && D_DPL(d) >= (sel & 3u);
	}
	set_zf(cpu, ok);
	if (!ok)
		return;
	if (lsl)
		reg_write(cpu, in->reg, desc_limit(d), in->opsize);
	else
		reg_write(cpu, in->reg, (d >> 32) & 0x00f0ff00ULL, in->opsize);
}

static void exec_sgdt_sidt(struct cpu *cpu, const struct insn *in, const struct cpu_dtable *t)
{
	uint64_t ea = insn_ea(cpu, in);

	if ((cpu->cr4 & CR4_UMIP) && cpu->cpl > 0)
		cpu_fault(cpu, EXC_GP, 0);
	cpu_write16(cpu, in->ea_seg, ea, t->limit);
	if (cpu_is64(cpu))
		cpu_write64(cpu, in->ea_seg, ea + 2, t->base);
	else
		cpu_write32(cpu, in->ea_seg, (ea + 2) & sz_mask(in->adsize), (uint32_t)t->base);
}

static void exec_lgdt_lidt(struct cpu *cpu, const struct insn *in, struct cpu_dtable *t)
{
	uint64_t ea = insn_ea(cpu, in), base;
	uint16_t limit;

	need_cpl0(cpu);
	limit = cpu_read16(cpu, in->ea_seg, ea);
	if (cpu_is64(cpu)) {
		base = cpu_read64(cpu, in->ea_seg, ea + 2);
		if (!mmu_canonical(base))
			cpu_fault(cpu, EXC_GP, 0);
	} else {
		base = cpu_read32(cpu, in->ea_seg, (ea + 2) & sz_mask(in->adsize));
		if (in->opsize == 2)
			base &= 0xffffff;
	}
	t->limit = limit;
	t->base = base;
}

static void exec_smsw(struct cpu *cpu, const struct insn *in)
{
	if ((cpu->cr4 & CR4_UMIP) && cpu->cpl > 0)
		cpu_fault(cpu, EXC_GP, 0);
	if (in->mod == 3)
		reg_write(cpu, in->rm, cpu->cr0, in->opsize);
	else
		cpu_write16(cpu, in->ea_seg, insn_ea(cpu, in), (uint16_t)cpu->cr0);
}

static void exec_lmsw(struct cpu *cpu, const struct insn *in)
{
	uint64_t v = rm_read(cpu, in, 2);

	need_cpl0(cpu);
	/* PE can be set but not cleared; only the low four bits change. */
	v = (cpu->cr0 & ~0xeULL) | (v & 0xf) | (cpu->cr0 & CR0_PE);
	write_cr0(cpu, v);
}

static void exec_invlpg(struct cpu *cpu, const struct insn *in)
{
	uint64_t ea, lin;

	if (in->mod == 3)
		cpu_fault(cpu, EXC_UD, 0);
	need_cpl0(cpu);
	ea = insn_ea(cpu, in);
	if (cpu_is64(cpu))
		lin = ea + ((in->ea_seg == SEG_FS || in->ea_seg == SEG_GS) ? cpu->seg[in->ea_seg].base
									   : 0);
	else
		lin = (uint32_t)(cpu->seg[in->ea_seg].base + ea);
	cpu_tlb_flush_page(cpu, lin);
}

static void exec_swapgs(struct cpu *cpu)
{
	uint64_t t;

	if (!cpu_is64(cpu))
		cpu_fault(cpu, EXC_UD, 0);
	need_cpl0(cpu);
	t = cpu->seg[SEG_GS].base;
	cpu->seg[SEG_GS].base = cpu->kernel_gs_base;
	cpu->kernel_gs_base = t;
}

static uint64_t xcr0_supported(struct cpu *cpu)
{
	uint32_t out[4] = { 3, 0, 0, 0 };

	if (cpu->env && cpu->env->cpuid)
		cpu->env->cpuid(cpu->env_ctx, 0xd, 0, out);
	return out[0] | ((uint64_t)out[3] << 32) | 1;
}

static void exec_xgetbv(struct cpu *cpu)
{
	uint32_t ecx = (uint32_t)cpu->gpr[R_RCX];

	if (!(cpu->cr4 & CR4_OSXSAVE))
		cpu_fault(cpu, EXC_UD, 0);
	if (ecx == 0)
		set_edx_eax(cpu, cpu->xcr0);
	else if (ecx == 1)
		set_edx_eax(cpu, cpu->xcr0); /* XINUSE: treat all enabled state as in use */
	else
		cpu_fault(cpu, EXC_GP, 0);
}

static void exec_xsetbv(struct cpu *cpu)
{
	uint64_t v = (uint32_t)cpu->gpr[R_RAX] | (cpu->gpr[R_RDX] << 32);

	if (!(cpu->cr4 & CR4_OSXSAVE))
		cpu_fault(cpu, EXC_UD, 0);
	need_cpl0(cpu);
	if ((uint32_t)cpu->gpr[R_RCX] != 0 || !(v & 1) || (v & ~xcr0_supported(cpu)) ||
	    ((v & 4) && !(v & 2)) || (((v >> 5) & 7) && ((v & 0xe6) != 0xe6)))
		cpu_fault(cpu, EXC_GP, 0);
	cpu->xcr0 = v;
}

static void exec_grp7(struct cpu *cpu, const struct insn *in)
{
	unsigned r = in->reg & 7, rm = in->rm & 7;

	if (in->mod != 3) {
		switch (r) {
		case 0:
			exec_sgdt_sidt(cpu, in, &cpu->gdtr);
			return;
		case 1:
			exec_sgdt_sidt(cpu, in, &cpu->idtr);
			return;
		case 2:
			exec_lgdt_lidt(cpu, in, &cpu->gdtr);
			return;
		case 3:
			exec_lgdt_lidt(cpu, in, &cpu->idtr);
			return;
		case 4:
			exec_smsw(cpu, in);
			return;
		case 6:
			exec_lmsw(cpu, in);
			return;
		case 7:
			exec_invlpg(cpu, in);
			return;
		default:
			cpu_fault(cpu, EXC_UD, 0);
		}
	}
	switch (r) {
	case 1:
		if (rm == 0 || rm == 1) { /* monitor, mwait: no-ops (need CPL 0) */
			need_cpl0(cpu);
			return;
		}
		if (rm == 2 || rm == 3) { /* clac, stac */
			if (cpu->cpl != 0)
				cpu_fault(cpu, EXC_UD, 0);
			if (rm == 2)
				cpu->rflags &= ~FL_AC;
			else
				cpu->rflags |= FL_AC;
			return;
		}
		break;
	case 2:
		if (rm == 0) {
			exec_xgetbv(cpu);
			return;
		}
		if (rm == 1) {
			exec_xsetbv(cpu);
			return;
		}
		break;
	case 4:
		exec_smsw(cpu, in);
		return;
	case 6:
		exec_lmsw(cpu, in);
		return;
	case 7:
		if (rm == 0) {
			exec_swapgs(cpu);
			return;
		}
		if (rm == 1) {
			exec_rdtscp(cpu, in);
			return;
		}
		break;
	default:
		break;
	}
	cpu_fault(cpu, EXC_UD, 0);
}

/* ---- SYSCALL / SYSRET / SYSENTER / SYSEXIT ---- */

static void set_flat(struct cpu_seg *s, uint16_t sel, uint32_t attr)
{
	s->sel = sel;
	s->base = 0;
	s->limit = 0xffffffff;
	s->attr = attr;
}

/*
 * SYSCALL and SYSRET take the single-step trap when TF is set after them, not
 * before (SYSCALL's FMASK usually clears TF, SYSRET may set it from R11), as
 * Intel CPUs and QEMU do: the #DB then reports the new CS:RIP, and a SYSCALL
 * whose FMASK clears TF is not trapped in the kernel. The run loop leaves the
 * trap of these two instructions to them.
 */
static void sys_step_trap(struct cpu *cpu)
{
	if (cpu->rflags & FL_TF) {
		cpu->dr[6] |= 0x4000; /* BS */
		cpu_raise_trap(cpu, EXC_DB);
	}
}

static void exec_syscall(struct cpu *cpu, const struct insn *in)
{
	uint16_t sel = (uint16_t)(cpu->star >> 32) & 0xfffc;
	uint64_t fl = cpu_get_rflags(cpu);

	(void)in;
	if (!(cpu->efer & EFER_SCE) || !prot_mode(cpu))
		cpu_fault(cpu, EXC_UD, 0);
	if (cpu->long_mode) {
		cpu->gpr[R_RCX] = cpu->next_rip;
		cpu->gpr[R_R11] = fl & ~FL_RF;
		set_flat(&cpu->seg[SEG_CS], sel, 0xa09b);
		set_flat(&cpu->seg[SEG_SS], (uint16_t)(sel + 8), 0xc093);
		cpu_set_rflags(cpu, (fl & ~cpu->fmask & ~FL_RF) | 2);
		cpu_update_mode(cpu);
		cpu->next_rip = cpu->lstar;
		return;
	}
	cpu->gpr[R_RCX] = (uint32_t)cpu->next_rip;
	set_flat(&cpu->seg[SEG_CS], sel, 0xc09b);
	set_flat(&cpu->seg[SEG_SS], (uint16_t)(sel + 8), 0xc093);
	cpu_set_rflags(cpu, fl & ~(FL_VM | FL_IF | FL_RF));
	cpu_update_mode(cpu);
	cpu->next_rip = (uint32_t)cpu->star;
}

/* SYSCALL from compatibility mode enters at CSTAR. */
static void exec_syscall_entry(struct cpu *cpu, const struct insn *in)
{
	bool compat = cpu->long_mode && !cpu_is64(cpu);

	exec_syscall(cpu, in);
	if (compat)
		cpu->next_rip = cpu->cstar;
	sys_step_trap(cpu);
}

static void exec_sysret(struct cpu *cpu, const struct insn *in)
{
	uint16_t sel = (uint16_t)(cpu->star >> 48);

	if (!(cpu->efer & EFER_SCE))
		cpu_fault(cpu, EXC_UD, 0);
	if (!prot_mode(cpu) || cpu->cpl != 0)
		cpu_fault(cpu, EXC_GP, 0);
	if (cpu->long_mode) {
		bool to64 = in->opsize == 8;
		uint64_t rip = to64 ? cpu->gpr[R_RCX] : (uint32_t)cpu->gpr[R_RCX];

		if (!mmu_canonical(rip))
			cpu_fault(cpu, EXC_GP, 0);
		if (to64)
			set_flat(&cpu->seg[SEG_CS], (uint16_t)((sel + 16) | 3), 0xa0fb);
		else
			set_flat(&cpu->seg[SEG_CS], (uint16_t)(sel | 3), 0xc0fb);
		cpu_set_rflags(cpu, (cpu->gpr[R_R11] & 0x3c7fd7ULL) | 2);
		cpu->next_rip = rip;
	} else {
		set_flat(&cpu->seg[SEG_CS], (uint16_t)(sel | 3), 0xc0fb);
		cpu_set_rflags(cpu, cpu_get_rflags(cpu) | FL_IF);
		cpu->next_rip = (uint32_t)cpu->gpr[R_RCX];
	}
	/* SS keeps its selector's hidden flat attributes, DPL 3. */
	cpu->seg[SEG_SS].sel = (uint16_t)((sel + 8) | 3);
	cpu->seg[SEG_SS].attr = 0xc0f3;
	cpu->seg[SEG_SS].base = 0;
	cpu->seg[SEG_SS].limit = 0xffffffff;
	cpu_update_mode(cpu);
	sys_step_trap(cpu);
}

static void exec_sysenter(struct cpu *cpu, const struct insn *in)
{
	uint16_t sel = (uint16_t)cpu->sysenter_cs & 0xfffc;
	uint64_t fl = cpu_get_rflags(cpu);

	(void)in;
	if (!(cpu->cr0 & CR0_PE) || !sel)
		cpu_fault(cpu, EXC_GP, 0);
	set_flat(&cpu->seg[SEG_CS], sel, cpu->long_mode ? 0xa09b : 0xc09b);
	set_flat(&cpu->seg[SEG_SS], (uint16_t)(sel + 8), 0xc093);
	cpu_set_rflags(cpu, fl & ~(FL_VM | FL_IF | FL_RF));
	cpu_update_mode(cpu);
	cpu->gpr[R_RSP] = cpu->long_mode ? cpu->sysenter_esp : (uint32_t)cpu->sysenter_esp;
	cpu->next_rip = cpu->long_mode ? cpu->sysenter_eip : (uint32_t)cpu->sysenter_eip;
}

static void exec_sysexit(struct cpu *cpu, const struct insn *in)
{
	uint16_t sel = (uint16_t)cpu->sysenter_cs & 0xfffc;
	bool to64 = in->opsize == 8;

	if (!prot_mode(cpu) || !sel || cpu->cpl != 0)
		cpu_fault(cpu, EXC_GP, 0);
	if (to64) {
		if (!mmu_canonical(cpu->gpr[R_RDX]) || !mmu_canonical(cpu->gpr[R_RCX]))
			cpu_fault(cpu, EXC_GP, 0);
		set_flat(&cpu->seg[SEG_CS], (uint16_t)((sel + 32) | 3), 0xa0fb);
		set_flat(&cpu->seg[SEG_SS], (uint16_t)((sel + 40) | 3), 0xc0f3);
		cpu->gpr[R_RSP] = cpu->gpr[R_RCX];
		cpu->next_rip = cpu->gpr[R_RDX];
	} else {
		set_flat(&cpu->seg[SEG_CS], (uint16_t)((sel + 16) | 3), 0xc0fb);
		set_flat(&cpu->seg[SEG_SS], (uint16_t)((sel + 24) | 3), 0xc0f3);
		cpu->gpr[R_RSP] = (uint32_t)cpu->gpr[R_RCX];
		cpu->next_rip = (uint32_t)cpu->gpr[R_RDX];
	}
	cpu_update_mode(cpu);
}

/* ---- FS/GS base (F3 0F AE /0-/3, register form) ---- */

static void exec_fsgsbase(struct cpu *cpu, const struct insn *in)
{
	unsigned r = in->reg & 7;
	int sr = (r & 1) ? SEG_GS : SEG_FS;
	unsigned size = in->opsize == 8 ? 8 : 4;

	if (in->mod != 3 || r > 3 || !cpu_is64(cpu) || !(cpu->cr4 & CR4_FSGSBASE))
		cpu_fault(cpu, EXC_UD, 0);
	if (r < 2) {
		reg_write(cpu, in->rm, cpu->seg[sr].base, size);
	} else {
		uint64_t v = cpu->gpr[in->rm] & sz_mask(size);

		if (!mmu_canonical(v))
			cpu_fault(cpu, EXC_GP, 0);
		cpu->seg[sr].base = v;
	}
}

static void exec_rsm(struct cpu *cpu, const struct insn *in)
{
	(void)in;
	cpu_fault(cpu, EXC_UD, 0);
}

/* ---- INT n, INT3, INTO, INT1 ---- */

/* INT3 and INTO check the gate's DPL like INT n; INT1 (ICEBP) does not. */
static void exec_int(struct cpu *cpu, const struct insn *in)
{
	switch (in->op) {
	case 0xcc:
		cpu_raise_soft(cpu, EXC_BP, DELIVER_SOFT_INT);
	case 0xcd:
		cpu_raise_soft(cpu, (int)(in->imm & 0xff), DELIVER_SOFT_INT);
	case 0xce:
		if (cpu_get_rflags(cpu) & FL_OF)
			cpu_raise_soft(cpu, EXC_OF, DELIVER_SOFT_INT);
		return;
	default:
		cpu_raise_soft(cpu, EXC_DB, DELIVER_TRAP);
	}
}

/* ---- Registration ---- */

static void set1(unsigned op, insn_handler fn)
{
	cpu_dispatch[MAP_1B][op][0] = fn;
}

static void set0f(unsigned op, insn_handler fn)
{
	for (int p = 0; p < 4; p++)
		cpu_dispatch[MAP_0F][op][p] = fn;
}

void exec_sys_register(void)
{
	static const uint8_t push_sregs[] = { 0x06, 0x0e, 0x16, 0x1e };
	static const uint8_t pop_sregs[] = { 0x07, 0x17, 0x1f };

	for (unsigned i = 0; i < sizeof(push_sregs); i++)
		set1(push_sregs[i], exec_push_sreg);
	for (unsigned i = 0; i < sizeof(pop_sregs); i++)
		set1(pop_sregs[i], exec_pop_sreg);
	set0f(0xa0, exec_push_sreg);
	set0f(0xa8, exec_push_sreg);
	set0f(0xa1, exec_pop_sreg);
	set0f(0xa9, exec_pop_sreg);
	set1(0x8c, exec_mov_rm_sreg);
	set1(0x8e, exec_mov_sreg_rm);
	set1(0xc4, exec_lxs);
	set1(0xc5, exec_lxs);
	set0f(0xb2, exec_lxs);
	set0f(0xb4, exec_lxs);
	set0f(0xb5, exec_lxs);
	set1(0x9a, exec_call_far);
	set1(0xea, exec_jmp_far);
	set1(0xca, exec_retf);
	set1(0xcb, exec_retf);
	set1(0xcf, exec_iret);
	set1(0xcc, exec_int);
	set1(0xcd, exec_int);
	set1(0xce, exec_int);
	set1(0xf1, exec_int);
	set1(0x9c, exec_pushf);
	set1(0x9d, exec_popf);
	set1(0xfa, exec_cli);
	set1(0xfb, exec_sti);
	set1(0xf4, exec_hlt);
	for (unsigned op = 0xe4; op <= 0xe7; op++)
		set1(op, (op & 2) ? exec_out : exec_in);
	for (unsigned op = 0xec; op <= 0xef; op++)
		set1(op, (op & 2) ? exec_out : exec_in);
	for (unsigned op = 0x6c; op <= 0x6f; op++)
		set1(op, exec_ins_outs);

	set0f(0x00, exec_grp6);
	set0f(0x01, exec_grp7);
	set0f(0x02, exec_lar_lsl);
	set0f(0x03, exec_lar_lsl);
	set0f(0x05, exec_syscall_entry);
	set0f(0x06, exec_clts);
	set0f(0x07, exec_sysret);
	set0f(0x08, exec_invd);
	set0f(0x09, exec_invd);
	set0f(0x0b, exec_ud2);
	set0f(0x20, exec_mov_cr);
	set0f(0x22, exec_mov_cr);
	set0f(0x21, exec_mov_dr);
	set0f(0x23, exec_mov_dr);
	set0f(0x30, exec_wrmsr);
	set0f(0x31, exec_rdtsc);
	set0f(0x32, exec_rdmsr);
	set0f(0x33, exec_rdpmc);
	set0f(0x34, exec_sysenter);
	set0f(0x35, exec_sysexit);
	set0f(0xa2, exec_cpuid);
	set0f(0xaa, exec_rsm);
	cpu_dispatch[MAP_0F][0xae][MP_F3] = exec_fsgsbase;
	cpu_dispatch[MAP_0F38][0x82][MP_66] = exec_invpcid;
}
