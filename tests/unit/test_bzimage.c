#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/memory.h"
#include "vmm/x86/boot.h"
#include "vmm/x86/bzimage.h"
#include "vmm/x86/e820.h"
#include "vmm/x86/layout.h"

#define MiB (1ULL << 20)
#define RAM (64 * MiB)
#define SETUP_SECTS 4
#define SETUP_SIZE ((SETUP_SECTS + 1) * 512)
#define PM_SIZE (16 * 1024)
#define PREF_ADDR (16 * MiB)
#define INIT_SIZE (4 * MiB)

struct fixture {
	uint8_t *ram;
	struct guest_mem mem;
	uint8_t *img;
	size_t len;
	struct boot_args args;
	struct boot_entry entry;
	char err[256];
};

static struct bz_setup_header *hdr(struct fixture *f)
{
	return (struct bz_setup_header *)(f->img + BZ_HEADER_OFFSET);
}

/* A minimal 64-bit bzImage, protocol 2.15, protected-mode part of PM_SIZE bytes. */
static void make_image(struct fixture *f)
{
	struct bz_setup_header *h;

	f->len = SETUP_SIZE + PM_SIZE;
	f->img = calloc(1, f->len);
	cr_assert(f->img);
	for (size_t i = SETUP_SIZE; i < f->len; i++)
		f->img[i] = (uint8_t)(i * 7 + 1);
	f->img[0x201] = 0x26c - 0x202; /* jump: the header ends at 0x26c */
	h = hdr(f);
	h->setup_sects = SETUP_SECTS;
	h->syssize = PM_SIZE / 16;
	h->vid_mode = 0xffff;
	h->boot_flag = BZ_BOOT_FLAG;
	h->header = BZ_HDRS_MAGIC;
	h->version = 0x020f;
	h->loadflags = BZ_LOADED_HIGH;
	h->code32_start = 0x100000;
	h->initrd_addr_max = 0x7fffffff;
	h->kernel_alignment = 0x200000;
	h->relocatable_kernel = 1;
	h->xloadflags = BZ_XLF_KERNEL_64 | 0x2;
	h->cmdline_size = 2047;
	h->pref_address = PREF_ADDR;
	h->init_size = INIT_SIZE;
}

static void setup_ram(struct fixture *f, uint64_t size)
{
	struct gmem_region r;

	free(f->ram);
	f->ram = calloc(1, size);
	cr_assert(f->ram);
	r = (struct gmem_region){.gpa = 0, .size = size, .hva = f->ram};
	gmem_init_fake(&f->mem, &r, 1);
}

static void init(struct fixture *f)
{
	memset(f, 0, sizeof(*f));
	setup_ram(f, RAM);
	make_image(f);
	f->args.kernel_name = "/k/bzImage";
	f->args.initrd_name = "/k/initrd";
	f->args.cmdline = "console=ttyS0 quiet";
}

static void fini(struct fixture *f)
{
	free(f->ram);
	free(f->img);
}

static int load(struct fixture *f)
{
	f->err[0] = '\0';
	return bzimage_load(&f->mem, f->img, f->len, &f->args, &f->entry, f->err, sizeof(f->err));
}

static const struct bz_boot_params *zero_page(struct fixture *f)
{
	return (const struct bz_boot_params *)(f->ram + LAYOUT_ZERO_PAGE);
}

/* The load fails with ret, says something containing `what`, and writes nothing. */
static void expect_reject(struct fixture *f, int ret, const char *what)
{
	int got = load(f);

	cr_expect_eq(got, ret, "returned %d, expected %d (%s)", got, ret, f->err);
	cr_expect(strstr(f->err, what), "message \"%s\" lacks \"%s\"", f->err, what);
	cr_expect_null(strchr(f->err, '\n'), "one line: %s", f->err);
	for (size_t i = 0; i < 2 * MiB; i++)
		if (f->ram[i]) {
			cr_expect_fail("byte 0x%zx of guest RAM written by a failed load", i);
			break;
		}
}

