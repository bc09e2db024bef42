#include "vmm/x86/multiboot.h"

#include <elf.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "vmm/x86/e820.h"

#define KiB 1024ULL
#define FOUR_GIB (1ULL << 32)

_Static_assert(sizeof(struct multiboot_info) == 116, "multiboot_info size");
_Static_assert(sizeof(struct multiboot_module) == 16, "multiboot_module size");
_Static_assert(sizeof(struct multiboot_mmap_entry) == 24, "multiboot_mmap_entry size");
_Static_assert(MULTIBOOT_INFO_GPA + sizeof(struct multiboot_info) <= MULTIBOOT_MODS_GPA,
	       "information below the module list");
_Static_assert(MULTIBOOT_MODS_GPA + sizeof(struct multiboot_module) <= MULTIBOOT_MMAP_GPA,
	       "module list below the memory map");
_Static_assert(MULTIBOOT_MMAP_GPA + E820_MAX_BUILT * sizeof(struct multiboot_mmap_entry) <=
		   MULTIBOOT_LOADER_NAME_GPA,
	       "memory map below the loader name");
_Static_assert(MULTIBOOT_LOADER_NAME_GPA + sizeof(MULTIBOOT_LOADER_NAME) <= LAYOUT_PVH_END,
	       "everything fits below the zero page");

/* Guest-physical ranges a kernel segment must not cover. */
static const struct {
	uint64_t start, end;
	const char *what;
} mb_reserved[] = {
    {0, 0x1000, "the real-mode IVT, BIOS data area and ember's boot GDT"},
    {LAYOUT_PVH_START_INFO, LAYOUT_PVH_END, "the multiboot information"},
    {LAYOUT_CMDLINE, LAYOUT_CMDLINE + LAYOUT_CMDLINE_MAX, "the command line"},
    {LAYOUT_EBDA_START, LAYOUT_KERNEL_START, "the EBDA and ACPI tables"},
};

/* The image as parsed: the header and, without the a.out kludge, the ELF. */
struct mb_image {
	const uint8_t *img;
	size_t len;
	const char *name;
	struct multiboot_header hdr;
	size_t hdr_off;
	bool aout;
	/* ELF */
	bool is64;
	uint64_t e_entry;
	uint64_t phoff;
	uint16_t phentsize;
	uint16_t phnum;
};

/* One piece to load: file bytes [offset, offset+filesz) to paddr, then zeros to memsz. */
struct mb_seg {
	uint64_t paddr;
	uint64_t vaddr;
	uint64_t offset;
	uint64_t filesz;
	uint64_t memsz;
};

/* What the checks work out, for the write phase. */
struct mb_plan {
	uint64_t entry;
	uint64_t kernel_start;
	uint64_t kernel_end;
	uint64_t initrd_addr;
	size_t cmdline_len; /* "<kernel> <cmdline>", without the NUL */
	size_t modstr_len;  /* the initrd's name, without the NUL */
	struct e820_entry e820[E820_MAX_BUILT];
	int e820_n;
};

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

bool multiboot_probe(const uint8_t *img, size_t len, size_t *offset)
{
	size_t end = len < MULTIBOOT_SEARCH ? len : MULTIBOOT_SEARCH;

	for (size_t off = 0; off + 12 <= end; off += 4) {
		uint32_t magic = get32(img + off);

		if (magic != MULTIBOOT_HEADER_MAGIC)
			continue;
		if ((uint32_t)(magic + get32(img + off + 4) + get32(img + off + 8)) != 0)
			continue;
		if (offset)
			*offset = off;
		return true;
	}
	return false;
}

