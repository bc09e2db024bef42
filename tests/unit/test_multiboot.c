/* Multiboot 1 loader (src/vmm/x86/multiboot.c) on images built in memory. */
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
#include "vmm/x86/e820.h"
#include "vmm/x86/layout.h"
#include "vmm/x86/multiboot.h"

#define MiB (1ULL << 20)
#define RAM (64 * MiB)
#define IMG_SIZE 0x4000
#define TEXT_OFF 0x1000 /* the multiboot header starts the text, as in kvm-unit-tests */
#define TEXT_SIZE 0x1000
#define TEXT_PADDR 0x400000ULL
#define DATA_OFF 0x2000
#define DATA_SIZE 0x800
#define DATA_MEMSZ 0x5000
#define DATA_PADDR 0x401000ULL
#define ENTRY 0x40000cULL /* right after the 12-byte header */

struct fixture {
	uint8_t *ram;
	struct guest_mem mem;
	uint8_t *img;
	size_t len;
	struct boot_args args;
	struct boot_entry entry;
	char err[256];
};

static void put_header(uint8_t *at, uint32_t flags)
{
	uint32_t h[3] = {MULTIBOOT_HEADER_MAGIC, flags, -(MULTIBOOT_HEADER_MAGIC + flags)};

	memcpy(at, h, sizeof(h));
}

static Elf32_Phdr *phdr(struct fixture *f, int i)
{
	return (Elf32_Phdr *)(f->img + sizeof(Elf32_Ehdr) + i * sizeof(Elf32_Phdr));
}

/* An ELF32 i386 image like kvm-unit-tests' x86/NAME.flat: text (header first), data + bss. */
static void make_elf32(struct fixture *f)
{
	Elf32_Ehdr eh = {0};

	f->len = IMG_SIZE;
	f->img = calloc(1, f->len);
	cr_assert(f->img);
	memcpy(eh.e_ident, ELFMAG, SELFMAG);
	eh.e_ident[EI_CLASS] = ELFCLASS32;
	eh.e_ident[EI_DATA] = ELFDATA2LSB;
	eh.e_ident[EI_VERSION] = EV_CURRENT;
	eh.e_type = ET_EXEC;
	eh.e_machine = EM_386;
	eh.e_version = EV_CURRENT;
	eh.e_entry = ENTRY;
	eh.e_phoff = sizeof(Elf32_Ehdr);
	eh.e_phentsize = sizeof(Elf32_Phdr);
	eh.e_phnum = 2;
	memcpy(f->img, &eh, sizeof(eh));
	*phdr(f, 0) = (Elf32_Phdr){.p_type = PT_LOAD,
				   .p_offset = TEXT_OFF,
				   .p_vaddr = TEXT_PADDR,
				   .p_paddr = TEXT_PADDR,
				   .p_filesz = TEXT_SIZE,
				   .p_memsz = TEXT_SIZE};
	*phdr(f, 1) = (Elf32_Phdr){.p_type = PT_LOAD,
				   .p_offset = DATA_OFF,
				   .p_vaddr = DATA_PADDR,
				   .p_paddr = DATA_PADDR,
				   .p_filesz = DATA_SIZE,
				   .p_memsz = DATA_MEMSZ};
	for (size_t i = 12; i < TEXT_SIZE; i++)
		f->img[TEXT_OFF + i] = (uint8_t)(i * 7 + 1);
	for (size_t i = 0; i < DATA_SIZE; i++)
		f->img[DATA_OFF + i] = (uint8_t)(i + 0x40);
	put_header(f->img + TEXT_OFF, 0);
}

static void setup(struct fixture *f)
{
	struct gmem_region r;

	memset(f, 0, sizeof(*f));
	f->ram = malloc(RAM);
	cr_assert(f->ram);
	memset(f->ram, 0xee, RAM); /* so that zeroed bss shows */
	r = (struct gmem_region){.gpa = 0, .size = RAM, .hva = f->ram};
	gmem_init_fake(&f->mem, &r, 1);
	f->args.kernel_name = "/k/test.flat";
	f->args.cmdline = "-append smp";
	make_elf32(f);
}

