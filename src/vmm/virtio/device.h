/*
 * A virtio device as its transport (virtio-pci) sees it. The transport owns
 * feature negotiation, device status, queue configuration and interrupts;
 * a device supplies its type, feature bits, config space and queue work.
 *
 * Threads: config_read/config_write come from vCPU threads; activate, reset
 * and notify from the event thread or a vCPU thread, never at the same time
 * as each other for one device (the transport serialises them with its
 * lock, which devices must not take). queue_notify runs on the event thread.
 */
#ifndef EMBER_VMM_VIRTIO_DEVICE_H
#define EMBER_VMM_VIRTIO_DEVICE_H

#include <stdbool.h>
#include <stdint.h>

#include "vmm/virtio/queue.h"

/* Device types (virtio 1.2, 5). */
#define VIRTIO_ID_NET 1
#define VIRTIO_ID_BLOCK 2
#define VIRTIO_ID_RNG 4
#define VIRTIO_ID_BALLOON 5
#define VIRTIO_ID_VSOCK 19

/* Transport feature bits the transport itself offers. */
#define VIRTIO_F_RING_INDIRECT_DESC 28
#define VIRTIO_F_RING_EVENT_IDX 29
#define VIRTIO_F_VERSION_1 32

#define VIRTIO_MAX_QUEUES 8

struct virtio_device;
struct event_loop;

struct virtio_device_ops {
	const char *name; /* for messages: "virtio-blk" */
	uint16_t type;	  /* VIRTIO_ID_* */
	/* Reads the device's config space (offset checked by the transport). */
	void (*config_read)(struct virtio_device *d, uint32_t off, uint8_t *data, uint32_t len);
	/* Writes to config space; NULL when it is read-only. */
	void (*config_write)(struct virtio_device *d, uint32_t off, const uint8_t *data,
			     uint32_t len);
	/* DRIVER_OK: queues and features are final. 0, or -errno to go NEEDS_RESET. */
	int (*activate)(struct virtio_device *d);
	/* The driver reset the device: stop using the queues, drop in-flight work. */
	void (*reset)(struct virtio_device *d);
	/* The driver kicked queue `q` (event thread). */
	void (*queue_notify)(struct virtio_device *d, uint16_t q);
};

struct virtio_device {
	const struct virtio_device_ops *ops;
	void *priv; /* the device's own state */

	/* Filled by the device before it is added to a transport. */
	uint64_t device_features; /* device-specific bits; the transport adds its own */
	uint16_t num_queues;
	uint16_t queue_max[VIRTIO_MAX_QUEUES]; /* largest size each queue accepts */
	uint32_t config_size;

	/* Filled by the transport. */
	uint64_t driver_features; /* negotiated, valid once activated */
	struct virtq queues[VIRTIO_MAX_QUEUES];
	const struct guest_mem *mem;
	struct event_loop *events;
	void *transport;
	/* Interrupts the driver for queue q (MSI-X vector or INTx + ISR bit 0). */
	void (*signal_used)(struct virtio_device *d, uint16_t q);
	/* Interrupts the driver for a config change (ISR bit 1). */
	void (*signal_config)(struct virtio_device *d);
	/* NEEDS_RESET: the guest broke the protocol; logged rate-limited. */
	void (*set_broken)(struct virtio_device *d, const char *why);
};

static inline bool virtio_has_feature(const struct virtio_device *d, unsigned int bit)
{
	return (d->driver_features >> bit) & 1;
}

/* Pushes done work and interrupts the guest if the queue asks for it. */
static inline void virtio_queue_done(struct virtio_device *d, uint16_t qi)
{
	if (virtq_should_notify(&d->queues[qi]))
		d->signal_used(d, qi);
}

#endif
