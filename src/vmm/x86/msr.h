/* Boot-time MSR values, as a freshly reset CPU plus what firmware sets. */
#ifndef EMBER_VMM_X86_MSR_H
#define EMBER_VMM_X86_MSR_H

/* 0 when every MSR took; -EIO naming the first one KVM refused otherwise. */
int msr_setup(int vcpu_fd, char *err, unsigned long errlen);

#endif
