/*
 * Boots ember's test guests (tests/guest) and checks, from what the guest
 * reports on COM1, that it got the command line, memory map, initrd, ACPI
 * tables, time and CPUs it was given, and that it can stop the VM.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vm/vmtest.h"

#define BOOT_TIMEOUT_S 120

static char pvh[4096], bzimage[4096];

static const char *guest(const char *which)
{
	if (!strcmp(which, "pvh"))
		return vmtest_path(pvh, sizeof(pvh), "guest/pvh-guest.elf");
	return vmtest_path(bzimage, sizeof(bzimage), "guest/bzimage-guest");
}

static void assert_line(const struct vmtest_result *r, const char *want)
{
	char *line = vmtest_line(r->out, want);

	cr_assert_not_null(line, "guest did not print '%s'; console:\n%s\nstderr:\n%s", want, r->out,
			   r->err);
	cr_assert_str_eq(line, want, "console:\n%s", r->out);
	free(line);
}

static void assert_no_failure_line(const struct vmtest_result *r)
{
	char *fail = vmtest_line(r->out, "guest: FAIL");

	cr_assert_null(fail, "%s\nconsole:\n%s\nstderr:\n%s", fail, r->out, r->err);
}

static void assert_has_line(const struct vmtest_result *r, const char *prefix)
{
	char *line = vmtest_line(r->out, prefix);

	cr_assert_not_null(line, "no line starting '%s'; console:\n%s\nstderr:\n%s", prefix, r->out,
			   r->err);
	free(line);
}

static void assert_no_failure(const struct vmtest_result *r)
{
	assert_no_failure_line(r);
	assert_line(r, "guest: ok");
}

static uint32_t fnv1a(const char *p, size_t n)
{
	uint32_t h = 0x811c9dc5;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)p[i]) * 0x01000193;
	return h;
}

static char *write_initrd(const char *content)
{
	static char path[] = "/tmp/ember-initrd-XXXXXX";
	char *p = strdup(path);
	int fd = mkstemp(p);

	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, content, strlen(content)), (ssize_t)strlen(content));
	close(fd);
	return p;
}

/* The memory map ember documents (README: "The machine a guest sees"). */
static void assert_memory_map(const struct vmtest_result *r, uint64_t mib)
{
	uint64_t ram = mib << 20, low = ram < 0xc0000000ULL ? ram : 0xc0000000ULL;
	uint64_t total = 0x9fc00 + (low - 0x100000);
	char want[128];

	assert_line(r, "guest: mem 0x0 0x9fc00 1");
	assert_line(r, "guest: mem 0x9fc00 0xa0000 2");
	assert_line(r, "guest: mem 0xe0000 0x100000 2");
	snprintf(want, sizeof(want), "guest: mem 0x100000 0x%llx 1", (unsigned long long)low);
	assert_line(r, want);
	if (ram > low) {
		snprintf(want, sizeof(want), "guest: mem 0x100000000 0x%llx 1",
			 (unsigned long long)(0x100000000ULL + ram - low));
		assert_line(r, want);
		total += ram - low;
	}
	snprintf(want, sizeof(want), "guest: mem total-ram=0x%llx", (unsigned long long)total);
	assert_line(r, want);
}

static void assert_rtc_is_host_time(const struct vmtest_result *r)
{
	char *line = vmtest_line(r->out, "guest: rtc ");
	struct tm tm = {0};
	time_t guest_t, now = time(NULL);

	cr_assert_not_null(line, "no rtc line; console:\n%s", r->out);
	cr_assert_not_null(strptime(line + strlen("guest: rtc "), "%Y-%m-%d %H:%M:%S", &tm),
			   "%s", line);
	guest_t = timegm(&tm);
	/* The guest read it during this boot, which took at most the timeout. */
	cr_assert(guest_t <= now + 2 && guest_t >= now - BOOT_TIMEOUT_S - 2,
		  "guest time %s is not host UTC (now %lld)", line, (long long)now);
	free(line);
}

static void boot_and_check(const char *which, const char *cpus, const char *mem)
{
	const char *content = "ember test initrd\n";
	char *rd = write_initrd(content);
	const char *cmdline = "console=ttyS0 foo=bar  x=\"y z\" action=poweroff";
	const char *argv[] = {"ember",	  "run",  "--kernel", guest(which), "--initrd", rd,
			      "--cmdline", cmdline, "--cpus",	cpus,	      "--memory", mem,
			      NULL};
	struct vmtest_result r;
	char want[256];

	VMTEST_REQUIRE_ACCEL();
	cr_assert_eq(vmtest_run(&r, argv, NULL, BOOT_TIMEOUT_S), 0);
	cr_assert_not(r.timed_out, "timed out; console:\n%s\nstderr:\n%s", r.out, r.err);
	snprintf(want, sizeof(want), "guest: hello boot=%s", which);
	assert_line(&r, want);
	snprintf(want, sizeof(want), "guest: cmdline=%s", cmdline);
	assert_line(&r, want);
	assert_memory_map(&r, strtoull(mem, NULL, 10));
	snprintf(want, sizeof(want), "size=%zu fnv1a=0x%08x", strlen(content),
		 fnv1a(content, strlen(content)));
	char *initrd = vmtest_line(r.out, "guest: initrd addr=");
	cr_assert_not_null(initrd, "console:\n%s", r.out);
	cr_assert(strstr(initrd, want), "%s, want %s", initrd, want);
	free(initrd);
	snprintf(want, sizeof(want), "guest: cpus online=%s of %s", cpus, cpus);
	assert_line(&r, want);
	char *acpi = vmtest_line(r.out, "guest: acpi rsdp=0xe0000 tables=5 lapics=");
	cr_assert_not_null(acpi, "console:\n%s", r.out);
	cr_assert_str_eq(strstr(acpi, "lapics=") + 7, cpus);
	free(acpi);
	assert_rtc_is_host_time(&r);
	assert_has_line(&r, "guest: memcheck ok");
	assert_no_failure(&r);
	assert_line(&r, "guest: poweroff");
	cr_assert_eq(r.status, 0, "exit status %d after power-off; stderr:\n%s", r.status, r.err);
	vmtest_free(&r);
	unlink(rd);
	free(rd);
}