static void teardown(struct fixture *f)
{
	free(f->ram);
	free(f->img);
}

static int load(struct fixture *f)
{
	return multiboot_load(&f->mem, f->img, f->len, &f->args, &f->entry, f->err, sizeof(f->err));
}

static void *gpa(struct fixture *f, uint64_t a)
{
	return f->ram + a;
}

static struct multiboot_info info(struct fixture *f)
{
	struct multiboot_info mi;

	memcpy(&mi, gpa(f, MULTIBOOT_INFO_GPA), sizeof(mi));
	return mi;
}

static void expect_reject(struct fixture *f, int err, const char *msg)
{
	uint8_t probe = f->ram[TEXT_PADDR];

	cr_assert_eq(load(f), err, "err: %s", f->err);
	cr_assert_not_null(strstr(f->err, msg), "message '%s' lacks '%s'", f->err, msg);
	cr_assert_null(strchr(f->err, '\n'), "one line");
	cr_assert_eq(f->ram[TEXT_PADDR], probe, "nothing written on failure");
}

Test(multiboot, probe_finds_aligned_header_with_checksum)
{
	uint8_t img[0x3000] = {0};
	size_t off = 0;

	cr_assert_not(multiboot_probe(img, sizeof(img), NULL));
	put_header(img + 0x404, 0);
	cr_assert(multiboot_probe(img, sizeof(img), &off));
	cr_assert_eq(off, 0x404);
	/* Bad checksum, misaligned, beyond 8 KiB: not found. */
	memset(img, 0, sizeof(img));
	put_header(img + 0x400, 0);
	img[0x408] ^= 1;
	cr_assert_not(multiboot_probe(img, sizeof(img), NULL));
	memset(img, 0, sizeof(img));
	put_header(img + 0x402, 0);
	cr_assert_not(multiboot_probe(img, sizeof(img), NULL));
	memset(img, 0, sizeof(img));
	put_header(img + MULTIBOOT_SEARCH, 0);
	cr_assert_not(multiboot_probe(img, sizeof(img), NULL));
	/* A header cut off by the end of the file is not one. */
	put_header(img + 0x10, 0);
	cr_assert_not(multiboot_probe(img, 0x18, NULL));
	cr_assert(multiboot_probe(img, 0x1c, NULL));
}

Test(multiboot, elf32_segments_placed_and_bss_zeroed)
{
	struct fixture f;

	setup(&f);
	cr_assert_eq(load(&f), 0, "%s", f.err);
	cr_assert_arr_eq(gpa(&f, TEXT_PADDR), f.img + TEXT_OFF, TEXT_SIZE);
	cr_assert_arr_eq(gpa(&f, DATA_PADDR), f.img + DATA_OFF, DATA_SIZE);
	for (size_t i = DATA_SIZE; i < DATA_MEMSZ; i++)
		cr_assert_eq(f.ram[DATA_PADDR + i], 0, "bss byte %zu", i);
	cr_assert_eq(f.ram[DATA_PADDR + DATA_MEMSZ], 0xee, "nothing past the bss");
	cr_assert_eq(f.entry.mode, BOOT_MULTIBOOT);
	cr_assert_eq(f.entry.entry, ENTRY);
	cr_assert_eq(f.entry.boot_info, MULTIBOOT_INFO_GPA);
	cr_assert_eq(f.entry.eax, MULTIBOOT_BOOTLOADER_MAGIC);
	cr_assert_eq(f.entry.kernel_end, DATA_PADDR + DATA_MEMSZ);
	teardown(&f);
}

