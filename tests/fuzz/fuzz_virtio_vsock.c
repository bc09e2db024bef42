/*
 * libFuzzer target: virtio-vsock packet decoding and the connection state
 * machine. The input is a sequence of operations: guest packets (a 44-byte
 * header and payload from the input, optionally with the addressing fixed
 * up so they reach the connection logic, split over descriptors), receive
 * buffers, kicks, resets, and host-side moves on real unix sockets: a host
 * program listening on PATH_1 (accepts, writes, closes) and host clients
 * on PATH (CONNECT lines, data, closes). Socket readiness is delivered by
 * polling the device's event loop (not started) from here, so a run is
 * one thread. Checks that nothing crashes and that the device never
 * writes more into a receive chain than it offered.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "vmm/event.h"
#include "vmm/virtio/vsock.h"

#define RAM_SIZE (512u << 10)
#define QSIZE 16
#define BUF_BASE 0x4000
#define CID 3
#define NHOST 8

struct ring {
	uint64_t desc, avail, used;
	uint16_t avail_idx, next_desc;
	uint32_t in_len[QSIZE];
};

struct env {
	uint8_t *ram;
	struct guest_mem mem;
	struct ring rx, tx, ev;
	uint64_t alloc;
	struct event_loop el;
	struct virtio_device *d;
	char path[108];
	int port1; /* host program listening on PATH_1 */
	int host[NHOST];
	struct virtio_vsock_hdr last_req; /* the last REQUEST the device sent the guest */
};

static void no_signal(struct virtio_device *d, uint16_t q)
{
	(void)d;
	(void)q;
}

static void no_broken(struct virtio_device *d, const char *why)
{
	(void)d;
	(void)why;
}

static void put16(struct env *e, uint64_t gpa, uint16_t v)
{
	__atomic_store_n((uint16_t *)(e->ram + gpa), v, __ATOMIC_RELEASE);
}

static uint64_t buf_alloc(struct env *e, uint32_t len)
{
	if (len > RAM_SIZE - BUF_BASE)
		len = RAM_SIZE - BUF_BASE;
	if (e->alloc + len > RAM_SIZE)
		e->alloc = BUF_BASE;
	e->alloc += len;
	return e->alloc - len;
}

struct seg {
	uint32_t len;
	bool write;
	const uint8_t *data;
};

/* Chains take blocks of 4 descriptors, so a later chain replaces a whole earlier one. */
static void add_chain(struct env *e, struct ring *r, const struct seg *s, unsigned int n)
{
	uint16_t head = r->next_desc;
	uint32_t in = 0;

	for (unsigned int k = 0; k < n; k++) {
		uint16_t i = (uint16_t)(head + k), next = (uint16_t)(i + 1);
		uint64_t addr = buf_alloc(e, s[k].len);
		uint32_t len = s[k].len;
		uint16_t flags = (s[k].write ? 2 : 0) | (k + 1 < n ? 1 : 0);
		uint8_t *dp = e->ram + r->desc + 16 * i;

		if (s[k].data)
			memcpy(e->ram + addr, s[k].data, len);
		memcpy(dp, &addr, 8);
		memcpy(dp + 8, &len, 4);
		memcpy(dp + 12, &flags, 2);
		memcpy(dp + 14, &next, 2);
		if (s[k].write)
			in += len;
	}
	r->in_len[head] = in;
	r->next_desc = (uint16_t)((head + 4) % QSIZE);
	put16(e, r->avail + 4 + 2 * (r->avail_idx % QSIZE), head);
	put16(e, r->avail + 2, ++r->avail_idx);
}

static void queue_setup(struct env *e, int qi, struct ring *r, uint64_t base)
{
	struct virtq *q = &e->d->queues[qi];

	*r = (struct ring){.desc = base, .avail = base + 0x400, .used = base + 0x800};
	memset(e->ram + base, 0, 0x1000);
	*q = (struct virtq){.size = QSIZE,
			    .mem = &e->mem,
			    .desc_gpa = r->desc,
			    .avail_gpa = r->avail,
			    .used_gpa = r->used,
			    .ready = true};
	virtq_reset(q);
}

static void setup_all(struct env *e)
{
	queue_setup(e, VIRTIO_VSOCK_Q_RX, &e->rx, 0);
	queue_setup(e, VIRTIO_VSOCK_Q_TX, &e->tx, 0x1000);
	queue_setup(e, VIRTIO_VSOCK_Q_EVENT, &e->ev, 0x2000);
	e->d->driver_features = 1ull << VIRTIO_F_VERSION_1;
	e->d->ops->activate(e->d);
}

