/* Per-vCPU CPUID: what KVM supports, with a topology that matches the MADT. */
#ifndef EMBER_VMM_X86_CPUID_H
#define EMBER_VMM_X86_CPUID_H

#include <linux/kvm.h>
#include <stdint.h>

/* KVM_GET_SUPPORTED_CPUID into a malloc'd table; NULL with errno set on failure. */
struct kvm_cpuid2 *cpuid_get_supported(int kvm_fd);

/*
 * A copy of `base` patched for vCPU `apic_id` of `ncpus` (one package, one
 * thread per core): APIC IDs in leaves 1, 0xB, 0x1F and 0x8000001E, core
 * counts in leaves 1, 4 and 0x80000008, the hypervisor bit. malloc'd.
 */
struct kvm_cpuid2 *cpuid_for_vcpu(const struct kvm_cpuid2 *base, uint32_t apic_id, uint32_t ncpus);

/*
 * The software CPU's CPUID (accel soft): what src/cpu implements, no more.
 * The guest TSC runs at SOFT_TSC_HZ; leaf 0x15 reports it as a 25 MHz
 * crystal times 40, the rate of the local APIC timer.
 */
#define SOFT_TSC_HZ 1000000000u
#define SOFT_CRYSTAL_HZ 25000000u
/* Family 6, model 0x3a, stepping 9. */
#define SOFT_CPUID_1_EAX 0x000306a9u
#define SOFT_CPUID_1_EBX (0x08u << 8) /* CLFLUSH line 64 bytes */
/* ECX: SSE3 0, SSSE3 9, CX16 13, SSE4.1 19, SSE4.2 20, POPCNT 23, TSC-deadline 24,
 * XSAVE 26 (OSXSAVE, bit 27, is the CPU's: it mirrors CR4). */
#define SOFT_CPUID_1_ECX                                                                           \
	((1u << 0) | (1u << 9) | (1u << 13) | (1u << 19) | (1u << 20) | (1u << 23) | (1u << 24) | \
	 (1u << 26))
/* EDX: FPU, DE, PSE, TSC, MSR, PAE, MCE, CX8, APIC, SEP, MTRR, PGE, CMOV, PAT,
 * CLFSH, MMX, FXSR, SSE, SSE2. */
#define SOFT_CPUID_1_EDX                                                                           \
	((1u << 0) | (1u << 2) | (1u << 3) | (1u << 4) | (1u << 5) | (1u << 6) | (1u << 7) |      \
	 (1u << 8) | (1u << 9) | (1u << 11) | (1u << 12) | (1u << 13) | (1u << 15) | (1u << 16) |  \
	 (1u << 19) | (1u << 23) | (1u << 24) | (1u << 25) | (1u << 26))
/* Leaf 7 EBX: SMEP 7, FCS/FDS saved as 0 13, SMAP 20 (src/cpu checks CPUID before
 * accepting CR4.SMEP/SMAP/OSXSAVE). */
#define SOFT_CPUID_7_EBX ((1u << 7) | (1u << 13) | (1u << 20))
#define SOFT_CPUID_7_ECX (1u << 2) /* UMIP */
#define SOFT_CPUID_7_EDX 0u
/* 0x80000001 ECX: LAHF/SAHF in 64-bit mode; EDX: SYSCALL, NX, RDTSCP, LM. */
/* Leaf 0xD (XSAVE): XCR0 may enable x87 | SSE; the area is the 512-byte legacy
 * region and the 64-byte header, whatever XCR0 holds; subleaf 1: XSAVEOPT only. */
#define SOFT_CPUID_D0_EAX 0x3u
#define SOFT_CPUID_D0_SIZE 576u
#define SOFT_CPUID_D1_EAX 0x1u
#define SOFT_CPUID_81_ECX (1u << 0)
#define SOFT_CPUID_81_EDX ((1u << 11) | (1u << 20) | (1u << 27) | (1u << 29))

struct kvm_cpuid2 *cpuid_soft_model(void);

/* One leaf of table c: 0, or -1 (out zeroed) when c has no such entry. */
int cpuid_lookup(const struct kvm_cpuid2 *c, uint32_t fn, uint32_t idx, uint32_t out[4]);

/* Bits needed to number ncpus APIC IDs (0 for one CPU). */
uint32_t cpuid_id_shift(uint32_t ncpus);

#endif
