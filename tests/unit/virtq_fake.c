#include "virtq_fake.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t align_up(uint64_t x, uint64_t a)
{
	return (x + a - 1) & ~(a - 1);
}

static void fake_die(const char *what)
{
	fprintf(stderr, "vq_fake: %s\n", what);
	abort();
}

void vq_fake_init(struct vq_fake *f, uint16_t size)
{
	struct gmem_region r = {.gpa = 0, .size = VQ_FAKE_RAM_SIZE};
	uint64_t end;

	memset(f, 0, sizeof(*f));
	if (!size || (size & (size - 1)) || size > VIRTQ_MAX_SIZE)
		fake_die("queue size not a power of two");
	f->ram = aligned_alloc(4096, VQ_FAKE_RAM_SIZE);
	if (!f->ram)
		fake_die("out of memory");
	memset(f->ram, 0, VQ_FAKE_RAM_SIZE);
	r.hva = f->ram;
	gmem_init_fake(&f->mem, &r, 1);
	f->size = size;

	f->q.size = size;
	f->q.mem = &f->mem;
	f->q.desc_gpa = 0x1000;
	f->q.avail_gpa = f->q.desc_gpa + VIRTQ_DESC_BYTES(size);
	f->q.used_gpa = align_up(f->q.avail_gpa + VIRTQ_AVAIL_BYTES(size), 4096);
	end = f->q.used_gpa + VIRTQ_USED_BYTES(size);
	f->alloc_gpa = align_up(end, 4096);
	f->q.ready = true;
	virtq_reset(&f->q);
}

void vq_fake_free(struct vq_fake *f)
{
	free(f->ram);
	memset(f, 0, sizeof(*f));
}

uint64_t vq_fake_alloc(struct vq_fake *f, uint32_t len)
{
	uint64_t gpa = f->alloc_gpa;

	if (len > VQ_FAKE_RAM_SIZE - gpa)
		fake_die("out of fake guest RAM");
	f->alloc_gpa = align_up(gpa + len, 16);
	return gpa;
}

void *vq_fake_ptr(struct vq_fake *f, uint64_t gpa, uint64_t len)
{
	if (gpa > VQ_FAKE_RAM_SIZE || len > VQ_FAKE_RAM_SIZE - gpa)
		fake_die("address outside fake guest RAM");
	return f->ram + gpa;
}

static void put16(struct vq_fake *f, uint64_t gpa, uint16_t v)
{
	__atomic_store_n((uint16_t *)vq_fake_ptr(f, gpa, 2), v, __ATOMIC_RELEASE);
}

static uint16_t get16(struct vq_fake *f, uint64_t gpa)
{
	return __atomic_load_n((uint16_t *)vq_fake_ptr(f, gpa, 2), __ATOMIC_ACQUIRE);
}

void vq_fake_set_desc_at(struct vq_fake *f, uint64_t table_gpa, uint32_t i, uint64_t addr,
			 uint32_t len, uint16_t flags, uint16_t next)
{
	uint8_t *p = vq_fake_ptr(f, table_gpa + 16 * (uint64_t)i, 16);

	memcpy(p, &addr, 8);
	memcpy(p + 8, &len, 4);
	memcpy(p + 12, &flags, 2);
	memcpy(p + 14, &next, 2);
}

void vq_fake_set_desc(struct vq_fake *f, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags,
		      uint16_t next)
{
	vq_fake_set_desc_at(f, f->q.desc_gpa, i, addr, len, flags, next);
}

void vq_fake_set_avail_ring(struct vq_fake *f, uint16_t slot, uint16_t head)
{
	put16(f, f->q.avail_gpa + 4 + 2 * (uint64_t)(slot & (f->size - 1)), head);
}

void vq_fake_set_avail_idx(struct vq_fake *f, uint16_t idx)
{
	f->avail_idx = idx;
	put16(f, f->q.avail_gpa + 2, idx);
}

