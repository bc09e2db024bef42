/*
 * Derived mode (CPL, code size), the RESET/INIT and SIPI states, and the
 * register dump for crash reports.
 */
#include <stdio.h>
#include <string.h>

#include "cpu/cpu.h"
#include "cpu/mem.h"

/* CPL is SS.DPL in protected mode (as VMX keeps it): every SS load, stack
 * switch and SYSCALL/SYSRET keeps SS.DPL = CPL, while CS.DPL differs for
 * conforming code and CS.RPL is stale right after setting CR0.PE. */
void cpu_update_mode(struct cpu *cpu)
{
	const struct cpu_seg *cs = &cpu->seg[SEG_CS];

	cpu->paging = (cpu->cr0 & CR0_PG) != 0;
	cpu->long_mode = (cpu->efer & EFER_LMA) != 0;
	if (!(cpu->cr0 & CR0_PE)) {
		cpu->cpl = 0;
		cpu->code_bits = (cs->attr & SEG_ATTR_DB) ? 32 : 16;
	} else if (cpu->rflags & FL_VM) {
		cpu->cpl = 3;
		cpu->code_bits = 16;
	} else {
		cpu->cpl = (cpu->seg[SEG_SS].attr >> SEG_ATTR_DPL_SHIFT) & 3;
		if (cpu->long_mode && (cs->attr & SEG_ATTR_L))
			cpu->code_bits = 64;
		else
			cpu->code_bits = (cs->attr & SEG_ATTR_DB) ? 32 : 16;
	}
}

static void set_seg(struct cpu_seg *s, uint16_t sel, uint64_t base, uint32_t limit, uint32_t attr)
{
	s->sel = sel;
	s->base = base;
	s->limit = limit;
	s->attr = attr;
}

void cpu_reset(struct cpu *cpu)
{
	uint32_t id[4] = { 0x600, 0, 0, 0 };

	memset(cpu->gpr, 0, sizeof(cpu->gpr));
	if (cpu->env && cpu->env->cpuid)
		cpu->env->cpuid(cpu->env_ctx, 1, 0, id);
	cpu->gpr[R_RDX] = id[0];
	cpu->rip = cpu->next_rip = 0xfff0;
	cpu->rflags = 2;
	cpu->lf_op = 0;
	for (int i = 0; i < SEG_COUNT; i++)
		set_seg(&cpu->seg[i], 0, 0, 0xffff, 0x93);
	set_seg(&cpu->seg[SEG_CS], 0xf000, 0xffff0000ULL, 0xffff, 0x9b);
	set_seg(&cpu->seg[SEG_LDTR], 0, 0, 0xffff, 0x82);
	set_seg(&cpu->seg[SEG_TR], 0, 0, 0xffff, 0x8b);
	cpu->gdtr.base = cpu->idtr.base = 0;
	cpu->gdtr.limit = cpu->idtr.limit = 0xffff;
	cpu->cr0 = 0x60000010;
	cpu->cr2 = cpu->cr3 = cpu->cr4 = cpu->efer = 0;
	memset(cpu->dr, 0, sizeof(cpu->dr));
	cpu->dr[6] = 0xffff0ff0;
	cpu->dr[7] = 0x400;
	cpu->xcr0 = 1;
	memset(&cpu->fpu, 0, sizeof(cpu->fpu));
	cpu->fpu.fcw = 0x37f;
	cpu->fpu.ftw = 0xffff; /* all empty */
	cpu->fpu.mxcsr = 0x1f80;
	cpu->star = cpu->lstar = cpu->cstar = cpu->fmask = cpu->kernel_gs_base = 0;
	cpu->sysenter_cs = cpu->sysenter_esp = cpu->sysenter_eip = 0;
	cpu->pat = 0x0007040600070406ULL;
	cpu->tsc_aux = 0;
	cpu->misc_enable = 1; /* fast strings */
	cpu->mtrr_def_type = 0;
	memset(cpu->mtrr_fixed, 0, sizeof(cpu->mtrr_fixed));
	memset(cpu->mtrr_var, 0, sizeof(cpu->mtrr_var));
	cpu->intr_shadow = 0;
	cpu->halted = false;
	cpu->nmi_blocked = cpu->nmi_pending = false;
	cpu->exc_vector = -1;
	cpu->exc_error = 0;
	cpu->exc_has_error = false;
	cpu->delivering = -1;
	cpu_update_mode(cpu);
	cpu_tlb_flush(cpu, true);
}

