#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "vmm/x86/linux_opts.h"

static void expect(const char *cmdline, const char *opts, const char *want, const char *want_added)
{
	char out[256], added[128];

	cr_assert_eq(linux_opts_append(cmdline, opts, out, sizeof(out), added, sizeof(added)), 0);
	cr_assert_str_eq(out, want);
	cr_assert_str_eq(added, want_added);
}

Test(linux_opts, appends_what_the_command_line_lacks)
{
	expect("console=ttyS0", "noxsave nosmap clearcpuid=137", "console=ttyS0 noxsave nosmap clearcpuid=137",
	       "noxsave nosmap clearcpuid=137");
	expect("", "noxsave", "noxsave", "noxsave");
	expect(NULL, "noxsave", "noxsave", "noxsave");
}

Test(linux_opts, the_users_own_setting_wins)
{
	/* Same name, other value: the user's clearcpuid stays alone. */
	expect("clearcpuid=1 noxsave", "noxsave nosmap clearcpuid=137", "clearcpuid=1 noxsave nosmap",
	       "nosmap");
	expect("  nosmap\tnoxsave ", "noxsave nosmap", "  nosmap\tnoxsave ", "");
}

Test(linux_opts, names_match_whole_words_only)
{
	/* "noxsaves" and "xnosmap" are other options; "nosmap=1" is the same one. */
	expect("noxsaves xnosmap", "noxsave nosmap", "noxsaves xnosmap noxsave nosmap",
	       "noxsave nosmap");
	expect("nosmap=1", "nosmap", "nosmap=1", "");
}

Test(linux_opts, too_small_a_buffer_is_an_error_not_a_cut)
{
	char out[16], added[64];

	cr_assert_eq(linux_opts_append("console=ttyS0", "noxsave", out, sizeof(out), added,
				       sizeof(added)),
		     -E2BIG);
	cr_assert_eq(linux_opts_append("console=ttyS0", "noxsave", out, 0, added, sizeof(added)),
		     -E2BIG);
}

Test(linux_opts, host_without_vmx_or_svm_needs_them)
{
	const char *pvm = "processor\t: 0\nflags\t\t: fpu vme de pse tsc msr sse2 ssse3 hypervisor\n";
	const char *vmx = "processor\t: 0\nflags\t\t: fpu vme vmx sse2\n";
	const char *svm = "processor\t: 0\nflags\t\t: fpu svm\n";
	const char *svm_lock = "processor\t: 0\nflags\t\t: fpu svm_lock\n";

	cr_assert(linux_opts_host_needs(pvm));
	cr_assert(linux_opts_host_needs(svm_lock), "svm_lock is not svm");
	cr_assert_not(linux_opts_host_needs(vmx));
	cr_assert_not(linux_opts_host_needs(svm));
	cr_assert_not(linux_opts_host_needs("no flags line here\n"), "unknown layout: ordinary host");
}

Test(linux_opts, recognises_linux_images)
{
	static uint8_t bz[0x400], elf[256], guest[0x400];

	/* A bzImage whose kernel_version points at a string: Linux's build. */
	bz[0x1fe] = 0x55;
	bz[0x1ff] = 0xaa;
	memcpy(bz + 0x202, "HdrS", 4);
	memcpy(guest, bz, sizeof(bz));
	bz[0x20e] = 0x10;
	bz[0x20f] = 0x01;
	cr_assert(linux_opts_is_linux(bz, sizeof(bz)));
	cr_assert_not(linux_opts_is_linux(guest, sizeof(guest)), "kernel_version 0: not Linux");
	memcpy(elf, "\x7f" "ELF", 4);
	cr_assert_not(linux_opts_is_linux(elf, sizeof(elf)));
	memcpy(elf + 100, "Linux version 6.1.0 (x@y)", 25);
	cr_assert(linux_opts_is_linux(elf, sizeof(elf)));
}
