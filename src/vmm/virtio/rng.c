#include "vmm/virtio/rng.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "core/log.h"

struct virtio_rng {
	struct virtio_device dev;
	uint32_t max_request;
	bool broken; /* the ring is bad: reported, left alone until reset */
	struct ratelimit rl;
	struct virtq_chain chain; /* scratch for virtq_pop */
};

/* Fills up to len bytes at p; returns how many (fewer only if getrandom fails). */
static size_t fill_random(struct virtio_rng *r, uint8_t *p, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = getrandom(p + done, len - done, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_ratelimited(&r->rl, LOG_WARN, "virtio-rng: getrandom: %s",
					strerror(errno));
			break;
		}
		done += (size_t)n;
	}
	return done;
}

/* Fills the chain's writable part (readable segments are ignored); returns bytes written. */
static uint32_t fill_chain(struct virtio_rng *r, const struct virtq_chain *c)
{
	uint32_t left = r->max_request, written = 0;

	for (unsigned int i = 0; i < c->nin && left; i++) {
		size_t want = c->in[i].iov_len < left ? c->in[i].iov_len : left;
		size_t got = fill_random(r, c->in[i].iov_base, want);

		written += (uint32_t)got;
		left -= (uint32_t)got;
		if (got < want)
			break;
	}
	return written;
}

static void rng_queue_notify(struct virtio_device *d, uint16_t qi)
{
	struct virtio_rng *r = d->priv;
	struct virtq *q = &d->queues[0];
	bool pushed = false;
	int ret;

	if (qi != 0 || !q->ready || r->broken)
		return;
	while ((ret = virtq_pop(q, &r->chain)) > 0) {
		virtq_push(q, r->chain.head, fill_chain(r, &r->chain));
		pushed = true;
	}
	if (ret < 0) {
		r->broken = true;
		d->set_broken(d, q->error ? q->error : "malformed descriptor chain");
	}
	if (pushed)
		virtio_queue_done(d, 0);
}

static void rng_config_read(struct virtio_device *d, uint32_t off, uint8_t *data, uint32_t len)
{
	(void)d;
	(void)off;
	memset(data, 0, len);
}

static int rng_activate(struct virtio_device *d)
{
	(void)d;
	return 0;
}

static void rng_reset(struct virtio_device *d)
{
	struct virtio_rng *r = d->priv;

	/* Requests complete inside queue_notify: nothing is in flight. */
	r->broken = false;
}

static const struct virtio_device_ops rng_ops = {
    .name = "virtio-rng",
    .type = VIRTIO_ID_RNG,
    .config_read = rng_config_read,
    .activate = rng_activate,
    .reset = rng_reset,
    .queue_notify = rng_queue_notify,
};

int virtio_rng_parse(const char *arg, struct virtio_rng_config *cfg, char *err, size_t errlen)
{
	memset(cfg, 0, sizeof(*cfg));
	if (arg && *arg) {
		snprintf(err, errlen, "--rng: takes no value (got '%s')", arg);
		return -EINVAL;
	}
	return 0;
}

int virtio_rng_create(const struct virtio_rng_config *cfg, struct virtio_device **out, char *err,
		      size_t errlen)
{
	struct virtio_rng *r = calloc(1, sizeof(*r));

	if (!r) {
		snprintf(err, errlen, "--rng: out of memory");
		return -ENOMEM;
	}
	r->max_request = cfg && cfg->max_request ? cfg->max_request : VIRTIO_RNG_MAX_REQUEST;
	r->rl = (struct ratelimit)RATELIMIT_INIT(5000, 10);
	r->dev.ops = &rng_ops;
	r->dev.priv = r;
	r->dev.num_queues = 1;
	r->dev.queue_max[0] = VIRTIO_RNG_QUEUE_SIZE;
	r->dev.config_size = 0;
	*out = &r->dev;
	return 0;
}

void virtio_rng_destroy(struct virtio_device *d)
{
	if (d)
		free(d->priv);
}
