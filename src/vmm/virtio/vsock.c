#include "vmm/virtio/vsock.h"

#include <endian.h>
#include <errno.h>
#include <libgen.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/log.h"
#include "core/parse.h"
#include "vmm/event.h"

#define HDR_LEN ((uint32_t)sizeof(struct virtio_vsock_hdr))
#define HASH_SIZE 256
/* "CONNECT 4294967295\n" and some slack. */
#define CMD_MAX 32
/* Host clients accepted per listener wakeup. */
#define ACCEPT_BUDGET 16

/* Packets owed to the guest, by priority. */
#define PEND_RST (1u << 0)
#define PEND_REQUEST (1u << 1)
#define PEND_RESPONSE (1u << 2)
#define PEND_SHUTDOWN (1u << 3)
#define PEND_RW (1u << 4) /* the host socket is readable */
#define PEND_CREDIT (1u << 5)

enum conn_state {
	CONN_FREE,
	CONN_HOST_CMD, /* host client accepted, reading its "CONNECT <port>\n" */
	CONN_HOST_REQ, /* REQUEST owed to / sent to the guest, no answer yet */
	CONN_ESTABLISHED,
	CONN_CLOSING, /* RST owed to the guest, then free */
};

struct virtio_vsock;

struct vsock_conn {
	struct virtio_vsock *vs;
	struct event_handler h;
	enum conn_state state;
	int fd;
	uint32_t events; /* registered with the event loop (0: not registered) */
	uint32_t local_port, peer_port;
	struct vsock_conn *hnext;	    /* hash chain */
	struct vsock_conn *rxprev, *rxnext; /* list of conns with packets owed */
	bool in_rxq;
	uint32_t pend; /* PEND_* */

	/* Credit (5.10.6.3): the guest's buffer, and what we sent into it. */
	uint32_t peer_buf_alloc, peer_fwd_cnt;
	uint32_t tx_cnt;       /* payload bytes sent to the guest */
	uint32_t fwd_cnt;      /* guest bytes written to the host socket */
	uint32_t fwd_cnt_sent; /* fwd_cnt last told to the guest */

	/* Guest-to-host bytes the host socket did not take yet (ring). */
	uint8_t *buf;
	uint32_t buf_head, buf_len;
	uint32_t buf_own; /* leading bytes that are ours ("OK <port>\n"), not the guest's */

	uint32_t peer_shut;    /* SHUTDOWN flags from the guest */
	uint32_t shut_to_send; /* SHUTDOWN flags owed to the guest */
	bool host_eof;	       /* the host closed its sending side */
	bool host_shut_wr;     /* we did shutdown(SHUT_WR) for the guest */

	char cmd[CMD_MAX];
	uint32_t cmd_len;
};

struct virtio_vsock {
	struct virtio_device dev;
	pthread_mutex_t lock; /* guards everything below; taken after the transport's */
	uint64_t guest_cid;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int listen_fd;
	dev_t sock_dev;
	ino_t sock_ino;
	struct event_handler listen_h;
	bool listening;
	bool active;
	bool rx_starved;
	struct vsock_conn conns[VIRTIO_VSOCK_MAX_CONNS];
	struct vsock_conn *hash[HASH_SIZE];
	struct vsock_conn *rxq_head, *rxq_tail;
	struct {
		uint32_t src_port, dst_port; /* ours, the guest's */
	} rst[VIRTIO_VSOCK_RST_QUEUE];
	unsigned int rst_head, rst_len;
	uint32_t next_host_port;
	struct virtq_chain c;
	struct iovec iov[VIRTQ_CHAIN_MAX];
	struct virtio_vsock_stats stats;
	struct ratelimit rl;
};

static struct virtio_vsock *to_vsock(struct virtio_device *d)
{
	return d->priv;
}

/* ---- iovec helpers ---- */

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

/* dst = the bytes [off, off+len) of src; returns the count of iovecs. */
static unsigned int iov_slice(struct iovec *dst, const struct iovec *src, unsigned int n,
			      size_t off, size_t len)
{
	unsigned int k = 0;

	for (unsigned int i = 0; i < n && len; i++) {
		size_t seg = src[i].iov_len;

		if (off >= seg) {
			off -= seg;
			continue;
		}
		dst[k].iov_base = (uint8_t *)src[i].iov_base + off;
		dst[k].iov_len = seg - off < len ? seg - off : len;
		len -= dst[k].iov_len;
		k++;
		off = 0;
	}
	return k;
}

/* ---- header check ---- */

enum vsock_verdict virtio_vsock_check(const struct virtio_vsock_hdr *h, uint32_t payload,
				      uint64_t guest_cid)
{
	uint16_t op = le16toh(h->op);
	uint32_t len = le32toh(h->len);

	/* Spoofed source or not addressed to the host: nobody to answer. */
	if (le64toh(h->src_cid) != guest_cid || le64toh(h->dst_cid) != VSOCK_HOST_CID)
		return VSOCK_DROP;
	if (len > payload || len > VIRTIO_VSOCK_MAX_PKT)
		return VSOCK_DROP;
	if (op == VIRTIO_VSOCK_OP_RST)
		return le16toh(h->type) == VIRTIO_VSOCK_TYPE_STREAM ? VSOCK_ACCEPT : VSOCK_DROP;
	if (le16toh(h->type) != VIRTIO_VSOCK_TYPE_STREAM)
		return VSOCK_RESET;
	if (op < VIRTIO_VSOCK_OP_REQUEST || op > VIRTIO_VSOCK_OP_CREDIT_REQUEST)
		return VSOCK_RESET;
	return VSOCK_ACCEPT;
}

