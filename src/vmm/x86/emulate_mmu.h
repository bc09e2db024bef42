/*
 * Guest linear -> physical translation for the user-space instruction
 * completion (emulate.c): walks the guest's own page tables in guest memory
 * the way the CPU would (no paging, 32-bit, PAE, 4- and 5-level), checks
 * the access against the entries (present, write, user, NX, SMEP, SMAP) and
 * sets their accessed and dirty bits.
 */
#ifndef EMBER_VMM_X86_EMULATE_MMU_H
#define EMBER_VMM_X86_EMULATE_MMU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/memory.h"

/* The control state a walk depends on (from struct kvm_sregs and RFLAGS). */
struct mmu_mode {
	uint64_t cr0;
	uint64_t cr3;
	uint64_t cr4;
	uint64_t efer;
	unsigned int cpl; /* 0..3 */
	bool ac;	  /* RFLAGS.AC: SMAP lets supervisor data accesses through */
};

/* What an access does: flags for mmu_translate(). */
#define MMU_WRITE 0x1u
#define MMU_FETCH 0x2u
#define MMU_IMPLICIT_SV 0x4u /* a supervisor access whatever the CPL (descriptor tables) */

/* #PF error code bits. */
#define PF_PRESENT 0x1u
#define PF_WRITE 0x2u
#define PF_USER 0x4u
#define PF_RSVD 0x8u
#define PF_FETCH 0x10u

/*
 * Translates linear address la for one access. Returns 0 with *gpa set;
 * -EFAULT when the access raises #PF (*pf_error is its error code, CR2 is
 * la); -ENXIO when a page-table entry lies outside guest RAM (no exception
 * a CPU would raise: the caller gives up on the instruction).
 */
int mmu_translate(const struct guest_mem *mem, const struct mmu_mode *mode, uint64_t la,
		  unsigned int access, uint64_t *gpa, uint32_t *pf_error);

/*
 * Copies len bytes at linear address la into buf as a supervisor access,
 * a page at a time (for the monitor's own reads of guest kernel data).
 * 0, or -EFAULT when a page is not mapped or not RAM.
 */
int mmu_read_sv(const struct guest_mem *mem, const struct mmu_mode *mode, uint64_t la, void *buf,
		size_t len);

/* True when la is canonical for the mode's linear-address width (48 or 57 bits). */
bool mmu_canonical(const struct mmu_mode *mode, uint64_t la);

#endif
