#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "unit/virtq_fake.h"
#include "vmm/event.h"
#include "vmm/virtio/vsock.h"

/*
 * The device runs with a real event thread (host sockets drive it); the
 * test plays the guest on fake queues and the host programs on real unix
 * sockets in a temporary directory.
 */
#define CID 3
#define HDR ((uint32_t)sizeof(struct virtio_vsock_hdr))
#define RXBUF 4096

static struct vq_fake rxf, txf, evf;
static struct event_loop el;
static struct virtio_device *d;
static char dir[32], path[64];
static uint64_t rx_gpa[256];
static uint16_t rx_seen; /* used rx entries consumed by the test */
static const char *broken;

static void rec_signal(struct virtio_device *dev, uint16_t q)
{
	(void)dev;
	(void)q;
}

static void rec_broken(struct virtio_device *dev, const char *why)
{
	(void)dev;
	broken = why;
}

static void setup(void)
{
	struct virtio_vsock_config cfg = {.guest_cid = CID};
	char err[256];

	snprintf(dir, sizeof(dir), "/tmp/ember-vsock-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/v.sock", dir);
	snprintf(cfg.uds, sizeof(cfg.uds), "%s", path);
	cr_assert_eq(virtio_vsock_create(&cfg, &d, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(event_loop_init(&el), 0);
	vq_fake_init(&rxf, 256);
	vq_fake_init(&txf, 256);
	vq_fake_init(&evf, 16);
	d->queues[VIRTIO_VSOCK_Q_RX] = rxf.q;
	d->queues[VIRTIO_VSOCK_Q_TX] = txf.q;
	d->queues[VIRTIO_VSOCK_Q_EVENT] = evf.q;
	d->events = &el;
	d->signal_used = rec_signal;
	d->set_broken = rec_broken;
	d->driver_features = 1ull << VIRTIO_F_VERSION_1;
	rx_seen = 0;
	broken = NULL;
	cr_assert_eq(d->ops->activate(d), 0);
	cr_assert_eq(event_loop_start(&el), 0);
}

static void teardown(void)
{
	char cmd[128];

	event_loop_stop(&el);
	virtio_vsock_destroy(d);
	event_loop_destroy(&el);
	vq_fake_free(&rxf);
	vq_fake_free(&txf);
	vq_fake_free(&evf);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(vsock, .init = setup, .fini = teardown, .timeout = 30);

static void rx_add(int n)
{
	struct vq_fake_seg s = {.len = RXBUF, .write = true};

	for (int i = 0; i < n; i++) {
		uint16_t head = vq_fake_add_chain(&rxf, &s, 1);

		rx_gpa[head] = rxf.seg_gpa[0];
	}
	d->ops->queue_notify(d, VIRTIO_VSOCK_Q_RX);
}

static void sleep_ms(int ms)
{
	nanosleep(&(struct timespec){.tv_nsec = ms * 1000000L}, NULL);
}

/* Next packet the device put on the rx queue; false after timeout_ms without one. */
static bool rx_get(struct virtio_vsock_hdr *h, uint8_t *payload, int timeout_ms)
{
	uint32_t id, len;
	uint8_t *buf;

	for (int t = 0; vq_fake_used_idx(&rxf) == rx_seen; t++) {
		if (t >= timeout_ms)
			return false;
		sleep_ms(1);
	}
	vq_fake_used(&rxf, rx_seen++, &id, &len);
	cr_assert_lt(id, 256);
	cr_assert_geq(len, HDR);
	buf = vq_fake_ptr(&rxf, rx_gpa[id], RXBUF);
	memcpy(h, buf, HDR);
	cr_assert_eq(len, HDR + h->len, "used length %u, header len %u", len, h->len);
	if (payload)
		memcpy(payload, buf + HDR, h->len);
	return true;
}

static void rx_expect(struct virtio_vsock_hdr *h, uint8_t *payload, uint16_t op)
{
	cr_assert(rx_get(h, payload, 2000), "no packet (op %u expected)", op);
	cr_assert_eq(h->op, op, "op %u, expected %u", h->op, op);
	cr_assert_eq(h->src_cid, VSOCK_HOST_CID);
	cr_assert_eq(h->dst_cid, CID);
	cr_assert_eq(h->type, VIRTIO_VSOCK_TYPE_STREAM);
}

static void rx_expect_none(void)
{
	struct virtio_vsock_hdr h;

	cr_assert_not(rx_get(&h, NULL, 100), "unexpected packet op %u", h.op);
}

struct pkt {
	uint16_t op;
	uint32_t src_port, dst_port;
	uint32_t flags;
	uint32_t buf_alloc, fwd_cnt;
	const void *data;
	uint32_t len;
};

static struct virtio_vsock_hdr hdr_of(const struct pkt *p)
{
	return (struct virtio_vsock_hdr){
	    .src_cid = CID,
	    .dst_cid = VSOCK_HOST_CID,
	    .src_port = p->src_port,
	    .dst_port = p->dst_port,
	    .len = p->len,
	    .type = VIRTIO_VSOCK_TYPE_STREAM,
	    .op = p->op,
	    .flags = p->flags,
	    .buf_alloc = p->buf_alloc ? p->buf_alloc : 65536,
	    .fwd_cnt = p->fwd_cnt,
	};
}

static void tx_raw(const struct virtio_vsock_hdr *h, const void *data, uint32_t len)
{
	struct vq_fake_seg s[] = {{.data = h, .len = HDR}, {.data = data, .len = len}};

	vq_fake_add_chain(&txf, s, len ? 2 : 1);
	d->ops->queue_notify(d, VIRTIO_VSOCK_Q_TX);
}

static void tx(const struct pkt *p)
{
	struct virtio_vsock_hdr h = hdr_of(p);

	tx_raw(&h, p->data, p->len);
}

static int host_connect(const char *p)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", p);
	cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "%s: %s", p,
		     strerror(errno));
	return fd;
}

static int host_listen(const char *p)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", p);
	cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	cr_assert_eq(listen(fd, 4), 0);
	return fd;
}

