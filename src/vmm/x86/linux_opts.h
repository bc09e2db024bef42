/*
 * Kernel options ember adds for Linux guests on hosts whose KVM executes
 * guest CPL 0 code by instruction emulation (a software nested KVM such as
 * PVM: see ../shared/HOST-KVM.md). Such a KVM cannot execute xrstor or the
 * SSE code of the kernel's crypto (blake2s in the entropy pool) at all, and
 * clac/stac, cmpxchg16b and popcnt only through ember's user-space
 * completion, at a VM exit each; string moves byte by byte (ERMS, FSRM)
 * cost one emulation step per byte. Each option below steers the kernel
 * away from one of those, cheaply (by feature number: Linux 6.1 knows no
 * names in clearcpuid=, and no longer has noxsave or nosmap):
 *   137  SSSE3 (and the SSE4 that depend on it): no SIMD crypto
 *   141  CX16: SLUB takes its lock path, not cmpxchg16b
 *   151  POPCNT: the kernel's software hweight
 *   154  XSAVE (and AVX): no xrstor
 *   288  FSGSBASE: the FS/GS base through MSRs, which KVM handles itself,
 *        not rd/wr{fs,gs}base, which exit to ember on each task switch
 *   297  ERMS, 580 FSRM: rep movsq/stosq instead of movsb/stosb
 *   308  SMAP: no clac/stac on every user access and kernel entry
 */
#ifndef EMBER_VMM_X86_LINUX_OPTS_H
#define EMBER_VMM_X86_LINUX_OPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LINUX_OPTS_CPL0_EMULATED "clearcpuid=137,141,151,154,288,297,308,580"

/*
 * True when this host's KVM emulates guest CPL 0: the kvm_pvm module is
 * loaded, or the CPU flags in `cpuinfo` (the text of /proc/cpuinfo; NULL
 * reads it) show neither vmx nor svm, so no hardware runs the guest.
 */
bool linux_opts_host_needs(const char *cpuinfo);

/* True for a kernel image built from Linux (bzImage kernel_version, or the banner in an ELF). */
bool linux_opts_is_linux(const uint8_t *img, size_t len);

/*
 * Writes `cmdline` followed by each word of `opts` whose name (the part
 * before '=') the command line does not already set: the user's own
 * choice wins. `added` (may be NULL) gets the words appended, space
 * separated. 0, or -E2BIG when out or added is too small.
 */
int linux_opts_append(const char *cmdline, const char *opts, char *out, size_t outlen, char *added,
		      size_t addedlen);

#endif