Test(bzimage, loads_kernel_and_fills_zero_page)
{
	struct e820_entry e820[E820_MAX_BUILT];
	const struct bz_boot_params *bp;
	uint8_t initrd[10000];
	struct fixture f;
	int n;

	init(&f);
	for (size_t i = 0; i < sizeof(initrd); i++)
		initrd[i] = (uint8_t)(i ^ 0x5a);
	f.args.initrd = initrd;
	f.args.initrd_size = sizeof(initrd);
	f.args.rsdp_gpa = LAYOUT_ACPI_START;
	hdr(&f)->setup_data = 0x123456; /* a hostile preset the loader must clear */
	cr_assert_eq(load(&f), 0, "%s", f.err);

	cr_expect_eq(f.entry.mode, BOOT_LINUX64);
	cr_expect_eq(f.entry.entry, 0x100200);
	cr_expect_eq(f.entry.boot_info, LAYOUT_ZERO_PAGE);
	cr_expect_eq(memcmp(f.ram + 0x100000, f.img + SETUP_SIZE, PM_SIZE), 0,
		     "protected-mode part at 1 MiB");

	bp = zero_page(&f);
	cr_expect_eq(bp->hdr.boot_flag, BZ_BOOT_FLAG);
	cr_expect_eq(bp->hdr.header, BZ_HDRS_MAGIC);
	cr_expect_eq(bp->hdr.version, 0x020f);
	cr_expect_eq(bp->hdr.type_of_loader, 0xff);
	cr_expect_eq(bp->hdr.loadflags, BZ_LOADED_HIGH | BZ_CAN_USE_HEAP);
	cr_expect_eq(bp->hdr.heap_end_ptr, BZ_HEAP_END_PTR);
	cr_expect_eq(bp->hdr.code32_start, 0x100000);
	cr_expect_eq(bp->hdr.setup_data, 0);
	cr_expect_eq(bp->hdr.cmdline_size, 2047, "header copied from the image");
	cr_expect_eq(bp->hdr.init_size, INIT_SIZE);

	cr_expect_eq(bp->hdr.cmd_line_ptr, LAYOUT_CMDLINE);
	cr_expect_eq(bp->ext_cmd_line_ptr, 0);
	cr_expect_str_eq((const char *)f.ram + LAYOUT_CMDLINE, "console=ttyS0 quiet");

	cr_expect_eq(bp->hdr.ramdisk_image, f.entry.initrd_addr);
	cr_expect_eq(bp->hdr.ramdisk_size, sizeof(initrd));
	cr_expect_eq(bp->ext_ramdisk_image, 0);
	cr_expect_eq(bp->ext_ramdisk_size, 0);
	cr_expect_eq(f.entry.initrd_addr % 4096, 0, "initrd page-aligned");
	cr_expect_leq(f.entry.initrd_addr + sizeof(initrd), RAM);
	cr_expect_gt(f.entry.initrd_addr + 4096 + sizeof(initrd), RAM, "initrd at the top of RAM");
	cr_expect_geq(f.entry.initrd_addr, PREF_ADDR + INIT_SIZE,
		      "initrd above the decompressed kernel");
	cr_expect_eq(memcmp(f.ram + f.entry.initrd_addr, initrd, sizeof(initrd)), 0);

	cr_expect_eq(bp->acpi_rsdp_addr, LAYOUT_ACPI_START);

	n = e820_build(&f.mem, e820, E820_MAX_BUILT);
	cr_assert_eq(bp->e820_entries, n);
	for (int i = 0; i < n; i++) {
		cr_expect_eq(bp->e820_table[i].addr, e820[i].addr);
		cr_expect_eq(bp->e820_table[i].size, e820[i].size);
		cr_expect_eq(bp->e820_table[i].type, e820[i].type);
	}
	cr_expect_eq(bp->e820_table[3].addr, 1 * MiB);
	cr_expect_eq(bp->e820_table[3].size, RAM - 1 * MiB);
	fini(&f);
}

Test(bzimage, no_initrd_no_cmdline)
{
	struct fixture f;

	init(&f);
	f.args.cmdline = NULL;
	cr_assert_eq(load(&f), 0, "%s", f.err);
	cr_expect_eq(zero_page(&f)->hdr.ramdisk_image, 0);
	cr_expect_eq(zero_page(&f)->hdr.ramdisk_size, 0);
	cr_expect_eq(f.entry.initrd_size, 0);
	cr_expect_str_eq((const char *)f.ram + LAYOUT_CMDLINE, "");
	fini(&f);
}

