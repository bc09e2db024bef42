/* `ember run` on bad input: one line naming the field or file, non-zero exit. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vm/vmtest.h"

static char guest[4096];

static const char *pvh_guest(void)
{
	return vmtest_path(guest, sizeof(guest), "guest/pvh-guest.elf");
}

static int count_lines(const char *s)
{
	int n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

/* Runs ember, expects exit `status` with exactly one stderr line containing `want`. */
static void expect_error_status(const char *const *argv, const char *want, int status)
{
	struct vmtest_result r;

	cr_assert_eq(vmtest_run(&r, argv, NULL, 30), 0);
	cr_assert_not(r.timed_out, "ember hung on bad input");
	cr_assert_eq(r.status, status, "exit status %d, want %d; stderr: %s", r.status, status,
		     r.err);
	cr_assert_eq(count_lines(r.err), 1, "want one line, got: %s", r.err);
	cr_assert(strstr(r.err, want), "want '%s' in: %s", want, r.err);
	cr_assert_str_empty(r.out, "no guest output expected, got: %s", r.out);
	vmtest_free(&r);
}

/* Bad input: the user's flags or files. */
static void expect_one_line_error(const char *const *argv, const char *want)
{
	expect_error_status(argv, want, 2);
}

Test(cli, missing_kernel_file)
{
	const char *argv[] = {"ember", "run", "--kernel", "/nonexistent/bzImage", NULL};

	expect_one_line_error(argv, "kernel /nonexistent/bzImage: No such file or directory");
}

Test(cli, no_kernel_flag)
{
	const char *argv[] = {"ember", "run", NULL};

	expect_one_line_error(argv, "--kernel: missing");
}

Test(cli, kernel_is_a_directory)
{
	const char *argv[] = {"ember", "run", "--kernel", "/tmp", NULL};

	expect_one_line_error(argv, "kernel /tmp: is a directory");
}

Test(cli, missing_initrd)
{
	const char *argv[] = {"ember", "run", "--kernel", pvh_guest(), "--initrd", "/nope/initrd",
			      NULL};

	expect_one_line_error(argv, "initrd /nope/initrd: No such file or directory");
}

Test(cli, zero_and_too_many_cpus)
{
	const char *zero[] = {"ember", "run", "--kernel", pvh_guest(), "--cpus", "0", NULL};
	const char *many[] = {"ember", "run", "--kernel", pvh_guest(), "--cpus", "100000", NULL};
	const char *junk[] = {"ember", "run", "--kernel", pvh_guest(), "--cpus", "two", NULL};

	expect_one_line_error(zero, "--cpus: 0 is out of range");
	expect_one_line_error(many, "--cpus: 100000 is out of range");
	expect_one_line_error(junk, "--cpus: 'two' is not a number");
}

Test(cli, zero_and_too_much_memory)
{
	const char *zero[] = {"ember", "run", "--kernel", pvh_guest(), "--memory", "0", NULL};
	const char *huge[] = {"ember", "run", "--kernel", pvh_guest(), "--memory", "99999999", NULL};
	const char *neg[] = {"ember", "run", "--kernel", pvh_guest(), "--memory", "-5", NULL};

	expect_one_line_error(zero, "--memory: 0 MiB is too small");
	expect_one_line_error(huge, "--memory: 99999999 MiB is more than the host's");
	expect_one_line_error(neg, "--memory: '-5' is not a number");
}

Test(cli, unknown_option_and_missing_value)
{
	const char *unk[] = {"ember", "run", "--kernal", "x", NULL};
	const char *noval[] = {"ember", "run", "--kernel", NULL};
	const char *verb[] = {"ember", "launch", NULL};

	expect_one_line_error(unk, "unknown option '--kernal'");
	expect_one_line_error(noval, "--kernel: needs a value");
	expect_one_line_error(verb, "unknown command 'launch'");
}

Test(cli, missing_kvm_device_is_one_clear_line)
{
	const char *argv[] = {"ember", "run", "--accel", "kvm", "--kernel", pvh_guest(), NULL};

	setenv("EMBER_KVM_DEV", "/nonexistent/kvm", 1);
	/* --accel kvm on a host without KVM is not the user's input: status 1, not 2. */
	expect_error_status(argv, "open /nonexistent/kvm: No such file or directory", 1);
	unsetenv("EMBER_KVM_DEV");
}

