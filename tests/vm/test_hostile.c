/*
 * Hostile guests (tests/guest/hostile.c): a guest that runs garbage, jumps
 * to unmapped memory, loads a bad IDT or writes garbage to the APICs gets a
 * guest exception or a VM crash report, never a monitor crash. Checked as a
 * user sees it: ember's exit status (0 or 1, never a signal), the guest's
 * console and ember's stderr (a crash report, never a sanitizer report).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vm/vmtest.h"

#define HOSTILE_TIMEOUT_S 120

static char pvh[4096], bzimage[4096];

static const char *guest(const char *which)
{
	if (!strcmp(which, "pvh"))
		return vmtest_path(pvh, sizeof(pvh), "guest/pvh-guest.elf");
	return vmtest_path(bzimage, sizeof(bzimage), "guest/bzimage-guest");
}

static void run_hostile(const char *which, const char *cmdline, struct vmtest_result *r)
{
	const char *argv[] = {"ember", "run", "--kernel", guest(which), "--cmdline", cmdline, NULL};

	cr_assert_eq(vmtest_run(r, argv, NULL, HOSTILE_TIMEOUT_S), 0);
}

static bool has_line(const struct vmtest_result *r, const char *prefix)
{
	char *line = vmtest_line(r->out, prefix);

	free(line);
	return line != NULL;
}

static void assert_has_line(const struct vmtest_result *r, const char *prefix)
{
	cr_assert(has_line(r, prefix), "no line starting '%s'; console:\n%s\nstderr:\n%s", prefix,
		  r->out, r->err);
}

static void assert_no_fail_line(const struct vmtest_result *r)
{
	char *fail = vmtest_line(r->out, "guest: FAIL");

	cr_assert_null(fail, "%s\nconsole:\n%s\nstderr:\n%s", fail, r->out, r->err);
}

/* What holds whatever the guest did: ember ended by itself, with 0 or 1. */
static void assert_monitor_survived(const struct vmtest_result *r)
{
	cr_assert_not(r->timed_out, "ember did not stop; console:\n%s\nstderr:\n%s", r->out, r->err);
	cr_assert(r->status == 0 || r->status == 1,
		  "exit status %d (128 + signal?); console:\n%s\nstderr:\n%s", r->status, r->out,
		  r->err);
	cr_assert_null(strstr(r->err, "Sanitizer"), "stderr:\n%s", r->err);
	cr_assert_null(strstr(r->err, "runtime error"), "stderr:\n%s", r->err);
}

/* ember's crash report: "vcpu 0: <why>" and a register dump. */
static void assert_crash_report(const struct vmtest_result *r)
{
	cr_assert_eq(r->status, 1, "stderr:\n%s", r->err);
	cr_assert(strstr(r->err, "vcpu 0: "), "no crash report line; stderr:\n%s", r->err);
	cr_assert(strstr(r->err, "rip=0x"), "no register dump; stderr:\n%s", r->err);
}

/*
 * Garbage at CPL 0: the guest reports the exception it got and powers off
 * (status 0), or wrecks itself and ember reports the crash (status 1).
 */
static void garbage(const char *which, unsigned seed)
{
	char cmdline[128];
	struct vmtest_result r;

	VMTEST_REQUIRE_ACCEL();
	snprintf(cmdline, sizeof(cmdline), "console=ttyS0 action=garbage seed=%u", seed);
	run_hostile(which, cmdline, &r);
	assert_has_line(&r, "guest: garbage seed=");
	assert_monitor_survived(&r);
	if (r.status == 0) {
		assert_has_line(&r, "guest: exception ");
		assert_has_line(&r, "guest: poweroff");
	} else {
		assert_crash_report(&r);
	}
	vmtest_free(&r);
}

Test(hostile, garbage_code_seed_1, .timeout = 300)
{
	garbage("pvh", 1);
}

Test(hostile, garbage_code_seed_2, .timeout = 300)
{
	garbage("bzimage", 2);
}

