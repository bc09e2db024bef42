#include "vmm/virtio/queue.h"

#include <endian.h>
#include <errno.h>
#include <stdatomic.h>
#include <string.h>

/*
 * Offsets inside the rings (virtio 1.2, 2.7). The guest writes these
 * structures while we read them: every field is read once into a local
 * (ring indices with __atomic loads, descriptors copied whole and then
 * fenced off) and only the local is checked and used.
 */
#define AVAIL_FLAGS 0
#define AVAIL_IDX 2
#define AVAIL_RING 4
#define USED_IDX 2
#define USED_RING 4

struct vdesc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

/* Host addresses of the three rings, checked again on every use. */
struct rings {
	uint8_t *desc;
	uint8_t *avail;
	uint8_t *used;
};

static bool is_pow2(uint32_t x)
{
	return x && !(x & (x - 1));
}

void virtq_reset(struct virtq *q)
{
	q->last_avail = 0;
	q->used_idx = 0;
	q->signalled_used = 0;
	q->signalled_valid = false;
	q->error = NULL;
}

static int fail(struct virtq *q, const char *why)
{
	q->error = why;
	return -EINVAL;
}

/* Checks the ring configuration and finds the rings' host addresses. */
static const char *rings_find(const struct virtq *q, struct rings *r)
{
	if (!q->mem)
		return "no guest memory";
	if (!is_pow2(q->size) || q->size > VIRTQ_MAX_SIZE)
		return "queue size not a power of two up to 32768";
	if (q->desc_gpa & 15)
		return "descriptor table not 16-byte aligned";
	if (q->avail_gpa & 1)
		return "available ring not 2-byte aligned";
	if (q->used_gpa & 3)
		return "used ring not 4-byte aligned";
	r->desc = gmem_ptr(q->mem, q->desc_gpa, VIRTQ_DESC_BYTES(q->size));
	if (!r->desc)
		return "descriptor table outside guest RAM";
	r->avail = gmem_ptr(q->mem, q->avail_gpa, VIRTQ_AVAIL_BYTES(q->size));
	if (!r->avail)
		return "available ring outside guest RAM";
	r->used = gmem_ptr(q->mem, q->used_gpa, VIRTQ_USED_BYTES(q->size));
	if (!r->used)
		return "used ring outside guest RAM";
	return NULL;
}

int virtq_validate(const struct virtq *q)
{
	struct rings r;

	return rings_find(q, &r) ? -EINVAL : 0;
}

/* The configuration is checked on each use: the transport may change it. */
static int rings_get(struct virtq *q, struct rings *r)
{
	const char *why = rings_find(q, r);

	return why ? fail(q, why) : 0;
}

/* Ring fields are naturally aligned: the ring addresses are checked above. */
static uint16_t load16(const uint8_t *p, int order)
{
	return le16toh(__atomic_load_n((const uint16_t *)p, order));
}

static void store16(uint8_t *p, uint16_t v, int order)
{
	__atomic_store_n((uint16_t *)p, htole16(v), order);
}

static void store32(uint8_t *p, uint32_t v)
{
	__atomic_store_n((uint32_t *)p, htole32(v), __ATOMIC_RELAXED);
}

/*
 * Copies descriptor `i` of a table out of guest memory. Indirect tables
 * need not be aligned, hence memcpy; the signal fence keeps the compiler
 * from re-reading guest memory in place of the copy.
 */
static void desc_read(const uint8_t *table, uint32_t i, struct vdesc *d)
{
	uint8_t raw[16];

	memcpy(raw, table + 16 * (uint64_t)i, sizeof(raw));
	atomic_signal_fence(memory_order_seq_cst);
	memcpy(&d->addr, raw, 8);
	memcpy(&d->len, raw + 8, 4);
	memcpy(&d->flags, raw + 12, 2);
	memcpy(&d->next, raw + 14, 2);
	d->addr = le64toh(d->addr);
	d->len = le32toh(d->len);
	d->flags = le16toh(d->flags);
	d->next = le16toh(d->next);
}

static uint8_t *avail_event(const struct virtq *q, const struct rings *r)
{
	return r->used + USED_RING + 8 * (uint32_t)q->size;
}

static const uint8_t *used_event(const struct virtq *q, const struct rings *r)
{
	return r->avail + AVAIL_RING + 2 * (uint32_t)q->size;
}

/* Where a chain walk is: the table it reads and how far it has gone. */
struct walk {
	const uint8_t *table;
	uint32_t tsize; /* entries in the table */
	uint32_t steps; /* descriptors read from this table */
	uint32_t ndesc; /* data descriptors in the chain so far */
	bool indirect;	/* inside an indirect table */
	uint64_t out_len, in_len;
};

static int chain_add(struct virtq *q, struct virtq_chain *c, struct walk *w, const struct vdesc *d)
{
	void *p;

	if (++w->ndesc > VIRTQ_CHAIN_MAX)
		return fail(q, "descriptor chain longer than 256");
	if (d->flags & VIRTQ_DESC_F_WRITE) {
		w->in_len += d->len;
		if (w->in_len > UINT32_MAX)
			return fail(q, "descriptor chain longer than 4 GiB");
	} else {
		if (c->nin)
			return fail(q, "device-readable descriptor after a writable one");
		w->out_len += d->len;
		if (w->out_len > UINT32_MAX)
			return fail(q, "descriptor chain longer than 4 GiB");
	}
	if (!d->len)
		return 0;
	p = gmem_ptr(q->mem, d->addr, d->len);
	if (!p)
		return fail(q, "descriptor buffer outside guest RAM");
	if (d->flags & VIRTQ_DESC_F_WRITE) {
		gmem_dma_write(q->mem, d->addr, d->len);
		c->in[c->nin++] = (struct iovec){.iov_base = p, .iov_len = d->len};
	} else {
		c->out[c->nout++] = (struct iovec){.iov_base = p, .iov_len = d->len};
	}
	return 0;
}

