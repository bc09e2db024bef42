#include <criterion/criterion.h>
#include <endian.h>
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "unit/virtq_fake.h"
#include "vmm/event.h"
#include "vmm/virtio/balloon.h"

/*
 * Guest RAM: VQ_FAKE_RAM_SIZE (8 MiB) of anonymous memory at gpa 0, so
 * madvise really drops pages. Queue i's rings sit at 0x1000 * (i + 1),
 * its buffers at 0x10000 * (i + 1); balloon pages are taken from 1 MiB up.
 */
#define QSIZE 16
#define RAM_PAGES (VQ_FAKE_RAM_SIZE / 4096)
#define PFN_BASE 256
#define NQ 3

struct bt {
	uint8_t *ram;
	struct guest_mem mem;
	struct vq_fake vq[NQ];
	struct virtio_device *d;
	int used_signals[NQ];
	int config_signals;
	int broken;
	const char *why;
};

static struct bt *bt_of(struct virtio_device *d)
{
	return d->transport;
}

static void rec_used(struct virtio_device *d, uint16_t q)
{
	cr_assert_lt(q, NQ);
	/* Atomic: the stats timer signals from the event thread. */
	__atomic_add_fetch(&bt_of(d)->used_signals[q], 1, __ATOMIC_SEQ_CST);
}

static void rec_config(struct virtio_device *d)
{
	bt_of(d)->config_signals++;
}

static void rec_broken(struct virtio_device *d, const char *why)
{
	bt_of(d)->broken++;
	bt_of(d)->why = why;
}

static void queue_setup(struct bt *t, unsigned int qi)
{
	struct vq_fake *f = &t->vq[qi];

	memset(f, 0, sizeof(*f));
	f->ram = t->ram;
	f->mem = t->mem;
	f->size = QSIZE;
	f->q.size = QSIZE;
	f->q.mem = &t->mem;
	f->q.desc_gpa = 0x1000 * (qi + 1);
	f->q.avail_gpa = f->q.desc_gpa + VIRTQ_DESC_BYTES(QSIZE);
	f->q.used_gpa = f->q.desc_gpa + 0x800;
	f->q.ready = true;
	f->alloc_gpa = 0x10000 * (qi + 1);
	t->d->queues[qi] = f->q;
}

/* A device as the transport would hand it over, not yet activated. */
static void bt_create(struct bt *t, const struct virtio_balloon_config *cfg)
{
	struct gmem_region r = {.gpa = 0, .size = VQ_FAKE_RAM_SIZE};
	char err[256] = "";

	memset(t, 0, sizeof(*t));
	t->ram = mmap(NULL, VQ_FAKE_RAM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		      -1, 0);
	cr_assert_neq(t->ram, MAP_FAILED);
	r.hva = t->ram;
	gmem_init_fake(&t->mem, &r, 1);
	cr_assert_eq(virtio_balloon_create(cfg, &t->d, err, sizeof(err)), 0, "%s", err);
	t->d->mem = &t->mem;
	t->d->transport = t;
	t->d->signal_used = rec_used;
	t->d->signal_config = rec_config;
	t->d->set_broken = rec_broken;
	for (unsigned int i = 0; i < t->d->num_queues; i++)
		queue_setup(t, i);
}

static void bt_activate(struct bt *t)
{
	t->d->driver_features = t->d->device_features | (1ull << VIRTIO_F_VERSION_1);
	cr_assert_eq(t->d->ops->activate(t->d), 0);
}

static void bt_init(struct bt *t)
{
	struct virtio_balloon_config cfg = {.stats = true};

	bt_create(t, &cfg);
	bt_activate(t);
}

static void bt_fini(struct bt *t)
{
	virtio_balloon_destroy(t->d);
	munmap(t->ram, VQ_FAKE_RAM_SIZE);
}

static void kick(struct bt *t, uint16_t qi)
{
	t->d->ops->queue_notify(t->d, qi);
}

/* Queues one request of n little-endian PFNs, in one descriptor. */
static uint16_t add_pfns(struct bt *t, uint16_t qi, const uint32_t *pfns, unsigned int n)
{
	uint32_t le[512];
	struct vq_fake_seg seg = {.data = le, .len = n * 4};

	cr_assert_leq(n, 512);
	for (unsigned int i = 0; i < n; i++)
		le[i] = htole32(pfns[i]);
	return vq_fake_add_chain(&t->vq[qi], &seg, 1);
}

static uint8_t *page(struct bt *t, uint32_t pfn)
{
	return t->ram + (uint64_t)pfn * 4096;
}

static void fill(struct bt *t, uint32_t pfn, unsigned int n)
{
	memset(page(t, pfn), 0xa5, (size_t)n * 4096);
}

static bool resident(struct bt *t, uint32_t pfn)
{
	unsigned char v = 0;

	cr_assert_eq(mincore(page(t, pfn), 4096, &v), 0);
	return v & 1;
}

