#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "unit/virtq_fake.h"
#include "vmm/event.h"
#include "vmm/virtio/net.h"

/*
 * The device runs on a SOCK_SEQPACKET socket standing in for the TAP: one
 * message is one frame with its vnet header in front, as a TAP delivers.
 */
#define HDR 12

static struct vq_fake rxf, txf;
static struct event_loop el;
static struct virtio_device *d;
static int tap; /* our end of the fake TAP */
static int notified[2];
static const char *broken;

static void rec_signal(struct virtio_device *dev, uint16_t q)
{
	(void)dev;
	cr_assert_lt(q, 2);
	notified[q]++;
}

static void rec_broken(struct virtio_device *dev, const char *why)
{
	(void)dev;
	broken = why;
}

static uint64_t bit(unsigned int b)
{
	return 1ull << b;
}

#define FEAT_DEFAULT                                                                               \
	(bit(VIRTIO_F_VERSION_1) | bit(VIRTIO_NET_F_CSUM) | bit(VIRTIO_NET_F_GUEST_CSUM) |         \
	 bit(VIRTIO_NET_F_HOST_TSO4) | bit(VIRTIO_NET_F_MAC))

static void start(uint64_t features)
{
	struct virtio_net_config_user cfg = {.tap = "faketap"};
	char err[256];
	int sv[2];

	cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0, sv), 0);
	/* Room for a few 64 KiB frames in the socket. */
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &(int){1 << 20}, sizeof(int));
	setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &(int){1 << 20}, sizeof(int));
	tap = sv[0];
	cr_assert_eq(virtio_net_create_fd(sv[1], false, &cfg, &d, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(event_loop_init(&el), 0);
	vq_fake_init(&rxf, 16);
	vq_fake_init(&txf, 16);
	d->queues[VIRTIO_NET_Q_RX] = rxf.q;
	d->queues[VIRTIO_NET_Q_TX] = txf.q;
	d->events = &el;
	d->signal_used = rec_signal;
	d->set_broken = rec_broken;
	d->driver_features = features;
	cr_assert_eq(d->ops->activate(d), 0);
}

static void stop(void)
{
	if (!d)
		return;
	virtio_net_destroy(d);
	d = NULL;
	event_loop_destroy(&el);
	close(tap);
	vq_fake_free(&rxf);
	vq_fake_free(&txf);
}

TestSuite(virtio_net, .fini = stop);

/* A frame of `len` bytes: a made-up Ethernet header and a counting payload. */
static void make_frame(uint8_t *f, size_t len, uint8_t seed)
{
	for (size_t i = 0; i < len; i++)
		f[i] = (uint8_t)(seed + i * 7);
}

/* Whether the event loop would wake us for the TAP (it is readable and watched). */
static bool tap_watched(void)
{
	struct epoll_event ev[4];

	return epoll_wait(el.epfd, ev, 4, 0) > 0;
}

static void tap_send(const struct virtio_net_hdr_v1 *h, const uint8_t *frame, size_t len)
{
	uint8_t buf[HDR + VIRTIO_NET_MAX_FRAME];

	memcpy(buf, h, HDR);
	memcpy(buf + HDR, frame, len);
	cr_assert_eq(send(tap, buf, HDR + len, 0), (ssize_t)(HDR + len));
}

static ssize_t tap_recv(uint8_t *buf, size_t len)
{
	return recv(tap, buf, len, MSG_DONTWAIT);
}

static uint16_t add_rx(uint32_t len)
{
	struct vq_fake_seg s = {.len = len, .write = true};

	return vq_fake_add_chain(&rxf, &s, 1);
}

static struct virtio_net_stats stats(void)
{
	struct virtio_net_stats st;

	virtio_net_get_stats(d, &st);
	return st;
}

/* ---- transmit ---- */

Test(virtio_net, tx_frame_reaches_tap_with_its_header)
{
	struct virtio_net_hdr_v1 h = {
	    .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM, .csum_start = 34, .csum_offset = 16};
	uint8_t frame[100], got[256];
	struct vq_fake_seg s[] = {
	    {.data = &h, .len = 5}, /* the header split across descriptors too */
	    {.data = (uint8_t *)&h + 5, .len = HDR - 5},
	    {.data = frame, .len = 40},
	    {.data = frame + 40, .len = 60},
	};
	uint32_t id, len;
	uint16_t head;

	start(FEAT_DEFAULT);
	make_frame(frame, sizeof(frame), 1);
	head = vq_fake_add_chain(&txf, s, 4);
	d->ops->queue_notify(d, VIRTIO_NET_Q_TX);

	cr_assert_eq(tap_recv(got, sizeof(got)), HDR + 100);
	cr_assert_eq(memcmp(got, &h, HDR), 0);
	cr_assert_eq(memcmp(got + HDR, frame, 100), 0);
	cr_assert_eq(vq_fake_used_idx(&txf), 1);
	vq_fake_used(&txf, 0, &id, &len);
	cr_assert_eq(id, head);
	cr_assert_eq(len, 0);
	cr_assert_eq(notified[VIRTIO_NET_Q_TX], 1);
	cr_assert_eq(stats().tx_frames, 1);
}

Test(virtio_net, tx_gso_frame_passes_when_negotiated)
{
	struct virtio_net_hdr_v1 h = {.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
				      .gso_type = VIRTIO_NET_HDR_GSO_TCPV4,
				      .hdr_len = 54,
				      .gso_size = 1448,
				      .csum_start = 34,
				      .csum_offset = 16};
	static uint8_t frame[20000], got[HDR + 20000];
	struct vq_fake_seg s[] = {{.data = &h, .len = HDR}, {.data = frame, .len = sizeof(frame)}};

	start(FEAT_DEFAULT);
	make_frame(frame, sizeof(frame), 3);
	vq_fake_add_chain(&txf, s, 2);
	d->ops->queue_notify(d, VIRTIO_NET_Q_TX);
	cr_assert_eq(tap_recv(got, sizeof(got)), HDR + (ssize_t)sizeof(frame));
	cr_assert_eq(memcmp(got, &h, HDR), 0);
	cr_assert_eq(memcmp(got + HDR, frame, sizeof(frame)), 0);
}

/* Each hostile chain is returned and dropped; the good one behind it still goes out. */
static void expect_tx_dropped(const struct vq_fake_seg *bad, unsigned int n)
{
	struct virtio_net_hdr_v1 h = {0};
	uint8_t frame[60], got[256];
	struct vq_fake_seg good[] = {{.data = &h, .len = HDR}, {.data = frame, .len = 60}};

	make_frame(frame, sizeof(frame), 9);
	vq_fake_add_chain(&txf, bad, n);
	vq_fake_add_chain(&txf, good, 2);
	d->ops->queue_notify(d, VIRTIO_NET_Q_TX);
	cr_assert_eq(vq_fake_used_idx(&txf), 2);
	cr_assert_eq(tap_recv(got, sizeof(got)), HDR + 60, "only the good frame reaches the TAP");
	cr_assert_eq(memcmp(got + HDR, frame, 60), 0);
	cr_assert_eq(tap_recv(got, sizeof(got)), -1);
	cr_assert_eq(stats().tx_dropped, 1);
	cr_assert_null(broken);
}

Test(virtio_net, tx_chain_shorter_than_header_is_dropped)
{
	uint8_t h[8] = {0};
	struct vq_fake_seg s = {.data = h, .len = sizeof(h)};

	start(FEAT_DEFAULT);
	expect_tx_dropped(&s, 1);
}

Test(virtio_net, tx_chain_with_writable_buffer_is_dropped)
{
	struct virtio_net_hdr_v1 h = {0};
	uint8_t frame[60] = {0};
	struct vq_fake_seg s[] = {
	    {.data = &h, .len = HDR}, {.data = frame, .len = 60}, {.len = 64, .write = true}};

	start(FEAT_DEFAULT);
	expect_tx_dropped(s, 3);
}

Test(virtio_net, tx_oversize_frame_is_dropped)
{
	struct virtio_net_hdr_v1 h = {0};
	struct vq_fake_seg s[] = {{.data = &h, .len = HDR}, {.len = VIRTIO_NET_MAX_FRAME + 1}};

	start(FEAT_DEFAULT);
	expect_tx_dropped(s, 2);
}

Test(virtio_net, tx_gso_without_the_feature_is_dropped)
{
	struct virtio_net_hdr_v1 h = {.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
				      .gso_type =
					  VIRTIO_NET_HDR_GSO_TCPV6, /* HOST_TSO6 not negotiated */
				      .gso_size = 1400,
				      .csum_start = 54,
				      .csum_offset = 16};
	struct vq_fake_seg s[] = {{.data = &h, .len = HDR}, {.len = 3000}};

	start(FEAT_DEFAULT);
	expect_tx_dropped(s, 2);
}

Test(virtio_net, tx_checksum_offset_beyond_frame_is_dropped)
{
	struct virtio_net_hdr_v1 h = {
	    .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM, .csum_start = 50, .csum_offset = 16};
	struct vq_fake_seg s[] = {{.data = &h, .len = HDR}, {.len = 60}};

	start(FEAT_DEFAULT);
	expect_tx_dropped(s, 2);
}

Test(virtio_net, tx_broken_ring_marks_device_broken)
{
	start(FEAT_DEFAULT);
	vq_fake_set_avail_idx(&txf, 100); /* more than the queue size ahead */
	d->ops->queue_notify(d, VIRTIO_NET_Q_TX);
	cr_assert_not_null(broken);
}

/* ---- receive ---- */

Test(virtio_net, rx_frame_lands_in_guest_buffer)
{
	struct virtio_net_hdr_v1 h = {.flags = VIRTIO_NET_HDR_F_DATA_VALID}, got;
	uint8_t frame[200];
	uint32_t id, len;
	uint16_t head;
	uint8_t *buf;

	start(FEAT_DEFAULT);
	head = add_rx(HDR + 1514);
	make_frame(frame, sizeof(frame), 5);
	tap_send(&h, frame, sizeof(frame));
	virtio_net_tap_ready(d);

	cr_assert_eq(vq_fake_used_idx(&rxf), 1);
	vq_fake_used(&rxf, 0, &id, &len);
	cr_assert_eq(id, head);
	cr_assert_eq(len, HDR + 200);
	buf = vq_fake_ptr(&rxf, rxf.seg_gpa[0], HDR + 200);
	memcpy(&got, buf, HDR);
	cr_assert_eq(got.num_buffers, 1);
	cr_assert_eq(got.flags, VIRTIO_NET_HDR_F_DATA_VALID);
	cr_assert_eq(memcmp(buf + HDR, frame, 200), 0);
	cr_assert_eq(notified[VIRTIO_NET_Q_RX], 1);
}

Test(virtio_net, rx_big_buffer_is_filled_straight_from_tap)
{
	struct virtio_net_hdr_v1 h = {0}, got;
	static uint8_t frame[9000];
	struct vq_fake_seg s[] = {{.len = 4096, .write = true},
				  {.len = HDR + VIRTIO_NET_MAX_FRAME - 4096, .write = true}};
	uint32_t id, len;
	uint8_t *buf;

	start(FEAT_DEFAULT);
	vq_fake_add_chain(&rxf, s, 2);
	make_frame(frame, sizeof(frame), 11);
	tap_send(&h, frame, sizeof(frame));
	virtio_net_tap_ready(d);

	vq_fake_used(&rxf, 0, &id, &len);
	cr_assert_eq(vq_fake_used_idx(&rxf), 1);
	cr_assert_eq(len, HDR + sizeof(frame));
	buf = vq_fake_ptr(&rxf, rxf.seg_gpa[0], 4096);
	memcpy(&got, buf, HDR);
	cr_assert_eq(got.num_buffers, 1);
	cr_assert_eq(memcmp(buf + HDR, frame, 4096 - HDR), 0);
	buf = vq_fake_ptr(&rxf, rxf.seg_gpa[1], sizeof(frame));
	cr_assert_eq(memcmp(buf, frame + 4096 - HDR, sizeof(frame) - (4096 - HDR)), 0);
}

Test(virtio_net, rx_mergeable_frame_spans_buffers)
{
	struct virtio_net_hdr_v1 h = {0}, got;
	uint8_t frame[3000], all[HDR + 3000];
	uint64_t gpa[4];
	uint16_t heads[4];
	uint32_t off = 0;

	start(FEAT_DEFAULT | bit(VIRTIO_NET_F_MRG_RXBUF));
	for (int i = 0; i < 4; i++) {
		heads[i] = add_rx(1024);
		gpa[i] = rxf.seg_gpa[0];
	}
	make_frame(frame, sizeof(frame), 7);
	tap_send(&h, frame, sizeof(frame));
	virtio_net_tap_ready(d);

	/* 3012 bytes: 1024 + 1024 + 964, the fourth buffer left for later. */
	cr_assert_eq(vq_fake_used_idx(&rxf), 3);
	for (int i = 0; i < 3; i++) {
		uint32_t id, len;

		vq_fake_used(&rxf, (uint16_t)i, &id, &len);
		cr_assert_eq(id, heads[i]);
		cr_assert_eq(len, i < 2 ? 1024u : 964u);
		memcpy(all + off, vq_fake_ptr(&rxf, gpa[i], len), len);
		off += len;
	}
	memcpy(&got, all, HDR);
	cr_assert_eq(got.num_buffers, 3);
	cr_assert_eq(memcmp(all + HDR, frame, sizeof(frame)), 0);
	cr_assert_eq(notified[VIRTIO_NET_Q_RX], 1);
}

Test(virtio_net, rx_without_buffers_keeps_frame_until_kick)
{
	struct virtio_net_hdr_v1 h = {0};
	uint8_t frame[300], frame2[80];
	uint32_t id, len;

	start(FEAT_DEFAULT | bit(VIRTIO_NET_F_MRG_RXBUF));
	make_frame(frame, sizeof(frame), 13);
	make_frame(frame2, sizeof(frame2), 17);
	tap_send(&h, frame, sizeof(frame));
	tap_send(&h, frame2, sizeof(frame2));
	cr_assert(tap_watched());
	virtio_net_tap_ready(d);
	cr_assert_eq(vq_fake_used_idx(&rxf), 0);
	cr_assert_not(tap_watched(), "TAP still polled without receive buffers");

	/* Not enough for the frame yet (mergeable): still held. */
	add_rx(100);
	d->ops->queue_notify(d, VIRTIO_NET_Q_RX);
	cr_assert_eq(vq_fake_used_idx(&rxf), 0);
	cr_assert_not(tap_watched());

	add_rx(1024);
	add_rx(1024);
	d->ops->queue_notify(d, VIRTIO_NET_Q_RX);
	/* Frame 1 in the 100 + 1024 byte buffers, frame 2 in the third. */
	cr_assert_eq(vq_fake_used_idx(&rxf), 3);
	vq_fake_used(&rxf, 0, &id, &len);
	cr_assert_eq(len, 100);
	vq_fake_used(&rxf, 1, &id, &len);
	cr_assert_eq(len, HDR + 300 - 100);
	vq_fake_used(&rxf, 2, &id, &len);
	cr_assert_eq(len, HDR + 80);
	cr_assert_eq(
	    memcmp((uint8_t *)vq_fake_ptr(&rxf, rxf.seg_gpa[0], 80 + HDR) + HDR, frame2, 80), 0);
	cr_assert_eq(stats().rx_frames, 2);
	cr_assert_eq(stats().rx_dropped, 0);

	/* Buffers to spare again: the TAP is watched once more. */
	add_rx(1024);
	d->ops->queue_notify(d, VIRTIO_NET_Q_RX);
	tap_send(&h, frame2, sizeof(frame2));
	cr_assert(tap_watched());
}

Test(virtio_net, rx_buffer_without_writable_part_fails_only_itself)
{
	struct virtio_net_hdr_v1 h = {0};
	struct vq_fake_seg ro = {.len = 2048};
	uint8_t frame[100];
	uint32_t id, len;
	uint16_t bad, good;

	start(FEAT_DEFAULT);
	bad = vq_fake_add_chain(&rxf, &ro, 1);
	good = add_rx(2048);
	make_frame(frame, sizeof(frame), 19);
	tap_send(&h, frame, sizeof(frame));
	virtio_net_tap_ready(d);

	cr_assert_null(broken);
	cr_assert_eq(vq_fake_used_idx(&rxf), 2);
	vq_fake_used(&rxf, 0, &id, &len);
	cr_assert_eq(id, bad);
	cr_assert_eq(len, 0);
	vq_fake_used(&rxf, 1, &id, &len);
	cr_assert_eq(id, good);
	cr_assert_eq(len, HDR + 100);
}

Test(virtio_net, rx_frame_too_big_for_buffer_is_dropped_buffer_kept)
{
	struct virtio_net_hdr_v1 h = {0};
	uint8_t big[1000], small[50];
	uint32_t id, len;
	uint16_t head;

	start(FEAT_DEFAULT); /* no MRG_RXBUF: a frame must fit one buffer */
	head = add_rx(HDR + 500);
	make_frame(big, sizeof(big), 23);
	make_frame(small, sizeof(small), 29);
	tap_send(&h, big, sizeof(big));
	tap_send(&h, small, sizeof(small));
	virtio_net_tap_ready(d);

	cr_assert_eq(vq_fake_used_idx(&rxf), 1);
	vq_fake_used(&rxf, 0, &id, &len);
	cr_assert_eq(id, head);
	cr_assert_eq(len, HDR + 50);
	cr_assert_eq(stats().rx_dropped, 1);
	cr_assert_null(broken);
}

Test(virtio_net, rx_gso_frame_guest_did_not_accept_is_dropped)
{
	struct virtio_net_hdr_v1 gso = {.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
					.gso_type = VIRTIO_NET_HDR_GSO_TCPV4,
					.gso_size = 1448,
					.csum_start = 34,
					.csum_offset = 16};
	struct virtio_net_hdr_v1 plain = {0};
	uint8_t frame[3000];

	start(FEAT_DEFAULT); /* GUEST_TSO4 not negotiated */
	add_rx(HDR + 4000);
	make_frame(frame, sizeof(frame), 31);
	tap_send(&gso, frame, sizeof(frame));
	tap_send(&plain, frame, 1000);
	virtio_net_tap_ready(d);
	cr_assert_eq(vq_fake_used_idx(&rxf), 1);
	cr_assert_eq(stats().rx_dropped, 1);
	cr_assert_eq(stats().rx_frames, 1);
}

Test(virtio_net, rx_broken_ring_marks_device_broken)
{
	struct virtio_net_hdr_v1 h = {0};
	uint8_t frame[60] = {0};

	start(FEAT_DEFAULT);
	vq_fake_set_desc(&rxf, 0, 1ull << 40, 100, VIRTQ_DESC_F_WRITE, 0); /* outside RAM */
	vq_fake_publish(&rxf, 0);
	tap_send(&h, frame, sizeof(frame));
	virtio_net_tap_ready(d);
	cr_assert_not_null(broken);
	cr_assert_not(tap_watched());
}

Test(virtio_net, reset_stops_polling_and_drops_pending)
{
	struct virtio_net_hdr_v1 h = {0};
	uint8_t frame[60] = {0};

	start(FEAT_DEFAULT);
	tap_send(&h, frame, sizeof(frame));
	d->ops->reset(d);
	cr_assert_not(tap_watched());
	d->ops->queue_notify(d, VIRTIO_NET_Q_RX); /* ignored while reset */
	cr_assert_eq(vq_fake_used_idx(&rxf), 0);
}

/* ---- config ---- */

Test(virtio_net, config_space_has_mac_and_link_up)
{
	struct virtio_net_config_user cfg;
	struct virtio_net_config c;
	char err[256];
	int sv[2];

	cr_assert_eq(virtio_net_parse("tap=t0,mac=52:54:00:AB:cd:01", &cfg, err, sizeof(err)), 0,
		     "%s", err);
	cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0, sv), 0);
	cr_assert_eq(virtio_net_create_fd(sv[1], false, &cfg, &d, err, sizeof(err)), 0);
	cr_assert_eq(d->ops->type, VIRTIO_ID_NET);
	cr_assert_eq(d->num_queues, 2);
	cr_assert(d->device_features & bit(VIRTIO_NET_F_MRG_RXBUF));
	cr_assert(d->device_features & bit(VIRTIO_NET_F_MAC));
	d->ops->config_read(d, 0, (uint8_t *)&c, sizeof(c));
	cr_assert_eq(memcmp(c.mac, (uint8_t[]){0x52, 0x54, 0x00, 0xab, 0xcd, 0x01}, 6), 0);
	cr_assert_eq(c.status, VIRTIO_NET_S_LINK_UP);
	cr_assert_eq(c.max_virtqueue_pairs, 1);
	virtio_net_destroy(d);
	d = NULL;
	close(sv[0]);
}

