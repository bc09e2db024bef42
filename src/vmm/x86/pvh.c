#include "vmm/x86/pvh.h"

#include <elf.h>
#include <errno.h>
#include <string.h>

#include "vmm/x86/e820.h"
#include "vmm/x86/layout.h"

_Static_assert(sizeof(struct hvm_start_info) == 56, "hvm_start_info v1 size");
_Static_assert(sizeof(struct hvm_modlist_entry) == 32, "hvm_modlist_entry size");
_Static_assert(sizeof(struct hvm_memmap_table_entry) == 24, "hvm_memmap_table_entry size");
_Static_assert(PVH_MEMMAP_GPA + E820_MAX_BUILT * sizeof(struct hvm_memmap_table_entry) <=
		   LAYOUT_PVH_END,
	       "start info, module list and memory map fit below the zero page");

/* The class-independent parts of an ELF header and program header. */
struct pvh_elf {
	bool is64;
	uint64_t phoff;
	uint16_t phentsize;
	uint16_t phnum;
};

struct pvh_phdr {
	uint32_t type;
	uint64_t offset;
	uint64_t paddr;
	uint64_t filesz;
	uint64_t memsz;
	uint64_t align;
};

/* What the checks work out, for the write phase. */
struct pvh_plan {
	uint64_t entry;
	uint64_t kernel_start; /* span of the segments in low RAM */
	uint64_t kernel_end;
	uint64_t initrd_addr;
	struct e820_entry e820[E820_MAX_BUILT];
	int e820_n;
};

bool pvh_probe(const uint8_t *img, size_t len)
{
	return len >= SELFMAG && memcmp(img, ELFMAG, SELFMAG) == 0;
}

static int pvh_parse_ehdr64(const uint8_t *img, size_t len, const char *name, struct pvh_elf *e,
			    char *err, size_t errlen)
{
	Elf64_Ehdr eh;

	if (len < sizeof(eh)) {
		boot_errf(err, errlen, "kernel %s: truncated ELF header (%zu bytes)", name, len);
		return -ENOEXEC;
	}
	memcpy(&eh, img, sizeof(eh));
	if (eh.e_machine != EM_X86_64) {
		boot_errf(err, errlen, "kernel %s: ELF64 machine %u is not x86-64 (%u)", name,
			  eh.e_machine, EM_X86_64);
		return -ENOEXEC;
	}
	if (eh.e_type != ET_EXEC) {
		boot_errf(err, errlen, "kernel %s: ELF type %u is not an executable (ET_EXEC)",
			  name, eh.e_type);
		return -ENOEXEC;
	}
	e->phoff = eh.e_phoff;
	e->phentsize = eh.e_phentsize;
	e->phnum = eh.e_phnum;
	return 0;
}

static int pvh_parse_ehdr32(const uint8_t *img, size_t len, const char *name, struct pvh_elf *e,
			    char *err, size_t errlen)
{
	Elf32_Ehdr eh;

	if (len < sizeof(eh)) {
		boot_errf(err, errlen, "kernel %s: truncated ELF header (%zu bytes)", name, len);
		return -ENOEXEC;
	}
	memcpy(&eh, img, sizeof(eh));
	if (eh.e_machine != EM_386) {
		boot_errf(err, errlen, "kernel %s: ELF32 machine %u is not i386 (%u)", name,
			  eh.e_machine, EM_386);
		return -ENOEXEC;
	}
	if (eh.e_type != ET_EXEC) {
		boot_errf(err, errlen, "kernel %s: ELF type %u is not an executable (ET_EXEC)",
			  name, eh.e_type);
		return -ENOEXEC;
	}
	e->phoff = eh.e_phoff;
	e->phentsize = eh.e_phentsize;
	e->phnum = eh.e_phnum;
	return 0;
}

