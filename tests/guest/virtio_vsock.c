/*
 * virtio-vsock action: the minimum of the stream protocol (virtio 1.2,
 * 5.10.6) for one connection at a time. With vsock-port=P: connect to the
 * host (CID 2) port P, send "ping <seed>\n", print the reply line, shut
 * down. With vsock-listen=P: accept one connection from the host on port P,
 * read a line, echo it back, shut down.
 */
#include "guest.h"

#define VSOCK_HOST_CID 2
#define TYPE_STREAM 1
#define OP_REQUEST 1
#define OP_RESPONSE 2
#define OP_RST 3
#define OP_SHUTDOWN 4
#define OP_RW 5
#define OP_CREDIT_UPDATE 6
#define OP_CREDIT_REQUEST 7
#define SHUTDOWN_BOTH 3
#define HDR 44
#define RX_BUFS 8
#define BUF_SIZE 4096
#define OUR_BUF_ALLOC 65536
#define LINE_MAX 256
#define CLOSE_CYCLES 3000000000ull

struct vsock_hdr {
	uint64_t src_cid, dst_cid;
	uint32_t src_port, dst_port, len;
	uint16_t type, op;
	uint32_t flags, buf_alloc, fwd_cnt;
} __attribute__((packed));

_Static_assert(sizeof(struct vsock_hdr) == HDR, "virtio_vsock_hdr is 44 bytes");

struct vsock {
	struct virtio_dev *v;
	uint64_t cid;
	uint8_t *rx, *tx;
	/* The connection. */
	uint32_t local_port, peer_port;
	uint32_t fwd_cnt;		       /* payload bytes we have consumed */
	uint32_t tx_cnt;		       /* payload bytes we have sent */
	uint32_t peer_buf_alloc, peer_fwd_cnt; /* the peer's credit */
	char line[LINE_MAX];
	unsigned int line_len;
};

struct pkt {
	struct vsock_hdr h;
	uint8_t data[BUF_SIZE - HDR];
};

static bool vs_send(struct vsock *s, uint16_t op, uint32_t flags, const void *data, uint32_t len)
{
	struct vsock_hdr *h = (struct vsock_hdr *)s->tx;
	struct vbuf b = {(uintptr_t)s->tx, HDR + len, false};

	*h = (struct vsock_hdr){.src_cid = s->cid,
				.dst_cid = VSOCK_HOST_CID,
				.src_port = s->local_port,
				.dst_port = s->peer_port,
				.len = len,
				.type = TYPE_STREAM,
				.op = op,
				.flags = flags,
				.buf_alloc = OUR_BUF_ALLOC,
				.fwd_cnt = s->fwd_cnt};
	memcpy(s->tx + HDR, data, len);
	s->tx_cnt += op == OP_RW ? len : 0;
	return virtq_xfer(&s->v->q[1], &b, 1, "vsock tx") >= 0;
}

/* Next packet from the device into p; false on timeout. */
static bool vs_recv(struct vsock *s, struct pkt *p, uint64_t cycles)
{
	uint32_t head, len;

	if (!virtq_wait(&s->v->q[0], &head, &len, cycles))
		return false;
	if (head >= RX_BUFS || len < HDR || len > BUF_SIZE) {
		gfail("virtio vsock rx used id %u len %u", head, len);
		return false;
	}
	memcpy(p, s->rx + head * BUF_SIZE, len);
	virtq_repost(&s->v->q[0], (uint16_t)head);
	if (p->h.len > len - HDR) {
		gfail("virtio vsock rx hdr.len %u > %u bytes received", p->h.len, len - HDR);
		return false;
	}
	return true;
}

static bool ours(const struct vsock *s, const struct pkt *p)
{
	return p->h.src_cid == VSOCK_HOST_CID && p->h.dst_cid == s->cid &&
	       p->h.dst_port == s->local_port && p->h.src_port == s->peer_port;
}

/* Reads until a whole line has arrived on the connection; false after a gfail. */
static bool vs_read_line(struct vsock *s, struct pkt *p)
{
	s->line_len = 0;
	for (;;) {
		if (!vs_recv(s, p, VIRTIO_TIMEOUT)) {
			gfail("virtio vsock port %u: no line from the host", s->peer_port);
			return false;
		}
		if (!ours(s, p))
			continue;
		s->peer_buf_alloc = p->h.buf_alloc;
		s->peer_fwd_cnt = p->h.fwd_cnt;
		if (p->h.op == OP_CREDIT_REQUEST && !vs_send(s, OP_CREDIT_UPDATE, 0, NULL, 0))
			return false;
		if (p->h.op == OP_RST || p->h.op == OP_SHUTDOWN) {
			gfail("virtio vsock port %u: peer closed (op %u) before a line",
			      s->peer_port, p->h.op);
			return false;
		}
		if (p->h.op != OP_RW)
			continue;
		s->fwd_cnt += p->h.len;
		for (uint32_t i = 0; i < p->h.len; i++) {
			if (p->data[i] == '\n') {
				s->line[s->line_len] = '\0';
				return true;
			}
			if (s->line_len < LINE_MAX - 1)
				s->line[s->line_len++] = (char)p->data[i];
		}
	}
}

