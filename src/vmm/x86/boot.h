/*
 * Kernel loading for x86-64 guests: reads the kernel (Linux bzImage, an ELF
 * kernel with a Xen PVH entry note, or a multiboot kernel), the initrd and
 * the command line into guest memory, writes the boot parameters with the
 * e820 map, and tells the caller where and how to enter. The vCPU
 * registers, GDT and page tables are set up by the caller (cpu_boot.h) from
 * struct boot_entry.
 *
 * Guest-physical layout used (layout.h): PVH start info (or the multiboot
 * information, multiboot.h) at 0x6000, zero page at 0x7000, command line at
 * 0x20000, kernel from 1 MiB (a multiboot kernel may load lower), initrd at
 * the top of low RAM. Everything stays below 4 GiB (the boot page tables
 * map 0-4 GiB).
 */
#ifndef EMBER_VMM_X86_BOOT_H
#define EMBER_VMM_X86_BOOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/memory.h"

/*
 * Smallest guest RAM the layout works with: the boot structures and ACPI
 * tables fill the first 1 MiB, the kernel starts at 1 MiB. A real kernel
 * needs more; the loaders check each kernel's own needs (init_size, its
 * segments) and say how much is missing.
 */
#define BOOT_MIN_RAM (2ULL << 20)

enum boot_mode {
	BOOT_LINUX64, /* 64-bit Linux boot protocol: long mode, RSI = zero page */
	BOOT_PVH,     /* Xen PVH: 32-bit protected mode, paging off, EBX = start info */
	/*
	 * Multiboot 1: as BOOT_PVH (32-bit protected mode, flat 4 GiB CS and
	 * data segments, paging and interrupts off, EBX = multiboot
	 * information) and EAX = boot_entry.eax (0x2BADB002).
	 */
	BOOT_MULTIBOOT,
};

struct boot_entry {
	enum boot_mode mode;
	uint64_t entry;	      /* LINUX64: load address + 0x200; PVH: PHYS32_ENTRY note */
	uint64_t boot_info;   /* LINUX64: zero page (RSI); PVH: hvm_start_info (EBX);
				 MULTIBOOT: multiboot information (EBX) */
	uint32_t eax;	      /* MULTIBOOT: EAX at entry (the boot loader magic); else 0 */
	uint64_t kernel_end;  /* end of the memory the kernel claims (for logs) */
	uint64_t initrd_addr; /* where the initrd went; 0 when none */
	uint64_t initrd_size;
	char opts_added[128]; /* words of boot_config.linux_opts appended; "" = none */
};

struct boot_config {
	const char *kernel_path;
	const char *initrd_path; /* may be NULL */
	const char *cmdline;	 /* may be NULL = "" */
	uint64_t rsdp_gpa;	 /* ACPI RSDP address, 0 = none */
	/* Appended to a Linux kernel's command line where it lacks them (linux_opts.h); may be NULL. */
	const char *linux_opts;
};

/*
 * Reads the files, detects the format, loads kernel, initrd and command line
 * into mem and writes boot_params or hvm_start_info with the e820 map.
 * Returns 0, or -errno with ONE line in err naming the file or field and the
 * reason ("kernel /x/y: No such file or directory"). An empty initrd file
 * is an error (it is almost certainly a mistake, and Linux would ignore it).
 * Errors: -ENOENT/-EACCES/-EISDIR... from the files, -ENOEXEC for a kernel
 * that is neither format or is malformed, -ENOMEM when something does not
 * fit in guest RAM, -E2BIG for a command line too long, -EINVAL otherwise.
 */
int boot_load(struct guest_mem *mem, const struct boot_config *cfg, struct boot_entry *entry,
	      char *err, size_t errlen);

/* What the format loaders get: the kernel is passed separately as bytes. */
struct boot_args {
	const char *kernel_name; /* for messages, e.g. the path; NULL = "(memory)" */
	const char *initrd_name; /* NULL = "(memory)" */
	const char *cmdline;	 /* NULL = "" */
	/*
	 * initrd_size 0 means no initrd. initrd NULL with a size: only place
	 * it; the caller copies the bytes to entry->initrd_addr (boot_load
	 * reads the file straight into guest memory that way).
	 */
	const uint8_t *initrd;
	uint64_t initrd_size;
	uint64_t rsdp_gpa; /* 0 = none */
};

/* --- helpers shared by bzimage.c and pvh.c --- */

/* Formats one line into err (err may be NULL). */
void boot_errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* "128 MiB", "1.5 MiB", "12 KiB", "100 bytes": sizes for messages. */
struct boot_size_str {
	char s[32];
};
struct boot_size_str boot_size(uint64_t bytes);

const char *boot_kernel_name(const struct boot_args *args);
const char *boot_initrd_name(const struct boot_args *args);

/* End of the RAM region at guest-physical 0, or 0 when there is none. */
uint64_t boot_low_end(const struct guest_mem *mem);

/* -ENOMEM with a message unless the low RAM is at least BOOT_MIN_RAM. */
int boot_check_ram(const struct guest_mem *mem, char *err, size_t errlen);

/*
 * Checks the command line against `limit` bytes (without the NUL; the
 * kernel's cmdline_size, or UINT64_MAX) and ember's LAYOUT_CMDLINE_MAX.
 */
int boot_check_cmdline(const char *cmdline, uint64_t limit, char *err, size_t errlen);

/* Writes the command line (NUL-terminated) at LAYOUT_CMDLINE. */
int boot_write_cmdline(const struct guest_mem *mem, const char *cmdline, char *err, size_t errlen);

/*
 * Picks the page-aligned address for an initrd of args->initrd_size bytes:
 * as high as possible with its last byte <= last_byte_max and inside low
 * RAM, at or above 1 MiB, and outside the kernel's [kernel_start,
 * kernel_end). 0 with *gpa set, or -ENOMEM with a message.
 */
int boot_place_initrd(const struct guest_mem *mem, const struct boot_args *args,
		      uint64_t kernel_start, uint64_t kernel_end, uint64_t last_byte_max,
		      uint64_t *gpa, char *err, size_t errlen);

#endif