/* Reads exactly len bytes within 2 s. */
static void host_read(int fd, void *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		ssize_t r;

		cr_assert_eq(poll(&p, 1, 2000), 1, "host socket: nothing to read");
		r = read(fd, (uint8_t *)buf + got, len - got);
		cr_assert_gt(r, 0, "host socket closed after %zu of %zu bytes", got, len);
		got += (size_t)r;
	}
}

static void host_expect_eof(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	char ch;

	cr_assert_eq(poll(&p, 1, 2000), 1);
	cr_assert_leq(read(fd, &ch, 1), 0, "expected EOF/reset on the host socket");
}

static struct virtio_vsock_stats stats(void)
{
	struct virtio_vsock_stats st;

	virtio_vsock_get_stats(d, &st);
	return st;
}

/* Host client connected to guest port 1234 and accepted; returns its fd and host port. */
static int host_to_guest(uint32_t guest_buf_alloc, uint32_t *hport)
{
	struct virtio_vsock_hdr h;
	char ok[32], want[32];
	int fd;

	fd = host_connect(path);
	cr_assert_eq(write(fd, "CONNECT 1234\n", 13), 13);
	rx_expect(&h, NULL, VIRTIO_VSOCK_OP_REQUEST);
	cr_assert_eq(h.dst_port, 1234);
	cr_assert_geq(h.src_port, VIRTIO_VSOCK_HOST_PORT_BASE);
	cr_assert_eq(h.buf_alloc, VIRTIO_VSOCK_CONN_BUF);
	*hport = h.src_port;
	tx(&(struct pkt){.op = VIRTIO_VSOCK_OP_RESPONSE,
			 .src_port = 1234,
			 .dst_port = *hport,
			 .buf_alloc = guest_buf_alloc});
	snprintf(want, sizeof(want), "OK %u\n", *hport);
	host_read(fd, ok, strlen(want));
	cr_assert_eq(memcmp(ok, want, strlen(want)), 0);
	return fd;
}

