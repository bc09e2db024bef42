#include "vmm/virtio/net.h"

#include <endian.h>
#include <errno.h>
#include <linux/if_tun.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/log.h"
#include "vmm/backend/tap.h"
#include "vmm/event.h"

#define ETH_HLEN 14
/* Frames moved per TAP wakeup before other fds get a turn (epoll is level-triggered). */
#define NET_RX_BUDGET 256

struct virtio_net {
	struct virtio_device dev;
	pthread_mutex_t lock; /* guards everything below; taken after the transport's */
	int fd;
	bool is_tap;
	char name[IFNAMSIZ];
	uint8_t mac[6];
	struct event_handler tap_h;
	bool active;
	bool polled;	 /* fd registered with the event loop */
	bool rx_starved; /* no receive buffers: wait for a kick */
	bool tap_dead;	 /* read failed hard: stop polling until a reset */
	uint32_t hdr_len;
	bool mrg_rxbuf;
	/* One frame read from the TAP and not yet in guest buffers (header first). */
	bool rx_pending;
	uint32_t rx_len;
	uint8_t rx_buf[TAP_VNET_HDR_LEN + VIRTIO_NET_MAX_FRAME];
	/* Chains of the frame being received: the first one, and the others. */
	struct virtq_chain c0, c;
	uint16_t rx_heads[VIRTIO_NET_QUEUE_SIZE];
	uint32_t rx_lens[VIRTIO_NET_QUEUE_SIZE];
	struct iovec tx_iov[VIRTQ_CHAIN_MAX + 1];
	struct virtio_net_stats stats;
	struct ratelimit rl;
	const char *broken; /* set_broken reason, reported once the lock is dropped */
};

static struct virtio_net *to_net(struct virtio_device *d)
{
	return d->priv;
}

/* Copies len bytes at offset off of an iovec array to/from buf; returns the count done. */
static size_t iov_copy(const struct iovec *iov, unsigned int n, size_t off, void *buf, size_t len,
		       bool to_iov)
{
	size_t done = 0;

	for (unsigned int i = 0; i < n && done < len; i++) {
		size_t seg = iov[i].iov_len, k;

		if (off >= seg) {
			off -= seg;
			continue;
		}
		k = seg - off < len - done ? seg - off : len - done;
		if (to_iov)
			memcpy((uint8_t *)iov[i].iov_base + off, (uint8_t *)buf + done, k);
		else
			memcpy((uint8_t *)buf + done, (uint8_t *)iov[i].iov_base + off, k);
		done += k;
		off = 0;
	}
	return done;
}

/* ---- header checks (guest-controlled on TX, host kernel-controlled on RX) ---- */

int virtio_net_tx_check(const struct virtio_net_hdr_v1 *h, uint32_t frame_len, uint64_t features)
{
	uint8_t gso = h->gso_type & ~VIRTIO_NET_HDR_GSO_ECN;
	uint32_t cs = le16toh(h->csum_start), co = le16toh(h->csum_offset);

	if (frame_len < ETH_HLEN || frame_len > VIRTIO_NET_MAX_FRAME)
		return -EINVAL;
	/* DATA_VALID and RSC_INFO are receive-only. */
	if (h->flags & ~VIRTIO_NET_HDR_F_NEEDS_CSUM)
		return -EINVAL;
	if (h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
		if (!((features >> VIRTIO_NET_F_CSUM) & 1) || cs + co + 2 > frame_len)
			return -EINVAL;
	}
	if ((h->gso_type & VIRTIO_NET_HDR_GSO_ECN) && !((features >> VIRTIO_NET_F_HOST_ECN) & 1))
		return -EINVAL;
	switch (gso) {
	case VIRTIO_NET_HDR_GSO_NONE:
		return (h->gso_type & VIRTIO_NET_HDR_GSO_ECN) ? -EINVAL : 0;
	case VIRTIO_NET_HDR_GSO_TCPV4:
		if (!((features >> VIRTIO_NET_F_HOST_TSO4) & 1))
			return -EINVAL;
		break;
	case VIRTIO_NET_HDR_GSO_TCPV6:
		if (!((features >> VIRTIO_NET_F_HOST_TSO6) & 1))
			return -EINVAL;
		break;
	case VIRTIO_NET_HDR_GSO_UDP:
		if (!((features >> VIRTIO_NET_F_HOST_UFO) & 1))
			return -EINVAL;
		break;
	default:
		return -EINVAL;
	}
	/* A GSO packet is segmented by the host, which needs the checksum offsets. */
	if (!h->gso_size || !(h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM))
		return -EINVAL;
	return 0;
}

