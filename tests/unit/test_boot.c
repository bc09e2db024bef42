#include <criterion/criterion.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/memory.h"
#include "vmm/x86/boot.h"
#include "vmm/x86/bzimage.h"
#include "vmm/x86/layout.h"
#include "vmm/x86/pvh.h"

#define MiB (1ULL << 20)
#define RAM (64 * MiB)

struct fixture {
	char dir[64];
	char kernel[128];
	char initrd[128];
	uint8_t *ram;
	struct guest_mem mem;
	struct boot_config cfg;
	struct boot_entry entry;
	char err[512];
};

static void init(struct fixture *f)
{
	struct gmem_region r;

	memset(f, 0, sizeof(*f));
	strcpy(f->dir, "/tmp/ember-test-boot-XXXXXX");
	cr_assert(mkdtemp(f->dir), "mkdtemp: %s", strerror(errno));
	snprintf(f->kernel, sizeof(f->kernel), "%s/kernel", f->dir);
	snprintf(f->initrd, sizeof(f->initrd), "%s/initrd", f->dir);
	f->ram = calloc(1, RAM);
	cr_assert(f->ram);
	r = (struct gmem_region){.gpa = 0, .size = RAM, .hva = f->ram};
	gmem_init_fake(&f->mem, &r, 1);
	f->cfg.kernel_path = f->kernel;
	f->cfg.cmdline = "console=ttyS0";
}

static void fini(struct fixture *f)
{
	char cmd[160];

	free(f->ram);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	cr_expect_eq(system(cmd), 0);
}

static void write_file(const char *path, const void *data, size_t len)
{
	FILE *fp = fopen(path, "wb");

	cr_assert(fp, "fopen %s: %s", path, strerror(errno));
	cr_assert_eq(fwrite(data, 1, len, fp), len);
	cr_assert_eq(fclose(fp), 0);
}

/* A small valid 64-bit bzImage: 4 setup sectors + 8 KiB of "kernel". */
static void write_bzimage(const char *path)
{
	size_t setup = 5 * 512, len = setup + 8192;
	uint8_t *img = calloc(1, len);
	struct bz_setup_header h = {
	    .setup_sects = 4,
	    .syssize = 8192 / 16,
	    .boot_flag = BZ_BOOT_FLAG,
	    .header = BZ_HDRS_MAGIC,
	    .version = 0x020f,
	    .loadflags = BZ_LOADED_HIGH,
	    .initrd_addr_max = 0x7fffffff,
	    .kernel_alignment = 0x200000,
	    .relocatable_kernel = 1,
	    .xloadflags = BZ_XLF_KERNEL_64,
	    .cmdline_size = 2047,
	    .pref_address = 16 * MiB,
	    .init_size = 2 * MiB,
	};

	memcpy(img + BZ_HEADER_OFFSET, &h, sizeof(h));
	img[0x201] = 0x26c - 0x202;
	memset(img + setup, 0x90, 8192);
	write_file(path, img, len);
	free(img);
}

/* A small valid ELF64 PVH kernel: one PT_LOAD at 1 MiB, entry at 1 MiB. */
static void write_elf(const char *path)
{
	uint8_t img[0x2000] = {0};
	Elf64_Ehdr eh = {
	    .e_type = ET_EXEC,
	    .e_machine = EM_X86_64,
	    .e_version = EV_CURRENT,
	    .e_phoff = sizeof(Elf64_Ehdr),
	    .e_phentsize = sizeof(Elf64_Phdr),
	    .e_phnum = 2,
	};
	Elf64_Nhdr nh = {.n_namesz = 4, .n_descsz = 4, .n_type = XEN_ELFNOTE_PHYS32_ENTRY};
	uint32_t entry = 0x100000;
	Elf64_Phdr ph[2] = {
	    {.p_type = PT_NOTE, .p_offset = 0x200, .p_filesz = 20, .p_align = 4},
	    {.p_type = PT_LOAD,
	     .p_offset = 0x1000,
	     .p_paddr = 0x100000,
	     .p_filesz = 0x1000,
	     .p_memsz = 0x2000},
	};

	memcpy(eh.e_ident, ELFMAG, SELFMAG);
	eh.e_ident[EI_CLASS] = ELFCLASS64;
	eh.e_ident[EI_DATA] = ELFDATA2LSB;
	memcpy(img, &eh, sizeof(eh));
	memcpy(img + sizeof(eh), ph, sizeof(ph));
	memcpy(img + 0x200, &nh, sizeof(nh));
	memcpy(img + 0x200 + sizeof(nh), "Xen", 4);
	memcpy(img + 0x200 + sizeof(nh) + 4, &entry, 4);
	memset(img + 0x1000, 0xf4, 0x1000);
	write_file(path, img, sizeof(img));
}