Test(vsock, host_connect_relays_both_ways)
{
	struct virtio_vsock_hdr h;
	uint8_t data[64];
	uint32_t hport;
	int fd;

	rx_add(16);
	fd = host_to_guest(65536, &hport);
	cr_assert_eq(stats().conns, 1);

	/* Host to guest. */
	cr_assert_eq(write(fd, "hello", 5), 5);
	rx_expect(&h, data, VIRTIO_VSOCK_OP_RW);
	cr_assert_eq(h.len, 5);
	cr_assert_eq(h.src_port, hport);
	cr_assert_eq(h.dst_port, 1234);
	cr_assert_eq(memcmp(data, "hello", 5), 0);

	/* Guest to host; our fwd_cnt then counts the bytes the host took. */
	tx(&(struct pkt){.op = VIRTIO_VSOCK_OP_RW,
			 .src_port = 1234,
			 .dst_port = hport,
			 .data = "world!",
			 .len = 6});
	host_read(fd, data, 6);
	cr_assert_eq(memcmp(data, "world!", 6), 0);
	tx(&(struct pkt){
	    .op = VIRTIO_VSOCK_OP_CREDIT_REQUEST, .src_port = 1234, .dst_port = hport});
	rx_expect(&h, NULL, VIRTIO_VSOCK_OP_CREDIT_UPDATE);
	cr_assert_eq(h.fwd_cnt, 6);
	cr_assert_eq(h.buf_alloc, VIRTIO_VSOCK_CONN_BUF);

	/* The host closes: the guest hears it will get no more; its RST ends it. */
	close(fd);
	rx_expect(&h, NULL, VIRTIO_VSOCK_OP_SHUTDOWN);
	cr_assert(h.flags & VIRTIO_VSOCK_SHUTDOWN_SEND);
	tx(&(struct pkt){.op = VIRTIO_VSOCK_OP_RST, .src_port = 1234, .dst_port = hport});
	cr_assert_eq(stats().conns, 0);
	cr_assert_null(broken);
}

Test(vsock, host_to_guest_respects_guest_credit)
{
	struct virtio_vsock_hdr h;
	uint8_t data[64], sent[20];
	uint32_t hport;
	int fd;

	rx_add(16);
	fd = host_to_guest(8, &hport); /* the guest has room for 8 bytes */
	for (int i = 0; i < 20; i++)
		sent[i] = (uint8_t)('a' + i);
	cr_assert_eq(write(fd, sent, 20), 20);
	rx_expect(&h, data, VIRTIO_VSOCK_OP_RW);
	cr_assert_eq(h.len, 8);
	cr_assert_eq(memcmp(data, sent, 8), 0);
	rx_expect_none();

	/* The guest's application read 8 bytes: room for 8 more. */
	tx(&(struct pkt){.op = VIRTIO_VSOCK_OP_CREDIT_UPDATE,
			 .src_port = 1234,
			 .dst_port = hport,
			 .buf_alloc = 8,
			 .fwd_cnt = 8});
	rx_expect(&h, data, VIRTIO_VSOCK_OP_RW);
	cr_assert_eq(h.len, 8);
	cr_assert_eq(memcmp(data, sent + 8, 8), 0);
	rx_expect_none();
	/* A bigger buffer announced: the rest comes. */
	tx(&(struct pkt){.op = VIRTIO_VSOCK_OP_CREDIT_UPDATE,
			 .src_port = 1234,
			 .dst_port = hport,
			 .buf_alloc = 1024,
			 .fwd_cnt = 8});
	rx_expect(&h, data, VIRTIO_VSOCK_OP_RW);
	cr_assert_eq(h.len, 4);
	cr_assert_eq(memcmp(data, sent + 16, 4), 0);
	close(fd);
}