int virtio_net_rx_fixup(struct virtio_net_hdr_v1 *h, uint32_t frame_len, uint64_t features)
{
	uint8_t gso = h->gso_type & ~VIRTIO_NET_HDR_GSO_ECN;
	uint32_t cs = le16toh(h->csum_start), co = le16toh(h->csum_offset);
	bool ok;

	if (!((features >> VIRTIO_NET_F_GUEST_CSUM) & 1)) {
		/* 5.1.6.4.1: flags zero, fully checksummed packets only. */
		if (h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM)
			return -EINVAL;
		h->flags = 0;
	} else {
		h->flags &= VIRTIO_NET_HDR_F_NEEDS_CSUM | VIRTIO_NET_HDR_F_DATA_VALID;
		if ((h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) && cs + co + 2 > frame_len)
			return -EINVAL;
	}
	switch (gso) {
	case VIRTIO_NET_HDR_GSO_NONE:
		ok = true;
		break;
	case VIRTIO_NET_HDR_GSO_TCPV4:
		ok = (features >> VIRTIO_NET_F_GUEST_TSO4) & 1;
		break;
	case VIRTIO_NET_HDR_GSO_TCPV6:
		ok = (features >> VIRTIO_NET_F_GUEST_TSO6) & 1;
		break;
	case VIRTIO_NET_HDR_GSO_UDP:
		ok = (features >> VIRTIO_NET_F_GUEST_UFO) & 1;
		break;
	default:
		ok = false;
	}
	if (gso != VIRTIO_NET_HDR_GSO_NONE && (h->gso_type & VIRTIO_NET_HDR_GSO_ECN))
		ok = ok && ((features >> VIRTIO_NET_F_GUEST_ECN) & 1);
	if (!ok)
		return -EINVAL;
	if (gso == VIRTIO_NET_HDR_GSO_NONE)
		h->gso_type = VIRTIO_NET_HDR_GSO_NONE;
	h->num_buffers = 0;
	return 0;
}

/* ---- event loop registration ---- */

static void net_poll(struct virtio_net *n, bool on)
{
	struct event_loop *el = n->dev.events;
	int err;

	if (on == n->polled)
		return;
	if (!el) {
		n->polled = on;
		return;
	}
	err = on ? event_loop_add(el, n->fd, EPOLLIN, &n->tap_h) : event_loop_del(el, n->fd);
	if (err) {
		log_ratelimited(&n->rl, LOG_WARN, "virtio-net %s: event loop: %s", n->name,
				strerror(-err));
		return;
	}
	n->polled = on;
}

/* ---- transmit ---- */

static void net_tx_drop(struct virtio_net *n, const char *why)
{
	n->stats.tx_dropped++;
	log_ratelimited(&n->rl, LOG_WARN, "virtio-net %s: tx packet dropped: %s", n->name, why);
}

/* Why a transmit chain cannot be sent, or NULL; h gets the header. */
static const char *net_tx_check_chain(struct virtio_net *n, const struct virtq_chain *c,
				      struct virtio_net_hdr_v1 *h)
{
	uint32_t hl = n->hdr_len;

	if (c->nin)
		return "chain has device-writable buffers";
	if (c->out_len < hl)
		return "chain shorter than the virtio-net header";
	if (c->out_len - hl > VIRTIO_NET_MAX_FRAME)
		return "frame longer than 65550 bytes";
	iov_copy(c->out, c->nout, 0, h, hl, false);
	if (virtio_net_tx_check(h, c->out_len - hl, n->dev.driver_features))
		return "bad virtio-net header";
	return NULL;
}

