/*
 * libFuzzer target: virtio-balloon's inflate, deflate and stats queues in
 * guest memory the fuzzer writes, driven by a fuzzer-chosen sequence of
 * kicks, host requests (stats, target) and config accesses. Guest RAM is
 * anonymous memory, so inflating really madvises it. Checks that nothing
 * crashes and that the books stay within RAM.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "vmm/virtio/balloon.h"

#define RAM0_SIZE 0x10000 /* PFNs 0..15 */
#define RAM1_GPA 0x100000000ull
#define RAM1_SIZE 0x4000 /* PFNs 0x100000..0x100003 */
#define HDR_SIZE 4
#define MAX_OPS 32
#define TAME_END 0x2000

struct fuzz_ram {
	uint8_t *ram0, *ram1;
};

static void no_signal(struct virtio_device *d, uint16_t q)
{
	(void)d;
	(void)q;
}

static void no_config(struct virtio_device *d)
{
	(void)d;
}

static void no_broken(struct virtio_device *d, const char *why)
{
	(void)d;
	(void)why;
}

/* Mapped once: madvise needs page-aligned anonymous memory. */
static struct fuzz_ram *ram_get(void)
{
	static struct fuzz_ram r;

	if (!r.ram0) {
		r.ram0 = mmap(NULL, RAM0_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			      -1, 0);
		r.ram1 = mmap(NULL, RAM1_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			      -1, 0);
		if (r.ram0 == MAP_FAILED || r.ram1 == MAP_FAILED)
			abort();
	}
	return &r;
}

/* Queue i's rings at 0x400 * i (up to 16 entries), all in the first 4 KiB. */
static void queues_setup(struct virtio_device *d, const struct guest_mem *mem, uint8_t hdr)
{
	for (unsigned int i = 0; i < d->num_queues; i++) {
		struct virtq *q = &d->queues[i];

		*q = (struct virtq){0};
		q->size = (uint16_t)(1u << ((hdr >> 4) % 5));
		q->mem = mem;
		q->desc_gpa = 0x400 * i;
		q->avail_gpa = q->desc_gpa + 0x100;
		q->used_gpa = q->desc_gpa + 0x200;
		q->event_idx = hdr & 4;
		q->indirect = hdr & 8;
		q->ready = true;
		virtq_reset(q);
	}
}

/*
 * Tames the fuzzer's rings so that chains mostly reach the device: buffer
 * addresses folded into RAM just past the rings (where the fuzzer's bytes
 * are), lengths under 1 KiB, next and
 * head indices within the queue, avail->idx at most `size` ahead. The
 * payloads (PFNs, stats) stay raw; raw rings are fuzz_virtq's job.
 */
static void rings_tame(const struct virtq *q)
{
	uint8_t *desc = gmem_ptr(q->mem, q->desc_gpa, VIRTQ_DESC_BYTES(q->size));
	uint8_t *avail = gmem_ptr(q->mem, q->avail_gpa, VIRTQ_AVAIL_BYTES(q->size));
	uint16_t v16;

	for (unsigned int i = 0; i < q->size; i++) {
		uint8_t *d = desc + 16 * i;
		uint64_t addr;
		uint32_t len;

		memcpy(&addr, d, 8);
		memcpy(&len, d + 8, 4);
		memcpy(&v16, d + 14, 2);
		len %= 0x400;
		if (addr >> 63)
			addr = RAM1_GPA + addr % (RAM1_SIZE - len);
		else
			addr = 0xc00 + addr % (TAME_END - 0xc00 - len);
		v16 %= q->size;
		memcpy(d, &addr, 8);
		memcpy(d + 8, &len, 4);
		memcpy(d + 14, &v16, 2);
	}
	memcpy(&v16, avail + 2, 2);
	v16 %= q->size + 1;
	memcpy(avail + 2, &v16, 2);
	for (unsigned int i = 0; i < q->size; i++) {
		memcpy(&v16, avail + 4 + 2 * i, 2);
		v16 %= q->size;
		memcpy(avail + 4 + 2 * i, &v16, 2);
	}
}

