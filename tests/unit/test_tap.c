#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "unit/virtq_fake.h"
#include "vmm/backend/tap.h"
#include "vmm/virtio/net.h"

/* Tests on a real TAP run as root in a fresh network namespace, else skip. */

Test(tap, name_check)
{
	const char *why = NULL;

	cr_assert_eq(tap_name_check("tap0", &why), 0);
	cr_assert_eq(tap_name_check("abcdefghijklmno", &why), 0);
	cr_assert_eq(tap_name_check("abcdefghijklmnop", &why), -EINVAL);
	cr_assert_not_null(strstr(why, "longer than 15"));
	cr_assert_eq(tap_name_check("", &why), -EINVAL);
	cr_assert_eq(tap_name_check(NULL, &why), -EINVAL);
	cr_assert_eq(tap_name_check("..", &why), -EINVAL);
	cr_assert_eq(tap_name_check("a/b", &why), -EINVAL);
	cr_assert_eq(tap_name_check("a:b", &why), -EINVAL);
	cr_assert_eq(tap_name_check("tap%d", &why), -EINVAL);
	cr_assert_eq(tap_name_check("a\tb", &why), -EINVAL);
}

Test(tap, bad_name_is_refused_before_opening)
{
	char err[256];

	cr_assert_eq(tap_open("no/slash", err, sizeof(err)), -EINVAL);
	cr_assert_not_null(strstr(err, "'/'"), "%s", err);
}

static void need_tap_netns(void)
{
	int fd;

	if (geteuid() != 0)
		cr_skip_test("needs root for a TAP");
	if (unshare(CLONE_NEWNET) < 0)
		cr_skip_test("unshare(CLONE_NEWNET): %s", strerror(errno));
	fd = open("/dev/net/tun", O_RDWR);
	if (fd < 0)
		cr_skip_test("/dev/net/tun: %s", strerror(errno));
	close(fd);
	/* No IPv6 chatter (router solicitations) from the new TAPs. */
	fd = open("/proc/sys/net/ipv6/conf/default/disable_ipv6", O_WRONLY);
	if (fd >= 0) {
		cr_assert_eq(write(fd, "1", 1), 1);
		close(fd);
	}
}

static void drop_net_admin(void)
{
	struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct data[2];

	cr_assert_eq(syscall(SYS_capget, &h, data), 0);
	data[0].effective &= ~(1u << CAP_NET_ADMIN);
	cr_assert_eq(syscall(SYS_capset, &h, data), 0);
}

static bool link_is_up(const char *name)
{
	struct ifreq ifr = {0};
	int s = socket(AF_INET, SOCK_DGRAM, 0);
	bool up;

	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	cr_assert_eq(ioctl(s, SIOCGIFFLAGS, &ifr), 0);
	up = ifr.ifr_flags & IFF_UP;
	close(s);
	return up;
}

Test(tap, create_opens_new_tap_and_brings_it_up)
{
	struct virtio_net_config_user cfg = {.tap = "embt0"};
	struct virtio_device *d;
	char err[256];

	need_tap_netns();
	cr_assert_eq(if_nametoindex("embt0"), 0);
	cr_assert_eq(virtio_net_create(&cfg, &d, err, sizeof(err)), 0, "%s", err);
	cr_assert_neq(if_nametoindex("embt0"), 0);
	cr_assert(link_is_up("embt0"));
	virtio_net_destroy(d);
	/* Not persistent: it goes away with the fd. */
	cr_assert_eq(if_nametoindex("embt0"), 0);
}

Test(tap, existing_non_tap_interface_is_refused)
{
	char err[256];

	need_tap_netns();
	cr_assert_lt(tap_open("lo", err, sizeof(err)), 0);
	cr_assert_not_null(strstr(err, "TUNSETIFF"), "%s", err);
	cr_assert_not_null(strstr(err, "not a single-queue TAP"), "%s", err);
}

Test(tap, create_without_cap_net_admin_says_why)
{
	struct virtio_net_config_user cfg = {.tap = "embt1"};
	struct virtio_device *d;
	char err[256];

	need_tap_netns();
	drop_net_admin();
	cr_assert_eq(virtio_net_create(&cfg, &d, err, sizeof(err)), -EPERM);
	cr_assert_str_eq(err, "--net tap=embt1: TUNSETIFF: Operation not permitted (needs "
			      "CAP_NET_ADMIN, or a persistent TAP owned by this user)");
}

Test(tap, persistent_tap_owned_by_user_opens_without_cap)
{
	char err[256];
	int fd;

	need_tap_netns();
	fd = tap_open("embt2", err, sizeof(err));
	cr_assert_geq(fd, 0, "%s", err);
	cr_assert_eq(ioctl(fd, TUNSETOWNER, (unsigned long)geteuid()), 0);
	cr_assert_eq(ioctl(fd, TUNSETPERSIST, 1ul), 0);
	close(fd);
	drop_net_admin();
	fd = tap_open("embt2", err, sizeof(err));
	cr_assert_geq(fd, 0, "%s", err);
	/* The offloads a guest may negotiate are accepted too. */
	cr_assert_eq(tap_set_offload(fd, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN), 0);
	close(fd);
}

