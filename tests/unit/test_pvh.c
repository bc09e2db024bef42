#include <criterion/criterion.h>
#include <elf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/memory.h"
#include "vmm/x86/boot.h"
#include "vmm/x86/e820.h"
#include "vmm/x86/layout.h"
#include "vmm/x86/pvh.h"

#define MiB (1ULL << 20)
#define RAM (64 * MiB)
#define IMG_SIZE 0x4000
#define NOTE_OFF 0x200
#define TEXT_OFF 0x1000
#define TEXT_SIZE 0x2000
#define TEXT_MEMSZ 0x3000
#define TEXT_PADDR 0x100000ULL
#define DATA_OFF 0x3000
#define DATA_SIZE 0x100
#define DATA_MEMSZ 0x10000
#define DATA_PADDR 0x400000ULL
#define ENTRY 0x100040ULL

struct fixture {
	uint8_t *ram;
	struct guest_mem mem;
	uint8_t *img;
	size_t len;
	struct boot_args args;
	struct boot_entry entry;
	char err[256];
};

static Elf64_Ehdr *ehdr(struct fixture *f)
{
	return (Elf64_Ehdr *)f->img;
}

static Elf64_Phdr *phdr(struct fixture *f, int i)
{
	return (Elf64_Phdr *)(f->img + sizeof(Elf64_Ehdr) + i * sizeof(Elf64_Phdr));
}

/* Appends a note at *off; returns a pointer to its descriptor. */
static uint8_t *add_note(uint8_t *img, size_t *off, const char *name, uint32_t type,
			 uint32_t descsz)
{
	Elf64_Nhdr nh = {
	    .n_namesz = (uint32_t)strlen(name) + 1, .n_descsz = descsz, .n_type = type};
	uint8_t *desc;

	memcpy(img + *off, &nh, sizeof(nh));
	memcpy(img + *off + sizeof(nh), name, nh.n_namesz);
	desc = img + *off + sizeof(nh) + ((nh.n_namesz + 3) & ~3u);
	*off = (size_t)(desc - img) + ((descsz + 3) & ~3u);
	return desc;
}

/* Notes: a GNU build id, then Xen's PHYS32_ENTRY with an 8-byte value (as Linux has). */
static size_t add_notes(uint8_t *img, uint32_t entry_descsz, uint64_t entry)
{
	size_t off = NOTE_OFF;
	uint8_t *desc;

	desc = add_note(img, &off, "GNU", NT_GNU_BUILD_ID, 20);
	memset(desc, 0xab, 20);
	desc = add_note(img, &off, "Xen", XEN_ELFNOTE_PHYS32_ENTRY, entry_descsz);
	memcpy(desc, &entry, entry_descsz < 8 ? entry_descsz : 8);
	return off - NOTE_OFF;
}

static void fill_segments(uint8_t *img)
{
	for (size_t i = 0; i < TEXT_SIZE; i++)
		img[TEXT_OFF + i] = (uint8_t)(i * 13 + 5);
	for (size_t i = 0; i < DATA_SIZE; i++)
		img[DATA_OFF + i] = (uint8_t)(i + 0x80);
}

/* ELF64 x86-64 executable: PT_NOTE, text (with bss), data (with bss). */
static void make_elf64(struct fixture *f)
{
	Elf64_Ehdr *eh;
	size_t notes;

	f->len = IMG_SIZE;
	f->img = calloc(1, f->len);
	cr_assert(f->img);
	eh = ehdr(f);
	memcpy(eh->e_ident, ELFMAG, SELFMAG);
	eh->e_ident[EI_CLASS] = ELFCLASS64;
	eh->e_ident[EI_DATA] = ELFDATA2LSB;
	eh->e_ident[EI_VERSION] = EV_CURRENT;
	eh->e_type = ET_EXEC;
	eh->e_machine = EM_X86_64;
	eh->e_version = EV_CURRENT;
	eh->e_entry = 0xffffffff81000000ULL;
	eh->e_phoff = sizeof(Elf64_Ehdr);
	eh->e_ehsize = sizeof(Elf64_Ehdr);
	eh->e_phentsize = sizeof(Elf64_Phdr);
	eh->e_phnum = 3;
	notes = add_notes(f->img, 8, ENTRY);
	*phdr(f, 0) = (Elf64_Phdr){.p_type = PT_NOTE,
				   .p_offset = NOTE_OFF,
				   .p_filesz = notes,
				   .p_memsz = notes,
				   .p_align = 4};
	*phdr(f, 1) = (Elf64_Phdr){.p_type = PT_LOAD,
				   .p_offset = TEXT_OFF,
				   .p_vaddr = 0xffffffff81000000ULL,
				   .p_paddr = TEXT_PADDR,
				   .p_filesz = TEXT_SIZE,
				   .p_memsz = TEXT_MEMSZ,
				   .p_align = 0x1000};
	*phdr(f, 2) = (Elf64_Phdr){.p_type = PT_LOAD,
				   .p_offset = DATA_OFF,
				   .p_paddr = DATA_PADDR,
				   .p_filesz = DATA_SIZE,
				   .p_memsz = DATA_MEMSZ,
				   .p_align = 0x1000};
	fill_segments(f->img);
}