Test(hostile, garbage_code_seed_3, .timeout = 300)
{
	garbage("pvh", 3);
}

/* On the software CPU this one wrecks the guest's stack: a triple fault. */
Test(hostile, garbage_code_seed_13, .timeout = 300)
{
	garbage("pvh", 13);
}

/*
 * Garbage may also leave the guest looping with interrupts off (seed 8 on
 * the software CPU): the monitor still stops it on SIGTERM, as a user would.
 */
Test(hostile, looping_garbage_still_stops_on_sigterm, .timeout = 300)
{
	const char *argv[] = {"ember", "run", "--kernel", guest("pvh"), "--cmdline",
			      "console=ttyS0 action=garbage seed=8", NULL};
	struct vmtest_result r;

	VMTEST_REQUIRE_ACCEL();
	cr_assert_eq(vmtest_run(&r, argv, NULL, 8), 0);
	assert_has_line(&r, "guest: garbage seed=8");
	cr_assert_null(strstr(r.err, "Sanitizer"), "stderr:\n%s", r.err);
	if (r.timed_out) {
		cr_assert_eq(r.status, 128 + 15, "status %d; stderr:\n%s", r.status, r.err);
		cr_assert(strstr(r.err, "stopping the VM on signal"), "stderr:\n%s", r.err);
	} else {
		assert_monitor_survived(&r);
	}
	vmtest_free(&r);
}

Test(hostile, jump_to_noncanonical_and_unmapped_faults, .timeout = 300)
{
	struct vmtest_result r;
	char *pf;

	VMTEST_REQUIRE_ACCEL();
	run_hostile("pvh", "console=ttyS0 action=jump-unmapped", &r);
	assert_monitor_survived(&r);
	assert_has_line(&r, "guest: jump-unmapped non-canonical 0x8000000000000000");
	assert_has_line(&r, "guest: exception 13 at ");
	assert_has_line(&r, "guest: jump-unmapped unmapped 0x100000000000");
	pf = vmtest_line(r.out, "guest: exception 14 at ");
	cr_assert_not_null(pf, "no #PF report; console:\n%s", r.out);
	cr_assert(strstr(pf, "cr2=0x100000000000"), "%s", pf);
	free(pf);
	assert_has_line(&r, "guest: jump-unmapped done");
	assert_has_line(&r, "guest: poweroff");
	cr_assert_eq(r.status, 0, "stderr:\n%s", r.err);
	vmtest_free(&r);
}

static void bad_idt(const char *cmdline, const char *want)
{
	struct vmtest_result r;

	VMTEST_REQUIRE_ACCEL();
	run_hostile("pvh", cmdline, &r);
	assert_monitor_survived(&r);
	assert_has_line(&r, want);
	assert_no_fail_line(&r);
	assert_crash_report(&r);
	cr_assert(strstr(r.err, "triple fault"), "stderr:\n%s", r.err);
	vmtest_free(&r);
}

Test(hostile, empty_idt_then_int3_triple_faults, .timeout = 300)
{
	bad_idt("console=ttyS0 action=bad-idt", "guest: bad-idt limit=0x0 base=0x0");
}

Test(hostile, garbage_idt_base_then_int3_triple_faults, .timeout = 300)
{
	bad_idt("console=ttyS0 action=bad-idt bad-idt=garbage seed=7",
		"guest: bad-idt limit=0xfff base=0x");
}

Test(hostile, apic_garbage_leaves_the_guest_alive, .timeout = 300)
{
	struct vmtest_result r;

	VMTEST_REQUIRE_ACCEL();
	run_hostile("bzimage", "console=ttyS0 action=apic-garbage seed=5", &r);
	assert_monitor_survived(&r);
	assert_has_line(&r, "guest: apic-garbage lapic=0x");
	assert_has_line(&r, "guest: apic-garbage alive ");
	assert_has_line(&r, "guest: poweroff");
	assert_no_fail_line(&r);
	cr_assert_eq(r.status, 0, "the guest powered off; stderr:\n%s", r.err);
	vmtest_free(&r);
}
