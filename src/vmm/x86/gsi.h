/*
 * KVM interrupt plumbing shared by the devices of one VM.
 *
 * KVM_SET_GSI_ROUTING replaces the VM's whole routing table, so one object
 * owns it: the in-kernel irqchip's default routes for GSIs 0-23 (IOAPIC
 * pins 0-23, PIC pins for 0-15, exactly what KVM installs itself when the
 * irqchip is created) are re-sent with every update, followed by one MSI
 * route per allocated GSI (24 and up) that has an address.
 *
 * The KVM calls go through struct kvm_irq_ops so unit tests can record
 * them instead of needing /dev/kvm.
 *
 * Lock order: callers' locks before gsi_router.lock; nothing is called
 * back with it held.
 */
#ifndef EMBER_VMM_X86_GSI_H
#define EMBER_VMM_X86_GSI_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct kvm_irq_routing;

/* The KVM ioctls interrupt and notification plumbing needs. 0 or -errno. */
struct kvm_irq_ops {
	int (*set_gsi_routing)(void *ctx, const struct kvm_irq_routing *table);
	int (*irqfd)(void *ctx, int fd, uint32_t gsi, bool assign);
	/* MMIO ioeventfd without datamatch; len 0 means any access length. */
	int (*ioeventfd)(void *ctx, int fd, uint64_t gpa, uint32_t len, bool assign);
	/* KVM_SIGNAL_MSI: the fallback when an irqfd could not be attached. */
	int (*signal_msi)(void *ctx, uint64_t addr, uint32_t data);
	/* KVM_IRQ_LINE (INTx). */
	void (*set_irq)(void *ctx, uint32_t gsi, int level);
};

/* The real thing; ctx is the struct vm. */
extern const struct kvm_irq_ops gsi_kvm_ops;

#define GSI_IRQCHIP_PINS 24 /* GSIs 0-23: the IOAPIC (and PIC for 0-15) */
#define GSI_MSI_MAX 1024    /* MSI GSIs this router hands out (KVM allows 4096 routes) */

struct gsi_msi_route {
	bool allocated;
	bool routed; /* has an address: part of the table sent to KVM */
	uint64_t addr;
	uint32_t data;
};

struct gsi_router {
	const struct kvm_irq_ops *ops;
	void *ctx;
	pthread_mutex_t lock;
	struct gsi_msi_route msi[GSI_MSI_MAX]; /* index: gsi - GSI_IRQCHIP_PINS */
	uint32_t nmsi;			       /* high-water mark of allocated entries */
	bool dirty;			       /* KVM's table is behind ours (a failed send) */
};

void gsi_router_init(struct gsi_router *r, const struct kvm_irq_ops *ops, void *ctx);
void gsi_router_destroy(struct gsi_router *r);

/* A free GSI for MSI (no route yet): 0, or -ENOSPC. */
int gsi_alloc_msi(struct gsi_router *r, uint32_t *gsi);
/* Releases gsi and drops its route (sent to KVM when it had one). */
void gsi_free_msi(struct gsi_router *r, uint32_t gsi);

/*
 * Points gsi at MSI (addr, data) and sends the table to KVM when that
 * changed anything. 0, -EINVAL for a GSI not allocated here, or the
 * ioctl's -errno (the old route then stays in KVM; ours is updated so a
 * later call retries).
 */
int gsi_route_msi(struct gsi_router *r, uint32_t gsi, uint64_t addr, uint32_t data);

/*
 * Fills table (room for cap entries) with the routes gsi_route_msi would
 * send: the default irqchip routes, then the MSI routes. Returns the entry
 * count or -ENOSPC. For tests and for a caller that wants to inspect it.
 */
int gsi_build_table(struct gsi_router *r, struct kvm_irq_routing *table, uint32_t cap);

#endif