/* Sends one chain's frame; a bad packet is dropped, the chain is returned either way. */
static void net_tx_chain(struct virtio_net *n, const struct virtq_chain *c)
{
	struct virtio_net_hdr_v1 h = {0};
	const char *why = net_tx_check_chain(n, c, &h);
	unsigned int niov = 1;
	size_t skip = n->hdr_len;

	if (why) {
		net_tx_drop(n, why);
		return;
	}
	/* The checked copy of the header goes out, not guest memory it could change. */
	n->tx_iov[0] = (struct iovec){.iov_base = &h, .iov_len = n->hdr_len};
	for (unsigned int i = 0; i < c->nout; i++) {
		if (skip >= c->out[i].iov_len) {
			skip -= c->out[i].iov_len;
			continue;
		}
		n->tx_iov[niov].iov_base = (uint8_t *)c->out[i].iov_base + skip;
		n->tx_iov[niov].iov_len = c->out[i].iov_len - skip;
		niov++;
		skip = 0;
	}
	if (writev(n->fd, n->tx_iov, (int)niov) < 0) {
		/* EAGAIN: the TAP's queue is full; like a NIC, drop rather than stall. */
		n->stats.tx_dropped++;
		log_ratelimited(&n->rl, LOG_WARN, "virtio-net %s: write to TAP: %m", n->name);
		return;
	}
	n->stats.tx_frames++;
}

/* 1 when chains were returned, 0 when none, -EINVAL when the ring is broken. */
static int net_tx_process(struct virtio_net *n)
{
	struct virtq *q = &n->dev.queues[VIRTIO_NET_Q_TX];
	int pushed = 0, r;

	while ((r = virtq_pop(q, &n->c)) > 0) {
		net_tx_chain(n, &n->c);
		if (virtq_push(q, n->c.head, 0))
			return -EINVAL;
		pushed = 1;
	}
	return r < 0 ? r : pushed;
}

/* ---- receive ---- */

static void net_rx_drop(struct virtio_net *n, const char *why)
{
	n->stats.rx_dropped++;
	log_ratelimited(&n->rl, LOG_WARN, "virtio-net %s: rx frame dropped: %s", n->name, why);
}

static void net_unpop(struct virtq *q, unsigned int k)
{
	while (k--)
		virtq_unpop(q);
}

/*
 * Publishes the chains of one frame with one used->idx update: with
 * mergeable buffers the driver must never see part of a frame (Linux
 * drops a frame whose buffers are "missing"). The queue API publishes per
 * push, so the used ring is written here the way queue.c lays it out.
 */
static int net_push_frame(struct virtq *q, const uint16_t *heads, const uint32_t *lens,
			  unsigned int nb)
{
	uint8_t *used = gmem_ptr(q->mem, q->used_gpa, VIRTQ_USED_BYTES(q->size));
	uint16_t idx = q->used_idx;

	if (nb == 1)
		return virtq_push(q, heads[0], lens[0]);
	if (!used || (q->used_gpa & 3) || !q->size || (q->size & (q->size - 1)))
		return -EINVAL;
	for (unsigned int i = 0; i < nb; i++, idx++) {
		uint8_t *e = used + 4 + 8 * (uint32_t)(idx & (q->size - 1));

		if (heads[i] >= q->size)
			return -EINVAL;
		__atomic_store_n((uint32_t *)e, htole32(heads[i]), __ATOMIC_RELAXED);
		__atomic_store_n((uint32_t *)(e + 4), htole32(lens[i]), __ATOMIC_RELAXED);
	}
	q->used_idx = idx;
	__atomic_store_n((uint16_t *)(used + 2), htole16(idx), __ATOMIC_RELEASE);
	return 0;
}

