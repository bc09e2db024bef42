/*
 * virtio-net action: broadcast an Ethernet frame of ethertype 0x88b5 (local
 * experimental) carrying "ember-guest <seed>", resending it every ~0.5 s,
 * until a frame of that ethertype comes back; print its payload.
 */
#include "guest.h"

#define NET_F_MAC 5
#define NET_HDR 12 /* struct virtio_net_hdr with num_buffers (VERSION_1) */
#define ETH_HDR 14
#define ETH_MIN 60
#define ETHERTYPE 0x88b5
#define RX_BUFS 8
#define RX_BUF_SIZE 2048
#define RESEND_CYCLES 1000000000ull
#define PAYLOAD_MAX 64

struct net {
	struct virtio_dev *v;
	uint8_t mac[6];
	uint8_t *rx; /* RX_BUFS buffers of RX_BUF_SIZE */
	uint8_t *tx;
	uint32_t tx_len;
};

static void build_frame(struct net *n, uint32_t seed)
{
	uint8_t *f = n->tx + NET_HDR;
	char payload[32] = "ember-guest ";
	unsigned int len = 12;
	char digits[12];
	int nd = 0;

	do
		digits[nd++] = (char)('0' + seed % 10);
	while ((seed /= 10) && nd < 11);
	while (nd)
		payload[len++] = digits[--nd];
	memset(n->tx, 0, NET_HDR + ETH_MIN);
	memset(f, 0xff, 6);
	memcpy(f + 6, n->mac, 6);
	f[12] = ETHERTYPE >> 8;
	f[13] = ETHERTYPE & 0xff;
	memcpy(f + ETH_HDR, payload, len);
	n->tx_len = NET_HDR + (ETH_HDR + len < ETH_MIN ? ETH_MIN : ETH_HDR + len);
	gprintf("guest: net %u send ember-guest %s\n", n->v->nth, payload + 12);
}

static bool send(struct net *n)
{
	struct vbuf b = {(uintptr_t)n->tx, n->tx_len, false};

	return virtq_xfer(&n->v->q[1], &b, 1, "net tx") >= 0;
}

/* A received frame: true (and printed) if it is ours. */
static bool rx_frame(struct net *n, const uint8_t *f, uint32_t len)
{
	char text[PAYLOAD_MAX + 1];
	unsigned int i = 0;

	if (len < ETH_HDR || (f[12] << 8 | f[13]) != ETHERTYPE)
		return false;
	for (; i < PAYLOAD_MAX && ETH_HDR + i < len && f[ETH_HDR + i]; i++) {
		uint8_t ch = f[ETH_HDR + i];

		text[i] = ch >= 0x20 && ch < 0x7f ? (char)ch : '.';
	}
	text[i] = '\0';
	gprintf("guest: net %u rx src=%02x:%02x:%02x:%02x:%02x:%02x payload=%s\n", n->v->nth, f[6],
		f[7], f[8], f[9], f[10], f[11], text);
	return true;
}

void virtio_net_run(struct virtio_ctx *c, struct virtio_dev *v)
{
	struct net n = {.v = v, .mac = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56}};
	uint64_t start, last;

	if (virtio_start(c, v, 1ull << NET_F_MAC, 2, 16))
		return;
	if (v->features >> NET_F_MAC & 1)
		for (unsigned int i = 0; i < 6; i++)
			n.mac[i] = *(volatile uint8_t *)phys(v->devcfg + i);
	gprintf("guest: net %u mac=%02x:%02x:%02x:%02x:%02x:%02x\n", v->nth, n.mac[0], n.mac[1],
		n.mac[2], n.mac[3], n.mac[4], n.mac[5]);
	n.rx = virtio_alloc(c, RX_BUFS * RX_BUF_SIZE);
	n.tx = virtio_alloc(c, RX_BUF_SIZE);
	if (!n.rx || !n.tx)
		return;
	for (unsigned int i = 0; i < RX_BUFS; i++) {
		struct vbuf b = {(uintptr_t)n.rx + i * RX_BUF_SIZE, RX_BUF_SIZE, true};

		virtq_add(&v->q[0], &b, 1); /* head i: one descriptor each */
	}
	build_frame(&n, c->seed);
	if (!send(&n))
		return;
	start = last = rdtsc();
	while (rdtsc() - start < VIRTIO_TIMEOUT) {
		uint32_t head, len;

		if (virtq_poll(&v->q[0], &head, &len)) {
			if (head >= RX_BUFS || len > RX_BUF_SIZE || len < NET_HDR) {
				gfail("virtio net rx used id %u len %u", head, len);
				return;
			}
			bool ours =
			    rx_frame(&n, n.rx + head * RX_BUF_SIZE + NET_HDR, len - NET_HDR);

			virtq_repost(&v->q[0], (uint16_t)head);
			if (ours)
				return;
		} else if (rdtsc() - last > RESEND_CYCLES) {
			last = rdtsc();
			if (!send(&n))
				return;
		} else {
			cpu_relax();
		}
	}
	gfail("virtio net %u: no frame of ethertype 0x%x came back", v->nth, ETHERTYPE);
}
