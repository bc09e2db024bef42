/*
 * Boots Debian's cloud kernel with ember's busybox initramfs (make
 * linux-guest) on 2 vCPUs with a virtio-blk disk and, where this process
 * may make a network namespace and a TAP (root, /dev/net/tun), a
 * virtio-net interface. Checks, from what the guest itself prints and from
 * the host side: its init ran and loaded the virtio modules, both CPUs are
 * online, the marker init wrote to the disk is in the image file, eth0 has
 * the MAC given and pings the host's end of the TAP, and the guest's
 * power-off ends `ember run` with status 0.
 *
 * On hosts where KVM emulates CPL 0 code (HOST-KVM.md) one boot takes
 * many minutes: the timeout only stops a hung guest and is no performance
 * check.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vm/vmtest.h"

#define LINUX_HANG_TIMEOUT_S 2700
#define TAP "embtaplx0"
#define GUEST_MAC "52:54:00:12:34:57"
#define HOST_ADDR "169.254.77.1"
#define GUEST_ADDR "169.254.77.2/16"

static char netns[64];

static void netns_delete(void)
{
	vmtest_netns_del(netns);
}

/* A namespace for ember and its TAP; false (and why) where that cannot be. */
static bool netns_make(char *why, size_t whylen)
{
	if (geteuid() != 0 || access("/dev/net/tun", R_OK | W_OK)) {
		snprintf(why, whylen, "not root or no /dev/net/tun");
		return false;
	}
	if (vmtest_netns_add(netns, sizeof(netns), "lx")) {
		snprintf(why, whylen, "'ip netns add' failed");
		return false;
	}
	return true;
}

/* Waits for ember's TAP, gives it the host's address and brings it up. */
static bool tap_configure(void)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "ip -n %s link show %s >/dev/null 2>&1", netns, TAP);
	for (int i = 0; i < 300 && system(cmd) != 0; i++)
		usleep(100000);
	snprintf(cmd, sizeof(cmd), "ip -n %s addr add %s/16 dev %s && ip -n %s link set %s up",
		 netns, HOST_ADDR, TAP, netns, TAP);
	return system(cmd) == 0;
}

static char *make_disk(void)
{
	static char path[] = "/tmp/ember-linux-disk-XXXXXX";
	int fd = mkstemp(path);

	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, 8 << 20), 0);
	close(fd);
	return path;
}

static void assert_line(const struct vmtest_result *r, const char *want)
{
	char *line = vmtest_line(r->out, want);

	cr_assert_not_null(line, "the guest did not print '%s'; console:\n%s\nstderr:\n%s", want,
			   r->out, r->err);
	cr_assert_str_eq(line, want, "console:\n%s", r->out);
	free(line);
}

/* The first line starting with prefix; the rest of it in rest. */
static void assert_prefix(const struct vmtest_result *r, const char *prefix, char *rest,
			  size_t restlen)
{
	char *line = vmtest_line(r->out, prefix);

	cr_assert_not_null(line,
			   "the guest printed no line starting '%s'; console:\n%s\nstderr:\n%s",
			   prefix, r->out, r->err);
	if (rest)
		snprintf(rest, restlen, "%s", line + strlen(prefix));
	free(line);
}

/* The guest's command line as make linux-guest left it (tests/linux/cmdline). */
static void read_cmdline(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");

	cr_assert_not_null(f, "cannot open %s: run `make linux-guest`", path);
	cr_assert_not_null(fgets(buf, (int)len, f), "%s is empty", path);
	fclose(f);
	buf[strcspn(buf, "\n")] = '\0';
}

static void assert_disk_marker(const char *disk, const char *release)
{
	char sector[512], want[160];
	int fd = open(disk, O_RDONLY);

	cr_assert_geq(fd, 0);
	cr_assert_eq(pread(fd, sector, sizeof(sector), 0), (ssize_t)sizeof(sector));
	close(fd);
	snprintf(want, sizeof(want), "ember-linux-disk %s\n", release);
	cr_assert_eq(memcmp(sector, want, strlen(want)), 0,
		     "sector 0 of the disk image does not hold '%s'", want);
}

