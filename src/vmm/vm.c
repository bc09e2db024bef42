#include "vmm/vm.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/log.h"

int accel_parse(const char *s, enum accel_kind *kind)
{
	if (!strcmp(s, "auto"))
		*kind = ACCEL_AUTO;
	else if (!strcmp(s, "kvm"))
		*kind = ACCEL_KVM;
	else if (!strcmp(s, "soft"))
		*kind = ACCEL_SOFT;
	else
		return -EINVAL;
	return 0;
}

/* ACCEL_AUTO: KVM when it opens and makes a VM, else the software CPU. */
static int vm_init_accel(struct vm *vm, enum accel_kind kind, char *err, unsigned long errlen)
{
	char why[256];
	int ret;

	if (kind == ACCEL_SOFT) {
		vm->accel = &accel_soft_ops;
		return vm->accel->vm_init(vm, err, errlen);
	}
	vm->accel = &accel_kvm_ops;
	ret = vm->accel->vm_init(vm, kind == ACCEL_AUTO ? why : err,
				 kind == ACCEL_AUTO ? sizeof(why) : errlen);
	if (!ret || kind == ACCEL_KVM)
		return ret;
	snprintf(vm->accel_note, sizeof(vm->accel_note),
		 "no usable KVM (%s): running on ember's software CPU", why);
	vm->accel = &accel_soft_ops;
	return vm->accel->vm_init(vm, err, errlen);
}

int vm_create(struct vm *vm, enum accel_kind kind, uint64_t ram_size, char *err,
	      unsigned long errlen)
{
	int ret;

	memset(vm, 0, sizeof(*vm));
	vm->kvm_fd = vm->vm_fd = -1;
	bus_init(&vm->pio, "pio");
	bus_init(&vm->mmio, "mmio");
	syscall_fixup_init(&vm->sysfix, false);
	vm->stop_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vm->stop_efd < 0) {
		snprintf(err, errlen, "eventfd: %m");
		return -errno;
	}
	ret = gmem_init(&vm->mem, ram_size);
	if (ret) {
		snprintf(err, errlen, "memory: cannot map %llu MiB of guest RAM: %s",
			 (unsigned long long)(ram_size >> 20), strerror(-ret));
		goto err_efd;
	}
	ret = vm_init_accel(vm, kind, err, errlen);
	if (ret)
		goto err_mem;
	return 0;

err_mem:
	gmem_free(&vm->mem);
err_efd:
	close(vm->stop_efd);
	vm->stop_efd = -1;
	vm->accel = NULL;
	return ret;
}

void vm_destroy(struct vm *vm)
{
	if (vm->accel)
		vm->accel->vm_destroy(vm);
	gmem_free(&vm->mem);
	syscall_fixup_destroy(&vm->sysfix);
	bus_free(&vm->pio);
	bus_free(&vm->mmio);
	if (vm->stop_efd >= 0)
		close(vm->stop_efd);
	vm->stop_efd = -1;
}

void vm_set_irq(void *opaque, uint32_t gsi, int level)
{
	struct vm *vm = opaque;

	vm->accel->set_irq(vm, gsi, level);
}

void vm_request_stop(struct vm *vm, enum vm_stop_reason reason, int status)
{
	int expected = VM_RUNNING;
	uint64_t one = 1;

	if (!atomic_compare_exchange_strong(&vm->stop_reason, &expected, (int)reason))
		return;
	vm->exit_status = status;
	if (write(vm->stop_efd, &one, sizeof(one)) < 0)
		log_err("stop: eventfd write: %m");
}

bool vm_stopping(const struct vm *vm)
{
	return atomic_load(&vm->stop_reason) != VM_RUNNING;
}

void vm_poweroff_cb(void *vm)
{
	vm_request_stop(vm, VM_STOP_POWEROFF, 0);
}

void vm_reset_cb(void *vm)
{
	vm_request_stop(vm, VM_STOP_RESET, 0);
}

void vm_log_unclaimed_pio(struct vm *vm, uint16_t port, bool write, uint32_t len)
{
	size_t bits = 8 * sizeof(unsigned long);
	unsigned long mask = 1UL << (port % bits);

	if (atomic_fetch_or(&vm->pio_logged[port / bits], mask) & mask)
		return;
	log_warn("guest %s of %u byte(s) at unclaimed port 0x%x (logged once per port)",
		 write ? "write" : "read", len, port);
}

void vm_log_unclaimed_mmio(struct vm *vm, uint64_t addr, bool write, uint32_t len)
{
	unsigned int n = atomic_fetch_add(&vm->mmio_logged, 1);

	if (n < 64)
		log_warn("guest %s of %u byte(s) at unclaimed MMIO 0x%llx%s",
			 write ? "write" : "read", len, (unsigned long long)addr,
			 n == 63 ? " (no more unclaimed MMIO will be logged)" : "");
}
