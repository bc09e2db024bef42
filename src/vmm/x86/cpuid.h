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

/* Bits needed to number ncpus APIC IDs (0 for one CPU). */
uint32_t cpuid_id_shift(uint32_t ncpus);

#endif
