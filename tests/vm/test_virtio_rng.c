/*
 * virtio-rng (--rng), seen from the test guest: two 64-byte reads that are
 * not all zero and differ, and differ again on the next boot.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vm/vmtest.h"

#define TIMEOUT_S 120
#define HEX_LEN 128

/* Boots with --rng and returns the guest's two hex lines (malloc'd). */
static void boot(char **first, char **second)
{
	char pvh[4096];
	const char *argv[] = {"ember",	   "run",
			      "--kernel",  vmtest_path(pvh, sizeof(pvh), "guest/pvh-guest.elf"),
			      "--cmdline", "virtio-rng",
			      "--rng",	   NULL};
	struct vmtest_result r;
	char *ok, *fail;

	cr_assert_eq(vmtest_run(&r, argv, NULL, TIMEOUT_S), 0);
	cr_assert_not(r.timed_out, "timed out; console:\n%s\nstderr:\n%s", r.out, r.err);
	fail = vmtest_line(r.out, "guest: FAIL");
	cr_assert_null(fail, "%s\nconsole:\n%s\nstderr:\n%s", fail, r.out, r.err);
	ok = vmtest_line(r.out, "guest: rng 0 ok");
	cr_assert_not_null(ok, "console:\n%s\nstderr:\n%s", r.out, r.err);
	free(ok);
	*first = vmtest_line(r.out, "guest: rng 0 ");
	*second = vmtest_line(r.out, "guest: rng 1 ");
	cr_assert(*first && *second, "console:\n%s", r.out);
	cr_assert_eq(r.status, 0, "stderr:\n%s", r.err);
	vmtest_free(&r);
}

static const char *hex_of(const char *line)
{
	const char *h = line + strlen("guest: rng 0 ");

	cr_assert_eq(strlen(h), HEX_LEN, "%s", line);
	cr_assert_eq(strspn(h, "0123456789abcdef"), HEX_LEN, "%s", line);
	cr_assert_neq(strspn(h, "0"), HEX_LEN, "all zero: %s", line);
	return h;
}

Test(virtio_rng, reads_differ_within_and_across_boots, .timeout = 300)
{
	char *a0, *a1, *b0, *b1;

	VMTEST_REQUIRE_ACCEL();
	boot(&a0, &a1);
	cr_assert_str_neq(hex_of(a0), hex_of(a1), "the same 64 bytes twice in one boot");
	boot(&b0, &b1);
	cr_assert_str_neq(hex_of(a0), hex_of(b0), "the same bytes on two boots");
	free(a0);
	free(a1);
	free(b0);
	free(b1);
}