static int pvh_parse_ehdr(const uint8_t *img, size_t len, const char *name, struct pvh_elf *e,
			  char *err, size_t errlen)
{
	size_t phsize;
	int ret;

	if (!pvh_probe(img, len) || len < EI_NIDENT) {
		boot_errf(err, errlen, "kernel %s: not an ELF file", name);
		return -ENOEXEC;
	}
	if (img[EI_CLASS] != ELFCLASS64 && img[EI_CLASS] != ELFCLASS32) {
		boot_errf(err, errlen, "kernel %s: unknown ELF class %u", name, img[EI_CLASS]);
		return -ENOEXEC;
	}
	if (img[EI_DATA] != ELFDATA2LSB) {
		boot_errf(err, errlen, "kernel %s: ELF is not little-endian (EI_DATA %u)", name,
			  img[EI_DATA]);
		return -ENOEXEC;
	}
	e->is64 = img[EI_CLASS] == ELFCLASS64;
	ret = e->is64 ? pvh_parse_ehdr64(img, len, name, e, err, errlen)
		      : pvh_parse_ehdr32(img, len, name, e, err, errlen);
	if (ret)
		return ret;
	phsize = e->is64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr);
	if (e->phnum == 0 || e->phnum == PN_XNUM) {
		boot_errf(err, errlen, "kernel %s: e_phnum %u: no usable program headers", name,
			  e->phnum);
		return -ENOEXEC;
	}
	if (e->phentsize < phsize) {
		boot_errf(err, errlen,
			  "kernel %s: e_phentsize %u is smaller than a program header (%zu)", name,
			  e->phentsize, phsize);
		return -ENOEXEC;
	}
	/* phnum * phentsize < 2^32: no overflow; phoff is checked first. */
	if (e->phoff > len || (uint64_t)e->phnum * e->phentsize > len - e->phoff) {
		boot_errf(err, errlen,
			  "kernel %s: program headers at e_phoff 0x%llx (%u x %u bytes) lie beyond "
			  "the %zu-byte file",
			  name, (unsigned long long)e->phoff, e->phnum, e->phentsize, len);
		return -ENOEXEC;
	}
	return 0;
}

/* Program header i; the table was bounds-checked by pvh_parse_ehdr(). */
static void pvh_get_phdr(const struct pvh_elf *e, const uint8_t *img, unsigned int i,
			 struct pvh_phdr *ph)
{
	const uint8_t *p = img + e->phoff + (uint64_t)i * e->phentsize;

	if (e->is64) {
		Elf64_Phdr h;

		memcpy(&h, p, sizeof(h));
		*ph = (struct pvh_phdr){h.p_type,   h.p_offset, h.p_paddr,
					h.p_filesz, h.p_memsz,	h.p_align};
	} else {
		Elf32_Phdr h;

		memcpy(&h, p, sizeof(h));
		*ph = (struct pvh_phdr){h.p_type,   h.p_offset, h.p_paddr,
					h.p_filesz, h.p_memsz,	h.p_align};
	}
}

static bool pvh_in_file(const struct pvh_phdr *ph, size_t len)
{
	return ph->offset <= len && ph->filesz <= len - ph->offset;
}

static uint64_t pvh_note_align(uint64_t n, uint64_t align)
{
	return (n + align - 1) & ~(align - 1);
}

/*
 * Walks one PT_NOTE segment, names and descriptors padded to `align`, for
 * Xen's PHYS32_ENTRY note. Returns 1 with *entry set, 0 when absent,
 * -ENOEXEC for a malformed entry note. Malformed notes of other kinds just
 * end the walk.
 */
static int pvh_walk_notes(const uint8_t *img, const struct pvh_phdr *ph, uint64_t align,
			  const char *name, uint64_t *entry, char *err, size_t errlen)
{
	const uint8_t *seg = img + ph->offset;
	uint64_t off = 0;

	/* Every quantity below is < 2^34, so the sums cannot overflow. */
	while (ph->filesz - off >= sizeof(Elf64_Nhdr)) {
		Elf64_Nhdr nh;
		uint64_t name_off, desc_off, next;

		memcpy(&nh, seg + off, sizeof(nh));
		/* As binutils' ELF_NOTE_DESC_OFFSET / ELF_NOTE_NEXT_OFFSET. */
		name_off = off + sizeof(nh);
		desc_off = off + pvh_note_align(sizeof(nh) + nh.n_namesz, align);
		next = off + pvh_note_align(desc_off - off + nh.n_descsz, align);
		if (desc_off + nh.n_descsz > ph->filesz)
			return 0;
		if (nh.n_namesz == 4 && memcmp(seg + name_off, "Xen", 4) == 0 &&
		    nh.n_type == XEN_ELFNOTE_PHYS32_ENTRY) {
			uint32_t v32;

			if (nh.n_descsz == 4) {
				memcpy(&v32, seg + desc_off, 4);
				*entry = v32;
			} else if (nh.n_descsz == 8) {
				memcpy(entry, seg + desc_off, 8);
			} else {
				boot_errf(err, errlen,
					  "kernel %s: Xen PHYS32_ENTRY note has a %u-byte value "
					  "(expected 4 or 8)",
					  name, nh.n_descsz);
				return -ENOEXEC;
			}
			return 1;
		}
		if (next > ph->filesz)
			return 0;
		off = next;
	}
	return 0;
}

/*
 * Notes are padded to 4 bytes in practice (Linux, Xen); a segment aligned to
 * 8 may use 8-byte padding (as readelf assumes), so try that first there.
 */