/* ---- connection table ---- */

static unsigned int hash_of(uint32_t local, uint32_t peer)
{
	return (local * 2654435761u ^ peer) % HASH_SIZE;
}

static struct vsock_conn *conn_find(struct virtio_vsock *vs, uint32_t local, uint32_t peer)
{
	for (struct vsock_conn *c = vs->hash[hash_of(local, peer)]; c; c = c->hnext)
		if (c->local_port == local && c->peer_port == peer)
			return c;
	return NULL;
}

static void conn_hash_add(struct virtio_vsock *vs, struct vsock_conn *c)
{
	unsigned int b = hash_of(c->local_port, c->peer_port);

	c->hnext = vs->hash[b];
	vs->hash[b] = c;
}

static void conn_hash_del(struct virtio_vsock *vs, struct vsock_conn *c)
{
	struct vsock_conn **pp = &vs->hash[hash_of(c->local_port, c->peer_port)];

	for (; *pp; pp = &(*pp)->hnext) {
		if (*pp == c) {
			*pp = c->hnext;
			break;
		}
	}
	c->hnext = NULL;
}

static bool conn_hashed(const struct vsock_conn *c)
{
	return c->state == CONN_HOST_REQ || c->state == CONN_ESTABLISHED ||
	       c->state == CONN_CLOSING;
}

static void rxq_add(struct virtio_vsock *vs, struct vsock_conn *c)
{
	if (c->in_rxq)
		return;
	c->rxprev = vs->rxq_tail;
	c->rxnext = NULL;
	if (vs->rxq_tail)
		vs->rxq_tail->rxnext = c;
	else
		vs->rxq_head = c;
	vs->rxq_tail = c;
	c->in_rxq = true;
}

static void rxq_del(struct virtio_vsock *vs, struct vsock_conn *c)
{
	if (!c->in_rxq)
		return;
	if (c->rxprev)
		c->rxprev->rxnext = c->rxnext;
	else
		vs->rxq_head = c->rxnext;
	if (c->rxnext)
		c->rxnext->rxprev = c->rxprev;
	else
		vs->rxq_tail = c->rxprev;
	c->rxprev = c->rxnext = NULL;
	c->in_rxq = false;
}

static void conn_set_events(struct vsock_conn *c, uint32_t want)
{
	struct event_loop *el = c->vs->dev.events;
	int err = 0;

	if (want == c->events || c->fd < 0)
		return;
	if (el) {
		if (!want)
			err = event_loop_del(el, c->fd);
		else if (!c->events)
			err = event_loop_add(el, c->fd, want, &c->h);
		else
			err = event_loop_mod(el, c->fd, want, &c->h);
	}
	if (err) {
		log_ratelimited(&c->vs->rl, LOG_WARN, "virtio-vsock: event loop: %s",
				strerror(-err));
		return;
	}
	c->events = want;
}

static void conn_free(struct virtio_vsock *vs, struct vsock_conn *c)
{
	conn_set_events(c, 0);
	if (c->fd >= 0)
		close(c->fd);
	if (conn_hashed(c))
		conn_hash_del(vs, c);
	rxq_del(vs, c);
	free(c->buf);
	if (c->state != CONN_HOST_CMD)
		vs->stats.conns--;
	/* The slot stays valid memory: a stale event finds it free and returns. */
	memset(&c->state, 0, sizeof(*c) - offsetof(struct vsock_conn, state));
	c->fd = -1;
}

static struct vsock_conn *conn_alloc(struct virtio_vsock *vs, int fd, enum conn_state st)
{
	for (unsigned int i = 0; i < VIRTIO_VSOCK_MAX_CONNS; i++) {
		struct vsock_conn *c = &vs->conns[i];

		if (c->state != CONN_FREE)
			continue;
		c->state = st;
		c->fd = fd;
		if (st != CONN_HOST_CMD)
			vs->stats.conns++;
		return c;
	}
	return NULL;
}

/* What the guest still has room for. A peer_fwd_cnt that lies counts as none. */
static uint32_t conn_peer_credit(const struct vsock_conn *c)
{
	uint32_t in_flight = c->tx_cnt - c->peer_fwd_cnt;

	return in_flight > c->peer_buf_alloc ? 0 : c->peer_buf_alloc - in_flight;
}

/* Brings epoll interest and the rx list in line with the connection's state. */
static void conn_update(struct virtio_vsock *vs, struct vsock_conn *c)
{
	uint32_t want = 0;

	if (c->state == CONN_HOST_CMD)
		want = EPOLLIN;
	if (c->state == CONN_ESTABLISHED) {
		if (!(c->pend & PEND_RW) && !c->host_eof &&
		    !(c->peer_shut & VIRTIO_VSOCK_SHUTDOWN_RCV) && conn_peer_credit(c))
			want |= EPOLLIN;
		if (c->buf_len)
			want |= EPOLLOUT;
	}
	conn_set_events(c, want);
	if (c->pend)
		rxq_add(vs, c);
}

/* Resets a connection: RST to the guest (when it knows of it), host socket closed. */
static void conn_reset(struct virtio_vsock *vs, struct vsock_conn *c)
{
	if (c->state == CONN_HOST_CMD) {
		conn_free(vs, c);
		return;
	}
	conn_set_events(c, 0);
	close(c->fd);
	c->fd = -1;
	c->state = CONN_CLOSING;
	c->pend = PEND_RST;
	rxq_add(vs, c);
}