/* Frame from the TAP in n->rx_buf: 1 read (or dropped), 0 nothing to read. */
static int net_rx_read(struct virtio_net *n)
{
	struct virtio_net_hdr_v1 h = {0};
	ssize_t r;

	r = read(n->fd, n->rx_buf, n->hdr_len + VIRTIO_NET_MAX_FRAME);
	if (r < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return 0;
		/* E.g. the TAP was deleted: stop polling a dead fd until the next reset. */
		log_ratelimited(&n->rl, LOG_WARN, "virtio-net %s: read from TAP: %m", n->name);
		n->tap_dead = true;
		return 0;
	}
	if ((size_t)r < n->hdr_len + ETH_HLEN) {
		net_rx_drop(n, "TAP frame shorter than its headers");
		return 1;
	}
	memcpy(&h, n->rx_buf, n->hdr_len);
	if (virtio_net_rx_fixup(&h, (uint32_t)r - n->hdr_len, n->dev.driver_features)) {
		net_rx_drop(n, "TAP frame with offloads the guest did not accept");
		return 1;
	}
	memcpy(n->rx_buf, &h, n->hdr_len);
	n->rx_len = (uint32_t)r;
	n->rx_pending = true;
	return 1;
}

/* Writes num_buffers into the header at the start of chain c. */
static void net_set_num_buffers(struct virtio_net *n, const struct virtq_chain *c, uint16_t nb)
{
	uint16_t v = htole16(nb);

	if (n->hdr_len >= 12)
		iov_copy(c->in, c->nin, offsetof(struct virtio_net_hdr_v1, num_buffers), &v, 2,
			 true);
}

/*
 * Moves the pending frame into guest buffers: 1 when it was delivered or
 * dropped, 0 when the guest has not posted enough buffers yet (the frame
 * stays pending), -EINVAL when the ring is broken.
 */
static int net_rx_deliver(struct virtio_net *n)
{
	struct virtq *q = &n->dev.queues[VIRTIO_NET_Q_RX];
	unsigned int nb = 0,
		     max = q->size < VIRTIO_NET_QUEUE_SIZE ? q->size : VIRTIO_NET_QUEUE_SIZE;
	uint32_t off = 0, total = n->rx_len;

	while (off < total) {
		struct virtq_chain *c = nb ? &n->c : &n->c0;
		uint32_t len;
		int r = virtq_pop(q, c);

		if (r < 0)
			return r;
		if (r == 0 && nb < q->size) {
			/* Not enough buffers yet: give them back and wait for a kick. */
			net_unpop(q, nb);
			n->rx_starved = true;
			return 0;
		}
		if (r == 0 || nb == max) {
			/* The whole ring cannot hold it: it never will. */
			net_unpop(q, nb + (unsigned int)r);
			n->rx_pending = false;
			net_rx_drop(n, "frame larger than all receive buffers");
			return 1;
		}
		if (c->in_len < n->hdr_len) {
			/* A driver bug (5.1.6.3.1): return it empty, and the frame's others too. */
			log_ratelimited(&n->rl, LOG_WARN,
					"virtio-net %s: receive buffer smaller than the header",
					n->name);
			n->rx_heads[nb] = c->head;
			for (unsigned int i = 0; i <= nb; i++)
				if (virtq_push(q, n->rx_heads[i], 0))
					return -EINVAL;
			if (!nb)
				continue; /* nothing of the frame was in it yet */
			n->rx_pending = false;
			net_rx_drop(n, "a receive buffer in the frame was smaller than the header");
			return 1;
		}
		if (!n->mrg_rxbuf && c->in_len < total) {
			/* Kept for a smaller frame: only this one cannot be received. */
			virtq_unpop(q);
			n->rx_pending = false;
			net_rx_drop(n, "frame larger than the receive buffer");
			return 1;
		}
		len = c->in_len < total - off ? c->in_len : total - off;
		iov_copy(c->in, c->nin, 0, n->rx_buf + off, len, true);
		n->rx_heads[nb] = c->head;
		n->rx_lens[nb] = len;
		nb++;
		off += len;
	}
	net_set_num_buffers(n, &n->c0, (uint16_t)nb);
	if (net_push_frame(q, n->rx_heads, n->rx_lens, nb))
		return -EINVAL;
	n->rx_pending = false;
	n->stats.rx_frames++;
	return 1;
}

