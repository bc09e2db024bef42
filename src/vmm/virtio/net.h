/*
 * virtio-net (virtio 1.2, 5.1) on a TAP device: one receive and one
 * transmit queue, the TAP's vnet header passed through as the guest's
 * virtio_net_hdr (same layout), checksum and TSO/UFO offloads in both
 * directions, mergeable receive buffers.
 *
 * Threads: queue_notify and the TAP handler run on the event thread;
 * activate and reset may come from a vCPU thread. A device mutex orders
 * them (transport lock, then the device's); signal_used and set_broken are
 * called with it released.
 */
#ifndef EMBER_VMM_VIRTIO_NET_H
#define EMBER_VMM_VIRTIO_NET_H

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/virtio/device.h"

/* Device feature bits (5.1.3). */
#define VIRTIO_NET_F_CSUM 0
#define VIRTIO_NET_F_GUEST_CSUM 1
#define VIRTIO_NET_F_MTU 3
#define VIRTIO_NET_F_MAC 5
#define VIRTIO_NET_F_GUEST_TSO4 7
#define VIRTIO_NET_F_GUEST_TSO6 8
#define VIRTIO_NET_F_GUEST_ECN 9
#define VIRTIO_NET_F_GUEST_UFO 10
#define VIRTIO_NET_F_HOST_TSO4 11
#define VIRTIO_NET_F_HOST_TSO6 12
#define VIRTIO_NET_F_HOST_ECN 13
#define VIRTIO_NET_F_HOST_UFO 14
#define VIRTIO_NET_F_MRG_RXBUF 15
#define VIRTIO_NET_F_STATUS 16

#define VIRTIO_NET_S_LINK_UP 1

/* virtio_net_hdr flags and gso_type (5.1.6). */
#define VIRTIO_NET_HDR_F_NEEDS_CSUM 1
#define VIRTIO_NET_HDR_F_DATA_VALID 2
#define VIRTIO_NET_HDR_GSO_NONE 0
#define VIRTIO_NET_HDR_GSO_TCPV4 1
#define VIRTIO_NET_HDR_GSO_UDP 3
#define VIRTIO_NET_HDR_GSO_TCPV6 4
#define VIRTIO_NET_HDR_GSO_ECN 0x80

#define VIRTIO_NET_Q_RX 0
#define VIRTIO_NET_Q_TX 1
#define VIRTIO_NET_QUEUE_SIZE 256

/* Largest frame (without the header): 64 KiB GSO packet + Ethernet and VLAN headers. */
#define VIRTIO_NET_MAX_FRAME 65550
/* Largest frame without receive offloads: 1500 MTU + Ethernet, VLAN and FCS room. */
#define VIRTIO_NET_MAX_FRAME_NOGSO 1526

/* The header with VERSION_1 or MRG_RXBUF (12 bytes; 10 without num_buffers). */
struct virtio_net_hdr_v1 {
	uint8_t flags;
	uint8_t gso_type;
	uint16_t hdr_len;
	uint16_t gso_size;
	uint16_t csum_start;
	uint16_t csum_offset;
	uint16_t num_buffers;
};

/* Config space (5.1.4), little-endian. */
struct virtio_net_config {
	uint8_t mac[6];
	uint16_t status;
	uint16_t max_virtqueue_pairs;
} __attribute__((packed));

/* The user's --net options. */
struct virtio_net_config_user {
	char tap[IFNAMSIZ];
	uint8_t mac[6];
	bool has_mac;
};

/* Counters, read by tests and (later) metrics. */
struct virtio_net_stats {
	uint64_t tx_frames, tx_dropped;
	uint64_t rx_frames, rx_dropped;
};

/*
 * Parses "tap=NAME[,mac=MAC]". 0, or -EINVAL with one line in err naming the
 * flag, the field and the reason.
 */
int virtio_net_parse(const char *arg, struct virtio_net_config_user *cfg, char *err, size_t errlen);

/* Parses "aa:bb:cc:dd:ee:ff" (a unicast, non-zero MAC). 0, or -EINVAL with *why. */
int virtio_net_parse_mac(const char *s, uint8_t mac[6], const char **why);

/* Opens the TAP and makes the device; errors (one line in err) name the TAP. */
int virtio_net_create(const struct virtio_net_config_user *cfg, struct virtio_device **out,
		      char *err, size_t errlen);

/*
 * Makes the device on an fd that is already open (a TAP passed in by the
 * daemon, or in tests a SOCK_SEQPACKET socket standing in for one: then
 * is_tap is false and the TAP ioctls are skipped). The device owns fd.
 */
int virtio_net_create_fd(int fd, bool is_tap, const struct virtio_net_config_user *cfg,
			 struct virtio_device **out, char *err, size_t errlen);

/* Call after the event loop has stopped (or before it started). */
void virtio_net_destroy(struct virtio_device *d);

/* What the event loop calls when the TAP is readable (tests call it directly). */
void virtio_net_tap_ready(struct virtio_device *d);

void virtio_net_get_stats(struct virtio_device *d, struct virtio_net_stats *st);

/*
 * Checks a transmit header against the frame length (without the header)
 * and the negotiated features: 0, or -EINVAL when the TAP must not get it.
 */
int virtio_net_tx_check(const struct virtio_net_hdr_v1 *h, uint32_t frame_len, uint64_t features);

/*
 * Checks and fixes a received header for a guest with `features`: 0, or
 * -EINVAL when the frame is one the guest did not agree to take.
 */
int virtio_net_rx_fixup(struct virtio_net_hdr_v1 *h, uint32_t frame_len, uint64_t features);

#endif
