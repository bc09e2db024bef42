#include "vmm/x86/msr.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>

#define MSR_IA32_SYSENTER_CS 0x174
#define MSR_IA32_SYSENTER_ESP 0x175
#define MSR_IA32_SYSENTER_EIP 0x176
#define MSR_IA32_MISC_ENABLE 0x1a0
#define MSR_MTRR_DEF_TYPE 0x2ff
#define MSR_STAR 0xc0000081
#define MSR_LSTAR 0xc0000082
#define MSR_CSTAR 0xc0000083
#define MSR_SYSCALL_MASK 0xc0000084
#define MSR_KERNEL_GS_BASE 0xc0000102

#define MISC_ENABLE_FAST_STRING 1ULL
#define MTRR_ENABLE (1ULL << 11)
#define MTRR_TYPE_WB 6ULL

static const struct kvm_msr_entry boot_msrs[] = {
	{.index = MSR_IA32_SYSENTER_CS},
	{.index = MSR_IA32_SYSENTER_ESP},
	{.index = MSR_IA32_SYSENTER_EIP},
	{.index = MSR_STAR},
	{.index = MSR_LSTAR},
	{.index = MSR_CSTAR},
	{.index = MSR_SYSCALL_MASK},
	{.index = MSR_KERNEL_GS_BASE},
	{.index = MSR_IA32_MISC_ENABLE, .data = MISC_ENABLE_FAST_STRING},
	/* No firmware programs the MTRRs: make all of memory write-back. */
	{.index = MSR_MTRR_DEF_TYPE, .data = MTRR_ENABLE | MTRR_TYPE_WB},
};

#define NMSRS (sizeof(boot_msrs) / sizeof(boot_msrs[0]))

int msr_setup(int vcpu_fd, char *err, unsigned long errlen)
{
	struct kvm_msrs *msrs = calloc(1, sizeof(*msrs) + sizeof(boot_msrs));
	int n;

	if (!msrs)
		return -ENOMEM;
	msrs->nmsrs = NMSRS;
	for (unsigned i = 0; i < NMSRS; i++)
		msrs->entries[i] = boot_msrs[i];
	n = ioctl(vcpu_fd, KVM_SET_MSRS, msrs);
	free(msrs);
	if (n < 0) {
		snprintf(err, errlen, "KVM_SET_MSRS: %m");
		return -errno;
	}
	if ((unsigned)n < NMSRS) {
		snprintf(err, errlen, "KVM_SET_MSRS: KVM refused MSR 0x%x", boot_msrs[n].index);
		return -EIO;
	}
	return 0;
}

int msr_get(int vcpu_fd, uint32_t index, uint64_t *value)
{
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e;
	} m = {.hdr.nmsrs = 1, .e.index = index};

	if (ioctl(vcpu_fd, KVM_GET_MSRS, &m) != 1)
		return -EIO;
	*value = m.e.data;
	return 0;
}

int msr_set(int vcpu_fd, uint32_t index, uint64_t value)
{
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e;
	} m = {.hdr.nmsrs = 1, .e.index = index, .e.data = value};

	return ioctl(vcpu_fd, KVM_SET_MSRS, &m) == 1 ? 0 : -EIO;
}
