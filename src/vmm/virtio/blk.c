#include "vmm/virtio/blk.h"

#include <endian.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "core/log.h"
#include "vmm/backend/raw.h"
#include "vmm/event.h"

struct virtio_blk {
	struct virtio_device dev;
	struct raw_disk *disk;
	char *path;
	char id[VIRTIO_BLK_ID_BYTES + 1];
	bool readonly;
	uint64_t capacity; /* sectors */
	uint8_t cfg[VIRTIO_BLK_CFG_SIZE];
	struct ratelimit rl;
	struct event_handler handler;
	bool registered; /* the backend's eventfd is on d->events */

	/* Lock order: the transport's lock, then this one. Guards all below and the disk. */
	pthread_mutex_t lock;
	bool active;
	bool broken;		    /* the ring is bad: left alone until reset */
	const char *broken_why;	    /* not yet reported to the transport */
	bool writethrough;	    /* FLUSH not negotiated: writes are durable on completion */
	bool discard, write_zeroes; /* negotiated */
	uint32_t gen;		    /* bumped by reset: older requests are orphans */
	unsigned int inflight;	    /* requests in the backend */
	bool notify;		    /* pushed since the last interrupt check */
	struct virtq_chain chain;   /* scratch for virtq_pop */
};

/* do_*() result: the request went to the backend and completes later. */
#define BLK_S_PENDING 0xff

/* A request in the backend. */
struct blk_req {
	struct virtio_blk *b;
	uint32_t gen;
	uint16_t head;
	uint8_t status;
	uint8_t *status_byte; /* in guest RAM */
	uint32_t used_ok;     /* used length when it succeeds */
	unsigned int pending; /* backend ops not finished */
	unsigned int nraw;
	struct raw_req *raw;
	struct iovec iov[]; /* data buffers (IN, OUT) */
};

static struct virtio_blk *to_blk(const struct virtio_device *d)
{
	return d->priv;
}

/* Copies len bytes at byte `off` of an iovec list; returns how many were there. */
static size_t iov_copy_out(const struct iovec *iov, unsigned int n, size_t off, void *dst,
			   size_t len)
{
	size_t done = 0;

	for (unsigned int i = 0; i < n && done < len; i++) {
		size_t l = iov[i].iov_len, c;

		if (off >= l) {
			off -= l;
			continue;
		}
		c = l - off < len - done ? l - off : len - done;
		memcpy((uint8_t *)dst + done, (const uint8_t *)iov[i].iov_base + off, c);
		done += c;
		off = 0;
	}
	return done;
}

static size_t iov_copy_in(const struct iovec *iov, unsigned int n, const void *src, size_t len)
{
	size_t done = 0;

	for (unsigned int i = 0; i < n && done < len; i++) {
		size_t c = iov[i].iov_len < len - done ? iov[i].iov_len : len - done;

		memcpy(iov[i].iov_base, (const uint8_t *)src + done, c);
		done += c;
	}
	return done;
}

/* The iovecs covering [off, off+len) of src, into dst (room for n); returns their count. */
static unsigned int iov_slice(const struct iovec *src, unsigned int n, size_t off, size_t len,
			      struct iovec *dst)
{
	unsigned int k = 0;

	for (unsigned int i = 0; i < n && len; i++) {
		size_t l = src[i].iov_len, c;

		if (off >= l) {
			off -= l;
			continue;
		}
		c = l - off < len ? l - off : len;
		dst[k].iov_base = (uint8_t *)src[i].iov_base + off;
		dst[k].iov_len = c;
		k++;
		len -= c;
		off = 0;
	}
	return k;
}

/* The last byte of the writable part: where the status goes. */
static uint8_t *status_byte(const struct virtq_chain *c)
{
	for (unsigned int i = c->nin; i > 0; i--)
		if (c->in[i - 1].iov_len)
			return (uint8_t *)c->in[i - 1].iov_base + c->in[i - 1].iov_len - 1;
	return NULL;
}

static void mark_broken(struct virtio_blk *b, const char *why)
{
	if (b->broken)
		return;
	b->broken = true;
	b->broken_why = why ? why : "malformed ring";
}

