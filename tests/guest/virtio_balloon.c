/*
 * virtio-balloon action: post a stats buffer, read the target num_pages,
 * touch that many pages from BALLOON_BASE up (so they are resident in the
 * monitor), give their frame numbers to the device on the inflate queue and
 * set `actual`. With balloon-hold on the command line the guest waits for a
 * line on COM1 after touching and after inflating, so a host test can sample
 * the monitor's RSS at both points.
 */
#include "guest.h"

#define BALLOON_F_STATS_VQ 1
#define CFG_NUM_PAGES 0
#define CFG_ACTUAL 4
#define PAGE 4096ull
#define BALLOON_BASE 0x1000000ull /* 16 MiB: above the virtio scratch area */
#define PFNS_PER_REQ 256
#define STAT_MEMFREE 4
#define STAT_MEMTOT 5
#define HOLD_CYCLES 180000000000ull /* 1-2 minutes for the host to answer */

struct stat_entry {
	uint16_t tag;
	uint64_t val;
} __attribute__((packed));

/* [lo, hi) inside one RAM entry and clear of the initrd. */
static bool region_ok(const struct boot_info *bi, uint64_t lo, uint64_t hi)
{
	bool ram = false;

	for (unsigned int i = 0; i < bi->nmem; i++)
		if (bi->mem[i].type == E820_RAM && bi->mem[i].start <= lo && hi <= bi->mem[i].end)
			ram = true;
	return ram && phys_ok(lo, hi - lo) &&
	       (!bi->initrd_size || bi->initrd_addr >= hi ||
		bi->initrd_addr + bi->initrd_size <= lo);
}

static void hold(const struct boot_info *bi)
{
	uint64_t start = rdtsc();

	if (!cmdline_has(bi->cmdline, "balloon-hold"))
		return;
	while (rdtsc() - start < HOLD_CYCLES) {
		if (serial_rx_ready() && serial_getc() == '\n')
			return;
		cpu_relax();
	}
	gfail("virtio balloon hold: no line from the host");
}

static void post_stats(struct virtio_ctx *c, struct virtio_dev *v)
{
	struct stat_entry *s = virtio_alloc(c, 2 * sizeof(*s));
	uint64_t ram = 0;

	if (!s)
		return;
	for (unsigned int i = 0; i < c->bi->nmem; i++)
		if (c->bi->mem[i].type == E820_RAM)
			ram += c->bi->mem[i].end - c->bi->mem[i].start;
	s[0] = (struct stat_entry){STAT_MEMTOT, ram};
	s[1] = (struct stat_entry){STAT_MEMFREE, ram / 2};
	struct vbuf b = {(uintptr_t)s, 2 * sizeof(*s), false};

	virtq_add(&v->q[2], &b, 1);
	gprintf("guest: balloon stats posted memtot=%lu\n", ram);
}

static bool inflate(struct virtio_ctx *c, struct virtio_dev *v, uint32_t pages)
{
	uint32_t *pfns = virtio_alloc(c, PFNS_PER_REQ * sizeof(uint32_t));

	if (!pfns)
		return false;
	for (uint32_t done = 0; done < pages;) {
		uint32_t n = pages - done < PFNS_PER_REQ ? pages - done : PFNS_PER_REQ;
		struct vbuf b = {(uintptr_t)pfns, n * (uint32_t)sizeof(uint32_t), false};

		for (uint32_t i = 0; i < n; i++)
			pfns[i] = (uint32_t)(BALLOON_BASE / PAGE) + done + i;
		if (virtq_xfer(&v->q[0], &b, 1, "balloon inflate") < 0)
			return false;
		done += n;
	}
	return true;
}

void virtio_balloon_run(struct virtio_ctx *c, struct virtio_dev *v)
{
	uint32_t pages;
	bool stats;

	/* The stats queue (2) exists only when STATS_VQ is negotiated. */
	stats = virtio_offered(v, BALLOON_F_STATS_VQ);
	if (virtio_start(c, v, 1ull << BALLOON_F_STATS_VQ, stats ? 3 : 2, 64))
		return;
	if (stats)
		post_stats(c, v);
	pages = virtio_cfg32(v, CFG_NUM_PAGES);
	gprintf("guest: balloon target=%u stats=%u\n", pages, stats);
	if (!region_ok(c->bi, BALLOON_BASE, BALLOON_BASE + pages * PAGE)) {
		gfail("virtio balloon: %u pages from 0x%llx are not free RAM", pages, BALLOON_BASE);
		return;
	}
	for (uint64_t a = BALLOON_BASE; a < BALLOON_BASE + pages * PAGE; a += PAGE)
		*(volatile uint64_t *)phys(a) = a | 1;
	gprintf("guest: balloon touched=%u\n", pages);
	hold(c->bi);
	if (!inflate(c, v, pages))
		return;
	virtio_cfg_write32(v, CFG_ACTUAL, pages);
	gprintf("guest: balloon inflated=%u actual=%u\n", pages, virtio_cfg32(v, CFG_ACTUAL));
	hold(c->bi);
}
