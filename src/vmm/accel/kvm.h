/* Accel kvm internals shared by kvm.c (the VM) and kvm_vcpu.c (its vCPUs). */
#ifndef EMBER_VMM_ACCEL_KVM_H
#define EMBER_VMM_ACCEL_KVM_H

#include <linux/kvm.h>
#include <stddef.h>
#include <stdint.h>

struct vm;
struct vcpu;

/* KVM_IRQ_LINE; ctx is the vm. */
void kvm_set_irq(void *vm, uint32_t gsi, int level);

int kvm_vcpu_init(struct vcpu *vcpu, char *err, size_t errlen);
void kvm_vcpu_destroy(struct vcpu *vcpu);
void *kvm_vcpu_thread(void *vcpu);
void kvm_vcpu_kick(struct vcpu *vcpu);
void kvm_vcpu_dump(struct vcpu *vcpu);
int kvm_get_regs(struct vcpu *vcpu, struct kvm_regs *regs);
int kvm_set_regs(struct vcpu *vcpu, const struct kvm_regs *regs);
int kvm_get_sregs(struct vcpu *vcpu, struct kvm_sregs *sregs);
int kvm_set_sregs(struct vcpu *vcpu, const struct kvm_sregs *sregs);

#endif