static void push(struct virtio_blk *b, uint16_t head, uint32_t used)
{
	struct virtq *q = &b->dev.queues[0];

	if (virtq_push(q, head, used) < 0)
		mark_broken(b, q->error);
	else
		b->notify = true;
}

static void complete_now(struct virtio_blk *b, uint16_t head, uint8_t *st, uint8_t status,
			 uint32_t used_ok)
{
	*st = status;
	push(b, head, status == VIRTIO_BLK_S_OK ? used_ok : 1);
}

static void raw_done(struct raw_req *r, int64_t res)
{
	struct blk_req *req = r->opaque;
	struct virtio_blk *b = req->b;

	if (res < 0) {
		log_ratelimited(&b->rl, LOG_WARN, "virtio-blk %s: I/O at byte %llu failed: %s",
				b->path, (unsigned long long)r->offset, strerror((int)-res));
		req->status = VIRTIO_BLK_S_IOERR;
	}
	if (--req->pending)
		return;
	b->inflight--;
	/* After a reset the ring is no longer ours: drop the result. */
	if (req->gen == b->gen && b->active)
		complete_now(b, req->head, req->status_byte, req->status, req->used_ok);
	free(req->raw);
	free(req);
}

static struct blk_req *req_new(struct virtio_blk *b, const struct virtq_chain *c, uint8_t *st,
			       unsigned int niov, unsigned int nraw)
{
	struct blk_req *req = calloc(1, sizeof(*req) + niov * sizeof(struct iovec));

	if (!req)
		return NULL;
	req->raw = calloc(nraw, sizeof(*req->raw));
	if (!req->raw) {
		free(req);
		return NULL;
	}
	req->b = b;
	req->gen = b->gen;
	req->head = c->head;
	req->status = VIRTIO_BLK_S_OK;
	req->status_byte = st;
	req->nraw = nraw;
	for (unsigned int i = 0; i < nraw; i++) {
		req->raw[i].done = raw_done;
		req->raw[i].opaque = req;
	}
	return req;
}

static void req_submit(struct virtio_blk *b, struct blk_req *req)
{
	req->pending = req->nraw;
	b->inflight++;
	for (unsigned int i = 0; i < req->nraw; i++)
		raw_submit(b->disk, &req->raw[i]);
}

static bool range_ok(const struct virtio_blk *b, uint64_t sector, uint64_t nsec)
{
	return sector <= b->capacity && nsec <= b->capacity - sector;
}

static uint8_t do_rw(struct virtio_blk *b, const struct virtq_chain *c, uint8_t *st,
		     uint64_t sector, bool write)
{
	const struct iovec *src = write ? c->out : c->in;
	unsigned int nsrc = write ? c->nout : c->nin;
	size_t off = write ? VIRTIO_BLK_HDR_SIZE : 0;
	size_t len = write ? c->out_len - VIRTIO_BLK_HDR_SIZE : c->in_len - 1;
	struct blk_req *req;

	if (len % VIRTIO_BLK_SECTOR) {
		log_ratelimited(&b->rl, LOG_WARN,
				"virtio-blk %s: %s of %zu bytes, not whole sectors", b->path,
				write ? "write" : "read", len);
		return VIRTIO_BLK_S_IOERR;
	}
	if (!range_ok(b, sector, len / VIRTIO_BLK_SECTOR)) {
		log_ratelimited(
		    &b->rl, LOG_WARN,
		    "virtio-blk %s: %s of %zu bytes at sector %llu beyond the end (%llu)", b->path,
		    write ? "write" : "read", len, (unsigned long long)sector,
		    (unsigned long long)b->capacity);
		return VIRTIO_BLK_S_IOERR;
	}
	req = req_new(b, c, st, nsrc, 1);
	if (!req)
		return VIRTIO_BLK_S_IOERR;
	req->raw[0].op = write ? RAW_OP_WRITE : RAW_OP_READ;
	req->raw[0].offset = sector * VIRTIO_BLK_SECTOR;
	req->raw[0].iov = req->iov;
	req->raw[0].iovcnt = (int)iov_slice(src, nsrc, off, len, req->iov);
	req->raw[0].dsync = write && b->writethrough;
	req->used_ok = write ? 1 : c->in_len;
	req_submit(b, req);
	return BLK_S_PENDING;
}

