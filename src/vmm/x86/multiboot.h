/*
 * Multiboot (version 1) kernel loader, as GRUB and QEMU's -kernel do it:
 * the kernel carries a multiboot header (magic 0x1BADB002, flags,
 * checksum; 4-byte aligned in its first 8192 bytes). It is loaded either
 * from its ELF32/ELF64 program headers (PT_LOAD at p_paddr) or, with header
 * flag bit 16, from the header's address fields (the "a.out kludge").
 *
 * The vCPU enters in 32-bit protected mode, paging off, interrupts off, flat
 * segments, with EAX = MULTIBOOT_BOOTLOADER_MAGIC and EBX = the multiboot
 * information (BOOT_MULTIBOOT in boot.h). The information offers
 * mem_lower/mem_upper, the command line ("<kernel path> <cmdline>", as
 * GRUB and QEMU pass it: the first word is the program name), the initrd as
 * module 0 (its string: the initrd's path), the memory map (ember's e820
 * map) and the boot loader name "ember".
 *
 * Guest-physical layout (layout.h): the information, module list, memory
 * map and loader name in [LAYOUT_PVH_START_INFO, LAYOUT_PVH_END); the command
 * line and the module string at LAYOUT_CMDLINE. Kernel segments may lie
 * anywhere in RAM below 4 GiB outside those, the first page (IVT, BDA and
 * ember's boot GDT) and [LAYOUT_EBDA_START, 1 MiB) (EBDA, ACPI tables):
 * kvm-unit-tests' realmode test loads at 32 KiB.
 */
#ifndef EMBER_VMM_X86_MULTIBOOT_H
#define EMBER_VMM_X86_MULTIBOOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/memory.h"
#include "vmm/x86/boot.h"
#include "vmm/x86/layout.h"

#define MULTIBOOT_HEADER_MAGIC 0x1BADB002u
#define MULTIBOOT_BOOTLOADER_MAGIC 0x2BADB002u
#define MULTIBOOT_SEARCH 8192 /* the header lies in the file's first 8 KiB */

/* Header flags. Bits 0-15 are requirements: an unknown one is refused. */
#define MULTIBOOT_PAGE_ALIGN 0x00000001u  /* modules page-aligned (always) */
#define MULTIBOOT_MEMORY_INFO 0x00000002u /* mem_* fields (always) */
#define MULTIBOOT_VIDEO_MODE 0x00000004u  /* a video mode: none is given (text) */
#define MULTIBOOT_AOUT_KLUDGE 0x00010000u /* load from the address fields */
#define MULTIBOOT_FLAGS_KNOWN (MULTIBOOT_PAGE_ALIGN | MULTIBOOT_MEMORY_INFO | MULTIBOOT_VIDEO_MODE)

/* Information flags ember sets. */
#define MULTIBOOT_INFO_MEMORY 0x00000001u
#define MULTIBOOT_INFO_CMDLINE 0x00000004u
#define MULTIBOOT_INFO_MODS 0x00000008u
#define MULTIBOOT_INFO_MEM_MAP 0x00000040u
#define MULTIBOOT_INFO_LOADER_NAME 0x00000200u

struct multiboot_header {
	uint32_t magic;
	uint32_t flags;
	uint32_t checksum;
	/* With MULTIBOOT_AOUT_KLUDGE: */
	uint32_t header_addr;
	uint32_t load_addr;
	uint32_t load_end_addr;
	uint32_t bss_end_addr;
	uint32_t entry_addr;
};

struct multiboot_info {
	uint32_t flags;
	uint32_t mem_lower; /* KiB from 0 */
	uint32_t mem_upper; /* KiB from 1 MiB to the first hole */
	uint32_t boot_device;
	uint32_t cmdline;
	uint32_t mods_count;
	uint32_t mods_addr;
	uint32_t syms[4];
	uint32_t mmap_length; /* bytes */
	uint32_t mmap_addr;
	uint32_t drives_length;
	uint32_t drives_addr;
	uint32_t config_table;
	uint32_t boot_loader_name;
	uint32_t apm_table;
	uint32_t vbe_control_info;
	uint32_t vbe_mode_info;
	uint16_t vbe_mode;
	uint16_t vbe_interface_seg;
	uint16_t vbe_interface_off;
	uint16_t vbe_interface_len;
	uint64_t framebuffer_addr;
	uint32_t framebuffer_pitch;
	uint32_t framebuffer_width;
	uint32_t framebuffer_height;
	uint8_t framebuffer_bpp;
	uint8_t framebuffer_type;
	uint8_t color_info[6];
} __attribute__((packed));

struct multiboot_module {
	uint32_t mod_start;
	uint32_t mod_end; /* exclusive */
	uint32_t string;
	uint32_t reserved;
};

/* size counts the bytes after itself (20): the next entry is at +size+4. */
struct multiboot_mmap_entry {
	uint32_t size;
	uint64_t addr;
	uint64_t len;
	uint32_t type;
} __attribute__((packed));

/* Where the pieces go inside [LAYOUT_PVH_START_INFO, LAYOUT_PVH_END). */
#define MULTIBOOT_INFO_GPA LAYOUT_PVH_START_INFO
#define MULTIBOOT_MODS_GPA (MULTIBOOT_INFO_GPA + 0x100)
#define MULTIBOOT_MMAP_GPA (MULTIBOOT_INFO_GPA + 0x200)
#define MULTIBOOT_LOADER_NAME_GPA (MULTIBOOT_INFO_GPA + 0x400)
#define MULTIBOOT_LOADER_NAME "ember"

/*
 * Finds a valid header (magic, checksum) at a 4-byte aligned offset in the
 * first MULTIBOOT_SEARCH bytes; true with *offset set (offset may be NULL).
 */
bool multiboot_probe(const uint8_t *img, size_t len, size_t *offset);

/*
 * Loads the multiboot kernel in img[0..len): segments (bss zeroed), the
 * initrd as module 0 (placed; copied when args->initrd is set), the command
 * line and the information. Nothing is written unless every check passed.
 * entry: mode BOOT_MULTIBOOT, entry point, boot_info = the information,
 * eax = MULTIBOOT_BOOTLOADER_MAGIC. 0 or -errno with one line in err:
 * -ENOEXEC for a malformed image, -ENOMEM for what does not fit in RAM,
 * -E2BIG for a command line too long.
 */
int multiboot_load(struct guest_mem *mem, const uint8_t *img, size_t len,
		   const struct boot_args *args, struct boot_entry *entry, char *err,
		   size_t errlen);

#endif