static bool zero_page(struct bt *t, uint32_t pfn)
{
	for (unsigned int i = 0; i < 4096; i++)
		if (page(t, pfn)[i])
			return false;
	return true;
}

static struct virtio_balloon_stats stats(struct bt *t)
{
	struct virtio_balloon_stats s;

	virtio_balloon_get_stats(t->d, &s);
	return s;
}

static void used(struct bt *t, uint16_t qi, uint16_t i, uint32_t *id, uint32_t *len)
{
	vq_fake_used(&t->vq[qi], i, id, len);
}

Test(virtio_balloon, create_offers_what_was_asked)
{
	struct virtio_balloon_config cfg = {.deflate_on_oom = true, .stats = true, .target_mib = 3};
	struct bt t;

	bt_create(&t, &cfg);
	cr_assert_eq(t.d->ops->type, VIRTIO_ID_BALLOON);
	cr_assert_eq(t.d->device_features, (1ull << VIRTIO_BALLOON_F_STATS_VQ) |
					       (1ull << VIRTIO_BALLOON_F_DEFLATE_ON_OOM));
	cr_assert_eq(t.d->num_queues, 3);
	cr_assert_eq(t.d->config_size, 8);
	cr_assert_eq(stats(&t).target_pages, 3 * 256);
	bt_fini(&t);

	cfg = (struct virtio_balloon_config){.stats = false};
	bt_create(&t, &cfg);
	cr_assert_eq(t.d->device_features, 0, "no MUST_TELL_HOST, no stats, no deflate-on-oom");
	cr_assert_eq(t.d->num_queues, 2);
	bt_fini(&t);
}

Test(virtio_balloon, inflate_gives_pages_back)
{
	uint32_t pfns[] = {PFN_BASE + 0, PFN_BASE + 1, PFN_BASE + 2, PFN_BASE + 3,
			   PFN_BASE + 9, PFN_BASE + 7, PFN_BASE + 8};
	uint32_t id, len;
	uint16_t head;
	struct bt t;

	bt_init(&t);
	fill(&t, PFN_BASE, 12);
	for (unsigned int i = 0; i < 12; i++)
		cr_assert(resident(&t, PFN_BASE + i));
	head = add_pfns(&t, VIRTIO_BALLOON_Q_INFLATE, pfns, 7);
	kick(&t, VIRTIO_BALLOON_Q_INFLATE);

	cr_assert_eq(vq_fake_used_idx(&t.vq[0]), 1);
	used(&t, 0, 0, &id, &len);
	cr_assert_eq(id, head);
	cr_assert_eq(len, 0);
	cr_assert_eq(t.used_signals[0], 1);
	/* Released pages leave the host's RSS; their neighbours stay. */
	for (unsigned int i = 0; i < 7; i++)
		cr_assert_not(resident(&t, pfns[i]), "pfn %u still resident", pfns[i]);
	cr_assert(resident(&t, PFN_BASE + 4));
	cr_assert(resident(&t, PFN_BASE + 10));
	/* And read back as zero, which is what the guest sees on its next touch. */
	for (unsigned int i = 0; i < 7; i++)
		cr_assert(zero_page(&t, pfns[i]));
	cr_assert_eq(page(&t, PFN_BASE + 4)[0], 0xa5);
	cr_assert_eq(page(&t, PFN_BASE + 6)[4095], 0xa5);
	cr_assert_eq(stats(&t).inflated_pages, 7);
	cr_assert_eq(stats(&t).invalid_pfns, 0);
	cr_assert_eq(t.broken, 0);
	bt_fini(&t);
}

/* Guest RAM the kernel may back with transparent huge pages: a 4 KiB discard splits one. */
Test(virtio_balloon, inflate_inside_a_huge_page)
{
	uint32_t pfn = 1024 + 17; /* inside 2 MiB of filled pages */
	struct bt t;

	bt_init(&t);
	madvise(t.ram, VQ_FAKE_RAM_SIZE, MADV_HUGEPAGE); /* a hint: may be ignored */
	fill(&t, 1024, 512);
	add_pfns(&t, 0, &pfn, 1);
	kick(&t, 0);
	cr_assert_not(resident(&t, pfn));
	cr_assert(zero_page(&t, pfn));
	cr_assert_eq(page(&t, pfn - 1)[4095], 0xa5);
	cr_assert_eq(page(&t, pfn + 1)[0], 0xa5);
	cr_assert_eq(stats(&t).inflated_pages, 1);
	bt_fini(&t);
}

