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
/*
 * Most data descriptors one chain may have (direct + indirect, zero-length
 * ones included; the descriptor pointing at an indirect table not counted).
 * Longer chains are an error.
 */
#define VIRTQ_CHAIN_MAX 256

/* Descriptor flags (virtio 1.2, 2.7.5). */
#define VIRTQ_DESC_F_NEXT 1
#define VIRTQ_DESC_F_WRITE 2
#define VIRTQ_DESC_F_INDIRECT 4
/* avail->flags: the driver asks for no interrupts (without EVENT_IDX). */
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1
/* used->flags: the device asks for no kicks (we never set it). */
#define VIRTQ_USED_F_NO_NOTIFY 1

/* Ring sizes in bytes for a queue of `size` entries, event fields included. */
#define VIRTQ_DESC_BYTES(size) (16 * (uint64_t)(size))
#define VIRTQ_AVAIL_BYTES(size) (6 + 2 * (uint64_t)(size))
#define VIRTQ_USED_BYTES(size) (6 + 8 * (uint64_t)(size))

struct virtq {
	/* Set by the transport from the driver's queue configuration. */
	uint16_t size; /* power of two, 1..VIRTQ_MAX_SIZE */
	bool ready;
	uint64_t desc_gpa, avail_gpa, used_gpa;
	bool event_idx; /* VIRTIO_F_RING_EVENT_IDX negotiated */
	bool indirect;	/* VIRTIO_F_RING_INDIRECT_DESC negotiated */
	const struct guest_mem *mem;

	/* Device state. */
	uint16_t last_avail;	 /* next avail ring index to consume */
	uint16_t used_idx;	 /* our copy of used->idx */
	uint16_t signalled_used; /* used_idx when we last decided to notify */
	bool signalled_valid;
	/* After virtq_pop/virtq_push returned -EINVAL: what was wrong (static string). */
	const char *error;
};

struct virtq_chain {
	uint16_t head;
	uint16_t nout, nin;		   /* device-readable, then device-writable segments */
	uint32_t out_len, in_len;	   /* their total bytes */
	struct iovec out[VIRTQ_CHAIN_MAX]; /* host addresses into guest RAM */
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
 * pending (or the queue is not ready), -EINVAL when the guest broke the
 * ring (bad index, address, length, loop, too long, writable before
 * readable, nested indirect): q->error says which, and the caller marks
 * the device NEEDS_RESET (d->set_broken(d, q->error)). A failed pop
 * consumes nothing. The chain's iovecs
 * point into guest memory and stay valid until the chain is pushed.
 * Zero-length descriptors are accepted and give no iovec.
 *
 * With EVENT_IDX, when the ring is found empty, avail_event is set to
 * last_avail (and the ring re-checked), so the driver kicks for the next
 * chain it adds. So on a kick a device pops until 0; a device that stops
 * earlier (out of buffers or in-flight slots) must come back by itself,
 * as no further kick is guaranteed for chains already available.
 */
int virtq_pop(struct virtq *q, struct virtq_chain *c);

/* Puts the last popped chain back, unused, so the next pop returns it again. */
void virtq_unpop(struct virtq *q);

/*
 * Returns chain `head` as used with `written` bytes written to its in
 * segments, and publishes it (used->idx). 0, or -EINVAL when head is out of
 * range or the used ring is not in guest RAM.
 */
int virtq_push(struct virtq *q, uint16_t head, uint32_t written);

/*
 * After one or more pushes: true when the driver wants an interrupt
 * (without EVENT_IDX: VIRTQ_AVAIL_F_NO_INTERRUPT is clear; with EVENT_IDX:
 * the pushes since the previous call crossed used_event, and always on the
 * first call after a reset). Call it once per batch of pushes: it remembers
 * used->idx at each call.
 */
bool virtq_should_notify(struct virtq *q);

/* Count of chains available and not yet popped (0 when the index is bad). */
uint16_t virtq_pending(const struct virtq *q);

#endif