Test(vsock, host_data_waits_for_rx_buffers)
{
	struct virtio_vsock_hdr h;
	uint8_t data[64];
	uint32_t hport;
	int fd;

	rx_add(2); /* REQUEST, then one spare */
	fd = host_to_guest(65536, &hport);
	cr_assert_eq(write(fd, "abc", 3), 3);
	rx_expect(&h, data, VIRTIO_VSOCK_OP_RW);
	cr_assert_eq(write(fd, "def", 3), 3);
	rx_expect_none(); /* no buffers: nothing lost, nothing sent */
	rx_add(1);
	rx_expect(&h, data, VIRTIO_VSOCK_OP_RW);
	cr_assert_eq(h.len, 3);
	cr_assert_eq(memcmp(data, "def", 3), 0);
	close(fd);
}

Test(vsock, guest_refuses_host_connect)
{
	struct virtio_vsock_hdr h;
	int fd;

	rx_add(4);
	fd = host_connect(path);
	cr_assert_eq(write(fd, "CONNECT 99\n", 11), 11);
	rx_expect(&h, NULL, VIRTIO_VSOCK_OP_REQUEST);
	tx(&(struct pkt){.op = VIRTIO_VSOCK_OP_RST, .src_port = 99, .dst_port = h.src_port});
	host_expect_eof(fd);
	close(fd);
	cr_assert_eq(stats().conns, 0);
}

Test(vsock, bad_connect_line_closes_client)
{
	int fd;

	rx_add(4);
	fd = host_connect(path);
	cr_assert_eq(write(fd, "CONNECT x\n", 10), 10);
	host_expect_eof(fd);
	close(fd);
	fd = host_connect(path);
	cr_assert_eq(write(fd, "GET / HTTP/1.1 and no newline for a long long time", 50), 50);
	host_expect_eof(fd);
	close(fd);
	rx_expect_none();
}

Test(vsock, data_after_connect_line_is_kept)
{
	struct virtio_vsock_hdr h;
	uint8_t data[64];
	char ok[32];
	int fd;

	rx_add(8);
	fd = host_connect(path);
	cr_assert_eq(write(fd, "CONNECT 7\nearly", 15), 15);
	rx_expect(&h, NULL, VIRTIO_VSOCK_OP_REQUEST);
	tx(&(struct pkt){.op = VIRTIO_VSOCK_OP_RESPONSE, .src_port = 7, .dst_port = h.src_port});
	host_read(fd, ok, 3);
	rx_expect(&h, data, VIRTIO_VSOCK_OP_RW);
	cr_assert_eq(h.len, 5);
	cr_assert_eq(memcmp(data, "early", 5), 0);
	close(fd);
}

Test(vsock, guest_connects_to_listening_host_port)
{
	struct virtio_vsock_hdr h;
	char p[160];
	uint8_t data[64];
	int lfd, fd;

	snprintf(p, sizeof(p), "%s_5000", path);
	lfd = host_listen(p);
	rx_add(8);
	tx(&(struct pkt){.op = VIRTIO_VSOCK_OP_REQUEST, .src_port = 777, .dst_port = 5000});
	rx_expect(&h, NULL, VIRTIO_VSOCK_OP_RESPONSE);
	cr_assert_eq(h.src_port, 5000);
	cr_assert_eq(h.dst_port, 777);
	fd = accept(lfd, NULL, NULL);
	cr_assert_geq(fd, 0);

	tx(&(struct pkt){
	    .op = VIRTIO_VSOCK_OP_RW, .src_port = 777, .dst_port = 5000, .data = "ping", .len = 4});
	host_read(fd, data, 4);
	cr_assert_eq(memcmp(data, "ping", 4), 0);
	cr_assert_eq(write(fd, "pong", 4), 4);
	rx_expect(&h, data, VIRTIO_VSOCK_OP_RW);
	cr_assert_eq(memcmp(data, "pong", 4), 0);
	cr_assert_eq(h.fwd_cnt, 4);

	/* The guest closes: the host sees EOF, the guest gets the final RST. */
	tx(&(struct pkt){.op = VIRTIO_VSOCK_OP_SHUTDOWN,
			 .src_port = 777,
			 .dst_port = 5000,
			 .flags = VIRTIO_VSOCK_SHUTDOWN_RCV | VIRTIO_VSOCK_SHUTDOWN_SEND});
	host_expect_eof(fd);
	rx_expect(&h, NULL, VIRTIO_VSOCK_OP_RST);
	cr_assert_eq(stats().conns, 0);
	close(fd);
	close(lfd);
}