static int load(struct fixture *f)
{
	f->err[0] = '\0';
	return boot_load(&f->mem, &f->cfg, &f->entry, f->err, sizeof(f->err));
}

static void expect_error(struct fixture *f, int ret, const char *msg)
{
	int got = load(f);

	cr_expect_eq(got, ret, "returned %d, expected %d (%s)", got, ret, f->err);
	cr_expect_str_eq(f->err, msg);
}

Test(boot, bzimage_file_with_initrd)
{
	uint8_t initrd[12345];
	struct fixture f;

	init(&f);
	for (size_t i = 0; i < sizeof(initrd); i++)
		initrd[i] = (uint8_t)(i * 31);
	write_bzimage(f.kernel);
	write_file(f.initrd, initrd, sizeof(initrd));
	f.cfg.initrd_path = f.initrd;
	f.cfg.rsdp_gpa = LAYOUT_ACPI_START;
	cr_assert_eq(load(&f), 0, "%s", f.err);
	cr_expect_eq(f.entry.mode, BOOT_LINUX64);
	cr_expect_eq(f.entry.entry, 0x100200);
	cr_expect_eq(f.entry.boot_info, LAYOUT_ZERO_PAGE);
	cr_expect_eq(f.entry.initrd_size, sizeof(initrd));
	cr_expect_eq(f.entry.initrd_addr % 4096, 0);
	cr_expect_eq(memcmp(f.ram + f.entry.initrd_addr, initrd, sizeof(initrd)), 0,
		     "initrd read into guest RAM");
	cr_expect_eq(((struct bz_boot_params *)(f.ram + LAYOUT_ZERO_PAGE))->hdr.ramdisk_image,
		     f.entry.initrd_addr);
	cr_expect_str_eq((char *)f.ram + LAYOUT_CMDLINE, "console=ttyS0");
	cr_expect_eq(f.ram[0x100000], 0x90);
	fini(&f);
}

Test(boot, elf_file_boots_pvh)
{
	struct hvm_start_info si;
	struct fixture f;

	init(&f);
	write_elf(f.kernel);
	f.cfg.cmdline = NULL;
	cr_assert_eq(load(&f), 0, "%s", f.err);
	cr_expect_eq(f.entry.mode, BOOT_PVH);
	cr_expect_eq(f.entry.entry, 0x100000);
	cr_expect_eq(f.entry.boot_info, LAYOUT_PVH_START_INFO);
	memcpy(&si, f.ram + LAYOUT_PVH_START_INFO, sizeof(si));
	cr_expect_eq(si.magic, XEN_HVM_START_MAGIC);
	cr_expect_eq(f.ram[0x100000], 0xf4);
	fini(&f);
}

Test(boot, missing_kernel)
{
	struct fixture f;
	char msg[256];

	init(&f);
	snprintf(msg, sizeof(msg), "kernel %s: No such file or directory", f.kernel);
	expect_error(&f, -ENOENT, msg);
	fini(&f);
}

Test(boot, directory_as_kernel)
{
	struct fixture f;
	char msg[256];

	init(&f);
	f.cfg.kernel_path = f.dir;
	snprintf(msg, sizeof(msg), "kernel %s: Is a directory", f.dir);
	expect_error(&f, -EISDIR, msg);
	fini(&f);
}