/* Reads back the header in rx chain `id` (one descriptor: head's buffer). */
static void read_packet(struct env *e, struct ring *r, uint32_t id)
{
	struct virtio_vsock_hdr h;
	uint64_t addr;

	memcpy(&addr, e->ram + r->desc + 16 * id, 8);
	if (addr > RAM_SIZE - sizeof(h))
		return;
	memcpy(&h, e->ram + addr, sizeof(h));
	if (h.op == VIRTIO_VSOCK_OP_REQUEST)
		e->last_req = h;
}

static void check_used(struct env *e, struct ring *r, uint16_t *seen)
{
	uint16_t idx = __atomic_load_n((uint16_t *)(e->ram + r->used + 2), __ATOMIC_ACQUIRE);

	for (; *seen != idx; (*seen)++) {
		uint32_t id, len;

		memcpy(&id, e->ram + r->used + 4 + 8 * (*seen % QSIZE), 4);
		memcpy(&len, e->ram + r->used + 8 + 8 * (*seen % QSIZE), 4);
		if (id >= QSIZE || len > r->in_len[id])
			abort();
		/* Only the rx ring's chains are writable: the rest never get here with len > 0. */
		if (len >= sizeof(struct virtio_vsock_hdr))
			read_packet(e, r, id);
	}
}

/* Runs the handlers of ready fds, as the event thread would (data: gen << 32 | fd). */
static void pump(struct env *e)
{
	struct epoll_event evs[16];
	int n = epoll_wait(e->el.epfd, evs, 16, 0);

	for (int i = 0; i < n; i++) {
		int fd = (int)(uint32_t)evs[i].data.u64;
		uint32_t gen = (uint32_t)(evs[i].data.u64 >> 32);
		struct event_handler *h;

		if (evs[i].data.u64 == UINT64_MAX || fd < 0 || (unsigned int)fd >= e->el.nslots)
			continue;
		h = e->el.slots[fd].h;
		if (h && e->el.slots[fd].gen == gen)
			h->fn(h->ctx, evs[i].events);
	}
}

static int host_connect(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		close(fd);
		return -1;
	}
	return fd;
}

static struct env *env_for_exit;

/* Leaves no socket files or directory behind. */
static void env_cleanup(void)
{
	struct env *e = env_for_exit;
	char p[128];

	virtio_vsock_destroy(e->d);
	close(e->port1);
	snprintf(p, sizeof(p), "%s_1", e->path);
	unlink(p);
	snprintf(p, sizeof(p), "%s", e->path);
	*strrchr(p, '/') = '\0';
	rmdir(p);
}