Test(multiboot, info_fields_cmdline_and_loader_name)
{
	struct fixture f;
	struct multiboot_info mi;

	setup(&f);
	cr_assert_eq(load(&f), 0, "%s", f.err);
	mi = info(&f);
	cr_assert_eq(mi.flags,
		     MULTIBOOT_INFO_MEMORY | MULTIBOOT_INFO_CMDLINE | MULTIBOOT_INFO_MODS |
			 MULTIBOOT_INFO_MEM_MAP | MULTIBOOT_INFO_LOADER_NAME,
		     "flags 0x%x", mi.flags);
	cr_assert_eq(mi.mem_lower, LAYOUT_EBDA_START / 1024);
	cr_assert_eq(mi.mem_upper, (RAM - MiB) / 1024);
	/* As GRUB and QEMU: the kernel's path is the first word (argv[0]). */
	cr_assert_eq(mi.cmdline, LAYOUT_CMDLINE);
	cr_assert_str_eq((char *)gpa(&f, mi.cmdline), "/k/test.flat -append smp");
	cr_assert_eq(mi.mods_count, 0);
	cr_assert_str_eq((char *)gpa(&f, mi.boot_loader_name), "ember");
	/* Fields ember does not offer stay 0. */
	cr_assert_eq(mi.boot_device, 0);
	cr_assert_eq(mi.syms[0], 0);
	cr_assert_eq(mi.drives_length, 0);
	cr_assert_eq(mi.framebuffer_addr, 0);
	teardown(&f);
}

Test(multiboot, empty_cmdline_is_the_kernel_path)
{
	struct fixture f;

	setup(&f);
	f.args.cmdline = NULL;
	cr_assert_eq(load(&f), 0, "%s", f.err);
	cr_assert_str_eq((char *)gpa(&f, info(&f).cmdline), "/k/test.flat");
	teardown(&f);
}

Test(multiboot, mmap_is_the_e820_map)
{
	struct fixture f;
	struct multiboot_info mi;
	struct e820_entry e[E820_MAX_BUILT];
	int n;

	setup(&f);
	cr_assert_eq(load(&f), 0, "%s", f.err);
	n = e820_build(&f.mem, e, E820_MAX_BUILT);
	cr_assert_gt(n, 2);
	mi = info(&f);
	cr_assert_eq(mi.mmap_addr, MULTIBOOT_MMAP_GPA);
	cr_assert_eq(mi.mmap_length, n * sizeof(struct multiboot_mmap_entry));
	/* Walked the way kernels do: next = this + size + 4. */
	for (uint32_t off = 0, i = 0; off < mi.mmap_length; i++) {
		struct multiboot_mmap_entry me;

		memcpy(&me, gpa(&f, mi.mmap_addr + off), sizeof(me));
		cr_assert_eq(me.size, 20);
		cr_assert_eq(me.addr, e[i].addr, "entry %u", i);
		cr_assert_eq(me.len, e[i].size, "entry %u", i);
		cr_assert_eq(me.type, e[i].type, "entry %u", i);
		off += me.size + 4;
	}
	teardown(&f);
}

Test(multiboot, initrd_is_module_0_with_its_name)
{
	struct fixture f;
	struct multiboot_module mod;
	struct multiboot_info mi;
	uint8_t initrd[5000];

	setup(&f);
	for (size_t i = 0; i < sizeof(initrd); i++)
		initrd[i] = (uint8_t)(i * 3);
	f.args.initrd = initrd;
	f.args.initrd_size = sizeof(initrd);
	f.args.initrd_name = "/k/env";
	cr_assert_eq(load(&f), 0, "%s", f.err);
	mi = info(&f);
	cr_assert_eq(mi.mods_count, 1);
	cr_assert_eq(mi.mods_addr, MULTIBOOT_MODS_GPA);
	memcpy(&mod, gpa(&f, mi.mods_addr), sizeof(mod));
	cr_assert_eq(mod.mod_start % 4096, 0, "page-aligned");
	cr_assert_eq(mod.mod_end - mod.mod_start, sizeof(initrd));
	cr_assert_leq(mod.mod_end, RAM);
	cr_assert(mod.mod_start >= DATA_PADDR + DATA_MEMSZ || mod.mod_end <= TEXT_PADDR,
		  "module off the kernel");
	cr_assert_arr_eq(gpa(&f, mod.mod_start), initrd, sizeof(initrd));
	cr_assert_str_eq((char *)gpa(&f, mod.string), "/k/env");
	cr_assert_str_eq((char *)gpa(&f, mi.cmdline), "/k/test.flat -append smp");
	cr_assert_eq(f.entry.initrd_addr, mod.mod_start);
	teardown(&f);
}