Test(vsock, guest_half_close_keeps_other_direction)
{
	struct virtio_vsock_hdr h;
	char p[160];
	uint8_t data[64];
	int lfd, fd;

	snprintf(p, sizeof(p), "%s_5001", path);
	lfd = host_listen(p);
	rx_add(8);
	tx(&(struct pkt){.op = VIRTIO_VSOCK_OP_REQUEST, .src_port = 778, .dst_port = 5001});
	rx_expect(&h, NULL, VIRTIO_VSOCK_OP_RESPONSE);
	fd = accept(lfd, NULL, NULL);
	tx(&(struct pkt){.op = VIRTIO_VSOCK_OP_SHUTDOWN,
			 .src_port = 778,
			 .dst_port = 5001,
			 .flags = VIRTIO_VSOCK_SHUTDOWN_SEND});
	host_expect_eof(fd);
	cr_assert_eq(write(fd, "reply", 5), 5);
	rx_expect(&h, data, VIRTIO_VSOCK_OP_RW);
	cr_assert_eq(memcmp(data, "reply", 5), 0);
	close(fd);
	close(lfd);
}

Test(vsock, guest_connect_to_missing_port_is_reset)
{
	struct virtio_vsock_hdr h;

	rx_add(4);
	tx(&(struct pkt){.op = VIRTIO_VSOCK_OP_REQUEST, .src_port = 777, .dst_port = 6000});
	rx_expect(&h, NULL, VIRTIO_VSOCK_OP_RST);
	cr_assert_eq(h.src_port, 6000);
	cr_assert_eq(h.dst_port, 777);
	cr_assert_eq(stats().conns, 0);
	cr_assert_eq(stats().conns_refused, 1);
}

Test(vsock, guest_beyond_credit_is_reset)
{
	struct virtio_vsock_hdr h;
	struct vq_fake_seg s[2];
	char p[160];
	uint64_t gpa;
	int lfd, fd;
	bool reset = false;

	snprintf(p, sizeof(p), "%s_5002", path);
	lfd = host_listen(p);
	rx_add(8);
	tx(&(struct pkt){.op = VIRTIO_VSOCK_OP_REQUEST, .src_port = 779, .dst_port = 5002});
	rx_expect(&h, NULL, VIRTIO_VSOCK_OP_RESPONSE);
	fd = accept(lfd, NULL, NULL); /* and never read from */
	gpa = vq_fake_alloc(&txf, VIRTIO_VSOCK_MAX_PKT);
	/* The host socket fills, then our buffer: the guest ignores its credit. */
	for (int i = 0; i < 200 && !reset; i++) {
		struct virtio_vsock_hdr ph = hdr_of(&(struct pkt){.op = VIRTIO_VSOCK_OP_RW,
								  .src_port = 779,
								  .dst_port = 5002,
								  .len = VIRTIO_VSOCK_MAX_PKT});

		s[0] = (struct vq_fake_seg){.data = &ph, .len = HDR};
		s[1] = (struct vq_fake_seg){.len = VIRTIO_VSOCK_MAX_PKT, .gpa = gpa};
		vq_fake_add_chain(&txf, s, 2);
		d->ops->queue_notify(d, VIRTIO_VSOCK_Q_TX);
		rx_add(1);
		while (rx_get(&h, NULL, 0))
			reset |= h.op == VIRTIO_VSOCK_OP_RST;
	}
	cr_assert(reset, "a guest writing past its credit was never reset");
	cr_assert_eq(stats().conns, 0);
	close(fd);
	close(lfd);
}