static uint8_t do_flush(struct virtio_blk *b, const struct virtq_chain *c, uint8_t *st)
{
	struct blk_req *req;

	if (b->readonly)
		return VIRTIO_BLK_S_OK; /* nothing was written */
	req = req_new(b, c, st, 0, 1);
	if (!req)
		return VIRTIO_BLK_S_IOERR;
	req->raw[0].op = RAW_OP_FLUSH;
	req->used_ok = 1;
	req_submit(b, req);
	return BLK_S_PENDING;
}

static void do_get_id(struct virtio_blk *b, const struct virtq_chain *c, uint8_t *st)
{
	char id[VIRTIO_BLK_ID_BYTES] = {0};
	size_t room = c->in_len - 1, n;

	/* NUL-padded to 20 bytes; a shorter buffer gets what fits. */
	memcpy(id, b->id, strnlen(b->id, VIRTIO_BLK_ID_BYTES));
	n = iov_copy_in(c->in, c->nin, id, room < sizeof(id) ? room : sizeof(id));
	complete_now(b, c->head, st, VIRTIO_BLK_S_OK, (uint32_t)n + 1);
}

/* DISCARD and WRITE_ZEROES: a list of {sector, num_sectors, flags} after the header. */
static uint8_t do_dwz(struct virtio_blk *b, const struct virtq_chain *c, uint8_t *st, bool wz)
{
	const char *what = wz ? "write-zeroes" : "discard";
	size_t bytes = c->out_len - VIRTIO_BLK_HDR_SIZE;
	size_t nseg = bytes / VIRTIO_BLK_SEG_SIZE;
	struct blk_req *req;

	if (!bytes || bytes % VIRTIO_BLK_SEG_SIZE) {
		log_ratelimited(&b->rl, LOG_WARN, "virtio-blk %s: %s with %zu segment bytes",
				b->path, what, bytes);
		return VIRTIO_BLK_S_IOERR;
	}
	if (nseg > VIRTIO_BLK_MAX_DISCARD_SEG) {
		log_ratelimited(&b->rl, LOG_WARN, "virtio-blk %s: %s with %zu segments (max %d)",
				b->path, what, nseg, VIRTIO_BLK_MAX_DISCARD_SEG);
		return VIRTIO_BLK_S_UNSUPP;
	}
	req = req_new(b, c, st, 0, (unsigned int)nseg);
	if (!req)
		return VIRTIO_BLK_S_IOERR;
	/* Check every segment before touching the file. */
	for (size_t i = 0; i < nseg; i++) {
		uint8_t seg[VIRTIO_BLK_SEG_SIZE];
		uint64_t sector;
		uint32_t num, flags;
		uint8_t bad = VIRTIO_BLK_S_OK;

		iov_copy_out(c->out, c->nout, VIRTIO_BLK_HDR_SIZE + i * VIRTIO_BLK_SEG_SIZE, seg,
			     sizeof(seg));
		memcpy(&sector, seg, 8);
		memcpy(&num, seg + 8, 4);
		memcpy(&flags, seg + 12, 4);
		sector = le64toh(sector);
		num = le32toh(num);
		flags = le32toh(flags);
		if (flags & ~(uint32_t)(wz ? VIRTIO_BLK_WZ_FLAG_UNMAP : 0))
			bad = VIRTIO_BLK_S_UNSUPP; /* 5.2.6.2: unknown flags, unmap on discard */
		else if (num > VIRTIO_BLK_MAX_DISCARD_SECTORS || !range_ok(b, sector, num))
			bad = VIRTIO_BLK_S_IOERR;
		if (bad) {
			log_ratelimited(
			    &b->rl, LOG_WARN,
			    "virtio-blk %s: %s of %u sectors at %llu, flags %#x refused", b->path,
			    what, num, (unsigned long long)sector, flags);
			free(req->raw);
			free(req);
			return bad;
		}
		req->raw[i].op = wz ? RAW_OP_WRITE_ZEROES : RAW_OP_DISCARD;
		req->raw[i].offset = sector * VIRTIO_BLK_SECTOR;
		req->raw[i].len = (uint64_t)num * VIRTIO_BLK_SECTOR;
		req->raw[i].unmap = flags & VIRTIO_BLK_WZ_FLAG_UNMAP;
	}
	req->used_ok = 1;
	req_submit(b, req);
	return BLK_S_PENDING;
}