/*
 * A guest buffer big enough for any frame: read the TAP straight into it.
 * 1 done (or dropped), 0 TAP empty, -EINVAL broken ring.
 */
static int net_rx_direct(struct virtio_net *n)
{
	struct virtq *q = &n->dev.queues[VIRTIO_NET_Q_RX];
	struct virtq_chain *c = &n->c0;
	struct virtio_net_hdr_v1 h = {0};
	ssize_t r;

	r = readv(n->fd, c->in, c->nin);
	if (r < 0) {
		virtq_unpop(q);
		if (errno == EAGAIN || errno == EINTR)
			return 0;
		log_ratelimited(&n->rl, LOG_WARN, "virtio-net %s: read from TAP: %m", n->name);
		n->tap_dead = true;
		return 0;
	}
	iov_copy(c->in, c->nin, 0, &h, n->hdr_len, false);
	if ((size_t)r < n->hdr_len + ETH_HLEN ||
	    virtio_net_rx_fixup(&h, (uint32_t)r - n->hdr_len, n->dev.driver_features)) {
		virtq_unpop(q);
		net_rx_drop(n, "bad TAP frame");
		return 1;
	}
	h.num_buffers = htole16(1);
	iov_copy(c->in, c->nin, 0, &h, n->hdr_len, true);
	if (virtq_push(q, c->head, (uint32_t)r))
		return -EINVAL;
	n->stats.rx_frames++;
	return 1;
}

/* One frame: 1 progress, 0 stop (TAP empty or no buffers), -EINVAL broken ring. */
static int net_rx_one(struct virtio_net *n)
{
	struct virtq *q = &n->dev.queues[VIRTIO_NET_Q_RX];
	int r;

	if (!n->rx_pending) {
		r = virtq_pop(q, &n->c0);
		if (r <= 0) {
			n->rx_starved = r == 0;
			return r;
		}
		if (n->c0.in_len >= n->hdr_len + VIRTIO_NET_MAX_FRAME)
			return net_rx_direct(n);
		virtq_unpop(q);
		r = net_rx_read(n);
		if (r <= 0 || !n->rx_pending)
			return r;
	}
	return net_rx_deliver(n);
}

/* 1 when chains were returned, 0 when none, -EINVAL when the ring is broken. */
static int net_rx_process(struct virtio_net *n)
{
	uint16_t used = n->dev.queues[VIRTIO_NET_Q_RX].used_idx;
	int r = 1;

	for (int i = 0; i < NET_RX_BUDGET && !n->tap_dead; i++) {
		r = net_rx_one(n);
		if (r <= 0)
			break;
	}
	/* Without buffers, stop listening to the TAP until the guest kicks rx. */
	net_poll(n, !n->rx_starved && !n->tap_dead && r >= 0);
	if (r < 0)
		return r;
	return used != n->dev.queues[VIRTIO_NET_Q_RX].used_idx;
}

/* ---- virtio_device_ops ---- */

static void net_report(struct virtio_device *d, bool rx, bool tx, const char *broken)
{
	if (broken) {
		d->set_broken(d, broken);
		return;
	}
	if (rx)
		virtio_queue_done(d, VIRTIO_NET_Q_RX);
	if (tx)
		virtio_queue_done(d, VIRTIO_NET_Q_TX);
}

static const char *net_broken_why(struct virtio_net *n, uint16_t qi)
{
	const char *e = n->dev.queues[qi].error;

	n->active = false;
	net_poll(n, false);
	return e ? e : "virtqueue error";
}

void virtio_net_tap_ready(struct virtio_device *d)
{
	struct virtio_net *n = to_net(d);
	const char *broken = NULL;
	int r = 0;

	pthread_mutex_lock(&n->lock);
	if (n->active && !n->rx_starved) {
		r = net_rx_process(n);
		if (r < 0)
			broken = net_broken_why(n, VIRTIO_NET_Q_RX);
	}
	pthread_mutex_unlock(&n->lock);
	net_report(d, r > 0, false, broken);
}