struct reader {
	int fd;
	size_t total, got;
	bool ok;
};

static void *reader_thread(void *arg)
{
	struct reader *r = arg;
	uint8_t buf[8192];

	r->ok = true;
	while (r->got < r->total) {
		ssize_t n = read(r->fd, buf, sizeof(buf));

		if (n <= 0)
			break;
		for (ssize_t i = 0; i < n; i++)
			r->ok &= buf[i] == (uint8_t)((r->got + (size_t)i) % 251);
		r->got += (size_t)n;
		if (r->got % 65536 < (size_t)n)
			sleep_ms(2); /* a slow host reader */
	}
	return NULL;
}

/* A guest that keeps to its credit moves any amount without a reset or a stall. */
Test(vsock, guest_within_credit_streams_without_reset)
{
	static uint8_t data[VIRTIO_VSOCK_MAX_PKT * 2];
	struct reader rd = {.total = 2u << 20};
	uint32_t sent = 0, peer_fwd = 0, peer_alloc;
	struct virtio_vsock_hdr h;
	struct vq_fake_seg s[2];
	pthread_t th;
	uint64_t gpa;
	char p[160];
	int lfd;

	snprintf(p, sizeof(p), "%s_5003", path);
	lfd = host_listen(p);
	rx_add(200);
	tx(&(struct pkt){.op = VIRTIO_VSOCK_OP_REQUEST, .src_port = 780, .dst_port = 5003});
	rx_expect(&h, NULL, VIRTIO_VSOCK_OP_RESPONSE);
	peer_alloc = h.buf_alloc;
	rd.fd = accept(lfd, NULL, NULL);
	cr_assert_eq(pthread_create(&th, NULL, reader_thread, &rd), 0);
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i % 251);
	gpa = vq_fake_alloc(&txf, sizeof(data));
	memcpy(vq_fake_ptr(&txf, gpa, sizeof(data)), data, sizeof(data));
	while (sent < rd.total) {
		uint32_t credit = peer_alloc - (sent - peer_fwd), n = 32768;
		struct virtio_vsock_hdr ph;

		if (n > credit)
			n = credit;
		if (n > rd.total - sent)
			n = (uint32_t)rd.total - sent;
		if (!n) {
			cr_assert(rx_get(&h, NULL, 5000), "stalled at %u bytes: no credit update",
				  sent);
			cr_assert_neq(h.op, VIRTIO_VSOCK_OP_RST);
			peer_fwd = h.fwd_cnt;
			rx_add(1);
			continue;
		}
		ph = hdr_of(&(struct pkt){
		    .op = VIRTIO_VSOCK_OP_RW, .src_port = 780, .dst_port = 5003, .len = n});
		s[0] = (struct vq_fake_seg){.data = &ph, .len = HDR};
		s[1] = (struct vq_fake_seg){.len = n, .gpa = gpa + sent % 251};
		vq_fake_add_chain(&txf, s, 2);
		d->ops->queue_notify(d, VIRTIO_VSOCK_Q_TX);
		sent += n;
		while (rx_get(&h, NULL, 0)) {
			cr_assert_neq(h.op, VIRTIO_VSOCK_OP_RST, "honest guest reset at %u", sent);
			peer_fwd = h.fwd_cnt;
			rx_add(1);
		}
	}
	pthread_join(th, NULL);
	cr_assert_eq(rd.got, rd.total);
	cr_assert(rd.ok, "bytes arrived corrupted or out of order");
	close(rd.fd);
	close(lfd);
}

