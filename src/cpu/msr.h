/* The MSRs the CPU owns (msr.c); the rest go to env->rdmsr / env->wrmsr. */
#ifndef EMBER_CPU_MSR_H
#define EMBER_CPU_MSR_H

#include <stdint.h>

#include "cpu/cpu.h"

#define MSR_TSC 0x10
#define MSR_SYSENTER_CS 0x174
#define MSR_SYSENTER_ESP 0x175
#define MSR_SYSENTER_EIP 0x176
#define MSR_EFER 0xc0000080
#define MSR_STAR 0xc0000081
#define MSR_LSTAR 0xc0000082
#define MSR_CSTAR 0xc0000083
#define MSR_FMASK 0xc0000084
#define MSR_FS_BASE 0xc0000100
#define MSR_GS_BASE 0xc0000101
#define MSR_KERNEL_GS_BASE 0xc0000102
#define MSR_TSC_AUX 0xc0000103

/* 0, or -1 when the access raises #GP(0). */
int msr_read(struct cpu *cpu, uint32_t msr, uint64_t *val);
int msr_write(struct cpu *cpu, uint32_t msr, uint64_t val);

/* The guest's TSC (env clock + offset). */
uint64_t msr_tsc(struct cpu *cpu);

#endif