static void net_tap_event(void *ctx, uint32_t events)
{
	(void)events;
	virtio_net_tap_ready(ctx);
}

static void net_queue_notify(struct virtio_device *d, uint16_t qi)
{
	struct virtio_net *n = to_net(d);
	const char *broken = NULL;
	int r = 0;

	pthread_mutex_lock(&n->lock);
	if (!n->active)
		goto out;
	if (qi == VIRTIO_NET_Q_RX) {
		n->rx_starved = false;
		r = net_rx_process(n);
	} else if (qi == VIRTIO_NET_Q_TX) {
		r = net_tx_process(n);
	}
	if (r < 0)
		broken = net_broken_why(n, qi);
out:
	pthread_mutex_unlock(&n->lock);
	net_report(d, qi == VIRTIO_NET_Q_RX && r > 0, qi == VIRTIO_NET_Q_TX && r > 0, broken);
}

/* TUN_F_* for what the guest accepted on receive; TSO without CSUM is meaningless. */
static unsigned int net_tun_offloads(uint64_t f)
{
	unsigned int t = 0;

	if (!((f >> VIRTIO_NET_F_GUEST_CSUM) & 1))
		return 0;
	t |= TUN_F_CSUM;
	if ((f >> VIRTIO_NET_F_GUEST_TSO4) & 1)
		t |= TUN_F_TSO4;
	if ((f >> VIRTIO_NET_F_GUEST_TSO6) & 1)
		t |= TUN_F_TSO6;
	if ((f >> VIRTIO_NET_F_GUEST_ECN) & 1)
		t |= TUN_F_TSO_ECN;
	if ((f >> VIRTIO_NET_F_GUEST_UFO) & 1)
		t |= TUN_F_UFO;
	return t;
}

static int net_tap_setup(struct virtio_net *n)
{
	unsigned int off = net_tun_offloads(n->dev.driver_features);
	int err;

	err = tap_set_vnet_hdr_len(n->fd, (int)n->hdr_len);
	if (err) {
		log_err("virtio-net %s: TUNSETVNETHDRSZ: %s", n->name, strerror(-err));
		return err;
	}
	err = tap_set_offload(n->fd, off);
	/* Kernels without UFO on TAPs refuse the flag: the guest just never gets UFO. */
	if (err == -EINVAL && (off & TUN_F_UFO))
		err = tap_set_offload(n->fd, off & ~TUN_F_UFO);
	if (err) {
		/* Fewer offloads only means the host segments and checksums for the guest. */
		log_warn("virtio-net %s: TUNSETOFFLOAD %#x: %s", n->name, off, strerror(-err));
		tap_set_offload(n->fd, 0);
	}
	return 0;
}

static int net_activate(struct virtio_device *d)
{
	struct virtio_net *n = to_net(d);
	int err = 0;

	pthread_mutex_lock(&n->lock);
	n->mrg_rxbuf = virtio_has_feature(d, VIRTIO_NET_F_MRG_RXBUF);
	n->hdr_len = virtio_has_feature(d, VIRTIO_F_VERSION_1) || n->mrg_rxbuf
			 ? sizeof(struct virtio_net_hdr_v1)
			 : offsetof(struct virtio_net_hdr_v1, num_buffers);
	if (n->is_tap) {
		err = net_tap_setup(n);
		if (err)
			goto out;
	}
	n->rx_pending = false;
	n->rx_starved = false;
	n->tap_dead = false;
	n->active = true;
	net_poll(n, true);
out:
	pthread_mutex_unlock(&n->lock);
	return err;
}

static void net_reset(struct virtio_device *d)
{
	struct virtio_net *n = to_net(d);

	pthread_mutex_lock(&n->lock);
	n->active = false;
	n->rx_pending = false;
	net_poll(n, false);
	pthread_mutex_unlock(&n->lock);
}

