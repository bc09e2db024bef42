#include "vmm/backend/raw.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <liburing.h>
#include <linux/fs.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"

/* SQEs in the kernel at once; the rest wait on d->wait (CQ is twice this, so it never overflows).
 */
#define RAW_RING_DEPTH 128
/* Chunk size when zeroes have to be written for real. */
#define RAW_ZERO_CHUNK (1u << 20)

/* WRITE_ZEROES methods, tried in this order until one is supported. */
enum { ZS_PUNCH, ZS_ZERO_RANGE, ZS_WRITE };

struct raw_queue {
	struct raw_req *head, *tail;
};

struct raw_disk {
	int fd;
	int efd; /* completions pending */
	uint64_t size;
	uint32_t blksize;
	bool readonly;
	bool uring;
	bool no_punch, no_zero_range; /* learnt from EOPNOTSUPP */
	struct io_uring ring;
	unsigned int in_ring;  /* SQEs prepared and not reaped */
	unsigned int inflight; /* submitted, callback not run */
	unsigned int plugged;  /* raw_plug depth: submissions wait for raw_unplug */
	struct raw_queue wait; /* for room in the ring (io_uring) */
	struct raw_queue done; /* finished, callback not run */
	void *zeros;	       /* RAW_ZERO_CHUNK of zeroes, mapped on first use */
};

static void q_push(struct raw_queue *q, struct raw_req *r)
{
	r->next = NULL;
	if (q->tail)
		q->tail->next = r;
	else
		q->head = r;
	q->tail = r;
}

static void q_push_front(struct raw_queue *q, struct raw_req *r)
{
	r->next = q->head;
	q->head = r;
	if (!q->tail)
		q->tail = r;
}

static struct raw_req *q_pop(struct raw_queue *q)
{
	struct raw_req *r = q->head;

	if (r) {
		q->head = r->next;
		if (!q->head)
			q->tail = NULL;
		r->next = NULL;
	}
	return r;
}

