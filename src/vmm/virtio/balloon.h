/*
 * virtio-balloon (virtio 1.2, 5.5): the host asks the guest to give back
 * memory by raising num_pages; the guest's driver allocates pages and
 * sends their frame numbers on the inflate queue, and the device returns
 * them to the host with madvise(MADV_DONTNEED) on the private anonymous
 * guest RAM mapping. A page the guest touches again (after deflating, or
 * after a reset) faults in zeroed, so deflating needs no work here and
 * VIRTIO_BALLOON_F_MUST_TELL_HOST is not offered.
 *
 * With the stats queue the driver hands over one buffer of {u16 tag,
 * u64 val} entries; the device keeps it and pushes it back when the host
 * wants fresh numbers (virtio_balloon_request_stats, or every
 * stats_interval_s seconds), and the driver refills and returns it.
 *
 * Threads: queues are processed on the event thread (queue_notify, the
 * stats timer), config space is read/written from vCPU threads, and the
 * host API below is called from any thread (the API thread). The device's
 * lock protects all of it; signal_used/signal_config/set_broken are called
 * with it released. Lock order: the transport's lock, then the balloon's.
 */
#ifndef EMBER_VMM_VIRTIO_BALLOON_H
#define EMBER_VMM_VIRTIO_BALLOON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/virtio/device.h"

/* Feature bits (5.5.3). */
#define VIRTIO_BALLOON_F_MUST_TELL_HOST 0
#define VIRTIO_BALLOON_F_STATS_VQ 1
#define VIRTIO_BALLOON_F_DEFLATE_ON_OOM 2

/* Queues (5.5.2). */
#define VIRTIO_BALLOON_Q_INFLATE 0
#define VIRTIO_BALLOON_Q_DEFLATE 1
#define VIRTIO_BALLOON_Q_STATS 2

#define VIRTIO_BALLOON_QUEUE_SIZE 256
/* Balloon pages are 4 KiB whatever the guest's page size (PFN shift 12). */
#define VIRTIO_BALLOON_PAGE_SHIFT 12
#define VIRTIO_BALLOON_PAGE_SIZE (1u << VIRTIO_BALLOON_PAGE_SHIFT)
#define VIRTIO_BALLOON_PAGES_PER_MIB 256u
/* Largest target: num_pages is a u32 of 4 KiB pages. */
#define VIRTIO_BALLOON_MAX_TARGET_MIB (UINT32_MAX / VIRTIO_BALLOON_PAGES_PER_MIB)

/* Config space (5.5.4): num_pages (device-written), actual (driver-written). */
#define VIRTIO_BALLOON_CFG_NUM_PAGES 0
#define VIRTIO_BALLOON_CFG_ACTUAL 4
#define VIRTIO_BALLOON_CFG_SIZE 8

/* Statistic tags (5.5.6.3, and the ones Linux added since). */
#define VIRTIO_BALLOON_S_SWAP_IN 0
#define VIRTIO_BALLOON_S_SWAP_OUT 1
#define VIRTIO_BALLOON_S_MAJFLT 2
#define VIRTIO_BALLOON_S_MINFLT 3
#define VIRTIO_BALLOON_S_MEMFREE 4
#define VIRTIO_BALLOON_S_MEMTOT 5
#define VIRTIO_BALLOON_S_AVAIL 6
#define VIRTIO_BALLOON_S_CACHES 7
#define VIRTIO_BALLOON_S_HTLB_PGALLOC 8
#define VIRTIO_BALLOON_S_HTLB_PGFAIL 9
#define VIRTIO_BALLOON_S_OOM_KILL 10
#define VIRTIO_BALLOON_S_ALLOC_STALL 11
#define VIRTIO_BALLOON_S_ASYNC_SCAN 12
#define VIRTIO_BALLOON_S_DIRECT_SCAN 13
#define VIRTIO_BALLOON_S_ASYNC_RECLAIM 14
#define VIRTIO_BALLOON_S_DIRECT_RECLAIM 15
#define VIRTIO_BALLOON_S_NR 16
/* One entry on the stats queue: le16 tag, le64 value, packed. */
#define VIRTIO_BALLOON_STAT_SIZE 10

struct virtio_balloon_config {
	bool deflate_on_oom;	   /* offer VIRTIO_BALLOON_F_DEFLATE_ON_OOM */
	bool stats;		   /* offer the stats queue (default on) */
	uint32_t stats_interval_s; /* refresh stats every N s; 0: only on request */
	uint32_t target_mib;	   /* initial num_pages, in MiB */
};

/* What the host sees of the balloon (virtio_balloon_get_stats). */
struct virtio_balloon_stats {
	uint32_t target_pages;	 /* num_pages: what the host asked for */
	uint32_t actual_pages;	 /* actual: what the driver says it holds */
	uint64_t inflated_pages; /* given back by madvise, minus deflated; <= RAM pages */
	uint64_t invalid_pfns;	 /* PFNs the guest sent that were not RAM (skipped) */
	/* The last stats buffer: bit t of present set when stats[t] was in it. */
	uint32_t present;
	uint64_t stats[VIRTIO_BALLOON_S_NR];
	uint64_t updates;    /* stats buffers received */
	uint64_t updated_ms; /* CLOCK_MONOTONIC ms of the last one; 0: none yet */
};

/*
 * Parses the value of --balloon: empty/NULL, or comma-separated words
 * "deflate-on-oom", "target=MIB", "stats=SECONDS" (polling interval; 0
 * polls never) or "stats=off" (no stats queue). 0, or -EINVAL with one
 * line in err naming the word and the reason.
 */
int virtio_balloon_parse(const char *arg, struct virtio_balloon_config *cfg, char *err,
			 size_t errlen);

/* 0 and *out, or -errno with one line in err. */
int virtio_balloon_create(const struct virtio_balloon_config *cfg, struct virtio_device **out,
			  char *err, size_t errlen);
void virtio_balloon_destroy(struct virtio_device *d);

/*
 * Host API, any thread. set_target: sets num_pages (4 KiB pages) and
 * interrupts the driver with a config change when it is running; -EINVAL
 * when pages exceed guest RAM.
 */
int virtio_balloon_set_target(struct virtio_device *d, uint32_t pages);
void virtio_balloon_get_stats(struct virtio_device *d, struct virtio_balloon_stats *out);
/*
 * Pushes the held stats buffer back so the driver refills it; the new
 * numbers show up in get_stats (updates + 1) once it has. 0; -ENODEV when
 * the driver is not running; -EOPNOTSUPP when the stats queue was not
 * negotiated; -EAGAIN when no buffer is held (a request is in flight);
 * -EIO when the queue is broken.
 */
int virtio_balloon_request_stats(struct virtio_device *d);

#endif