static int mb_parse_elf(struct mb_image *im, char *err, size_t errlen)
{
	const uint8_t *img = im->img;
	size_t phsize;
	uint16_t machine, type;

	if (im->len < SELFMAG || memcmp(img, ELFMAG, SELFMAG) != 0) {
		boot_errf(err, errlen,
			  "kernel %s: multiboot header without address fields (flag bit 16) in a "
			  "file that is not ELF",
			  im->name);
		return -ENOEXEC;
	}
	if (im->len < EI_NIDENT || (img[EI_CLASS] != ELFCLASS32 && img[EI_CLASS] != ELFCLASS64)) {
		boot_errf(err, errlen, "kernel %s: unknown ELF class %u", im->name,
			  im->len < EI_NIDENT ? 0 : img[EI_CLASS]);
		return -ENOEXEC;
	}
	if (img[EI_DATA] != ELFDATA2LSB) {
		boot_errf(err, errlen, "kernel %s: ELF is not little-endian (EI_DATA %u)", im->name,
			  img[EI_DATA]);
		return -ENOEXEC;
	}
	im->is64 = img[EI_CLASS] == ELFCLASS64;
	if (im->is64) {
		Elf64_Ehdr eh;

		if (im->len < sizeof(eh))
			goto truncated;
		memcpy(&eh, img, sizeof(eh));
		machine = eh.e_machine;
		type = eh.e_type;
		im->e_entry = eh.e_entry;
		im->phoff = eh.e_phoff;
		im->phentsize = eh.e_phentsize;
		im->phnum = eh.e_phnum;
		phsize = sizeof(Elf64_Phdr);
	} else {
		Elf32_Ehdr eh;

		if (im->len < sizeof(eh))
			goto truncated;
		memcpy(&eh, img, sizeof(eh));
		machine = eh.e_machine;
		type = eh.e_type;
		im->e_entry = eh.e_entry;
		im->phoff = eh.e_phoff;
		im->phentsize = eh.e_phentsize;
		im->phnum = eh.e_phnum;
		phsize = sizeof(Elf32_Phdr);
	}
	if (machine != (im->is64 ? EM_X86_64 : EM_386)) {
		boot_errf(err, errlen, "kernel %s: ELF%s machine %u is not %s (%u)", im->name,
			  im->is64 ? "64" : "32", machine, im->is64 ? "x86-64" : "i386",
			  im->is64 ? EM_X86_64 : EM_386);
		return -ENOEXEC;
	}
	if (type != ET_EXEC) {
		boot_errf(err, errlen, "kernel %s: ELF type %u is not an executable (ET_EXEC)",
			  im->name, type);
		return -ENOEXEC;
	}
	if (im->phnum == 0 || im->phnum == PN_XNUM) {
		boot_errf(err, errlen, "kernel %s: e_phnum %u: no usable program headers", im->name,
			  im->phnum);
		return -ENOEXEC;
	}
	if (im->phentsize < phsize) {
		boot_errf(err, errlen,
			  "kernel %s: e_phentsize %u is smaller than a program header (%zu)",
			  im->name, im->phentsize, phsize);
		return -ENOEXEC;
	}
	if (im->phoff > im->len || (uint64_t)im->phnum * im->phentsize > im->len - im->phoff) {
		boot_errf(err, errlen,
			  "kernel %s: program headers at e_phoff 0x%llx (%u x %u bytes) lie beyond "
			  "the %zu-byte file",
			  im->name, (unsigned long long)im->phoff, im->phnum, im->phentsize,
			  im->len);
		return -ENOEXEC;
	}
	return 0;

truncated:
	boot_errf(err, errlen, "kernel %s: truncated ELF header (%zu bytes)", im->name, im->len);
	return -ENOEXEC;
}

