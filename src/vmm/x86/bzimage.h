/*
 * Linux bzImage loader for the 64-bit boot protocol
 * (Documentation/arch/x86/boot.rst): the protected-mode part goes to 1 MiB,
 * the setup header is copied into a fresh zero page (struct boot_params),
 * and the vCPU enters at load address + 0x200 in long mode with RSI = zero
 * page. Requires boot protocol 2.12+ and XLF_KERNEL_64.
 */
#ifndef EMBER_VMM_X86_BZIMAGE_H
#define EMBER_VMM_X86_BZIMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/memory.h"
#include "vmm/x86/boot.h"

#define BZ_BOOT_FLAG 0xaa55
#define BZ_HDRS_MAGIC 0x53726448 /* "HdrS" */
#define BZ_MIN_VERSION 0x020c	 /* 2.12: xloadflags, 64-bit entry flag */
#define BZ_RSDP_VERSION 0x020e	 /* 2.14: boot_params.acpi_rsdp_addr */

#define BZ_LOADED_HIGH 0x01 /* loadflags */
#define BZ_CAN_USE_HEAP 0x80
#define BZ_XLF_KERNEL_64 0x01 /* xloadflags */

#define BZ_LOADER_UNDEFINED 0xff /* type_of_loader: no assigned ID */
#define BZ_HEAP_END_PTR 0xfe00
#define BZ_ENTRY64_OFFSET 0x200
#define BZ_E820_MAX 128
#define BZ_HEADER_OFFSET 0x1f1

/* struct setup_header, at 0x1f1 in the file and in boot_params. */
struct bz_setup_header {
	uint8_t setup_sects;
	uint16_t root_flags;
	uint32_t syssize;
	uint16_t ram_size;
	uint16_t vid_mode;
	uint16_t root_dev;
	uint16_t boot_flag;
	uint16_t jump;
	uint32_t header;
	uint16_t version;
	uint32_t realmode_swtch;
	uint16_t start_sys_seg;
	uint16_t kernel_version;
	uint8_t type_of_loader;
	uint8_t loadflags;
	uint16_t setup_move_size;
	uint32_t code32_start;
	uint32_t ramdisk_image;
	uint32_t ramdisk_size;
	uint32_t bootsect_kludge;
	uint16_t heap_end_ptr;
	uint8_t ext_loader_ver;
	uint8_t ext_loader_type;
	uint32_t cmd_line_ptr;
	uint32_t initrd_addr_max;
	uint32_t kernel_alignment;
	uint8_t relocatable_kernel;
	uint8_t min_alignment;
	uint16_t xloadflags;
	uint32_t cmdline_size;
	uint32_t hardware_subarch;
	uint64_t hardware_subarch_data;
	uint32_t payload_offset;
	uint32_t payload_length;
	uint64_t setup_data;
	uint64_t pref_address;
	uint32_t init_size;
	uint32_t handover_offset;
	uint32_t kernel_info_offset;
} __attribute__((packed));

struct bz_e820_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
} __attribute__((packed));

/* struct boot_params, the "zero page": only the fields ember writes are named. */
struct bz_boot_params {
	uint8_t _pad0[0x070];
	uint64_t acpi_rsdp_addr; /* 0x070 */
	uint8_t _pad1[0x0c0 - 0x078];
	uint32_t ext_ramdisk_image; /* 0x0c0 */
	uint32_t ext_ramdisk_size;  /* 0x0c4 */
	uint32_t ext_cmd_line_ptr;  /* 0x0c8 */
	uint8_t _pad2[0x1e8 - 0x0cc];
	uint8_t e820_entries; /* 0x1e8 */
	uint8_t _pad3[0x1f1 - 0x1e9];
	struct bz_setup_header hdr; /* 0x1f1 */
	uint8_t _pad4[0x2d0 - 0x26c];
	struct bz_e820_entry e820_table[BZ_E820_MAX]; /* 0x2d0 */
	uint8_t _pad5[0x1000 - 0xcd0];
} __attribute__((packed));

/* True when the image carries the bzImage boot flag and "HdrS" magic. */
bool bzimage_probe(const uint8_t *img, size_t len);

/*
 * Loads the bzImage in img[0..len) with args' command line, initrd and RSDP,
 * writes the zero page at LAYOUT_ZERO_PAGE and fills entry. Nothing is
 * written to guest memory unless every check passed. 0 or -errno with one
 * line in err.
 */
int bzimage_load(struct guest_mem *mem, const uint8_t *img, size_t len,
		 const struct boot_args *args, struct boot_entry *entry, char *err, size_t errlen);

#endif