/* Switches the walk to the indirect table `d` points to. */
static int chain_enter_indirect(struct virtq *q, struct walk *w, const struct vdesc *d)
{
	if (!q->indirect)
		return fail(q, "indirect descriptor without VIRTIO_F_RING_INDIRECT_DESC");
	if (w->indirect)
		return fail(q, "nested indirect descriptor");
	if (d->flags & VIRTQ_DESC_F_NEXT)
		return fail(q, "indirect descriptor with NEXT set");
	if (!d->len || d->len % 16)
		return fail(q, "indirect table length not a non-zero multiple of 16");
	w->table = gmem_ptr(q->mem, d->addr, d->len);
	if (!w->table)
		return fail(q, "indirect table outside guest RAM");
	w->tsize = d->len / 16;
	w->steps = 0;
	w->indirect = true;
	return 0;
}

static int chain_walk(struct virtq *q, const struct rings *r, uint16_t head, struct virtq_chain *c)
{
	struct walk w = {.table = r->desc, .tsize = q->size};
	uint32_t i = head;
	struct vdesc d;
	int err;

	for (;;) {
		/*
		 * Only `next` (16 bits) reaches further entries, so a walk
		 * longer than min(table size, 65536) has visited one twice.
		 */
		if (++w.steps > w.tsize || w.steps > 65536)
			return fail(q, "descriptor chain loops");
		desc_read(w.table, i, &d);
		if (d.flags & VIRTQ_DESC_F_INDIRECT) {
			err = chain_enter_indirect(q, &w, &d);
			if (err)
				return err;
			i = 0;
			continue;
		}
		err = chain_add(q, c, &w, &d);
		if (err)
			return err;
		if (!(d.flags & VIRTQ_DESC_F_NEXT))
			break;
		i = d.next;
		if (i >= w.tsize)
			return fail(q, "descriptor next index out of range");
	}
	c->out_len = w.out_len;
	c->in_len = w.in_len;
	return 0;
}

/* Chains available: avail->idx - last_avail; -EINVAL when more than size. */
static int avail_count(struct virtq *q, const struct rings *r, uint16_t *n)
{
	uint16_t idx = load16(r->avail + AVAIL_IDX, __ATOMIC_ACQUIRE);

	*n = (uint16_t)(idx - q->last_avail);
	if (*n > q->size)
		return fail(q, "available index more than the queue size ahead");
	return 0;
}

int virtq_pop(struct virtq *q, struct virtq_chain *c)
{
	struct rings r;
	uint16_t n, head;
	int err;

	if (!q->ready)
		return 0;
	err = rings_get(q, &r);
	if (err)
		return err;
	err = avail_count(q, &r, &n);
	if (err)
		return err;
	if (!n && q->event_idx) {
		/*
		 * Empty: ask for a kick at the next chain, then look again in
		 * case the driver added one before it could see avail_event.
		 */
		store16(avail_event(q, &r), q->last_avail, __ATOMIC_RELAXED);
		atomic_thread_fence(memory_order_seq_cst);
		err = avail_count(q, &r, &n);
		if (err)
			return err;
	}
	if (!n)
		return 0;

	head = load16(r.avail + AVAIL_RING + 2 * (q->last_avail & (q->size - 1)), __ATOMIC_RELAXED);
	if (head >= q->size)
		return fail(q, "available ring head index out of range");
	c->head = head;
	c->nout = c->nin = 0;
	c->out_len = c->in_len = 0;
	err = chain_walk(q, &r, head, c);
	if (err)
		return err;
	q->last_avail++;
	return 1;
}

void virtq_unpop(struct virtq *q)
{
	q->last_avail--;
}

int virtq_push(struct virtq *q, uint16_t head, uint32_t written)
{
	struct rings r;
	uint8_t *elem;
	int err;

	err = rings_get(q, &r);
	if (err)
		return err;
	if (head >= q->size)
		return fail(q, "pushed head index out of range");
	elem = r.used + USED_RING + 8 * (q->used_idx & (q->size - 1));
	store32(elem, head);
	store32(elem + 4, written);
	q->used_idx++;
	/* Release: the entry is visible before the index that publishes it. */
	store16(r.used + USED_IDX, q->used_idx, __ATOMIC_RELEASE);
	return 0;
}

/* Linux's vring_need_event: did [old, new) pass event? (all mod 2^16) */
static bool need_event(uint16_t event, uint16_t new_idx, uint16_t old)
{
	return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old);
}

bool virtq_should_notify(struct virtq *q)
{
	uint16_t old = q->signalled_used;
	bool valid = q->signalled_valid;
	struct rings r;

	if (rings_get(q, &r))
		return true;
	/* Our used->idx store before the driver's flags / used_event load. */
	atomic_thread_fence(memory_order_seq_cst);
	if (!q->event_idx)
		return !(load16(r.avail + AVAIL_FLAGS, __ATOMIC_RELAXED) &
			 VIRTQ_AVAIL_F_NO_INTERRUPT);
	q->signalled_used = q->used_idx;
	q->signalled_valid = true;
	if (!valid)
		return true;
	return need_event(load16(used_event(q, &r), __ATOMIC_RELAXED), q->used_idx, old);
}

uint16_t virtq_pending(const struct virtq *q)
{
	struct rings r;
	uint16_t n;

	if (!q->ready || rings_find(q, &r))
		return 0;
	n = (uint16_t)(load16(r.avail + AVAIL_IDX, __ATOMIC_ACQUIRE) - q->last_avail);
	return n > q->size ? 0 : n;
}
