/*
 * libFuzzer target: virtio-blk request decoding. The input becomes guest
 * memory holding one request queue (descriptor table, avail ring,
 * buffers), then a fuzzer-chosen sequence of kicks, completion polls,
 * resets and config reads runs against a 64 KiB image in a memfd, through
 * the synchronous fallback backend (EMBER_NO_IO_URING=1), so each run is
 * deterministic. Checks that nothing crashes (reads land in guest memory
 * the fuzzer chose, rings included, so there is no further invariant to
 * check on the ring).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vmm/virtio/blk.h"

#define RAM_SIZE 0x10000
#define IMG_SIZE 0x10000
#define HDR_SIZE 4
#define MAX_OPS 32

struct fuzz_env {
	uint8_t *ram;
	int img_fd;
	char path[64];
};

static void no_signal(struct virtio_device *d, uint16_t q)
{
	(void)d;
	(void)q;
}

static void no_broken(struct virtio_device *d, const char *why)
{
	(void)d;
	(void)why;
}

static struct fuzz_env *env_get(void)
{
	static struct fuzz_env e;

	if (!e.ram) {
		setenv("EMBER_NO_IO_URING", "1", 1);
		e.ram = malloc(RAM_SIZE);
		e.img_fd = memfd_create("fuzz-blk", 0);
		if (!e.ram || e.img_fd < 0)
			abort();
		snprintf(e.path, sizeof(e.path), "/proc/self/fd/%d", e.img_fd);
	}
	return &e;
}

/* The queue's rings in the first 1 KiB (up to 16 entries); buffers anywhere. */
static void queue_setup(struct virtio_device *d, const struct guest_mem *mem, uint8_t hdr)
{
	struct virtq *q = &d->queues[0];

	*q = (struct virtq){0};
	q->size = (uint16_t)(1u << ((hdr >> 4) % 5));
	q->mem = mem;
	q->desc_gpa = 0;
	q->avail_gpa = 0x100;
	q->used_gpa = 0x200;
	q->event_idx = hdr & 4;
	q->indirect = hdr & 8;
	q->ready = true;
	virtq_reset(q);
}

static void op_run(struct virtio_device *d, const struct guest_mem *mem, uint8_t hdr,
		   const uint8_t *op)
{
	uint8_t buf[8];

	switch (op[0] % 6) {
	case 0:
	case 1:
		d->ops->queue_notify(d, op[1] % 2);
		break;
	case 2:
		virtio_blk_poll(d, false);
		break;
	case 3:
		virtio_blk_poll(d, true);
		break;
	case 4:
		d->ops->config_read(d, op[1] % VIRTIO_BLK_CFG_SIZE, buf, 1u << (op[2] % 4));
		break;
	case 5:
		d->ops->reset(d);
		queue_setup(d, mem, hdr);
		d->ops->activate(d);
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_env *e = env_get();
	struct virtio_blk_config cfg = {0};
	struct gmem_region region;
	struct virtio_device *d;
	struct guest_mem mem;
	const uint8_t *ops;
	size_t nops;
	uint8_t hdr, feat;
	char err[256];

	if (size < HDR_SIZE)
		return 0;
	/*
	 * hdr: 1 read-only, 2 unused, 4 event_idx, 8 indirect, >>4 queue size;
	 * then the op count, the driver's feature byte (FLUSH, DISCARD,
	 * WRITE_ZEROES), one spare.
	 */
	hdr = data[0];
	nops = data[1] % MAX_OPS;
	feat = data[2];
	ops = data + HDR_SIZE;
	if (size < HDR_SIZE + 3 * nops)
		nops = (size - HDR_SIZE) / 3;
	data += HDR_SIZE + 3 * nops;
	size -= HDR_SIZE + 3 * nops;

	memset(e->ram, 0, RAM_SIZE);
	memcpy(e->ram, data, size < RAM_SIZE ? size : RAM_SIZE);
	region = (struct gmem_region){.gpa = 0, .size = RAM_SIZE, .hva = e->ram};
	gmem_init_fake(&mem, &region, 1);
	/* A fresh, zeroed image every run. */
	if (ftruncate(e->img_fd, 0) || ftruncate(e->img_fd, IMG_SIZE))
		abort();

	cfg.path = e->path;
	cfg.readonly = hdr & 1;
	if (virtio_blk_create(&cfg, &d, err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		abort();
	}
	d->mem = &mem;
	d->signal_used = no_signal;
	d->set_broken = no_broken;
	d->driver_features = 1ull << VIRTIO_F_VERSION_1;
	if (feat & 1)
		d->driver_features |= d->device_features & 1ull << VIRTIO_BLK_F_FLUSH;
	if (feat & 2)
		d->driver_features |= d->device_features & 1ull << VIRTIO_BLK_F_DISCARD;
	if (feat & 4)
		d->driver_features |= d->device_features & 1ull << VIRTIO_BLK_F_WRITE_ZEROES;
	queue_setup(d, &mem, hdr);
	d->ops->activate(d);

	if (!nops) {
		d->ops->queue_notify(d, 0);
		virtio_blk_poll(d, true);
	}
	for (size_t i = 0; i < nops; i++)
		op_run(d, &mem, hdr, ops + 3 * i);
	virtio_blk_poll(d, true);

	virtio_blk_destroy(d);
	return 0;
}
