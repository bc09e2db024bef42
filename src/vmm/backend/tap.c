#include "vmm/backend/tap.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

int tap_name_check(const char *name, const char **why)
{
	size_t len = name ? strlen(name) : 0;

	if (len == 0) {
		*why = "empty interface name";
		return -EINVAL;
	}
	if (len >= IFNAMSIZ) {
		*why = "interface name longer than 15 characters";
		return -EINVAL;
	}
	if (!strcmp(name, ".") || !strcmp(name, "..")) {
		*why = "not a valid interface name";
		return -EINVAL;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = name[i];

		/* What the kernel's dev_valid_name refuses, and '%' (a name template). */
		if (ch == '/' || ch == ':' || ch == '%' || isspace(ch) || !isprint(ch)) {
			*why = "interface names may not contain '/', ':', '%', blanks or "
			       "control characters";
			return -EINVAL;
		}
	}
	return 0;
}

/* Why TUNSETIFF failed, in the user's terms. */
static const char *tunsetiff_hint(int e)
{
	switch (e) {
	case EPERM:
	case EACCES:
		return " (needs CAP_NET_ADMIN, or a persistent TAP owned by this user)";
	case EBUSY:
		return " (in use by another process)";
	case EINVAL:
		return " (exists and is not a single-queue TAP device)";
	default:
		return "";
	}
}

int tap_open(const char *name, char *err, size_t errlen)
{
	struct ifreq ifr = {0};
	const char *why;
	int fd, e;

	if (tap_name_check(name, &why)) {
		snprintf(err, errlen, "%s", why);
		return -EINVAL;
	}
	fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		e = errno;
		snprintf(err, errlen, "open /dev/net/tun: %s%s", strerror(e),
			 e == ENOENT || e == ENODEV ? " (tun module not loaded?)" : "");
		return -e;
	}
	memcpy(ifr.ifr_name, name, strlen(name));
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		e = errno;
		snprintf(err, errlen, "TUNSETIFF: %s%s", strerror(e), tunsetiff_hint(e));
		goto err_close;
	}
	e = -tap_set_vnet_hdr_len(fd, TAP_VNET_HDR_LEN);
	if (e) {
		snprintf(err, errlen, "TUNSETVNETHDRSZ: %s", strerror(e));
		goto err_close;
	}
	e = -tap_set_offload(fd, 0);
	if (e) {
		snprintf(err, errlen, "TUNSETOFFLOAD: %s", strerror(e));
		goto err_close;
	}
	return fd;

err_close:
	close(fd);
	return -e;
}

int tap_set_vnet_hdr_len(int fd, int len)
{
	return ioctl(fd, TUNSETVNETHDRSZ, &len) < 0 ? -errno : 0;
}

int tap_set_offload(int fd, unsigned int tun_flags)
{
	return ioctl(fd, TUNSETOFFLOAD, (unsigned long)tun_flags) < 0 ? -errno : 0;
}

int tap_link_up(const char *name)
{
	struct ifreq ifr = {0};
	int s, e = 0;

	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -errno;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0) {
		e = -errno;
		goto out;
	}
	if (ifr.ifr_flags & IFF_UP)
		goto out;
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
		e = -errno;
out:
	close(s);
	return e;
}