static int pvh_find_entry_note(const uint8_t *img, const struct pvh_phdr *ph, const char *name,
			       uint64_t *entry, char *err, size_t errlen)
{
	int ret8 = 0, ret4;

	if (ph->align == 8) {
		ret8 = pvh_walk_notes(img, ph, 8, name, entry, err, errlen);
		if (ret8 == 1)
			return 1;
	}
	ret4 = pvh_walk_notes(img, ph, 4, name, entry, err, errlen);
	return ret4 ? ret4 : ret8;
}

static int pvh_check_segment(const struct guest_mem *mem, const struct pvh_phdr *ph, unsigned int i,
			     size_t len, const char *name, char *err, size_t errlen)
{
	if (ph->filesz > ph->memsz) {
		boot_errf(err, errlen,
			  "kernel %s: segment %u: p_filesz 0x%llx is larger than p_memsz 0x%llx",
			  name, i, (unsigned long long)ph->filesz, (unsigned long long)ph->memsz);
		return -ENOEXEC;
	}
	if (!pvh_in_file(ph, len)) {
		boot_errf(err, errlen,
			  "kernel %s: segment %u: p_offset 0x%llx + p_filesz 0x%llx lies beyond "
			  "the %zu-byte file",
			  name, i, (unsigned long long)ph->offset, (unsigned long long)ph->filesz,
			  len);
		return -ENOEXEC;
	}
	if (ph->paddr < LAYOUT_KERNEL_START) {
		boot_errf(err, errlen,
			  "kernel %s: segment %u at p_paddr 0x%llx is below 1 MiB, where ember "
			  "keeps the boot structures and ACPI tables",
			  name, i, (unsigned long long)ph->paddr);
		return -ENOEXEC;
	}
	if (!gmem_ptr(mem, ph->paddr, ph->memsz)) {
		boot_errf(err, errlen,
			  "kernel %s: segment %u at p_paddr 0x%llx (%s) is not inside guest RAM "
			  "(%s)",
			  name, i, (unsigned long long)ph->paddr, boot_size(ph->memsz).s,
			  boot_size(mem->ram_size).s);
		return -ENOMEM;
	}
	return 0;
}

/* Checks every program header; finds the entry note and the kernel's span. */
static int pvh_plan_segments(const struct guest_mem *mem, const struct pvh_elf *e,
			     const uint8_t *img, size_t len, const char *name,
			     struct pvh_plan *plan, char *err, size_t errlen)
{
	uint64_t low_end = boot_low_end(mem);
	bool have_entry = false;
	int ret;

	plan->kernel_start = UINT64_MAX;
	plan->kernel_end = 0;
	for (unsigned int i = 0; i < e->phnum; i++) {
		struct pvh_phdr ph;

		pvh_get_phdr(e, img, i, &ph);
		if (ph.type == PT_NOTE && !have_entry) {
			if (!pvh_in_file(&ph, len)) {
				boot_errf(
				    err, errlen,
				    "kernel %s: note segment %u lies beyond the %zu-byte file",
				    name, i, len);
				return -ENOEXEC;
			}
			ret = pvh_find_entry_note(img, &ph, name, &plan->entry, err, errlen);
			if (ret < 0)
				return ret;
			have_entry = ret == 1;
		}
		if (ph.type != PT_LOAD || ph.memsz == 0)
			continue;
		ret = pvh_check_segment(mem, &ph, i, len, name, err, errlen);
		if (ret)
			return ret;
		if (ph.paddr < low_end) {
			if (ph.paddr < plan->kernel_start)
				plan->kernel_start = ph.paddr;
			if (ph.paddr + ph.memsz > plan->kernel_end)
				plan->kernel_end = ph.paddr + ph.memsz;
		}
	}
	if (!have_entry) {
		boot_errf(err, errlen,
			  "kernel %s: ELF kernel has no Xen PVH entry note "
			  "(XEN_ELFNOTE_PHYS32_ENTRY); ember boots ELF kernels only through PVH",
			  name);
		return -ENOEXEC;
	}
	if (plan->kernel_end == 0)
		plan->kernel_start = plan->kernel_end = LAYOUT_KERNEL_START;
	return 0;
}

/* The entry must be 32-bit and point into code loaded from the file. */
static int pvh_check_entry(const struct pvh_elf *e, const uint8_t *img, const char *name,
			   uint64_t entry, char *err, size_t errlen)
{
	if (entry > UINT32_MAX) {
		boot_errf(err, errlen, "kernel %s: PVH entry 0x%llx is above 4 GiB", name,
			  (unsigned long long)entry);
		return -ENOEXEC;
	}
	for (unsigned int i = 0; i < e->phnum; i++) {
		struct pvh_phdr ph;

		pvh_get_phdr(e, img, i, &ph);
		if (ph.type == PT_LOAD && entry >= ph.paddr && entry - ph.paddr < ph.filesz)
			return 0;
	}
	boot_errf(err, errlen, "kernel %s: PVH entry 0x%llx is not inside any loaded segment", name,
		  (unsigned long long)entry);
	return -ENOEXEC;
}

