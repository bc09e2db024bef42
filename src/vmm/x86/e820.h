/*
 * The x86 physical memory map handed to the guest (e820 for the Linux boot
 * protocol, the same entries as hvm_memmap_table_entry for PVH). Built from
 * the guest's RAM regions and ember's fixed layout.
 */
#ifndef EMBER_VMM_X86_E820_H
#define EMBER_VMM_X86_E820_H

#include <stddef.h>
#include <stdint.h>

#include "vmm/memory.h"

/* Types shared by e820 and Xen's hvm_memmap_table_entry. */
#define E820_RAM 1
#define E820_RESERVED 2
#define E820_ACPI 3
#define E820_NVS 4
#define E820_UNUSABLE 5

/* Most entries e820_build() can produce: 3 low + 1 ACPI + 1 high. */
#define E820_MAX_BUILT 8

struct e820_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
};

/*
 * Fills out[0..max) with the map, sorted by address and without overlap:
 *   RAM       [0, LAYOUT_EBDA_START)
 *   reserved  [LAYOUT_EBDA_START, 0xa0000)        EBDA
 *   reserved  [LAYOUT_ACPI_START, LAYOUT_ACPI_END)  ACPI tables (see e820.c)
 *   RAM       [1 MiB, end of the low region)
 *   RAM       each region above 4 GiB
 * Every entry is clipped to the RAM that backs it, so small RAM sizes give a
 * shorter map rather than entries pointing at nothing. Returns the number
 * of entries, or -ENOSPC when max is too small, -EINVAL when mem has no
 * region at guest-physical 0.
 */
int e820_build(const struct guest_mem *mem, struct e820_entry *out, size_t max);

#endif
