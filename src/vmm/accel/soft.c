/* Accel soft: the VM side (irqchip, the shared code map, interrupt plumbing). */
#include "vmm/accel/soft.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "vmm/irqchip/irqchip.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"
#include "vmm/x86/cpuid.h"
#include "vmm/x86/gsi.h"

static uint64_t monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t soft_now_ns(const struct soft_vm *s)
{
	return monotonic_ns() - s->t0_ns;
}

static void soft_dma_written(void *ctx, uint64_t gpa, uint64_t len)
{
	cpu_code_written(ctx, gpa, len);
}

static int soft_vm_init(struct vm *vm, char *err, size_t errlen)
{
	struct soft_vm *s = calloc(1, sizeof(*s));

	if (!s) {
		snprintf(err, errlen, "software CPU: out of memory");
		return -ENOMEM;
	}
	s->vm = vm;
	s->t0_ns = monotonic_ns();
	s->code_map = cpu_code_map_new(&vm->mem);
	s->cpuid = cpuid_soft_model();
	if (!s->code_map || !s->cpuid) {
		cpu_code_map_free(s->code_map);
		free(s->cpuid);
		free(s);
		snprintf(err, errlen, "software CPU: out of memory");
		return -ENOMEM;
	}
	vm->soft = s;
	vm->mem.dma_written = soft_dma_written;
	vm->mem.dma_ctx = s->code_map;
	return 0;
}

static void soft_vm_destroy(struct vm *vm)
{
	struct soft_vm *s = vm->soft;

	if (!s)
		return;
	if (s->chip)
		irqchip_destroy(s->chip);
	cpu_code_map_free(s->code_map);
	free(s->cpuid);
	free(s);
	vm->soft = NULL;
}

static uint32_t soft_max_vcpus(struct vm *vm)
{
	(void)vm;
	return 254; /* xAPIC IDs */
}

static void soft_set_irq(void *opaque, uint32_t gsi, int level)
{
	struct vm *vm = opaque;

	if (vm->soft && vm->soft->chip)
		irqchip_set_irq(vm->soft->chip, gsi, level);
}

static void soft_mem_written(struct vm *vm, uint64_t gpa, uint64_t len)
{
	if (vm->soft)
		cpu_code_written(vm->soft->code_map, gpa, len);
}

/* PCI interrupt plumbing: no routing table, no irqfd or ioeventfd; MSIs go
 * straight to the local APICs and kicks arrive as MMIO writes. */
static int soft_set_gsi_routing(void *ctx, const struct kvm_irq_routing *table)
{
	(void)ctx, (void)table;
	return 0;
}

static int soft_irqfd(void *ctx, int fd, uint32_t gsi, bool assign)
{
	(void)ctx, (void)fd, (void)gsi, (void)assign;
	return -EOPNOTSUPP;
}

static int soft_ioeventfd(void *ctx, int fd, uint64_t gpa, uint32_t len, bool assign)
{
	(void)ctx, (void)fd, (void)gpa, (void)len, (void)assign;
	return -EOPNOTSUPP;
}

static int soft_signal_msi(void *ctx, uint64_t addr, uint32_t data)
{
	struct vm *vm = ctx;

	if (!vm->soft || !vm->soft->chip)
		return -ENODEV;
	irqchip_msi(vm->soft->chip, addr, data);
	return 0;
}

static const struct kvm_irq_ops soft_irq_ops = {
	.set_gsi_routing = soft_set_gsi_routing,
	.irqfd = soft_irqfd,
	.ioeventfd = soft_ioeventfd,
	.signal_msi = soft_signal_msi,
	.set_irq = soft_set_irq,
};

/* The irqchip names vCPUs by index: the vCPU, or NULL if it has no soft state. */
static struct vcpu *soft_vcpu_at(struct vm *vm, uint32_t cpu)
{
	return cpu < vm->ncpus && vm->vcpus[cpu].soft ? &vm->vcpus[cpu] : NULL;
}

void soft_host_kick(void *opaque, uint32_t cpu)
{
	struct vcpu *v = soft_vcpu_at(opaque, cpu);

	if (v)
		soft_vcpu_wake(v, CPU_EV_INTR);
}

void soft_host_init(void *opaque, uint32_t cpu)
{
	struct vcpu *v = soft_vcpu_at(opaque, cpu);

	if (!v)
		return;
	/* The vCPU's own thread resets it (take_init_sipi): only make it stop. */
	atomic_store(&v->soft->sipi_vector, -1); /* a SIPI counts only after INIT */
	atomic_store(&v->soft->init_pending, true);
	soft_vcpu_wake(v, CPU_EV_EXIT);
}

void soft_host_sipi(void *opaque, uint32_t cpu, uint8_t vector)
{
	struct vcpu *v = soft_vcpu_at(opaque, cpu);

	if (!v)
		return;
	atomic_store(&v->soft->sipi_vector, vector);
	soft_vcpu_wake(v, CPU_EV_EXIT);
}

void soft_host_nmi(void *opaque, uint32_t cpu)
{
	struct vcpu *v = soft_vcpu_at(opaque, cpu);

	if (v)
		soft_vcpu_wake(v, CPU_EV_NMI);
}

const struct accel_ops accel_soft_ops = {
	.name = "soft",
	.vm_init = soft_vm_init,
	.vm_destroy = soft_vm_destroy,
	.max_vcpus = soft_max_vcpus,
	.vcpu_init = soft_vcpu_init,
	.vcpu_destroy = soft_vcpu_destroy,
	.vcpu_thread = soft_vcpu_thread,
	.vcpu_kick = soft_vcpu_kick,
	.vcpu_dump = soft_vcpu_dump,
	.get_regs = soft_get_regs,
	.set_regs = soft_set_regs,
	.get_sregs = soft_get_sregs,
	.set_sregs = soft_set_sregs,
	.set_irq = soft_set_irq,
	.irq_ops = &soft_irq_ops,
	.mem_written = soft_mem_written,
};