Test(vsock, hostile_headers)
{
	struct virtio_vsock_hdr h, bad;
	uint8_t short_hdr[20] = {0};

	/* Spoofed source CID, or not addressed to the host: dropped without a word. */
	bad = hdr_of(&(struct pkt){.op = VIRTIO_VSOCK_OP_REQUEST, .src_port = 1, .dst_port = 2});
	bad.src_cid = 4;
	tx_raw(&bad, NULL, 0);
	bad.src_cid = CID;
	bad.dst_cid = 7;
	tx_raw(&bad, NULL, 0);
	/* len beyond what the chain holds. */
	bad = hdr_of(&(struct pkt){.op = VIRTIO_VSOCK_OP_RW, .src_port = 1, .dst_port = 2});
	bad.len = 1000;
	tx_raw(&bad, "xx", 2);
	/* Shorter than a header. */
	{
		struct vq_fake_seg s = {.data = short_hdr, .len = sizeof(short_hdr)};

		vq_fake_add_chain(&txf, &s, 1);
		d->ops->queue_notify(d, VIRTIO_VSOCK_Q_TX);
	}
	rx_add(8);
	rx_expect_none();
	cr_assert_geq(stats().tx_dropped, 4);

	/* Unknown op, unknown type, data for no connection: reset. */
	bad = hdr_of(&(struct pkt){.op = 99, .src_port = 10, .dst_port = 20});
	tx_raw(&bad, NULL, 0);
	rx_expect(&h, NULL, VIRTIO_VSOCK_OP_RST);
	cr_assert_eq(h.src_port, 20);
	cr_assert_eq(h.dst_port, 10);
	bad = hdr_of(&(struct pkt){.op = VIRTIO_VSOCK_OP_REQUEST, .src_port = 11, .dst_port = 21});
	bad.type = 2; /* SEQPACKET */
	tx_raw(&bad, NULL, 0);
	rx_expect(&h, NULL, VIRTIO_VSOCK_OP_RST);
	cr_assert_eq(h.dst_port, 11);
	tx(&(struct pkt){
	    .op = VIRTIO_VSOCK_OP_RW, .src_port = 12, .dst_port = 22, .data = "data", .len = 4});
	rx_expect(&h, NULL, VIRTIO_VSOCK_OP_RST);
	cr_assert_eq(h.dst_port, 12);
	/* An RST for nothing gets no answer. */
	tx(&(struct pkt){.op = VIRTIO_VSOCK_OP_RST, .src_port = 13, .dst_port = 23});
	rx_expect_none();

	/* Every tx chain went back to the guest. */
	cr_assert_eq(vq_fake_used_idx(&txf), txf.avail_idx);

	cr_assert_null(broken);
}

Test(vsock, rx_buffer_smaller_than_header_is_returned_empty)
{
	struct vq_fake_seg small = {.len = 16, .write = true};
	struct virtio_vsock_hdr h;
	uint32_t id, len;
	uint16_t small_head;

	small_head = vq_fake_add_chain(&rxf, &small, 1);
	rx_add(1);
	tx(&(struct pkt){.op = 99, .src_port = 14, .dst_port = 24});
	for (int t = 0; vq_fake_used_idx(&rxf) < 2 && t < 2000; t++)
		sleep_ms(1);
	vq_fake_used(&rxf, 0, &id, &len);
	cr_assert_eq(id, small_head);
	cr_assert_eq(len, 0);
	rx_seen++;
	rx_expect(&h, NULL, VIRTIO_VSOCK_OP_RST);
	cr_assert_eq(h.dst_port, 14);
	cr_assert_null(broken);
}

Test(vsock, broken_tx_ring_marks_device_broken)
{
	vq_fake_set_avail_idx(&txf, 1000);
	d->ops->queue_notify(d, VIRTIO_VSOCK_Q_TX);
	cr_assert_not_null(broken);
}

Test(vsock, reset_closes_connections)
{
	uint32_t hport;
	int fd;

	rx_add(8);
	fd = host_to_guest(65536, &hport);
	d->ops->reset(d);
	host_expect_eof(fd);
	close(fd);
	cr_assert_eq(stats().conns, 0);
}

Test(vsock, config_space_holds_cid)
{
	uint64_t cid = 0;

	d->ops->config_read(d, 0, (uint8_t *)&cid, 8);
	cr_assert_eq(cid, CID);
	cr_assert_eq(d->ops->type, VIRTIO_ID_VSOCK);
	cr_assert_eq(d->num_queues, 3);
}