Test(multiboot, elf64_and_entry_through_vaddr)
{
	struct fixture f;
	Elf64_Ehdr eh = {0};
	Elf64_Phdr ph = {.p_type = PT_LOAD,
			 .p_offset = TEXT_OFF,
			 .p_vaddr = 0xffffffff80000000ULL,
			 .p_paddr = 0x200000,
			 .p_filesz = TEXT_SIZE,
			 .p_memsz = TEXT_SIZE};

	setup(&f);
	memset(f.img, 0, TEXT_OFF);
	memcpy(eh.e_ident, ELFMAG, SELFMAG);
	eh.e_ident[EI_CLASS] = ELFCLASS64;
	eh.e_ident[EI_DATA] = ELFDATA2LSB;
	eh.e_type = ET_EXEC;
	eh.e_machine = EM_X86_64;
	eh.e_entry = 0xffffffff80000010ULL;
	eh.e_phoff = sizeof(eh);
	eh.e_phentsize = sizeof(ph);
	eh.e_phnum = 1;
	memcpy(f.img, &eh, sizeof(eh));
	memcpy(f.img + sizeof(eh), &ph, sizeof(ph));
	cr_assert_eq(load(&f), 0, "%s", f.err);
	cr_assert_eq(f.entry.entry, 0x200010);
	cr_assert_arr_eq(gpa(&f, 0x200000), f.img + TEXT_OFF, TEXT_SIZE);
	teardown(&f);
}

/* The a.out kludge: flag 16 and the address fields, in a file that is not ELF. */
Test(multiboot, aout_kludge_loads_from_address_fields)
{
	struct fixture f;
	uint8_t img[0x2000];
	uint32_t flags = MULTIBOOT_AOUT_KLUDGE | MULTIBOOT_PAGE_ALIGN;
	struct multiboot_header h = {
	    .magic = MULTIBOOT_HEADER_MAGIC,
	    .flags = flags,
	    .checksum = -(MULTIBOOT_HEADER_MAGIC + flags),
	    .header_addr = 0x100100, /* header at file offset 0x100: load from offset 0 */
	    .load_addr = 0x100000,
	    .load_end_addr = 0x101800,
	    .bss_end_addr = 0x104000,
	    .entry_addr = 0x100200,
	};

	setup(&f);
	for (size_t i = 0; i < sizeof(img); i++)
		img[i] = (uint8_t)(i ^ 0x5a);
	memcpy(img + 0x100, &h, sizeof(h));
	free(f.img);
	f.img = malloc(sizeof(img));
	memcpy(f.img, img, sizeof(img));
	f.len = sizeof(img);
	cr_assert_eq(load(&f), 0, "%s", f.err);
	cr_assert_eq(f.entry.entry, 0x100200);
	cr_assert_arr_eq(gpa(&f, 0x100000), img, 0x1800);
	for (size_t i = 0x101800; i < 0x104000; i++)
		cr_assert_eq(f.ram[i], 0, "bss at 0x%zx", i);
	cr_assert_eq(f.ram[0x104000], 0xee);
	teardown(&f);
}