Test(virtio_balloon, inflate_several_chains_and_segments)
{
	uint32_t a[] = {htole32(PFN_BASE + 20), htole32(PFN_BASE + 21)};
	uint32_t b[] = {htole32(PFN_BASE + 22)};
	struct vq_fake_seg segs[] = {{.data = a, .len = 8}, {.data = b, .len = 4}};
	struct bt t;

	bt_init(&t);
	fill(&t, PFN_BASE + 20, 4);
	vq_fake_add_chain(&t.vq[0], segs, 2);
	vq_fake_add_indirect(&t.vq[0], &segs[1], 1);
	t.d->queues[0].indirect = true;
	kick(&t, 0);
	cr_assert_eq(vq_fake_used_idx(&t.vq[0]), 2);
	cr_assert_eq(t.used_signals[0], 1, "one interrupt per batch");
	cr_assert(zero_page(&t, PFN_BASE + 20));
	cr_assert(zero_page(&t, PFN_BASE + 22));
	cr_assert_eq(page(&t, PFN_BASE + 23)[0], 0xa5);
	/* PFN 22 came twice: counted twice, it is the driver's bookkeeping. */
	cr_assert_eq(stats(&t).inflated_pages, 4);
	bt_fini(&t);
}

Test(virtio_balloon, invalid_pfns_are_skipped)
{
	uint32_t pfns[] = {RAM_PAGES, 0xffffffff, PFN_BASE + 1, 0x100000, RAM_PAGES - 1};
	struct bt t;

	bt_init(&t);
	fill(&t, PFN_BASE, 2);
	fill(&t, RAM_PAGES - 1, 1);
	add_pfns(&t, 0, pfns, 5);
	kick(&t, 0);
	cr_assert_eq(vq_fake_used_idx(&t.vq[0]), 1, "the request completes");
	cr_assert_eq(t.broken, 0, "bad PFNs are not a broken ring");
	cr_assert(zero_page(&t, PFN_BASE + 1));
	cr_assert(zero_page(&t, RAM_PAGES - 1), "the last page of RAM is RAM");
	cr_assert_eq(page(&t, PFN_BASE)[0], 0xa5);
	cr_assert_eq(stats(&t).invalid_pfns, 3);
	cr_assert_eq(stats(&t).inflated_pages, 2);
	bt_fini(&t);
}

Test(virtio_balloon, odd_lengths_read_whole_pfns_only)
{
	/* 11 bytes: two PFNs and 3 stray bytes; then a PFN split over two descriptors. */
	uint8_t odd[11];
	uint32_t p0 = htole32(PFN_BASE + 30), p1 = htole32(PFN_BASE + 31);
	uint32_t split = htole32(PFN_BASE + 33);
	struct vq_fake_seg s1 = {.data = odd, .len = sizeof(odd)};
	struct vq_fake_seg s2[] = {
	    {.data = &split, .len = 2}, {.data = (uint8_t *)&split + 2, .len = 2}, {.len = 1}};
	struct bt t;

	memcpy(odd, &p0, 4);
	memcpy(odd + 4, &p1, 4);
	/* The stray bytes would read as PFN_BASE + 40 if padded with a zero. */
	odd[8] = (PFN_BASE + 40) & 0xff;
	odd[9] = (PFN_BASE + 40) >> 8;
	odd[10] = 0;
	bt_init(&t);
	fill(&t, PFN_BASE + 30, 4);
	fill(&t, PFN_BASE + 40, 1);
	vq_fake_add_chain(&t.vq[0], &s1, 1);
	vq_fake_add_chain(&t.vq[0], s2, 3);
	kick(&t, 0);
	cr_assert_eq(vq_fake_used_idx(&t.vq[0]), 2);
	cr_assert(zero_page(&t, PFN_BASE + 30));
	cr_assert(zero_page(&t, PFN_BASE + 31));
	cr_assert_eq(page(&t, PFN_BASE + 32)[0], 0xa5);
	cr_assert(zero_page(&t, PFN_BASE + 33), "a PFN split over descriptors is one PFN");
	cr_assert_eq(page(&t, PFN_BASE + 40)[0], 0xa5, "stray bytes are no PFN");
	cr_assert_eq(stats(&t).invalid_pfns, 0);
	cr_assert_eq(stats(&t).inflated_pages, 3);
	cr_assert_eq(t.broken, 0);
	bt_fini(&t);
}

Test(virtio_balloon, empty_and_writable_requests_complete)
{
	struct vq_fake_seg w = {.len = 64, .write = true};
	struct vq_fake_seg z = {.len = 0};
	struct bt t;

	bt_init(&t);
	vq_fake_add_chain(&t.vq[0], &w, 1);
	vq_fake_add_chain(&t.vq[1], &z, 1);
	kick(&t, 0);
	kick(&t, 1);
	cr_assert_eq(vq_fake_used_idx(&t.vq[0]), 1);
	cr_assert_eq(vq_fake_used_idx(&t.vq[1]), 1);
	cr_assert_eq(stats(&t).inflated_pages, 0);
	cr_assert_eq(t.broken, 0);
	bt_fini(&t);
}