static void handle_chain(struct virtio_blk *b, const struct virtq_chain *c)
{
	uint8_t hdr[VIRTIO_BLK_HDR_SIZE], *st = status_byte(c), status;
	uint32_t type;
	uint64_t sector;

	if (!st) {
		/* Nowhere to say it failed: give the buffer back untouched. */
		log_ratelimited(&b->rl, LOG_WARN, "virtio-blk %s: request without a status byte",
				b->path);
		push(b, c->head, 0);
		return;
	}
	if (c->out_len < VIRTIO_BLK_HDR_SIZE) {
		log_ratelimited(&b->rl, LOG_WARN, "virtio-blk %s: request header of %u bytes",
				b->path, c->out_len);
		complete_now(b, c->head, st, VIRTIO_BLK_S_IOERR, 1);
		return;
	}
	iov_copy_out(c->out, c->nout, 0, hdr, sizeof(hdr));
	memcpy(&type, hdr, 4);
	memcpy(&sector, hdr + 8, 8);
	type = le32toh(type);
	sector = le64toh(sector);

	switch (type) {
	case VIRTIO_BLK_T_IN:
		status = do_rw(b, c, st, sector, false);
		break;
	case VIRTIO_BLK_T_OUT:
		status = b->readonly ? VIRTIO_BLK_S_IOERR : do_rw(b, c, st, sector, true);
		break;
	case VIRTIO_BLK_T_FLUSH:
		status = do_flush(b, c, st);
		break;
	case VIRTIO_BLK_T_GET_ID:
		do_get_id(b, c, st);
		return;
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES: {
		bool wz = type == VIRTIO_BLK_T_WRITE_ZEROES;

		if (b->readonly)
			status = VIRTIO_BLK_S_IOERR;
		else if (!(wz ? b->write_zeroes : b->discard))
			status = VIRTIO_BLK_S_UNSUPP;
		else
			status = do_dwz(b, c, st, wz);
		break;
	}
	default:
		log_ratelimited(&b->rl, LOG_WARN, "virtio-blk %s: unsupported request type %u",
				b->path, type);
		status = VIRTIO_BLK_S_UNSUPP;
		break;
	}
	if (status != BLK_S_PENDING)
		complete_now(b, c->head, st, status, 1);
}

/*
 * Pops and starts available requests, up to one queue's worth in flight
 * (a guest reposting heads cannot make us allocate without end).
 * Called locked.
 */
static void process_queue(struct virtio_blk *b)
{
	struct virtq *q = &b->dev.queues[0];
	unsigned int budget = q->size;

	if (!b->active || b->broken || !q->ready)
		return;
	/* One submission for all the requests this round pops. */
	raw_plug(b->disk);
	while (b->inflight < q->size) {
		int ret;

		/*
		 * A ring's worth per call: a guest that keeps refilling the
		 * ring (or whose reads land on it) cannot hold the event
		 * thread. The rest is taken on the next round.
		 */
		if (!budget--) {
			raw_wake(b->disk);
			break;
		}
		ret = virtq_pop(q, &b->chain);
		if (ret == 0)
			break;
		if (ret < 0) {
			/* Reported once; the queue is left alone until the driver resets. */
			mark_broken(b, q->error);
			break;
		}
		handle_chain(b, &b->chain);
	}
	raw_unplug(b->disk);
}

