/* virtio-pci modern transport (virtio 1.2, 4.1); layout and locking in pci.h. */
#include "vmm/virtio/pci.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/log.h"
#include "vmm/dev/pci.h"
#include "vmm/event.h"
#include "vmm/virtio/device.h"
#include "vmm/vm.h"

#define VP_MAX_VECTORS (VIRTIO_MAX_QUEUES + 1)
#define VP_MSIX_ENTRY_SIZE 16
#define VP_MSIX_CTRL_MASKED 0x1
#define VP_MSIX_FLAG_ENABLE 0x8000
#define VP_MSIX_FLAG_MASKALL 0x4000
#define VP_CAP_LEN 16
#define VP_CAP_NOTIFY_LEN 20
#define VP_CAP_PCI_CFG_LEN 20
#define VP_CAP_MSIX_LEN 12
/* Offsets inside struct virtio_pci_cap. */
#define VP_CAP_BAR 4
#define VP_CAP_OFFSET 8
#define VP_CAP_LENGTH 12
#define VP_CAP_PCI_CFG_DATA 16

struct virtio_pci;

struct vp_queue {
	struct virtio_pci *vp;
	uint16_t index;
	uint16_t vector; /* irq_lock */
	int efd;	 /* kick eventfd */
	bool in_loop;
	bool ioeventfd; /* registered with KVM at notify_gpa (pci bus lock) */
	uint64_t notify_gpa;
	uint32_t len; /* of the ioeventfd: 0 (any) or 2 */
	struct event_handler h;
};

struct vp_vector {
	uint32_t addr_lo, addr_hi, data, ctrl; /* the guest's MSI-X table entry */
	uint32_t gsi;
	bool gsi_ok;
	int efd;    /* irqfd */
	bool irqfd; /* attached to gsi */
};

struct virtio_pci {
	struct pci_device pci;
	struct virtio_device *d;
	struct pci_bus *pb;
	struct event_loop *el;
	const struct kvm_irq_ops *kvm;
	void *kvm_ctx;
	int msix_cap, pcicfg_cap;
	uint16_t nvectors;
	struct ratelimit rl;
	char label[48]; /* "virtio-blk 00:02.0", for messages */

	pthread_mutex_t lock; /* the driver-visible state below; serialises device ops */
	uint32_t dfselect, gfselect;
	uint64_t offered, guest_features;
	uint8_t status; /* without NEEDS_RESET, which lives under irq_lock */
	uint16_t queue_select;
	bool activated;
	struct vp_queue q[VIRTIO_MAX_QUEUES];

	pthread_mutex_t irq_lock; /* interrupt state */
	atomic_uint generation;
	bool driver_ok, needs_reset;
	uint8_t isr;
	bool intx_level, intx_disabled;
	bool msix_enabled, msix_masked;
	uint16_t config_vector;
	uint64_t pba;
	struct vp_vector vec[VP_MAX_VECTORS];
};

