/*
 * virtio-balloon (--balloon target=MIB): the guest touches target pages,
 * then inflates them; pages given to the balloon go back to the host, so
 * ember's RSS falls by about the balloon's size. The guest holds
 * (balloon-hold) after touching and after inflating until the test has
 * sampled VmRSS and answered on COM1.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vm/vmtest.h"

#define TIMEOUT_S 120
#define TARGET_MIB 64
#define PAGES (TARGET_MIB * 256)

static void assert_line(const struct vmtest_result *r, const char *want)
{
	char *line = vmtest_line(r->out, want);

	cr_assert_not_null(line, "no line '%s'; console:\n%s\nstderr:\n%s", want, r->out, r->err);
	cr_assert_str_eq(line, want, "console:\n%s", r->out);
	free(line);
}

/* Waits for the guest's line, samples ember's RSS, lets the guest go on. */
static long rss_at(struct vmtest_proc *p, const char *line)
{
	char *got = vmtest_wait_line(p, line, TIMEOUT_S);
	long kib;

	if (!got)
		return -1;
	free(got);
	kib = vmtest_rss_kib(p->pid);
	vmtest_send(p, "\n");
	return kib;
}

Test(virtio_balloon, inflating_returns_the_pages_to_the_host, .timeout = 300)
{
	char pvh[4096], want[128], target[32];
	const char *argv[] = {"ember",	   "run",
			      "--kernel",  vmtest_path(pvh, sizeof(pvh), "guest/pvh-guest.elf"),
			      "--cmdline", "virtio-balloon balloon-hold",
			      "--memory",  "256",
			      "--balloon", target,
			      NULL};
	struct vmtest_proc p;
	struct vmtest_result r;
	long touched, inflated;

	VMTEST_REQUIRE_ACCEL();
	snprintf(target, sizeof(target), "target=%d", TARGET_MIB);
	cr_assert_eq(vmtest_start(&p, NULL, argv), 0);
	snprintf(want, sizeof(want), "guest: balloon touched=%d", PAGES);
	touched = rss_at(&p, want);
	snprintf(want, sizeof(want), "guest: balloon inflated=%d actual=%d", PAGES, PAGES);
	inflated = touched < 0 ? -1 : rss_at(&p, want);
	vmtest_finish(&p, &r, TIMEOUT_S);

	cr_assert_not(r.timed_out, "timed out; console:\n%s\nstderr:\n%s", r.out, r.err);
	cr_assert(touched > 0 && inflated > 0,
		  "RSS not sampled (touched %ld, inflated %ld KiB); console:\n%s\nstderr:\n%s",
		  touched, inflated, r.out, r.err);
	snprintf(want, sizeof(want), "guest: balloon target=%d stats=1", PAGES);
	assert_line(&r, want);
	/* The stats buffer reports the memory map's RAM. */
	char *total = vmtest_line(r.out, "guest: mem total-ram=0x");
	cr_assert_not_null(total, "console:\n%s", r.out);
	snprintf(want, sizeof(want), "guest: balloon stats posted memtot=%llu",
		 strtoull(total + strlen("guest: mem total-ram=0x"), NULL, 16));
	free(total);
	assert_line(&r, want);
	char *fail = vmtest_line(r.out, "guest: FAIL");
	cr_assert_null(fail, "%s\nconsole:\n%s\nstderr:\n%s", fail, r.out, r.err);
	assert_line(&r, "guest: ok");
	cr_assert_eq(r.status, 0, "stderr:\n%s", r.err);
	cr_log_info("ember RSS: %ld KiB after touching, %ld KiB after inflating", touched,
		    inflated);
	/* The touched pages were resident, and at least 3/4 of them went back. */
	cr_assert_geq(touched, TARGET_MIB * 1024, "RSS %ld KiB after touching %d MiB", touched,
		      TARGET_MIB);
	cr_assert_geq(touched - inflated, TARGET_MIB * 1024 * 3 / 4,
		      "RSS %ld KiB after touching, %ld KiB after inflating %d MiB", touched,
		      inflated, TARGET_MIB);
	vmtest_free(&r);
}