/* The same as ELF32 i386 with a 4-byte entry note. */
static void make_elf32(struct fixture *f)
{
	Elf32_Ehdr eh = {0};
	Elf32_Phdr ph[3];
	size_t notes;

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
	eh.e_phoff = sizeof(Elf32_Ehdr);
	eh.e_phentsize = sizeof(Elf32_Phdr);
	eh.e_phnum = 3;
	memcpy(f->img, &eh, sizeof(eh));
	notes = add_notes(f->img, 4, ENTRY);
	ph[0] = (Elf32_Phdr){.p_type = PT_NOTE,
			     .p_offset = NOTE_OFF,
			     .p_filesz = notes,
			     .p_memsz = notes,
			     .p_align = 4};
	ph[1] = (Elf32_Phdr){.p_type = PT_LOAD,
			     .p_offset = TEXT_OFF,
			     .p_paddr = TEXT_PADDR,
			     .p_filesz = TEXT_SIZE,
			     .p_memsz = TEXT_MEMSZ};
	ph[2] = (Elf32_Phdr){.p_type = PT_LOAD,
			     .p_offset = DATA_OFF,
			     .p_paddr = DATA_PADDR,
			     .p_filesz = DATA_SIZE,
			     .p_memsz = DATA_MEMSZ};
	memcpy(f->img + sizeof(eh), ph, sizeof(ph));
	fill_segments(f->img);
}

static void init_ram(struct fixture *f)
{
	struct gmem_region r;

	memset(f, 0, sizeof(*f));
	f->ram = malloc(RAM);
	cr_assert(f->ram);
	/* Garbage, so that bss zeroing is visible. */
	memset(f->ram, 0xee, RAM);
	r = (struct gmem_region){.gpa = 0, .size = RAM, .hva = f->ram};
	gmem_init_fake(&f->mem, &r, 1);
	f->args.kernel_name = "/k/vmlinux";
	f->args.initrd_name = "/k/initrd";
	f->args.cmdline = "console=hvc0";
}

static void init(struct fixture *f)
{
	init_ram(f);
	make_elf64(f);
}

static void fini(struct fixture *f)
{
	free(f->ram);
	free(f->img);
}

static int load(struct fixture *f)
{
	f->err[0] = '\0';
	return pvh_load(&f->mem, f->img, f->len, &f->args, &f->entry, f->err, sizeof(f->err));
}

static void expect_reject(struct fixture *f, int ret, const char *what)
{
	int got = load(f);

	cr_expect_eq(got, ret, "returned %d, expected %d (%s)", got, ret, f->err);
	cr_expect(strstr(f->err, what), "message \"%s\" lacks \"%s\"", f->err, what);
	cr_expect_null(strchr(f->err, '\n'), "one line: %s", f->err);
	cr_expect_eq(f->ram[TEXT_PADDR], 0xee, "a failed load wrote the kernel");
	cr_expect_eq(f->ram[LAYOUT_PVH_START_INFO], 0xee, "a failed load wrote the start info");
}

