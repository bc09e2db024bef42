/* Accel kvm: the VM side (/dev/kvm, memslots, in-kernel irqchip and PIT). */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "core/log.h"
#include "vmm/accel/kvm.h"
#include "vmm/vm.h"
#include "vmm/x86/gsi.h"
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

static int kvm_vm_init(struct vm *vm, char *err, size_t errlen)
{
	int ret;

	vm->kvm_fd = kvm_open(err, errlen);
	if (vm->kvm_fd < 0)
		return vm->kvm_fd;
	ret = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (ret <= 0) {
		snprintf(err, errlen, "KVM_GET_VCPU_MMAP_SIZE: %m");
		ret = -errno;
		goto err_kvm;
	}
	vm->run_size = (size_t)ret;
	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0) {
		snprintf(err, errlen, "KVM_CREATE_VM: %m");
		ret = -errno;
		goto err_kvm;
	}
	ret = vm_setup_kvm(vm, err, errlen);
	if (ret)
		goto err_vm;
	ret = set_memslots(vm, err, errlen);
	if (ret)
		goto err_vm;
	return 0;

err_vm:
	close(vm->vm_fd);
	vm->vm_fd = -1;
err_kvm:
	close(vm->kvm_fd);
	vm->kvm_fd = -1;
	return ret;
}

static void kvm_vm_destroy(struct vm *vm)
{
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	vm->vm_fd = vm->kvm_fd = -1;
}

static uint32_t kvm_vm_max_vcpus(struct vm *vm)
{
	return kvm_max_vcpus(vm->kvm_fd);
}

void kvm_set_irq(void *opaque, uint32_t gsi, int level)
{
	struct vm *vm = opaque;
	struct kvm_irq_level irq = {.irq = gsi, .level = level ? 1 : 0};
	static struct ratelimit rl = RATELIMIT_INIT(5000, 5);

	if (ioctl(vm->vm_fd, KVM_IRQ_LINE, &irq))
		log_ratelimited(&rl, LOG_WARN, "KVM_IRQ_LINE gsi %u: %m", gsi);
}


static void kvm_mem_written(struct vm *vm, uint64_t gpa, uint64_t len)
{
	(void)vm, (void)gpa, (void)len; /* KVM sees guest memory as the guest does */
}

const struct accel_ops accel_kvm_ops = {
	.name = "kvm",
	.vm_init = kvm_vm_init,
	.vm_destroy = kvm_vm_destroy,
	.max_vcpus = kvm_vm_max_vcpus,
	.vcpu_init = kvm_vcpu_init,
	.vcpu_destroy = kvm_vcpu_destroy,
	.vcpu_thread = kvm_vcpu_thread,
	.vcpu_kick = kvm_vcpu_kick,
	.vcpu_dump = kvm_vcpu_dump,
	.get_regs = kvm_get_regs,
	.set_regs = kvm_set_regs,
	.get_sregs = kvm_get_sregs,
	.set_sregs = kvm_set_sregs,
	.set_irq = kvm_set_irq,
	.irq_ops = &gsi_kvm_ops,
	.mem_written = kvm_mem_written,
};
