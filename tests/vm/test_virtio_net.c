/*
 * virtio-net (--net tap=NAME,mac=MAC): ember, run in a network namespace of
 * its own, creates the TAP there; the guest broadcasts a frame of
 * ethertype 0x88b5 from the MAC it was given, which this test receives on
 * the TAP (AF_PACKET) and answers; the guest prints the answer's payload.
 * Needs root (a namespace, CAP_NET_ADMIN) and /dev/net/tun.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "vm/vmtest.h"

#define TIMEOUT_S 120
#define IO_TIMEOUT_S 30
#define TAP "embtap0"
#define ETHERTYPE 0x88b5
#define GUEST_MAC "52:54:00:12:34:56"

static const uint8_t guest_mac[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
static const uint8_t host_mac[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x01};

/* The namespace to delete after the test, whatever happened. */
static char netns[64];

static void netns_delete(void)
{
	vmtest_netns_del(netns);
}

static void require_net(void)
{
	VMTEST_REQUIRE_ACCEL();
	if (geteuid() != 0)
		cr_skip_test("virtio-net VM test needs root (network namespace, TAP)");
	if (access("/dev/net/tun", R_OK | W_OK))
		cr_skip_test("no /dev/net/tun: virtio-net VM test skipped");
	if (vmtest_netns_add(netns, sizeof(netns), "vt"))
		cr_skip_test("'ip netns add' failed: virtio-net VM test skipped");
}

static void enter_netns(void)
{
	char path[128];
	int fd;

	snprintf(path, sizeof(path), "/run/netns/%s", netns);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	cr_assert(fd >= 0, "open %s: %s", path, strerror(errno));
	cr_assert_eq(setns(fd, CLONE_NEWNET), 0, "setns %s: %s", path, strerror(errno));
	close(fd);
}

/* Waits for ember to create the TAP and brings it up; its ifindex, 0 on timeout. */
static unsigned int tap_up(void)
{
	struct ifreq ifr = {0};
	unsigned int idx = 0;
	int s;

	for (int i = 0; i < IO_TIMEOUT_S * 10 && !(idx = if_nametoindex(TAP)); i++)
		usleep(100000);
	if (!idx)
		return 0;
	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	cr_assert(s >= 0);
	strcpy(ifr.ifr_name, TAP);
	cr_assert_eq(ioctl(s, SIOCGIFFLAGS, &ifr), 0, "SIOCGIFFLAGS: %s", strerror(errno));
	ifr.ifr_flags |= IFF_UP;
	cr_assert_eq(ioctl(s, SIOCSIFFLAGS, &ifr), 0, "SIOCSIFFLAGS: %s", strerror(errno));
	close(s);
	return idx;
}

/* Receives the guest's frame and answers it; the guest's payload in got. */
static void answer(unsigned int ifindex, unsigned int seed, char *got, size_t gotlen)
{
	struct sockaddr_ll a = {
	    .sll_family = AF_PACKET, .sll_protocol = htons(ETHERTYPE), .sll_ifindex = (int)ifindex};
	struct timeval tv = {.tv_sec = IO_TIMEOUT_S};
	uint8_t f[1600];
	char want[64];
	ssize_t n;
	int s = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETHERTYPE));

	cr_assert(s >= 0, "AF_PACKET socket: %s", strerror(errno));
	cr_assert_eq(bind(s, (struct sockaddr *)&a, sizeof(a)), 0, "bind: %s", strerror(errno));
	setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	n = recv(s, f, sizeof(f), 0);
	cr_assert_geq(n, 14, "no frame from the guest: %s", n < 0 ? strerror(errno) : "short");
	cr_assert_eq(memcmp(f + 6, guest_mac, 6), 0, "frame's source is not " GUEST_MAC);
	cr_assert_eq(f[12] << 8 | f[13], ETHERTYPE);
	snprintf(got, gotlen, "%.*s", (int)strnlen((char *)f + 14, (size_t)n - 14), f + 14);

	memset(f, 0, 60);
	memcpy(f, guest_mac, 6);
	memcpy(f + 6, host_mac, 6);
	f[12] = ETHERTYPE >> 8;
	f[13] = ETHERTYPE & 0xff;
	snprintf(want, sizeof(want), "ember-host %u", seed);
	memcpy(f + 14, want, strlen(want));
	cr_assert_eq(send(s, f, 60, 0), 60, "send: %s", strerror(errno));
	close(s);
}

static void assert_line(const struct vmtest_result *r, const char *want)
{
	char *line = vmtest_line(r->out, want);

	cr_assert_not_null(line, "no line '%s'; console:\n%s\nstderr:\n%s", want, r->out, r->err);
	cr_assert_str_eq(line, want, "console:\n%s", r->out);
	free(line);
}

Test(virtio_net, frame_round_trip_through_the_tap, .timeout = 300, .fini = netns_delete)
{
	unsigned int seed = (unsigned int)(time(NULL) % 100000), ifindex;
	char pvh[4096], cmdline[64], want[160], got[64] = "";
	const char *argv[] = {
	    "ember",	 "run",	  "--kernel", vmtest_path(pvh, sizeof(pvh), "guest/pvh-guest.elf"),
	    "--cmdline", cmdline, "--net",    "tap=" TAP ",mac=" GUEST_MAC,
	    NULL};
	const char *prefix[] = {"ip", "netns", "exec", netns, NULL};
	struct vmtest_proc p;
	struct vmtest_result r;

	require_net();
	snprintf(cmdline, sizeof(cmdline), "virtio-net seed=%u", seed);
	cr_assert_eq(vmtest_start(&p, prefix, argv), 0);
	enter_netns();
	ifindex = tap_up();
	if (ifindex)
		answer(ifindex, seed, got, sizeof(got));
	vmtest_finish(&p, &r, TIMEOUT_S);

	cr_assert_not(r.timed_out, "timed out; console:\n%s\nstderr:\n%s", r.out, r.err);
	cr_assert_neq(ifindex, 0, "ember created no %s; console:\n%s\nstderr:\n%s", TAP, r.out,
		      r.err);
	snprintf(want, sizeof(want), "ember-guest %u", seed);
	cr_assert_str_eq(got, want, "the guest's frame");
	assert_line(&r, "guest: net 0 mac=" GUEST_MAC);
	snprintf(want, sizeof(want), "guest: net 0 rx src=02:00:00:00:00:01 payload=ember-host %u",
		 seed);
	assert_line(&r, want);
	char *fail = vmtest_line(r.out, "guest: FAIL");
	cr_assert_null(fail, "%s\nconsole:\n%s\nstderr:\n%s", fail, r.out, r.err);
	assert_line(&r, "guest: ok");
	cr_assert_eq(r.status, 0, "stderr:\n%s", r.err);
	vmtest_free(&r);
}
