/*
 * A vCPU: its thread and the accelerator's state (a KVM vCPU fd and its
 * kvm_run page, or the software CPU). The thread body, kick and register
 * access go through vm->accel (accel/accel.h).
 */
#ifndef EMBER_VMM_VCPU_H
#define EMBER_VMM_VCPU_H

#include <linux/kvm.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

struct vm;
struct soft_vcpu;

struct vcpu {
	struct vm *vm;
	uint32_t id; /* also its APIC ID */
	pthread_t thread;
	bool started;
	/* accel kvm */
	int fd;
	struct kvm_run *run;
	uint32_t sysfix_exits; /* exits counted for syscall_fixup_track */
	/* accel soft */
	struct soft_vcpu *soft;
};

/* The accelerator's vCPU: CPUID, MSRs, FPU, LAPIC at their reset values. */
int vcpu_create(struct vcpu *vcpu, struct vm *vm, uint32_t id, char *err, unsigned long errlen);
void vcpu_destroy(struct vcpu *vcpu);

/* Starts the thread; vcpu_kick() makes it notice a stop request. */
int vcpu_start(struct vcpu *vcpu);
void vcpu_kick(struct vcpu *vcpu);
void vcpu_join(struct vcpu *vcpu);

/* Registers and segments, on stderr: what a user needs to see a guest crash. */
void vcpu_dump(struct vcpu *vcpu);

/* The registers through get_regs/get_sregs, in one format for every accelerator. */
void vcpu_dump_state(struct vcpu *vcpu);

int vcpu_get_regs(struct vcpu *vcpu, struct kvm_regs *regs);
int vcpu_set_regs(struct vcpu *vcpu, const struct kvm_regs *regs);
int vcpu_get_sregs(struct vcpu *vcpu, struct kvm_sregs *sregs);
int vcpu_set_sregs(struct vcpu *vcpu, const struct kvm_sregs *sregs);

/* The signal vcpu_kick() sends (accel kvm); main() installs a no-op handler for it. */
#define VCPU_KICK_SIGNAL SIGUSR1

#endif