static void expect_loaded(struct fixture *f)
{
	cr_expect_eq(memcmp(f->ram + TEXT_PADDR, f->img + TEXT_OFF, TEXT_SIZE), 0, "text");
	cr_expect_eq(memcmp(f->ram + DATA_PADDR, f->img + DATA_OFF, DATA_SIZE), 0, "data");
	for (size_t i = TEXT_SIZE; i < TEXT_MEMSZ; i++)
		if (f->ram[TEXT_PADDR + i]) {
			cr_expect_fail("text bss byte 0x%zx not zeroed", i);
			break;
		}
	for (size_t i = DATA_SIZE; i < DATA_MEMSZ; i++)
		if (f->ram[DATA_PADDR + i]) {
			cr_expect_fail("data bss byte 0x%zx not zeroed", i);
			break;
		}
	cr_expect_eq(f->ram[DATA_PADDR + DATA_MEMSZ], 0xee, "wrote past p_memsz");
	cr_expect_eq(f->entry.mode, BOOT_PVH);
	cr_expect_eq(f->entry.entry, ENTRY);
	cr_expect_eq(f->entry.boot_info, LAYOUT_PVH_START_INFO);
}

Test(pvh, elf64_loads_segments_and_start_info)
{
	struct e820_entry e820[E820_MAX_BUILT];
	struct hvm_start_info si;
	struct hvm_modlist_entry mod;
	uint8_t initrd[6000];
	struct fixture f;
	int n;

	init(&f);
	for (size_t i = 0; i < sizeof(initrd); i++)
		initrd[i] = (uint8_t)(i * 3);
	f.args.initrd = initrd;
	f.args.initrd_size = sizeof(initrd);
	f.args.rsdp_gpa = LAYOUT_ACPI_START;
	cr_assert_eq(load(&f), 0, "%s", f.err);
	expect_loaded(&f);

	memcpy(&si, f.ram + LAYOUT_PVH_START_INFO, sizeof(si));
	cr_expect_eq(si.magic, XEN_HVM_START_MAGIC);
	cr_expect_eq(si.version, 1);
	cr_expect_eq(si.flags, 0);
	cr_expect_eq(si.cmdline_paddr, LAYOUT_CMDLINE);
	cr_expect_str_eq((const char *)f.ram + LAYOUT_CMDLINE, "console=hvc0");
	cr_expect_eq(si.rsdp_paddr, LAYOUT_ACPI_START);

	cr_assert_eq(si.nr_modules, 1);
	cr_assert_geq(si.modlist_paddr, LAYOUT_PVH_START_INFO);
	cr_assert_leq(si.modlist_paddr + sizeof(mod), LAYOUT_PVH_END);
	memcpy(&mod, f.ram + si.modlist_paddr, sizeof(mod));
	cr_expect_eq(mod.paddr, f.entry.initrd_addr);
	cr_expect_eq(mod.size, sizeof(initrd));
	cr_expect_eq(mod.cmdline_paddr, 0);
	cr_expect_eq(mod.paddr % 4096, 0, "initrd page-aligned");
	cr_expect_leq(mod.paddr + sizeof(initrd), RAM);
	cr_expect_gt(mod.paddr + 4096 + sizeof(initrd), RAM, "initrd at the top of RAM");
	cr_expect_geq(mod.paddr, DATA_PADDR + DATA_MEMSZ, "initrd above the kernel");
	cr_expect_eq(memcmp(f.ram + mod.paddr, initrd, sizeof(initrd)), 0);

	n = e820_build(&f.mem, e820, E820_MAX_BUILT);
	cr_assert_eq(si.memmap_entries, (uint32_t)n);
	cr_assert_geq(si.memmap_paddr, LAYOUT_PVH_START_INFO);
	cr_assert_leq(si.memmap_paddr + n * sizeof(struct hvm_memmap_table_entry), LAYOUT_PVH_END);
	for (int i = 0; i < n; i++) {
		struct hvm_memmap_table_entry me;

		memcpy(&me, f.ram + si.memmap_paddr + i * sizeof(me), sizeof(me));
		cr_expect_eq(me.addr, e820[i].addr);
		cr_expect_eq(me.size, e820[i].size);
		cr_expect_eq(me.type, e820[i].type);
		cr_expect_eq(me.reserved, 0);
	}
	cr_expect_eq(f.ram[LAYOUT_ZERO_PAGE], 0xee, "start info stays below the zero page");
	fini(&f);
}