/* Drops the lock, then tells the transport what happened under it. */
static void unlock_and_signal(struct virtio_blk *b)
{
	bool notify = b->notify && b->active && virtq_should_notify(&b->dev.queues[0]);
	const char *broken = b->broken_why;

	b->notify = false;
	b->broken_why = NULL;
	pthread_mutex_unlock(&b->lock);
	if (broken)
		b->dev.set_broken(&b->dev, broken);
	if (notify)
		b->dev.signal_used(&b->dev, 0);
}

static void blk_queue_notify(struct virtio_device *d, uint16_t qi)
{
	struct virtio_blk *b = to_blk(d);

	if (qi != 0)
		return;
	pthread_mutex_lock(&b->lock);
	process_queue(b);
	unlock_and_signal(b);
}

static void blk_complete(struct virtio_blk *b, bool wait)
{
	pthread_mutex_lock(&b->lock);
	if (wait)
		raw_drain(b->disk);
	else
		raw_complete(b->disk);
	/* Completions made room, or a round was deferred: take what waited. */
	process_queue(b);
	unlock_and_signal(b);
}

static void blk_event(void *ctx, uint32_t events)
{
	(void)events;
	blk_complete(ctx, false);
}

void virtio_blk_poll(struct virtio_device *d, bool wait)
{
	blk_complete(to_blk(d), wait);
}

static void blk_config_read(struct virtio_device *d, uint32_t off, uint8_t *data, uint32_t len)
{
	struct virtio_blk *b = to_blk(d);

	for (uint32_t i = 0; i < len; i++)
		data[i] = off + i < VIRTIO_BLK_CFG_SIZE ? b->cfg[off + i] : 0;
}

static int blk_activate(struct virtio_device *d)
{
	struct virtio_blk *b = to_blk(d);
	int ret;

	if (d->events && !b->registered) {
		ret = event_loop_add(d->events, raw_event_fd(b->disk), EPOLLIN, &b->handler);
		if (ret) {
			log_err("virtio-blk %s: event loop: %s", b->path, strerror(-ret));
			return ret;
		}
		b->registered = true;
	}
	pthread_mutex_lock(&b->lock);
	b->writethrough = !virtio_has_feature(d, VIRTIO_BLK_F_FLUSH);
	b->discard = !b->readonly && virtio_has_feature(d, VIRTIO_BLK_F_DISCARD);
	b->write_zeroes = !b->readonly && virtio_has_feature(d, VIRTIO_BLK_F_WRITE_ZEROES);
	b->active = true;
	pthread_mutex_unlock(&b->lock);
	return 0;
}

static void blk_reset(struct virtio_device *d)
{
	struct virtio_blk *b = to_blk(d);

	pthread_mutex_lock(&b->lock);
	b->active = false;
	b->broken = false;
	b->broken_why = NULL;
	b->gen++;
	/* The kernel may still be writing guest RAM for reads in flight: wait. */
	raw_drain(b->disk);
	b->notify = false;
	pthread_mutex_unlock(&b->lock);
}

static const struct virtio_device_ops blk_ops = {
    .name = "virtio-blk",
    .type = VIRTIO_ID_BLOCK,
    .config_read = blk_config_read,
    .activate = blk_activate,
    .reset = blk_reset,
    .queue_notify = blk_queue_notify,
};

static void put16(uint8_t *p, uint16_t v)
{
	v = htole16(v);
	memcpy(p, &v, 2);
}

static void put32(uint8_t *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, 4);
}

static void put64(uint8_t *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, 8);
}