static void signal_efd(struct raw_disk *d)
{
	uint64_t one = 1;

	/* Only fails when the counter would overflow: it is readable then anyway. */
	if (write(d->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_err("raw: eventfd write: %s", strerror(errno));
}

static void finish(struct raw_disk *d, struct raw_req *r, int64_t res)
{
	r->res = res;
	q_push(&d->done, r);
	signal_efd(d);
}

static uint64_t iov_total(const struct iovec *iov, int n)
{
	uint64_t t = 0;

	for (int i = 0; i < n; i++)
		t += iov[i].iov_len;
	return t;
}

/* Drops the first n bytes of the request's buffers. */
static void iov_advance(struct raw_req *r, uint64_t n)
{
	while (r->iovcnt > 0 && n >= r->iov->iov_len) {
		n -= r->iov->iov_len;
		r->iov++;
		r->iovcnt--;
	}
	if (r->iovcnt > 0 && n) {
		r->iov->iov_base = (uint8_t *)r->iov->iov_base + n;
		r->iov->iov_len -= n;
	}
}

/* A read hit the end of the file (it shrank under us): what is missing reads as zeroes. */
static void iov_zero_rest(struct raw_req *r)
{
	for (int i = 0; i < r->iovcnt; i++)
		memset(r->iov[i].iov_base, 0, r->iov[i].iov_len);
	r->done_bytes = r->len;
	r->iovcnt = 0;
}

static int zeros_map(struct raw_disk *d)
{
	void *p;

	if (d->zeros)
		return 0;
	/* Read-only anonymous memory: every page is the shared zero page. */
	p = mmap(NULL, RAW_ZERO_CHUNK, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	d->zeros = p;
	return 0;
}

static int zero_stage_first(const struct raw_disk *d, const struct raw_req *r)
{
	if (r->unmap && !d->no_punch)
		return ZS_PUNCH;
	if (!d->no_zero_range)
		return ZS_ZERO_RANGE;
	return ZS_WRITE;
}

/* The method failed as unsupported: remember and move to the next one. */
static void zero_stage_next(struct raw_disk *d, struct raw_req *r)
{
	if (r->stage == ZS_PUNCH) {
		d->no_punch = true;
		r->stage = d->no_zero_range ? ZS_WRITE : ZS_ZERO_RANGE;
	} else {
		d->no_zero_range = true;
		r->stage = ZS_WRITE;
	}
}

static bool unsupported(int64_t res)
{
	return res == -EOPNOTSUPP || res == -ENOSYS || res == -ENOTTY;
}

static int fallocate_mode(const struct raw_req *r)
{
	if (r->op == RAW_OP_DISCARD || r->stage == ZS_PUNCH)
		return FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
	return FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE;
}

/*
 * Accounts one attempt's result: 1 when the request is finished (r->res
 * set), 0 when it needs another attempt (short transfer, EINTR, fallback).
 */
static int account(struct raw_disk *d, struct raw_req *r, int64_t res)
{
	if (res == -EINTR || res == -EAGAIN)
		return 0;
	switch (r->op) {
	case RAW_OP_READ:
	case RAW_OP_WRITE:
		if (res < 0)
			break;
		if (res == 0) {
			if (r->op == RAW_OP_WRITE) {
				res = -EIO; /* no progress: don't spin */
				break;
			}
			iov_zero_rest(r);
		} else {
			r->done_bytes += (uint64_t)res;
			iov_advance(r, (uint64_t)res);
		}
		if (r->done_bytes < r->len)
			return 0;
		res = (int64_t)r->len;
		break;
	case RAW_OP_FLUSH:
		break;
	case RAW_OP_DISCARD:
		/* Discard is a hint; a file system without holes just keeps the data. */
		if (unsupported(res) || res == -EINVAL) {
			d->no_punch = true;
			res = 0;
		}
		break;
	case RAW_OP_WRITE_ZEROES:
		if (r->stage != ZS_WRITE) {
			if (unsupported(res) || res == -EINVAL) {
				zero_stage_next(d, r);
				return 0;
			}
			break;
		}
		if (res == 0)
			res = -EIO;
		if (res < 0)
			break;
		r->done_bytes += (uint64_t)res;
		if (r->done_bytes < r->len)
			return 0;
		res = 0;
		break;
	}
	r->res = res;
	return 1;
}

static int64_t neg_errno(ssize_t n)
{
	return n < 0 ? -errno : n;
}

/* One synchronous attempt, the fallback's equivalent of one SQE. */
static int64_t sync_attempt(struct raw_disk *d, struct raw_req *r)
{
	off_t off = (off_t)(r->offset + r->done_bytes);
	int iovcnt = r->iovcnt > IOV_MAX ? IOV_MAX : r->iovcnt;

	switch (r->op) {
	case RAW_OP_READ:
		return neg_errno(preadv2(d->fd, r->iov, iovcnt, off, 0));
	case RAW_OP_WRITE:
		return neg_errno(pwritev2(d->fd, r->iov, iovcnt, off, r->dsync ? RWF_DSYNC : 0));
	case RAW_OP_FLUSH:
		return neg_errno(fdatasync(d->fd));
	case RAW_OP_DISCARD:
		return neg_errno(fallocate(d->fd, fallocate_mode(r), off, (off_t)r->len));
	case RAW_OP_WRITE_ZEROES:
		if (r->stage != ZS_WRITE)
			return neg_errno(fallocate(d->fd, fallocate_mode(r), off, (off_t)r->len));
		if (zeros_map(d))
			return -ENOMEM;
		return neg_errno(pwrite(d->fd, d->zeros,
					r->len - r->done_bytes < RAW_ZERO_CHUNK
					    ? r->len - r->done_bytes
					    : RAW_ZERO_CHUNK,
					off));
	}
	return -EINVAL;
}

static void sync_run(struct raw_disk *d, struct raw_req *r)
{
	while (!account(d, r, sync_attempt(d, r)))
		;
	q_push(&d->done, r);
	signal_efd(d);
}

/* Fills an SQE for the request's next attempt; -errno when it cannot even start. */
static int uring_prep(struct raw_disk *d, struct raw_req *r, struct io_uring_sqe *sqe)
{
	uint64_t off = r->offset + r->done_bytes;
	unsigned int iovcnt = r->iovcnt > IOV_MAX ? IOV_MAX : (unsigned int)r->iovcnt;
	uint64_t left = r->len - r->done_bytes;

	switch (r->op) {
	case RAW_OP_READ:
		io_uring_prep_readv(sqe, d->fd, r->iov, iovcnt, off);
		break;
	case RAW_OP_WRITE:
		io_uring_prep_writev2(sqe, d->fd, r->iov, iovcnt, off, r->dsync ? RWF_DSYNC : 0);
		break;
	case RAW_OP_FLUSH:
		io_uring_prep_fsync(sqe, d->fd, IORING_FSYNC_DATASYNC);
		/* Starts after everything submitted before it has completed. */
		sqe->flags |= IOSQE_IO_DRAIN;
		break;
	case RAW_OP_DISCARD:
		io_uring_prep_fallocate(sqe, d->fd, fallocate_mode(r), off, r->len);
		break;
	case RAW_OP_WRITE_ZEROES:
		if (r->stage != ZS_WRITE) {
			io_uring_prep_fallocate(sqe, d->fd, fallocate_mode(r), off, r->len);
			break;
		}
		if (zeros_map(d))
			return -ENOMEM;
		io_uring_prep_write(sqe, d->fd, d->zeros,
				    left < RAW_ZERO_CHUNK ? (unsigned int)left : RAW_ZERO_CHUNK,
				    off);
		break;
	}
	io_uring_sqe_set_data(sqe, r);
	return 0;
}

/* Moves waiting requests into the ring while there is room, and submits. */
static void uring_pump(struct raw_disk *d)
{
	bool queued = false;
	struct raw_req *r;
	int ret;

	while (d->in_ring < RAW_RING_DEPTH && (r = q_pop(&d->wait))) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&d->ring);

		if (!sqe) { /* SQ still holds unsubmitted entries */
			q_push_front(&d->wait, r);
			break;
		}
		ret = uring_prep(d, r, sqe);
		if (ret) {
			/* Keep the SQE harmless: it completes and is ignored. */
			io_uring_prep_nop(sqe);
			io_uring_sqe_set_data(sqe, NULL);
			d->in_ring++;
			finish(d, r, ret);
			continue;
		}
		d->in_ring++;
		queued = true;
	}
	if (!queued && !io_uring_sq_ready(&d->ring))
		return;
	ret = io_uring_submit(&d->ring);
	if (ret == -EAGAIN || ret == -EBUSY || ret == -EINTR) {
		/* The SQEs stay queued: have the owner call back and submit again. */
		signal_efd(d);
	} else if (ret < 0) {
		log_err("raw: io_uring_submit: %s", strerror(-ret));
	}
}

static void uring_reap(struct raw_disk *d)
{
	struct io_uring_cqe *cqe;

	while (io_uring_peek_cqe(&d->ring, &cqe) == 0) {
		struct raw_req *r = io_uring_cqe_get_data(cqe);
		int64_t res = cqe->res;

		io_uring_cqe_seen(&d->ring, cqe);
		d->in_ring--;
		if (!r)
			continue;
		if (account(d, r, res))
			q_push(&d->done, r);
		else
			q_push_front(&d->wait, r);
	}
}

static int check_req(const struct raw_disk *d, struct raw_req *r)
{
	switch (r->op) {
	case RAW_OP_READ:
	case RAW_OP_WRITE:
		if (r->iovcnt < 0 || (r->iovcnt && !r->iov))
			return -EINVAL;
		r->len = iov_total(r->iov, r->iovcnt);
		if (r->op == RAW_OP_WRITE && d->readonly)
			return -EROFS;
		break;
	case RAW_OP_FLUSH:
		r->len = 0;
		break;
	case RAW_OP_DISCARD:
	case RAW_OP_WRITE_ZEROES:
		if (d->readonly)
			return -EROFS;
		break;
	default:
		return -EINVAL;
	}
	if (r->offset > INT64_MAX || r->len > INT64_MAX - r->offset)
		return -EINVAL;
	return 0;
}

void raw_submit(struct raw_disk *d, struct raw_req *r)
{
	int ret;

	r->next = NULL;
	r->done_bytes = 0;
	r->res = 0;
	d->inflight++;
	ret = check_req(d, r);
	if (ret) {
		finish(d, r, ret);
		return;
	}
	if (r->op == RAW_OP_WRITE_ZEROES)
		r->stage = zero_stage_first(d, r);
	/* Nothing to transfer: the kernel would report 0 and we'd take it for EOF. */
	if ((r->op == RAW_OP_READ || r->op == RAW_OP_WRITE || r->op == RAW_OP_DISCARD ||
	     r->op == RAW_OP_WRITE_ZEROES) &&
	    !r->len) {
		finish(d, r, 0);
		return;
	}
	if (!d->uring) {
		sync_run(d, r);
		return;
	}
	q_push(&d->wait, r);
	if (!d->plugged)
		uring_pump(d);
}

void raw_plug(struct raw_disk *d)
{
	d->plugged++;
}

void raw_unplug(struct raw_disk *d)
{
	if (d->plugged && !--d->plugged && d->uring)
		uring_pump(d);
}

void raw_wake(struct raw_disk *d)
{
	signal_efd(d);
}

unsigned int raw_complete(struct raw_disk *d)
{
	struct raw_queue batch;
	struct raw_req *r;
	unsigned int n = 0;
	uint64_t cnt;

	/* Clear first: anything finishing after this read signals again. */
	if (read(d->efd, &cnt, sizeof(cnt)) < 0 && errno != EAGAIN)
		log_err("raw: eventfd read: %s", strerror(errno));
	if (d->uring) {
		uring_reap(d);
		uring_pump(d);
	}
	/* Callbacks may submit; what they finish waits for the next round. */
	batch = d->done;
	d->done.head = d->done.tail = NULL;
	while ((r = q_pop(&batch))) {
		d->inflight--;
		n++;
		r->done(r, r->res);
	}
	return n;
}

void raw_drain(struct raw_disk *d)
{
	while (d->inflight) {
		if (d->uring && !d->done.head && d->in_ring) {
			int ret = io_uring_submit_and_wait(&d->ring, 1);

			if (ret < 0 && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY &&
			    ret != -ETIME) {
				log_err("raw: io_uring wait: %s", strerror(-ret));
				break;
			}
		} else if (!d->done.head && !d->wait.head) {
			log_err("raw: %u requests lost", d->inflight);
			break;
		}
		raw_complete(d);
	}
}

unsigned int raw_inflight(const struct raw_disk *d)
{
	return d->inflight;
}

uint64_t raw_size(const struct raw_disk *d)
{
	return d->size;
}

uint32_t raw_block_size(const struct raw_disk *d)
{
	return d->blksize;
}

bool raw_readonly(const struct raw_disk *d)
{
	return d->readonly;
}

bool raw_uses_io_uring(const struct raw_disk *d)
{
	return d->uring;
}

int raw_event_fd(const struct raw_disk *d)
{
	return d->efd;
}

static bool env_no_uring(void)
{
	const char *v = getenv("EMBER_NO_IO_URING");

	return v && *v && strcmp(v, "0") != 0;
}

/* io_uring with every opcode we use, completions on the eventfd; false to fall back. */
static bool uring_setup(struct raw_disk *d, const char *path)
{
	static const int ops[] = {IORING_OP_READV,     IORING_OP_WRITEV, IORING_OP_FSYNC,
				  IORING_OP_FALLOCATE, IORING_OP_WRITE,	 IORING_OP_NOP};
	struct io_uring_probe *probe;
	int ret;

	ret = io_uring_queue_init(RAW_RING_DEPTH, &d->ring, 0);
	if (ret < 0) {
		log_warn("%s: io_uring unavailable (%s): using synchronous I/O", path,
			 strerror(-ret));
		return false;
	}
	probe = io_uring_get_probe_ring(&d->ring);
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		if (!probe || !io_uring_opcode_supported(probe, ops[i])) {
			log_warn("%s: io_uring lacks needed operations: using synchronous I/O",
				 path);
			ret = -EOPNOTSUPP;
			break;
		}
	}
	if (probe)
		io_uring_free_probe(probe);
	if (!ret) {
		ret = io_uring_register_eventfd(&d->ring, d->efd);
		if (ret < 0)
			log_warn("%s: io_uring eventfd (%s): using synchronous I/O", path,
				 strerror(-ret));
	}
	if (ret < 0) {
		io_uring_queue_exit(&d->ring);
		return false;
	}
	return true;
}

