/*
 * Accel soft internals: ember's software CPU (src/cpu) behind the vm /
 * vcpu interface, with the user-space interrupt controllers
 * (src/vmm/irqchip) in place of KVM's in-kernel ones.
 *
 * Threads: each vCPU thread runs its struct cpu; device threads raise
 * interrupts through the irqchip, which kicks the target vCPU
 * (soft_vcpu_wake). A halted vCPU sleeps on its condition variable until
 * an interrupt, a start-up IPI, a timer deadline or a stop.
 */
#ifndef EMBER_VMM_ACCEL_SOFT_H
#define EMBER_VMM_ACCEL_SOFT_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "cpu/cpu.h"

struct vm;
struct vcpu;
struct irqchip;

struct soft_vm {
	struct vm *vm;
	struct irqchip *chip; /* made with vCPU 0, when the vCPU count is known */
	struct cpu_code_map *code_map;
	struct kvm_cpuid2 *cpuid; /* the model, before per-vCPU topology */
	uint64_t t0_ns;		  /* host CLOCK_MONOTONIC at VM creation: guest time 0 */
};

struct soft_vcpu {
	struct cpu cpu;
	struct kvm_cpuid2 *cpuid;
	pthread_mutex_t lock; /* guards sleeping; the condition variable's mutex */
	pthread_cond_t cond;
	bool sleeping;
	atomic_bool init_pending;
	atomic_int sipi_vector; /* -1: none */
	bool wait_for_sipi;	/* after INIT (and APs from the start) */
};

/* Guest time in ns since the VM was made (the TSC at 1 GHz). */
uint64_t soft_now_ns(const struct soft_vm *s);

/* Any thread: the vCPU should look at its events (and stop sleeping). */
void soft_vcpu_wake(struct vcpu *vcpu, unsigned int ev);

int soft_vcpu_init(struct vcpu *vcpu, char *err, size_t errlen);
void soft_vcpu_destroy(struct vcpu *vcpu);
void *soft_vcpu_thread(void *vcpu);
void soft_vcpu_kick(struct vcpu *vcpu);
void soft_vcpu_dump(struct vcpu *vcpu);
int soft_get_regs(struct vcpu *vcpu, struct kvm_regs *regs);
int soft_set_regs(struct vcpu *vcpu, const struct kvm_regs *regs);
int soft_get_sregs(struct vcpu *vcpu, struct kvm_sregs *sregs);
int soft_set_sregs(struct vcpu *vcpu, const struct kvm_sregs *sregs);

/* The irqchip's callbacks (ctx: the struct vm). */
void soft_host_kick(void *vm, uint32_t cpu);
void soft_host_init(void *vm, uint32_t cpu);
void soft_host_sipi(void *vm, uint32_t cpu, uint8_t vector);
void soft_host_nmi(void *vm, uint32_t cpu);

#endif
