/* Boot-time MSR values, as a freshly reset CPU plus what firmware sets. */
#ifndef EMBER_VMM_X86_MSR_H
#define EMBER_VMM_X86_MSR_H

#include <stdint.h>

/* 0 when every MSR took; -EIO naming the first one KVM refused otherwise. */
int msr_setup(int vcpu_fd, char *err, unsigned long errlen);

/* One MSR of a vCPU (KVM_GET_MSRS/KVM_SET_MSRS); 0 or -EIO. */
int msr_get(int vcpu_fd, uint32_t index, uint64_t *value);
int msr_set(int vcpu_fd, uint32_t index, uint64_t value);

#endif
