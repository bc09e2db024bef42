/*
 * bench-blk action: on the first virtio-blk device, a sequential read of
 * the benchmark range, a sequential write of the same range, then random
 * 4 KiB reads, each with several requests in flight and one kick per batch
 * of completions. The guest has no clock it can trust, so it only prints a
 * line as each phase starts and ends; the host times those lines.
 */
#include "guest.h"

#define BLK_F_RO 5
#define BLK_F_FLUSH 9
#define BLK_T_IN 0
#define BLK_T_OUT 1
#define BLK_S_OK 0
#define SECTOR 512
#define KIB 1024u
#define MIB (1024ull * 1024)
#define RAND_BS 4096u
#define QSIZE 128	 /* ring entries asked for */
#define DESC_PER_REQ 3	 /* header, data, status */
#define DEPTH_MAX 32	 /* QSIZE / DESC_PER_REQ, rounded down to a power of two */
#define BS_MAX_KIB 1024u /* a single data descriptor; both monitors take it */
#define DATA_MAX (2 * MIB) /* of the 4 MiB scratch area: depth * bs */
#define DFLT_BS_KIB 128u
#define DFLT_DEPTH 8u
#define DFLT_IOS 20000u

struct blk_hdr {
	uint32_t type;
	uint32_t reserved;
	uint64_t sector;
};

/* A request slot's header and status; its data is at data + slot * bs. */
struct slot {
	struct blk_hdr h;
	uint32_t len; /* data bytes of the request in flight */
	uint8_t status;
};

enum phase { PH_READ, PH_WRITE, PH_RANDREAD };
static const char *const phase_name[] = {"read", "write", "randread"};

struct bench {
	struct virtq *q;
	struct slot *slots;
	uint8_t *data;
	uint32_t bs, depth;
	uint64_t bytes; /* the range benchmarked: [0, bytes) of the disk */
	uint64_t lcg;
};

/* One phase's progress. */
struct run {
	enum phase ph;
	uint64_t nreq, issued, done, moved;
};

/* Knuth's MMIX LCG; the high bits are the random ones. */
static uint64_t lcg_next(struct bench *b)
{
	b->lcg = b->lcg * 6364136223846793005ull + 1442695040888963407ull;
	return b->lcg >> 33;
}

/* Posts the phase's next request in `slot` (its own descriptors: no kick here). */
static void submit(struct bench *b, struct run *r, uint32_t slot)
{
	struct slot *s = &b->slots[slot];
	uint64_t off;

	if (r->ph == PH_RANDREAD) {
		off = lcg_next(b) % (b->bytes / RAND_BS) * RAND_BS;
		s->len = RAND_BS;
	} else {
		off = r->issued * b->bs;
		s->len = b->bytes - off < b->bs ? (uint32_t)(b->bytes - off) : b->bs;
	}
	s->h = (struct blk_hdr){.type = r->ph == PH_WRITE ? BLK_T_OUT : BLK_T_IN,
				.sector = off / SECTOR};
	s->status = 0xff;

	const struct vbuf bufs[DESC_PER_REQ] = {
	    {(uintptr_t)&s->h, sizeof(s->h), false},
	    {(uintptr_t)b->data + (uint64_t)slot * b->bs, s->len, r->ph != PH_WRITE},
	    {(uintptr_t)&s->status, 1, true},
	};

	virtq_post(b->q, (uint16_t)(slot * DESC_PER_REQ), bufs, DESC_PER_REQ);
	r->issued++;
}

/* A used entry: checks it and reuses its slot for the next request. */
static bool complete(struct bench *b, struct run *r, uint32_t head)
{
	uint32_t slot = head / DESC_PER_REQ;
	struct slot *s = &b->slots[slot];
	uint8_t st;

	if (head % DESC_PER_REQ || slot >= b->depth) {
		gfail("virtio blk bench %s: used id %u is no request's head", phase_name[r->ph],
		      head);
		return false;
	}
	st = *(volatile uint8_t *)&s->status;
	if (st != BLK_S_OK) {
		gfail("virtio blk bench %s: status %u at sector %lu", phase_name[r->ph], st,
		      s->h.sector);
		return false;
	}
	r->done++;
	r->moved += s->len;
	if (r->issued < r->nreq)
		submit(b, r, slot);
	return true;
}

