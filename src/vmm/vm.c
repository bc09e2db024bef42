#include "vmm/vm.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "core/log.h"
#include "vmm/x86/layout.h"

int kvm_open(char *err, unsigned long errlen)
{
	const char *path = getenv("EMBER_KVM_DEV");
	int fd, version;

	if (!path || !*path)
		path = "/dev/kvm";
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;

		snprintf(err, errlen, "open %s: %s%s", path, strerror(e),
			 e == ENOENT ? " (is the kvm module loaded?)"
			 : e == EACCES ? " (is this user in the kvm group?)"
				       : "");
		return -e;
	}
	version = ioctl(fd, KVM_GET_API_VERSION, 0);
	if (version != KVM_API_VERSION) {
		snprintf(err, errlen, "%s: KVM API version %d, ember needs %d", path, version,
			 KVM_API_VERSION);
		close(fd);
		return -ENOTSUP;
	}
	return fd;
}

uint32_t kvm_max_vcpus(int kvm_fd)
{
	int n = ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);

	if (n <= 0)
		n = ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
	return n > 0 ? (uint32_t)n : 4; /* KVM's documented floor */
}

static int set_memslots(struct vm *vm, char *err, unsigned long errlen)
{
	for (unsigned int i = 0; i < vm->mem.nregions; i++) {
		const struct gmem_region *r = &vm->mem.regions[i];
		struct kvm_userspace_memory_region slot = {
			.slot = i,
			.guest_phys_addr = r->gpa,
			.memory_size = r->size,
			.userspace_addr = (uintptr_t)r->hva,
		};

		if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &slot)) {
			snprintf(err, errlen, "KVM_SET_USER_MEMORY_REGION (%llu MiB at 0x%llx): %m",
				 (unsigned long long)(r->size >> 20),
				 (unsigned long long)r->gpa);
			return -errno;
		}
	}
	return 0;
}

static int vm_setup_kvm(struct vm *vm, char *err, unsigned long errlen)
{
	struct kvm_pit_config pit = {.flags = KVM_PIT_SPEAKER_DUMMY};
	uint64_t identity = LAYOUT_KVM_IDENTITY_MAP;

	/* VMX hosts need these two pages; elsewhere KVM accepts and ignores them. */
	if (ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &identity) && errno != ENOTTY)
		log_debug("KVM_SET_IDENTITY_MAP_ADDR: %m");
	if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)LAYOUT_KVM_TSS) && errno != ENOTTY)
		log_debug("KVM_SET_TSS_ADDR: %m");
	if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0)) {
		snprintf(err, errlen, "KVM_CREATE_IRQCHIP: %m");
		return -errno;
	}
	if (ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit)) {
		snprintf(err, errlen, "KVM_CREATE_PIT2: %m");
		return -errno;
	}
	return 0;
}

int vm_create(struct vm *vm, int kvm_fd, uint64_t ram_size, char *err, unsigned long errlen)
{
	int ret;

	memset(vm, 0, sizeof(*vm));
	vm->kvm_fd = kvm_fd;
	vm->vm_fd = -1;
	bus_init(&vm->pio, "pio");
	bus_init(&vm->mmio, "mmio");
	syscall_fixup_init(&vm->sysfix, false);
	vm->stop_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vm->stop_efd < 0) {
		snprintf(err, errlen, "eventfd: %m");
		return -errno;
	}
	ret = ioctl(kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (ret <= 0) {
		snprintf(err, errlen, "KVM_GET_VCPU_MMAP_SIZE: %m");
		ret = -errno;
		goto err_efd;
	}
	vm->run_size = (size_t)ret;
	vm->vm_fd = ioctl(kvm_fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0) {
		snprintf(err, errlen, "KVM_CREATE_VM: %m");
		ret = -errno;
		goto err_efd;
	}
	ret = vm_setup_kvm(vm, err, errlen);
	if (ret)
		goto err_vm;
	ret = gmem_init(&vm->mem, ram_size);
	if (ret) {
		snprintf(err, errlen, "memory: cannot map %llu MiB of guest RAM: %s",
			 (unsigned long long)(ram_size >> 20), strerror(-ret));
		goto err_vm;
	}
	ret = set_memslots(vm, err, errlen);
	if (ret)
		goto err_mem;
	return 0;

err_mem:
	gmem_free(&vm->mem);
err_vm:
	close(vm->vm_fd);
	vm->vm_fd = -1;
err_efd:
	close(vm->stop_efd);
	vm->stop_efd = -1;
	return ret;
}

void vm_destroy(struct vm *vm)
{
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	gmem_free(&vm->mem);
	syscall_fixup_destroy(&vm->sysfix);
	bus_free(&vm->pio);
	bus_free(&vm->mmio);
	if (vm->stop_efd >= 0)
		close(vm->stop_efd);
	vm->vm_fd = vm->stop_efd = -1;
}

void vm_set_irq(void *opaque, uint32_t gsi, int level)
{
	struct vm *vm = opaque;
	struct kvm_irq_level irq = {.irq = gsi, .level = level ? 1 : 0};
	static struct ratelimit rl = RATELIMIT_INIT(5000, 5);

	if (ioctl(vm->vm_fd, KVM_IRQ_LINE, &irq))
		log_ratelimited(&rl, LOG_WARN, "KVM_IRQ_LINE gsi %u: %m", gsi);
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
