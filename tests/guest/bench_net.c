/*
 * bench-net action: on the first virtio-net device, sends bench-frames=N
 * full-size (1514-byte) Ethernet frames of ethertype 0x88b5 as fast as the
 * transmit queue takes them: every descriptor of the queue points at the
 * same frame (the device only reads it), each used one is reposted at
 * once, and one kick follows each batch. The host counts what arrives.
 */
#include "guest.h"

#define NET_F_MAC 5
#define NET_HDR 12 /* struct virtio_net_hdr with num_buffers (VERSION_1), all zero */
#define ETH_HDR 14
#define FRAME_LEN 1514 /* Ethernet header + 1500-byte MTU payload */
#define ETHERTYPE 0x88b5
#define QSIZE 256
#define Q_TX 1
#define DFLT_FRAMES 100000u

static void build_frame(uint8_t *buf, const uint8_t mac[6])
{
	static const char payload[] = "ember-bench";
	uint8_t *f = buf + NET_HDR;

	memset(buf, 0, NET_HDR + FRAME_LEN);
	memset(f, 0xff, 6);
	memcpy(f + 6, mac, 6);
	f[12] = ETHERTYPE >> 8;
	f[13] = ETHERTYPE & 0xff;
	memcpy(f + ETH_HDR, payload, sizeof(payload) - 1);
}

/* Keeps the ring full until `frames` have been used; false (gfail'd) on a stall. */
static bool send_all(struct virtq *q, uint64_t buf, uint64_t frames)
{
	const struct vbuf b = {buf, NET_HDR + FRAME_LEN, false};
	uint64_t posted = 0, done = 0, last;

	for (uint16_t i = 0; i < q->size && posted < frames; i++, posted++)
		virtq_post(q, i, &b, 1);
	virtq_notify(q);
	last = rdtsc();
	while (done < frames) {
		uint64_t before = done, reposted = posted;
		uint32_t head, len;

		while (virtq_poll(q, &head, &len)) {
			if (head >= q->size) {
				gfail("virtio net bench: used id %u beyond the queue", head);
				return false;
			}
			done++;
			if (posted < frames) {
				virtq_publish(q, (uint16_t)head);
				posted++;
			}
		}
		if (posted != reposted)
			virtq_notify(q);
		if (done != before) {
			last = rdtsc();
		} else if (rdtsc() - last > VIRTIO_TIMEOUT) {
			gfail("virtio net bench: transmit stalled after %lu of %lu frames", done,
			      frames);
			return false;
		} else {
			cpu_relax();
		}
	}
	return true;
}

void bench_net_run(struct virtio_ctx *c, struct virtio_dev *v)
{
	uint64_t frames = cmdline_num(c->bi->cmdline, "bench-frames=", DFLT_FRAMES);
	uint8_t mac[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
	uint8_t *buf;

	/* The receive queue stays empty: what the host sends is not wanted. */
	if (virtio_start(c, v, 1ull << NET_F_MAC, 2, QSIZE))
		return;
	if (v->features >> NET_F_MAC & 1)
		for (unsigned int i = 0; i < 6; i++)
			mac[i] = *(volatile uint8_t *)phys(v->devcfg + i);
	buf = virtio_alloc(c, NET_HDR + FRAME_LEN);
	if (!buf)
		return;
	build_frame(buf, mac);
	gprintf("guest: bench net mac=%02x:%02x:%02x:%02x:%02x:%02x frames=%lu len=%u\n", mac[0],
		mac[1], mac[2], mac[3], mac[4], mac[5], frames, FRAME_LEN);
	gprintf("guest: bench net start\n");
	if (frames && !send_all(&v->q[Q_TX], (uintptr_t)buf, frames))
		return;
	gprintf("guest: bench net done frames=%lu bytes=%lu\n", frames, frames * FRAME_LEN);
}
