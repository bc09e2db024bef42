/*
 * virtio-blk action: id, capacity and read-only flag; sector 0 as text; a
 * seeded pattern written to sectors 1..8, flushed and read back (or, on a
 * read-only disk, a write that must fail with IOERR).
 */
#include "guest.h"

#define BLK_F_RO 5
#define BLK_F_FLUSH 9
#define BLK_T_IN 0
#define BLK_T_OUT 1
#define BLK_T_FLUSH 4
#define BLK_T_GET_ID 8
#define BLK_S_OK 0
#define BLK_S_IOERR 1
#define BLK_ID_BYTES 20
#define SECTOR 512
#define PAT_FIRST 1
#define PAT_SECTORS 8

struct blk_req {
	uint32_t type;
	uint32_t reserved;
	uint64_t sector;
};

struct blk {
	struct virtio_dev *v;
	struct blk_req *hdr;
	uint8_t *status;
	uint8_t *data; /* PAT_SECTORS sectors */
};

/* Byte i of sector s (README: "virtio-blk"). */
static uint8_t pattern(uint32_t seed, uint32_t s, uint32_t i)
{
	uint32_t x = seed * 1000003u + s * 4099u + i;

	return (uint8_t)((x * 2654435761u) >> 24);
}

/* One request; the status byte, or -1 on timeout. */
static int blk_req(struct blk *b, uint32_t type, uint64_t sector, uint32_t len)
{
	bool in = type == BLK_T_IN || type == BLK_T_GET_ID;
	struct vbuf bufs[3] = {{(uintptr_t)b->hdr, sizeof(*b->hdr), false}};
	unsigned int n = 1;

	*b->hdr = (struct blk_req){.type = type, .sector = sector};
	*b->status = 0xff;
	if (len)
		bufs[n++] = (struct vbuf){(uintptr_t)b->data, len, in};
	bufs[n++] = (struct vbuf){(uintptr_t)b->status, 1, true};
	if (virtq_xfer(&b->v->q[0], bufs, n, "blk") < 0)
		return -1;
	return *(volatile uint8_t *)b->status;
}

static void print_text(unsigned int nth, const uint8_t *p, unsigned int max)
{
	char s[65];
	unsigned int n = 0;

	for (; n < max && n < sizeof(s) - 1 && p[n] && p[n] != '\n'; n++)
		s[n] = p[n] >= 0x20 && p[n] < 0x7f ? (char)p[n] : '.';
	s[n] = '\0';
	gprintf("guest: blk %u sector0=%s\n", nth, s);
}

static void fill(struct blk *b, uint32_t seed)
{
	for (uint32_t s = 0; s < PAT_SECTORS; s++)
		for (uint32_t i = 0; i < SECTOR; i++)
			b->data[s * SECTOR + i] = pattern(seed, PAT_FIRST + s, i);
}

static void write_verify(struct blk *b, uint32_t seed)
{
	unsigned int nth = b->v->nth;
	int st;

	fill(b, seed);
	st = blk_req(b, BLK_T_OUT, PAT_FIRST, PAT_SECTORS * SECTOR);
	if (st != BLK_S_OK) {
		gfail("virtio blk %u write status %d", nth, st);
		return;
	}
	if (b->v->features >> BLK_F_FLUSH & 1) {
		st = blk_req(b, BLK_T_FLUSH, 0, 0);
		if (st != BLK_S_OK) {
			gfail("virtio blk %u flush status %d", nth, st);
			return;
		}
	}
	memset(b->data, 0, PAT_SECTORS * SECTOR);
	st = blk_req(b, BLK_T_IN, PAT_FIRST, PAT_SECTORS * SECTOR);
	if (st != BLK_S_OK) {
		gfail("virtio blk %u read-back status %d", nth, st);
		return;
	}
	for (uint32_t s = 0; s < PAT_SECTORS; s++)
		for (uint32_t i = 0; i < SECTOR; i++)
			if (b->data[s * SECTOR + i] != pattern(seed, PAT_FIRST + s, i)) {
				gfail("virtio blk %u sector %u byte %u: 0x%x, want 0x%x", nth,
				      PAT_FIRST + s, i, b->data[s * SECTOR + i],
				      pattern(seed, PAT_FIRST + s, i));
				return;
			}
	gprintf("guest: blk %u pattern ok sectors=%u-%u seed=%u flush=%u\n", nth, PAT_FIRST,
		PAT_FIRST + PAT_SECTORS - 1, seed,
		(unsigned int)(b->v->features >> BLK_F_FLUSH & 1));
}

static void write_refused(struct blk *b, uint32_t seed)
{
	int st;

	fill(b, seed);
	st = blk_req(b, BLK_T_OUT, PAT_FIRST, SECTOR);
	if (st == BLK_S_IOERR)
		gprintf("guest: blk %u write refused\n", b->v->nth);
	else
		gfail("virtio blk %u write to a read-only disk: status %d, want %d", b->v->nth, st,
		      BLK_S_IOERR);
}

void virtio_blk_run(struct virtio_ctx *c, struct virtio_dev *v)
{
	struct blk b = {.v = v};
	char id[BLK_ID_BYTES + 1] = {0};
	uint64_t cap;
	bool ro;

	if (virtio_start(c, v, 1ull << BLK_F_RO | 1ull << BLK_F_FLUSH, 1, 16))
		return;
	b.hdr = virtio_alloc(c, sizeof(*b.hdr) + 1);
	b.data = virtio_alloc(c, PAT_SECTORS * SECTOR);
	if (!b.hdr || !b.data)
		return;
	b.status = (uint8_t *)(b.hdr + 1);
	cap = virtio_cfg64(v, 0);
	ro = v->features >> BLK_F_RO & 1;

	int st = blk_req(&b, BLK_T_GET_ID, 0, BLK_ID_BYTES);

	if (st == BLK_S_OK)
		for (unsigned int i = 0; i < BLK_ID_BYTES && b.data[i]; i++)
			id[i] = b.data[i] > 0x20 && b.data[i] < 0x7f ? (char)b.data[i] : '.';
	else if (st < 0)
		return;
	gprintf("guest: blk %u id=%s capacity=%lu ro=%u\n", v->nth, id, cap, ro);

	st = blk_req(&b, BLK_T_IN, 0, SECTOR);
	if (st != BLK_S_OK) {
		gfail("virtio blk %u read sector 0 status %d", v->nth, st);
		return;
	}
	print_text(v->nth, b.data, SECTOR);
	if (cap < PAT_FIRST + PAT_SECTORS) {
		gfail("virtio blk %u capacity %lu < %u sectors", v->nth, cap,
		      PAT_FIRST + PAT_SECTORS);
		return;
	}
	if (ro)
		write_refused(&b, c->seed);
	else
		write_verify(&b, c->seed);
}