Test(boot, empty_kernel)
{
	struct fixture f;
	char msg[256];

	init(&f);
	write_file(f.kernel, "", 0);
	snprintf(msg, sizeof(msg), "kernel %s: file is empty", f.kernel);
	expect_error(&f, -EINVAL, msg);
	fini(&f);
}

Test(boot, special_file_as_kernel)
{
	struct fixture f;

	init(&f);
	f.cfg.kernel_path = "/dev/null";
	expect_error(&f, -EINVAL, "kernel /dev/null: not a regular file");
	fini(&f);
}

Test(boot, garbage_kernel)
{
	struct fixture f;
	char msg[256];

	init(&f);
	write_file(f.kernel, "#!/bin/sh\necho not a kernel\n", 28);
	snprintf(msg, sizeof(msg),
		 "kernel %s: not a Linux bzImage (boot protocol 2.12+), an ELF64 kernel with a "
		 "Xen PVH note nor a multiboot kernel",
		 f.kernel);
	expect_error(&f, -ENOEXEC, msg);
	fini(&f);
}

Test(boot, unreadable_kernel)
{
	struct fixture f;
	char msg[256];

	if (geteuid() == 0)
		cr_skip_test("running as root: permission bits cannot provoke EACCES");
	init(&f);
	write_bzimage(f.kernel);
	cr_assert_eq(chmod(f.kernel, 0), 0);
	snprintf(msg, sizeof(msg), "kernel %s: Permission denied", f.kernel);
	expect_error(&f, -EACCES, msg);
	fini(&f);
}

Test(boot, missing_initrd)
{
	struct fixture f;
	char msg[256];

	init(&f);
	write_bzimage(f.kernel);
	f.cfg.initrd_path = f.initrd;
	snprintf(msg, sizeof(msg), "initrd %s: No such file or directory", f.initrd);
	expect_error(&f, -ENOENT, msg);
	fini(&f);
}

Test(boot, empty_initrd)
{
	struct fixture f;
	char msg[256];

	init(&f);
	write_elf(f.kernel);
	write_file(f.initrd, "", 0);
	f.cfg.initrd_path = f.initrd;
	snprintf(msg, sizeof(msg), "initrd %s: file is empty", f.initrd);
	expect_error(&f, -EINVAL, msg);
	fini(&f);
}

Test(boot, initrd_too_big_for_ram)
{
	struct fixture f;
	char msg[256];
	int fd;

	init(&f);
	write_bzimage(f.kernel);
	/* A sparse 100 MiB file: costs no disk, must be refused before any read. */
	fd = open(f.initrd, O_WRONLY | O_CREAT, 0644);
	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, 100 * MiB), 0);
	close(fd);
	f.cfg.initrd_path = f.initrd;
	cr_expect_eq(load(&f), -ENOMEM, "%s", f.err);
	snprintf(msg, sizeof(msg), "initrd %s: 100 MiB does not fit in guest RAM", f.initrd);
	cr_expect_eq(strncmp(f.err, msg, strlen(msg)), 0, "%s", f.err);
	cr_expect(strstr(f.err, "(64 MiB of RAM)"), "%s", f.err);
	fini(&f);
}

Test(boot, truncated_bzimage_names_the_file)
{
	struct fixture f;
	uint8_t img[0x300] = {0};
	struct bz_setup_header h = {.setup_sects = 4,
				    .boot_flag = BZ_BOOT_FLAG,
				    .header = BZ_HDRS_MAGIC,
				    .version = 0x020f,
				    .loadflags = BZ_LOADED_HIGH,
				    .xloadflags = BZ_XLF_KERNEL_64};

	init(&f);
	memcpy(img + BZ_HEADER_OFFSET, &h, sizeof(h));
	img[0x201] = 0x26c - 0x202;
	write_file(f.kernel, img, sizeof(img));
	cr_expect_eq(load(&f), -ENOEXEC);
	cr_expect_eq(strncmp(f.err, "kernel ", 7), 0, "%s", f.err);
	cr_expect(strstr(f.err, f.kernel), "%s", f.err);
	cr_expect(strstr(f.err, "truncated"), "%s", f.err);
	fini(&f);
}