Test(pvh, no_initrd_means_no_modules)
{
	struct hvm_start_info si;
	struct fixture f;

	init(&f);
	f.args.cmdline = NULL;
	cr_assert_eq(load(&f), 0, "%s", f.err);
	memcpy(&si, f.ram + LAYOUT_PVH_START_INFO, sizeof(si));
	cr_expect_eq(si.nr_modules, 0);
	cr_expect_eq(si.modlist_paddr, 0);
	cr_expect_eq(si.rsdp_paddr, 0);
	cr_expect_str_eq((const char *)f.ram + LAYOUT_CMDLINE, "");
	fini(&f);
}

Test(pvh, elf32_with_4_byte_note)
{
	struct fixture f;

	init_ram(&f);
	make_elf32(&f);
	cr_assert_eq(load(&f), 0, "%s", f.err);
	expect_loaded(&f);
	fini(&f);
}

Test(pvh, initrd_goes_below_a_kernel_at_the_top)
{
	uint8_t initrd[8192] = {7};
	struct fixture f;

	init(&f);
	/* The whole kernel ends exactly at the end of RAM: the initrd goes below it. */
	phdr(&f, 1)->p_paddr = RAM - 0x20000;
	phdr(&f, 2)->p_paddr = RAM - DATA_MEMSZ;
	add_notes(f.img, 8, RAM - 0x20000 + 0x40);
	f.args.initrd = initrd;
	f.args.initrd_size = sizeof(initrd);
	cr_assert_eq(load(&f), 0, "%s", f.err);
	cr_expect_eq(f.entry.initrd_addr % 4096, 0);
	cr_expect_leq(f.entry.initrd_addr + sizeof(initrd), RAM - 0x20000);
	cr_expect_gt(f.entry.initrd_addr + 4096 + sizeof(initrd), RAM - 0x20000);
	cr_expect_eq(memcmp(f.ram + f.entry.initrd_addr, initrd, sizeof(initrd)), 0);
	fini(&f);
}

Test(pvh, initrd_too_big)
{
	struct fixture f;

	init(&f);
	f.args.initrd_size = 63 * MiB;
	expect_reject(&f, -ENOMEM, "initrd /k/initrd: 63 MiB does not fit");
	fini(&f);
}

Test(pvh, no_note)
{
	struct fixture f;

	init(&f);
	phdr(&f, 0)->p_type = PT_NULL;
	expect_reject(&f, -ENOEXEC, "no Xen PVH entry note");
	fini(&f);
}

Test(pvh, note_with_other_name_is_not_the_entry)
{
	struct fixture f;
	size_t off = NOTE_OFF, notes;
	uint64_t entry = ENTRY;

	init(&f);
	memset(f.img + NOTE_OFF, 0, 0x100);
	memcpy(add_note(f.img, &off, "Xem", XEN_ELFNOTE_PHYS32_ENTRY, 8), &entry, 8);
	notes = off - NOTE_OFF;
	phdr(&f, 0)->p_filesz = notes;
	expect_reject(&f, -ENOEXEC, "no Xen PVH entry note");
	fini(&f);
}

Test(pvh, entry_note_with_odd_size)
{
	struct fixture f;
	size_t off = NOTE_OFF;

	init(&f);
	memset(f.img + NOTE_OFF, 0, 0x100);
	add_note(f.img, &off, "Xen", XEN_ELFNOTE_PHYS32_ENTRY, 2);
	phdr(&f, 0)->p_filesz = off - NOTE_OFF;
	expect_reject(&f, -ENOEXEC, "2-byte");
	fini(&f);
}

/* binutils' layout for 8-aligned note segments: header+name and desc padded to 8. */
Test(pvh, note_segment_aligned_to_8)
{
	struct fixture f;
	uint8_t *p;
	uint64_t entry = ENTRY;
	Elf64_Nhdr gnu = {.n_namesz = 4, .n_descsz = 12, .n_type = 5 /* GNU property */};
	Elf64_Nhdr xen = {.n_namesz = 4, .n_descsz = 8, .n_type = XEN_ELFNOTE_PHYS32_ENTRY};

	init(&f);
	p = f.img + NOTE_OFF;
	memset(p, 0, 0x100);
	memcpy(p, &gnu, sizeof(gnu));
	memcpy(p + 12, "GNU", 4);
	memset(p + 16, 0x11, 12); /* desc at 16, next note at align8(16 + 12) = 32 */
	memcpy(p + 32, &xen, sizeof(xen));
	memcpy(p + 44, "Xen", 4);
	memcpy(p + 48, &entry, 8);
	phdr(&f, 0)->p_filesz = 56;
	phdr(&f, 0)->p_align = 8;
	cr_assert_eq(load(&f), 0, "%s", f.err);
	cr_expect_eq(f.entry.entry, ENTRY);
	fini(&f);
}