/* rx packets counted by the host for `name` (/proc/net/dev is per namespace). */
static unsigned long host_rx_packets(const char *name)
{
	char line[512], want[32];
	unsigned long bytes, pkts;
	FILE *f = fopen("/proc/net/dev", "r");

	snprintf(want, sizeof(want), "%s:", name);
	cr_assert_not_null(f);
	while (fgets(line, sizeof(line), f)) {
		char *p = strstr(line, want);

		if (p && sscanf(p + strlen(want), "%lu %lu", &bytes, &pkts) == 2) {
			fclose(f);
			return pkts;
		}
	}
	fclose(f);
	cr_assert_fail("%s not in /proc/net/dev", name);
	return 0;
}

static int notified;

static void rec_signal(struct virtio_device *d, uint16_t q)
{
	(void)d;
	(void)q;
	notified++;
}

static void rec_broken(struct virtio_device *d, const char *why)
{
	(void)d;
	cr_assert_fail("device broken: %s", why);
}

#define ETHERTYPE_TEST 0x88b5 /* IEEE local experimental */

Test(tap, frames_flow_both_ways_through_a_real_tap)
{
	struct virtio_net_config_user cfg = {.tap = "embt3"};
	static struct vq_fake rxf, txf;
	struct virtio_net_hdr_v1 h = {0};
	uint8_t frame[60] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 1};
	struct vq_fake_seg tx[] = {{.data = &h, .len = 12}, {.data = frame, .len = 60}};
	struct vq_fake_seg rx = {.len = 2048, .write = true};
	struct sockaddr_ll sll = {.sll_family = AF_PACKET, .sll_halen = 6};
	struct virtio_device *d;
	uint64_t gpa[16] = {0};
	unsigned long before;
	bool found = false;
	char err[256];
	int ps;

	need_tap_netns();
	cr_assert_eq(virtio_net_create(&cfg, &d, err, sizeof(err)), 0, "%s", err);
	vq_fake_init(&rxf, 16);
	vq_fake_init(&txf, 16);
	d->queues[VIRTIO_NET_Q_RX] = rxf.q;
	d->queues[VIRTIO_NET_Q_TX] = txf.q;
	d->signal_used = rec_signal;
	d->set_broken = rec_broken;
	d->driver_features = 1ull << VIRTIO_F_VERSION_1 | 1ull << VIRTIO_NET_F_GUEST_CSUM |
			     1ull << VIRTIO_NET_F_GUEST_TSO4 | 1ull << VIRTIO_NET_F_MRG_RXBUF;
	cr_assert_eq(d->ops->activate(d), 0);
	frame[12] = ETHERTYPE_TEST >> 8;
	frame[13] = ETHERTYPE_TEST & 0xff;
	memcpy(frame + 14, "ember tx", 8);

	/* Guest to host: the kernel receives the frame on the TAP. */
	before = host_rx_packets("embt3");
	vq_fake_add_chain(&txf, tx, 2);
	d->ops->queue_notify(d, VIRTIO_NET_Q_TX);
	cr_assert_eq(host_rx_packets("embt3"), before + 1);

	/* Host to guest: a frame sent out of the interface lands in a guest buffer. */
	for (int i = 0; i < 8; i++) {
		uint16_t head = vq_fake_add_chain(&rxf, &rx, 1);

		gpa[head] = rxf.seg_gpa[0];
	}
	ps = socket(AF_PACKET, SOCK_RAW, 0);
	cr_assert_geq(ps, 0);
	sll.sll_ifindex = (int)if_nametoindex("embt3");
	memcpy(sll.sll_addr, frame, 6);
	memcpy(frame + 14, "ember rx", 8);
	cr_assert_eq(sendto(ps, frame, sizeof(frame), 0, (struct sockaddr *)&sll, sizeof(sll)), 60);
	for (int tries = 0; tries < 200 && !found; tries++) {
		virtio_net_tap_ready(d);
		/* The host may send frames of its own: look for ours. */
		for (uint16_t i = 0; i < vq_fake_used_idx(&rxf) && !found; i++) {
			uint32_t id, len;
			uint8_t *buf;

			vq_fake_used(&rxf, i, &id, &len);
			cr_assert_lt(id, 16);
			buf = vq_fake_ptr(&rxf, gpa[id], 2048);
			found = len == 12 + 60 && !memcmp(buf + 12, frame, 60) && buf[10] == 1;
		}
		nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
	}
	cr_assert(found, "frame sent on the host side never reached the guest buffers");
	cr_assert_gt(notified, 0);
	close(ps);
	virtio_net_destroy(d);
	vq_fake_free(&rxf);
	vq_fake_free(&txf);
}