static int lock_image(int fd, bool readonly, const char *path, char *err, size_t errlen)
{
	struct flock fl = {
	    .l_type = readonly ? F_RDLCK : F_WRLCK,
	    .l_whence = SEEK_SET,
	};

	if (fcntl(fd, F_OFD_SETLK, &fl) == 0)
		return 0;
	if (errno == EAGAIN || errno == EACCES) {
		snprintf(err, errlen, "%s: image is locked by another process (a VM using it%s?)",
			 path, readonly ? " read-write" : "");
		return -EBUSY;
	}
	/* File systems without locks (some FUSE, NFS without lockd): carry on. */
	log_warn("%s: cannot lock image: %s", path, strerror(errno));
	return 0;
}

static int probe_size(struct raw_disk *d, const char *path, char *err, size_t errlen)
{
	struct stat st;

	if (fstat(d->fd, &st) < 0) {
		snprintf(err, errlen, "stat %s: %s", path, strerror(errno));
		return -errno;
	}
	if (S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "%s: is a directory", path);
		return -EISDIR;
	}
	if (S_ISBLK(st.st_mode)) {
		if (ioctl(d->fd, BLKGETSIZE64, &d->size) < 0) {
			snprintf(err, errlen, "%s: BLKGETSIZE64: %s", path, strerror(errno));
			return -errno;
		}
	} else if (S_ISREG(st.st_mode)) {
		d->size = (uint64_t)st.st_size;
	} else {
		snprintf(err, errlen, "%s: not a regular file or block device", path);
		return -EINVAL;
	}
	if (!d->size) {
		snprintf(err, errlen, "%s: image is empty", path);
		return -EINVAL;
	}
	d->blksize =
	    st.st_blksize >= 512 && st.st_blksize <= (1 << 20) ? (uint32_t)st.st_blksize : 512;
	return 0;
}

