/*
 * libFuzzer target: a split virtqueue in guest memory the fuzzer writes.
 * The first bytes choose the queue (size, features, ring addresses, start
 * index), the rest become guest RAM; then the device side pops and pushes
 * until the ring is empty or broken. Checks that nothing crashes and that
 * every iovec handed out lies inside guest RAM.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/virtio/queue.h"

#define RAM0_SIZE 0x10000
#define RAM1_GPA 0x100000000ull
#define RAM1_SIZE 0x1000

struct fuzz_hdr {
	uint8_t size_log2;	    /* size = 1 << (n % 10) */
	uint8_t flags;		    /* 1: event_idx, 2: indirect, 4: unpop once, 8: rings in RAM1 */
	uint16_t start;		    /* last_avail and used_idx */
	uint16_t desc, avail, used; /* ring offsets in the chosen region */
	uint16_t pad;
};

struct fuzz_ram {
	uint8_t *ram0, *ram1;
};

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static void hdr_parse(const uint8_t *data, struct fuzz_hdr *h)
{
	h->size_log2 = data[0];
	h->flags = data[1];
	h->start = get16(data + 2);
	h->desc = get16(data + 4);
	h->avail = get16(data + 6);
	h->used = get16(data + 8);
}

static int in_ram(const struct fuzz_ram *r, const struct iovec *v)
{
	const uint8_t *p = v->iov_base;

	if (p >= r->ram0 && p < r->ram0 + RAM0_SIZE)
		return v->iov_len <= (size_t)(r->ram0 + RAM0_SIZE - p);
	if (p >= r->ram1 && p < r->ram1 + RAM1_SIZE)
		return v->iov_len <= (size_t)(r->ram1 + RAM1_SIZE - p);
	return 0;
}

/* Invariants of a popped chain; abort() makes libFuzzer report it. */
static void chain_check(const struct fuzz_ram *r, const struct virtq *q,
			const struct virtq_chain *c)
{
	uint64_t out = 0, in = 0;

	if (c->head >= q->size || c->nout + c->nin > VIRTQ_CHAIN_MAX)
		abort();
	for (unsigned int i = 0; i < c->nout; i++) {
		if (!c->out[i].iov_len || !in_ram(r, &c->out[i]))
			abort();
		out += c->out[i].iov_len;
	}
	for (unsigned int i = 0; i < c->nin; i++) {
		if (!c->in[i].iov_len || !in_ram(r, &c->in[i]))
			abort();
		in += c->in[i].iov_len;
	}
	if (out != c->out_len || in != c->in_len)
		abort();
}

/* What a device does with a chain: reads what it may, writes the rest. */
static uint32_t chain_use(const struct virtq_chain *c)
{
	volatile uint8_t sum = 0;

	for (unsigned int i = 0; i < c->nout; i++)
		sum += ((const uint8_t *)c->out[i].iov_base)[c->out[i].iov_len - 1];
	for (unsigned int i = 0; i < c->nin; i++)
		memset(c->in[i].iov_base, sum, c->in[i].iov_len);
	return c->in_len;
}

static void run(struct virtq *q, const struct fuzz_ram *r, struct virtq_chain *c, uint8_t flags)
{
	int valid = virtq_validate(q) == 0;
	int unpopped = 0;

	/* More pops than the ring holds: pushing frees slots for the guest. */
	for (unsigned int n = 0; n < 2u * q->size + 2; n++) {
		int ret = virtq_pop(q, c);

		if (ret < 0 && !q->error)
			abort();
		if (!valid && ret > 0)
			abort(); /* a ring outside RAM must never yield a chain */
		if (ret <= 0)
			break;
		chain_check(r, q, c);
		if ((flags & 4) && !unpopped) {
			unpopped = 1;
			virtq_unpop(q);
			continue;
		}
		if (virtq_push(q, c->head, chain_use(c)))
			abort();
		virtq_should_notify(q);
	}
	(void)virtq_pending(q);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_hdr h;
	struct fuzz_ram r;
	struct gmem_region regions[2];
	struct guest_mem mem;
	struct virtq q = {0};
	struct virtq_chain c;
	uint64_t base;

	if (size < 12)
		return 0;
	hdr_parse(data, &h);
	data += 12;
	size -= 12;

	r.ram0 = aligned_alloc(4096, RAM0_SIZE);
	r.ram1 = aligned_alloc(4096, RAM1_SIZE);
	if (!r.ram0 || !r.ram1)
		abort();
	memset(r.ram0, 0, RAM0_SIZE);
	memset(r.ram1, 0, RAM1_SIZE);
	memcpy(r.ram0, data, size < RAM0_SIZE ? size : RAM0_SIZE);
	if (size > RAM0_SIZE)
		memcpy(r.ram1, data + RAM0_SIZE,
		       size - RAM0_SIZE < RAM1_SIZE ? size - RAM0_SIZE : RAM1_SIZE);
	regions[0] = (struct gmem_region){.gpa = 0, .size = RAM0_SIZE, .hva = r.ram0};
	regions[1] = (struct gmem_region){.gpa = RAM1_GPA, .size = RAM1_SIZE, .hva = r.ram1};
	gmem_init_fake(&mem, regions, 2);

	base = (h.flags & 8) ? RAM1_GPA : 0;
	q.size = (uint16_t)(1u << (h.size_log2 % 10));
	q.mem = &mem;
	q.ready = true;
	/* Mostly aligned, so that the walk is reached; the top bits of size_log2 keep misalignment
	 * possible. */
	q.desc_gpa = base + ((h.size_log2 & 0x80) ? h.desc : h.desc & ~15u);
	q.avail_gpa = base + ((h.size_log2 & 0x40) ? h.avail : h.avail & ~1u);
	q.used_gpa = base + ((h.size_log2 & 0x20) ? h.used : h.used & ~3u);
	q.event_idx = h.flags & 1;
	q.indirect = h.flags & 2;
	virtq_reset(&q);
	q.last_avail = q.used_idx = h.start;

	run(&q, &r, &c, h.flags);

	free(r.ram0);
	free(r.ram1);
	return 0;
}
