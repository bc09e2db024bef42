#include "vmm/x86/bzimage.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "vmm/x86/e820.h"
#include "vmm/x86/layout.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "boot_params is little-endian");
_Static_assert(sizeof(struct bz_setup_header) == 0x26c - 0x1f1, "setup_header size");
_Static_assert(sizeof(struct bz_e820_entry) == 20, "boot_e820_entry size");
_Static_assert(sizeof(struct bz_boot_params) == 4096, "boot_params size");
_Static_assert(offsetof(struct bz_boot_params, acpi_rsdp_addr) == 0x070, "acpi_rsdp_addr");
_Static_assert(offsetof(struct bz_boot_params, ext_ramdisk_image) == 0x0c0, "ext_ramdisk_image");
_Static_assert(offsetof(struct bz_boot_params, ext_ramdisk_size) == 0x0c4, "ext_ramdisk_size");
_Static_assert(offsetof(struct bz_boot_params, ext_cmd_line_ptr) == 0x0c8, "ext_cmd_line_ptr");
_Static_assert(offsetof(struct bz_boot_params, e820_entries) == 0x1e8, "e820_entries");
_Static_assert(offsetof(struct bz_boot_params, hdr) == BZ_HEADER_OFFSET, "hdr");
_Static_assert(offsetof(struct bz_boot_params, e820_table) == 0x2d0, "e820_table");
_Static_assert(offsetof(struct bz_boot_params, hdr.boot_flag) == 0x1fe, "boot_flag");
_Static_assert(offsetof(struct bz_boot_params, hdr.header) == 0x202, "header");
_Static_assert(offsetof(struct bz_boot_params, hdr.version) == 0x206, "version");
_Static_assert(offsetof(struct bz_boot_params, hdr.type_of_loader) == 0x210, "type_of_loader");
_Static_assert(offsetof(struct bz_boot_params, hdr.code32_start) == 0x214, "code32_start");
_Static_assert(offsetof(struct bz_boot_params, hdr.ramdisk_image) == 0x218, "ramdisk_image");
_Static_assert(offsetof(struct bz_boot_params, hdr.heap_end_ptr) == 0x224, "heap_end_ptr");
_Static_assert(offsetof(struct bz_boot_params, hdr.cmd_line_ptr) == 0x228, "cmd_line_ptr");
_Static_assert(offsetof(struct bz_boot_params, hdr.initrd_addr_max) == 0x22c, "initrd_addr_max");
_Static_assert(offsetof(struct bz_boot_params, hdr.xloadflags) == 0x236, "xloadflags");
_Static_assert(offsetof(struct bz_boot_params, hdr.cmdline_size) == 0x238, "cmdline_size");
_Static_assert(offsetof(struct bz_boot_params, hdr.setup_data) == 0x250, "setup_data");
_Static_assert(offsetof(struct bz_boot_params, hdr.pref_address) == 0x258, "pref_address");
_Static_assert(offsetof(struct bz_boot_params, hdr.init_size) == 0x260, "init_size");

#define BZ_JUMP_HIGH_BYTE 0x201	 /* the setup header ends at 0x202 + this byte */
#define BZ_HEADER_COPY_END 0x290 /* next boot_params field after the header's padding */
#define BZ_SECTOR 512
#define BZ_MIN_SETUP 1024 /* boot sector + at least one setup sector */

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)get16(p) | (uint32_t)get16(p + 2) << 16;
}

bool bzimage_probe(const uint8_t *img, size_t len)
{
	return len >= 0x206 && get16(img + 0x1fe) == BZ_BOOT_FLAG &&
	       get32(img + 0x202) == BZ_HDRS_MAGIC;
}

/* What the checks work out, for the write phase. */
struct bz_plan {
	uint64_t setup_size; /* bytes before the protected-mode part in the file */
	uint64_t pm_size;    /* protected-mode part, loaded at LAYOUT_KERNEL_START */
	uint64_t decomp_at;  /* where the decompressor will put the kernel */
	uint64_t kernel_end; /* end of everything the kernel claims from 1 MiB */
	uint64_t initrd_addr;
	struct e820_entry e820[E820_MAX_BUILT];
	int e820_n;
};

/* Copies the setup header, as long as the image says it is, into bp. */
static void bz_copy_header(struct bz_boot_params *bp, const uint8_t *img, size_t len)
{
	size_t end = 0x202 + (size_t)img[BZ_JUMP_HIGH_BYTE];

	if (end > BZ_HEADER_COPY_END)
		end = BZ_HEADER_COPY_END;
	if (end > len)
		end = len;
	memcpy((uint8_t *)bp + BZ_HEADER_OFFSET, img + BZ_HEADER_OFFSET, end - BZ_HEADER_OFFSET);
}

static int bz_check_header(const struct bz_setup_header *h, size_t len, const char *name,
			   struct bz_plan *plan, char *err, size_t errlen)
{
	unsigned int sects = h->setup_sects ? h->setup_sects : 4;

