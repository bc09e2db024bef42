/*
 * Split virtqueues (virtio 1.2, 2.7). The device side: pop a descriptor
 * chain the driver made available, turn it into host iovecs, push it back
 * as used. Every address, length, index and chain the guest provides is
 * checked against guest memory and the queue size before it is used.
 *
 * A queue is used by one thread at a time (its device's); the guest runs
 * concurrently, so ring fields are read and written with the barriers the
 * spec requires.
 */
#ifndef EMBER_VMM_VIRTIO_QUEUE_H
#define EMBER_VMM_VIRTIO_QUEUE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "vmm/memory.h"

#define VIRTQ_MAX_SIZE 32768
/* Most segments one chain may have (direct + indirect); longer chains are an error. */
#define VIRTQ_CHAIN_MAX 256

struct virtq {
	/* Set by the transport from the driver's queue configuration. */
	uint16_t size; /* power of two, 1..VIRTQ_MAX_SIZE */
	bool ready;
	uint64_t desc_gpa, avail_gpa, used_gpa;
	bool event_idx; /* VIRTIO_F_EVENT_IDX negotiated */
	bool indirect;	/* VIRTIO_F_RING_INDIRECT_DESC negotiated */
	const struct guest_mem *mem;

	/* Device state. */
	uint16_t last_avail; /* next avail ring index to consume */
	uint16_t used_idx;   /* our copy of used->idx */
	uint16_t signalled_used;
	bool signalled_valid;
};

struct virtq_chain {
	uint16_t head;
	uint16_t nout, nin;		       /* device-readable, then device-writable segments */
	uint32_t out_len, in_len;	       /* their total bytes */
	struct iovec out[VIRTQ_CHAIN_MAX];     /* host addresses into guest RAM */
	struct iovec in[VIRTQ_CHAIN_MAX];
};

/* Clears device state (queue reset or device reset); keeps the configuration. */
void virtq_reset(struct virtq *q);

/*
 * Checks the configured ring addresses: alignment, and that the descriptor
 * table and both rings lie in guest RAM. 0 or -EINVAL (the driver's bug).
 */
int virtq_validate(const struct virtq *q);

/*
 * Takes the next available chain: 1 when one was taken, 0 when none is
 * pending, -EINVAL when the guest broke the ring (bad index, address,
 * length, loop, too long, writable before readable, nested indirect):
 * the caller then marks the device NEEDS_RESET. The chain's iovecs point
 * into guest memory and stay valid until the chain is pushed.
 */
int virtq_pop(struct virtq *q, struct virtq_chain *c);

/* Puts `head` back, unused, so the next pop returns it again. */
void virtq_unpop(struct virtq *q);

/* Returns a chain as used with `written` bytes written to its in segments. */
int virtq_push(struct virtq *q, uint16_t head, uint32_t written);

/*
 * After one or more pushes: true when the driver wants an interrupt
 * (VIRTQ_AVAIL_F_NO_INTERRUPT, or used_event with EVENT_IDX).
 */
bool virtq_should_notify(struct virtq *q);

/* Count of chains available and not yet popped (0 when the index is bad). */
uint16_t virtq_pending(const struct virtq *q);

#endif