/* The a.out kludge's one segment from the header's address fields. */
static int mb_aout_seg(const struct mb_image *im, struct mb_seg *s, char *err, size_t errlen)
{
	const struct multiboot_header *h = &im->hdr;
	uint64_t delta, file_off;

	if (h->load_addr > h->header_addr) {
		boot_errf(err, errlen,
			  "kernel %s: multiboot load_addr 0x%x is above header_addr 0x%x", im->name,
			  h->load_addr, h->header_addr);
		return -ENOEXEC;
	}
	delta = (uint64_t)h->header_addr - h->load_addr;
	if (delta > im->hdr_off) {
		boot_errf(err, errlen,
			  "kernel %s: multiboot header_addr 0x%x - load_addr 0x%x puts the load "
			  "start before the file (header at file offset 0x%zx)",
			  im->name, h->header_addr, h->load_addr, im->hdr_off);
		return -ENOEXEC;
	}
	file_off = im->hdr_off - delta;
	s->paddr = s->vaddr = h->load_addr;
	s->offset = file_off;
	if (h->load_end_addr == 0) {
		s->filesz = im->len - file_off;
	} else if (h->load_end_addr < h->load_addr) {
		boot_errf(err, errlen,
			  "kernel %s: multiboot load_end_addr 0x%x is below load_addr 0x%x",
			  im->name, h->load_end_addr, h->load_addr);
		return -ENOEXEC;
	} else {
		s->filesz = (uint64_t)h->load_end_addr - h->load_addr;
		if (s->filesz > im->len - file_off) {
			boot_errf(err, errlen,
				  "kernel %s: multiboot load_addr 0x%x .. load_end_addr 0x%x (%s) "
				  "runs past the end of the %zu-byte file",
				  im->name, h->load_addr, h->load_end_addr, boot_size(s->filesz).s,
				  im->len);
			return -ENOEXEC;
		}
	}
	if (h->bss_end_addr == 0) {
		s->memsz = s->filesz;
	} else if (h->bss_end_addr < h->load_addr + s->filesz) {
		boot_errf(err, errlen,
			  "kernel %s: multiboot bss_end_addr 0x%x is below the end of the loaded "
			  "image 0x%llx",
			  im->name, h->bss_end_addr,
			  (unsigned long long)(h->load_addr + s->filesz));
		return -ENOEXEC;
	} else {
		s->memsz = (uint64_t)h->bss_end_addr - h->load_addr;
	}
	return 0;
}

/* ELF program header i as a segment; false unless it is a non-empty PT_LOAD. */
static bool mb_elf_seg(const struct mb_image *im, unsigned int i, struct mb_seg *s)
{
	const uint8_t *p = im->img + im->phoff + (uint64_t)i * im->phentsize;

	if (im->is64) {
		Elf64_Phdr h;

		memcpy(&h, p, sizeof(h));
		if (h.p_type != PT_LOAD || h.p_memsz == 0)
			return false;
		*s = (struct mb_seg){h.p_paddr, h.p_vaddr, h.p_offset, h.p_filesz, h.p_memsz};
	} else {
		Elf32_Phdr h;

		memcpy(&h, p, sizeof(h));
		if (h.p_type != PT_LOAD || h.p_memsz == 0)
			return false;
		*s = (struct mb_seg){h.p_paddr, h.p_vaddr, h.p_offset, h.p_filesz, h.p_memsz};
	}
	return true;
}

static unsigned int mb_nsegs(const struct mb_image *im)
{
	return im->aout ? 1 : im->phnum;
}

/* Segment i (already validated for the a.out kludge); false when i loads nothing. */
static bool mb_seg(const struct mb_image *im, unsigned int i, struct mb_seg *s)
{
	if (im->aout)
		return mb_aout_seg(im, s, NULL, 0) == 0 && s->memsz > 0;
	return mb_elf_seg(im, i, s);
}