/* An RST for a packet that has no connection: queued, or lost when the queue is full. */
static void rst_queue(struct virtio_vsock *vs, uint32_t src_port, uint32_t dst_port)
{
	unsigned int i;

	if (vs->rst_len == VIRTIO_VSOCK_RST_QUEUE) {
		log_ratelimited(&vs->rl, LOG_WARN, "virtio-vsock: reset queue full, reset dropped");
		return;
	}
	i = (vs->rst_head + vs->rst_len++) % VIRTIO_VSOCK_RST_QUEUE;
	vs->rst[i].src_port = src_port;
	vs->rst[i].dst_port = dst_port;
}

static void vsock_close_all(struct virtio_vsock *vs)
{
	for (unsigned int i = 0; i < VIRTIO_VSOCK_MAX_CONNS; i++)
		if (vs->conns[i].state != CONN_FREE)
			conn_free(vs, &vs->conns[i]);
	vs->rst_len = 0;
	vs->rxq_head = vs->rxq_tail = NULL;
}

/*
 * Reset or a broken ring: no more guest work, so no fd may stay watched
 * (level-triggered epoll would spin on it). Host clients wait in the
 * listen backlog until the driver is back.
 */
static void vsock_stop(struct virtio_vsock *vs)
{
	vs->active = false;
	if (vs->listening && vs->dev.events)
		event_loop_del(vs->dev.events, vs->listen_fd);
	vs->listening = false;
	vsock_close_all(vs);
}

/* ---- host socket I/O ---- */

/* Writes buffered guest bytes to the host socket. 0, or -EPIPE when it is gone. */
static int conn_flush(struct vsock_conn *c)
{
	while (c->buf_len) {
		uint32_t chunk = VIRTIO_VSOCK_CONN_BUF - c->buf_head, own;
		ssize_t w;

		if (chunk > c->buf_len)
			chunk = c->buf_len;
		w = send(c->fd, c->buf + c->buf_head, chunk, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			return -EPIPE;
		}
		own = (uint32_t)w < c->buf_own ? (uint32_t)w : c->buf_own;
		c->buf_own -= own;
		c->buf_head = (c->buf_head + (uint32_t)w) % VIRTIO_VSOCK_CONN_BUF;
		c->buf_len -= (uint32_t)w;
		c->fwd_cnt += (uint32_t)w - own;
	}
	return 0;
}

/* Appends to the ring; false when it does not fit (the guest overran its credit). */
static bool conn_buffer(struct vsock_conn *c, const struct iovec *iov, unsigned int n, size_t off,
			size_t len)
{
	if (len > VIRTIO_VSOCK_CONN_BUF - c->buf_len)
		return false;
	if (!c->buf) {
		c->buf = malloc(VIRTIO_VSOCK_CONN_BUF);
		if (!c->buf)
			return false;
	}
	while (len) {
		uint32_t tail = (c->buf_head + c->buf_len) % VIRTIO_VSOCK_CONN_BUF;
		uint32_t room = VIRTIO_VSOCK_CONN_BUF - tail;
		size_t k = len < room ? len : room;

		iov_copy(iov, n, off, c->buf + tail, k, false);
		c->buf_len += (uint32_t)k;
		off += k;
		len -= k;
	}
	return true;
}

/* After guest bytes went out: tell the guest about freed room now and then, and finish a close. */
static void conn_after_flush(struct virtio_vsock *vs, struct vsock_conn *c)
{
	if (c->fwd_cnt - c->fwd_cnt_sent >= VIRTIO_VSOCK_CONN_BUF / 4)
		c->pend |= PEND_CREDIT;
	if (c->buf_len)
		return;
	if ((c->peer_shut & VIRTIO_VSOCK_SHUTDOWN_SEND) && !c->host_shut_wr) {
		shutdown(c->fd, SHUT_WR);
		c->host_shut_wr = true;
	}
	/* The guest is done both ways and has nothing left to deliver: close (5.10.6.6). */
	if (c->peer_shut == (VIRTIO_VSOCK_SHUTDOWN_RCV | VIRTIO_VSOCK_SHUTDOWN_SEND))
		conn_reset(vs, c);
}

static void host_cmd_line(struct virtio_vsock *vs, struct vsock_conn *c);

/* The host socket has bytes for the guest, or the client's command. */
static void conn_readable(struct virtio_vsock *vs, struct vsock_conn *c)
{
	if (c->state == CONN_HOST_CMD) {
		host_cmd_line(vs, c);
		return;
	}
	if (c->state == CONN_ESTABLISHED)
		c->pend |= PEND_RW;
}

static void vsock_rx_process(struct virtio_vsock *vs, bool *notify, const char **broken);

static void conn_event(void *ctx, uint32_t events)
{
	struct vsock_conn *c = ctx;
	struct virtio_vsock *vs = c->vs;
	const char *broken = NULL;
	bool notify = false;

	pthread_mutex_lock(&vs->lock);
	if (c->state == CONN_FREE || c->fd < 0 || !vs->active)
		goto out;
	if ((events & EPOLLOUT) && c->buf_len) {
		if (conn_flush(c)) {
			conn_reset(vs, c);
			goto rx;
		}
		conn_after_flush(vs, c);
	}
	if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && c->fd >= 0)
		conn_readable(vs, c);
	if (c->state != CONN_FREE)
		conn_update(vs, c);
rx:
	vsock_rx_process(vs, &notify, &broken);
out:
	pthread_mutex_unlock(&vs->lock);
	if (broken)
		vs->dev.set_broken(&vs->dev, broken);
	else if (notify)
		virtio_queue_done(&vs->dev, VIRTIO_VSOCK_Q_RX);
}