Test(pvh, note_size_beyond_segment)
{
	struct fixture f;

	init(&f);
	/* The GNU note claims a descriptor bigger than the segment: no entry is found. */
	((Elf64_Nhdr *)(f.img + NOTE_OFF))->n_descsz = 0xfffffff0;
	expect_reject(&f, -ENOEXEC, "no Xen PVH entry note");
	fini(&f);
}

Test(pvh, note_segment_beyond_file)
{
	struct fixture f;

	init(&f);
	phdr(&f, 0)->p_offset = IMG_SIZE - 4;
	expect_reject(&f, -ENOEXEC, "note segment 0");
	fini(&f);
}

Test(pvh, entry_outside_segments)
{
	struct fixture f;

	init(&f);
	/* The entry must be in bytes loaded from the file, not in bss. */
	phdr(&f, 1)->p_filesz = 0x40;
	expect_reject(&f, -ENOEXEC, "PVH entry 0x100040 is not inside any loaded segment");
	fini(&f);
}

Test(pvh, segment_beyond_file)
{
	struct fixture f;

	init(&f);
	phdr(&f, 2)->p_filesz = 0x2000; /* 0x3000 + 0x2000 > 0x4000 */
	expect_reject(&f, -ENOEXEC, "segment 2: p_offset 0x3000 + p_filesz 0x2000 lies beyond");
	fini(&f);
}

Test(pvh, offset_plus_filesz_overflow)
{
	struct fixture f;

	init(&f);
	phdr(&f, 2)->p_offset = 0xffffffffffffff00ULL;
	phdr(&f, 2)->p_filesz = 0x100;
	expect_reject(&f, -ENOEXEC, "beyond");
	phdr(&f, 2)->p_offset = 0x100;
	phdr(&f, 2)->p_filesz = 0xffffffffffffff80ULL;
	phdr(&f, 2)->p_memsz = 0xffffffffffffff80ULL;
	expect_reject(&f, -ENOEXEC, "beyond");
	fini(&f);
}

Test(pvh, filesz_larger_than_memsz)
{
	struct fixture f;

	init(&f);
	phdr(&f, 2)->p_memsz = DATA_SIZE - 1;
	expect_reject(&f, -ENOEXEC, "p_filesz");
	fini(&f);
}

Test(pvh, segment_outside_ram)
{
	struct fixture f;

	init(&f);
	phdr(&f, 2)->p_paddr = RAM - 0x100; /* memsz 0x10000 runs past the end */
	expect_reject(&f, -ENOMEM, "not inside guest RAM");
	phdr(&f, 2)->p_paddr = 0xfffffffffffff000ULL; /* paddr + memsz wraps */
	expect_reject(&f, -ENOMEM, "not inside guest RAM");
	fini(&f);
}

Test(pvh, segment_over_ember_low_areas)
{
	static const uint64_t bad[] = {0,
				       LAYOUT_PVH_START_INFO,
				       LAYOUT_ZERO_PAGE,
				       LAYOUT_CMDLINE,
				       LAYOUT_ACPI_START,
				       LAYOUT_KERNEL_START - 0x1000};
	struct fixture f;

	init(&f);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		phdr(&f, 2)->p_paddr = bad[i];
		expect_reject(&f, -ENOEXEC, "below 1 MiB");
	}
	fini(&f);
}

Test(pvh, bad_program_header_table)
{
	struct fixture f;

	init(&f);
	ehdr(&f)->e_phoff = 0xffffffffffffff00ULL;
	expect_reject(&f, -ENOEXEC, "e_phoff");
	ehdr(&f)->e_phoff = IMG_SIZE - 0x10;
	expect_reject(&f, -ENOEXEC, "e_phoff");
	ehdr(&f)->e_phoff = sizeof(Elf64_Ehdr);
	ehdr(&f)->e_phnum = 0xfffe;
	expect_reject(&f, -ENOEXEC, "lie beyond");
	ehdr(&f)->e_phnum = 0;
	expect_reject(&f, -ENOEXEC, "e_phnum 0");
	ehdr(&f)->e_phnum = 3;
	ehdr(&f)->e_phentsize = 8;
	expect_reject(&f, -ENOEXEC, "e_phentsize 8");
	fini(&f);
}