void vq_fake_publish(struct vq_fake *f, uint16_t head)
{
	vq_fake_set_avail_ring(f, f->avail_idx, head);
	vq_fake_set_avail_idx(f, f->avail_idx + 1);
}

/* Buffer for one segment: the caller's address, or a fresh one. */
static uint64_t seg_buffer(struct vq_fake *f, const struct vq_fake_seg *s)
{
	uint64_t gpa = s->gpa;

	if (!gpa) {
		gpa = vq_fake_alloc(f, s->len);
		memset(vq_fake_ptr(f, gpa, s->len), 0xee, s->len);
	}
	if (s->data)
		memcpy(vq_fake_ptr(f, gpa, s->len), s->data, s->len);
	return gpa;
}

/* Writes segs into `table` at slots first, first+1, ... (mod tsize). */
static void write_segs(struct vq_fake *f, uint64_t table, uint32_t first, uint32_t tsize,
		       const struct vq_fake_seg *segs, unsigned int n)
{
	if (n > VIRTQ_CHAIN_MAX)
		fake_die("chain longer than VIRTQ_CHAIN_MAX");
	for (unsigned int k = 0; k < n; k++) {
		uint32_t i = (first + k) % tsize;
		uint16_t next = (uint16_t)((i + 1) % tsize);
		uint16_t flags =
		    (segs[k].write ? VIRTQ_DESC_F_WRITE : 0) | (k + 1 < n ? VIRTQ_DESC_F_NEXT : 0);

		f->seg_gpa[k] = seg_buffer(f, &segs[k]);
		vq_fake_set_desc_at(f, table, i, f->seg_gpa[k], segs[k].len, flags,
				    k + 1 < n ? next : 0);
	}
}

uint16_t vq_fake_add_chain(struct vq_fake *f, const struct vq_fake_seg *segs, unsigned int n)
{
	uint16_t head = f->next_desc;

	if (!n || n > f->size)
		fake_die("chain length 0 or longer than the queue");
	write_segs(f, f->q.desc_gpa, head, f->size, segs, n);
	f->next_desc = (uint16_t)((head + n) % f->size);
	vq_fake_publish(f, head);
	return head;
}

uint16_t vq_fake_add_indirect(struct vq_fake *f, const struct vq_fake_seg *segs, unsigned int n)
{
	uint16_t head = f->next_desc;
	uint64_t table;

	if (!n)
		fake_die("empty indirect chain");
	table = vq_fake_alloc(f, 16 * n);
	write_segs(f, table, 0, n, segs, n);
	f->indirect_gpa = table;
	vq_fake_set_desc(f, head, table, 16 * n, VIRTQ_DESC_F_INDIRECT, 0);
	f->next_desc = (uint16_t)((head + 1) % f->size);
	vq_fake_publish(f, head);
	return head;
}

void vq_fake_start_at(struct vq_fake *f, uint16_t idx)
{
	vq_fake_set_avail_idx(f, idx);
	put16(f, f->q.used_gpa + 2, idx);
	f->q.last_avail = idx;
	f->q.used_idx = idx;
	f->q.signalled_used = idx;
}

void vq_fake_used(struct vq_fake *f, uint16_t i, uint32_t *id, uint32_t *len)
{
	const uint8_t *e = vq_fake_ptr(f, f->q.used_gpa + 4 + 8 * (uint64_t)(i & (f->size - 1)), 8);

	memcpy(id, e, 4);
	memcpy(len, e + 4, 4);
}

uint16_t vq_fake_used_idx(struct vq_fake *f)
{
	return get16(f, f->q.used_gpa + 2);
}

uint16_t vq_fake_avail_event(struct vq_fake *f)
{
	return get16(f, f->q.used_gpa + 4 + 8 * (uint64_t)f->size);
}

void vq_fake_set_used_event(struct vq_fake *f, uint16_t idx)
{
	put16(f, f->q.avail_gpa + 4 + 2 * (uint64_t)f->size, idx);
}

void vq_fake_set_avail_flags(struct vq_fake *f, uint16_t flags)
{
	put16(f, f->q.avail_gpa, flags);
}
