#include "vmm/x86/gsi.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "core/log.h"
#include "vmm/vm.h"

#define GSI_PIC_PINS 16
#define GSI_DEFAULT_ROUTES (GSI_IRQCHIP_PINS + GSI_PIC_PINS)

static int kvm_set_gsi_routing(void *ctx, const struct kvm_irq_routing *table)
{
	struct vm *vm = ctx;

	return ioctl(vm->vm_fd, KVM_SET_GSI_ROUTING, table) ? -errno : 0;
}

static int kvm_irqfd(void *ctx, int fd, uint32_t gsi, bool assign)
{
	struct vm *vm = ctx;
	struct kvm_irqfd irqfd = {
	    .fd = (uint32_t)fd,
	    .gsi = gsi,
	    .flags = assign ? 0 : KVM_IRQFD_FLAG_DEASSIGN,
	};

	return ioctl(vm->vm_fd, KVM_IRQFD, &irqfd) ? -errno : 0;
}

static int kvm_ioeventfd(void *ctx, int fd, uint64_t gpa, uint32_t len, bool assign)
{
	struct vm *vm = ctx;
	struct kvm_ioeventfd io = {
	    .addr = gpa,
	    .len = len,
	    .fd = fd,
	    .flags = assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN,
	};

	return ioctl(vm->vm_fd, KVM_IOEVENTFD, &io) ? -errno : 0;
}

static int kvm_signal_msi(void *ctx, uint64_t addr, uint32_t data)
{
	struct vm *vm = ctx;
	struct kvm_msi msi = {
	    .address_lo = (uint32_t)addr,
	    .address_hi = (uint32_t)(addr >> 32),
	    .data = data,
	};

	/* 0: the guest blocked it (e.g. masked in its APIC); >0: delivered. */
	return ioctl(vm->vm_fd, KVM_SIGNAL_MSI, &msi) < 0 ? -errno : 0;
}

const struct kvm_irq_ops gsi_kvm_ops = {
    .set_gsi_routing = kvm_set_gsi_routing,
    .irqfd = kvm_irqfd,
    .ioeventfd = kvm_ioeventfd,
    .signal_msi = kvm_signal_msi,
    .set_irq = vm_set_irq,
};

void gsi_router_init(struct gsi_router *r, const struct kvm_irq_ops *ops, void *ctx)
{
	memset(r, 0, sizeof(*r));
	r->ops = ops;
	r->ctx = ctx;
	pthread_mutex_init(&r->lock, NULL);
}

void gsi_router_destroy(struct gsi_router *r)
{
	pthread_mutex_destroy(&r->lock);
}

int gsi_alloc_msi(struct gsi_router *r, uint32_t *gsi)
{
	int ret = -ENOSPC;

	pthread_mutex_lock(&r->lock);
	for (uint32_t i = 0; i < GSI_MSI_MAX; i++) {
		if (r->msi[i].allocated)
			continue;
		r->msi[i] = (struct gsi_msi_route){.allocated = true};
		if (i >= r->nmsi)
			r->nmsi = i + 1;
		*gsi = GSI_IRQCHIP_PINS + i;
		ret = 0;
		break;
	}
	pthread_mutex_unlock(&r->lock);
	return ret;
}

static struct gsi_msi_route *gsi_msi(struct gsi_router *r, uint32_t gsi)
{
	if (gsi < GSI_IRQCHIP_PINS || gsi - GSI_IRQCHIP_PINS >= GSI_MSI_MAX)
		return NULL;
	if (!r->msi[gsi - GSI_IRQCHIP_PINS].allocated)
		return NULL;
	return &r->msi[gsi - GSI_IRQCHIP_PINS];
}

static uint32_t gsi_count_routes(const struct gsi_router *r)
{
	uint32_t n = GSI_DEFAULT_ROUTES;

	for (uint32_t i = 0; i < r->nmsi; i++)
		n += r->msi[i].routed;
	return n;
}