Test(multiboot, low_segment_like_realmode_is_allowed)
{
	struct fixture f;

	setup(&f);
	phdr(&f, 0)->p_paddr = phdr(&f, 0)->p_vaddr = 0x8000;
	phdr(&f, 1)->p_paddr = phdr(&f, 1)->p_vaddr = 0x9000;
	((Elf32_Ehdr *)f.img)->e_entry = 0x800c;
	cr_assert_eq(load(&f), 0, "%s", f.err);
	cr_assert_eq(f.entry.entry, 0x800c);
	cr_assert_arr_eq(gpa(&f, 0x8000), f.img + TEXT_OFF, TEXT_SIZE);
	teardown(&f);
}

Test(multiboot, rejects_segment_beyond_file)
{
	struct fixture f;

	setup(&f);
	phdr(&f, 1)->p_filesz = IMG_SIZE;
	expect_reject(&f, -ENOEXEC,
		      "kernel /k/test.flat: segment 1: file offset 0x2000 + 0x4000 bytes lies "
		      "beyond the 16384-byte file");
	teardown(&f);
}

Test(multiboot, rejects_truncated_program_headers)
{
	struct fixture f;

	setup(&f);
	((Elf32_Ehdr *)f.img)->e_phnum = 600;
	expect_reject(&f, -ENOEXEC, "program headers at e_phoff 0x34 (600 x 32 bytes) lie beyond");
	teardown(&f);
}

Test(multiboot, rejects_segment_outside_ram)
{
	struct fixture f;

	setup(&f);
	phdr(&f, 1)->p_paddr = RAM - 0x1000;
	expect_reject(&f, -ENOMEM, "segment 1 at 0x3fff000 (20 KiB) is not inside guest RAM");
	teardown(&f);
}

Test(multiboot, rejects_segment_above_4g)
{
	struct fixture f;

	setup(&f);
	phdr(&f, 1)->p_paddr = 0xfffff000;
	expect_reject(&f, -ENOEXEC, "reaches above 4 GiB");
	teardown(&f);
}

Test(multiboot, rejects_segment_over_ember_structures)
{
	struct fixture f;

	setup(&f);
	phdr(&f, 0)->p_paddr = 0x6800;
	expect_reject(&f, -ENOEXEC,
		      "segment 0 at [0x6800, 0x7800) overlaps the multiboot information");
	phdr(&f, 0)->p_paddr = 0xf0000;
	expect_reject(&f, -ENOEXEC, "overlaps the EBDA and ACPI tables");
	phdr(&f, 0)->p_paddr = 0;
	expect_reject(&f, -ENOEXEC, "overlaps the real-mode IVT");
	teardown(&f);
}

Test(multiboot, rejects_filesz_above_memsz)
{
	struct fixture f;

	setup(&f);
	phdr(&f, 1)->p_memsz = 0x10;
	expect_reject(&f, -ENOEXEC, "segment 1: p_filesz 0x800 is larger than p_memsz 0x10");
	teardown(&f);
}

Test(multiboot, rejects_entry_outside_image)
{
	struct fixture f;

	setup(&f);
	((Elf32_Ehdr *)f.img)->e_entry = 0x900000;
	expect_reject(&f, -ENOEXEC, "multiboot entry 0x900000 is not inside the loaded image");
	teardown(&f);
}

Test(multiboot, rejects_unknown_required_flags)
{
	struct fixture f;

	setup(&f);
	put_header(f.img + TEXT_OFF, 0x8);
	expect_reject(&f, -ENOEXEC, "flags 0x8 require features ember does not offer (0x8)");
	teardown(&f);
}

Test(multiboot, rejects_non_elf_without_address_fields)
{
	struct fixture f;

	setup(&f);
	f.img[0] = 0;
	expect_reject(&f, -ENOEXEC,
		      "kernel /k/test.flat: multiboot header without address fields (flag bit "
		      "16) in a file that is not ELF");
	teardown(&f);
}

