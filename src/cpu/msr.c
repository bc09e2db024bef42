/*
 * Model-specific registers the CPU itself implements: EFER and the
 * SYSCALL/SYSENTER ones, segment bases, PAT, TSC, MTRRs, machine check (read
 * as zero) and the informational ones Linux reads. Everything else belongs
 * to the monitor (APIC base, x2APIC, TSC deadline, paravirtual MSRs).
 */
#include "cpu/msr.h"

#include "cpu/mmu.h"

#define EFER_SVME 0x1000ULL
#define EFER_FFXSR 0x4000ULL

uint64_t msr_tsc(struct cpu *cpu)
{
	uint64_t t = cpu->env && cpu->env->rdtsc ? cpu->env->rdtsc(cpu->env_ctx) : 0;

	return t + cpu->tsc_offset;
}

/* Fixed-range MTRR MSR -> index in cpu->mtrr_fixed, or -1. */
static int mtrr_fixed_index(uint32_t msr)
{
	if (msr == 0x250)
		return 0;
	if (msr == 0x258 || msr == 0x259)
		return (int)(msr - 0x258 + 1);
	if (msr >= 0x268 && msr <= 0x26f)
		return (int)(msr - 0x268 + 3);
	return -1;
}

static bool pat_valid(uint64_t v)
{
	for (int i = 0; i < 8; i++) {
		unsigned t = (v >> (i * 8)) & 0xff;

		if (t != 0 && t != 1 && t != 4 && t != 5 && t != 6 && t != 7)
			return false;
	}
	return true;
}

static int env_read(struct cpu *cpu, uint32_t msr, uint64_t *val)
{
	if (!cpu->env || !cpu->env->rdmsr)
		return -1;
	return cpu->env->rdmsr(cpu->env_ctx, msr, val) ? -1 : 0;
}

int msr_read(struct cpu *cpu, uint32_t msr, uint64_t *val)
{
	int i = mtrr_fixed_index(msr);

	if (i >= 0) {
		*val = cpu->mtrr_fixed[i];
		return 0;
	}
	if (msr >= 0x200 && msr < 0x210) {
		*val = cpu->mtrr_var[msr - 0x200];
		return 0;
	}
	if (msr >= 0x400 && msr < 0x480) /* MCi_*: MCG_CAP reports no banks */
		return -1;
	switch (msr) {
	case MSR_TSC:
		*val = msr_tsc(cpu);
		return 0;
	case MSR_SYSENTER_CS:
		*val = cpu->sysenter_cs;
		return 0;
	case MSR_SYSENTER_ESP:
		*val = cpu->sysenter_esp;
		return 0;
	case MSR_SYSENTER_EIP:
		*val = cpu->sysenter_eip;
		return 0;
	case 0x277:
		*val = cpu->pat;
		return 0;
	case 0x1a0:
		*val = cpu->misc_enable;
		return 0;
	case 0xfe: /* MTRRcap: 8 variable ranges, fixed ranges, write-combining */
		*val = 0x508;
		return 0;
	case 0x2ff:
		*val = cpu->mtrr_def_type;
		return 0;
	case 0x179: /* MCG_CAP: no banks */
	case 0x17a: /* MCG_STATUS */
	case 0x17b: /* MCG_CTL */
	case 0x8b:  /* microcode revision */
	case 0xce:  /* PLATFORM_INFO */
	case 0x34:  /* SMI count */
	case 0x140: /* MISC_FEATURES_ENABLES */
		*val = 0;
		return 0;
	case 0x3a: /* FEATURE_CONTROL: locked, VMX off */
		*val = 1;
		return 0;
	case MSR_EFER:
		*val = cpu->efer;
		return 0;
	case MSR_STAR:
		*val = cpu->star;
		return 0;
	case MSR_LSTAR:
		*val = cpu->lstar;
		return 0;
	case MSR_CSTAR:
		*val = cpu->cstar;
		return 0;
	case MSR_FMASK:
		*val = cpu->fmask;
		return 0;
	case MSR_FS_BASE:
		*val = cpu->seg[SEG_FS].base;
		return 0;
	case MSR_GS_BASE:
		*val = cpu->seg[SEG_GS].base;
		return 0;
	case MSR_KERNEL_GS_BASE:
		*val = cpu->kernel_gs_base;
		return 0;
	case MSR_TSC_AUX:
		*val = cpu->tsc_aux;
		return 0;
	default:
		return env_read(cpu, msr, val);
	}
}

