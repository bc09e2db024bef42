/*
 * mkbzimage: package ember's test guest (an ELF linked at 1 MiB) as a Linux
 * bzImage, boot protocol 2.15 (Documentation/arch/x86/boot.rst): a boot
 * sector and one setup sector holding the setup header, then the flat
 * protected-mode image, whose 64-bit entry is at offset 0x200.
 *
 * usage: mkbzimage GUEST.elf OUT
 */
#include <elf.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOAD_ADDR 0x100000u
#define SETUP_SECTS 1
#define SETUP_SIZE ((SETUP_SECTS + 1) * 512)
#define ENTRY64_OFFSET 0x200
#define BOOT_VERSION 0x020f
#define LOADED_HIGH 0x01
#define XLF_KERNEL_64 0x01
#define CMDLINE_SIZE 4095 /* guest's CMDLINE_MAX - 1 */
#define INITRD_ADDR_MAX 0x7fffffffu
#define HEADER_END 0x26c /* first byte after kernel_info_offset */

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)v);
	put16(p + 2, (uint16_t)(v >> 16));
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

static uint8_t *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	long n;

	if (!f)
		goto err;
	if (fseek(f, 0, SEEK_END) || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET))
		goto err_close;
	buf = malloc((size_t)n + 1);
	if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n)
		goto err_close;
	fclose(f);
	*len = (size_t)n;
	return buf;
err_close:
	fclose(f);
	free(buf);
err:
	fprintf(stderr, "mkbzimage: read %s: %s\n", path, errno ? strerror(errno) : "short read");
	return NULL;
}

struct image {
	uint8_t *data; /* flat, from LOAD_ADDR */
	size_t file_size;
	uint64_t mem_size;
};

/* Flattens the PT_LOAD segments; all must sit at or above LOAD_ADDR. */
static int flatten(const char *path, const uint8_t *elf, size_t len, struct image *img)
{
	const Elf64_Ehdr *eh = (const void *)elf;
	uint64_t file_end = 0, mem_end = 0;

	if (len < sizeof(*eh) || memcmp(eh->e_ident, ELFMAG, SELFMAG) ||
	    eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_ident[EI_DATA] != ELFDATA2LSB ||
	    eh->e_machine != EM_X86_64 || eh->e_phentsize != sizeof(Elf64_Phdr) ||
	    eh->e_phoff + (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr) > len) {
		fprintf(stderr, "mkbzimage: %s: not an x86-64 ELF64 file\n", path);
		return -1;
	}
	const Elf64_Phdr *ph = (const void *)(elf + eh->e_phoff);

	for (int pass = 0; pass < 2; pass++) {
		for (unsigned int i = 0; i < eh->e_phnum; i++) {
			const Elf64_Phdr *p = &ph[i];

			if (p->p_type != PT_LOAD)
				continue;
			if (p->p_paddr < LOAD_ADDR || p->p_filesz > p->p_memsz ||
			    p->p_offset + p->p_filesz > len ||
			    p->p_paddr + p->p_memsz > 0x40000000) {
				fprintf(stderr,
					"mkbzimage: %s: segment %u at 0x%llx "
					"is outside 1 MiB..1 GiB or the file\n",
					path, i, (unsigned long long)p->p_paddr);
				return -1;
			}
			if (pass == 1) {
				memcpy(img->data + (p->p_paddr - LOAD_ADDR), elf + p->p_offset,
				       p->p_filesz);
				continue;
			}
			if (p->p_paddr + p->p_filesz > file_end)
				file_end = p->p_paddr + p->p_filesz;
			if (p->p_paddr + p->p_memsz > mem_end)
				mem_end = p->p_paddr + p->p_memsz;
		}
		if (pass == 0) {
			if (file_end < LOAD_ADDR + ENTRY64_OFFSET + 16) {
				fprintf(stderr, "mkbzimage: %s: no code at 0x%x\n", path,
					LOAD_ADDR + ENTRY64_OFFSET);
				return -1;
			}
			img->file_size = (file_end - LOAD_ADDR + 15) & ~15ull;
			img->mem_size = mem_end - LOAD_ADDR;
			img->data = calloc(1, img->file_size);
			if (!img->data)
				return -1;
		}
	}
	return 0;
}

/* Offset of the 2.15 kernel_info ("LToP") in the image's first 0x200 bytes. */
static uint32_t find_kernel_info(const struct image *img)
{
	for (uint32_t off = 4; off + 16 <= ENTRY64_OFFSET; off += 4)
		if (!memcmp(img->data + off, "LToP", 4))
			return off;
	return 0;
}

static void setup_header(uint8_t *s, const struct image *img)
{
	uint64_t init_size = (img->mem_size + 0xfff) & ~0xfffull;

	s[0x1f1] = SETUP_SECTS;
	put32(s + 0x1f4, (uint32_t)(img->file_size / 16)); /* syssize */
	put16(s + 0x1fa, 0xffff);			   /* vid_mode */
	put16(s + 0x1fe, 0xaa55);			   /* boot_flag */
	s[0x200] = 0xeb; /* jump over the header to a real-mode halt loop */
	s[0x201] = HEADER_END - 0x202;
	memcpy(s + 0x202, "HdrS", 4);
	put16(s + 0x206, BOOT_VERSION);
	put16(s + 0x20c, 0x1000);    /* start_sys_seg (obsolete) */
	s[0x211] = LOADED_HIGH;	     /* loadflags */
	put16(s + 0x212, 0x8000);    /* setup_move_size */
	put32(s + 0x214, LOAD_ADDR); /* code32_start */
	put32(s + 0x22c, INITRD_ADDR_MAX);
	put32(s + 0x230, LOAD_ADDR);	 /* kernel_alignment */
	s[0x234] = 0;			 /* relocatable_kernel */
	s[0x235] = 20;			 /* min_alignment: 1 MiB */
	put16(s + 0x236, XLF_KERNEL_64); /* xloadflags */
	put32(s + 0x238, CMDLINE_SIZE);
	put64(s + 0x258, LOAD_ADDR); /* pref_address */
	put32(s + 0x260, (uint32_t)init_size);
	put32(s + 0x268, find_kernel_info(img));
	memcpy(s + HEADER_END, "\xfa\xf4\xeb\xfd", 4); /* cli; 1: hlt; jmp 1b */
}

int main(int argc, char **argv)
{
	struct image img = {0};
	uint8_t setup[SETUP_SIZE] = {0};
	size_t len;
	uint8_t *elf;
	FILE *out;

	if (argc != 3) {
		fprintf(stderr, "usage: mkbzimage GUEST.elf OUT\n");
		return 2;
	}
	elf = read_file(argv[1], &len);
	if (!elf || flatten(argv[1], elf, len, &img))
		return 1;
	setup_header(setup, &img);
	out = fopen(argv[2], "wb");
	if (!out || fwrite(setup, 1, sizeof(setup), out) != sizeof(setup) ||
	    fwrite(img.data, 1, img.file_size, out) != img.file_size || fclose(out)) {
		fprintf(stderr, "mkbzimage: write %s: %s\n", argv[2], strerror(errno));
		remove(argv[2]);
		return 1;
	}
	free(img.data);
	free(elf);
	return 0;
}