Test(virtio_net, random_mac_is_local_unicast)
{
	struct virtio_net_config_user cfg = {.tap = "t0"};
	uint8_t mac1[6], mac2[6];
	struct virtio_device *d2;
	char err[256];
	int sv[2];

	cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	cr_assert_eq(virtio_net_create_fd(sv[0], false, &cfg, &d, err, sizeof(err)), 0);
	cr_assert_eq(virtio_net_create_fd(sv[1], false, &cfg, &d2, err, sizeof(err)), 0);
	d->ops->config_read(d, 0, mac1, 6);
	d2->ops->config_read(d2, 0, mac2, 6);
	cr_assert_eq(mac1[0], 0x02);
	cr_assert_eq(mac2[0], 0x02);
	cr_assert_neq(memcmp(mac1, mac2, 6), 0);
	virtio_net_destroy(d2);
	virtio_net_destroy(d);
	d = NULL;
}

Test(virtio_net, parse_good)
{
	struct virtio_net_config_user cfg;
	char err[256];

	cr_assert_eq(virtio_net_parse("tap=tap0", &cfg, err, sizeof(err)), 0);
	cr_assert_str_eq(cfg.tap, "tap0");
	cr_assert_not(cfg.has_mac);
	cr_assert_eq(
	    virtio_net_parse("mac=02:00:00:00:00:01,tap=abcdefghijklmnop", &cfg, err, sizeof(err)),
	    -EINVAL, "16 characters is one too many");
	cr_assert_eq(
	    virtio_net_parse("mac=02:00:00:00:00:01,tap=abcdefghijklmno", &cfg, err, sizeof(err)),
	    0, "%s", err);
	cr_assert(cfg.has_mac);
	cr_assert_eq(cfg.mac[5], 1);
}