Test(virtio_balloon, deflate_accounting)
{
	uint32_t in[] = {PFN_BASE, PFN_BASE + 1, PFN_BASE + 2, PFN_BASE + 3};
	uint32_t out[] = {PFN_BASE, PFN_BASE + 1};
	uint32_t bad[] = {0xfffffff0};
	uint32_t many[8] = {PFN_BASE, PFN_BASE, PFN_BASE, PFN_BASE,
			    PFN_BASE, PFN_BASE, PFN_BASE, PFN_BASE};
	struct bt t;

	bt_init(&t);
	fill(&t, PFN_BASE, 4);
	add_pfns(&t, 0, in, 4);
	kick(&t, 0);
	cr_assert_eq(stats(&t).inflated_pages, 4);

	add_pfns(&t, 1, out, 2);
	kick(&t, 1);
	cr_assert_eq(vq_fake_used_idx(&t.vq[1]), 1);
	cr_assert_eq(t.used_signals[1], 1);
	cr_assert_eq(stats(&t).inflated_pages, 2);
	/* The deflated page is usable again: writes stick. */
	page(&t, PFN_BASE)[0] = 7;
	cr_assert_eq(page(&t, PFN_BASE)[0], 7);

	add_pfns(&t, 1, bad, 1);
	kick(&t, 1);
	cr_assert_eq(stats(&t).inflated_pages, 2, "an invalid PFN deflates nothing");
	cr_assert_eq(stats(&t).invalid_pfns, 1);

	add_pfns(&t, 1, many, 8);
	kick(&t, 1);
	cr_assert_eq(stats(&t).inflated_pages, 0, "never below zero");
	bt_fini(&t);
}

Test(virtio_balloon, inflated_count_bounded_by_ram)
{
	uint32_t pfns[512];
	struct bt t;

	for (unsigned int i = 0; i < 512; i++)
		pfns[i] = PFN_BASE + (i % 2) * 2; /* never contiguous: one madvise each */
	bt_init(&t);
	for (unsigned int k = 0; k < 5; k++) {
		add_pfns(&t, 0, pfns, 512);
		kick(&t, 0);
	}
	cr_assert_eq(vq_fake_used_idx(&t.vq[0]), 5);
	cr_assert_eq(stats(&t).inflated_pages, RAM_PAGES);
	bt_fini(&t);
}

static uint32_t cfg_read32(struct bt *t, uint32_t off)
{
	uint32_t v;

	t->d->ops->config_read(t->d, off, (uint8_t *)&v, 4);
	return le32toh(v);
}

static void cfg_write32(struct bt *t, uint32_t off, uint32_t v)
{
	v = htole32(v);
	t->d->ops->config_write(t->d, off, (const uint8_t *)&v, 4);
}

Test(virtio_balloon, config_space)
{
	struct virtio_balloon_config cfg = {.stats = true, .target_mib = 2};
	uint8_t b8[8], b2[2] = {0x34, 0x12};
	uint16_t v16;
	struct bt t;

	bt_create(&t, &cfg);
	bt_activate(&t);
	cr_assert_eq(cfg_read32(&t, 0), 512, "num_pages");
	cr_assert_eq(cfg_read32(&t, 4), 0, "actual");
	cfg_write32(&t, 4, 100);
	cr_assert_eq(cfg_read32(&t, 4), 100);
	cr_assert_eq(stats(&t).actual_pages, 100);
	/* Byte-wise writes inside actual are fine. */
	t.d->ops->config_write(t.d, 6, b2, 2);
	cr_assert_eq(cfg_read32(&t, 4), 0x12340064);
	t.d->ops->config_read(t.d, 6, (uint8_t *)&v16, 2);
	cr_assert_eq(le16toh(v16), 0x1234);

	/* num_pages is the host's: writes touching it are dropped whole. */
	cfg_write32(&t, 0, 7);
	cr_assert_eq(cfg_read32(&t, 0), 512);
	memset(b8, 0xff, 8);
	t.d->ops->config_write(t.d, 2, b8, 4);
	t.d->ops->config_write(t.d, 0, b8, 8);
	cr_assert_eq(cfg_read32(&t, 0), 512);
	cr_assert_eq(cfg_read32(&t, 4), 0x12340064);

	/* Hostile offsets and lengths: nothing changes, reads give zeros. */
	t.d->ops->config_write(t.d, 6, b8, 4);
	t.d->ops->config_write(t.d, 8, b8, 4);
	t.d->ops->config_write(t.d, 0xfffffffc, b8, 8);
	t.d->ops->config_write(t.d, 4, b8, 0xfffffffe);
	cr_assert_eq(cfg_read32(&t, 4), 0x12340064);
	cr_assert_eq(cfg_read32(&t, 8), 0);
	cr_assert_eq(cfg_read32(&t, 6), 0, "read crossing the end");
	cr_assert_eq(cfg_read32(&t, 0xfffffffe), 0);
	t.d->ops->config_read(t.d, 0, b8, 8);
	cr_assert_eq(b8[0], 0x00);
	cr_assert_eq(b8[1], 0x02);
	cr_assert_eq(b8[7], 0x12);
	bt_fini(&t);
}

