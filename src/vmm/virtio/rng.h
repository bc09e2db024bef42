/*
 * virtio-rng (virtio 1.2, 5.4): one request queue; every buffer the driver
 * makes available is filled with bytes from getrandom(2), at most
 * max_request bytes per buffer (the driver asks again for more). No
 * feature bits, no config space.
 *
 * Threads: queue_notify runs on the event thread; the transport never
 * runs it at the same time as reset, so the device needs no lock.
 */
#ifndef EMBER_VMM_VIRTIO_RNG_H
#define EMBER_VMM_VIRTIO_RNG_H

#include <stddef.h>
#include <stdint.h>

#include "vmm/virtio/device.h"

#define VIRTIO_RNG_QUEUE_SIZE 64
#define VIRTIO_RNG_MAX_REQUEST (64u << 10)

struct virtio_rng_config {
	uint32_t max_request; /* bytes per buffer; 0: VIRTIO_RNG_MAX_REQUEST */
};

/* --rng takes no value: arg must be NULL or "". 0, or -EINVAL with one line in err. */
int virtio_rng_parse(const char *arg, struct virtio_rng_config *cfg, char *err, size_t errlen);
int virtio_rng_create(const struct virtio_rng_config *cfg, struct virtio_device **out, char *err,
		      size_t errlen);
void virtio_rng_destroy(struct virtio_device *d);

#endif