int raw_open(const char *path, unsigned int flags, struct raw_disk **out, char *err, size_t errlen)
{
	bool ro = flags & RAW_READONLY;
	struct raw_disk *d;
	int ret;

	d = calloc(1, sizeof(*d));
	if (!d) {
		snprintf(err, errlen, "%s: out of memory", path);
		return -ENOMEM;
	}
	d->readonly = ro;
	d->efd = -1;
	d->fd = open(path, (ro ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (d->fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "open %s: %s%s", path, strerror(errno),
			 !ro && (errno == EACCES || errno == EROFS)
			     ? " (use ,ro to open it read-only)"
			     : "");
		goto err_free;
	}
	ret = probe_size(d, path, err, errlen);
	if (ret)
		goto err_close;
	ret = lock_image(d->fd, ro, path, err, errlen);
	if (ret)
		goto err_close;
	d->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (d->efd < 0) {
		ret = -errno;
		snprintf(err, errlen, "%s: eventfd: %s", path, strerror(errno));
		goto err_close;
	}
	if (!(flags & RAW_NO_IO_URING) && !env_no_uring())
		d->uring = uring_setup(d, path);
	*out = d;
	return 0;

err_close:
	close(d->fd);
err_free:
	free(d);
	return ret;
}

void raw_close(struct raw_disk *d)
{
	if (!d)
		return;
	raw_drain(d);
	if (d->uring)
		io_uring_queue_exit(&d->ring);
	if (d->zeros)
		munmap(d->zeros, RAW_ZERO_CHUNK);
	close(d->efd);
	close(d->fd); /* drops the lock */
	free(d);
}