static void build_config(struct virtio_blk *b)
{
	uint32_t phys = raw_block_size(b->disk), align;
	uint8_t exp = 0;

	/* Physical block: the file system's block, as a hint for alignment (max 4 KiB). */
	while (exp < 3 && (VIRTIO_BLK_SECTOR << (exp + 1u)) <= phys)
		exp++;
	align = 1u << exp;

	put64(b->cfg + VIRTIO_BLK_CFG_CAPACITY, b->capacity);
	put32(b->cfg + VIRTIO_BLK_CFG_SEG_MAX, VIRTIO_BLK_SEG_MAX);
	put32(b->cfg + VIRTIO_BLK_CFG_BLK_SIZE, VIRTIO_BLK_SECTOR);
	b->cfg[VIRTIO_BLK_CFG_PHYS_BLOCK_EXP] = exp;
	put16(b->cfg + VIRTIO_BLK_CFG_MIN_IO_SIZE, (uint16_t)align);
	put16(b->cfg + VIRTIO_BLK_CFG_NUM_QUEUES, 1);
	b->dev.device_features = 1ull << VIRTIO_BLK_F_SEG_MAX | 1ull << VIRTIO_BLK_F_BLK_SIZE |
				 1ull << VIRTIO_BLK_F_TOPOLOGY | 1ull << VIRTIO_BLK_F_FLUSH;
	if (b->readonly) {
		b->dev.device_features |= 1ull << VIRTIO_BLK_F_RO;
		return;
	}
	put32(b->cfg + VIRTIO_BLK_CFG_MAX_DISCARD_SECTORS, VIRTIO_BLK_MAX_DISCARD_SECTORS);
	put32(b->cfg + VIRTIO_BLK_CFG_MAX_DISCARD_SEG, VIRTIO_BLK_MAX_DISCARD_SEG);
	put32(b->cfg + VIRTIO_BLK_CFG_DISCARD_ALIGN, align);
	put32(b->cfg + VIRTIO_BLK_CFG_MAX_WZ_SECTORS, VIRTIO_BLK_MAX_DISCARD_SECTORS);
	put32(b->cfg + VIRTIO_BLK_CFG_MAX_WZ_SEG, VIRTIO_BLK_MAX_DISCARD_SEG);
	b->cfg[VIRTIO_BLK_CFG_WZ_MAY_UNMAP] = 1;
	b->dev.device_features |= 1ull << VIRTIO_BLK_F_DISCARD | 1ull << VIRTIO_BLK_F_WRITE_ZEROES;
}

/* The default id: the image's file name, cut to 20 bytes. */
static void default_id(char *id, const char *path)
{
	const char *base = strrchr(path, '/');

	base = base && base[1] ? base + 1 : path;
	snprintf(id, VIRTIO_BLK_ID_BYTES + 1, "%s", base);
}

/* The backend words its errors by path; the user also needs the flag. */
static void name_flag(char *err, size_t errlen)
{
	char why[512];

	snprintf(why, sizeof(why), "%s", err);
	snprintf(err, errlen, "--disk: %s", why);
}

int virtio_blk_create(const struct virtio_blk_config *cfg, struct virtio_device **out, char *err,
		      size_t errlen)
{
	struct virtio_blk *b;
	uint64_t size;
	int ret;

	b = calloc(1, sizeof(*b));
	if (!b) {
		snprintf(err, errlen, "--disk %s: out of memory", cfg->path);
		return -ENOMEM;
	}
	b->path = strdup(cfg->path);
	if (!b->path) {
		ret = -ENOMEM;
		snprintf(err, errlen, "--disk %s: out of memory", cfg->path);
		goto err_free;
	}
	ret = raw_open(cfg->path, cfg->readonly ? RAW_READONLY : 0, &b->disk, err, errlen);
	if (ret) {
		name_flag(err, errlen);
		goto err_path;
	}
	size = raw_size(b->disk);
	if (size < VIRTIO_BLK_SECTOR) {
		snprintf(err, errlen, "--disk %s: image of %llu bytes is smaller than one 512-byte sector",
			 cfg->path, (unsigned long long)size);
		ret = -EINVAL;
		goto err_close;
	}
	if (size % VIRTIO_BLK_SECTOR)
		log_warn("%s: size %llu is not a multiple of 512: the last %llu bytes are not "
			 "visible to the guest",
			 cfg->path, (unsigned long long)size,
			 (unsigned long long)(size % VIRTIO_BLK_SECTOR));
	b->capacity = size / VIRTIO_BLK_SECTOR;
	b->readonly = cfg->readonly;
	if (cfg->id[0])
		snprintf(b->id, sizeof(b->id), "%s", cfg->id);
	else
		default_id(b->id, cfg->path);
	b->rl = (struct ratelimit)RATELIMIT_INIT(5000, 10);
	ret = pthread_mutex_init(&b->lock, NULL);
	if (ret) {
		snprintf(err, errlen, "--disk %s: mutex: %s", cfg->path, strerror(ret));
		ret = -ret;
		goto err_close;
	}
	b->handler.fn = blk_event;
	b->handler.ctx = b;
	b->dev.ops = &blk_ops;
	b->dev.priv = b;
	b->dev.num_queues = 1;
	b->dev.queue_max[0] = VIRTIO_BLK_QUEUE_SIZE;
	b->dev.config_size = VIRTIO_BLK_CFG_SIZE;
	build_config(b);
	*out = &b->dev;
	return 0;

err_close:
	raw_close(b->disk);
err_path:
	free(b->path);
err_free:
	free(b);
	return ret;
}