static bool run_phase(struct bench *b, enum phase ph, uint64_t nreq)
{
	struct run r = {.ph = ph, .nreq = nreq};
	uint64_t last;

	gprintf("guest: bench blk %s start\n", phase_name[ph]);
	for (uint32_t s = 0; s < b->depth && r.issued < nreq; s++)
		submit(b, &r, s);
	virtq_notify(b->q);
	last = rdtsc();
	while (r.done < nreq) {
		uint64_t before = r.issued;
		uint32_t head, len;
		bool any = false;

		while (virtq_poll(b->q, &head, &len)) {
			if (!complete(b, &r, head))
				return false;
			any = true;
		}
		if (r.issued != before)
			virtq_notify(b->q);
		if (any) {
			last = rdtsc();
		} else if (rdtsc() - last > VIRTIO_TIMEOUT) {
			gfail("virtio blk bench %s: no reply (%lu of %lu requests done)",
			      phase_name[ph], r.done, nreq);
			return false;
		} else {
			cpu_relax();
		}
	}
	gprintf("guest: bench blk %s done bytes=%lu requests=%lu\n", phase_name[ph], r.moved,
		r.done);
	return true;
}

/* bench-bs / bench-depth within what the ring and the scratch area hold. */
static bool params_ok(uint64_t bs_kib, uint64_t depth)
{
	if (bs_kib < 4 || bs_kib > BS_MAX_KIB || bs_kib % 4) {
		gfail("virtio blk bench-bs=%lu: want 4..%u KiB, a multiple of 4", bs_kib,
		      BS_MAX_KIB);
		return false;
	}
	if (depth < 1 || depth > DEPTH_MAX) {
		gfail("virtio blk bench-depth=%lu: want 1..%u", depth, DEPTH_MAX);
		return false;
	}
	if (bs_kib * KIB * depth > DATA_MAX) {
		gfail("virtio blk bench-bs * bench-depth = %lu KiB: more than %lu KiB of buffers",
		      bs_kib * depth, (uint64_t)(DATA_MAX / KIB));
		return false;
	}
	return true;
}

void bench_blk_run(struct virtio_ctx *c, struct virtio_dev *v)
{
	const char *cl = c->bi->cmdline;
	uint64_t bs_kib = cmdline_num(cl, "bench-bs=", DFLT_BS_KIB);
	uint64_t depth = cmdline_num(cl, "bench-depth=", DFLT_DEPTH);
	uint64_t mib = cmdline_num(cl, "bench-mib=", 0), ios = cmdline_num(cl, "bench-ios=", DFLT_IOS);
	struct bench b = {.q = &v->q[0], .lcg = c->seed};
	uint64_t cap, nseq;

	if (!params_ok(bs_kib, depth))
		return;
	b.bs = (uint32_t)(bs_kib * KIB);
	b.depth = (uint32_t)depth;
	/* FLUSH offered and taken: writes are write-back, like the host's buffered ones. */
	if (virtio_start(c, v, 1ull << BLK_F_RO | 1ull << BLK_F_FLUSH, 1, QSIZE))
		return;
	if (b.q->size < b.depth * DESC_PER_REQ) {
		gfail("virtio blk bench: a queue of %u entries holds fewer than %u requests",
		      b.q->size, b.depth);
		return;
	}
	b.slots = virtio_alloc(c, b.depth * sizeof(*b.slots));
	b.data = virtio_alloc(c, (uint64_t)b.depth * b.bs);
	if (!b.slots || !b.data)
		return;
	cap = virtio_cfg64(v, 0);
	b.bytes = cap * SECTOR;
	if (mib && mib < b.bytes / MIB)
		b.bytes = mib * MIB;
	if (b.bytes < RAND_BS) {
		gfail("virtio blk bench: a disk of %lu sectors is smaller than 4 KiB", cap);
		return;
	}
	gprintf("guest: bench blk capacity=%lu bytes=%lu bs=%u depth=%u ios=%lu\n", cap, b.bytes,
		b.bs, b.depth, ios);
	nseq = (b.bytes + b.bs - 1) / b.bs;
	if (!run_phase(&b, PH_READ, nseq))
		return;
	if (v->features >> BLK_F_RO & 1)
		gprintf("guest: bench blk write skipped ro=1\n");
	else if (!run_phase(&b, PH_WRITE, nseq))
		return;
	if (ios)
		run_phase(&b, PH_RANDREAD, ios);
}