void cpu_sipi(struct cpu *cpu, uint8_t vector)
{
	set_seg(&cpu->seg[SEG_CS], (uint16_t)(vector << 8), (uint64_t)vector << 12, 0xffff, 0x9b);
	cpu->rip = cpu->next_rip = 0;
	cpu->halted = false;
	cpu_update_mode(cpu);
}

static void dump_seg(const char *name, const struct cpu_seg *s)
{
	fprintf(stderr, "%-4s %04x base %016llx limit %08x attr %05x\n", name, s->sel,
		(unsigned long long)s->base, s->limit, s->attr);
}

void cpu_dump(const struct cpu *cpu)
{
	static const char *const gpr[16] = { "rax", "rcx", "rdx", "rbx", "rsp", "rbp",
					     "rsi", "rdi", "r8",  "r9",	 "r10", "r11",
					     "r12", "r13", "r14", "r15" };
	static const char *const segn[SEG_COUNT] = { "es", "cs", "ss", "ds",
						     "fs", "gs", "ldtr", "tr" };
	struct cpu *c = (struct cpu *)cpu; /* cpu_translate / rflags: no side effects */
	uint64_t gpa;

	fprintf(stderr, "vCPU %u: rip %016llx rflags %016llx cpl %u %u-bit%s%s\n", cpu->apic_id,
		(unsigned long long)cpu->rip, (unsigned long long)cpu_get_rflags(c), cpu->cpl,
		cpu->code_bits, cpu->long_mode ? " long" : "", cpu->halted ? " halted" : "");
	for (int i = 0; i < 16; i += 4)
		fprintf(stderr, "%-3s %016llx %-3s %016llx %-3s %016llx %-3s %016llx\n", gpr[i],
			(unsigned long long)cpu->gpr[i], gpr[i + 1],
			(unsigned long long)cpu->gpr[i + 1], gpr[i + 2],
			(unsigned long long)cpu->gpr[i + 2], gpr[i + 3],
			(unsigned long long)cpu->gpr[i + 3]);
	for (int i = 0; i < SEG_COUNT; i++)
		dump_seg(segn[i], &cpu->seg[i]);
	fprintf(stderr, "gdt %016llx/%04x idt %016llx/%04x\n", (unsigned long long)cpu->gdtr.base,
		cpu->gdtr.limit, (unsigned long long)cpu->idtr.base, cpu->idtr.limit);
	fprintf(stderr, "cr0 %016llx cr2 %016llx cr3 %016llx cr4 %016llx efer %llx\n",
		(unsigned long long)cpu->cr0, (unsigned long long)cpu->cr2,
		(unsigned long long)cpu->cr3, (unsigned long long)cpu->cr4,
		(unsigned long long)cpu->efer);
	fprintf(stderr, "dr7 %llx dr6 %llx xcr0 %llx exc %d err %#x delivering %d\n",
		(unsigned long long)cpu->dr[7], (unsigned long long)cpu->dr[6],
		(unsigned long long)cpu->xcr0, cpu->exc_vector, cpu->exc_error, cpu->delivering);
	{
		uint64_t lin = cpu->code_bits == 64 ? cpu->rip
						    : (uint32_t)(cpu->seg[SEG_CS].base + cpu->rip);

		if (cpu_translate(c, lin, &gpa) == 0) {
			const uint8_t *p = gmem_ptr(cpu->mem, gpa, 1);

			fprintf(stderr, "code at gpa %#llx:", (unsigned long long)gpa);
			for (int i = 0; p && i < 16 && gmem_ptr(cpu->mem, gpa + i, 1); i++)
				fprintf(stderr, " %02x", *(const uint8_t *)gmem_ptr(cpu->mem, gpa + i, 1));
			fprintf(stderr, "\n");
		}
	}
}