static int mb_check_seg(const struct guest_mem *mem, const struct mb_image *im,
			const struct mb_seg *s, unsigned int i, char *err, size_t errlen)
{
	char what[32];

	if (im->aout)
		snprintf(what, sizeof(what), "the image");
	else
		snprintf(what, sizeof(what), "segment %u", i);
	if (s->filesz > s->memsz) {
		boot_errf(err, errlen,
			  "kernel %s: %s: p_filesz 0x%llx is larger than p_memsz 0x%llx", im->name,
			  what, (unsigned long long)s->filesz, (unsigned long long)s->memsz);
		return -ENOEXEC;
	}
	if (s->offset > im->len || s->filesz > im->len - s->offset) {
		boot_errf(err, errlen,
			  "kernel %s: %s: file offset 0x%llx + 0x%llx bytes lies beyond the "
			  "%zu-byte file",
			  im->name, what, (unsigned long long)s->offset,
			  (unsigned long long)s->filesz, im->len);
		return -ENOEXEC;
	}
	if (s->memsz > FOUR_GIB || s->paddr > FOUR_GIB - s->memsz) {
		boot_errf(err, errlen,
			  "kernel %s: %s at 0x%llx (%s) reaches above 4 GiB, out of reach of a "
			  "multiboot kernel (paging off)",
			  im->name, what, (unsigned long long)s->paddr, boot_size(s->memsz).s);
		return -ENOEXEC;
	}
	for (size_t r = 0; r < sizeof(mb_reserved) / sizeof(mb_reserved[0]); r++) {
		if (s->paddr < mb_reserved[r].end && mb_reserved[r].start < s->paddr + s->memsz) {
			boot_errf(err, errlen,
				  "kernel %s: %s at [0x%llx, 0x%llx) overlaps %s at [0x%llx, "
				  "0x%llx)",
				  im->name, what, (unsigned long long)s->paddr,
				  (unsigned long long)(s->paddr + s->memsz), mb_reserved[r].what,
				  (unsigned long long)mb_reserved[r].start,
				  (unsigned long long)mb_reserved[r].end);
			return -ENOEXEC;
		}
	}
	if (!gmem_ptr(mem, s->paddr, s->memsz)) {
		boot_errf(err, errlen,
			  "kernel %s: %s at 0x%llx (%s) is not inside guest RAM (%s below 0x%llx)",
			  im->name, what, (unsigned long long)s->paddr, boot_size(s->memsz).s,
			  boot_size(boot_low_end(mem)).s, (unsigned long long)boot_low_end(mem));
		return -ENOMEM;
	}
	return 0;
}

static int mb_parse(const uint8_t *img, size_t len, const char *name, struct mb_image *im,
		    char *err, size_t errlen)
{
	uint32_t required;

	*im = (struct mb_image){.img = img, .len = len, .name = name};
	if (!multiboot_probe(img, len, &im->hdr_off)) {
		boot_errf(err, errlen,
			  "kernel %s: no multiboot header (magic 0x%x with a valid checksum) in "
			  "its first %d bytes",
			  name, MULTIBOOT_HEADER_MAGIC, MULTIBOOT_SEARCH);
		return -ENOEXEC;
	}
	memcpy(&im->hdr, img + im->hdr_off, 12);
	required = im->hdr.flags & 0xffff;
	if (required & ~MULTIBOOT_FLAGS_KNOWN) {
		boot_errf(err, errlen,
			  "kernel %s: multiboot header flags 0x%x require features ember does not "
			  "offer (0x%x)",
			  name, im->hdr.flags, required & ~MULTIBOOT_FLAGS_KNOWN);
		return -ENOEXEC;
	}
	im->aout = im->hdr.flags & MULTIBOOT_AOUT_KLUDGE;
	if (!im->aout)
		return mb_parse_elf(im, err, errlen);
	if (len - im->hdr_off < sizeof(im->hdr)) {
		boot_errf(err, errlen,
			  "kernel %s: multiboot header at file offset 0x%zx is cut off before its "
			  "address fields (flag bit 16)",
			  name, im->hdr_off);
		return -ENOEXEC;
	}
	memcpy(&im->hdr, img + im->hdr_off, sizeof(im->hdr));
	return 0;
}

static int mb_plan_segments(const struct guest_mem *mem, const struct mb_image *im,
			    struct mb_plan *plan, char *err, size_t errlen)
{
	bool have_entry = false;
	struct mb_seg s;
	int ret;

	plan->kernel_start = UINT64_MAX;
	plan->kernel_end = 0;
	if (im->aout) {
		ret = mb_aout_seg(im, &s, err, errlen);
		if (ret)
			return ret;
	}
	for (unsigned int i = 0; i < mb_nsegs(im); i++) {
		if (!mb_seg(im, i, &s))
			continue;
		ret = mb_check_seg(mem, im, &s, i, err, errlen);
		if (ret)
			return ret;
		if (s.paddr < plan->kernel_start)
			plan->kernel_start = s.paddr;
		if (s.paddr + s.memsz > plan->kernel_end)
			plan->kernel_end = s.paddr + s.memsz;
		/* The entry is a virtual address in ELF; GRUB maps it through its segment. */
		if (im->aout) {
			uint64_t e = im->hdr.entry_addr;

			have_entry = e >= s.paddr && e - s.paddr < s.memsz;
			plan->entry = e;
		} else if (!have_entry && im->e_entry >= s.vaddr &&
			   im->e_entry - s.vaddr < s.memsz) {
			have_entry = true;
			plan->entry = im->e_entry - s.vaddr + s.paddr;
		}
	}
	if (plan->kernel_end == 0) {
		boot_errf(err, errlen, "kernel %s: multiboot kernel has nothing to load", im->name);
		return -ENOEXEC;
	}
	if (!have_entry) {
		boot_errf(
		    err, errlen, "kernel %s: multiboot entry 0x%llx is not inside the loaded image",
		    im->name, (unsigned long long)(im->aout ? im->hdr.entry_addr : im->e_entry));
		return -ENOEXEC;
	}
	return 0;
}