/* Reads the client's "CONNECT <port>\n" without taking any byte after it. */
static void host_cmd_line(struct virtio_vsock *vs, struct vsock_conn *c)
{
	char line[CMD_MAX + 1];
	uint64_t port;
	ssize_t r;
	char *nl;

	r = recv(c->fd, line, CMD_MAX, MSG_PEEK | MSG_DONTWAIT);
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (r <= 0)
		goto bad;
	line[r] = '\0';
	nl = memchr(line, '\n', (size_t)r);
	if (!nl) {
		if (r == CMD_MAX)
			goto bad;
		return; /* the rest of the line is on its way */
	}
	if (recv(c->fd, line, (size_t)(nl - line + 1), MSG_DONTWAIT) != nl - line + 1)
		goto bad;
	*nl = '\0';
	if (strncmp(line, "CONNECT ", 8) || parse_u64(line + 8, &port) || port > UINT32_MAX)
		goto bad;

	c->peer_port = (uint32_t)port;
	do {
		c->local_port = vs->next_host_port++;
		if (vs->next_host_port < VIRTIO_VSOCK_HOST_PORT_BASE)
			vs->next_host_port = VIRTIO_VSOCK_HOST_PORT_BASE;
	} while (conn_find(vs, c->local_port, c->peer_port));
	c->state = CONN_HOST_REQ;
	vs->stats.conns++;
	conn_hash_add(vs, c);
	c->pend = PEND_REQUEST;
	return;
bad:
	/* Firecracker's answer to a bad command, too: the socket is closed. */
	log_ratelimited(&vs->rl, LOG_WARN, "virtio-vsock: %s: host client sent no valid CONNECT",
			vs->path);
	conn_free(vs, c);
}

static void listen_event(void *ctx, uint32_t events)
{
	struct virtio_vsock *vs = ctx;

	(void)events;
	pthread_mutex_lock(&vs->lock);
	for (int i = 0; i < ACCEPT_BUDGET && vs->active; i++) {
		int fd = accept4(vs->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct vsock_conn *c;

		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR)
				log_ratelimited(&vs->rl, LOG_WARN, "virtio-vsock: accept %s: %m",
						vs->path);
			break;
		}
		c = conn_alloc(vs, fd, CONN_HOST_CMD);
		if (!c) {
			log_ratelimited(&vs->rl, LOG_WARN,
					"virtio-vsock: %s: %d connections open, client refused",
					vs->path, VIRTIO_VSOCK_MAX_CONNS);
			vs->stats.conns_refused++;
			close(fd);
			continue;
		}
		conn_update(vs, c);
	}
	pthread_mutex_unlock(&vs->lock);
}

/* ---- guest to host (tx queue) ---- */

/* Connects to PATH_<port>; the fd, or -errno. */
static int host_connect(struct virtio_vsock *vs, uint32_t port)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd, n;

	n = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s_%u", vs->path, port);
	if (n < 0 || (size_t)n >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* A unix connect completes at once, or fails (EAGAIN: backlog full). */
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		n = -errno;
		close(fd);
		return n;
	}
	return fd;
}

static void guest_request(struct virtio_vsock *vs, const struct virtio_vsock_hdr *h)
{
	uint32_t local = le32toh(h->dst_port), peer = le32toh(h->src_port);
	struct vsock_conn *c;
	int fd;

	if (conn_find(vs, local, peer)) {
		rst_queue(vs, local, peer);
		return;
	}
	fd = host_connect(vs, local);
	if (fd < 0) {
		log_ratelimited(&vs->rl, LOG_INFO, "virtio-vsock: guest connect to %s_%u: %s",
				vs->path, local, strerror(-fd));
		vs->stats.conns_refused++;
		rst_queue(vs, local, peer);
		return;
	}
	c = conn_alloc(vs, fd, CONN_ESTABLISHED);
	if (!c) {
		close(fd);
		vs->stats.conns_refused++;
		rst_queue(vs, local, peer);
		return;
	}
	c->local_port = local;
	c->peer_port = peer;
	c->peer_buf_alloc = le32toh(h->buf_alloc);
	c->peer_fwd_cnt = le32toh(h->fwd_cnt);
	conn_hash_add(vs, c);
	c->pend = PEND_RESPONSE;
	vs->stats.conns_opened++;
	conn_update(vs, c);
}

/* Guest data for the host socket: straight through, the rest buffered. */
static void guest_rw(struct virtio_vsock *vs, struct vsock_conn *c, const struct virtq_chain *ch,
		     uint32_t len)
{
	size_t off = HDR_LEN;
	ssize_t w = 0;

	if (!len)
		return;
	if (c->peer_shut & VIRTIO_VSOCK_SHUTDOWN_SEND) {
		/* It said it would send no more: a protocol error. */
		conn_reset(vs, c);
		return;
	}
	if (!c->buf_len) {
		struct msghdr m = {.msg_iov = vs->iov};

		m.msg_iovlen = iov_slice(vs->iov, ch->out, ch->nout, off, len);
		w = sendmsg(c->fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0 && errno != EAGAIN && errno != EINTR) {
			conn_reset(vs, c);
			return;
		}
		if (w < 0)
			w = 0;
		c->fwd_cnt += (uint32_t)w;
	}
	if ((uint32_t)w < len &&
	    !conn_buffer(c, ch->out, ch->nout, off + (size_t)w, len - (uint32_t)w)) {
		log_ratelimited(&vs->rl, LOG_WARN,
				"virtio-vsock: guest port %u sent beyond its credit, reset",
				c->peer_port);
		conn_reset(vs, c);
		return;
	}
	conn_after_flush(vs, c);
}