Test(virtio_balloon, set_target_signals_config_change)
{
	struct virtio_balloon_config cfg = {.stats = true};
	struct bt t;

	bt_create(&t, &cfg);
	cr_assert_eq(virtio_balloon_set_target(t.d, 100), 0);
	cr_assert_eq(t.config_signals, 0, "no interrupt before the driver runs");
	cr_assert_eq(cfg_read32(&t, 0), 100);
	bt_activate(&t);
	cr_assert_eq(virtio_balloon_set_target(t.d, 1024), 0);
	cr_assert_eq(t.config_signals, 1);
	cr_assert_eq(cfg_read32(&t, 0), 1024);
	cr_assert_eq(stats(&t).target_pages, 1024);
	cr_assert_eq(virtio_balloon_set_target(t.d, RAM_PAGES), 0);
	cr_assert_eq(virtio_balloon_set_target(t.d, RAM_PAGES + 1), -EINVAL);
	cr_assert_eq(cfg_read32(&t, 0), RAM_PAGES);
	cr_assert_eq(t.config_signals, 2);
	cr_assert_eq(virtio_balloon_set_target(t.d, 0), 0);
	cr_assert_eq(cfg_read32(&t, 0), 0);
	bt_fini(&t);
}

struct stat_entry {
	uint16_t tag;
	uint64_t val;
};

/* Encodes entries as the driver lays them out: packed le16 + le64. */
static uint32_t stats_encode(uint8_t *buf, const struct stat_entry *e, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++) {
		uint16_t tag = htole16(e[i].tag);
		uint64_t val = htole64(e[i].val);

		memcpy(buf + 10 * i, &tag, 2);
		memcpy(buf + 10 * i + 2, &val, 8);
	}
	return 10 * n;
}

static uint16_t add_stats(struct bt *t, const struct stat_entry *e, unsigned int n)
{
	uint8_t buf[640];
	struct vq_fake_seg seg = {.data = buf};

	seg.len = stats_encode(buf, e, n);
	return vq_fake_add_chain(&t->vq[2], &seg, 1);
}

Test(virtio_balloon, stats_held_then_returned_on_request)
{
	struct stat_entry e1[] = {{VIRTIO_BALLOON_S_MEMFREE, 123 << 20},
				  {VIRTIO_BALLOON_S_MEMTOT, 456 << 20},
				  {99, 5},
				  {VIRTIO_BALLOON_S_SWAP_IN, 7},
				  {VIRTIO_BALLOON_S_DIRECT_RECLAIM, 9}};
	struct stat_entry e2[] = {{VIRTIO_BALLOON_S_MEMFREE, 100}};
	struct virtio_balloon_stats s;
	uint32_t id, len;
	uint16_t head;
	struct bt t;

	bt_init(&t);
	cr_assert_eq(virtio_balloon_request_stats(t.d), -EAGAIN, "no buffer yet");
	cr_assert_eq(stats(&t).updates, 0);
	cr_assert_eq(stats(&t).updated_ms, 0);

	head = add_stats(&t, e1, 5);
	kick(&t, VIRTIO_BALLOON_Q_STATS);
	cr_assert_eq(vq_fake_used_idx(&t.vq[2]), 0, "the device keeps the buffer");
	cr_assert_eq(t.used_signals[2], 0);
	s = stats(&t);
	cr_assert_eq(s.updates, 1);
	cr_assert_neq(s.updated_ms, 0);
	cr_assert_eq(s.present, (1u << VIRTIO_BALLOON_S_MEMFREE) | (1u << VIRTIO_BALLOON_S_MEMTOT) |
				    (1u << VIRTIO_BALLOON_S_SWAP_IN) |
				    (1u << VIRTIO_BALLOON_S_DIRECT_RECLAIM));
	cr_assert_eq(s.stats[VIRTIO_BALLOON_S_MEMFREE], 123ull << 20);
	cr_assert_eq(s.stats[VIRTIO_BALLOON_S_MEMTOT], 456ull << 20);
	cr_assert_eq(s.stats[VIRTIO_BALLOON_S_SWAP_IN], 7);
	cr_assert_eq(s.stats[VIRTIO_BALLOON_S_DIRECT_RECLAIM], 9);

	cr_assert_eq(virtio_balloon_request_stats(t.d), 0);
	cr_assert_eq(vq_fake_used_idx(&t.vq[2]), 1);
	used(&t, 2, 0, &id, &len);
	cr_assert_eq(id, head);
	cr_assert_eq(len, 0);
	cr_assert_eq(t.used_signals[2], 1);
	cr_assert_eq(virtio_balloon_request_stats(t.d), -EAGAIN, "already asked");

	/* The driver refills: the new snapshot replaces the old one. */
	add_stats(&t, e2, 1);
	kick(&t, 2);
	s = stats(&t);
	cr_assert_eq(s.updates, 2);
	cr_assert_eq(s.present, 1u << VIRTIO_BALLOON_S_MEMFREE);
	cr_assert_eq(s.stats[VIRTIO_BALLOON_S_MEMFREE], 100);
	cr_assert_eq(s.stats[VIRTIO_BALLOON_S_MEMTOT], 0);
	cr_assert_eq(virtio_balloon_request_stats(t.d), 0);
	cr_assert_eq(vq_fake_used_idx(&t.vq[2]), 2);
	bt_fini(&t);
}