Test(pvh, wrong_machine_type_class_endianness)
{
	struct fixture f;

	init(&f);
	ehdr(&f)->e_machine = EM_AARCH64;
	expect_reject(&f, -ENOEXEC, "machine 183 is not x86-64");
	ehdr(&f)->e_machine = EM_X86_64;
	ehdr(&f)->e_type = ET_DYN;
	expect_reject(&f, -ENOEXEC, "not an executable");
	ehdr(&f)->e_type = ET_EXEC;
	ehdr(&f)->e_ident[EI_DATA] = ELFDATA2MSB;
	expect_reject(&f, -ENOEXEC, "little-endian");
	ehdr(&f)->e_ident[EI_DATA] = ELFDATA2LSB;
	ehdr(&f)->e_ident[EI_CLASS] = 7;
	expect_reject(&f, -ENOEXEC, "ELF class 7");
	fini(&f);
}

Test(pvh, elf32_with_x86_64_machine_rejected)
{
	struct fixture f;

	init_ram(&f);
	make_elf32(&f);
	((Elf32_Ehdr *)f.img)->e_machine = EM_X86_64;
	expect_reject(&f, -ENOEXEC, "not i386");
	fini(&f);
}

Test(pvh, cmdline_longer_than_ember_limit)
{
	char *cmdline = malloc(LAYOUT_CMDLINE_MAX + 1);
	struct fixture f;

	init(&f);
	memset(cmdline, 'x', LAYOUT_CMDLINE_MAX);
	cmdline[LAYOUT_CMDLINE_MAX] = '\0';
	f.args.cmdline = cmdline;
	expect_reject(&f, -E2BIG, "cmdline");
	cmdline[LAYOUT_CMDLINE_MAX - 1] = '\0'; /* 65535 bytes + NUL fit exactly */
	cr_expect_eq(load(&f), 0, "%s", f.err);
	free(cmdline);
	fini(&f);
}

Test(pvh, high_region_segment)
{
	uint8_t *high = calloc(1, 1 * MiB);
	struct gmem_region r[2];
	struct fixture f;

	init(&f);
	r[0] = (struct gmem_region){.gpa = 0, .size = RAM, .hva = f.ram};
	r[1] = (struct gmem_region){.gpa = LAYOUT_HIGHMEM_START, .size = 1 * MiB, .hva = high};
	gmem_init_fake(&f.mem, r, 2);
	phdr(&f, 2)->p_paddr = LAYOUT_HIGHMEM_START + 0x1000;
	cr_assert_eq(load(&f), 0, "%s", f.err);
	cr_expect_eq(memcmp(high + 0x1000, f.img + DATA_OFF, DATA_SIZE), 0);
	/* Across the end of the high region: rejected. */
	phdr(&f, 2)->p_paddr = LAYOUT_HIGHMEM_START + 1 * MiB - 0x100;
	cr_expect_eq(load(&f), -ENOMEM, "%s", f.err);
	free(high);
	fini(&f);
}

/* Truncations and random corruption of headers: clean errors, never a crash. */
Test(pvh, garbage_never_crashes)
{
	struct fixture f;
	uint8_t *orig;
	int ret;

	init(&f);
	orig = malloc(f.len);
	memcpy(orig, f.img, f.len);
	for (size_t len = 0; len <= f.len; len += 5) {
		ret = pvh_load(&f.mem, f.img, len, &f.args, &f.entry, f.err, sizeof(f.err));
		if (len < DATA_OFF + DATA_SIZE)
			cr_expect_lt(ret, 0, "truncated to %zu bytes accepted", len);
	}
	srand(2);
	for (int round = 0; round < 3000; round++) {
		memcpy(f.img, orig, f.len);
		for (int k = 0; k < 3; k++)
			f.img[rand() % 0x300] = (uint8_t)rand();
		f.err[0] = '\0';
		ret = pvh_load(&f.mem, f.img, f.len, &f.args, &f.entry, f.err, sizeof(f.err));
		if (ret)
			cr_expect_neq(f.err[0], '\0', "error %d without a message", ret);
	}
	free(orig);
	fini(&f);
}