Test(bzimage, rsdp_only_from_protocol_2_14)
{
	struct fixture f;

	init(&f);
	f.args.rsdp_gpa = LAYOUT_ACPI_START;
	hdr(&f)->version = 0x020d;
	cr_assert_eq(load(&f), 0, "%s", f.err);
	cr_expect_eq(zero_page(&f)->acpi_rsdp_addr, 0);
	fini(&f);
}

Test(bzimage, initrd_below_initrd_addr_max)
{
	uint8_t initrd[5000] = {1};
	struct fixture f;

	init(&f);
	f.args.initrd = initrd;
	f.args.initrd_size = sizeof(initrd);
	hdr(&f)->initrd_addr_max = 32 * MiB - 1; /* last byte the initrd may use */
	cr_assert_eq(load(&f), 0, "%s", f.err);
	cr_expect_eq(f.entry.initrd_addr % 4096, 0);
	cr_expect_leq(f.entry.initrd_addr + sizeof(initrd) - 1, 32 * MiB - 1);
	cr_expect_gt(f.entry.initrd_addr + 4096 + sizeof(initrd), 32 * MiB);
	cr_expect_geq(f.entry.initrd_addr, PREF_ADDR + INIT_SIZE);
	fini(&f);
}

Test(bzimage, initrd_addr_max_inside_kernel_is_rejected)
{
	uint8_t initrd[5000] = {1};
	struct fixture f;

	init(&f);
	f.args.initrd = initrd;
	f.args.initrd_size = sizeof(initrd);
	hdr(&f)->initrd_addr_max = PREF_ADDR + INIT_SIZE / 2;
	expect_reject(&f, -ENOMEM, "initrd /k/initrd");
	fini(&f);
}

Test(bzimage, initrd_too_big)
{
	struct fixture f;

	init(&f);
	f.args.initrd_size = 60 * MiB; /* placed only: no bytes needed */
	expect_reject(&f, -ENOMEM, "initrd /k/initrd: 60 MiB does not fit");
	fini(&f);
}

Test(bzimage, init_size_beyond_ram)
{
	struct fixture f;

	init(&f);
	hdr(&f)->init_size = 60 * MiB;
	expect_reject(&f, -ENOMEM, "init_size");
	fini(&f);
}

Test(bzimage, non_relocatable_uses_pref_address)
{
	struct fixture f;

	init(&f);
	hdr(&f)->relocatable_kernel = 0;
	hdr(&f)->kernel_alignment = 0; /* ignored when not relocatable */
	hdr(&f)->pref_address = 40 * MiB;
	hdr(&f)->init_size = 30 * MiB; /* 70 MiB > 64 MiB */
	expect_reject(&f, -ENOMEM, "0x2800000");
	fini(&f);
}

Test(bzimage, bad_kernel_alignment)
{
	struct fixture f;

	init(&f);
	hdr(&f)->kernel_alignment = 0x300000;
	expect_reject(&f, -ENOEXEC, "kernel_alignment");
	fini(&f);
}

Test(bzimage, bad_boot_flag)
{
	struct fixture f;

	init(&f);
	hdr(&f)->boot_flag = 0x55aa;
	expect_reject(&f, -ENOEXEC, "kernel /k/bzImage: not a Linux bzImage");
	fini(&f);
}

Test(bzimage, bad_hdrs_magic)
{
	struct fixture f;

	init(&f);
	hdr(&f)->header = 0x53726449;
	expect_reject(&f, -ENOEXEC, "not a Linux bzImage");
	fini(&f);
}

Test(bzimage, protocol_2_11_is_too_old)
{
	struct fixture f;

	init(&f);
	hdr(&f)->version = 0x020b;
	expect_reject(&f, -ENOEXEC, "boot protocol 2.11 is too old");
	fini(&f);
}

Test(bzimage, no_64bit_entry)
{
	struct fixture f;

	init(&f);
	hdr(&f)->xloadflags = 0x2;
	expect_reject(&f, -ENOEXEC, "XLF_KERNEL_64");
	fini(&f);
}