static void net_config_read(struct virtio_device *d, uint32_t off, uint8_t *data, uint32_t len)
{
	struct virtio_net *n = to_net(d);
	struct virtio_net_config cfg = {
	    .status = htole16(VIRTIO_NET_S_LINK_UP),
	    .max_virtqueue_pairs = htole16(1),
	};

	memcpy(cfg.mac, n->mac, sizeof(cfg.mac));
	memset(data, 0, len);
	if (off < sizeof(cfg))
		memcpy(data, (uint8_t *)&cfg + off,
		       len < sizeof(cfg) - off ? len : sizeof(cfg) - off);
}

static const struct virtio_device_ops net_ops = {
    .name = "virtio-net",
    .type = VIRTIO_ID_NET,
    .config_read = net_config_read,
    .activate = net_activate,
    .reset = net_reset,
    .queue_notify = net_queue_notify,
};

/* ---- user configuration ---- */

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

int virtio_net_parse_mac(const char *s, uint8_t mac[6], const char **why)
{
	uint8_t m[6];

	if (strlen(s) != 17) {
		*why = "not a MAC address (want six hex pairs like 02:00:00:00:00:01)";
		return -EINVAL;
	}
	for (int i = 0; i < 6; i++) {
		int hi = hexval(s[3 * i]), lo = hexval(s[3 * i + 1]);

		if (hi < 0 || lo < 0 || (i < 5 && s[3 * i + 2] != ':')) {
			*why = "not a MAC address (want six hex pairs like 02:00:00:00:00:01)";
			return -EINVAL;
		}
		m[i] = (uint8_t)(hi << 4 | lo);
	}
	if (m[0] & 1) {
		*why = "a multicast address (the first octet's low bit is set)";
		return -EINVAL;
	}
	if (!(m[0] | m[1] | m[2] | m[3] | m[4] | m[5])) {
		*why = "the all-zero address";
		return -EINVAL;
	}
	memcpy(mac, m, 6);
	return 0;
}

static int net_parse_opt(const char *opt, struct virtio_net_config_user *cfg, bool *has_tap,
			 char *err, size_t errlen)
{
	const char *why;

	if (!strncmp(opt, "tap=", 4)) {
		if (*has_tap) {
			snprintf(err, errlen, "--net: tap given twice");
			return -EINVAL;
		}
		if (tap_name_check(opt + 4, &why)) {
			snprintf(err, errlen, "--net: %s: %s", opt, why);
			return -EINVAL;
		}
		snprintf(cfg->tap, sizeof(cfg->tap), "%s", opt + 4);
		*has_tap = true;
		return 0;
	}
	if (!strncmp(opt, "mac=", 4)) {
		if (cfg->has_mac) {
			snprintf(err, errlen, "--net: mac given twice");
			return -EINVAL;
		}
		if (virtio_net_parse_mac(opt + 4, cfg->mac, &why)) {
			snprintf(err, errlen, "--net: %s: %s", opt, why);
			return -EINVAL;
		}
		cfg->has_mac = true;
		return 0;
	}
	snprintf(err, errlen, "--net: unknown option '%s' (want tap=NAME[,mac=MAC])", opt);
	return -EINVAL;
}

int virtio_net_parse(const char *arg, struct virtio_net_config_user *cfg, char *err, size_t errlen)
{
	char *copy, *save = NULL, *opt;
	bool has_tap = false;
	int ret = 0;

	memset(cfg, 0, sizeof(*cfg));
	copy = strdup(arg ? arg : "");
	if (!copy) {
		snprintf(err, errlen, "--net: out of memory");
		return -ENOMEM;
	}
	for (opt = strtok_r(copy, ",", &save); opt && !ret; opt = strtok_r(NULL, ",", &save))
		ret = net_parse_opt(opt, cfg, &has_tap, err, errlen);
	if (!ret && !has_tap) {
		snprintf(err, errlen, "--net: tap=NAME is required");
		ret = -EINVAL;
	}
	free(copy);
	return ret;
}

int virtio_net_create_fd(int fd, bool is_tap, const struct virtio_net_config_user *cfg,
			 struct virtio_device **out, char *err, size_t errlen)
{
	struct virtio_net *n;
	int ret;