Test(guest_boot, pvh_guest_gets_what_it_was_given, .timeout = 300)
{
	boot_and_check("pvh", "2", "256");
}

Test(guest_boot, bzimage_guest_gets_what_it_was_given, .timeout = 300)
{
	boot_and_check("bzimage", "3", "128");
}

Test(guest_boot, ram_above_3g_is_mapped_above_4g, .timeout = 300)
{
	boot_and_check("pvh", "1", "3584");
}

Test(guest_boot, every_vcpu_of_eight_starts, .timeout = 300)
{
	boot_and_check("bzimage", "8", "64");
}

static void run_action(const char *which, const char *cmdline, const char *input,
		       struct vmtest_result *r)
{
	const char *argv[] = {"ember", "run", "--kernel", guest(which), "--cmdline", cmdline, NULL};

	VMTEST_REQUIRE_ACCEL();
	cr_assert_eq(vmtest_run(r, argv, input, BOOT_TIMEOUT_S), 0);
}

Test(guest_boot, i8042_reset_ends_with_status_0, .timeout = 300)
{
	struct vmtest_result r;

	run_action("bzimage", "action=reset", NULL, &r);
	assert_line(&r, "guest: reset");
	cr_assert_not(r.timed_out, "console:\n%s", r.out);
	cr_assert_eq(r.status, 0, "stderr:\n%s", r.err);
	assert_no_failure_line(&r);
	vmtest_free(&r);
}

Test(guest_boot, serial_input_reaches_the_guest, .timeout = 300)
{
	struct vmtest_result r;

	run_action("pvh", "action=echo", "hello from the host\n", &r);
	assert_line(&r, "guest: echo ready");
	assert_line(&r, "guest: echo hello from the host");
	assert_line(&r, "guest: echo iir ok");
	assert_no_failure(&r);
	cr_assert_eq(r.status, 0, "stderr:\n%s", r.err);
	vmtest_free(&r);
}

Test(guest_boot, guest_fault_report_then_poweroff, .timeout = 300)
{
	struct vmtest_result r;

	run_action("pvh", "action=fault", NULL, &r);
	assert_has_line(&r, "guest: FAIL exception vector=6 ");
	cr_assert_eq(r.status, 0, "power-off after the report; stderr:\n%s", r.err);
	vmtest_free(&r);
}

Test(guest_boot, triple_fault_dumps_registers_and_fails, .timeout = 300)
{
	struct vmtest_result r;

	run_action("pvh", "action=triplefault", NULL, &r);
	assert_line(&r, "guest: triplefault");
	cr_assert_not(r.timed_out, "console:\n%s\nstderr:\n%s", r.out, r.err);
	cr_assert_eq(r.status, 1, "stderr:\n%s", r.err);
	cr_assert(strstr(r.err, "triple fault"), "stderr:\n%s", r.err);
	cr_assert(strstr(r.err, "rip=0x"), "no register dump:\n%s", r.err);
	cr_assert(strstr(r.err, "cr0=0x"), "no register dump:\n%s", r.err);
	vmtest_free(&r);
}

Test(guest_boot, sigterm_stops_a_running_guest, .timeout = 300)
{
	const char *argv[] = {"ember", "run", "--kernel", guest("pvh"), "--cmdline", "action=spin",
			      NULL};
	struct vmtest_result r;

	VMTEST_REQUIRE_ACCEL();
	cr_assert_eq(vmtest_run(&r, argv, NULL, 20), 0);
	assert_line(&r, "guest: spin");
	cr_assert(r.timed_out);
	cr_assert_eq(r.status, 128 + 15, "status %d; stderr:\n%s", r.status, r.err);
	cr_assert(strstr(r.err, "stopping the VM on signal"), "stderr:\n%s", r.err);
	vmtest_free(&r);
}

/*
 * `syscall` from user mode enters the kernel at CPL 0 through a
 * supervisor-only LSTAR, and sysretq comes back: on hosts whose KVM leaves
 * such a syscall at CPL 3, that is ember's fixup (x86/syscall_fixup.h).
 */
Test(guest_boot, user_mode_syscall_enters_cpl0_and_returns, .timeout = 300)
{
	struct vmtest_result r;

	run_action("pvh", "action=syscall", NULL, &r);
	assert_line(&r, "guest: syscall");
	assert_line(&r, "guest: syscall returned cs=0x8");
	assert_no_failure_line(&r);
	cr_assert_eq(r.status, 0, "stderr:\n%s", r.err);
	vmtest_free(&r);
}