Test(multiboot, rejects_wrong_elf_machine)
{
	struct fixture f;

	setup(&f);
	((Elf32_Ehdr *)f.img)->e_machine = EM_ARM;
	expect_reject(&f, -ENOEXEC, "ELF32 machine 40 is not i386 (3)");
	teardown(&f);
}

Test(multiboot, rejects_inconsistent_aout_fields)
{
	struct fixture f;
	uint32_t flags = MULTIBOOT_AOUT_KLUDGE;
	struct multiboot_header h = {
	    .magic = MULTIBOOT_HEADER_MAGIC,
	    .flags = flags,
	    .checksum = -(MULTIBOOT_HEADER_MAGIC + flags),
	    .header_addr = 0x100000,
	    .load_addr = 0x100000,
	    .load_end_addr = 0x200000, /* 1 MiB from a 16 KiB file */
	    .entry_addr = 0x100000,
	};

	setup(&f);
	memset(f.img, 0, 4);
	memcpy(f.img + 0x40, &h, sizeof(h)); /* header at 0x40, but header_addr == load_addr */
	expect_reject(&f, -ENOEXEC,
		      "load_addr 0x100000 .. load_end_addr 0x200000 (1 MiB) runs "
		      "past the end of the 16384-byte file");
	h.load_end_addr = 0;
	h.load_addr = 0x100100; /* above header_addr */
	memcpy(f.img + 0x40, &h, sizeof(h));
	expect_reject(&f, -ENOEXEC, "multiboot load_addr 0x100100 is above header_addr 0x100000");
	h.load_addr = 0xf0000; /* starts 0x10000 before the header: before the file */
	memcpy(f.img + 0x40, &h, sizeof(h));
	expect_reject(&f, -ENOEXEC, "puts the load start before the file");
	teardown(&f);
}

Test(multiboot, rejects_module_that_does_not_fit)
{
	struct fixture f;

	setup(&f);
	f.args.initrd_size = RAM;
	f.args.initrd_name = "/k/big";
	expect_reject(&f, -ENOMEM, "initrd /k/big: 64 MiB does not fit in guest RAM");
	teardown(&f);
}

Test(multiboot, rejects_cmdline_too_long)
{
	struct fixture f;
	char *cmd = malloc(LAYOUT_CMDLINE_MAX);

	setup(&f);
	memset(cmd, 'a', LAYOUT_CMDLINE_MAX - 1);
	cmd[LAYOUT_CMDLINE_MAX - 1] = '\0';
	f.args.cmdline = cmd;
	expect_reject(&f, -E2BIG, "longer than ember's limit");
	free(cmd);
	teardown(&f);
}

/* Through boot_load(): a multiboot ELF32 file is chosen before PVH; bad ones exit with the file
 * name. */
Test(multiboot, boot_load_picks_multiboot)
{
	struct fixture f;
	struct boot_config cfg = {0};
	char path[] = "/tmp/ember-test-mb-XXXXXX";
	int fd;

	setup(&f);
	fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, f.img, f.len), (ssize_t)f.len);
	close(fd);
	cfg.kernel_path = path;
	cfg.cmdline = "x";
	cr_assert_eq(boot_load(&f.mem, &cfg, &f.entry, f.err, sizeof(f.err)), 0, "%s", f.err);
	cr_assert_eq(f.entry.mode, BOOT_MULTIBOOT);
	cr_assert_eq(f.entry.eax, MULTIBOOT_BOOTLOADER_MAGIC);
	/* Truncated: the data segment now lies beyond the end. */
	cr_assert_eq(truncate(path, DATA_OFF + 0x10), 0);
	cr_assert_eq(boot_load(&f.mem, &cfg, &f.entry, f.err, sizeof(f.err)), -ENOEXEC);
	cr_assert_not_null(strstr(f.err, path), "%s", f.err);
	cr_assert_not_null(strstr(f.err, "lies beyond the"), "%s", f.err);
	unlink(path);
	teardown(&f);
}
