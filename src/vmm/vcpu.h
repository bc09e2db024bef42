/* A vCPU: its KVM fd, shared kvm_run page and thread running KVM_RUN. */
#ifndef EMBER_VMM_VCPU_H
#define EMBER_VMM_VCPU_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "vmm/x86/syscall_fixup.h"

struct vm;

struct vcpu {
	struct vm *vm;
	uint32_t id; /* also its APIC ID */
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	bool started;
	uint32_t sysfix_exits; /* exits counted for syscall_fixup_track */
};

/* KVM_CREATE_VCPU + mmap of kvm_run, CPUID, MSRs, FPU, LAPIC. */
int vcpu_create(struct vcpu *vcpu, struct vm *vm, uint32_t id, const struct kvm_cpuid2 *cpuid,
		char *err, unsigned long errlen);
void vcpu_destroy(struct vcpu *vcpu);

/* Starts the thread; SIGUSR1 kicks it out of KVM_RUN once a stop is requested. */
int vcpu_start(struct vcpu *vcpu);
void vcpu_kick(struct vcpu *vcpu);
void vcpu_join(struct vcpu *vcpu);

/* Registers and segments, on stderr: what a user needs to see a guest crash. */
void vcpu_dump(struct vcpu *vcpu);

/* The signal vcpu_kick() sends; main() installs a no-op handler for it. */
#define VCPU_KICK_SIGNAL SIGUSR1

#endif