static void env_init(struct env *e)
{
	struct virtio_vsock_config cfg = {.guest_cid = CID};
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char dir[] = "/tmp/ember-fuzz-vsock-XXXXXX", err[256];

	e->ram = calloc(1, RAM_SIZE);
	if (!e->ram || !mkdtemp(dir) || event_loop_init(&e->el))
		abort();
	gmem_init_fake(&e->mem, &(struct gmem_region){.size = RAM_SIZE, .hva = e->ram}, 1);
	snprintf(e->path, sizeof(e->path), "%s/v", dir);
	snprintf(cfg.uds, sizeof(cfg.uds), "%s", e->path);
	if (virtio_vsock_create(&cfg, &e->d, err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		abort();
	}
	e->d->events = &e->el;
	e->d->signal_used = no_signal;
	e->d->set_broken = no_broken;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s_1", e->path);
	e->port1 = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (e->port1 < 0 || bind(e->port1, (struct sockaddr *)&sa, sizeof(sa)) ||
	    listen(e->port1, 64))
		abort();
	for (int i = 0; i < NHOST; i++)
		e->host[i] = -1;
	env_for_exit = e;
	atexit(env_cleanup);
}

/* A guest packet: header bytes from the input, optionally fixed up to reach a connection. */
static void guest_packet(struct env *e, uint8_t kind, const uint8_t *p, uint32_t len)
{
	uint8_t pkt[sizeof(struct virtio_vsock_hdr) + 512];
	struct virtio_vsock_hdr h;
	struct seg s[3];
	uint32_t cut, n = 0;

	if (len > sizeof(pkt))
		len = sizeof(pkt);
	memset(pkt, 0, sizeof(pkt));
	memcpy(pkt, p, len);
	if ((kind & 0x80) && len >= sizeof(h)) {
		memcpy(&h, pkt, sizeof(h));
		h.src_cid = CID;
		h.dst_cid = VSOCK_HOST_CID;
		h.type = VIRTIO_VSOCK_TYPE_STREAM;
		h.len = len - (uint32_t)sizeof(h);
		h.op = (uint16_t)(h.op % 8);
		/*
		 * Ports from small sets, so packets meet connections: to
		 * PATH_1 (listening) or PATH_2 (nobody), or to the host ports
		 * handed to host clients (their CONNECT names guest ports 0-3).
		 */
		if (kind & 0x40) {
			h.dst_port = 1 + (h.dst_port & 1);
			h.src_port = 1000 + h.src_port % 4;
		} else {
			h.dst_port = VIRTIO_VSOCK_HOST_PORT_BASE + h.dst_port % 8;
			h.src_port %= 4;
		}
		memcpy(pkt, &h, sizeof(h));
	}
	cut = len ? (uint32_t)(kind >> 2 & 0xf) * len / 16 : 0;
	s[n++] = (struct seg){.len = cut, .data = pkt};
	s[n++] = (struct seg){.len = len - cut, .data = pkt + cut};
	if ((kind & 0x20) && !(kind & 0x80))
		s[n++] = (struct seg){.len = 16, .write = true};
	add_chain(e, &e->tx, s, n);
	e->d->ops->queue_notify(e->d, VIRTIO_VSOCK_Q_TX);
}

static void host_move(struct env *e, uint8_t kind, const uint8_t *p, uint32_t len)
{
	int *fd = &e->host[(kind >> 3) % NHOST];
	char buf[512];

	switch ((kind >> 6) & 3) {
	case 0: /* a new host-side socket: a client of PATH, or the program on PATH_1 */
		if (*fd >= 0)
			close(*fd);
		*fd = (kind & 4) ? accept4(e->port1, NULL, NULL, SOCK_NONBLOCK)
				 : host_connect(e->path);
		if (*fd >= 0 && !(kind & 4) && len) {
			int n = snprintf(buf, sizeof(buf), "CONNECT %u\n", p[0] % 4);

			(void)!send(*fd, buf, (size_t)n, MSG_NOSIGNAL);
		}
		break;
	case 1:
		if (*fd >= 0)
			(void)!send(*fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		break;
	case 2:
		if (*fd >= 0)
			while (recv(*fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
				;
		break;
	case 3:
		if (*fd >= 0 && (kind & 4))
			shutdown(*fd, SHUT_WR);
		else if (*fd >= 0) {
			close(*fd);
			*fd = -1;
		}
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct env e;
	uint16_t seen_rx = 0;

	if (!e.ram)
		env_init(&e);
	e.alloc = BUF_BASE;
	memset(&e.last_req, 0, sizeof(e.last_req));
	setup_all(&e);

	while (size >= 3) {
		uint8_t kind = data[1];
		uint32_t len = data[2];
		const uint8_t *p = data + 3;

		data += 3;
		size -= 3;
		if (len > size)
			len = (uint32_t)size;
		switch (data[-3] % 7) {
		case 0:
			guest_packet(&e, kind, p, len);
			data += len;
			size -= len;
			break;
		case 1: {
			struct seg s = {.len = len * 16 + (kind & 63), .write = !(kind & 0x80)};

			add_chain(&e, &e.rx, &s, 1);
			break;
		}
		case 2:
			e.d->ops->queue_notify(e.d, kind % 3);
			break;
		case 3:
			host_move(&e, kind, p, len);
			data += len;
			size -= len;
			break;
		case 4:
			pump(&e);
			break;
		case 5:
			e.d->ops->reset(e.d);
			setup_all(&e);
			seen_rx = 0;
			break;
		case 6: { /* the guest answers the last REQUEST: accept or refuse */
			struct virtio_vsock_hdr h = {
			    .src_cid = CID,
			    .dst_cid = VSOCK_HOST_CID,
			    .src_port = e.last_req.dst_port,
			    .dst_port = e.last_req.src_port,
			    .type = VIRTIO_VSOCK_TYPE_STREAM,
			    .op = (kind & 1) ? VIRTIO_VSOCK_OP_RST : VIRTIO_VSOCK_OP_RESPONSE,
			    .buf_alloc = (uint32_t)kind << 8,
			};
			struct seg sg = {.len = sizeof(h), .data = (const uint8_t *)&h};

			add_chain(&e, &e.tx, &sg, 1);
			e.d->ops->queue_notify(e.d, VIRTIO_VSOCK_Q_TX);
			break;
		}
		}
		check_used(&e, &e.rx, &seen_rx);
	}
	pump(&e);
	for (int i = 0; i < NHOST; i++) {
		if (e.host[i] >= 0)
			close(e.host[i]);
		e.host[i] = -1;
	}
	/* Host programs' connections left in the PATH_1 backlog. */
	for (int fd; (fd = accept4(e.port1, NULL, NULL, SOCK_NONBLOCK)) >= 0;)
		close(fd);
	/* Clients still in PATH's backlog: accepted, then closed by the reset. */
	setup_all(&e);
	for (int i = 0; i < 5; i++)
		pump(&e);
	e.d->ops->reset(e.d);
	return 0;
}