Test(linux, debian_kernel_boots_to_init_with_virtio_and_powers_off, .timeout = 0,
     .fini = netns_delete)
{
	static char kernel[4096], initrd[4096], cmdfile[4096], diskarg[128], base[512],
		cmdline[640];
	const char *argv[] = {"ember",	   "run",     "--kernel", NULL,	     "--initrd", NULL,
			      "--cpus",	   "2",	      "--memory", "512",     "--cmdline", cmdline,
			      "--disk",	   diskarg,   NULL,	  NULL,	     NULL};
	const char *prefix[] = {"ip", "netns", "exec", netns, NULL};
	char release[128], why[128] = "", *disk;
	struct vmtest_proc p;
	struct vmtest_result r;
	bool net, tap_ok = false;

	argv[3] = vmtest_path(kernel, sizeof(kernel), "linux/vmlinux");
	argv[5] = vmtest_path(initrd, sizeof(initrd), "linux/initramfs.cpio");
	VMTEST_REQUIRE_ACCEL();
	if (access(argv[3], R_OK) || access(argv[5], R_OK))
		cr_skip_test("Linux guest not built (%s, %s): run `make linux-guest` first; it "
			     "downloads Debian's cloud kernel and busybox-static",
			     argv[3], argv[5]);
	read_cmdline(vmtest_path(cmdfile, sizeof(cmdfile), "linux/cmdline"), base, sizeof(base));
	disk = make_disk();
	snprintf(diskarg, sizeof(diskarg), "%s,id=linuxdisk", disk);
	net = netns_make(why, sizeof(why));
	if (net) {
		argv[14] = "--net";
		argv[15] = "tap=" TAP ",mac=" GUEST_MAC;
		snprintf(cmdline, sizeof(cmdline), "%s ember.addr=%s ember.ping=%s", base,
			 GUEST_ADDR, HOST_ADDR);
	} else {
		fprintf(stderr, "test_linux: no virtio-net part (%s)\n", why);
		snprintf(cmdline, sizeof(cmdline), "%s", base);
	}
	cr_assert_eq(vmtest_start(&p, net ? prefix : NULL, argv), 0);
	if (net)
		tap_ok = tap_configure();
	vmtest_finish(&p, &r, LINUX_HANG_TIMEOUT_S);

	cr_assert_not(r.timed_out, "no power-off within %d s; console:\n%s\nstderr:\n%s",
		      LINUX_HANG_TIMEOUT_S, r.out, r.err);
	/* A process that dies in the guest is a failure even where init carries on. */
	cr_assert_null(strstr(r.out, "segfault at"), "a guest process crashed; console:\n%s", r.out);
	assert_prefix(&r, "ember-init: init running as pid 1 on ", release, sizeof(release));
	assert_line(&r, "ember-init: module virtio_pci loaded");
	assert_line(&r, "ember-init: module virtio_blk loaded");
	assert_line(&r, "ember-init: module virtio_net loaded");
	assert_line(&r, "ember-init: module vmw_vsock_virtio_transport loaded");
	assert_line(&r, "ember-init: cpus online: 0-1");
	assert_line(&r, "ember-init: cpu count: 2");
	assert_line(&r, "ember-init: disk vda written");
	assert_disk_marker(disk, release);
	if (net) {
		cr_assert(tap_ok, "could not configure %s in %s", TAP, netns);
		assert_line(&r, "ember-init: net eth0 mac=" GUEST_MAC);
		assert_line(&r, "ember-init: net ping " HOST_ADDR " ok");
	}
	assert_line(&r, "ember-init: powering off");
	cr_assert_eq(r.status, 0, "power-off must end ember with 0; stderr:\n%s", r.err);
	vmtest_free(&r);
	unlink(disk);
}