void virtio_blk_destroy(struct virtio_device *d)
{
	struct virtio_blk *b;

	if (!d)
		return;
	b = to_blk(d);
	if (b->registered)
		event_loop_del_sync(d->events, raw_event_fd(b->disk));
	pthread_mutex_lock(&b->lock);
	b->active = false;
	b->gen++;
	raw_close(b->disk);
	pthread_mutex_unlock(&b->lock);
	pthread_mutex_destroy(&b->lock);
	free(b->path);
	free(b);
}

const char *virtio_blk_id(const struct virtio_device *d)
{
	return to_blk(d)->id;
}

uint64_t virtio_blk_capacity(const struct virtio_device *d)
{
	return to_blk(d)->capacity;
}

static int parse_id(const char *v, size_t n, struct virtio_blk_config *cfg, char *err,
		    size_t errlen)
{
	if (!n || n > VIRTIO_BLK_ID_BYTES) {
		snprintf(err, errlen, "--disk: id=%.*s: must be 1 to %d bytes", (int)n, v,
			 VIRTIO_BLK_ID_BYTES);
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		if (v[i] < 0x20 || v[i] > 0x7e) {
			snprintf(err, errlen, "--disk: id: byte %zu is not printable ASCII", i);
			return -EINVAL;
		}
	}
	memcpy(cfg->id, v, n);
	cfg->id[n] = '\0';
	return 0;
}

static int parse_option(const char *opt, size_t n, struct virtio_blk_config *cfg, char *err,
			size_t errlen)
{
	if (!n) {
		snprintf(err, errlen, "--disk: empty option after ','");
		return -EINVAL;
	}
	if (n == 2 && !memcmp(opt, "ro", 2)) {
		cfg->readonly = true;
		return 0;
	}
	if (n >= 3 && !memcmp(opt, "id=", 3))
		return parse_id(opt + 3, n - 3, cfg, err, errlen);
	snprintf(err, errlen, "--disk: unknown option '%.*s' (expected ro or id=NAME)", (int)n,
		 opt);
	return -EINVAL;
}

int virtio_blk_parse(const char *arg, struct virtio_blk_config *cfg, char *err, size_t errlen)
{
	const char *comma = strchr(arg, ','), *p;
	size_t plen = comma ? (size_t)(comma - arg) : strlen(arg);
	char *path;
	int ret;

	memset(cfg, 0, sizeof(*cfg));
	if (!plen) {
		snprintf(err, errlen, "--disk: empty image path (expected PATH[,ro][,id=NAME])");
		return -EINVAL;
	}
	for (p = comma; p; p = comma) {
		const char *opt = p + 1;

		comma = strchr(opt, ',');
		ret = parse_option(opt, comma ? (size_t)(comma - opt) : strlen(opt), cfg, err,
				   errlen);
		if (ret)
			return ret;
	}
	path = strndup(arg, plen);
	if (!path) {
		snprintf(err, errlen, "--disk: out of memory");
		return -ENOMEM;
	}
	cfg->path = path;
	return 0;
}

void virtio_blk_config_free(struct virtio_blk_config *cfg)
{
	free((char *)cfg->path);
	cfg->path = NULL;
}
