/*
 * The vm / vcpu interface the board, devices and boot code use, with two
 * implementations: KVM (kvm.c, kvm_vcpu.c) and ember's software CPU
 * (soft.c, soft_vcpu.c). Devices never know which one runs the guest.
 *
 * Registers cross the interface as struct kvm_regs / kvm_sregs: plain data
 * from <linux/kvm.h> (no /dev/kvm needed), the format the boot code and the
 * crash dumps already speak.
 */
#ifndef EMBER_VMM_ACCEL_ACCEL_H
#define EMBER_VMM_ACCEL_ACCEL_H

#include <linux/kvm.h>
#include <stddef.h>
#include <stdint.h>

struct vm;
struct vcpu;
struct kvm_irq_ops;

enum accel_kind { ACCEL_AUTO, ACCEL_KVM, ACCEL_SOFT };

struct accel_ops {
	const char *name;
	/* After guest memory is mapped: the accelerator's VM. 0 or -errno + err. */
	int (*vm_init)(struct vm *vm, char *err, size_t errlen);
	void (*vm_destroy)(struct vm *vm);
	/* The most vCPUs one VM may have. */
	uint32_t (*max_vcpus)(struct vm *vm);
	int (*vcpu_init)(struct vcpu *vcpu, char *err, size_t errlen);
	void (*vcpu_destroy)(struct vcpu *vcpu);
	/* The vCPU thread's body (arg: the struct vcpu); returns when the VM stops. */
	void *(*vcpu_thread)(void *vcpu);
	/* Any thread: make the vCPU notice vm_stopping() soon. */
	void (*vcpu_kick)(struct vcpu *vcpu);
	void (*vcpu_dump)(struct vcpu *vcpu);
	int (*get_regs)(struct vcpu *vcpu, struct kvm_regs *regs);
	int (*set_regs)(struct vcpu *vcpu, const struct kvm_regs *regs);
	int (*get_sregs)(struct vcpu *vcpu, struct kvm_sregs *sregs);
	int (*set_sregs)(struct vcpu *vcpu, const struct kvm_sregs *sregs);
	/* An ISA / IOAPIC interrupt line (struct irq_line's set_level); ctx is the vm. */
	void (*set_irq)(void *vm, uint32_t gsi, int level);
	/* MSI routing, irqfds and ioeventfds for PCI devices; ctx is the vm. */
	const struct kvm_irq_ops *irq_ops;
	/* The monitor wrote guest memory behind the guest's back (loaders, DMA). */
	void (*mem_written)(struct vm *vm, uint64_t gpa, uint64_t len);
};

extern const struct accel_ops accel_kvm_ops;
extern const struct accel_ops accel_soft_ops;

/* "auto", "kvm" or "soft": 0, or -EINVAL. */
int accel_parse(const char *s, enum accel_kind *kind);

#endif