/* Linux queues and kicks its first stats buffer before DRIVER_OK. */
Test(virtio_balloon, stats_buffer_queued_before_driver_ok)
{
	struct virtio_balloon_config cfg = {.stats = true};
	struct stat_entry e = {VIRTIO_BALLOON_S_MEMTOT, 1 << 30};
	struct bt t;

	bt_create(&t, &cfg);
	add_stats(&t, &e, 1);
	kick(&t, 2);
	cr_assert_eq(stats(&t).updates, 0);
	bt_activate(&t);
	cr_assert_eq(stats(&t).updates, 1);
	cr_assert_eq(stats(&t).stats[VIRTIO_BALLOON_S_MEMTOT], 1 << 30);
	cr_assert_eq(virtio_balloon_request_stats(t.d), 0);
	cr_assert_eq(vq_fake_used_idx(&t.vq[2]), 1);
	bt_fini(&t);
}

Test(virtio_balloon, broken_stats_ring_fails_activation)
{
	struct virtio_balloon_config cfg = {.stats = true};
	struct bt t;

	bt_create(&t, &cfg);
	vq_fake_set_avail_idx(&t.vq[2], 1000);
	t.d->driver_features = t.d->device_features | (1ull << VIRTIO_F_VERSION_1);
	cr_assert_eq(t.d->ops->activate(t.d), -EINVAL);
	bt_fini(&t);
}

Test(virtio_balloon, hostile_stats_buffers)
{
	struct stat_entry e[] = {{VIRTIO_BALLOON_S_AVAIL, 0x1122334455667788ull},
				 {VIRTIO_BALLOON_S_CACHES, 42},
				 {0xffff, 1}};
	uint8_t buf[64];
	uint32_t n = stats_encode(buf, e, 3);
	struct vq_fake_seg odd = {.data = buf, .len = 25};     /* 2.5 entries */
	struct vq_fake_seg split[] = {{.data = buf, .len = 3}, /* entry 0 over two */
				      {.data = buf + 3, .len = n - 3}};
	struct vq_fake_seg wr = {.len = 100, .write = true};
	struct virtio_balloon_stats s;
	uint32_t id, len;
	uint16_t h1;
	struct bt t;

	bt_init(&t);
	h1 = vq_fake_add_chain(&t.vq[2], &odd, 1);
	kick(&t, 2);
	s = stats(&t);
	cr_assert_eq(s.present, (1u << VIRTIO_BALLOON_S_AVAIL) | (1u << VIRTIO_BALLOON_S_CACHES));
	cr_assert_eq(s.stats[VIRTIO_BALLOON_S_AVAIL], 0x1122334455667788ull);

	/* A second buffer while one is held: the older one goes back. */
	vq_fake_add_chain(&t.vq[2], split, 2);
	kick(&t, 2);
	cr_assert_eq(vq_fake_used_idx(&t.vq[2]), 1);
	used(&t, 2, 0, &id, &len);
	cr_assert_eq(id, h1);
	s = stats(&t);
	cr_assert_eq(s.updates, 2);
	cr_assert_eq(s.stats[VIRTIO_BALLOON_S_AVAIL], 0x1122334455667788ull);
	cr_assert_eq(s.stats[VIRTIO_BALLOON_S_CACHES], 42);

	/* Only writable bytes: an update with nothing in it. */
	vq_fake_add_chain(&t.vq[2], &wr, 1);
	kick(&t, 2);
	s = stats(&t);
	cr_assert_eq(s.updates, 3);
	cr_assert_eq(s.present, 0);
	cr_assert_eq(vq_fake_used_idx(&t.vq[2]), 2);
	cr_assert_eq(virtio_balloon_request_stats(t.d), 0);
	cr_assert_eq(vq_fake_used_idx(&t.vq[2]), 3);
	cr_assert_eq(t.broken, 0);
	bt_fini(&t);
}