	if (h->version < BZ_MIN_VERSION) {
		boot_errf(err, errlen,
			  "kernel %s: Linux boot protocol %u.%02u is too old, ember needs 2.12+ "
			  "(Linux 3.8+)",
			  name, h->version >> 8, h->version & 0xff);
		return -ENOEXEC;
	}
	if (!(h->loadflags & BZ_LOADED_HIGH)) {
		boot_errf(err, errlen,
			  "kernel %s: loadflags lacks LOADED_HIGH: a zImage, not a bzImage", name);
		return -ENOEXEC;
	}
	if (!(h->xloadflags & BZ_XLF_KERNEL_64)) {
		boot_errf(err, errlen,
			  "kernel %s: no 64-bit entry point (xloadflags lacks XLF_KERNEL_64); "
			  "ember boots 64-bit kernels only",
			  name);
		return -ENOEXEC;
	}
	plan->setup_size = (uint64_t)(sects + 1) * BZ_SECTOR;
	if (len <= plan->setup_size + BZ_ENTRY64_OFFSET) {
		boot_errf(err, errlen,
			  "kernel %s: truncated: %zu bytes, but setup_sects=%u puts the kernel "
			  "(and its 64-bit entry at +0x200) beyond byte %llu",
			  name, len, h->setup_sects, (unsigned long long)plan->setup_size);
		return -ENOEXEC;
	}
	plan->pm_size = len - plan->setup_size;
	if ((uint64_t)h->syssize * 16 > plan->pm_size) {
		boot_errf(err, errlen,
			  "kernel %s: truncated: syssize says %llu bytes of kernel after the setup "
			  "code, the file has %llu",
			  name, (unsigned long long)h->syssize * 16,
			  (unsigned long long)plan->pm_size);
		return -ENOEXEC;
	}
	return 0;
}

/*
 * The protected-mode part always goes to 1 MiB (what code32_start says for
 * every bzImage, and what Firecracker and cloud-hypervisor do). A 64-bit
 * bzImage's decompressor then moves itself: to pref_address (the kernel's
 * LOAD_PHYSICAL_ADDR) when not relocatable, else to the load address rounded
 * up to kernel_alignment but never below LOAD_PHYSICAL_ADDR (startup_64 in
 * arch/x86/boot/compressed/head_64.S), and uses init_size bytes from there.
 * All of [1 MiB, that end) counts as the kernel's, so the initrd goes above.
 */
static int bz_plan_kernel(const struct guest_mem *mem, const struct bz_setup_header *h,
			  const char *name, struct bz_plan *plan, char *err, size_t errlen)
{
	uint64_t low_end = boot_low_end(mem);
	uint64_t load_end = LAYOUT_KERNEL_START + plan->pm_size;
	uint64_t base = h->pref_address;
	uint64_t align = h->kernel_alignment;
	uint64_t decomp_end;

	if (h->relocatable_kernel) {
		uint64_t up;

		if (align == 0 || (align & (align - 1))) {
			boot_errf(err, errlen,
				  "kernel %s: kernel_alignment 0x%llx is not a power of two", name,
				  (unsigned long long)align);
			return -ENOEXEC;
		}
		up = (LAYOUT_KERNEL_START + align - 1) & ~(align - 1);
		if (up > base)
			base = up;
	}
	if (base < LAYOUT_KERNEL_START)
		base = LAYOUT_KERNEL_START;
	if (__builtin_add_overflow(base, (uint64_t)h->init_size, &decomp_end))
		decomp_end = UINT64_MAX;
	plan->decomp_at = base;
	plan->kernel_end = decomp_end > load_end ? decomp_end : load_end;
	if (plan->kernel_end > low_end) {
		boot_errf(err, errlen,
			  "kernel %s: needs guest RAM up to 0x%llx (%s loaded at 1 MiB, "
			  "decompressing at 0x%llx with init_size %s) but RAM below 4 GiB ends "
			  "at 0x%llx (%s of RAM)",
			  name, (unsigned long long)plan->kernel_end, boot_size(plan->pm_size).s,
			  (unsigned long long)base, boot_size(h->init_size).s,
			  (unsigned long long)low_end, boot_size(mem->ram_size).s);
		return -ENOMEM;
	}
	return 0;
}

static int bz_plan_rest(const struct guest_mem *mem, const struct bz_setup_header *h,
			const struct boot_args *args, struct bz_plan *plan, char *err,
			size_t errlen)
{
	int ret;

	ret = boot_check_cmdline(args->cmdline, h->cmdline_size, err, errlen);
	if (ret)
		return ret;
	plan->initrd_addr = 0;
	if (args->initrd_size) {
		ret = boot_place_initrd(mem, args, LAYOUT_KERNEL_START, plan->kernel_end,
					h->initrd_addr_max, &plan->initrd_addr, err, errlen);
		if (ret)
			return ret;
	}
	plan->e820_n = e820_build(mem, plan->e820, E820_MAX_BUILT);
	if (plan->e820_n < 0) {
		boot_errf(err, errlen, "e820: cannot build the memory map (%s)",
			  strerror(-plan->e820_n));
		return plan->e820_n;
	}
	return 0;
}

