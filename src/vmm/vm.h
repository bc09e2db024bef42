/*
 * One virtual machine: the KVM VM, its guest memory, buses and vCPUs, and
 * the stop request every thread can raise.
 *
 * Threads: the main thread (console input, signals, stop), one per vCPU.
 * The first stop request wins; its status becomes the exit status.
 */
#ifndef EMBER_VMM_VM_H
#define EMBER_VMM_VM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "vmm/accel/accel.h"
#include "vmm/bus.h"
#include "vmm/memory.h"
#include "vmm/x86/syscall_fixup.h"

struct vcpu;
struct soft_vm;

enum vm_stop_reason {
	VM_RUNNING = 0,
	VM_STOP_POWEROFF, /* guest: ACPI S5 */
	VM_STOP_RESET,	  /* guest: i8042 / ACPI reset */
	VM_STOP_CRASH,	  /* guest: triple fault, KVM internal error, unhandled exit */
	VM_STOP_SIGNAL,	  /* host: SIGTERM/SIGINT/SIGHUP */
	VM_STOP_USER,	  /* host: console escape */
	VM_STOP_ERROR,	  /* host: the monitor itself failed */
};

struct vm {
	const struct accel_ops *accel;
	int kvm_fd; /* accel kvm: -1 otherwise */
	int vm_fd;
	struct soft_vm *soft; /* accel soft */
	char accel_note[320]; /* why auto chose the software CPU; said when the VM starts */
	int stop_efd; /* eventfd: readable once a stop was requested */
	size_t run_size;
	struct guest_mem mem;
	struct bus pio;
	struct bus mmio;
	struct vcpu *vcpus;
	uint32_t ncpus;
	atomic_int stop_reason;
	int exit_status;
	/* One bit per port: set once an unclaimed access was logged. */
	atomic_ulong pio_logged[65536 / (8 * sizeof(unsigned long))];
	atomic_uint mmio_logged;
	/* Hosts that leave user-mode syscalls half done: x86/syscall_fixup.h. */
	struct syscall_fixup sysfix;
};

/* Opens /dev/kvm (or $EMBER_KVM_DEV) and checks the API; fd or -errno, err filled. */
int kvm_open(char *err, unsigned long errlen);
/* The most vCPUs this host's KVM allows in one VM. */
uint32_t kvm_max_vcpus(int kvm_fd);

/*
 * Guest RAM of ram_size bytes and the accelerator's VM: KVM (in-kernel
 * irqchip + PIT), the software CPU (user-space irqchip), or with
 * ACCEL_AUTO KVM when /dev/kvm opens and creates a VM, else the software
 * CPU (said once on stderr). 0, or -errno with err filled.
 */
int vm_create(struct vm *vm, enum accel_kind kind, uint64_t ram_size, char *err,
	      unsigned long errlen);
void vm_destroy(struct vm *vm);

/* An interrupt line through the accelerator; struct irq_line's set_level (ctx: the vm). */
void vm_set_irq(void *vm, uint32_t gsi, int level);

/* Records the first stop request and wakes the main thread. Thread-safe. */
void vm_request_stop(struct vm *vm, enum vm_stop_reason reason, int status);
bool vm_stopping(const struct vm *vm);

/* Device callbacks that stop the VM with status 0. */
void vm_poweroff_cb(void *vm);
void vm_reset_cb(void *vm);

/* Guest accesses no device claims: logged once per port (first 64 MMIO). */
void vm_log_unclaimed_pio(struct vm *vm, uint16_t port, bool write, uint32_t len);
void vm_log_unclaimed_mmio(struct vm *vm, uint64_t addr, bool write, uint32_t len);

#endif