/* Caller holds r->lock. */
static int gsi_fill(const struct gsi_router *r, struct kvm_irq_routing *t, uint32_t cap)
{
	struct kvm_irq_routing_entry *e = t->entries;
	uint32_t n = 0;

	if (gsi_count_routes(r) > cap)
		return -ENOSPC;
	memset(t, 0, sizeof(*t));
	/* KVM's own defaults (virt/kvm/irqchip default_routing), in its order. */
	for (uint32_t g = 0; g < GSI_IRQCHIP_PINS; g++) {
		memset(&e[n], 0, sizeof(e[n]));
		e[n].gsi = g;
		e[n].type = KVM_IRQ_ROUTING_IRQCHIP;
		e[n].u.irqchip.irqchip = KVM_IRQCHIP_IOAPIC;
		e[n].u.irqchip.pin = g;
		n++;
		if (g >= GSI_PIC_PINS)
			continue;
		memset(&e[n], 0, sizeof(e[n]));
		e[n].gsi = g;
		e[n].type = KVM_IRQ_ROUTING_IRQCHIP;
		e[n].u.irqchip.irqchip = g < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE;
		e[n].u.irqchip.pin = g % 8;
		n++;
	}
	for (uint32_t i = 0; i < r->nmsi; i++) {
		const struct gsi_msi_route *m = &r->msi[i];

		if (!m->routed)
			continue;
		memset(&e[n], 0, sizeof(e[n]));
		e[n].gsi = GSI_IRQCHIP_PINS + i;
		e[n].type = KVM_IRQ_ROUTING_MSI;
		e[n].u.msi.address_lo = (uint32_t)m->addr;
		e[n].u.msi.address_hi = (uint32_t)(m->addr >> 32);
		e[n].u.msi.data = m->data;
		n++;
	}
	t->nr = n;
	return (int)n;
}

int gsi_build_table(struct gsi_router *r, struct kvm_irq_routing *table, uint32_t cap)
{
	int n;

	pthread_mutex_lock(&r->lock);
	n = gsi_fill(r, table, cap);
	pthread_mutex_unlock(&r->lock);
	return n;
}

/* Caller holds r->lock. */
static int gsi_commit(struct gsi_router *r)
{
	uint32_t cap = gsi_count_routes(r);
	struct kvm_irq_routing *t;
	int ret;

	t = calloc(1, sizeof(*t) + cap * sizeof(t->entries[0]));
	if (!t)
		return -ENOMEM;
	ret = gsi_fill(r, t, cap);
	if (ret >= 0)
		ret = r->ops->set_gsi_routing(r->ctx, t);
	free(t);
	r->dirty = ret != 0;
	return ret;
}

int gsi_route_msi(struct gsi_router *r, uint32_t gsi, uint64_t addr, uint32_t data)
{
	struct gsi_msi_route *m;
	int ret = 0;

	pthread_mutex_lock(&r->lock);
	m = gsi_msi(r, gsi);
	if (!m) {
		ret = -EINVAL;
	} else if (r->dirty || !m->routed || m->addr != addr || m->data != data) {
		m->routed = true;
		m->addr = addr;
		m->data = data;
		ret = gsi_commit(r);
	}
	pthread_mutex_unlock(&r->lock);
	return ret;
}

void gsi_free_msi(struct gsi_router *r, uint32_t gsi)
{
	struct gsi_msi_route *m;
	bool had_route;
	int ret = 0;

	pthread_mutex_lock(&r->lock);
	m = gsi_msi(r, gsi);
	if (m) {
		had_route = m->routed;
		*m = (struct gsi_msi_route){0};
		while (r->nmsi && !r->msi[r->nmsi - 1].allocated)
			r->nmsi--;
		if (had_route)
			ret = gsi_commit(r);
	}
	pthread_mutex_unlock(&r->lock);
	if (ret)
		log_warn("gsi: dropping the route of GSI %u: %s", gsi, strerror(-ret));
}