Test(virtio_balloon, long_stats_buffer_is_cut)
{
	struct stat_entry e[100];
	struct virtio_balloon_stats s;
	uint8_t buf[1000];
	struct vq_fake_seg seg = {.data = buf};
	struct bt t;

	for (unsigned int i = 0; i < 100; i++)
		e[i] = (struct stat_entry){
		    i < 64 ? VIRTIO_BALLOON_S_MINFLT : VIRTIO_BALLOON_S_MAJFLT, i};
	seg.len = stats_encode(buf, e, 100);
	bt_init(&t);
	vq_fake_add_chain(&t.vq[2], &seg, 1);
	kick(&t, 2);
	s = stats(&t);
	cr_assert_eq(s.present, 1u << VIRTIO_BALLOON_S_MINFLT, "entries after the 64th ignored");
	cr_assert_eq(s.stats[VIRTIO_BALLOON_S_MINFLT], 63);
	bt_fini(&t);
}

Test(virtio_balloon, stats_need_the_feature_and_a_running_driver)
{
	struct virtio_balloon_config cfg = {.stats = true};
	struct stat_entry e = {VIRTIO_BALLOON_S_MEMFREE, 1};
	struct bt t;

	bt_create(&t, &cfg);
	cr_assert_eq(virtio_balloon_request_stats(t.d), -ENODEV);
	/* The driver did not take STATS_VQ: queue 2 is not its to kick. */
	t.d->driver_features = 1ull << VIRTIO_F_VERSION_1;
	cr_assert_eq(t.d->ops->activate(t.d), 0);
	add_stats(&t, &e, 1);
	kick(&t, 2);
	cr_assert_eq(stats(&t).updates, 0);
	cr_assert_eq(virtio_balloon_request_stats(t.d), -EOPNOTSUPP);
	bt_fini(&t);

	cfg.stats = false;
	bt_create(&t, &cfg);
	bt_activate(&t);
	kick(&t, 2);
	kick(&t, 7);
	kick(&t, 0xffff);
	cr_assert_eq(virtio_balloon_request_stats(t.d), -EOPNOTSUPP);
	cr_assert_eq(t.broken, 0);
	bt_fini(&t);
}

Test(virtio_balloon, kicks_before_activation_are_ignored)
{
	struct virtio_balloon_config cfg = {.stats = true};
	uint32_t pfn = PFN_BASE;
	struct bt t;

	bt_create(&t, &cfg);
	fill(&t, PFN_BASE, 1);
	add_pfns(&t, 0, &pfn, 1);
	kick(&t, 0);
	cr_assert_eq(vq_fake_used_idx(&t.vq[0]), 0);
	cr_assert_eq(page(&t, PFN_BASE)[0], 0xa5);
	bt_fini(&t);
}

Test(virtio_balloon, broken_ring_marks_device_broken)
{
	uint32_t pfn = PFN_BASE;
	struct stat_entry e = {VIRTIO_BALLOON_S_MEMFREE, 1};
	struct bt t;

	bt_init(&t);
	add_pfns(&t, 0, &pfn, 1);
	vq_fake_set_avail_idx(&t.vq[0], 100); /* more than the queue size ahead */
	kick(&t, 0);
	cr_assert_eq(t.broken, 1);
	cr_assert_not_null(t.why);
	cr_assert_eq(vq_fake_used_idx(&t.vq[0]), 0);

	/* A descriptor pointing outside RAM on the stats queue. */
	vq_fake_set_desc(&t.vq[2], 0, VQ_FAKE_RAM_SIZE - 4, 16, 0, 0);
	vq_fake_publish(&t.vq[2], 0);
	kick(&t, 2);
	cr_assert_eq(t.broken, 2);
	cr_assert_eq(virtio_balloon_request_stats(t.d), -EAGAIN);

	/* The stats queue's used ring moved outside RAM while a buffer was held. */
	add_stats(&t, &e, 1);
	t.d->queues[2].last_avail = t.vq[2].avail_idx - 1;
	kick(&t, 2);
	cr_assert_eq(stats(&t).updates, 1);
	t.d->queues[2].used_gpa = VQ_FAKE_RAM_SIZE;
	cr_assert_eq(virtio_balloon_request_stats(t.d), -EIO);
	cr_assert_eq(t.broken, 3);
	bt_fini(&t);
}

