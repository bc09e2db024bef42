/*
 * virtio-vsock (virtio 1.2, 5.10) bridged to unix sockets the way
 * Firecracker does it:
 *
 * - host to guest: ember listens on PATH. A host program connects, writes
 *   "CONNECT <port>\n"; ember asks the guest (REQUEST to that port) and,
 *   once the guest accepts, answers "OK <host port>\n" and relays bytes
 *   both ways. If the guest refuses, the host socket is closed.
 * - guest to host: a guest connection to CID 2 port P is connected to the
 *   unix socket "PATH_P" (e.g. /run/vm.sock_52); nobody listening there
 *   means the guest gets a reset (ECONNRESET / ECONNREFUSED).
 *
 * Stream sockets only. Flow control follows the spec's credit scheme: we
 * never send the guest more than it has room for, and buffer at most
 * VIRTIO_VSOCK_CONN_BUF bytes per connection of what the guest sends
 * (what we advertise as buf_alloc); a guest that sends beyond its credit
 * has that connection reset.
 *
 * Threads: everything runs under the device mutex, on the event thread
 * (queue_notify, socket handlers) or a vCPU thread (activate, reset).
 * signal_used and set_broken are called with the mutex released.
 */
#ifndef EMBER_VMM_VIRTIO_VSOCK_H
#define EMBER_VMM_VIRTIO_VSOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/un.h>

#include "vmm/virtio/device.h"

#define VIRTIO_VSOCK_F_STREAM 0

#define VIRTIO_VSOCK_Q_RX 0
#define VIRTIO_VSOCK_Q_TX 1
#define VIRTIO_VSOCK_Q_EVENT 2
#define VIRTIO_VSOCK_QUEUE_SIZE 256

#define VSOCK_HOST_CID 2
#define VIRTIO_VSOCK_TYPE_STREAM 1

enum virtio_vsock_op {
	VIRTIO_VSOCK_OP_INVALID = 0,
	VIRTIO_VSOCK_OP_REQUEST = 1,
	VIRTIO_VSOCK_OP_RESPONSE = 2,
	VIRTIO_VSOCK_OP_RST = 3,
	VIRTIO_VSOCK_OP_SHUTDOWN = 4,
	VIRTIO_VSOCK_OP_RW = 5,
	VIRTIO_VSOCK_OP_CREDIT_UPDATE = 6,
	VIRTIO_VSOCK_OP_CREDIT_REQUEST = 7,
};

/* SHUTDOWN flags: the sender will receive / send no more. */
#define VIRTIO_VSOCK_SHUTDOWN_RCV 1
#define VIRTIO_VSOCK_SHUTDOWN_SEND 2

/* Packet header (5.10.6), little-endian, 44 bytes. */
struct virtio_vsock_hdr {
	uint64_t src_cid;
	uint64_t dst_cid;
	uint32_t src_port;
	uint32_t dst_port;
	uint32_t len;
	uint16_t type;
	uint16_t op;
	uint32_t flags;
	uint32_t buf_alloc;
	uint32_t fwd_cnt;
} __attribute__((packed));

/* Limits on what a guest (or host programs) can make ember hold. */
#define VIRTIO_VSOCK_MAX_CONNS 256	   /* open + pending, both directions */
#define VIRTIO_VSOCK_CONN_BUF (128 * 1024) /* guest-to-host bytes buffered per connection */
#define VIRTIO_VSOCK_MAX_PKT (64 * 1024)   /* payload of one packet, either way */
#define VIRTIO_VSOCK_RST_QUEUE 64	   /* resets owed to the guest for unknown connections */
/* Host ports for host-initiated connections count up from here (as Firecracker's). */
#define VIRTIO_VSOCK_HOST_PORT_BASE (1u << 30)

struct virtio_vsock_config {
	uint64_t guest_cid;
	char uds[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

struct virtio_vsock_stats {
	uint64_t tx_pkts, rx_pkts;
	uint64_t tx_dropped; /* malformed guest packets ignored */
	uint64_t rst_sent;
	uint64_t conns_opened, conns_refused;
	unsigned int conns; /* open now */
};

/* Parses "cid=N,uds=PATH": 0, or -EINVAL with one line naming the field. */
int virtio_vsock_parse(const char *arg, struct virtio_vsock_config *cfg, char *err, size_t errlen);

/*
 * Binds and listens on cfg->uds. A stale socket file there (nobody
 * listening) is replaced; anything else is an error.
 */
int virtio_vsock_create(const struct virtio_vsock_config *cfg, struct virtio_device **out,
			char *err, size_t errlen);

/* Closes every connection and removes the socket file. After the event loop stopped. */
void virtio_vsock_destroy(struct virtio_device *d);

void virtio_vsock_get_stats(struct virtio_device *d, struct virtio_vsock_stats *st);

/* What becomes of a guest packet (exposed for the fuzz target and tests). */
enum vsock_verdict {
	VSOCK_ACCEPT, /* process it */
	VSOCK_DROP,   /* ignore it silently (not for us, or malformed) */
	VSOCK_RESET,  /* answer with RST */
};

/*
 * Checks a guest packet's header; `payload` is how many bytes follow the
 * header in the chain.
 */
enum vsock_verdict virtio_vsock_check(const struct virtio_vsock_hdr *h, uint32_t payload,
				      uint64_t guest_cid);

#endif
