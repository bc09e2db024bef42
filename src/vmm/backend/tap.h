/*
 * TAP network backend: a /dev/net/tun queue in TAP mode with the virtio
 * net header in front of every frame (IFF_VNET_HDR), so frames pass
 * between the guest's virtqueues and the host kernel without conversion.
 *
 * ember never configures addresses: the user does (ip addr add ..., a
 * bridge, or a persistent TAP made with `ip tuntap add NAME mode tap user
 * USER`, which an unprivileged ember can then open).
 */
#ifndef EMBER_VMM_BACKEND_TAP_H
#define EMBER_VMM_BACKEND_TAP_H

#include <stddef.h>

/* Linux's virtio_net_hdr_v1 (with num_buffers): what we ask the TAP for. */
#define TAP_VNET_HDR_LEN 12

/* Checks an interface name; 0, or -EINVAL with *why set to the reason. */
int tap_name_check(const char *name, const char **why);

/*
 * Opens TAP `name` (created when missing, which needs CAP_NET_ADMIN) with
 * IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, a TAP_VNET_HDR_LEN header, no
 * offloads, non-blocking and close-on-exec. Returns the fd, or -errno with
 * one line in err (without the name: the caller says which TAP).
 */
int tap_open(const char *name, char *err, size_t errlen);

/* TUNSETVNETHDRSZ: 0 or -errno. */
int tap_set_vnet_hdr_len(int fd, int len);

/* TUNSETOFFLOAD with TUN_F_* flags: what the kernel may hand us. 0 or -errno. */
int tap_set_offload(int fd, unsigned int tun_flags);

/*
 * Brings the link up if it is down: 0 when it is up, -EPERM (or another
 * -errno) when it is down and we may not change that.
 */
int tap_link_up(const char *name);

#endif
