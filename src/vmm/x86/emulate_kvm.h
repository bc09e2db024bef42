/*
 * Glue between a vCPU that stopped with KVM_INTERNAL_ERROR_EMULATION and
 * the user-space completion (emulate.h): reads the vCPU's state, finishes
 * the instruction, writes the state back or injects the exception it
 * raised (KVM_SET_VCPU_EVENTS), so KVM_RUN can resume.
 */
#ifndef EMBER_VMM_X86_EMULATE_KVM_H
#define EMBER_VMM_X86_EMULATE_KVM_H

#include <linux/kvm.h>
#include <stddef.h>

#include "vmm/memory.h"

/*
 * For the exit in `run`: 0 when the vCPU can resume (the instruction is
 * finished, or the code at RIP is no longer what KVM failed on, so KVM
 * runs it again); -errno otherwise, with `why` naming the instruction (its
 * bytes) and the reason ember could not finish it.
 */
int emulate_kvm_finish(int vcpu_fd, const struct kvm_run *run, const struct guest_mem *mem,
		       char *why, size_t whylen);

#endif
