/*
 * Raw disk images: a regular file or a block device, read and written at
 * byte offsets. Requests are asynchronous: raw_submit() queues one, and its
 * `done` callback runs later from raw_complete(), which the owner calls when
 * raw_event_fd() becomes readable (on its event loop) or from raw_drain().
 *
 * I/O goes through io_uring when the kernel allows it; otherwise (io_uring
 * refused, e.g. by seccomp or an old kernel, or EMBER_NO_IO_URING=1 in the
 * environment, or RAW_NO_IO_URING) each request runs synchronously inside
 * raw_submit() and its completion is queued and signalled on the same
 * eventfd, so callers see one behaviour either way.
 *
 * Not thread-safe: the owner serialises every call on one disk.
 */
#ifndef EMBER_VMM_BACKEND_RAW_H
#define EMBER_VMM_BACKEND_RAW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

/* raw_open flags */
#define RAW_READONLY 0x1    /* O_RDONLY and a shared lock; writes fail with -EROFS */
#define RAW_NO_IO_URING 0x2 /* use the synchronous fallback */

enum raw_op {
	RAW_OP_READ,	     /* preadv into iov at offset */
	RAW_OP_WRITE,	     /* pwritev from iov at offset */
	RAW_OP_FLUSH,	     /* fdatasync, after every request submitted before it */
	RAW_OP_DISCARD,	     /* punch a hole in [offset, offset+len); a no-op where unsupported */
	RAW_OP_WRITE_ZEROES, /* [offset, offset+len) reads back as zeroes */
};

struct raw_req {
	/* Set by the caller. */
	enum raw_op op;
	uint64_t offset; /* bytes */
	uint64_t len;	 /* DISCARD, WRITE_ZEROES: bytes */
	/*
	 * READ, WRITE: the buffers; len is computed from them. The array
	 * belongs to the backend until `done` runs (iov and iovcnt are
	 * advanced in place after a short transfer).
	 */
	struct iovec *iov;
	int iovcnt;
	bool dsync; /* WRITE: durable on completion (RWF_DSYNC) */
	bool unmap; /* WRITE_ZEROES: holes are fine (PUNCH_HOLE) */
	/*
	 * Runs from raw_complete()/raw_drain(), never from raw_submit().
	 * res: bytes transferred (READ, WRITE; always the full length), 0
	 * (others), or -errno. It may submit new requests.
	 */
	void (*done)(struct raw_req *r, int64_t res);
	void *opaque;

	/* Backend state. */
	struct raw_req *next;
	uint64_t done_bytes;
	int64_t res;
	int stage; /* WRITE_ZEROES: which method is being tried */
};

struct raw_disk;

/*
 * Opens `path` (O_RDWR, or O_RDONLY with RAW_READONLY) and takes an OFD lock
 * on it: exclusive for read-write, shared for read-only, so two monitors
 * cannot write one image. 0, or -errno with one line in err naming the file
 * and the reason (missing, unreadable, a directory, empty, locked).
 */
int raw_open(const char *path, unsigned int flags, struct raw_disk **out, char *err, size_t errlen);
/* Waits for every submitted request (their callbacks run), then closes. */
void raw_close(struct raw_disk *d);

/* Size in bytes (of the file, or of the block device). */
uint64_t raw_size(const struct raw_disk *d);
/* Preferred I/O size of the file system or device (st_blksize), >= 512. */
uint32_t raw_block_size(const struct raw_disk *d);
bool raw_readonly(const struct raw_disk *d);
bool raw_uses_io_uring(const struct raw_disk *d);

/* Readable while completions are waiting for raw_complete(). */
int raw_event_fd(const struct raw_disk *d);

/* Queues a request; its result always arrives through r->done. */
void raw_submit(struct raw_disk *d, struct raw_req *r);
/*
 * Runs the callbacks of finished requests and submits what waited for
 * room; call when raw_event_fd() is readable. Returns how many completed.
 */
unsigned int raw_complete(struct raw_disk *d);
/*
 * Batching: between raw_plug() and the matching raw_unplug(), io_uring
 * requests are only queued; raw_unplug() submits them with one system call.
 * Pairs nest. The synchronous fallback ignores them.
 */
void raw_plug(struct raw_disk *d);
void raw_unplug(struct raw_disk *d);
/* Makes raw_event_fd() readable, so its owner gets called back for work it deferred. */
void raw_wake(struct raw_disk *d);
/* Blocks until no request is in flight, running every callback. */
void raw_drain(struct raw_disk *d);
/* Requests submitted whose callback has not run yet. */
unsigned int raw_inflight(const struct raw_disk *d);

#endif
