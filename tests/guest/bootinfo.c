/*
 * What the monitor hands over: PVH struct hvm_start_info (version 1) or the
 * bzImage zero page (struct boot_params). Copied into struct boot_info early,
 * so later steps (the AP trampoline, the memory check) can't clobber it.
 */
#include "guest.h"

#define PVH_MAGIC 0x336ec578

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

struct hvm_memmap_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
	uint32_t reserved;
};

struct hvm_modlist_entry {
	uint64_t paddr;
	uint64_t size;
	uint64_t cmdline_paddr;
	uint64_t reserved;
};

/* Offsets in struct boot_params (Linux Documentation/arch/x86/zero-page). */
#define BP_ACPI_RSDP 0x070
#define BP_EXT_RAMDISK_IMAGE 0x0c0
#define BP_EXT_RAMDISK_SIZE 0x0c4
#define BP_EXT_CMD_LINE_PTR 0x0c8
#define BP_E820_ENTRIES 0x1e8
#define BP_HDR_MAGIC 0x202
#define BP_RAMDISK_IMAGE 0x218
#define BP_RAMDISK_SIZE 0x21c
#define BP_CMD_LINE_PTR 0x228
#define BP_E820_TABLE 0x2d0
#define BP_E820_MAX 128
#define BP_SIZE 0x1000
#define HDRS_MAGIC 0x53726448

static uint32_t rd32(uint64_t addr)
{
	uint32_t v;

	memcpy(&v, phys(addr), sizeof(v));
	return v;
}

static uint64_t rd64(uint64_t addr)
{
	uint64_t v;

	memcpy(&v, phys(addr), sizeof(v));
	return v;
}

static void copy_cmdline(struct boot_info *bi, uint64_t addr)
{
	size_t n = 0;

	if (addr) {
		for (; n < CMDLINE_MAX - 1 && phys_ok(addr + n, 1); n++) {
			char c = *(const char *)phys(addr + n);

			if (!c)
				break;
			bi->cmdline[n] = c;
		}
		if (n == CMDLINE_MAX - 1)
			gfail("cmdline longer than %d bytes", CMDLINE_MAX - 1);
	}
	bi->cmdline[n] = '\0';
}

static void add_range(struct boot_info *bi, uint64_t addr, uint64_t size, uint32_t type)
{
	if (bi->nmem == MEMMAP_MAX) {
		gfail("memory map has more than %d entries", MEMMAP_MAX);
		return;
	}
	bi->mem[bi->nmem].start = addr;
	bi->mem[bi->nmem].end = addr + size;
	bi->mem[bi->nmem].type = type;
	bi->nmem++;
}

static void parse_pvh(struct boot_info *bi, uint64_t ptr)
{
	struct hvm_start_info si;

	if (!ptr || !phys_ok(ptr, sizeof(si))) {
		gfail("pvh start info at 0x%lx not addressable", ptr);
		return;
	}
	memcpy(&si, phys(ptr), sizeof(si));
	if (si.magic != PVH_MAGIC) {
		gfail("pvh start info magic 0x%x", si.magic);
		return;
	}
	copy_cmdline(bi, si.cmdline_paddr);
	bi->rsdp = si.rsdp_paddr;
	if (si.version < 1) {
		gfail("pvh start info version %u has no memory map", si.version);
	} else if (!phys_ok(si.memmap_paddr,
			    (uint64_t)si.memmap_entries * sizeof(struct hvm_memmap_entry))) {
		gfail("pvh memmap at 0x%lx not addressable", si.memmap_paddr);
	} else {
		for (uint32_t i = 0; i < si.memmap_entries; i++) {
			struct hvm_memmap_entry e;

			memcpy(&e, phys(si.memmap_paddr + i * sizeof(e)), sizeof(e));
			add_range(bi, e.addr, e.size, e.type);
		}
	}
	if (si.nr_modules) {
		struct hvm_modlist_entry m;

		if (!phys_ok(si.modlist_paddr, sizeof(m))) {
			gfail("pvh modlist at 0x%lx not addressable", si.modlist_paddr);
			return;
		}
		memcpy(&m, phys(si.modlist_paddr), sizeof(m));
		bi->initrd_addr = m.paddr;
		bi->initrd_size = m.size;
	}
}

static void parse_zero_page(struct boot_info *bi, uint64_t bp)
{
	if (!bp || !phys_ok(bp, BP_SIZE)) {
		gfail("boot_params at 0x%lx not addressable", bp);
		return;
	}
	if (rd32(bp + BP_HDR_MAGIC) != HDRS_MAGIC) {
		gfail("boot_params has no HdrS setup header");
		return;
	}
	copy_cmdline(bi, rd32(bp + BP_CMD_LINE_PTR) | (uint64_t)rd32(bp + BP_EXT_CMD_LINE_PTR)
							  << 32);
	bi->rsdp = rd64(bp + BP_ACPI_RSDP);
	bi->initrd_addr = rd32(bp + BP_RAMDISK_IMAGE) | (uint64_t)rd32(bp + BP_EXT_RAMDISK_IMAGE)
							    << 32;
	bi->initrd_size = rd32(bp + BP_RAMDISK_SIZE) | (uint64_t)rd32(bp + BP_EXT_RAMDISK_SIZE)
							   << 32;

	unsigned int n = *(const uint8_t *)phys(bp + BP_E820_ENTRIES);

	if (n > BP_E820_MAX) {
		gfail("boot_params e820_entries %u > %d", n, BP_E820_MAX);
		n = BP_E820_MAX;
	}
	for (unsigned int i = 0; i < n; i++) {
		uint64_t e = bp + BP_E820_TABLE + i * 20;

		add_range(bi, rd64(e), rd64(e + 8), rd32(e + 16));
	}
}

void bootinfo_parse(struct boot_info *bi, int boot, uint64_t ptr)
{
	bi->boot = boot;
	if (boot == BOOT_PVH)
		parse_pvh(bi, ptr);
	else
		parse_zero_page(bi, ptr);
	if (!bi->initrd_size)
		bi->initrd_addr = 0;
}