static void guest_shutdown(struct virtio_vsock *vs, struct vsock_conn *c, uint32_t flags)
{
	c->peer_shut |= flags & (VIRTIO_VSOCK_SHUTDOWN_RCV | VIRTIO_VSOCK_SHUTDOWN_SEND);
	if (c->peer_shut & VIRTIO_VSOCK_SHUTDOWN_RCV)
		c->pend &= ~PEND_RW;
	conn_after_flush(vs, c);
}

/* The guest accepted a host client's CONNECT: tell the client, then relay. */
static void host_conn_accepted(struct virtio_vsock *vs, struct vsock_conn *c)
{
	char ok[32];
	int n = snprintf(ok, sizeof(ok), "OK %u\n", c->local_port);
	struct iovec iov = {.iov_base = ok, .iov_len = (size_t)n};

	c->state = CONN_ESTABLISHED;
	vs->stats.conns_opened++;
	/* Through the ring, so it goes out before any guest data. */
	if (!conn_buffer(c, &iov, 1, 0, (size_t)n)) {
		conn_reset(vs, c);
		return;
	}
	c->buf_own = (uint32_t)n;
	if (conn_flush(c))
		conn_reset(vs, c);
}

/* One accepted packet for connection c. */
static void guest_packet_conn(struct virtio_vsock *vs, struct vsock_conn *c,
			      const struct virtio_vsock_hdr *h, const struct virtq_chain *ch)
{
	uint16_t op = le16toh(h->op);

	c->peer_buf_alloc = le32toh(h->buf_alloc);
	c->peer_fwd_cnt = le32toh(h->fwd_cnt);
	if (op == VIRTIO_VSOCK_OP_RST) {
		conn_free(vs, c);
		return;
	}
	if (c->state == CONN_CLOSING)
		return; /* our RST is on its way */
	if (c->state == CONN_HOST_REQ) {
		if (op != VIRTIO_VSOCK_OP_RESPONSE) {
			conn_reset(vs, c);
			return;
		}
		host_conn_accepted(vs, c);
		return;
	}
	switch (op) {
	case VIRTIO_VSOCK_OP_RW:
		guest_rw(vs, c, ch, le32toh(h->len));
		break;
	case VIRTIO_VSOCK_OP_SHUTDOWN:
		guest_shutdown(vs, c, le32toh(h->flags));
		break;
	case VIRTIO_VSOCK_OP_CREDIT_REQUEST:
		c->pend |= PEND_CREDIT;
		break;
	case VIRTIO_VSOCK_OP_CREDIT_UPDATE:
		break; /* the credit fields were taken above */
	default:
		/* REQUEST or RESPONSE on an open connection. */
		conn_reset(vs, c);
	}
}

static void vsock_tx_drop(struct virtio_vsock *vs, const char *why)
{
	vs->stats.tx_dropped++;
	log_ratelimited(&vs->rl, LOG_WARN, "virtio-vsock: guest packet dropped: %s", why);
}

static void guest_packet(struct virtio_vsock *vs, const struct virtq_chain *ch)
{
	struct virtio_vsock_hdr h;
	struct vsock_conn *c;
	uint16_t op;

	if (ch->out_len < HDR_LEN) {
		vsock_tx_drop(vs, "shorter than the header");
		return;
	}
	iov_copy(ch->out, ch->nout, 0, &h, HDR_LEN, false);
	switch (virtio_vsock_check(&h, ch->out_len - HDR_LEN, vs->guest_cid)) {
	case VSOCK_DROP:
		vsock_tx_drop(vs, "bad address or length");
		return;
	case VSOCK_RESET:
		vs->stats.tx_dropped++;
		rst_queue(vs, le32toh(h.dst_port), le32toh(h.src_port));
		return;
	case VSOCK_ACCEPT:
		break;
	}
	vs->stats.tx_pkts++;
	op = le16toh(h.op);
	c = conn_find(vs, le32toh(h.dst_port), le32toh(h.src_port));
	if (c) {
		guest_packet_conn(vs, c, &h, ch);
		if (c->state != CONN_FREE)
			conn_update(vs, c);
	} else if (op == VIRTIO_VSOCK_OP_REQUEST) {
		guest_request(vs, &h);
	} else if (op != VIRTIO_VSOCK_OP_RST) {
		rst_queue(vs, le32toh(h.dst_port), le32toh(h.src_port));
	}
}

/* 1 when chains were returned, 0 when none, -EINVAL when the ring is broken. */
static int vsock_tx_process(struct virtio_vsock *vs)
{
	struct virtq *q = &vs->dev.queues[VIRTIO_VSOCK_Q_TX];
	int pushed = 0, r;

	while ((r = virtq_pop(q, &vs->c)) > 0) {
		guest_packet(vs, &vs->c);
		if (virtq_push(q, vs->c.head, 0))
			return -EINVAL;
		pushed = 1;
	}
	return r < 0 ? r : pushed;
}

/* ---- host to guest (rx queue) ---- */

static void hdr_fill(struct virtio_vsock *vs, struct virtio_vsock_hdr *h, uint32_t src_port,
		     uint32_t dst_port, uint16_t op)
{
	memset(h, 0, sizeof(*h));
	h->src_cid = htole64(VSOCK_HOST_CID);
	h->dst_cid = htole64(vs->guest_cid);
	h->src_port = htole32(src_port);
	h->dst_port = htole32(dst_port);
	h->type = htole16(VIRTIO_VSOCK_TYPE_STREAM);
	h->op = htole16(op);
}

