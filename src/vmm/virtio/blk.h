/*
 * virtio-blk (virtio 1.2, 5.2) on a raw image (backend/raw.h): one request
 * queue; read, write, flush, get-id, discard and write-zeroes. Requests are
 * submitted to the backend as soon as they are popped and complete in any
 * order; a flush starts only after every request submitted before it has
 * finished, then fdatasync()s, so a write acknowledged before a flush is on
 * disk when the flush completes. Without VIRTIO_BLK_F_FLUSH negotiated the
 * device is write-through (every write is RWF_DSYNC).
 *
 * The image's capacity is its size rounded down to 512-byte sectors (a
 * warning names the bytes left out); an image under 512 bytes is refused.
 * A read-only disk offers VIRTIO_BLK_F_RO and neither DISCARD nor
 * WRITE_ZEROES; writes, discards and write-zeroes fail with IOERR and the
 * file is opened O_RDONLY, so it cannot change.
 *
 * Malformed requests (short header, no status byte, data not a multiple of
 * 512, out-of-range sectors, too many segments) fail alone with IOERR or
 * UNSUPP; a broken ring puts the device in NEEDS_RESET.
 *
 * Threads: queue_notify and the backend's completion handler run on the
 * event thread, reset/activate on a vCPU thread; the device's lock covers
 * the queue and the backend. reset waits for in-flight I/O to finish (so
 * the kernel writes no guest memory afterwards) and drops its results.
 * signal_used/set_broken are called with the lock released. Lock order:
 * the transport's lock, then the device's.
 */
#ifndef EMBER_VMM_VIRTIO_BLK_H
#define EMBER_VMM_VIRTIO_BLK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/virtio/device.h"

/* Feature bits (5.2.3). */
#define VIRTIO_BLK_F_SIZE_MAX 1
#define VIRTIO_BLK_F_SEG_MAX 2
#define VIRTIO_BLK_F_GEOMETRY 4
#define VIRTIO_BLK_F_RO 5
#define VIRTIO_BLK_F_BLK_SIZE 6
#define VIRTIO_BLK_F_FLUSH 9
#define VIRTIO_BLK_F_TOPOLOGY 10
#define VIRTIO_BLK_F_CONFIG_WCE 11
#define VIRTIO_BLK_F_MQ 12
#define VIRTIO_BLK_F_DISCARD 13
#define VIRTIO_BLK_F_WRITE_ZEROES 14

/* Request types and status (5.2.6). */
#define VIRTIO_BLK_T_IN 0
#define VIRTIO_BLK_T_OUT 1
#define VIRTIO_BLK_T_FLUSH 4
#define VIRTIO_BLK_T_GET_ID 8
#define VIRTIO_BLK_T_DISCARD 11
#define VIRTIO_BLK_T_WRITE_ZEROES 13
#define VIRTIO_BLK_S_OK 0
#define VIRTIO_BLK_S_IOERR 1
#define VIRTIO_BLK_S_UNSUPP 2
#define VIRTIO_BLK_WZ_FLAG_UNMAP 1

#define VIRTIO_BLK_SECTOR 512u
#define VIRTIO_BLK_ID_BYTES 20
#define VIRTIO_BLK_HDR_SIZE 16 /* le32 type, le32 reserved, le64 sector */
#define VIRTIO_BLK_SEG_SIZE 16 /* le64 sector, le32 num_sectors, le32 flags */

#define VIRTIO_BLK_QUEUE_SIZE 256
/* Data segments per request: the chain less header and status. */
#define VIRTIO_BLK_SEG_MAX (VIRTQ_CHAIN_MAX - 2)
#define VIRTIO_BLK_MAX_DISCARD_SECTORS 0x3fffffu /* per segment, just under 2 GiB */
#define VIRTIO_BLK_MAX_DISCARD_SEG 32

/* Config space offsets (5.2.4). */
#define VIRTIO_BLK_CFG_CAPACITY 0
#define VIRTIO_BLK_CFG_SIZE_MAX 8
#define VIRTIO_BLK_CFG_SEG_MAX 12
#define VIRTIO_BLK_CFG_BLK_SIZE 20
#define VIRTIO_BLK_CFG_PHYS_BLOCK_EXP 24
#define VIRTIO_BLK_CFG_MIN_IO_SIZE 26
#define VIRTIO_BLK_CFG_NUM_QUEUES 34
#define VIRTIO_BLK_CFG_MAX_DISCARD_SECTORS 36
#define VIRTIO_BLK_CFG_MAX_DISCARD_SEG 40
#define VIRTIO_BLK_CFG_DISCARD_ALIGN 44
#define VIRTIO_BLK_CFG_MAX_WZ_SECTORS 48
#define VIRTIO_BLK_CFG_MAX_WZ_SEG 52
#define VIRTIO_BLK_CFG_WZ_MAY_UNMAP 56
#define VIRTIO_BLK_CFG_SIZE 60

struct virtio_blk_config {
	const char *path; /* owned (strdup) after virtio_blk_parse */
	bool readonly;
	char id[VIRTIO_BLK_ID_BYTES + 1]; /* "" : the image's file name, cut to 20 bytes */
};

/*
 * Parses --disk's value "PATH[,ro][,id=NAME]" (the first comma ends PATH;
 * NAME is 1..20 printable ASCII bytes). 0, or -EINVAL with one line in err
 * naming the option and the reason. Free with virtio_blk_config_free().
 */
int virtio_blk_parse(const char *arg, struct virtio_blk_config *cfg, char *err, size_t errlen);
void virtio_blk_config_free(struct virtio_blk_config *cfg);

/*
 * Opens the image (see raw_open: missing, unreadable, a directory, empty,
 * smaller than a sector, locked by another VM: one line in err).
 */
int virtio_blk_create(const struct virtio_blk_config *cfg, struct virtio_device **out, char *err,
		      size_t errlen);
/* Waits for in-flight I/O and closes the image; d must be off its transport. */
void virtio_blk_destroy(struct virtio_device *d);

/* The id the guest reads with GET_ID (for duplicate checks). */
const char *virtio_blk_id(const struct virtio_device *d);
/* Sectors the guest sees. */
uint64_t virtio_blk_capacity(const struct virtio_device *d);

/*
 * Runs finished requests' completions now, as the event loop would when
 * the backend's eventfd fires; with `wait`, until none is in flight. For
 * tests, fuzzing and devices without an event loop (d->events NULL).
 */
void virtio_blk_poll(struct virtio_device *d, bool wait);

#endif