/* ---- configuration (no device needed) ---- */

static void expect_parse_error(const char *arg, const char *needle)
{
	struct virtio_vsock_config cfg;
	char err[512] = "";

	cr_assert_eq(virtio_vsock_parse(arg, &cfg, err, sizeof(err)), -EINVAL, "%s accepted", arg);
	cr_assert_not_null(strstr(err, needle), "'%s': message '%s' lacks '%s'", arg, err, needle);
}

Test(vsock_config, parse)
{
	struct virtio_vsock_config cfg;
	char err[512], longp[200];

	cr_assert_eq(virtio_vsock_parse("cid=3,uds=/tmp/x.sock", &cfg, err, sizeof(err)), 0, "%s",
		     err);
	cr_assert_eq(cfg.guest_cid, 3);
	cr_assert_str_eq(cfg.uds, "/tmp/x.sock");
	cr_assert_eq(virtio_vsock_parse("uds=rel.sock,cid=4294967294", &cfg, err, sizeof(err)), 0,
		     "%s", err);

	expect_parse_error("cid=2,uds=/tmp/x", "cid=2: must be 3 or more");
	expect_parse_error("cid=0,uds=/tmp/x", "cid=0: must be 3 or more");
	expect_parse_error("cid=4294967295,uds=/tmp/x", "cid=4294967295: must be below");
	expect_parse_error("cid=-5,uds=/tmp/x", "cid=-5: not a number");
	expect_parse_error("cid=3", "uds=PATH is required");
	expect_parse_error("uds=/tmp/x", "cid=N is required");
	expect_parse_error("cid=3,uds=", "uds=: empty");
	expect_parse_error("cid=3,uds=/nonexistent-dir/x", "directory /nonexistent-dir does not");
	expect_parse_error("cid=3,uds=/tmp/x,port=5", "unknown option 'port=5'");
	expect_parse_error("cid=3,cid=4,uds=/tmp/x", "cid given twice");
	memset(longp, 'a', sizeof(longp));
	memcpy(longp, "cid=3,uds=/tmp/", 15);
	longp[sizeof(longp) - 1] = '\0';
	expect_parse_error(longp, "path longer than 107 bytes");
}

static void make_dir(char *d_, size_t n)
{
	snprintf(d_, n, "/tmp/ember-vsock-XXXXXX");
	cr_assert_not_null(mkdtemp(d_));
}

Test(vsock_config, stale_socket_replaced_live_one_refused)
{
	struct virtio_vsock_config cfg = {.guest_cid = 3};
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct virtio_device *dev;
	char tdir[64], err[512];
	struct stat st;
	int fd;

	make_dir(tdir, sizeof(tdir));
	snprintf(cfg.uds, sizeof(cfg.uds), "%s/s", tdir);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", cfg.uds);

	/* Bound, then closed: a stale socket file. */
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	cr_assert_eq(virtio_vsock_create(&cfg, &dev, err, sizeof(err)), 0, "%s", err);

	/* A second device on the same live path is refused. */
	cr_assert_eq(virtio_vsock_create(&cfg, &(struct virtio_device *){NULL}, err, sizeof(err)),
		     -EADDRINUSE);
	cr_assert_not_null(strstr(err, "in use"), "%s", err);
	virtio_vsock_destroy(dev);
	cr_assert_neq(stat(cfg.uds, &st), 0, "destroy leaves the socket file");

	/* A regular file is never removed. */
	fd = open(cfg.uds, O_CREAT | O_WRONLY, 0600);
	close(fd);
	cr_assert_eq(virtio_vsock_create(&cfg, &dev, err, sizeof(err)), -EEXIST);
	cr_assert_not_null(strstr(err, "not a socket"), "%s", err);
	cr_assert_eq(stat(cfg.uds, &st), 0);
	unlink(cfg.uds);
	rmdir(tdir);
}
