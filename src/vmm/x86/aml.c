/* AML byte-code builder; encodings from ACPI 6.3, chapter 20 (AML grammar). */
#include "vmm/x86/aml.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#define AML_ZERO_OP 0x00
#define AML_ONE_OP 0x01
#define AML_NAME_OP 0x08
#define AML_BYTE_PREFIX 0x0a
#define AML_WORD_PREFIX 0x0b
#define AML_DWORD_PREFIX 0x0c
#define AML_STRING_PREFIX 0x0d
#define AML_QWORD_PREFIX 0x0e
#define AML_SCOPE_OP 0x10
#define AML_BUFFER_OP 0x11
#define AML_PACKAGE_OP 0x12
#define AML_EXT_OP_PREFIX 0x5b
#define AML_DEVICE_OP 0x82 /* after AML_EXT_OP_PREFIX */
#define AML_DUAL_NAME_PREFIX 0x2e
#define AML_MULTI_NAME_PREFIX 0x2f
#define AML_ROOT_CHAR '\\'
#define AML_PARENT_PREFIX_CHAR '^'
#define AML_NULL_NAME 0x00

/* Small resource descriptor tags: type << 3 | length. */
#define AML_RES_IRQ_NOFLAGS 0x22 /* IRQ, 2 bytes: mask */
#define AML_RES_IO 0x47		 /* I/O port, 7 bytes */
#define AML_RES_END_TAG 0x79	 /* End Tag, 1 byte: checksum */
#define AML_RES_IO_DECODE16 0x01

/* Large resource descriptors: tag, then a 16-bit length of what follows. */
#define AML_RES_MEMORY32_FIXED 0x86
#define AML_RES_DWORD_ADDRESS 0x87
#define AML_RES_WORD_ADDRESS 0x88
#define AML_RES_MEMORY32_FIXED_LEN 9
#define AML_RES_DWORD_ADDRESS_LEN 23
#define AML_RES_WORD_ADDRESS_LEN 13
#define AML_RES_TYPE_MEMORY 0
#define AML_RES_TYPE_BUS 2
/* General flags: MaxFixed | MinFixed; PosDecode and ResourceProducer are 0. */
#define AML_RES_ADDR_FIXED 0x0c
#define AML_RES_MEM_READWRITE 0x01 /* NonCacheable, AddressRangeMemory, TypeStatic */

#define AML_NAMESEG_LEN 4
#define AML_MAX_SEGS 255

void aml_init(struct aml *a, uint8_t *buf, size_t cap)
{
	a->buf = buf;
	a->cap = buf ? cap : 0;
	a->len = 0;
	a->err = 0;
}

static void aml_fail(struct aml *a, int err)
{
	if (!a->err)
		a->err = err;
}

void aml_bytes(struct aml *a, const void *data, size_t n)
{
	if (a->err)
		return;
	if (n > a->cap - a->len) {
		aml_fail(a, -ENOSPC);
		return;
	}
	memcpy(a->buf + a->len, data, n);
	a->len += n;
}

static void aml_byte(struct aml *a, uint8_t b)
{
	aml_bytes(a, &b, 1);
}