static void expect_parse_error(const char *arg, const char *needle)
{
	struct virtio_net_config_user cfg;
	char err[256] = "";

	cr_assert_eq(virtio_net_parse(arg, &cfg, err, sizeof(err)), -EINVAL, "%s accepted", arg);
	cr_assert_not_null(strstr(err, needle), "'%s': message '%s' lacks '%s'", arg, err, needle);
	cr_assert_null(strchr(err, '\n'));
}

Test(virtio_net, parse_bad)
{
	expect_parse_error("", "tap=NAME is required");
	expect_parse_error("mac=02:00:00:00:00:01", "tap=NAME is required");
	expect_parse_error("tap=", "tap=: empty");
	expect_parse_error("tap=a/b", "tap=a/b:");
	expect_parse_error("tap=a b", "tap=a b:");
	expect_parse_error("tap=x,tap=y", "tap given twice");
	expect_parse_error("tap=x,speed=10", "unknown option 'speed=10'");
	expect_parse_error("tap=x,mac=zz:00:00:00:00:01", "mac=zz:00:00:00:00:01: not a MAC");
	expect_parse_error("tap=x,mac=02:00:00:00:00", "not a MAC");
	expect_parse_error("tap=x,mac=02:00:00:00:00:01:02", "not a MAC");
	expect_parse_error("tap=x,mac=02-00-00-00-00-01", "not a MAC");
	expect_parse_error("tap=x,mac=2:0:0:0:0:1", "not a MAC");
	expect_parse_error("tap=x,mac=01:00:5e:00:00:01", "multicast");
	expect_parse_error("tap=x,mac=ff:ff:ff:ff:ff:ff", "multicast");
	expect_parse_error("tap=x,mac=00:00:00:00:00:00", "all-zero");
	expect_parse_error("tap=x,mac=02:00:00:00:00:01,mac=02:00:00:00:00:02", "mac given twice");
}
