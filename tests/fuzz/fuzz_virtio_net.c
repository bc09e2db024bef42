/*
 * libFuzzer target: virtio-net header handling on both paths. The input is
 * a feature byte and a sequence of operations: transmit chains (header and
 * frame bytes from the input, split over 1-3 descriptors, sometimes with a
 * writable one), receive buffers of fuzzer-chosen sizes, frames "from the
 * TAP" (a SOCK_SEQPACKET socket standing in for it) with fuzzer-made vnet
 * headers, kicks and resets. The rings themselves are well formed (the
 * virtqueue walk has its own fuzzer); what is fuzzed is what the device
 * makes of the packets. Also checks: a frame the device sent to the TAP
 * passed virtio_net_tx_check, and a chain was never used for more bytes
 * than it offered.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vmm/virtio/net.h"

#define RAM_SIZE (512u << 10)
#define QSIZE 16
#define BUF_BASE 0x4000

struct ring {
	uint64_t desc, avail, used;
	uint16_t avail_idx, next_desc;
	uint32_t in_len[QSIZE]; /* writable bytes offered by the chain at each head */
};

struct env {
	uint8_t *ram;
	struct guest_mem mem;
	struct ring rx, tx;
	uint64_t alloc;
	uint64_t features;
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

/* Buffer space: a bump allocator that wraps (old buffers are reused). */
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

static void add_chain(struct env *e, struct ring *r, const struct seg *s, unsigned int n)
{
	uint16_t head = r->next_desc;
	uint32_t in = 0;

	for (unsigned int k = 0; k < n; k++) {
		uint16_t i = (uint16_t)((head + k) % QSIZE);
		uint64_t gpa = buf_alloc(e, s[k].len), addr = gpa;
		uint32_t len = s[k].len;
		uint16_t flags = (s[k].write ? 2 : 0) | (k + 1 < n ? 1 : 0);
		uint16_t next = (uint16_t)((i + 1) % QSIZE);
		uint8_t *dp = e->ram + r->desc + 16 * i;

		if (s[k].data)
			memcpy(e->ram + gpa, s[k].data, len);
		memcpy(dp, &addr, 8);
		memcpy(dp + 8, &len, 4);
		memcpy(dp + 12, &flags, 2);
		memcpy(dp + 14, &next, 2);
		if (s[k].write)
			in += len;
	}
	r->in_len[head] = in;
	/* Blocks of 4 descriptors: a later chain replaces a whole earlier one. */
	r->next_desc = (uint16_t)((head + 4) % QSIZE);
	put16(e, r->avail + 4 + 2 * (r->avail_idx % QSIZE), head);
	put16(e, r->avail + 2, ++r->avail_idx);
}

static void queue_setup(struct env *e, struct virtio_device *d, int qi, struct ring *r,
			uint64_t base)
{
	struct virtq *q = &d->queues[qi];

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

static void setup_all(struct env *e, struct virtio_device *d)
{
	queue_setup(e, d, VIRTIO_NET_Q_RX, &e->rx, 0);
	queue_setup(e, d, VIRTIO_NET_Q_TX, &e->tx, 0x1000);
	d->driver_features = e->features;
	d->ops->activate(d);
}

/* Every used entry so far wrote no more than its chain could hold. */
static void check_used(struct env *e, struct ring *r, uint16_t *seen)
{
	uint16_t idx = __atomic_load_n((uint16_t *)(e->ram + r->used + 2), __ATOMIC_ACQUIRE);

	for (; *seen != idx; (*seen)++) {
		uint32_t id, len;

		memcpy(&id, e->ram + r->used + 4 + 8 * (*seen % QSIZE), 4);
		memcpy(&len, e->ram + r->used + 8 + 8 * (*seen % QSIZE), 4);
		if (id >= QSIZE || len > r->in_len[id])
			abort();
	}
}

/* What reached the TAP must be a frame the device had checked. */
static void drain_tap(struct env *e, int fd)
{
	static uint8_t buf[12 + VIRTIO_NET_MAX_FRAME + 16];
	struct virtio_net_hdr_v1 h;
	ssize_t n;

	while ((n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
		uint32_t hl = 12;

		memcpy(&h, buf, sizeof(h));
		if ((size_t)n < hl || virtio_net_tx_check(&h, (uint32_t)n - hl, e->features))
			abort();
	}
}

static uint64_t features_of(uint8_t f)
{
	static const int bits[8] = {VIRTIO_NET_F_CSUM,	     VIRTIO_NET_F_GUEST_CSUM,
				    VIRTIO_NET_F_GUEST_TSO4, VIRTIO_NET_F_HOST_TSO4,
				    VIRTIO_NET_F_MRG_RXBUF,  VIRTIO_NET_F_GUEST_UFO,
				    VIRTIO_NET_F_HOST_ECN,   VIRTIO_NET_F_HOST_UFO};
	uint64_t v = 1ull << VIRTIO_F_VERSION_1;

	for (int i = 0; i < 8; i++)
		if (f & (1u << i))
			v |= 1ull << bits[i];
	return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct env e;
	struct virtio_net_config_user cfg = {.tap = "fuzz", .has_mac = true, .mac = {2}};
	struct virtio_device *d;
	uint16_t seen_rx = 0, seen_tx = 0;
	char err[256];
	int sv[2];

	if (size < 1)
		return 0;
	if (!e.ram) {
		e.ram = calloc(1, RAM_SIZE);
		if (!e.ram)
			abort();
		gmem_init_fake(&e.mem, &(struct gmem_region){.size = RAM_SIZE, .hva = e.ram}, 1);
	}
	e.alloc = BUF_BASE;
	e.features = features_of(data[0]);
	data++;
	size--;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0, sv))
		abort();
	if (virtio_net_create_fd(sv[1], false, &cfg, &d, err, sizeof(err)))
		abort();
	d->signal_used = no_signal;
	d->set_broken = no_broken;
	setup_all(&e, d);

	/* Operations: kind, two length bytes, then (for some kinds) that many data bytes. */
	while (size >= 3) {
		uint8_t kind = data[0];
		uint32_t len = (uint32_t)data[1] | (uint32_t)data[2] << 8, cut;
		const uint8_t *p = data + 3;

		data += 3;
		size -= 3;
		switch (kind % 6) {
		case 0: { /* transmit chain from input bytes */
			struct seg s[4] = {0};
			unsigned int n = 0;

			if (len > size)
				len = (uint32_t)size;
			cut = len ? (kind >> 3) % (len + 1) : 0;
			s[n++] = (struct seg){.len = cut, .data = p};
			s[n++] = (struct seg){.len = len - cut, .data = p + cut};
			if (kind & 0x80)
				s[n++] = (struct seg){.len = 64, .write = true};
			if (kind & 0x40)
				s[n++] = (struct seg){.len = VIRTIO_NET_MAX_FRAME - len + 20};
			add_chain(&e, &e.tx, s, n);
			d->ops->queue_notify(d, VIRTIO_NET_Q_TX);
			data += len;
			size -= len;
			drain_tap(&e, sv[0]);
			break;
		}
		case 1: { /* receive buffer(s) of a chosen size */
			struct seg s[2] = {{.len = len, .write = !(kind & 0x80)},
					   {.len = (kind & 0x40) ? 65536 : 0, .write = true}};

			add_chain(&e, &e.rx, s, (kind & 0x40) ? 2 : 1);
			break;
		}
		case 2:
			d->ops->queue_notify(d, VIRTIO_NET_Q_RX);
			break;
		case 3: /* a frame from the TAP: header and frame from the input */
			if (len > size)
				len = (uint32_t)size;
			(void)!send(sv[0], p, len, MSG_DONTWAIT);
			data += len;
			size -= len;
			virtio_net_tap_ready(d);
			break;
		case 4:
			virtio_net_tap_ready(d);
			break;
		case 5:
			d->ops->reset(d);
			setup_all(&e, d);
			seen_rx = seen_tx = 0;
			break;
		}
		check_used(&e, &e.rx, &seen_rx);
		check_used(&e, &e.tx, &seen_tx);
	}
	virtio_net_destroy(d);
	close(sv[0]);
	return 0;
}