/*
 * Builds connection c's next packet into chain ch: the bytes written, or 0
 * when it had nothing to send after all.
 */
static uint32_t conn_packet(struct virtio_vsock *vs, struct vsock_conn *c,
			    const struct virtq_chain *ch)
{
	struct virtio_vsock_hdr h;
	uint32_t len = 0;

	hdr_fill(vs, &h, c->local_port, c->peer_port, 0);
	if (c->pend & PEND_RST) {
		h.op = htole16(VIRTIO_VSOCK_OP_RST);
		c->pend = 0;
		vs->stats.rst_sent++;
	} else if (c->pend & PEND_REQUEST) {
		h.op = htole16(VIRTIO_VSOCK_OP_REQUEST);
		c->pend &= ~PEND_REQUEST;
	} else if (c->pend & PEND_RESPONSE) {
		h.op = htole16(VIRTIO_VSOCK_OP_RESPONSE);
		c->pend &= ~PEND_RESPONSE;
	} else if (c->pend & PEND_SHUTDOWN) {
		h.op = htole16(VIRTIO_VSOCK_OP_SHUTDOWN);
		h.flags = htole32(c->shut_to_send);
		c->pend &= ~PEND_SHUTDOWN;
	} else if (c->pend & PEND_RW) {
		uint32_t room = ch->in_len - HDR_LEN, credit = conn_peer_credit(c);
		unsigned int n;
		ssize_t r;

		c->pend &= ~PEND_RW;
		if (room > credit)
			room = credit;
		if (room > VIRTIO_VSOCK_MAX_PKT)
			room = VIRTIO_VSOCK_MAX_PKT;
		if (!room || (c->peer_shut & VIRTIO_VSOCK_SHUTDOWN_RCV))
			return 0;
		n = iov_slice(vs->iov, ch->in, ch->nin, HDR_LEN, room);
		r = readv(c->fd, vs->iov, (int)n);
		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			return 0;
		if (r < 0) {
			/* The host socket failed: reset, in this very buffer. */
			conn_set_events(c, 0);
			close(c->fd);
			c->fd = -1;
			c->state = CONN_CLOSING;
			c->pend = 0;
			h.op = htole16(VIRTIO_VSOCK_OP_RST);
			vs->stats.rst_sent++;
		} else if (r == 0) {
			/* EOF: the host sends no more; the guest may still send to it. */
			c->host_eof = true;
			h.op = htole16(VIRTIO_VSOCK_OP_SHUTDOWN);
			h.flags = htole32(VIRTIO_VSOCK_SHUTDOWN_SEND);
		} else {
			h.op = htole16(VIRTIO_VSOCK_OP_RW);
			len = (uint32_t)r;
			h.len = htole32(len);
			c->tx_cnt += len;
			/* More may be waiting: read again when the guest has buffers. */
			c->pend |= PEND_RW;
		}
	} else if (c->pend & PEND_CREDIT) {
		h.op = htole16(VIRTIO_VSOCK_OP_CREDIT_UPDATE);
		c->pend &= ~PEND_CREDIT;
	} else {
		return 0;
	}
	h.buf_alloc = htole32(VIRTIO_VSOCK_CONN_BUF);
	h.fwd_cnt = htole32(c->fwd_cnt);
	c->fwd_cnt_sent = c->fwd_cnt;
	iov_copy(ch->in, ch->nin, 0, &h, HDR_LEN, true);
	return HDR_LEN + len;
}

/* The next packet owed to the guest, into ch: bytes written, 0 when none is owed. */
static uint32_t vsock_next_packet(struct virtio_vsock *vs, const struct virtq_chain *ch)
{
	while (vs->rst_len) {
		struct virtio_vsock_hdr h;
		unsigned int i = vs->rst_head;

		vs->rst_head = (vs->rst_head + 1) % VIRTIO_VSOCK_RST_QUEUE;
		vs->rst_len--;
		hdr_fill(vs, &h, vs->rst[i].src_port, vs->rst[i].dst_port, VIRTIO_VSOCK_OP_RST);
		iov_copy(ch->in, ch->nin, 0, &h, HDR_LEN, true);
		vs->stats.rst_sent++;
		return HDR_LEN;
	}
	while (vs->rxq_head) {
		struct vsock_conn *c = vs->rxq_head;
		uint32_t n;

		rxq_del(vs, c);
		n = conn_packet(vs, c, ch);
		if (c->state == CONN_CLOSING && !c->pend)
			conn_free(vs, c);
		else
			conn_update(vs, c); /* back at the tail if more is owed */
		if (n)
			return n;
	}
	return 0;
}

static void vsock_rx_process(struct virtio_vsock *vs, bool *notify, const char **broken)
{
	struct virtq *q = &vs->dev.queues[VIRTIO_VSOCK_Q_RX];
	uint16_t used = q->used_idx;
	int r;

	vs->rx_starved = false;
	while (vs->rst_len || vs->rxq_head) {
		uint32_t n;

		r = virtq_pop(q, &vs->c);
		if (r < 0) {
			*broken = q->error ? q->error : "virtqueue error";
			vsock_stop(vs);
			return;
		}
		if (r == 0) {
			vs->rx_starved = true;
			break;
		}
		if (vs->c.in_len < HDR_LEN) {
			/* The driver's bug: return it empty, the packet waits for the next. */
			log_ratelimited(&vs->rl, LOG_WARN,
					"virtio-vsock: rx buffer smaller than the header");
			n = 0;
		} else {
			n = vsock_next_packet(vs, &vs->c);
			if (!n) {
				virtq_unpop(q);
				break;
			}
			vs->stats.rx_pkts++;
		}
		if (virtq_push(q, vs->c.head, n)) {
			*broken = q->error ? q->error : "virtqueue error";
			vsock_stop(vs);
			return;
		}
	}
	*notify |= used != q->used_idx;
}