static int mb_plan_rest(const struct guest_mem *mem, const struct mb_image *im,
			const struct boot_args *args, struct mb_plan *plan, char *err,
			size_t errlen)
{
	const char *cmdline = args->cmdline ? args->cmdline : "";
	size_t total;
	int ret;

	plan->cmdline_len = strlen(im->name) + (cmdline[0] ? 1 + strlen(cmdline) : 0);
	plan->modstr_len = args->initrd_size ? strlen(boot_initrd_name(args)) : 0;
	total = plan->cmdline_len + 1 + plan->modstr_len + 1;
	if (total > LAYOUT_CMDLINE_MAX) {
		boot_errf(err, errlen,
			  "cmdline: %zu bytes with the kernel path in front (and the initrd path "
			  "as the module's string) is longer than ember's limit of %llu bytes",
			  total, LAYOUT_CMDLINE_MAX);
		return -E2BIG;
	}
	plan->initrd_addr = 0;
	if (args->initrd_size) {
		if (args->initrd_size > UINT32_MAX) {
			boot_errf(err, errlen,
				  "initrd %s: %s is too large for a multiboot module (4 GiB)",
				  boot_initrd_name(args), boot_size(args->initrd_size).s);
			return -ENOMEM;
		}
		ret = boot_place_initrd(mem, args, plan->kernel_start, plan->kernel_end, UINT32_MAX,
					&plan->initrd_addr, err, errlen);
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

static void mb_write_segments(struct guest_mem *mem, const struct mb_image *im)
{
	struct mb_seg s;

	for (unsigned int i = 0; i < mb_nsegs(im); i++) {
		uint8_t *dst;

		if (!mb_seg(im, i, &s))
			continue;
		dst = gmem_ptr(mem, s.paddr, s.memsz);
		if (!dst) /* checked in the plan */
			continue;
		memcpy(dst, im->img + s.offset, s.filesz);
		memset(dst + s.filesz, 0, s.memsz - s.filesz);
	}
}

/* mem_lower: KiB of RAM from 0 (the first e820 entry); mem_upper: KiB from 1 MiB. */
static void mb_mem_fields(const struct guest_mem *mem, const struct mb_plan *plan,
			  struct multiboot_info *info)
{
	uint64_t low_end = boot_low_end(mem);

	if (plan->e820_n > 0 && plan->e820[0].addr == 0 && plan->e820[0].type == E820_RAM)
		info->mem_lower = (uint32_t)(plan->e820[0].size / KiB);
	if (low_end > LAYOUT_KERNEL_START)
		info->mem_upper = (uint32_t)((low_end - LAYOUT_KERNEL_START) / KiB);
}

static int mb_write_info(struct guest_mem *mem, const struct mb_image *im,
			 const struct boot_args *args, const struct mb_plan *plan)
{
	uint64_t span = LAYOUT_PVH_END - MULTIBOOT_INFO_GPA;
	uint8_t *area = gmem_ptr(mem, MULTIBOOT_INFO_GPA, span);
	char *str = gmem_ptr(mem, LAYOUT_CMDLINE, plan->cmdline_len + plan->modstr_len + 2);
	const char *cmdline = args->cmdline ? args->cmdline : "";
	struct multiboot_info info = {
	    .flags = MULTIBOOT_INFO_MEMORY | MULTIBOOT_INFO_CMDLINE | MULTIBOOT_INFO_MODS |
		     MULTIBOOT_INFO_MEM_MAP | MULTIBOOT_INFO_LOADER_NAME,
	    .cmdline = (uint32_t)LAYOUT_CMDLINE,
	    .mods_count = args->initrd_size ? 1 : 0,
	    .mods_addr = (uint32_t)MULTIBOOT_MODS_GPA,
	    .mmap_length = (uint32_t)(plan->e820_n * sizeof(struct multiboot_mmap_entry)),
	    .mmap_addr = (uint32_t)MULTIBOOT_MMAP_GPA,
	    .boot_loader_name = (uint32_t)MULTIBOOT_LOADER_NAME_GPA,
	};
	size_t off = 0;

	if (!area || !str)
		return -EFAULT;
	mb_mem_fields(mem, plan, &info);
	memset(area, 0, span);
	memcpy(area, &info, sizeof(info));
	/* "<kernel> <cmdline>", then the module's string. */
	memcpy(str, im->name, strlen(im->name));
	off = strlen(im->name);
	if (cmdline[0]) {
		str[off++] = ' ';
		memcpy(str + off, cmdline, strlen(cmdline));
		off += strlen(cmdline);
	}
	str[off++] = '\0';
	if (args->initrd_size) {
		struct multiboot_module mod = {
		    .mod_start = (uint32_t)plan->initrd_addr,
		    .mod_end = (uint32_t)(plan->initrd_addr + args->initrd_size),
		    .string = (uint32_t)(LAYOUT_CMDLINE + off),
		};

		memcpy(str + off, boot_initrd_name(args), plan->modstr_len + 1);
		memcpy(area + (MULTIBOOT_MODS_GPA - MULTIBOOT_INFO_GPA), &mod, sizeof(mod));
	}
	for (int i = 0; i < plan->e820_n; i++) {
		struct multiboot_mmap_entry me = {
		    .size = sizeof(me) - sizeof(me.size),
		    .addr = plan->e820[i].addr,
		    .len = plan->e820[i].size,
		    .type = plan->e820[i].type,
		};

		memcpy(area + (MULTIBOOT_MMAP_GPA - MULTIBOOT_INFO_GPA) + i * sizeof(me), &me,
		       sizeof(me));
	}
	memcpy(area + (MULTIBOOT_LOADER_NAME_GPA - MULTIBOOT_INFO_GPA), MULTIBOOT_LOADER_NAME,
	       sizeof(MULTIBOOT_LOADER_NAME));
	return 0;
}

int multiboot_load(struct guest_mem *mem, const uint8_t *img, size_t len,
		   const struct boot_args *args, struct boot_entry *entry, char *err, size_t errlen)
{
	const char *name = boot_kernel_name(args);
	struct mb_image im;
	struct mb_plan plan;
	int ret;

	ret = boot_check_ram(mem, err, errlen);
	if (!ret)
		ret = mb_parse(img, len, name, &im, err, errlen);
	if (!ret)
		ret = mb_plan_segments(mem, &im, &plan, err, errlen);
	if (!ret)
		ret = mb_plan_rest(mem, &im, args, &plan, err, errlen);
	if (ret)
		return ret;
	mb_write_segments(mem, &im);
	if (mb_write_info(mem, &im, args, &plan)) {
		/* Checked above; reaching this is a bug, still no crash. */
		boot_errf(err, errlen,
			  "kernel %s: the multiboot information does not fit in "
			  "guest RAM",
			  name);
		return -ENOMEM;
	}
	if (args->initrd && args->initrd_size &&
	    gmem_write(mem, plan.initrd_addr, args->initrd, args->initrd_size)) {
		boot_errf(err, errlen, "initrd %s: does not fit in guest RAM",
			  boot_initrd_name(args));
		return -ENOMEM;
	}
	*entry = (struct boot_entry){
	    .mode = BOOT_MULTIBOOT,
	    .entry = plan.entry,
	    .boot_info = MULTIBOOT_INFO_GPA,
	    .eax = MULTIBOOT_BOOTLOADER_MAGIC,
	    .kernel_end = plan.kernel_end,
	    .initrd_addr = plan.initrd_addr,
	    .initrd_size = args->initrd_size,
	};
	return 0;
}