Test(cli, bad_ember_accel_variable)
{
	const char *argv[] = {"ember", "run", "--kernel", pvh_guest(), NULL};

	setenv("EMBER_ACCEL", "fast", 1);
	expect_one_line_error(argv, "EMBER_ACCEL: 'fast' is not one of auto, kvm, soft");
	unsetenv("EMBER_ACCEL");
}

Test(cli, unknown_accelerator)
{
	const char *argv[] = {"ember", "run", "--accel", "tcg", "--kernel", pvh_guest(), NULL};

	expect_one_line_error(argv, "--accel: 'tcg' is not one of auto, kvm, soft");
}

Test(cli, file_that_is_no_kernel)
{
	char path[] = "/tmp/ember-notkernel-XXXXXX";
	int fd = mkstemp(path);
	const char *argv[] = {"ember", "run", "--kernel", path, NULL};
	char junk[8192];

	VMTEST_REQUIRE_ACCEL();
	memset(junk, 'A', sizeof(junk));
	cr_assert_eq(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
	close(fd);
	expect_one_line_error(argv, "kernel ");
	unlink(path);
}

Test(cli, initrd_that_does_not_fit)
{
	char path[] = "/tmp/ember-bigrd-XXXXXX";
	int fd = mkstemp(path);
	const char *argv[] = {"ember", "run", "--kernel", pvh_guest(), "--initrd", path,
			      "--memory", "16", NULL};

	VMTEST_REQUIRE_ACCEL();
	cr_assert_eq(ftruncate(fd, 64 << 20), 0);
	close(fd);
	expect_one_line_error(argv, "initrd ");
	unlink(path);
}

/* A multiboot kernel (a.out kludge) that claims 1 MiB from a 64-byte file. */
Test(cli, truncated_multiboot_kernel)
{
	char path[] = "/tmp/ember-mb-XXXXXX";
	int fd = mkstemp(path);
	const char *argv[] = {"ember", "run", "--test-dev", "--kernel", path, NULL};
	/* magic, flags (bit 16: address fields), checksum, then the address fields */
	uint32_t img[16] = {0x1BADB002, 0x10000, -(0x1BADB002u + 0x10000)};
	char want[256];

	VMTEST_REQUIRE_ACCEL();
	img[3] = img[4] = img[7] = 0x100000; /* header_addr, load_addr, entry_addr */
	img[5] = 0x200000;		     /* load_end_addr: 1 MiB from a 64-byte file */
	cr_assert_eq(write(fd, img, sizeof(img)), (ssize_t)sizeof(img));
	close(fd);
	snprintf(want, sizeof(want),
		 "kernel %s: multiboot load_addr 0x100000 .. load_end_addr 0x200000 (1 MiB) "
		 "runs past the end of the 64-byte file",
		 path);
	expect_one_line_error(argv, want);
	unlink(path);
}

/* Virtio flags: each bad form is refused before the guest starts. */
Test(cli, missing_disk_image)
{
	const char *argv[] = {"ember", "run", "--kernel", pvh_guest(), "--disk", "/nope/disk.img",
			      NULL};

	expect_one_line_error(argv, "--disk: open /nope/disk.img: No such file or directory");
}

Test(cli, duplicate_disk_id)
{
	char path[] = "/tmp/ember-cli-disk-XXXXXX";
	int fd = mkstemp(path);
	char a[128], b[128];
	const char *argv[] = {"ember", "run", "--kernel", pvh_guest(), "--disk", a, "--disk", b, NULL};

	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, 1 << 20), 0);
	close(fd);
	snprintf(a, sizeof(a), "%s,id=data", path);
	snprintf(b, sizeof(b), "%s,ro,id=data", path);
	expect_one_line_error(argv, "--disk: id=data: duplicate id");
	unlink(path);
}

Test(cli, malformed_mac)
{
	const char *argv[] = {"ember", "run", "--kernel", pvh_guest(), "--net", "tap=t0,mac=02:00:zz",
			      NULL};

	expect_one_line_error(argv, "--net: mac=02:00:zz: not a MAC address");
}

Test(cli, vsock_cid_below_three)
{
	const char *argv[] = {"ember", "run", "--kernel", pvh_guest(), "--vsock", "cid=2,uds=/tmp/v.sock",
			      NULL};

	expect_one_line_error(argv, "--vsock: cid=2: must be 3 or more");
}