/* ---- virtio_device_ops ---- */

static void vsock_queue_notify(struct virtio_device *d, uint16_t qi)
{
	struct virtio_vsock *vs = to_vsock(d);
	const char *broken = NULL;
	bool notify = false;
	int r = 0;

	pthread_mutex_lock(&vs->lock);
	if (!vs->active)
		goto out;
	if (qi == VIRTIO_VSOCK_Q_TX) {
		r = vsock_tx_process(vs);
		if (r < 0) {
			broken = d->queues[qi].error ? d->queues[qi].error : "virtqueue error";
			vsock_stop(vs);
			goto out;
		}
	}
	/* Replies to tx, or the buffers a starved rx queue waited for. */
	vsock_rx_process(vs, &notify, &broken);
out:
	pthread_mutex_unlock(&vs->lock);
	if (broken) {
		d->set_broken(d, broken);
		return;
	}
	if (r > 0)
		virtio_queue_done(d, VIRTIO_VSOCK_Q_TX);
	if (notify)
		virtio_queue_done(d, VIRTIO_VSOCK_Q_RX);
}

static int vsock_activate(struct virtio_device *d)
{
	struct virtio_vsock *vs = to_vsock(d);
	int err = 0;

	pthread_mutex_lock(&vs->lock);
	if (!vs->listening && d->events) {
		err = event_loop_add(d->events, vs->listen_fd, EPOLLIN, &vs->listen_h);
		if (err) {
			log_err("virtio-vsock: %s: event loop: %s", vs->path, strerror(-err));
			goto out;
		}
	}
	vs->listening = true;
	vs->active = true;
	vs->rx_starved = false;
out:
	pthread_mutex_unlock(&vs->lock);
	return err;
}

static void vsock_reset(struct virtio_device *d)
{
	struct virtio_vsock *vs = to_vsock(d);

	pthread_mutex_lock(&vs->lock);
	vsock_stop(vs);
	pthread_mutex_unlock(&vs->lock);
}

static void vsock_config_read(struct virtio_device *d, uint32_t off, uint8_t *data, uint32_t len)
{
	uint64_t cid = htole64(to_vsock(d)->guest_cid);

	memset(data, 0, len);
	if (off < sizeof(cid))
		memcpy(data, (uint8_t *)&cid + off,
		       len < sizeof(cid) - off ? len : sizeof(cid) - off);
}

static const struct virtio_device_ops vsock_ops = {
    .name = "virtio-vsock",
    .type = VIRTIO_ID_VSOCK,
    .config_read = vsock_config_read,
    .activate = vsock_activate,
    .reset = vsock_reset,
    .queue_notify = vsock_queue_notify,
};

/* ---- user configuration ---- */

static int parse_cid(const char *v, uint64_t *cid, char *err, size_t errlen)
{
	if (parse_u64(v, cid)) {
		snprintf(err, errlen, "--vsock: cid=%s: not a number", v);
		return -EINVAL;
	}
	if (*cid < 3) {
		snprintf(err, errlen, "--vsock: cid=%s: must be 3 or more (0-2 are reserved)", v);
		return -EINVAL;
	}
	if (*cid >= UINT32_MAX) {
		snprintf(err, errlen, "--vsock: cid=%s: must be below 4294967295", v);
		return -EINVAL;
	}
	return 0;
}

static int parse_uds(const char *v, char *path, size_t size, char *err, size_t errlen)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct stat st;

	if (!*v) {
		snprintf(err, errlen, "--vsock: uds=: empty path");
		return -EINVAL;
	}
	if (strlen(v) >= size) {
		snprintf(err, errlen, "--vsock: uds=%s: path longer than %zu bytes", v, size - 1);
		return -EINVAL;
	}
	snprintf(dir, sizeof(dir), "%s", v);
	if (stat(dirname(dir), &st) || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "--vsock: uds=%s: directory %s does not exist", v, dir);
		return -EINVAL;
	}
	snprintf(path, size, "%s", v);
	return 0;
}

int virtio_vsock_parse(const char *arg, struct virtio_vsock_config *cfg, char *err, size_t errlen)
{
	char *copy, *save = NULL, *opt;
	bool has_cid = false, has_uds = false;
	int ret = 0;

	memset(cfg, 0, sizeof(*cfg));
	copy = strdup(arg ? arg : "");
	if (!copy) {
		snprintf(err, errlen, "--vsock: out of memory");
		return -ENOMEM;
	}
	for (opt = strtok_r(copy, ",", &save); opt && !ret; opt = strtok_r(NULL, ",", &save)) {
		if (!strncmp(opt, "cid=", 4) && !has_cid) {
			ret = parse_cid(opt + 4, &cfg->guest_cid, err, errlen);
			has_cid = true;
		} else if (!strncmp(opt, "uds=", 4) && !has_uds) {
			ret = parse_uds(opt + 4, cfg->uds, sizeof(cfg->uds), err, errlen);
			has_uds = true;
		} else if (!strncmp(opt, "cid=", 4) || !strncmp(opt, "uds=", 4)) {
			snprintf(err, errlen, "--vsock: %.3s given twice", opt);
			ret = -EINVAL;
		} else {
			snprintf(err, errlen, "--vsock: unknown option '%s' (want cid=N,uds=PATH)",
				 opt);
			ret = -EINVAL;
		}
	}
	if (!ret && (!has_cid || !has_uds)) {
		snprintf(err, errlen, "--vsock: %s is required", has_cid ? "uds=PATH" : "cid=N");
		ret = -EINVAL;
	}
	free(copy);
	return ret;
}

