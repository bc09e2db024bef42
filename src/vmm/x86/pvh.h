/*
 * ELF kernel loader for the Xen PVH boot ABI: PT_LOAD segments go to their
 * physical addresses, the entry is the XEN_ELFNOTE_PHYS32_ENTRY note, and
 * the vCPU starts in 32-bit protected mode (paging off) with EBX pointing at
 * struct hvm_start_info (xen/include/public/arch-x86/hvm/start_info.h,
 * version 1: with the memory map).
 */
#ifndef EMBER_VMM_X86_PVH_H
#define EMBER_VMM_X86_PVH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/memory.h"
#include "vmm/x86/boot.h"

#define XEN_HVM_START_MAGIC 0x336ec578
#define XEN_ELFNOTE_PHYS32_ENTRY 18

struct hvm_start_info {
	uint32_t magic;
	uint32_t version;
	uint32_t flags;
	uint32_t nr_modules;
	uint64_t modlist_paddr;
	uint64_t cmdline_paddr;
	uint64_t rsdp_paddr;
	uint64_t memmap_paddr; /* version 1 */
	uint32_t memmap_entries;
	uint32_t reserved;
};

struct hvm_modlist_entry {
	uint64_t paddr;
	uint64_t size;
	uint64_t cmdline_paddr;
	uint64_t reserved;
};

/* type: the e820 types (E820_RAM...). */
struct hvm_memmap_table_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
	uint32_t reserved;
};

/* Where the pieces go inside [LAYOUT_PVH_START_INFO, LAYOUT_PVH_END). */
#define PVH_START_INFO_GPA LAYOUT_PVH_START_INFO
#define PVH_MODLIST_GPA (PVH_START_INFO_GPA + sizeof(struct hvm_start_info))
#define PVH_MEMMAP_GPA (PVH_MODLIST_GPA + sizeof(struct hvm_modlist_entry))

/* True when the image starts with the ELF magic (either class). */
bool pvh_probe(const uint8_t *img, size_t len);

/*
 * Loads the ELF64 (x86-64) or ELF32 (i386) executable in img[0..len):
 * segments at p_paddr (each must lie in guest RAM at or above 1 MiB; bss
 * zeroed), command line at LAYOUT_CMDLINE, initrd as module 0, start info
 * at LAYOUT_PVH_START_INFO. Nothing is written to guest memory unless every
 * check passed. 0 or -errno with one line in err.
 */
int pvh_load(struct guest_mem *mem, const uint8_t *img, size_t len, const struct boot_args *args,
	     struct boot_entry *entry, char *err, size_t errlen);

#endif