static uint64_t le_get(const uint8_t *p, uint32_t n)
{
	uint64_t v = 0;

	for (uint32_t i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static void le_put(uint8_t *p, uint64_t v, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* Does [off, off+len) touch the field [field, field+width)? */
static bool touches(uint32_t off, uint32_t len, uint32_t field, uint32_t width)
{
	return off < field + width && off + len > field;
}

/* ---- interrupts (irq_lock held) ---- */

static void vp_update_intx(struct virtio_pci *vp)
{
	bool level = !vp->msix_enabled && !vp->intx_disabled && vp->isr != 0;

	if (level == vp->intx_level)
		return;
	vp->intx_level = level;
	vp->kvm->set_irq(vp->kvm_ctx, vp->pci.gsi, level);
}

static bool vp_vector_live(const struct virtio_pci *vp, uint16_t v)
{
	return vp->msix_enabled && !vp->msix_masked && !(vp->vec[v].ctrl & VP_MSIX_CTRL_MASKED);
}

/* Points the vector's GSI at its table entry and attaches the irqfd once. */
static void vp_vector_route(struct virtio_pci *vp, uint16_t v)
{
	struct vp_vector *e = &vp->vec[v];
	uint64_t addr = (uint64_t)e->addr_hi << 32 | e->addr_lo;
	int ret;

	if (!e->gsi_ok)
		return;
	ret = gsi_route_msi(&vp->pb->gsi, e->gsi, addr, e->data);
	if (ret) {
		log_ratelimited(&vp->rl, LOG_WARN, "%s: MSI-X vector %u: GSI routing: %s",
				vp->pci.name, v, strerror(-ret));
		return;
	}
	if (!e->irqfd && e->efd >= 0) {
		ret = vp->kvm->irqfd(vp->kvm_ctx, e->efd, e->gsi, true);
		/* EOPNOTSUPP: an accelerator without irqfds (soft) delivers MSIs directly. */
		if (ret && ret != -EOPNOTSUPP)
			log_ratelimited(&vp->rl, LOG_WARN,
					"%s: MSI-X vector %u: KVM_IRQFD: %s (using KVM_SIGNAL_MSI)",
					vp->pci.name, v, strerror(-ret));
		e->irqfd = ret == 0;
	}
}

static void vp_vector_fire(struct virtio_pci *vp, uint16_t v)
{
	struct vp_vector *e = &vp->vec[v];
	int ret;

	if (e->irqfd) {
		if (eventfd_write(e->efd, 1) == 0)
			return;
		log_ratelimited(&vp->rl, LOG_WARN, "%s: irqfd write: %m", vp->pci.name);
	}
	ret = vp->kvm->signal_msi(vp->kvm_ctx, (uint64_t)e->addr_hi << 32 | e->addr_lo, e->data);
	if (ret)
		log_ratelimited(&vp->rl, LOG_WARN, "%s: KVM_SIGNAL_MSI: %s", vp->pci.name,
				strerror(-ret));
}

/* An interrupt on vector v: delivered, or pending while masked. */
static void vp_msix_notify(struct virtio_pci *vp, uint16_t v)
{
	if (v >= vp->nvectors)
		return; /* NO_VECTOR: the driver asked for no interrupt */
	if (!vp_vector_live(vp, v)) {
		vp->pba |= 1ULL << v;
		return;
	}
	vp_vector_fire(vp, v);
}

/* After a mask, enable or entry change: route live vectors, deliver what is pending. */
static void vp_msix_sync(struct virtio_pci *vp, uint16_t v)
{
	if (!vp_vector_live(vp, v))
		return;
	vp_vector_route(vp, v);
	if (vp->pba & (1ULL << v)) {
		vp->pba &= ~(1ULL << v);
		vp_vector_fire(vp, v);
	}
}

static void vp_msix_sync_all(struct virtio_pci *vp)
{
	for (uint16_t v = 0; v < vp->nvectors; v++)
		vp_msix_sync(vp, v);
}

static void vp_raise_config(struct virtio_pci *vp)
{
	vp->isr |= VIRTIO_PCI_ISR_CONFIG;
	if (vp->msix_enabled)
		vp_msix_notify(vp, vp->config_vector);
	else
		vp_update_intx(vp);
}

/* ---- callbacks the device calls (any thread) ---- */

static void vp_signal_used(struct virtio_device *d, uint16_t qi)
{
	struct virtio_pci *vp = d->transport;

	if (!vp)
		return; /* unplugged */
	pthread_mutex_lock(&vp->irq_lock);
	if (vp->driver_ok && qi < d->num_queues) {
		if (vp->msix_enabled) {
			vp_msix_notify(vp, vp->q[qi].vector);
		} else {
			vp->isr |= VIRTIO_PCI_ISR_QUEUE;
			vp_update_intx(vp);
		}
	}
	pthread_mutex_unlock(&vp->irq_lock);
}

static void vp_signal_config(struct virtio_device *d)
{
	struct virtio_pci *vp = d->transport;

	if (!vp)
		return; /* unplugged */
	atomic_fetch_add(&vp->generation, 1);
	pthread_mutex_lock(&vp->irq_lock);
	if (vp->driver_ok)
		vp_raise_config(vp);
	pthread_mutex_unlock(&vp->irq_lock);
}

static void vp_set_broken(struct virtio_device *d, const char *why)
{
	struct virtio_pci *vp = d->transport;

	if (!vp)
		return; /* unplugged */
	log_ratelimited(&vp->rl, LOG_WARN, "%s: %s: device needs reset", vp->pci.name, why);
	pthread_mutex_lock(&vp->irq_lock);
	if (!vp->needs_reset) {
		vp->needs_reset = true;
		/* 2.1.2: after DRIVER_OK, NEEDS_RESET comes with a config change interrupt. */
		if (vp->driver_ok)
			vp_raise_config(vp);
	}
	pthread_mutex_unlock(&vp->irq_lock);
}

/* ---- device status and queues (vp->lock held) ---- */

static void vp_reset(struct virtio_pci *vp)
{
	struct virtio_device *d = vp->d;

	if (d->ops->reset)
		d->ops->reset(d);
	vp->dfselect = vp->gfselect = 0;
	vp->guest_features = 0;
	d->driver_features = 0;
	vp->status = 0;
	vp->queue_select = 0;
	vp->activated = false;
	for (uint16_t i = 0; i < d->num_queues; i++) {
		memset(&d->queues[i], 0, sizeof(d->queues[i]));
		d->queues[i].size = d->queue_max[i];
		d->queues[i].mem = d->mem;
	}
	pthread_mutex_lock(&vp->irq_lock);
	vp->driver_ok = false;
	vp->needs_reset = false;
	vp->config_vector = VIRTIO_MSI_NO_VECTOR;
	for (uint16_t i = 0; i < d->num_queues; i++)
		vp->q[i].vector = VIRTIO_MSI_NO_VECTOR;
	vp->isr = 0;
	vp->pba = 0; /* interrupts meant for the old driver instance */
	vp_update_intx(vp);
	pthread_mutex_unlock(&vp->irq_lock);
}

static void vp_features_apply(struct virtio_pci *vp, struct virtq *q)
{
	q->event_idx = (vp->guest_features >> VIRTIO_F_RING_EVENT_IDX) & 1;
	q->indirect = (vp->guest_features >> VIRTIO_F_RING_INDIRECT_DESC) & 1;
}

static void vp_queue_enable(struct virtio_pci *vp, uint16_t qi)
{
	struct virtio_device *d = vp->d;
	struct virtq *q = &d->queues[qi];
	char why[96];

	if (q->ready)
		return;
	if (vp->status & VIRTIO_STATUS_DRIVER_OK) {
		log_ratelimited(&vp->rl, LOG_WARN, "%s: queue %u enabled after DRIVER_OK: ignored",
				vp->pci.name, qi);
		return;
	}
	if (!q->size || (q->size & (q->size - 1)) || q->size > d->queue_max[qi]) {
		snprintf(why, sizeof(why), "queue %u: size %u (must be a power of two <= %u)", qi,
			 q->size, d->queue_max[qi]);
		vp_set_broken(d, why);
		return;
	}
	q->mem = d->mem;
	vp_features_apply(vp, q);
	if (virtq_validate(q)) {
		snprintf(why, sizeof(why), "queue %u: ring addresses 0x%llx/0x%llx/0x%llx", qi,
			 (unsigned long long)q->desc_gpa, (unsigned long long)q->avail_gpa,
			 (unsigned long long)q->used_gpa);
		vp_set_broken(d, why);
		return;
	}
	virtq_reset(q);
	q->ready = true;
}

static bool vp_features_ok(struct virtio_pci *vp)
{
	uint64_t extra = vp->guest_features & ~vp->offered;

	if (extra) {
		log_ratelimited(&vp->rl, LOG_WARN,
				"%s: driver accepted features 0x%llx that were not offered",
				vp->pci.name, (unsigned long long)extra);
		return false;
	}
	if (!((vp->guest_features >> VIRTIO_F_VERSION_1) & 1)) {
		log_ratelimited(&vp->rl, LOG_WARN,
				"%s: driver did not accept VERSION_1 (legacy drivers are not "
				"supported)",
				vp->pci.name);
		return false;
	}
	return true;
}

static void vp_activate(struct virtio_pci *vp)
{
	struct virtio_device *d = vp->d;
	bool broken;
	int ret = 0;

	d->driver_features = vp->guest_features;
	for (uint16_t i = 0; i < d->num_queues; i++)
		vp_features_apply(vp, &d->queues[i]);
	pthread_mutex_lock(&vp->irq_lock);
	vp->driver_ok = true;
	broken = vp->needs_reset;
	pthread_mutex_unlock(&vp->irq_lock);
	/* A queue the driver set up wrongly already broke the device: no activation. */
	if (broken)
		return;
	if (d->ops->activate)
		ret = d->ops->activate(d);
	if (ret) {
		char why[64];

		snprintf(why, sizeof(why), "activation failed: %s", strerror(-ret));
		vp_set_broken(d, why);
		return;
	}
	vp->activated = true;
}

static void vp_set_status(struct virtio_pci *vp, uint8_t v)
{
	uint8_t old = vp->status;
	uint8_t next = (uint8_t)(old | (v & ~VIRTIO_STATUS_NEEDS_RESET));

	if (v == 0) {
		vp_reset(vp);
		return;
	}
	if (old & ~v)
		log_ratelimited(&vp->rl, LOG_WARN,
				"%s: driver cleared status bits 0x%02x without a reset: ignored",
				vp->pci.name, old & ~v);
	if ((next & VIRTIO_STATUS_FEATURES_OK) && !(old & VIRTIO_STATUS_FEATURES_OK) &&
	    !vp_features_ok(vp))
		next &= (uint8_t)~VIRTIO_STATUS_FEATURES_OK;
	if ((next & VIRTIO_STATUS_DRIVER_OK) && !(old & VIRTIO_STATUS_DRIVER_OK) &&
	    !(next & VIRTIO_STATUS_FEATURES_OK)) {
		next &= (uint8_t)~VIRTIO_STATUS_DRIVER_OK;
		vp->status = next;
		vp_set_broken(vp->d, "DRIVER_OK without FEATURES_OK");
		return;
	}
	vp->status = next;
	if ((next & VIRTIO_STATUS_DRIVER_OK) && !(old & VIRTIO_STATUS_DRIVER_OK))
		vp_activate(vp);
}

/* ---- common configuration ---- */

static uint16_t vp_valid_vector(const struct virtio_pci *vp, uint16_t v)
{
	/* 4.1.5.1.2: a vector the device cannot use reads back as NO_VECTOR. */
	return v < vp->nvectors ? v : VIRTIO_MSI_NO_VECTOR;
}

/* The whole structure as the driver sees it now (vp->lock held). */
static void vp_common_snapshot(struct virtio_pci *vp, uint8_t *b)
{
	struct virtio_device *d = vp->d;
	uint16_t qs = vp->queue_select;

	memset(b, 0, VIRTIO_PCI_REGION);
	le_put(b + VIRTIO_PCI_COMMON_DFSELECT, vp->dfselect, 4);
	if (vp->dfselect < 2)
		le_put(b + VIRTIO_PCI_COMMON_DF, vp->offered >> (32 * vp->dfselect), 4);
	le_put(b + VIRTIO_PCI_COMMON_GFSELECT, vp->gfselect, 4);
	if (vp->gfselect < 2)
		le_put(b + VIRTIO_PCI_COMMON_GF, vp->guest_features >> (32 * vp->gfselect), 4);
	le_put(b + VIRTIO_PCI_COMMON_NUMQ, d->num_queues, 2);
	b[VIRTIO_PCI_COMMON_CFGGENERATION] = (uint8_t)atomic_load(&vp->generation);
	le_put(b + VIRTIO_PCI_COMMON_Q_SELECT, qs, 2);
	pthread_mutex_lock(&vp->irq_lock);
	le_put(b + VIRTIO_PCI_COMMON_MSIX, vp->config_vector, 2);
	b[VIRTIO_PCI_COMMON_STATUS] =
	    (uint8_t)(vp->status | (vp->needs_reset ? VIRTIO_STATUS_NEEDS_RESET : 0));
	if (qs < d->num_queues)
		le_put(b + VIRTIO_PCI_COMMON_Q_MSIX, vp->q[qs].vector, 2);
	pthread_mutex_unlock(&vp->irq_lock);
	if (qs < d->num_queues) {
		const struct virtq *q = &d->queues[qs];

		le_put(b + VIRTIO_PCI_COMMON_Q_SIZE, q->size, 2);
		le_put(b + VIRTIO_PCI_COMMON_Q_ENABLE, q->ready, 2);
		le_put(b + VIRTIO_PCI_COMMON_Q_NOFF, qs, 2);
		le_put(b + VIRTIO_PCI_COMMON_Q_DESCLO, q->desc_gpa, 8);
		le_put(b + VIRTIO_PCI_COMMON_Q_AVAILLO, q->avail_gpa, 8);
		le_put(b + VIRTIO_PCI_COMMON_Q_USEDLO, q->used_gpa, 8);
	}
}

static void vp_common_read(struct virtio_pci *vp, uint32_t off, uint8_t *data, uint32_t len)
{
	uint8_t b[VIRTIO_PCI_REGION];

	pthread_mutex_lock(&vp->lock);
	vp_common_snapshot(vp, b);
	pthread_mutex_unlock(&vp->lock);
	memcpy(data, b + off, len);
}

static void vp_set_vector(struct virtio_pci *vp, uint16_t *slot, uint16_t v)
{
	pthread_mutex_lock(&vp->irq_lock);
	*slot = vp_valid_vector(vp, v);
	pthread_mutex_unlock(&vp->irq_lock);
}

/* Queue fields are writable only while the selected queue is not enabled. */
static struct virtq *vp_writable_queue(struct virtio_pci *vp)
{
	struct virtio_device *d = vp->d;

	if (vp->queue_select >= d->num_queues || d->queues[vp->queue_select].ready)
		return NULL;
	return &d->queues[vp->queue_select];
}

/*
 * Any write (size, alignment) is merged into a snapshot, then each field it
 * touched takes its new value, in offset order.
 */
static void vp_common_write(struct virtio_pci *vp, uint32_t off, const uint8_t *data, uint32_t len)
{
	uint8_t b[VIRTIO_PCI_REGION];
	struct virtq *q;

	pthread_mutex_lock(&vp->lock);
	vp_common_snapshot(vp, b);
	memcpy(b + off, data, len);
	if (touches(off, len, VIRTIO_PCI_COMMON_DFSELECT, 4))
		vp->dfselect = (uint32_t)le_get(b + VIRTIO_PCI_COMMON_DFSELECT, 4);
	if (touches(off, len, VIRTIO_PCI_COMMON_GFSELECT, 4))
		vp->gfselect = (uint32_t)le_get(b + VIRTIO_PCI_COMMON_GFSELECT, 4);
	if (touches(off, len, VIRTIO_PCI_COMMON_GF, 4) && vp->gfselect < 2 &&
	    !(vp->status & VIRTIO_STATUS_FEATURES_OK)) {
		uint32_t shift = 32 * vp->gfselect;

		vp->guest_features = (vp->guest_features & ~(0xffffffffULL << shift)) |
				     le_get(b + VIRTIO_PCI_COMMON_GF, 4) << shift;
	}
	if (touches(off, len, VIRTIO_PCI_COMMON_MSIX, 2))
		vp_set_vector(vp, &vp->config_vector,
			      (uint16_t)le_get(b + VIRTIO_PCI_COMMON_MSIX, 2));
	if (touches(off, len, VIRTIO_PCI_COMMON_STATUS, 1))
		vp_set_status(vp, b[VIRTIO_PCI_COMMON_STATUS]);
	if (touches(off, len, VIRTIO_PCI_COMMON_Q_SELECT, 2))
		vp->queue_select = (uint16_t)le_get(b + VIRTIO_PCI_COMMON_Q_SELECT, 2);
	q = vp_writable_queue(vp);
	if (touches(off, len, VIRTIO_PCI_COMMON_Q_SIZE, 2) && q)
		q->size = (uint16_t)le_get(b + VIRTIO_PCI_COMMON_Q_SIZE, 2);
	if (touches(off, len, VIRTIO_PCI_COMMON_Q_MSIX, 2) && vp->queue_select < vp->d->num_queues)
		vp_set_vector(vp, &vp->q[vp->queue_select].vector,
			      (uint16_t)le_get(b + VIRTIO_PCI_COMMON_Q_MSIX, 2));
	if (touches(off, len, VIRTIO_PCI_COMMON_Q_DESCLO, 8) && q)
		q->desc_gpa = le_get(b + VIRTIO_PCI_COMMON_Q_DESCLO, 8);
	if (touches(off, len, VIRTIO_PCI_COMMON_Q_AVAILLO, 8) && q)
		q->avail_gpa = le_get(b + VIRTIO_PCI_COMMON_Q_AVAILLO, 8);
	if (touches(off, len, VIRTIO_PCI_COMMON_Q_USEDLO, 8) && q)
		q->used_gpa = le_get(b + VIRTIO_PCI_COMMON_Q_USEDLO, 8);
	/* Last, so that addresses written by the same access count. */
	if (touches(off, len, VIRTIO_PCI_COMMON_Q_ENABLE, 2) &&
	    vp->queue_select < vp->d->num_queues) {
		if (le_get(b + VIRTIO_PCI_COMMON_Q_ENABLE, 2) == 1)
			vp_queue_enable(vp, vp->queue_select);
		else if (vp->d->queues[vp->queue_select].ready)
			log_ratelimited(&vp->rl, LOG_WARN,
					"%s: queue %u: queue_enable cleared without a reset: "
					"ignored",
					vp->pci.name, vp->queue_select);
	}
	pthread_mutex_unlock(&vp->lock);
}

/* ---- ISR, device configuration, notifications ---- */

static void vp_isr_read(struct virtio_pci *vp, uint8_t *data, uint32_t len)
{
	memset(data, 0, len);
	pthread_mutex_lock(&vp->irq_lock);
	data[0] = vp->isr;
	vp->isr = 0;
	vp_update_intx(vp);
	pthread_mutex_unlock(&vp->irq_lock);
}

static bool vp_devcfg_ok(struct virtio_pci *vp, uint32_t off, uint32_t len, bool write)
{
	if (off < vp->d->config_size && len <= vp->d->config_size - off)
		return true;
	log_ratelimited(&vp->rl, LOG_WARN,
			"%s: device config %s of %u byte(s) at 0x%x: outside its %u bytes",
			vp->pci.name, write ? "write" : "read", len, off, vp->d->config_size);
	return false;
}

static void vp_devcfg_read(struct virtio_pci *vp, uint32_t off, uint8_t *data, uint32_t len)
{
	memset(data, 0, len);
	if (!vp_devcfg_ok(vp, off, len, false) || !vp->d->ops->config_read)
		return;
	pthread_mutex_lock(&vp->lock);
	vp->d->ops->config_read(vp->d, off, data, len);
	pthread_mutex_unlock(&vp->lock);
}

static void vp_devcfg_write(struct virtio_pci *vp, uint32_t off, const uint8_t *data, uint32_t len)
{
	if (!vp_devcfg_ok(vp, off, len, true) || !vp->d->ops->config_write)
		return;
	pthread_mutex_lock(&vp->lock);
	vp->d->ops->config_write(vp->d, off, data, len);
	pthread_mutex_unlock(&vp->lock);
}

/* Runs the device's queue_notify if the queue may be used now. */
static void vp_queue_kick(struct virtio_pci *vp, uint16_t qi)
{
	bool broken;

	pthread_mutex_lock(&vp->irq_lock);
	broken = vp->needs_reset;
	pthread_mutex_unlock(&vp->irq_lock);
	pthread_mutex_lock(&vp->lock);
	if (vp->activated && !broken && vp->d->queues[qi].ready && vp->d->ops->queue_notify)
		vp->d->ops->queue_notify(vp->d, qi);
	pthread_mutex_unlock(&vp->lock);
}

static void vp_kick_event(void *ctx, uint32_t events)
{
	struct vp_queue *q = ctx;
	eventfd_t n;

	(void)events;
	if (eventfd_read(q->efd, &n))
		return; /* EAGAIN: another wakeup consumed it */
	vp_queue_kick(q->vp, q->index);
}

/* A notify write that exited to the monitor (no ioeventfd, or another length). */
static void vp_notify_write(struct virtio_pci *vp, uint32_t off)
{
	uint32_t qi = off / VIRTIO_PCI_NOTIFY_MULTIPLIER;

	if (qi >= vp->d->num_queues) {
		log_ratelimited(&vp->rl, LOG_WARN, "%s: notify at 0x%x: no queue %u", vp->pci.name,
				off, qi);
		return;
	}
	if (!vp->el) {
		vp_queue_kick(vp, (uint16_t)qi);
		return;
	}
	if (eventfd_write(vp->q[qi].efd, 1))
		log_ratelimited(&vp->rl, LOG_WARN, "%s: kick eventfd: %m", vp->pci.name);
}

/* ---- MSI-X table and PBA ---- */

static void vp_msix_entry_get(const struct vp_vector *e, uint8_t *b)
{
	le_put(b, e->addr_lo, 4);
	le_put(b + 4, e->addr_hi, 4);
	le_put(b + 8, e->data, 4);
	le_put(b + 12, e->ctrl, 4);
}

static bool vp_msix_access_ok(struct virtio_pci *vp, uint32_t off, uint32_t len)
{
	/* Entries are 16 bytes; an access may not straddle two. */
	if (off / VP_MSIX_ENTRY_SIZE < vp->nvectors &&
	    off % VP_MSIX_ENTRY_SIZE + len <= VP_MSIX_ENTRY_SIZE)
		return true;
	log_ratelimited(&vp->rl, LOG_WARN, "%s: MSI-X table access of %u byte(s) at 0x%x ignored",
			vp->pci.name, len, off);
	return false;
}

static void vp_msix_table_read(struct virtio_pci *vp, uint32_t off, uint8_t *data, uint32_t len)
{
	uint8_t b[VP_MSIX_ENTRY_SIZE];

	memset(data, 0, len);
	if (!vp_msix_access_ok(vp, off, len))
		return;
	pthread_mutex_lock(&vp->irq_lock);
	vp_msix_entry_get(&vp->vec[off / VP_MSIX_ENTRY_SIZE], b);
	pthread_mutex_unlock(&vp->irq_lock);
	memcpy(data, b + off % VP_MSIX_ENTRY_SIZE, len);
}

static void vp_msix_table_write(struct virtio_pci *vp, uint32_t off, const uint8_t *data,
				uint32_t len)
{
	uint16_t v = (uint16_t)(off / VP_MSIX_ENTRY_SIZE);
	uint8_t b[VP_MSIX_ENTRY_SIZE];
	struct vp_vector *e;

	if (!vp_msix_access_ok(vp, off, len))
		return;
	pthread_mutex_lock(&vp->irq_lock);
	e = &vp->vec[v];
	vp_msix_entry_get(e, b);
	memcpy(b + off % VP_MSIX_ENTRY_SIZE, data, len);
	e->addr_lo = (uint32_t)le_get(b, 4);
	e->addr_hi = (uint32_t)le_get(b + 4, 4);
	e->data = (uint32_t)le_get(b + 8, 4);
	e->ctrl = (uint32_t)le_get(b + 12, 4) & VP_MSIX_CTRL_MASKED; /* other bits reserved */
	vp_msix_sync(vp, v);
	pthread_mutex_unlock(&vp->irq_lock);
}

static void vp_msix_pba_read(struct virtio_pci *vp, uint32_t off, uint8_t *data, uint32_t len)
{
	uint64_t pba;

	memset(data, 0, len);
	pthread_mutex_lock(&vp->irq_lock);
	pba = vp->pba;
	pthread_mutex_unlock(&vp->irq_lock);
	for (uint32_t i = 0; i < len; i++)
		if (off + i < sizeof(pba))
			data[i] = (uint8_t)(pba >> (8 * (off + i)));
}

/* ---- the BAR ---- */

static bool vp_bar_access_ok(struct virtio_pci *vp, uint64_t off, uint32_t len)
{
	if (len >= 1 && len <= 8 && off < VIRTIO_PCI_BAR_SIZE &&
	    off % VIRTIO_PCI_REGION + len <= VIRTIO_PCI_REGION)
		return true;
	log_ratelimited(&vp->rl, LOG_WARN, "%s: BAR access of %u byte(s) at 0x%llx ignored",
			vp->pci.name, len, (unsigned long long)off);
	return false;
}

static void vp_bar_read(void *opaque, uint64_t off, uint8_t *data, uint32_t len)
{
	struct virtio_pci *vp = opaque;
	uint32_t r;

	if (!vp_bar_access_ok(vp, off, len)) {
		memset(data, 0xff, len);
		return;
	}
	r = (uint32_t)(off % VIRTIO_PCI_REGION);
	switch (off - r) {
	case VIRTIO_PCI_COMMON_OFF:
		vp_common_read(vp, r, data, len);
		break;
	case VIRTIO_PCI_ISR_OFF:
		vp_isr_read(vp, data, len);
		break;
	case VIRTIO_PCI_DEVICE_OFF:
		vp_devcfg_read(vp, r, data, len);
		break;
	case VIRTIO_PCI_MSIX_TABLE_OFF:
		vp_msix_table_read(vp, r, data, len);
		break;
	case VIRTIO_PCI_MSIX_PBA_OFF:
		vp_msix_pba_read(vp, r, data, len);
		break;
	default: /* notify area, unused space */
		memset(data, 0, len);
	}
}

static void vp_bar_write(void *opaque, uint64_t off, const uint8_t *data, uint32_t len)
{
	struct virtio_pci *vp = opaque;
	uint32_t r;

	if (!vp_bar_access_ok(vp, off, len))
		return;
	r = (uint32_t)(off % VIRTIO_PCI_REGION);
	switch (off - r) {
	case VIRTIO_PCI_COMMON_OFF:
		vp_common_write(vp, r, data, len);
		break;
	case VIRTIO_PCI_DEVICE_OFF:
		vp_devcfg_write(vp, r, data, len);
		break;
	case VIRTIO_PCI_NOTIFY_OFF:
		vp_notify_write(vp, r);
		break;
	case VIRTIO_PCI_MSIX_TABLE_OFF:
		vp_msix_table_write(vp, r, data, len);
		break;
	default: /* ISR and PBA are read-only */
		break;
	}
}

static const struct bus_dev_ops vp_bar_ops = {vp_bar_read, vp_bar_write};

/* ---- PCI configuration hooks (pci bus lock held) ---- */

/* VIRTIO_PCI_CAP_PCI_CFG: a BAR access described by the capability's fields. */
static bool vp_pcicfg_target(struct virtio_pci *vp, uint32_t *off, uint32_t *len)
{
	const struct pci_device *dev = &vp->pci;
	uint32_t c = (uint32_t)vp->pcicfg_cap;

	*off = pci_cfg_get32(dev, c + VP_CAP_OFFSET);
	*len = pci_cfg_get32(dev, c + VP_CAP_LENGTH);
	if (dev->cfg[c + VP_CAP_BAR] == VIRTIO_PCI_BAR && (*len == 1 || *len == 2 || *len == 4) &&
	    *off % *len == 0 && *off < VIRTIO_PCI_BAR_SIZE)
		return true;
	if (*len == 0)
		return false; /* not set up: e.g. lspci dumping configuration space */
	log_ratelimited(&vp->rl, LOG_WARN,
			"%s: PCI cfg access capability: bar %u offset 0x%x length %u ignored",
			vp->pci.name, dev->cfg[c + VP_CAP_BAR], *off, *len);
	return false;
}

static void vp_config_read(struct pci_device *dev, uint32_t off, uint8_t *data, uint32_t len)
{
	struct virtio_pci *vp = dev->opaque;
	uint32_t data_off = (uint32_t)vp->pcicfg_cap + VP_CAP_PCI_CFG_DATA;
	uint32_t boff, blen;

	if (touches(off, len, PCI_STATUS, 1)) {
		/* 4.1.4.5.1: Interrupt Status mirrors the ISR while MSI-X is off. */
		pthread_mutex_lock(&vp->irq_lock);
		if (!vp->msix_enabled && vp->isr)
			data[PCI_STATUS - off] |= PCI_STATUS_INTERRUPT;
		pthread_mutex_unlock(&vp->irq_lock);
	}
	if (touches(off, len, data_off, 4) && vp_pcicfg_target(vp, &boff, &blen)) {
		uint8_t buf[4] = {0};

		vp_bar_read(vp, boff, buf, blen);
		memcpy(&dev->cfg[data_off], buf, 4);
		for (uint32_t i = 0; i < len; i++)
			if (off + i >= data_off && off + i < data_off + 4)
				data[i] = buf[off + i - data_off];
	}
}

static void vp_config_write(struct pci_device *dev, uint32_t off, const uint8_t *data, uint32_t len)
{
	struct virtio_pci *vp = dev->opaque;
	uint32_t ctrl_off = (uint32_t)vp->msix_cap + 2;
	uint32_t data_off = (uint32_t)vp->pcicfg_cap + VP_CAP_PCI_CFG_DATA;
	uint32_t boff, blen;

	(void)data;
	if (touches(off, len, PCI_COMMAND, 2) || touches(off, len, ctrl_off, 2)) {
		uint16_t cmd = pci_cfg_get16(dev, PCI_COMMAND);
		uint16_t ctrl = pci_cfg_get16(dev, ctrl_off);

		pthread_mutex_lock(&vp->irq_lock);
		vp->intx_disabled = cmd & PCI_COMMAND_INTX_DISABLE;
		vp->msix_enabled = ctrl & VP_MSIX_FLAG_ENABLE;
		vp->msix_masked = ctrl & VP_MSIX_FLAG_MASKALL;
		vp_msix_sync_all(vp);
		vp_update_intx(vp);
		pthread_mutex_unlock(&vp->irq_lock);
	}
	if (touches(off, len, data_off, 4) && vp_pcicfg_target(vp, &boff, &blen))
		vp_bar_write(vp, boff, &dev->cfg[data_off], blen);
}

static void vp_ioeventfds_set(struct virtio_pci *vp, bool mapped, uint64_t base)
{
	for (uint16_t i = 0; i < vp->d->num_queues; i++) {
		struct vp_queue *q = &vp->q[i];
		int ret;

		if (q->ioeventfd) {
			ret = vp->kvm->ioeventfd(vp->kvm_ctx, q->efd, q->notify_gpa, q->len, false);
			if (ret)
				log_warn("%s: queue %u: removing ioeventfd: %s", vp->pci.name, i,
					 strerror(-ret));
			q->ioeventfd = false;
		}
		/* Without an event thread nobody would read the eventfd: kicks exit. */
		if (!mapped || !vp->el)
			continue;
		q->notify_gpa = base + VIRTIO_PCI_NOTIFY_OFF + VIRTIO_PCI_NOTIFY_MULTIPLIER * i;
		/* Any length first (fast MMIO path); Linux writes 16 bits otherwise. */
		q->len = 0;
		ret = vp->kvm->ioeventfd(vp->kvm_ctx, q->efd, q->notify_gpa, 0, true);
		if (ret) {
			q->len = 2;
			ret = vp->kvm->ioeventfd(vp->kvm_ctx, q->efd, q->notify_gpa, 2, true);
		}
		if (ret && ret != -EOPNOTSUPP)
			log_ratelimited(&vp->rl, LOG_WARN,
					"%s: queue %u: KVM_IOEVENTFD: %s (kicks will exit)",
					vp->pci.name, i, strerror(-ret));
		q->ioeventfd = ret == 0;
	}
}

static void vp_bar_remap(struct pci_device *dev, int bar, bool mapped, uint64_t addr)
{
	struct virtio_pci *vp = dev->opaque;

	if (bar == VIRTIO_PCI_BAR)
		vp_ioeventfds_set(vp, mapped, addr);
}

static const struct pci_device_ops vp_pci_ops = {
    .config_read = vp_config_read,
    .config_write = vp_config_write,
    .bar_remap = vp_bar_remap,
};

/* ---- setup and teardown ---- */

static void vp_ids(uint16_t type, struct pci_ids *ids)
{
	*ids = (struct pci_ids){
	    .vendor = VIRTIO_PCI_VENDOR,
	    .device = (uint16_t)(VIRTIO_PCI_DEVICE_BASE + type),
	    .subsys_vendor = VIRTIO_PCI_VENDOR,
	    .subsys_id = VIRTIO_PCI_SUBSYS_ID,
	    .revision = VIRTIO_PCI_REVISION,
	    .class_code = 0xff, /* unclassified, like QEMU's virtio-rng/balloon/vsock */
	};
	if (type == VIRTIO_ID_NET) {
		ids->class_code = 0x02; /* network, ethernet */
	} else if (type == VIRTIO_ID_BLOCK) {
		ids->class_code = 0x01; /* mass storage, SCSI (QEMU's choice) */
		ids->subclass = 0x00;
	}
}

static int vp_add_virtio_cap(struct virtio_pci *vp, uint8_t type, uint32_t off, uint32_t len,
			     uint8_t cap_len)
{
	uint8_t cap[VP_CAP_NOTIFY_LEN] = {PCI_CAP_ID_VNDR, 0, cap_len, type, VIRTIO_PCI_BAR};

	le_put(cap + VP_CAP_OFFSET, off, 4);
	le_put(cap + VP_CAP_LENGTH, len, 4);
	if (type == VIRTIO_PCI_CAP_NOTIFY_CFG)
		le_put(cap + VP_CAP_LEN, VIRTIO_PCI_NOTIFY_MULTIPLIER, 4);
	return pci_device_add_cap(&vp->pci, cap, cap_len);
}

static int vp_add_caps(struct virtio_pci *vp)
{
	static const uint8_t ones[4] = {0xff, 0xff, 0xff, 0xff};
	static const uint8_t msix_wmask = (VP_MSIX_FLAG_ENABLE | VP_MSIX_FLAG_MASKALL) >> 8;
	uint8_t msix[VP_CAP_MSIX_LEN] = {PCI_CAP_ID_MSIX};
	int ret;

	le_put(msix + 2, vp->nvectors - 1U, 2); /* table size, N - 1 */
	le_put(msix + 4, VIRTIO_PCI_MSIX_TABLE_OFF | VIRTIO_PCI_BAR, 4);
	le_put(msix + 8, VIRTIO_PCI_MSIX_PBA_OFF | VIRTIO_PCI_BAR, 4);
	vp->msix_cap = pci_device_add_cap(&vp->pci, msix, sizeof(msix));
	if (vp->msix_cap < 0)
		return vp->msix_cap;
	pci_device_set_wmask(&vp->pci, (uint32_t)vp->msix_cap + 3, &msix_wmask, 1);

	ret = vp_add_virtio_cap(vp, VIRTIO_PCI_CAP_COMMON_CFG, VIRTIO_PCI_COMMON_OFF,
				VIRTIO_PCI_COMMON_LEN, VP_CAP_LEN);
	if (ret >= 0)
		ret = vp_add_virtio_cap(vp, VIRTIO_PCI_CAP_NOTIFY_CFG, VIRTIO_PCI_NOTIFY_OFF,
					VIRTIO_PCI_NOTIFY_MULTIPLIER * vp->d->num_queues,
					VP_CAP_NOTIFY_LEN);
	if (ret >= 0)
		ret = vp_add_virtio_cap(vp, VIRTIO_PCI_CAP_ISR_CFG, VIRTIO_PCI_ISR_OFF, 1,
					VP_CAP_LEN);
	if (ret >= 0 && vp->d->config_size)
		ret = vp_add_virtio_cap(vp, VIRTIO_PCI_CAP_DEVICE_CFG, VIRTIO_PCI_DEVICE_OFF,
					vp->d->config_size, VP_CAP_LEN);
	if (ret >= 0)
		ret = vp_add_virtio_cap(vp, VIRTIO_PCI_CAP_PCI_CFG, 0, 0, VP_CAP_PCI_CFG_LEN);
	if (ret < 0)
		return ret;
	/* bar, offset, length and pci_cfg_data are the driver's to write (4.1.4.9). */
	vp->pcicfg_cap = ret;
	pci_device_set_wmask(&vp->pci, (uint32_t)ret + VP_CAP_BAR, ones, 1);
	pci_device_set_wmask(&vp->pci, (uint32_t)ret + VP_CAP_OFFSET, ones, 4);
	pci_device_set_wmask(&vp->pci, (uint32_t)ret + VP_CAP_LENGTH, ones, 4);
	pci_device_set_wmask(&vp->pci, (uint32_t)ret + VP_CAP_PCI_CFG_DATA, ones, 4);
	return 0;
}

static int vp_check_device(const struct virtio_device *d, char *err, size_t errlen)
{
	const char *name = d->ops && d->ops->name ? d->ops->name : "virtio";

	if (!d->ops) {
		snprintf(err, errlen, "virtio-pci: %s: no device ops", name);
		return -EINVAL;
	}
	if (d->num_queues < 1 || d->num_queues > VIRTIO_MAX_QUEUES) {
		snprintf(err, errlen, "virtio-pci: %s: %u queues (must be 1..%d)", name,
			 d->num_queues, VIRTIO_MAX_QUEUES);
		return -EINVAL;
	}
	for (uint16_t i = 0; i < d->num_queues; i++) {
		uint32_t m = d->queue_max[i];

		if (m == 0 || m > VIRTQ_MAX_SIZE || (m & (m - 1))) {
			snprintf(err, errlen,
				 "virtio-pci: %s: queue %u: maximum size %u (must be a power of "
				 "two <= %d)",
				 name, i, m, VIRTQ_MAX_SIZE);
			return -EINVAL;
		}
	}
	if (d->config_size > VIRTIO_PCI_REGION) {
		snprintf(err, errlen, "virtio-pci: %s: config space of %u bytes (at most %d)", name,
			 d->config_size, VIRTIO_PCI_REGION);
		return -EINVAL;
	}
	return 0;
}

static void vp_free(struct virtio_pci *vp)
{
	for (int i = 0; i < VIRTIO_MAX_QUEUES; i++) {
		if (vp->q[i].in_loop)
			event_loop_del_sync(vp->el, vp->q[i].efd);
		if (vp->q[i].efd >= 0)
			close(vp->q[i].efd);
	}
	for (int v = 0; v < VP_MAX_VECTORS; v++) {
		struct vp_vector *e = &vp->vec[v];

		if (e->irqfd)
			vp->kvm->irqfd(vp->kvm_ctx, e->efd, e->gsi, false);
		if (e->efd >= 0)
			close(e->efd);
		if (e->gsi_ok)
			gsi_free_msi(&vp->pb->gsi, e->gsi);
	}
	pthread_mutex_destroy(&vp->irq_lock);
	pthread_mutex_destroy(&vp->lock);
	free(vp);
}

static struct virtio_pci *vp_alloc(struct pci_bus *pb, struct event_loop *el,
				   struct virtio_device *d)
{
	struct virtio_pci *vp = calloc(1, sizeof(*vp));

	if (!vp)
		return NULL;
	vp->d = d;
	vp->pb = pb;
	vp->el = el;
	vp->kvm = pb->kvm;
	vp->kvm_ctx = pb->kvm_ctx;
	vp->nvectors = (uint16_t)(d->num_queues + 1);
	vp->rl = (struct ratelimit)RATELIMIT_INIT(5000, 10);
	vp->offered = d->device_features | 1ULL << VIRTIO_F_VERSION_1 |
		      1ULL << VIRTIO_F_RING_INDIRECT_DESC | 1ULL << VIRTIO_F_RING_EVENT_IDX;
	pthread_mutex_init(&vp->lock, NULL);
	pthread_mutex_init(&vp->irq_lock, NULL);
	for (int i = 0; i < VIRTIO_MAX_QUEUES; i++)
		vp->q[i] = (struct vp_queue){.vp = vp, .index = (uint16_t)i, .efd = -1};
	for (int v = 0; v < VP_MAX_VECTORS; v++)
		vp->vec[v] = (struct vp_vector){.efd = -1, .ctrl = VP_MSIX_CTRL_MASKED};
	return vp;
}

/* Eventfds, GSIs and event-loop handlers; 0 or -errno with err filled. */
static int vp_setup_fds(struct virtio_pci *vp, char *err, size_t errlen)
{
	const char *name = vp->pci.name;
	int ret;

	for (uint16_t i = 0; i < vp->d->num_queues; i++) {
		struct vp_queue *q = &vp->q[i];

		q->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (q->efd < 0)
			goto err_errno;
		q->h = (struct event_handler){vp_kick_event, q};
		if (vp->el) {
			ret = event_loop_add(vp->el, q->efd, EPOLLIN, &q->h);
			if (ret) {
				snprintf(err, errlen, "virtio-pci: %s: event loop: %s", name,
					 strerror(-ret));
				return ret;
			}
			q->in_loop = true;
		}
	}
	for (uint16_t v = 0; v < vp->nvectors; v++) {
		struct vp_vector *e = &vp->vec[v];

		e->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (e->efd < 0)
			goto err_errno;
		ret = gsi_alloc_msi(&vp->pb->gsi, &e->gsi);
		if (ret) {
			snprintf(err, errlen, "virtio-pci: %s: no free GSI for MSI-X", name);
			return ret;
		}
		e->gsi_ok = true;
	}
	return 0;

err_errno:
	ret = -errno;
	snprintf(err, errlen, "virtio-pci: %s: eventfd: %s", name, strerror(-ret));
	return ret;
}

static void vp_init_state(struct virtio_pci *vp)
{
	struct virtio_device *d = vp->d;

	vp->config_vector = VIRTIO_MSI_NO_VECTOR;
	for (uint16_t i = 0; i < d->num_queues; i++) {
		vp->q[i].vector = VIRTIO_MSI_NO_VECTOR;
		memset(&d->queues[i], 0, sizeof(d->queues[i]));
		d->queues[i].size = d->queue_max[i];
		d->queues[i].mem = d->mem;
	}
}

int virtio_pci_add(struct pci_bus *pb, struct vm *vm, struct event_loop *el,
		   struct virtio_device *d, char *err, size_t errlen)
{
	struct virtio_pci *vp;
	struct pci_ids ids;
	int ret;

	ret = vp_check_device(d, err, errlen);
	if (ret)
		return ret;
	vp = vp_alloc(pb, el, d);
	if (!vp) {
		snprintf(err, errlen, "virtio-pci: %s: out of memory", d->ops->name);
		return -ENOMEM;
	}
	vp_ids(d->ops->type, &ids);
	pci_device_init(&vp->pci, d->ops->name ? d->ops->name : "virtio", &ids, &vp_pci_ops, vp);
	ret = pci_device_set_bar(&vp->pci, VIRTIO_PCI_BAR, PCI_BAR_MEM32, false,
				 VIRTIO_PCI_BAR_SIZE, &vp_bar_ops, vp);
	if (!ret)
		ret = vp_add_caps(vp);
	if (ret) {
		snprintf(err, errlen, "virtio-pci: %s: PCI function setup: %s", vp->pci.name,
			 strerror(-ret));
		goto err_free;
	}
	d->mem = &vm->mem;
	d->events = el;
	d->transport = vp;
	d->signal_used = vp_signal_used;
	d->signal_config = vp_signal_config;
	d->set_broken = vp_set_broken;
	d->driver_features = 0;
	vp_init_state(vp);
	ret = vp_setup_fds(vp, err, errlen);
	if (ret)
		goto err_free;
	ret = pci_bus_add(pb, &vp->pci);
	if (ret) {
		snprintf(err, errlen, "virtio-pci: %s: %s", vp->pci.name,
			 ret == -ENOSPC ? "no free PCI slot or BAR space" : strerror(-ret));
		goto err_free;
	}
	/* Several devices share a type: messages name the slot too. */
	snprintf(vp->label, sizeof(vp->label), "%s 00:%02x.0", vp->pci.name, vp->pci.slot);
	vp->pci.name = vp->label;
	return 0;

err_free:
	d->transport = NULL;
	vp_free(vp);
	return ret;
}

void virtio_pci_remove(struct virtio_device *d)
{
	struct virtio_pci *vp = d->transport;

	if (!vp)
		return;
	pci_bus_remove(vp->pb, &vp->pci); /* stops decoding: ioeventfds go */
	pthread_mutex_lock(&vp->irq_lock);
	vp->isr = 0;
	vp_update_intx(vp);
	pthread_mutex_unlock(&vp->irq_lock);
	d->transport = NULL;
	vp_free(vp);
}