static void aml_le(struct aml *a, uint64_t v, unsigned int n)
{
	uint8_t b[8];

	for (unsigned int i = 0; i < n; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	aml_bytes(a, b, n);
}

/* Inserts n bytes at pos, shifting what follows (used for PkgLength). */
static void aml_insert(struct aml *a, size_t pos, const uint8_t *data, size_t n)
{
	if (a->err)
		return;
	if (pos > a->len) {
		aml_fail(a, -EINVAL);
		return;
	}
	if (n > a->cap - a->len) {
		aml_fail(a, -ENOSPC);
		return;
	}
	memmove(a->buf + pos + n, a->buf + pos, a->len - pos);
	memcpy(a->buf + pos, data, n);
	a->len += n;
}

int aml_pkglen_encode(uint8_t out[4], size_t content_len)
{
	size_t total;
	int n;

	/*
	 * One byte holds 6 bits; n bytes hold 4 + 8 * (n - 1). Compared
	 * without adding to content_len, which may be huge.
	 */
	if (content_len <= 0x3f - 1) {
		out[0] = (uint8_t)(content_len + 1);
		return 1;
	}
	if (content_len <= 0xfff - 2)
		n = 2;
	else if (content_len <= 0xfffff - 3)
		n = 3;
	else if (content_len <= AML_PKGLEN_MAX - 4)
		n = 4;
	else
		return -E2BIG;
	total = content_len + (size_t)n;
	out[0] = (uint8_t)(((n - 1) << 6) | (total & 0x0f));
	for (int i = 1; i < n; i++)
		out[i] = (uint8_t)(total >> (4 + 8 * (i - 1)));
	return n;
}

static bool aml_seg_char_ok(char c, bool lead)
{
	if ((c >= 'A' && c <= 'Z') || c == '_')
		return true;
	return !lead && c >= '0' && c <= '9';
}

/* Parses one NameSeg of 1-4 chars from *p into seg, padding with '_'. */
static int aml_parse_seg(const char **p, char seg[AML_NAMESEG_LEN])
{
	size_t n = 0;

	while (**p && **p != '.') {
		if (n == AML_NAMESEG_LEN || !aml_seg_char_ok(**p, n == 0))
			return -EINVAL;
		seg[n++] = *(*p)++;
	}
	if (n == 0)
		return -EINVAL;
	memset(seg + n, '_', AML_NAMESEG_LEN - n);
	return 0;
}

void aml_namestring(struct aml *a, const char *path)
{
	char segs[AML_MAX_SEGS][AML_NAMESEG_LEN];
	size_t nsegs = 0;
	const char *p = path;

	if (a->err)
		return;
	if (*p == AML_ROOT_CHAR) {
		aml_byte(a, AML_ROOT_CHAR);
		p++;
	} else {
		while (*p == AML_PARENT_PREFIX_CHAR)
			aml_byte(a, (uint8_t)*p++);
	}
	while (*p) {
		if (nsegs == AML_MAX_SEGS || aml_parse_seg(&p, segs[nsegs]) < 0) {
			aml_fail(a, -EINVAL);
			return;
		}
		nsegs++;
		if (*p == '.' && !*++p) {
			aml_fail(a, -EINVAL); /* trailing dot */
			return;
		}
	}
	if (nsegs == 0) {
		/* Only "\" or "^..." alone is a valid empty path. */
		if (p == path)
			aml_fail(a, -EINVAL);
		aml_byte(a, AML_NULL_NAME);
		return;
	}
	if (nsegs == 2) {
		aml_byte(a, AML_DUAL_NAME_PREFIX);
	} else if (nsegs > 2) {
		aml_byte(a, AML_MULTI_NAME_PREFIX);
		aml_byte(a, (uint8_t)nsegs);
	}
	aml_bytes(a, segs, nsegs * AML_NAMESEG_LEN);
}

void aml_integer(struct aml *a, uint64_t v)
{
	if (v == 0) {
		aml_byte(a, AML_ZERO_OP);
	} else if (v == 1) {
		aml_byte(a, AML_ONE_OP);
	} else if (v <= UINT8_MAX) {
		aml_byte(a, AML_BYTE_PREFIX);
		aml_le(a, v, 1);
	} else if (v <= UINT16_MAX) {
		aml_byte(a, AML_WORD_PREFIX);
		aml_le(a, v, 2);
	} else if (v <= UINT32_MAX) {
		aml_byte(a, AML_DWORD_PREFIX);
		aml_le(a, v, 4);
	} else {
		aml_byte(a, AML_QWORD_PREFIX);
		aml_le(a, v, 8);
	}
}

void aml_string(struct aml *a, const char *s)
{
	for (const char *c = s; *c; c++) {
		if ((unsigned char)*c > 0x7f) {
			aml_fail(a, -EINVAL);
			return;
		}
	}
	aml_byte(a, AML_STRING_PREFIX);
	aml_bytes(a, s, strlen(s) + 1);
}

static int aml_hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

void aml_eisaid(struct aml *a, const char *id)
{
	uint32_t v = 0;

	if (strlen(id) != 7) {
		aml_fail(a, -EINVAL);
		return;
	}
	/* Three 5-bit letters ('A' = 1), then 16 bits of hex, big-endian. */
	for (int i = 0; i < 3; i++) {
		if (id[i] < 'A' || id[i] > 'Z') {
			aml_fail(a, -EINVAL);
			return;
		}
		v = (v << 5) | (uint32_t)(id[i] - 0x40);
	}
	for (int i = 3; i < 7; i++) {
		int d = aml_hex_digit(id[i]);

		if (d < 0) {
			aml_fail(a, -EINVAL);
			return;
		}
		v = (v << 4) | (uint32_t)d;
	}
	/* The 31-bit value is stored as big-endian bytes in a DWord. */
	aml_byte(a, AML_DWORD_PREFIX);
	aml_byte(a, (uint8_t)(v >> 24));
	aml_byte(a, (uint8_t)(v >> 16));
	aml_byte(a, (uint8_t)(v >> 8));
	aml_byte(a, (uint8_t)v);
}

void aml_name(struct aml *a, const char *path)
{
	aml_byte(a, AML_NAME_OP);
	aml_namestring(a, path);
}

void aml_name_integer(struct aml *a, const char *path, uint64_t v)
{
	aml_name(a, path);
	aml_integer(a, v);
}

void aml_name_string(struct aml *a, const char *path, const char *s)
{
	aml_name(a, path);
	aml_string(a, s);
}

void aml_name_eisaid(struct aml *a, const char *path, const char *id)
{
	aml_name(a, path);
	aml_eisaid(a, id);
}

static struct aml_mark aml_mark_here(const struct aml *a, enum aml_mark_kind kind)
{
	return (struct aml_mark){.pos = a->len, .kind = kind};
}

struct aml_mark aml_scope_begin(struct aml *a, const char *path)
{
	struct aml_mark m;

	aml_byte(a, AML_SCOPE_OP);
	m = aml_mark_here(a, AML_MARK_PKG);
	aml_namestring(a, path);
	return m;
}

struct aml_mark aml_device_begin(struct aml *a, const char *path)
{
	struct aml_mark m;

	aml_byte(a, AML_EXT_OP_PREFIX);
	aml_byte(a, AML_DEVICE_OP);
	m = aml_mark_here(a, AML_MARK_PKG);
	aml_namestring(a, path);
	return m;
}

struct aml_mark aml_package_begin(struct aml *a, uint8_t nelems)
{
	struct aml_mark m;

	aml_byte(a, AML_PACKAGE_OP);
	m = aml_mark_here(a, AML_MARK_PKG);
	aml_byte(a, nelems);
	return m;
}

struct aml_mark aml_buffer_begin(struct aml *a)
{
	aml_byte(a, AML_BUFFER_OP);
	return aml_mark_here(a, AML_MARK_BUFFER);
}

struct aml_mark aml_restemplate_begin(struct aml *a)
{
	aml_byte(a, AML_BUFFER_OP);
	return aml_mark_here(a, AML_MARK_RESTEMPLATE);
}

/* Inserts BufferSize (an integer term) at the mark, before the bytes. */
static void aml_insert_buffer_size(struct aml *a, size_t pos)
{
	uint8_t tmp[9];
	struct aml t;

	aml_init(&t, tmp, sizeof(tmp));
	aml_integer(&t, a->len - pos);
	aml_insert(a, pos, tmp, t.len);
}

void aml_end(struct aml *a, struct aml_mark m)
{
	uint8_t pkglen[4];
	int n;

	if (a->err)
		return;
	if (m.pos > a->len) {
		aml_fail(a, -EINVAL);
		return;
	}
	if (m.kind == AML_MARK_RESTEMPLATE) {
		/* Checksum 0: "treated as if the checksum operation succeeded". */
		aml_byte(a, AML_RES_END_TAG);
		aml_byte(a, 0);
	}
	if (m.kind != AML_MARK_PKG)
		aml_insert_buffer_size(a, m.pos);
	if (a->err)
		return;
	n = aml_pkglen_encode(pkglen, a->len - m.pos);
	if (n < 0) {
		aml_fail(a, n);
		return;
	}
	aml_insert(a, m.pos, pkglen, (size_t)n);
}

void aml_res_io(struct aml *a, uint16_t min, uint16_t max, uint8_t align, uint8_t len)
{
	aml_byte(a, AML_RES_IO);
	aml_byte(a, AML_RES_IO_DECODE16);
	aml_le(a, min, 2);
	aml_le(a, max, 2);
	aml_byte(a, align);
	aml_byte(a, len);
}

void aml_res_irq_noflags(struct aml *a, uint8_t irq)
{
	if (irq > 15) {
		aml_fail(a, -EINVAL);
		return;
	}
	aml_byte(a, AML_RES_IRQ_NOFLAGS);
	aml_le(a, 1U << irq, 2);
}

void aml_res_memory32_fixed(struct aml *a, uint32_t base, uint32_t len)
{
	aml_byte(a, AML_RES_MEMORY32_FIXED);
	aml_le(a, AML_RES_MEMORY32_FIXED_LEN, 2);
	aml_byte(a, AML_RES_MEM_READWRITE);
	aml_le(a, base, 4);
	aml_le(a, len, 4);
}

void aml_res_word_bus(struct aml *a, uint16_t min, uint16_t max)
{
	/* The length field is 16 bits too: the full range 0..0xffff does not fit. */
	if (max < min || (uint32_t)max - min + 1 > UINT16_MAX) {
		aml_fail(a, -EINVAL);
		return;
	}
	aml_byte(a, AML_RES_WORD_ADDRESS);
	aml_le(a, AML_RES_WORD_ADDRESS_LEN, 2);
	aml_byte(a, AML_RES_TYPE_BUS);
	aml_byte(a, AML_RES_ADDR_FIXED);
	aml_byte(a, 0);	 /* no type-specific flags */
	aml_le(a, 0, 2); /* granularity */
	aml_le(a, min, 2);
	aml_le(a, max, 2);
	aml_le(a, 0, 2); /* translation offset */
	aml_le(a, (uint32_t)max - min + 1, 2);
}

void aml_res_dword_memory(struct aml *a, uint32_t min, uint32_t max)
{
	if (max < min || (uint64_t)max - min + 1 > UINT32_MAX) {
		aml_fail(a, -EINVAL);
		return;
	}
	aml_byte(a, AML_RES_DWORD_ADDRESS);
	aml_le(a, AML_RES_DWORD_ADDRESS_LEN, 2);
	aml_byte(a, AML_RES_TYPE_MEMORY);
	aml_byte(a, AML_RES_ADDR_FIXED);
	aml_byte(a, AML_RES_MEM_READWRITE);
	aml_le(a, 0, 4); /* granularity */
	aml_le(a, min, 4);
	aml_le(a, max, 4);
	aml_le(a, 0, 4); /* translation offset */
	aml_le(a, (uint64_t)max - min + 1, 4);
}
