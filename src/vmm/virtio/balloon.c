#include "vmm/virtio/balloon.h"

#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/parse.h"
#include "vmm/event.h"

/* Largest stats buffer read; Linux sends VIRTIO_BALLOON_S_NR entries. */
#define STATS_MAX_ENTRIES 64

struct virtio_balloon {
	struct virtio_device dev;
	struct virtio_balloon_config cfg;
	bool can_discard; /* host pages are 4 KiB: madvise works per balloon page */

	pthread_mutex_t lock; /* guards everything below */
	bool active;	      /* between activate and reset */
	bool stats_vq;	      /* the stats queue was negotiated */
	uint32_t num_pages;
	uint32_t actual;
	uint64_t inflated;
	uint64_t invalid_pfns;
	bool stats_held; /* the driver's stats buffer is ours */
	uint16_t stats_head;
	struct virtio_balloon_stats last; /* present/stats/updates/updated_ms */

	int timer_fd; /* -1 without polling */
	bool timer_added;
	struct event_handler timer_h;

	struct ratelimit rl;
	struct virtq_chain chain; /* big: kept off the stack */
};

static struct virtio_balloon *to_balloon(struct virtio_device *d)
{
	return d->priv;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t ram_pages(const struct virtio_balloon *b)
{
	return b->dev.mem ? b->dev.mem->ram_size >> VIRTIO_BALLOON_PAGE_SHIFT : 0;
}

/* Reads a device-readable chain as a byte stream, whatever its segmenting. */
struct chain_reader {
	const struct iovec *iov;
	unsigned int n, i;
	size_t off;
};

static size_t chain_read(struct chain_reader *r, void *dst, size_t len)
{
	size_t got = 0;

	while (got < len && r->i < r->n) {
		const struct iovec *v = &r->iov[r->i];
		size_t take = v->iov_len - r->off;

		if (take > len - got)
			take = len - got;
		memcpy((uint8_t *)dst + got, (const uint8_t *)v->iov_base + r->off, take);
		got += take;
		r->off += take;
		if (r->off == v->iov_len) {
			r->i++;
			r->off = 0;
		}
	}
	return got;
}

/* Pages waiting for one madvise: contiguous in the host mapping. */
struct page_run {
	uint8_t *hva;
	uint64_t npages;
};

static void run_discard(struct virtio_balloon *b, struct page_run *run)
{
	uint64_t max = ram_pages(b), n;

	if (!run->npages)
		return;
	if (madvise(run->hva, run->npages << VIRTIO_BALLOON_PAGE_SHIFT, MADV_DONTNEED)) {
		log_ratelimited(&b->rl, LOG_WARN,
				"virtio-balloon: madvise of %" PRIu64 " pages: %s", run->npages,
				strerror(errno));
	} else {
		n = b->inflated + run->npages;
		b->inflated = n > max ? max : n;
	}
	run->npages = 0;
}

/* The host address of balloon page pfn, or NULL when it is not guest RAM. */
static uint8_t *pfn_page(struct virtio_balloon *b, uint32_t pfn)
{
	uint8_t *p = gmem_ptr(b->dev.mem, (uint64_t)pfn << VIRTIO_BALLOON_PAGE_SHIFT,
			      VIRTIO_BALLOON_PAGE_SIZE);

	if (!p) {
		b->invalid_pfns++;
		log_ratelimited(&b->rl, LOG_WARN,
				"virtio-balloon: PFN 0x%" PRIx32 " is not guest RAM, skipped", pfn);
	}
	return p;
}

static void inflate_pfn(struct virtio_balloon *b, struct page_run *run, uint32_t pfn)
{
	uint8_t *p = pfn_page(b, pfn);

	if (!p || !b->can_discard)
		return;
	if (run->npages && p == run->hva + (run->npages << VIRTIO_BALLOON_PAGE_SHIFT)) {
		run->npages++;
		return;
	}
	run_discard(b, run);
	run->hva = p;
	run->npages = 1;
}

static void deflate_pfn(struct virtio_balloon *b, uint32_t pfn)
{
	/* Nothing to map back: the page faults in zeroed on the guest's next touch. */
	if (pfn_page(b, pfn) && b->inflated)
		b->inflated--;
}

/* One inflate or deflate request: an array of le32 PFNs. */
static void pfns_handle(struct virtio_balloon *b, const struct virtq_chain *c, bool inflate)
{
	struct chain_reader r = {.iov = c->out, .n = c->nout};
	struct page_run run = {0};
	uint32_t pfn;

	if (c->out_len % sizeof(pfn) || c->nin)
		log_ratelimited(&b->rl, LOG_WARN,
				"virtio-balloon: %s request of %" PRIu32
				" bytes (%u writable segments): trailing bytes ignored",
				inflate ? "inflate" : "deflate", c->out_len, c->nin);
	while (chain_read(&r, &pfn, sizeof(pfn)) == sizeof(pfn)) {
		pfn = le32toh(pfn);
		if (inflate)
			inflate_pfn(b, &run, pfn);
		else
			deflate_pfn(b, pfn);
	}
	run_discard(b, &run);
}

/* One stats buffer: copies out the entries it holds. */
static void stats_parse(struct virtio_balloon *b, const struct virtq_chain *c)
{
	struct chain_reader r = {.iov = c->out, .n = c->nout};
	uint8_t e[VIRTIO_BALLOON_STAT_SIZE];
	unsigned int n = 0;
	uint16_t tag;
	uint64_t val;

	if (c->out_len % VIRTIO_BALLOON_STAT_SIZE ||
	    c->out_len > STATS_MAX_ENTRIES * VIRTIO_BALLOON_STAT_SIZE)
		log_ratelimited(&b->rl, LOG_WARN,
				"virtio-balloon: stats buffer of %" PRIu32
				" bytes: only whole entries, up to %d, are read",
				c->out_len, STATS_MAX_ENTRIES);
	b->last.present = 0;
	memset(b->last.stats, 0, sizeof(b->last.stats));
	while (n++ < STATS_MAX_ENTRIES && chain_read(&r, e, sizeof(e)) == sizeof(e)) {
		memcpy(&tag, e, sizeof(tag));
		memcpy(&val, e + 2, sizeof(val));
		tag = le16toh(tag);
		/* Tags from a newer driver are skipped, as the spec asks. */
		if (tag >= VIRTIO_BALLOON_S_NR)
			continue;
		b->last.stats[tag] = le64toh(val);
		b->last.present |= 1u << tag;
	}
	b->last.updates++;
	b->last.updated_ms = now_ms();
}

/*
 * Pops every pending chain of queue qi. Returns whether the driver wants
 * an interrupt; *broken is set when the ring itself is broken.
 */
static bool queue_process(struct virtio_balloon *b, uint16_t qi, const char **broken)
{
	struct virtq *q = &b->dev.queues[qi];
	bool pushed = false;
	int r;

	for (;;) {
		r = virtq_pop(q, &b->chain);
		if (r <= 0)
			break;
		if (qi == VIRTIO_BALLOON_Q_STATS) {
			if (b->stats_held) {
				/* Linux has one; a driver with two gets the old one back. */
				log_ratelimited(
				    &b->rl, LOG_WARN,
				    "virtio-balloon: driver queued a second stats buffer");
				r = virtq_push(q, b->stats_head, 0);
				if (r)
					break;
				pushed = true;
			}
			stats_parse(b, &b->chain);
			b->stats_head = b->chain.head;
			b->stats_held = true;
			continue;
		}
		pfns_handle(b, &b->chain, qi == VIRTIO_BALLOON_Q_INFLATE);
		r = virtq_push(q, b->chain.head, 0);
		if (r)
			break;
		pushed = true;
	}
	if (r < 0) {
		*broken = q->error ? q->error : "virtqueue error";
		if (qi == VIRTIO_BALLOON_Q_STATS)
			b->stats_held = false;
		return false;
	}
	return pushed && virtq_should_notify(q);
}

static void balloon_queue_notify(struct virtio_device *d, uint16_t qi)
{
	struct virtio_balloon *b = to_balloon(d);
	const char *broken = NULL;
	bool notify = false;

	pthread_mutex_lock(&b->lock);
	if (qi >= d->num_queues || (b->active && qi == VIRTIO_BALLOON_Q_STATS && !b->stats_vq))
		log_ratelimited(&b->rl, LOG_WARN, "virtio-balloon: kick of queue %u ignored", qi);
	else if (b->active && d->mem) /* before DRIVER_OK: activate takes what is queued */
		notify = queue_process(b, qi, &broken);
	pthread_mutex_unlock(&b->lock);
	if (broken)
		d->set_broken(d, broken);
	if (notify)
		d->signal_used(d, qi);
}

/* Called with the lock held; *notify says whether to interrupt afterwards. */
static int stats_return(struct virtio_balloon *b, bool *notify, const char **broken)
{
	struct virtq *q = &b->dev.queues[VIRTIO_BALLOON_Q_STATS];

	if (!b->active)
		return -ENODEV;
	if (!b->stats_vq)
		return -EOPNOTSUPP;
	if (!b->stats_held)
		return -EAGAIN;
	b->stats_held = false;
	if (virtq_push(q, b->stats_head, 0)) {
		*broken = q->error ? q->error : "virtqueue error";
		return -EIO;
	}
	*notify = virtq_should_notify(q);
	return 0;
}

int virtio_balloon_request_stats(struct virtio_device *d)
{
	struct virtio_balloon *b = to_balloon(d);
	const char *broken = NULL;
	bool notify = false;
	int err;

	pthread_mutex_lock(&b->lock);
	err = stats_return(b, &notify, &broken);
	pthread_mutex_unlock(&b->lock);
	if (broken)
		d->set_broken(d, broken);
	if (notify)
		d->signal_used(d, VIRTIO_BALLOON_Q_STATS);
	return err;
}

static void timer_fired(void *ctx, uint32_t events)
{
	struct virtio_balloon *b = ctx;
	uint64_t ticks;

	(void)events;
	if (read(b->timer_fd, &ticks, sizeof(ticks)) < 0)
		return;
	/* -EAGAIN: the driver has not refilled the last one yet; next tick. */
	virtio_balloon_request_stats(&b->dev);
}

static void timer_arm(struct virtio_balloon *b, uint32_t interval_s)
{
	struct itimerspec its = {
	    .it_interval = {.tv_sec = interval_s},
	    .it_value = {.tv_sec = interval_s},
	};

	if (b->timer_fd >= 0)
		timerfd_settime(b->timer_fd, 0, &its, NULL);
}

static void config_image(const struct virtio_balloon *b, uint8_t img[VIRTIO_BALLOON_CFG_SIZE])
{
	uint32_t v = htole32(b->num_pages);

	memcpy(img + VIRTIO_BALLOON_CFG_NUM_PAGES, &v, sizeof(v));
	v = htole32(b->actual);
	memcpy(img + VIRTIO_BALLOON_CFG_ACTUAL, &v, sizeof(v));
}

static bool cfg_range_ok(uint32_t off, uint32_t len)
{
	return off <= VIRTIO_BALLOON_CFG_SIZE && len <= VIRTIO_BALLOON_CFG_SIZE - off;
}

static void balloon_config_read(struct virtio_device *d, uint32_t off, uint8_t *data, uint32_t len)
{
	struct virtio_balloon *b = to_balloon(d);
	uint8_t img[VIRTIO_BALLOON_CFG_SIZE];

	if (!cfg_range_ok(off, len)) {
		log_ratelimited(&b->rl, LOG_WARN,
				"virtio-balloon: config read of %u bytes at %u ignored", len, off);
		memset(data, 0, len);
		return;
	}
	pthread_mutex_lock(&b->lock);
	config_image(b, img);
	pthread_mutex_unlock(&b->lock);
	memcpy(data, img + off, len);
}

/* Only `actual` is the driver's to write; a write touching num_pages is dropped whole. */
static void balloon_config_write(struct virtio_device *d, uint32_t off, const uint8_t *data,
				 uint32_t len)
{
	struct virtio_balloon *b = to_balloon(d);
	uint8_t img[VIRTIO_BALLOON_CFG_SIZE];
	uint32_t v;

	if (!cfg_range_ok(off, len) || off < VIRTIO_BALLOON_CFG_ACTUAL) {
		log_ratelimited(&b->rl, LOG_WARN,
				"virtio-balloon: config write of %u bytes at %u ignored", len, off);
		return;
	}
	pthread_mutex_lock(&b->lock);
	config_image(b, img);
	memcpy(img + off, data, len);
	memcpy(&v, img + VIRTIO_BALLOON_CFG_ACTUAL, sizeof(v));
	b->actual = le32toh(v);
	pthread_mutex_unlock(&b->lock);
}

static void timer_register(struct virtio_balloon *b)
{
	int err;

	if (b->timer_fd < 0 || b->timer_added || !b->dev.events)
		return;
	err = event_loop_add(b->dev.events, b->timer_fd, EPOLLIN, &b->timer_h);
	if (err) {
		log_warn("virtio-balloon: stats polling off: %s", strerror(-err));
		return;
	}
	b->timer_added = true;
}

/*
 * Linux queues its first stats buffer and kicks before it sets DRIVER_OK
 * (init_vqs runs before virtio_device_ready), so the kick found the device
 * inactive: take that buffer now. No interrupt is sent from here (the
 * transport's lock is held); only a driver queueing two buffers misses one.
 */
static int balloon_activate(struct virtio_device *d)
{
	struct virtio_balloon *b = to_balloon(d);
	const char *broken = NULL;
	int err = 0;

	pthread_mutex_lock(&b->lock);
	b->active = true;
	b->stats_vq = b->cfg.stats && virtio_has_feature(d, VIRTIO_BALLOON_F_STATS_VQ) &&
		      d->num_queues > VIRTIO_BALLOON_Q_STATS;
	b->stats_held = false;
	if (b->stats_vq && d->mem) {
		queue_process(b, VIRTIO_BALLOON_Q_STATS, &broken);
		if (broken) {
			log_ratelimited(&b->rl, LOG_WARN, "virtio-balloon: stats queue: %s",
					broken);
			err = -EINVAL;
		}
	}
	if (b->stats_vq && b->cfg.stats_interval_s) {
		timer_register(b);
		timer_arm(b, b->cfg.stats_interval_s);
	}
	pthread_mutex_unlock(&b->lock);
	return err;
}

/*
 * The driver starts over with an empty balloon: pages it had inflated are
 * already the host's and fault back in zeroed, so only the books change.
 */
static void balloon_reset(struct virtio_device *d)
{
	struct virtio_balloon *b = to_balloon(d);

	pthread_mutex_lock(&b->lock);
	b->active = false;
	b->stats_vq = false;
	b->stats_held = false;
	b->actual = 0;
	b->inflated = 0;
	timer_arm(b, 0);
	pthread_mutex_unlock(&b->lock);
}

static const struct virtio_device_ops balloon_ops = {
    .name = "virtio-balloon",
    .type = VIRTIO_ID_BALLOON,
    .config_read = balloon_config_read,
    .config_write = balloon_config_write,
    .activate = balloon_activate,
    .reset = balloon_reset,
    .queue_notify = balloon_queue_notify,
};

int virtio_balloon_set_target(struct virtio_device *d, uint32_t pages)
{
	struct virtio_balloon *b = to_balloon(d);
	bool notify;

	pthread_mutex_lock(&b->lock);
	if (d->mem && pages > ram_pages(b)) {
		pthread_mutex_unlock(&b->lock);
		return -EINVAL;
	}
	b->num_pages = pages;
	notify = b->active;
	pthread_mutex_unlock(&b->lock);
	if (notify && d->signal_config)
		d->signal_config(d);
	return 0;
}

void virtio_balloon_get_stats(struct virtio_device *d, struct virtio_balloon_stats *out)
{
	struct virtio_balloon *b = to_balloon(d);

	pthread_mutex_lock(&b->lock);
	*out = b->last;
	out->target_pages = b->num_pages;
	out->actual_pages = b->actual;
	out->inflated_pages = b->inflated;
	out->invalid_pfns = b->invalid_pfns;
	pthread_mutex_unlock(&b->lock);
}

static int parse_word(const char *w, struct virtio_balloon_config *cfg, char *err, size_t errlen)
{
	uint64_t v;

	if (!strcmp(w, "deflate-on-oom")) {
		cfg->deflate_on_oom = true;
	} else if (!strncmp(w, "target=", 7)) {
		if (parse_u64(w + 7, &v) || v > VIRTIO_BALLOON_MAX_TARGET_MIB) {
			snprintf(err, errlen, "--balloon: %s: not a size in MiB from 0 to %u", w,
				 (unsigned int)VIRTIO_BALLOON_MAX_TARGET_MIB);
			return -EINVAL;
		}
		cfg->target_mib = (uint32_t)v;
	} else if (!strcmp(w, "stats=off")) {
		cfg->stats = false;
		cfg->stats_interval_s = 0;
	} else if (!strncmp(w, "stats=", 6)) {
		if (parse_u64(w + 6, &v) || v > UINT32_MAX) {
			snprintf(err, errlen, "--balloon: %s: not a number of seconds or \"off\"",
				 w);
			return -EINVAL;
		}
		cfg->stats = true;
		cfg->stats_interval_s = (uint32_t)v;
	} else {
		snprintf(err, errlen,
			 "--balloon: \"%s\": unknown option (expected deflate-on-oom, target=MIB, "
			 "stats=SECONDS or stats=off)",
			 w);
		return -EINVAL;
	}
	return 0;
}

int virtio_balloon_parse(const char *arg, struct virtio_balloon_config *cfg, char *err,
			 size_t errlen)
{
	char buf[256];
	char *w, *comma;
	int ret;

	*cfg = (struct virtio_balloon_config){.stats = true};
	if (!arg || !*arg)
		return 0;
	if (strlen(arg) >= sizeof(buf)) {
		snprintf(err, errlen, "--balloon: value longer than %zu characters",
			 sizeof(buf) - 1);
		return -EINVAL;
	}
	strcpy(buf, arg);
	for (w = buf; w; w = comma ? comma + 1 : NULL) {
		comma = strchr(w, ',');
		if (comma)
			*comma = '\0';
		if (!*w) {
			snprintf(err, errlen, "--balloon: %s: empty option", arg);
			return -EINVAL;
		}
		ret = parse_word(w, cfg, err, errlen);
		if (ret)
			return ret;
	}
	return 0;
}

int virtio_balloon_create(const struct virtio_balloon_config *cfg, struct virtio_device **out,
			  char *err, size_t errlen)
{
	struct virtio_balloon *b;
	int ret;

	if (cfg->target_mib > VIRTIO_BALLOON_MAX_TARGET_MIB) {
		snprintf(err, errlen, "--balloon: target=%" PRIu32 ": more than %u MiB",
			 cfg->target_mib, (unsigned int)VIRTIO_BALLOON_MAX_TARGET_MIB);
		return -EINVAL;
	}
	b = calloc(1, sizeof(*b));
	if (!b) {
		snprintf(err, errlen, "--balloon: out of memory");
		return -ENOMEM;
	}
	b->cfg = *cfg;
	b->timer_fd = -1;
	b->num_pages = cfg->target_mib * VIRTIO_BALLOON_PAGES_PER_MIB;
	b->rl = (struct ratelimit)RATELIMIT_INIT(5000, 10);
	b->can_discard = sysconf(_SC_PAGESIZE) == VIRTIO_BALLOON_PAGE_SIZE;
	if (!b->can_discard)
		log_warn("virtio-balloon: host pages are not 4 KiB: inflated pages are kept");
	ret = pthread_mutex_init(&b->lock, NULL);
	if (ret) {
		snprintf(err, errlen, "--balloon: mutex: %s", strerror(ret));
		goto err_free;
	}
	if (cfg->stats && cfg->stats_interval_s) {
		b->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
		if (b->timer_fd < 0) {
			ret = errno;
			snprintf(err, errlen, "--balloon: stats timer: %s", strerror(ret));
			goto err_mutex;
		}
		b->timer_h = (struct event_handler){.fn = timer_fired, .ctx = b};
	}

	b->dev.ops = &balloon_ops;
	b->dev.priv = b;
	b->dev.device_features = 0;
	if (cfg->stats)
		b->dev.device_features |= 1ull << VIRTIO_BALLOON_F_STATS_VQ;
	if (cfg->deflate_on_oom)
		b->dev.device_features |= 1ull << VIRTIO_BALLOON_F_DEFLATE_ON_OOM;
	b->dev.num_queues = cfg->stats ? 3 : 2;
	for (unsigned int i = 0; i < b->dev.num_queues; i++)
		b->dev.queue_max[i] = VIRTIO_BALLOON_QUEUE_SIZE;
	b->dev.config_size = VIRTIO_BALLOON_CFG_SIZE;
	*out = &b->dev;
	return 0;

err_mutex:
	pthread_mutex_destroy(&b->lock);
err_free:
	free(b);
	return -ret;
}

void virtio_balloon_destroy(struct virtio_device *d)
{
	struct virtio_balloon *b;

	if (!d)
		return;
	b = to_balloon(d);
	/* _sync: the timer handler may be running on the event thread. */
	if (b->timer_added)
		event_loop_del_sync(d->events, b->timer_fd);
	if (b->timer_fd >= 0)
		close(b->timer_fd);
	pthread_mutex_destroy(&b->lock);
	free(b);
}