/* Fields the loader writes, per boot.rst; the rest stays as the image has it. */
static void bz_fill_params(struct bz_boot_params *bp, const struct boot_args *args,
			   const struct bz_plan *plan)
{
	struct bz_setup_header *h = &bp->hdr;

	h->type_of_loader = BZ_LOADER_UNDEFINED;
	h->loadflags |= BZ_CAN_USE_HEAP;
	h->heap_end_ptr = BZ_HEAP_END_PTR;
	h->code32_start = (uint32_t)LAYOUT_KERNEL_START;
	h->cmd_line_ptr = (uint32_t)LAYOUT_CMDLINE;
	bp->ext_cmd_line_ptr = (uint32_t)(LAYOUT_CMDLINE >> 32);
	h->ramdisk_image = (uint32_t)plan->initrd_addr;
	bp->ext_ramdisk_image = (uint32_t)(plan->initrd_addr >> 32);
	h->ramdisk_size = (uint32_t)args->initrd_size;
	bp->ext_ramdisk_size = (uint32_t)(args->initrd_size >> 32);
	/* Loader-owned fields a hostile image could preset: no setup_data list. */
	h->setup_data = 0;
	h->hardware_subarch = 0;
	h->hardware_subarch_data = 0;
	/* Older kernels find the RSDP by scanning 0xe0000-0xfffff, where it is. */
	if (h->version >= BZ_RSDP_VERSION)
		bp->acpi_rsdp_addr = args->rsdp_gpa;
	bp->e820_entries = (uint8_t)plan->e820_n;
	for (int i = 0; i < plan->e820_n; i++) {
		bp->e820_table[i].addr = plan->e820[i].addr;
		bp->e820_table[i].size = plan->e820[i].size;
		bp->e820_table[i].type = plan->e820[i].type;
	}
}

static int bz_write(struct guest_mem *mem, const uint8_t *img, const struct boot_args *args,
		    const struct bz_boot_params *bp, const struct bz_plan *plan, char *err,
		    size_t errlen)
{
	int ret;

	if (gmem_write(mem, LAYOUT_KERNEL_START, img + plan->setup_size, plan->pm_size) ||
	    gmem_write(mem, LAYOUT_ZERO_PAGE, bp, sizeof(*bp))) {
		/* Checked above; reaching this is a bug, still no crash. */
		boot_errf(err, errlen, "kernel %s: does not fit in guest RAM",
			  boot_kernel_name(args));
		return -ENOMEM;
	}
	ret = boot_write_cmdline(mem, args->cmdline, err, errlen);
	if (ret)
		return ret;
	if (args->initrd && args->initrd_size &&
	    gmem_write(mem, plan->initrd_addr, args->initrd, args->initrd_size)) {
		boot_errf(err, errlen, "initrd %s: does not fit in guest RAM",
			  boot_initrd_name(args));
		return -ENOMEM;
	}
	return 0;
}

int bzimage_load(struct guest_mem *mem, const uint8_t *img, size_t len,
		 const struct boot_args *args, struct boot_entry *entry, char *err, size_t errlen)
{
	const char *name = boot_kernel_name(args);
	struct bz_boot_params bp;
	struct bz_plan plan;
	int ret;

	ret = boot_check_ram(mem, err, errlen);
	if (ret)
		return ret;
	if (!bzimage_probe(img, len)) {
		boot_errf(err, errlen,
			  "kernel %s: not a Linux bzImage (no 0xAA55 boot flag and \"HdrS\" magic "
			  "at 0x1fe/0x202)",
			  name);
		return -ENOEXEC;
	}
	memset(&bp, 0, sizeof(bp));
	bz_copy_header(&bp, img, len);
	ret = bz_check_header(&bp.hdr, len, name, &plan, err, errlen);
	if (!ret)
		ret = bz_plan_kernel(mem, &bp.hdr, name, &plan, err, errlen);
	if (!ret)
		ret = bz_plan_rest(mem, &bp.hdr, args, &plan, err, errlen);
	if (ret)
		return ret;
	bz_fill_params(&bp, args, &plan);
	ret = bz_write(mem, img, args, &bp, &plan, err, errlen);
	if (ret)
		return ret;
	*entry = (struct boot_entry){
	    .mode = BOOT_LINUX64,
	    .entry = LAYOUT_KERNEL_START + BZ_ENTRY64_OFFSET,
	    .boot_info = LAYOUT_ZERO_PAGE,
	    .kernel_end = plan.kernel_end,
	    .initrd_addr = plan.initrd_addr,
	    .initrd_size = args->initrd_size,
	};
	return 0;
}