Test(bzimage, zimage_rejected)
{
	struct fixture f;

	init(&f);
	hdr(&f)->loadflags = 0;
	expect_reject(&f, -ENOEXEC, "LOADED_HIGH");
	fini(&f);
}

Test(bzimage, truncated_setup)
{
	struct fixture f;

	init(&f);
	f.len = SETUP_SIZE - 100;
	expect_reject(&f, -ENOEXEC, "truncated");
	fini(&f);
}

Test(bzimage, huge_setup_sects)
{
	struct fixture f;

	init(&f);
	hdr(&f)->setup_sects = 255; /* 128 KiB of setup code in a 18 KiB file */
	expect_reject(&f, -ENOEXEC, "setup_sects=255");
	fini(&f);
}

Test(bzimage, syssize_beyond_file)
{
	struct fixture f;

	init(&f);
	f.len -= 4096; /* as if the download was cut short */
	expect_reject(&f, -ENOEXEC, "syssize");
	fini(&f);
}

Test(bzimage, cmdline_longer_than_cmdline_size)
{
	struct fixture f;

	init(&f);
	hdr(&f)->cmdline_size = 18;
	f.args.cmdline = "console=ttyS0 quiet"; /* 19 bytes */
	expect_reject(&f, -E2BIG, "cmdline: 19 bytes is longer than the kernel's limit of 18");
	f.args.cmdline = "console=ttyS0 quie"; /* exactly cmdline_size: fine */
	cr_expect_eq(load(&f), 0, "%s", f.err);
	fini(&f);
}

Test(bzimage, cmdline_longer_than_ember_limit)
{
	struct fixture f;
	char *cmdline = malloc(LAYOUT_CMDLINE_MAX + 1);

	init(&f);
	memset(cmdline, 'a', LAYOUT_CMDLINE_MAX);
	cmdline[LAYOUT_CMDLINE_MAX] = '\0';
	f.args.cmdline = cmdline;
	hdr(&f)->cmdline_size = 0x7fffffff;
	expect_reject(&f, -E2BIG, "ember's limit");
	free(cmdline);
	fini(&f);
}

Test(bzimage, ram_below_minimum)
{
	struct fixture f;

	init(&f);
	setup_ram(&f, 1 * MiB);
	cr_expect_eq(load(&f), -ENOMEM);
	cr_expect(strstr(f.err, "guest RAM"), "%s", f.err);
	fini(&f);
}

Test(bzimage, short_header_copies_only_what_the_jump_says)
{
	struct fixture f;

	init(&f);
	/* A header that ends at 0x264 (before kernel_info_offset): that field stays 0. */
	f.img[0x201] = 0x264 - 0x202;
	hdr(&f)->kernel_info_offset = 0x1234;
	cr_assert_eq(load(&f), 0, "%s", f.err);
	cr_expect_eq(zero_page(&f)->hdr.kernel_info_offset, 0);
	fini(&f);
}

/* Every truncation and many corruptions: a clean error or success, never a crash. */
Test(bzimage, garbage_never_crashes)
{
	struct fixture f;
	uint8_t *orig;
	int ret;

	init(&f);
	orig = malloc(f.len);
	memcpy(orig, f.img, f.len);
	for (size_t len = 0; len < SETUP_SIZE + 0x300; len += 7) {
		ret = bzimage_load(&f.mem, f.img, len, &f.args, &f.entry, f.err, sizeof(f.err));
		cr_expect_lt(ret, 0, "truncated to %zu bytes accepted", len);
	}
	srand(1);
	for (int round = 0; round < 2000; round++) {
		memcpy(f.img, orig, f.len);
		for (int k = 0; k < 4; k++)
			f.img[BZ_HEADER_OFFSET + rand() % (0x290 - BZ_HEADER_OFFSET)] =
			    (uint8_t)rand();
		f.err[0] = '\0';
		ret = bzimage_load(&f.mem, f.img, f.len, &f.args, &f.entry, f.err, sizeof(f.err));
		if (ret)
			cr_expect_neq(f.err[0], '\0', "error %d without a message", ret);
		else
			cr_expect_lt(f.entry.initrd_addr, RAM);
	}
	free(orig);
	fini(&f);
}