static bool vs_write(struct vsock *s, const char *data, uint32_t len)
{
	if (s->peer_buf_alloc - (s->tx_cnt - s->peer_fwd_cnt) < len) {
		gfail("virtio vsock port %u: no credit for %u bytes (buf_alloc %u fwd_cnt %u)",
		      s->peer_port, len, s->peer_buf_alloc, s->peer_fwd_cnt);
		return false;
	}
	return vs_send(s, OP_RW, 0, data, len);
}

/* SHUTDOWN both ways, then wait (briefly) for the peer's RST. */
static void vs_close(struct vsock *s, struct pkt *p)
{
	uint64_t start = rdtsc();

	if (!vs_send(s, OP_SHUTDOWN, SHUTDOWN_BOTH, NULL, 0))
		return;
	while (rdtsc() - start < CLOSE_CYCLES && vs_recv(s, p, CLOSE_CYCLES))
		if (ours(s, p) && p->h.op == OP_RST)
			return;
	vs_send(s, OP_RST, 0, NULL, 0);
}

static void vs_connect(struct vsock *s, struct pkt *p, uint32_t port, uint32_t seed)
{
	char msg[32] = "ping ";
	unsigned int len = 5;
	char digits[12];
	int nd = 0;

	s->local_port = 49152 + seed % 1000;
	s->peer_port = port;
	s->fwd_cnt = s->tx_cnt = 0;
	if (!vs_send(s, OP_REQUEST, 0, NULL, 0))
		return;
	for (;;) {
		if (!vs_recv(s, p, VIRTIO_TIMEOUT)) {
			gfail("virtio vsock connect to port %u: no answer", port);
			return;
		}
		if (!ours(s, p))
			continue;
		if (p->h.op == OP_RST) {
			gfail("virtio vsock connect to port %u: refused (RST)", port);
			return;
		}
		if (p->h.op == OP_RESPONSE)
			break;
	}
	s->peer_buf_alloc = p->h.buf_alloc;
	s->peer_fwd_cnt = p->h.fwd_cnt;
	gprintf("guest: vsock connected port=%u\n", port);
	do
		digits[nd++] = (char)('0' + seed % 10);
	while ((seed /= 10) && nd < 11);
	while (nd)
		msg[len++] = digits[--nd];
	msg[len++] = '\n';
	if (!vs_write(s, msg, len) || !vs_read_line(s, p))
		return;
	gprintf("guest: vsock reply %s\n", s->line);
	vs_close(s, p);
}

static void vs_accept(struct vsock *s, struct pkt *p, uint32_t port)
{
	gprintf("guest: vsock listening port=%u\n", port);
	for (;;) {
		if (!vs_recv(s, p, VIRTIO_TIMEOUT)) {
			gfail("virtio vsock listen port %u: no connection", port);
			return;
		}
		if (p->h.op == OP_REQUEST && p->h.dst_port == port &&
		    p->h.src_cid == VSOCK_HOST_CID)
			break;
	}
	s->local_port = port;
	s->peer_port = p->h.src_port;
	s->peer_buf_alloc = p->h.buf_alloc;
	s->peer_fwd_cnt = p->h.fwd_cnt;
	s->fwd_cnt = s->tx_cnt = 0;
	if (!vs_send(s, OP_RESPONSE, 0, NULL, 0) || !vs_read_line(s, p))
		return;
	gprintf("guest: vsock accepted port=%u line=%s\n", port, s->line);
	s->line[s->line_len] = '\n';
	if (!vs_write(s, s->line, s->line_len + 1))
		return;
	vs_close(s, p);
}

void virtio_vsock_run(struct virtio_ctx *c, struct virtio_dev *v)
{
	static struct pkt pkt;
	struct vsock s = {.v = v};
	uint64_t port = cmdline_num(c->bi->cmdline, "vsock-port=", 0);
	uint64_t listen = cmdline_num(c->bi->cmdline, "vsock-listen=", 0);
	void *event;

	if (virtio_start(c, v, 0, 3, 16))
		return;
	s.cid = virtio_cfg64(v, 0);
	gprintf("guest: vsock cid=%lu\n", s.cid);
	s.rx = virtio_alloc(c, RX_BUFS * BUF_SIZE);
	s.tx = virtio_alloc(c, BUF_SIZE);
	event = virtio_alloc(c, 8);
	if (!s.rx || !s.tx || !event)
		return;
	for (unsigned int i = 0; i < RX_BUFS; i++) {
		struct vbuf b = {(uintptr_t)s.rx + i * BUF_SIZE, BUF_SIZE, true};

		virtq_add(&v->q[0], &b, 1);
	}
	struct vbuf eb = {(uintptr_t)event, 8, true};

	virtq_add(&v->q[2], &eb, 1);
	if (port)
		vs_connect(&s, &pkt, (uint32_t)port, c->seed);
	if (listen)
		vs_accept(&s, &pkt, (uint32_t)listen);
}