static int write_efer(struct cpu *cpu, uint64_t val)
{
	uint64_t allowed = EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE | EFER_FFXSR;

	if (val & ~allowed)
		return -1;
	/* LME cannot change while paging is on; LMA is read-only. */
	if ((cpu->cr0 & CR0_PG) && ((val ^ cpu->efer) & EFER_LME))
		return -1;
	val = (val & ~EFER_LMA) | (cpu->efer & EFER_LMA);
	if ((val ^ cpu->efer) & EFER_NXE)
		cpu_tlb_flush(cpu, true);
	cpu->efer = val;
	cpu_update_mode(cpu);
	return 0;
}

static int canonical_store(uint64_t *dst, uint64_t val)
{
	if (!mmu_canonical(val))
		return -1;
	*dst = val;
	return 0;
}

/* IA32_APIC_BASE.EXTD (x2APIC mode) is reserved unless CPUID.1:ECX offers
 * x2APIC (bit 21): setting it is #GP. The rest is the local APIC's (env). */
static bool apic_base_reserved(struct cpu *cpu, uint64_t val)
{
	uint32_t out[4] = { 0, 0, 0, 0 };

	if (!(val & (1u << 10)) || !cpu->env || !cpu->env->cpuid)
		return false;
	cpu->env->cpuid(cpu->env_ctx, 1, 0, out);
	return !(out[2] & (1u << 21));
}

int msr_write(struct cpu *cpu, uint32_t msr, uint64_t val)
{
	int i = mtrr_fixed_index(msr);

	if (msr == 0x1b && apic_base_reserved(cpu, val))
		return -1;

	if (i >= 0) {
		cpu->mtrr_fixed[i] = val;
		return 0;
	}
	if (msr >= 0x200 && msr < 0x210) {
		cpu->mtrr_var[msr - 0x200] = val;
		return 0;
	}
	if (msr >= 0x400 && msr < 0x480) /* MCi_*: MCG_CAP reports no banks */
		return -1;
	switch (msr) {
	case MSR_TSC:
		cpu->tsc_offset = val - msr_tsc(cpu) + cpu->tsc_offset;
		return 0;
	case MSR_SYSENTER_CS:
		cpu->sysenter_cs = val & 0xffff;
		return 0;
	case MSR_SYSENTER_ESP:
		return canonical_store(&cpu->sysenter_esp, val);
	case MSR_SYSENTER_EIP:
		return canonical_store(&cpu->sysenter_eip, val);
	case 0x277:
		if (!pat_valid(val))
			return -1;
		cpu->pat = val;
		return 0;
	case 0x1a0:
		cpu->misc_enable = val;
		return 0;
	case 0x2ff:
		if (val & ~0xcffULL)
			return -1;
		cpu->mtrr_def_type = val;
		return 0;
	case 0x179:
	case 0xfe:
	case 0xce:
		return -1;
	case 0x17a:
	case 0x17b:
	case 0x8b:
	case 0x140:
		return 0;
	case MSR_EFER:
		return write_efer(cpu, val);
	case MSR_STAR:
		cpu->star = val;
		return 0;
	case MSR_LSTAR:
		return canonical_store(&cpu->lstar, val);
	case MSR_CSTAR:
		return canonical_store(&cpu->cstar, val);
	case MSR_FMASK:
		cpu->fmask = val & 0xffffffffULL;
		return 0;
	case MSR_FS_BASE:
		return canonical_store(&cpu->seg[SEG_FS].base, val);
	case MSR_GS_BASE:
		return canonical_store(&cpu->seg[SEG_GS].base, val);
	case MSR_KERNEL_GS_BASE:
		return canonical_store(&cpu->kernel_gs_base, val);
	case MSR_TSC_AUX:
		if (val >> 32)
			return -1;
		cpu->tsc_aux = val;
		return 0;
	default:
		if (!cpu->env || !cpu->env->wrmsr)
			return -1;
		return cpu->env->wrmsr(cpu->env_ctx, msr, val) ? -1 : 0;
	}
}
