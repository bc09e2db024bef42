/*
 * Test helper: a split virtqueue in fake guest memory, driven from the
 * driver's side. Builds descriptor chains (direct or indirect), publishes
 * them in the available ring and reads back the used ring, so device tests
 * can feed a device's queue_notify without a guest.
 *
 *	struct vq_fake f;
 *	struct vq_fake_seg segs[] = {
 *		{.data = &hdr, .len = sizeof(hdr)},	// device-readable
 *		{.len = 512, .write = true},		// device-writable
 *	};
 *	vq_fake_init(&f, 16);			// f.q is ready, f.mem is RAM
 *	uint16_t head = vq_fake_add_chain(&f, segs, 2);
 *	... device pops f.q, pushes ...
 *	vq_fake_used(&f, 0, &id, &len);		// id == head
 *	uint8_t *out = vq_fake_ptr(&f, f.seg_gpa[1], 512);
 *	vq_fake_free(&f);
 *
 * Guest RAM is VQ_FAKE_RAM_SIZE bytes at guest-physical 0; the rings sit
 * at its start, buffers are allocated after them. Helpers abort() when the
 * fake runs out of RAM (a test bug). Feature flags: set f.q.event_idx /
 * f.q.indirect directly (or copy f.q into a device's queue).
 */
#ifndef EMBER_TESTS_VIRTQ_FAKE_H
#define EMBER_TESTS_VIRTQ_FAKE_H

#include <stdbool.h>
#include <stdint.h>

#include "vmm/memory.h"
#include "vmm/virtio/queue.h"

#define VQ_FAKE_RAM_SIZE (8u << 20)

struct vq_fake_seg {
	const void *data; /* copied into the buffer when non-NULL (len bytes) */
	uint32_t len;
	bool write;   /* device-writable (VIRTQ_DESC_F_WRITE) */
	uint64_t gpa; /* buffer address; 0: allocate one (filled with 0xee) */
};

struct vq_fake {
	uint8_t *ram; /* host address of guest-physical 0 */
	struct guest_mem mem;
	struct virtq q; /* configured and ready, mem = &this->mem */
	uint16_t size;
	uint16_t avail_idx; /* the driver's avail->idx */
	uint16_t next_desc; /* next free descriptor table slot (round robin) */
	uint64_t alloc_gpa; /* next free buffer byte */
	/* Where each segment of the last added chain lives. */
	uint64_t seg_gpa[VIRTQ_CHAIN_MAX];
	/* The last indirect table added (vq_fake_add_indirect). */
	uint64_t indirect_gpa;
};

/* A queue of `size` entries (a power of two) in fresh zeroed RAM. */
void vq_fake_init(struct vq_fake *f, uint16_t size);
void vq_fake_free(struct vq_fake *f);

/* Allocates `len` bytes of guest RAM (16-byte aligned); returns its gpa. */
uint64_t vq_fake_alloc(struct vq_fake *f, uint32_t len);
/* Host pointer to [gpa, gpa+len); aborts when outside the fake RAM. */
void *vq_fake_ptr(struct vq_fake *f, uint64_t gpa, uint64_t len);

/*
 * Writes the n segments as a chain of descriptors (linked with NEXT) and
 * makes it available. Returns the head descriptor's index.
 */
uint16_t vq_fake_add_chain(struct vq_fake *f, const struct vq_fake_seg *segs, unsigned int n);
/*
 * The same segments in an indirect table (at f->indirect_gpa), referred to
 * by one INDIRECT descriptor in the queue's table; made available.
 */
uint16_t vq_fake_add_indirect(struct vq_fake *f, const struct vq_fake_seg *segs, unsigned int n);

/* Raw access for hostile rings. */
void vq_fake_set_desc(struct vq_fake *f, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags,
		      uint16_t next);
/* Same, in a descriptor table at `table_gpa` (e.g. an indirect table). */
void vq_fake_set_desc_at(struct vq_fake *f, uint64_t table_gpa, uint32_t i, uint64_t addr,
			 uint32_t len, uint16_t flags, uint16_t next);
/* Puts `head` in the next available ring slot and bumps avail->idx. */
void vq_fake_publish(struct vq_fake *f, uint16_t head);
/* Writes avail->idx directly (and f->avail_idx). */
void vq_fake_set_avail_idx(struct vq_fake *f, uint16_t idx);
/* Writes avail ring slot `slot` (mod size) without touching avail->idx. */
void vq_fake_set_avail_ring(struct vq_fake *f, uint16_t slot, uint16_t head);

/*
 * Starts both sides at index `idx` (e.g. 65534 to test wraparound):
 * avail->idx, used->idx, q.last_avail and q.used_idx.
 */
void vq_fake_start_at(struct vq_fake *f, uint16_t idx);

/* Used ring: entry i (mod size), used->idx, and the event fields. */
void vq_fake_used(struct vq_fake *f, uint16_t i, uint32_t *id, uint32_t *len);
uint16_t vq_fake_used_idx(struct vq_fake *f);
uint16_t vq_fake_avail_event(struct vq_fake *f); /* written by the device */
void vq_fake_set_used_event(struct vq_fake *f, uint16_t idx);
void vq_fake_set_avail_flags(struct vq_fake *f, uint16_t flags);

#endif