static void op_run(struct virtio_device *d, const struct guest_mem *mem, uint8_t hdr,
		   const uint8_t *op)
{
	uint8_t buf[8];
	uint32_t off = op[1] % 12, len = 1u << (op[2] % 4);

	switch (op[0] % 8) {
	case 0:
	case 1:
	case 2:
		d->ops->queue_notify(d, op[0] % 8);
		break;
	case 3:
		virtio_balloon_request_stats(d);
		break;
	case 4:
		virtio_balloon_set_target(d, (uint32_t)op[1] << 8 | op[2]);
		break;
	case 5:
		memcpy(buf, op, 3);
		memset(buf + 3, op[2], sizeof(buf) - 3);
		d->ops->config_write(d, off, buf, len);
		break;
	case 6:
		d->ops->config_read(d, off, buf, len);
		break;
	case 7:
		d->ops->reset(d);
		queues_setup(d, mem, hdr);
		d->ops->activate(d);
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct virtio_balloon_config cfg = {0};
	struct fuzz_ram *r = ram_get();
	struct gmem_region regions[2];
	struct virtio_balloon_stats st;
	struct virtio_device *d;
	struct guest_mem mem;
	const uint8_t *ops;
	size_t nops;
	uint8_t hdr, feat, tame;
	char err[128];

	if (size < HDR_SIZE)
		return 0;
	/*
	 * hdr: 1 stats, 2 deflate-on-oom, 4 event_idx, 8 indirect, >>4 queue
	 * size; then the op count, the driver's feature byte, and 1: tame rings.
	 */
	hdr = data[0];
	feat = data[2];
	tame = data[3] & 1;
	cfg.stats = hdr & 1;
	cfg.deflate_on_oom = hdr & 2;
	nops = data[1] % MAX_OPS;
	ops = data + HDR_SIZE;
	if (size < HDR_SIZE + 3 * nops)
		nops = (size - HDR_SIZE) / 3;
	data += HDR_SIZE + 3 * nops;
	size -= HDR_SIZE + 3 * nops;

	memset(r->ram0, 0, RAM0_SIZE);
	memset(r->ram1, 0, RAM1_SIZE);
	memcpy(r->ram0, data, size < RAM0_SIZE ? size : RAM0_SIZE);
	if (size > RAM0_SIZE)
		memcpy(r->ram1, data + RAM0_SIZE,
		       size - RAM0_SIZE < RAM1_SIZE ? size - RAM0_SIZE : RAM1_SIZE);
	regions[0] = (struct gmem_region){.gpa = 0, .size = RAM0_SIZE, .hva = r->ram0};
	regions[1] = (struct gmem_region){.gpa = RAM1_GPA, .size = RAM1_SIZE, .hva = r->ram1};
	gmem_init_fake(&mem, regions, 2);

	if (virtio_balloon_create(&cfg, &d, err, sizeof(err)))
		abort();
	d->mem = &mem;
	d->signal_used = no_signal;
	d->signal_config = no_config;
	d->set_broken = no_broken;
	d->driver_features = (d->device_features & feat) | 1ull << VIRTIO_F_VERSION_1;
	queues_setup(d, &mem, hdr);
	for (unsigned int i = 0; tame && i < d->num_queues; i++)
		rings_tame(&d->queues[i]);
	d->ops->activate(d);

	/* With no ops, kick every queue once. */
	if (!nops) {
		for (uint16_t q = 0; q < 3; q++)
			d->ops->queue_notify(d, q);
		virtio_balloon_request_stats(d);
	}
	for (size_t i = 0; i < nops; i++)
		op_run(d, &mem, hdr, ops + 3 * i);

	virtio_balloon_get_stats(d, &st);
	if (st.inflated_pages > mem.ram_size / 4096 || st.present >> VIRTIO_BALLOON_S_NR)
		abort();
	virtio_balloon_destroy(d);
	return 0;
}