	n = calloc(1, sizeof(*n));
	if (!n) {
		snprintf(err, errlen, "--net tap=%s: out of memory", cfg->tap);
		return -ENOMEM;
	}
	ret = pthread_mutex_init(&n->lock, NULL);
	if (ret) {
		snprintf(err, errlen, "--net tap=%s: mutex: %s", cfg->tap, strerror(ret));
		free(n);
		return -ret;
	}
	n->fd = fd;
	n->is_tap = is_tap;
	snprintf(n->name, sizeof(n->name), "%s", cfg->tap);
	if (cfg->has_mac) {
		memcpy(n->mac, cfg->mac, 6);
	} else {
		/* Random, locally administered, unicast: 02:xx:xx:xx:xx:xx. */
		if (getrandom(n->mac + 1, 5, 0) != 5)
			for (int i = 1; i < 6; i++)
				n->mac[i] = (uint8_t)rand();
		n->mac[0] = 0x02;
	}
	n->hdr_len = sizeof(struct virtio_net_hdr_v1);
	n->rl = (struct ratelimit)RATELIMIT_INIT(5000, 5);
	n->tap_h = (struct event_handler){.fn = net_tap_event, .ctx = &n->dev};

	n->dev.ops = &net_ops;
	n->dev.priv = n;
	n->dev.device_features = 1ull << VIRTIO_NET_F_CSUM | 1ull << VIRTIO_NET_F_GUEST_CSUM |
				 1ull << VIRTIO_NET_F_MAC | 1ull << VIRTIO_NET_F_GUEST_TSO4 |
				 1ull << VIRTIO_NET_F_GUEST_TSO6 | 1ull << VIRTIO_NET_F_GUEST_ECN |
				 1ull << VIRTIO_NET_F_GUEST_UFO | 1ull << VIRTIO_NET_F_HOST_TSO4 |
				 1ull << VIRTIO_NET_F_HOST_TSO6 | 1ull << VIRTIO_NET_F_HOST_ECN |
				 1ull << VIRTIO_NET_F_HOST_UFO | 1ull << VIRTIO_NET_F_MRG_RXBUF |
				 1ull << VIRTIO_NET_F_STATUS;
	n->dev.num_queues = 2;
	n->dev.queue_max[VIRTIO_NET_Q_RX] = VIRTIO_NET_QUEUE_SIZE;
	n->dev.queue_max[VIRTIO_NET_Q_TX] = VIRTIO_NET_QUEUE_SIZE;
	n->dev.config_size = sizeof(struct virtio_net_config);
	*out = &n->dev;
	return 0;
}

int virtio_net_create(const struct virtio_net_config_user *cfg, struct virtio_device **out,
		      char *err, size_t errlen)
{
	char why[160];
	int fd, ret;

	fd = tap_open(cfg->tap, why, sizeof(why));
	if (fd < 0) {
		snprintf(err, errlen, "--net tap=%s: %s", cfg->tap, why);
		return fd;
	}
	ret = virtio_net_create_fd(fd, true, cfg, out, err, errlen);
	if (ret) {
		close(fd);
		return ret;
	}
	ret = tap_link_up(cfg->tap);
	if (ret)
		log_warn("--net tap=%s: the link is down and could not be brought up (%s): "
			 "run 'ip link set %s up'",
			 cfg->tap, strerror(-ret), cfg->tap);
	return 0;
}

void virtio_net_destroy(struct virtio_device *d)
{
	struct virtio_net *n;

	if (!d)
		return;
	n = to_net(d);
	/* Waits out a TAP handler running right now, if the loop still runs. */
	if (n->polled && d->events)
		event_loop_del_sync(d->events, n->fd);
	close(n->fd);
	pthread_mutex_destroy(&n->lock);
	free(n);
}

void virtio_net_get_stats(struct virtio_device *d, struct virtio_net_stats *st)
{
	struct virtio_net *n = to_net(d);

	pthread_mutex_lock(&n->lock);
	*st = n->stats;
	pthread_mutex_unlock(&n->lock);
}