/* PATH may hold a socket left by a dead process: remove it, but nothing else. */
static int uds_clear_stale(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;
	int fd, e;

	if (lstat(path, &st)) {
		if (errno == ENOENT)
			return 0;
		e = errno;
		snprintf(err, errlen, "--vsock: uds=%s: %s", path, strerror(e));
		return -e;
	}
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen, "--vsock: uds=%s: exists and is not a socket", path);
		return -EEXIST;
	}
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		e = errno;
		snprintf(err, errlen, "--vsock: socket: %s", strerror(e));
		return -e;
	}
	e = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) ? errno : 0;
	close(fd);
	if (!e) {
		snprintf(err, errlen, "--vsock: uds=%s: in use (another process listens on it)",
			 path);
		return -EADDRINUSE;
	}
	if (e != ECONNREFUSED) {
		snprintf(err, errlen, "--vsock: uds=%s: %s", path, strerror(e));
		return -e;
	}
	if (unlink(path)) {
		e = errno;
		snprintf(err, errlen, "--vsock: uds=%s: removing the stale socket: %s", path,
			 strerror(e));
		return -e;
	}
	return 0;
}

static int uds_listen(struct virtio_vsock *vs, char *err, size_t errlen)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;
	int fd, e;

	e = -uds_clear_stale(vs->path, err, errlen);
	if (e)
		return -e;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", vs->path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		e = errno;
		snprintf(err, errlen, "--vsock: socket: %s", strerror(e));
		return -e;
	}
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 64)) {
		e = errno;
		snprintf(err, errlen, "--vsock: uds=%s: %s", vs->path, strerror(e));
		close(fd);
		return -e;
	}
	/* Remembered so destroy removes our socket, not one put there since. */
	if (!stat(vs->path, &st)) {
		vs->sock_dev = st.st_dev;
		vs->sock_ino = st.st_ino;
	}
	vs->listen_fd = fd;
	return 0;
}

int virtio_vsock_create(const struct virtio_vsock_config *cfg, struct virtio_device **out,
			char *err, size_t errlen)
{
	struct virtio_vsock *vs;
	int ret;

	if (cfg->guest_cid < 3 || cfg->guest_cid >= UINT32_MAX) {
		snprintf(err, errlen, "--vsock: cid=%llu: must be 3 to 4294967294",
			 (unsigned long long)cfg->guest_cid);
		return -EINVAL;
	}
	vs = calloc(1, sizeof(*vs));
	if (!vs) {
		snprintf(err, errlen, "--vsock: out of memory");
		return -ENOMEM;
	}
	ret = -pthread_mutex_init(&vs->lock, NULL);
	if (ret) {
		snprintf(err, errlen, "--vsock: mutex: %s", strerror(-ret));
		goto err_free;
	}
	vs->guest_cid = cfg->guest_cid;
	snprintf(vs->path, sizeof(vs->path), "%s", cfg->uds);
	ret = uds_listen(vs, err, errlen);
	if (ret)
		goto err_mutex;
	vs->listen_h = (struct event_handler){.fn = listen_event, .ctx = vs};
	vs->next_host_port = VIRTIO_VSOCK_HOST_PORT_BASE;
	vs->rl = (struct ratelimit)RATELIMIT_INIT(5000, 5);
	for (unsigned int i = 0; i < VIRTIO_VSOCK_MAX_CONNS; i++) {
		vs->conns[i].vs = vs;
		vs->conns[i].fd = -1;
		vs->conns[i].h = (struct event_handler){.fn = conn_event, .ctx = &vs->conns[i]};
	}

	vs->dev.ops = &vsock_ops;
	vs->dev.priv = vs;
	vs->dev.device_features = 1ull << VIRTIO_VSOCK_F_STREAM;
	vs->dev.num_queues = 3;
	for (int q = 0; q < 3; q++)
		vs->dev.queue_max[q] = VIRTIO_VSOCK_QUEUE_SIZE;
	vs->dev.config_size = sizeof(uint64_t);
	*out = &vs->dev;
	return 0;

err_mutex:
	pthread_mutex_destroy(&vs->lock);
err_free:
	free(vs);
	return ret;
}

void virtio_vsock_destroy(struct virtio_device *d)
{
	struct virtio_vsock *vs;
	struct stat st;

	if (!d)
		return;
	vs = to_vsock(d);
	if (vs->listening && d->events)
		event_loop_del(d->events, vs->listen_fd);
	vsock_close_all(vs);
	close(vs->listen_fd);
	if (!stat(vs->path, &st) && st.st_dev == vs->sock_dev && st.st_ino == vs->sock_ino)
		unlink(vs->path);
	pthread_mutex_destroy(&vs->lock);
	free(vs);
}

void virtio_vsock_get_stats(struct virtio_device *d, struct virtio_vsock_stats *st)
{
	struct virtio_vsock *vs = to_vsock(d);

	pthread_mutex_lock(&vs->lock);
	*st = vs->stats;
	pthread_mutex_unlock(&vs->lock);
}