static int pvh_plan_rest(const struct guest_mem *mem, const struct boot_args *args,
			 struct pvh_plan *plan, char *err, size_t errlen)
{
	int ret;

	ret = boot_check_cmdline(args->cmdline, UINT64_MAX, err, errlen);
	if (ret)
		return ret;
	plan->initrd_addr = 0;
	if (args->initrd_size) {
		/* Low RAM ends below 4 GiB, so the 32-bit kernel can reach it. */
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

static int pvh_write_segments(struct guest_mem *mem, const struct pvh_elf *e, const uint8_t *img)
{
	for (unsigned int i = 0; i < e->phnum; i++) {
		struct pvh_phdr ph;
		uint8_t *dst;

		pvh_get_phdr(e, img, i, &ph);
		if (ph.type != PT_LOAD || ph.memsz == 0)
			continue;
		dst = gmem_ptr(mem, ph.paddr, ph.memsz);
		if (!dst)
			return -EFAULT;
		memcpy(dst, img + ph.offset, ph.filesz);
		memset(dst + ph.filesz, 0, ph.memsz - ph.filesz);
	}
	return 0;
}

static int pvh_write_start_info(struct guest_mem *mem, const struct boot_args *args,
				const struct pvh_plan *plan)
{
	uint64_t span = LAYOUT_PVH_END - LAYOUT_PVH_START_INFO;
	uint8_t *area = gmem_ptr(mem, LAYOUT_PVH_START_INFO, span);
	struct hvm_start_info si = {
	    .magic = XEN_HVM_START_MAGIC,
	    .version = 1,
	    .cmdline_paddr = LAYOUT_CMDLINE,
	    .rsdp_paddr = args->rsdp_gpa,
	    .memmap_paddr = PVH_MEMMAP_GPA,
	    .memmap_entries = (uint32_t)plan->e820_n,
	};
	struct hvm_modlist_entry mod = {
	    .paddr = plan->initrd_addr,
	    .size = args->initrd_size,
	};

	if (!area)
		return -EFAULT;
	memset(area, 0, span);
	if (args->initrd_size) {
		si.nr_modules = 1;
		si.modlist_paddr = PVH_MODLIST_GPA;
		memcpy(area + (PVH_MODLIST_GPA - LAYOUT_PVH_START_INFO), &mod, sizeof(mod));
	}
	memcpy(area, &si, sizeof(si));
	for (int i = 0; i < plan->e820_n; i++) {
		struct hvm_memmap_table_entry me = {
		    .addr = plan->e820[i].addr,
		    .size = plan->e820[i].size,
		    .type = plan->e820[i].type,
		};

		memcpy(area + (PVH_MEMMAP_GPA - LAYOUT_PVH_START_INFO) + i * sizeof(me), &me,
		       sizeof(me));
	}
	return 0;
}

static int pvh_write(struct guest_mem *mem, const struct pvh_elf *e, const uint8_t *img,
		     const struct boot_args *args, const struct pvh_plan *plan, char *err,
		     size_t errlen)
{
	int ret;

	if (pvh_write_segments(mem, e, img) || pvh_write_start_info(mem, args, plan)) {
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

int pvh_load(struct guest_mem *mem, const uint8_t *img, size_t len, const struct boot_args *args,
	     struct boot_entry *entry, char *err, size_t errlen)
{
	const char *name = boot_kernel_name(args);
	struct pvh_plan plan;
	struct pvh_elf e;
	int ret;

	ret = boot_check_ram(mem, err, errlen);
	if (!ret)
		ret = pvh_parse_ehdr(img, len, name, &e, err, errlen);
	if (!ret)
		ret = pvh_plan_segments(mem, &e, img, len, name, &plan, err, errlen);
	if (!ret)
		ret = pvh_check_entry(&e, img, name, plan.entry, err, errlen);
	if (!ret)
		ret = pvh_plan_rest(mem, args, &plan, err, errlen);
	if (!ret)
		ret = pvh_write(mem, &e, img, args, &plan, err, errlen);
	if (ret)
		return ret;
	*entry = (struct boot_entry){
	    .mode = BOOT_PVH,
	    .entry = plan.entry,
	    .boot_info = PVH_START_INFO_GPA,
	    .kernel_end = plan.kernel_end,
	    .initrd_addr = plan.initrd_addr,
	    .initrd_size = args->initrd_size,
	};
	return 0;
}
