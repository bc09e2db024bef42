/*
 * Boots Debian's cloud kernel with ember's busybox initramfs (make
 * linux-guest) on 2 vCPUs and checks, from what the guest itself prints,
 * that its init ran, loaded the virtio modules, saw both CPUs online, and
 * that its power-off ends `ember run` with status 0.
 *
 * On hosts where KVM emulates CPL 0 code (HOST-KVM.md) one boot takes
 * minutes: the timeout below only stops a hung guest and is no
 * performance check. virtio-blk and virtio-net parts join once ember has
 * those devices.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vm/vmtest.h"

#define LINUX_HANG_TIMEOUT_S 2400
#define LINUX_CMDLINE "console=ttyS0 noxsave mitigations=off nowatchdog panic=-1"

static void require_guest(const char *kernel, const char *initrd)
{
	VMTEST_REQUIRE_KVM();
	if (access(kernel, R_OK) || access(initrd, R_OK))
		cr_skip_test("Linux guest not built (%s, %s): run `make linux-guest` first; it "
			     "downloads Debian's cloud kernel and busybox-static",
			     kernel, initrd);
}

static void assert_line(const struct vmtest_result *r, const char *want)
{
	char *line = vmtest_line(r->out, want);

	cr_assert_not_null(line, "the guest did not print '%s'; console:\n%s\nstderr:\n%s", want,
			   r->out, r->err);
	cr_assert_str_eq(line, want, "console:\n%s", r->out);
	free(line);
}

static void assert_prefix(const struct vmtest_result *r, const char *prefix)
{
	char *line = vmtest_line(r->out, prefix);

	cr_assert_not_null(line,
			   "the guest printed no line starting '%s'; console:\n%s\nstderr:\n%s",
			   prefix, r->out, r->err);
	free(line);
}

Test(linux, debian_kernel_boots_to_init_on_two_cpus_and_powers_off, .timeout = 0)
{
	static char kernel[4096], initrd[4096];
	const char *argv[] = {"ember",	   "run",	  "--kernel", NULL,	  "--initrd",
			      NULL,	   "--cpus",	  "2",	      "--memory", "512",
			      "--cmdline", LINUX_CMDLINE, NULL};
	struct vmtest_result r;

	argv[3] = vmtest_path(kernel, sizeof(kernel), "linux/vmlinux");
	argv[5] = vmtest_path(initrd, sizeof(initrd), "linux/initramfs.cpio");
	require_guest(argv[3], argv[5]);
	cr_assert_eq(vmtest_run(&r, argv, NULL, LINUX_HANG_TIMEOUT_S), 0);

	cr_assert_not(r.timed_out, "no power-off within %d s; console:\n%s\nstderr:\n%s",
		      LINUX_HANG_TIMEOUT_S, r.out, r.err);
	assert_prefix(&r, "ember-init: init running as pid 1 on ");
	assert_line(&r, "ember-init: module virtio_pci loaded");
	assert_line(&r, "ember-init: module virtio_blk loaded");
	assert_line(&r, "ember-init: module virtio_net loaded");
	assert_line(&r, "ember-init: module vmw_vsock_virtio_transport loaded");
	assert_line(&r, "ember-init: cpus online: 0-1");
	assert_line(&r, "ember-init: cpu count: 2");
	assert_line(&r, "ember-init: powering off");
	cr_assert_eq(r.status, 0, "power-off must end ember with 0; stderr:\n%s", r.err);
	vmtest_free(&r);
}