Test(virtio_balloon, reset_forgets_the_stats_buffer)
{
	struct stat_entry e = {VIRTIO_BALLOON_S_MEMFREE, 1};
	uint32_t pfn = PFN_BASE;
	struct bt t;

	bt_init(&t);
	add_pfns(&t, 0, &pfn, 1);
	kick(&t, 0);
	cfg_write32(&t, 4, 1);
	add_stats(&t, &e, 1);
	kick(&t, 2);
	cr_assert_eq(virtio_balloon_set_target(t.d, 10), 0);

	t.d->ops->reset(t.d);
	cr_assert_eq(virtio_balloon_request_stats(t.d), -ENODEV);
	/* The new driver lays out fresh rings. */
	memset(t.ram + 0x1000, 0, 0x1000 * NQ);
	for (unsigned int i = 0; i < NQ; i++)
		queue_setup(&t, i);
	bt_activate(&t);
	cr_assert_eq(virtio_balloon_request_stats(t.d), -EAGAIN, "the old buffer is gone");
	cr_assert_eq(vq_fake_used_idx(&t.vq[2]), 0);
	cr_assert_eq(stats(&t).inflated_pages, 0, "a new driver starts with an empty balloon");
	cr_assert_eq(cfg_read32(&t, 4), 0);
	cr_assert_eq(cfg_read32(&t, 0), 10, "the host's target stays");
	cr_assert(zero_page(&t, PFN_BASE), "the page stays given back");
	bt_fini(&t);
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

Test(virtio_balloon, stats_polled_by_timer, .timeout = 10)
{
	struct virtio_balloon_config cfg = {.stats = true, .stats_interval_s = 1};
	struct stat_entry e = {VIRTIO_BALLOON_S_MEMFREE, 1};
	struct event_loop el;
	uint64_t start, waited;
	struct bt t;

	cr_assert_eq(event_loop_init(&el), 0);
	cr_assert_eq(event_loop_start(&el), 0);
	bt_create(&t, &cfg);
	t.d->events = &el;
	bt_activate(&t);
	add_stats(&t, &e, 1);
	kick(&t, 2);
	/* After about a second the device hands the buffer back by itself. */
	start = mono_ms();
	while (!__atomic_load_n(&t.used_signals[2], __ATOMIC_SEQ_CST) && mono_ms() - start < 5000)
		usleep(10000);
	waited = mono_ms() - start;
	cr_assert_eq(__atomic_load_n(&t.used_signals[2], __ATOMIC_SEQ_CST), 1);
	cr_assert_eq(vq_fake_used_idx(&t.vq[2]), 1);
	cr_assert_geq(waited, 900, "returned after %lu ms, before the interval",
		      (unsigned long)waited);

	bt_fini(&t);
	event_loop_destroy(&el);
}

static int parse(const char *arg, struct virtio_balloon_config *cfg, char *err)
{
	return virtio_balloon_parse(arg, cfg, err, 256);
}

Test(virtio_balloon, parse_accepts)
{
	struct virtio_balloon_config cfg;
	char err[256] = "";

	cr_assert_eq(parse(NULL, &cfg, err), 0);
	cr_assert(cfg.stats);
	cr_assert_not(cfg.deflate_on_oom);
	cr_assert_eq(cfg.target_mib, 0);
	cr_assert_eq(cfg.stats_interval_s, 0);
	cr_assert_eq(parse("", &cfg, err), 0);
	cr_assert_eq(parse("deflate-on-oom", &cfg, err), 0);
	cr_assert(cfg.deflate_on_oom);
	cr_assert_eq(parse("target=128,deflate-on-oom,stats=5", &cfg, err), 0, "%s", err);
	cr_assert_eq(cfg.target_mib, 128);
	cr_assert(cfg.deflate_on_oom);
	cr_assert(cfg.stats);
	cr_assert_eq(cfg.stats_interval_s, 5);
	cr_assert_eq(parse("stats=off", &cfg, err), 0);
	cr_assert_not(cfg.stats);
	cr_assert_eq(parse("target=16777215", &cfg, err), 0);
	cr_assert_eq(cfg.target_mib, 16777215);
}

static void parse_fails(const char *arg, const char *needle)
{
	struct virtio_balloon_config cfg;
	char err[256] = "";

	cr_assert_eq(parse(arg, &cfg, err), -EINVAL, "%s accepted", arg);
	cr_assert_not_null(strstr(err, "--balloon"), "%s", err);
	cr_assert_not_null(strstr(err, needle), "'%s' not in '%s'", needle, err);
	cr_assert_null(strchr(err, '\n'));
}

Test(virtio_balloon, parse_rejects)
{
	char longarg[400];

	parse_fails("bogus", "bogus");
	parse_fails("deflate-on-oom,frobnicate", "frobnicate");
	parse_fails("deflate_on_oom", "deflate_on_oom");
	parse_fails("target=abc", "target=abc");
	parse_fails("target=", "target=");
	parse_fails("target=-1", "target=-1");
	parse_fails("target=16777216", "target=16777216");
	parse_fails("target=99999999999999999999", "MiB");
	parse_fails("stats=soon", "stats=soon");
	parse_fails("deflate-on-oom,,stats=1", "empty");
	parse_fails("deflate-on-oom,", "empty");
	memset(longarg, 'a', sizeof(longarg) - 1);
	longarg[sizeof(longarg) - 1] = '\0';
	parse_fails(longarg, "longer");
}

Test(virtio_balloon, create_rejects_huge_target)
{
	struct virtio_balloon_config cfg = {.target_mib = VIRTIO_BALLOON_MAX_TARGET_MIB + 1};
	struct virtio_device *d = NULL;
	char err[256] = "";

	cr_assert_eq(virtio_balloon_create(&cfg, &d, err, sizeof(err)), -EINVAL);
	cr_assert_not_null(strstr(err, "target"), "%s", err);
	cr_assert_null(d);
}
