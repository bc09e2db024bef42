/* Tests for the AML builder (src/vmm/x86/aml.c): byte-exact encodings. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/x86/aml.h"

#define EXPECT_BYTES(a, ...)                                                                       \
	do {                                                                                       \
		static const uint8_t want_[] = {__VA_ARGS__};                                      \
		cr_assert_eq((a)->err, 0, "err %d", (a)->err);                                     \
		cr_assert_eq((a)->len, sizeof(want_), "len %zu, want %zu", (a)->len,               \
			     sizeof(want_));                                                       \
		cr_assert_arr_eq((a)->buf, want_, sizeof(want_));                                  \
	} while (0)

/* Decodes a PkgLength per ACPI 6.3 20.2.4; returns its value, *n = bytes. */
static size_t pkglen_decode(const uint8_t *p, int *n)
{
	int follow = p[0] >> 6;
	size_t v;

	*n = follow + 1;
	if (!follow)
		return p[0] & 0x3f;
	v = p[0] & 0x0f;
	for (int i = 1; i <= follow; i++)
		v |= (size_t)p[i] << (4 + 8 * (i - 1));
	return v;
}

static void check_pkglen(size_t content, int want_bytes)
{
	uint8_t out[4];
	int n, dn;

	n = aml_pkglen_encode(out, content);
	cr_assert_eq(n, want_bytes, "content %zu: %d bytes, want %d", content, n, want_bytes);
	/* Bits 5-4 of a multi-byte lead byte must be zero. */
	if (n > 1)
		cr_assert_eq(out[0] & 0x30, 0, "content %zu: lead 0x%02x", content, out[0]);
	cr_assert_eq(pkglen_decode(out, &dn), content + (size_t)n, "content %zu", content);
	cr_assert_eq(dn, n);
}

Test(aml, pkglen_boundaries)
{
	check_pkglen(0, 1);
	check_pkglen(62, 1);   /* total 63: the one-byte maximum */
	check_pkglen(63, 2);   /* total 64 would not fit in 6 bits */
	check_pkglen(4093, 2); /* total 4095: the two-byte maximum */
	check_pkglen(4094, 3);
	check_pkglen(0xfffff - 3, 3); /* total 2^20 - 1 */
	check_pkglen(0xfffff - 2, 4);
	check_pkglen(AML_PKGLEN_MAX - 4, 4);
}

Test(aml, pkglen_too_big)
{
	uint8_t out[4];

	cr_assert_eq(aml_pkglen_encode(out, AML_PKGLEN_MAX - 3), -E2BIG);
	cr_assert_eq(aml_pkglen_encode(out, SIZE_MAX), -E2BIG);
}

/* A Scope whose content (name + raw bytes) is content bytes long. */
static void check_scope_size(size_t content, int want_bytes)
{
	size_t cap = content + 16;
	uint8_t *buf = malloc(cap);
	struct aml a;
	struct aml_mark m;
	size_t v;
	int n;

	cr_assert_not_null(buf);
	aml_init(&a, buf, cap);
	m = aml_scope_begin(&a, "\\"); /* 2 bytes: '\' NullName */
	for (size_t i = 0; i < content - 2; i++)
		aml_bytes(&a, "\x00", 1);
	aml_end(&a, m);
	cr_assert_eq(a.err, 0);
	cr_assert_eq(buf[0], 0x10);
	v = pkglen_decode(buf + 1, &n);
	cr_assert_eq(n, want_bytes, "content %zu: %d bytes", content, n);
	cr_assert_eq(1 + v, a.len, "content %zu: PkgLength must end at the scope's end", content);
	cr_assert_eq(buf[1 + n], '\\');
	free(buf);
}

Test(aml, scope_pkglen_boundaries)
{
	check_scope_size(62, 1);
	check_scope_size(63, 2);
	check_scope_size(4093, 2);
	check_scope_size(4094, 3);
	check_scope_size(0xfffff - 3, 3);
	check_scope_size(0xfffff - 2, 4);
}

Test(aml, integers)
{
	static const struct {
		uint64_t v;
		uint8_t len;
		uint8_t bytes[9];
	} cases[] = {
	    {0, 1, {0x00}},
	    {1, 1, {0x01}},
	    {2, 2, {0x0a, 0x02}},
	    {0xff, 2, {0x0a, 0xff}},
	    {0x100, 3, {0x0b, 0x00, 0x01}},
	    {0xffff, 3, {0x0b, 0xff, 0xff}},
	    {0x10000, 5, {0x0c, 0x00, 0x00, 0x01, 0x00}},
	    {0xffffffff, 5, {0x0c, 0xff, 0xff, 0xff, 0xff}},
	    {0x100000000ULL, 9, {0x0e, 0, 0, 0, 0, 1, 0, 0, 0}},
	    {UINT64_MAX, 9, {0x0e, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t buf[16];
		struct aml a;

		aml_init(&a, buf, sizeof(buf));
		aml_integer(&a, cases[i].v);
		cr_assert_eq(a.len, cases[i].len, "0x%llx", (unsigned long long)cases[i].v);
		cr_assert_arr_eq(buf, cases[i].bytes, cases[i].len, "0x%llx",
				 (unsigned long long)cases[i].v);
	}
}

Test(aml, namestrings)
{
	uint8_t buf[64];
	struct aml a;

	aml_init(&a, buf, sizeof(buf));
	aml_namestring(&a, "_S5");
	EXPECT_BYTES(&a, '_', 'S', '5', '_');

	aml_init(&a, buf, sizeof(buf));
	aml_namestring(&a, "\\_SB.COM1");
	EXPECT_BYTES(&a, '\\', 0x2e, '_', 'S', 'B', '_', 'C', 'O', 'M', '1');

	aml_init(&a, buf, sizeof(buf));
	aml_namestring(&a, "A.B9.C_");
	EXPECT_BYTES(&a, 0x2f, 3, 'A', '_', '_', '_', 'B', '9', '_', '_', 'C', '_', '_', '_');

	aml_init(&a, buf, sizeof(buf));
	aml_namestring(&a, "^^FOO");
	EXPECT_BYTES(&a, '^', '^', 'F', 'O', 'O', '_');

	aml_init(&a, buf, sizeof(buf));
	aml_namestring(&a, "\\");
	EXPECT_BYTES(&a, '\\', 0x00);
}

Test(aml, bad_namestrings)
{
	static const char *const bad[] = {
	    "", "ABCDE", "1ABC", "A..B", "A.", ".A", "com1", "\\^A", "A-B", "\\\\A",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint8_t buf[64];
		struct aml a;

		aml_init(&a, buf, sizeof(buf));
		aml_namestring(&a, bad[i]);
		cr_assert_eq(a.err, -EINVAL, "\"%s\" accepted", bad[i]);
	}
}

Test(aml, string_and_eisaid)
{
	uint8_t buf[64];
	struct aml a;

	aml_init(&a, buf, sizeof(buf));
	aml_string(&a, "ACPI0007");
	EXPECT_BYTES(&a, 0x0d, 'A', 'C', 'P', 'I', '0', '0', '0', '7', 0x00);

	/* EISAID("PNP0501") == 0x0105D041, the value iasl emits. */
	aml_init(&a, buf, sizeof(buf));
	aml_eisaid(&a, "PNP0501");
	EXPECT_BYTES(&a, 0x0c, 0x41, 0xd0, 0x05, 0x01);

	aml_init(&a, buf, sizeof(buf));
	aml_eisaid(&a, "PNP0B00");
	EXPECT_BYTES(&a, 0x0c, 0x41, 0xd0, 0x0b, 0x00);
}

Test(aml, bad_eisaid)
{
	static const char *const bad[] = {"pnp0501", "PNP050", "PNP05011", "PNP05G1", "P1P0501"};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint8_t buf[16];
		struct aml a;

		aml_init(&a, buf, sizeof(buf));
		aml_eisaid(&a, bad[i]);
		cr_assert_eq(a.err, -EINVAL, "\"%s\" accepted", bad[i]);
	}
}

Test(aml, s5_package)
{
	uint8_t buf[64];
	struct aml a;
	struct aml_mark m;

	aml_init(&a, buf, sizeof(buf));
	aml_name(&a, "_S5");
	m = aml_package_begin(&a, 4);
	aml_integer(&a, 5);
	aml_integer(&a, 0);
	aml_integer(&a, 0);
	aml_integer(&a, 0);
	aml_end(&a, m);
	EXPECT_BYTES(&a, 0x08, '_', 'S', '5', '_', 0x12, 0x07, 0x04, 0x0a, 0x05, 0x00, 0x00, 0x00);
}

/* Name(_CRS, ResourceTemplate(){IO(Decode16,0x3F8,0x3F8,0,8) IRQNoFlags(){4}}) */
Test(aml, resource_template)
{
	uint8_t buf[64];
	struct aml a;
	struct aml_mark m;

	aml_init(&a, buf, sizeof(buf));
	m = aml_restemplate_begin(&a);
	aml_res_io(&a, 0x3f8, 0x3f8, 0, 8);
	aml_res_irq_noflags(&a, 4);
	aml_end(&a, m);
	/* Same bytes as iasl compiles from the ASL above. */
	EXPECT_BYTES(&a, 0x11, 0x10, 0x0a, 0x0d, 0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x00, 0x08,
		     0x22, 0x10, 0x00, 0x79, 0x00);
}

Test(aml, buffer_size_grows_with_content)
{
	uint8_t buf[512];
	uint8_t data[300];
	struct aml a;
	struct aml_mark m;

	memset(data, 0xab, sizeof(data));
	aml_init(&a, buf, sizeof(buf));
	m = aml_buffer_begin(&a);
	aml_bytes(&a, data, sizeof(data));
	aml_end(&a, m);
	cr_assert_eq(a.err, 0);
	/* BufferOp, PkgLength (2 bytes: 2 + 3 + 300), WordConst 300, data. */
	cr_assert_eq(a.len, 1 + 2 + 3 + 300);
	cr_assert_eq(buf[0], 0x11);
	cr_assert_eq(buf[1], 0x40 | (305 & 0xf));
	cr_assert_eq(buf[2], 305 >> 4);
	cr_assert_eq(buf[3], 0x0b);
	cr_assert_eq(buf[4] | buf[5] << 8, 300);
	cr_assert_eq(buf[6], 0xab);
}

Test(aml, nested_scope_device)
{
	uint8_t buf[64];
	struct aml a;
	struct aml_mark sb, dev;

	aml_init(&a, buf, sizeof(buf));
	sb = aml_scope_begin(&a, "\\_SB");
	dev = aml_device_begin(&a, "COM1");
	aml_name_integer(&a, "_UID", 1);
	aml_end(&a, dev);
	aml_end(&a, sb);
	EXPECT_BYTES(&a, 0x10, 0x13, '\\', '_', 'S', 'B', '_', 0x5b, 0x82, 0x0b, 'C', 'O', 'M', '1',
		     0x08, '_', 'U', 'I', 'D', 0x01);
}

Test(aml, overflow_is_sticky_and_bounded)
{
	uint8_t buf[32];
	struct aml a;
	struct aml_mark m;

	memset(buf, 0xcc, sizeof(buf));
	aml_init(&a, buf, 8);
	m = aml_device_begin(&a, "\\_SB.COM1"); /* 12 bytes: does not fit */
	aml_name_string(&a, "_HID", "ACPI0007");
	aml_end(&a, m);
	cr_assert_eq(a.err, -ENOSPC);
	cr_assert_leq(a.len, 8);
	for (size_t i = 8; i < sizeof(buf); i++)
		cr_assert_eq(buf[i], 0xcc, "byte %zu written past cap", i);

	/* Later calls keep the first error and write nothing. */
	size_t len = a.len;
	aml_integer(&a, 0);
	aml_namestring(&a, "bad name");
	cr_assert_eq(a.err, -ENOSPC);
	cr_assert_eq(a.len, len);
}

Test(aml, overflow_when_inserting_pkglen)
{
	uint8_t buf[16];
	struct aml a;
	struct aml_mark m;

	memset(buf, 0xcc, sizeof(buf));
	/* Exactly room for the content, none for the PkgLength byte. */
	aml_init(&a, buf, 6);
	m = aml_scope_begin(&a, "ABCD");
	cr_assert_eq(a.len, 5);
	aml_integer(&a, 0);
	cr_assert_eq(a.err, 0);
	aml_end(&a, m);
	cr_assert_eq(a.err, -ENOSPC);
	for (size_t i = 6; i < sizeof(buf); i++)
		cr_assert_eq(buf[i], 0xcc);
}

Test(aml, misnested_mark_fails)
{
	uint8_t buf[32];
	struct aml a;
	struct aml_mark m = {.pos = 20, .kind = AML_MARK_PKG};

	aml_init(&a, buf, sizeof(buf));
	aml_integer(&a, 0);
	aml_end(&a, m);
	cr_assert_eq(a.err, -EINVAL);
}

Test(aml, irq_out_of_range)
{
	uint8_t buf[8];
	struct aml a;

	aml_init(&a, buf, sizeof(buf));
	aml_res_irq_noflags(&a, 16);
	cr_assert_eq(a.err, -EINVAL);
}

Test(aml, null_buffer_is_safe)
{
	struct aml a;

	aml_init(&a, NULL, 100);
	aml_integer(&a, 5);
	cr_assert_eq(a.err, -ENOSPC);
	cr_assert_eq(a.len, 0);
}

/*
 * WordBusNumber (ResourceProducer, MinFixed, MaxFixed, PosDecode, 0, 0, 0, 0, 1)
 * DWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed, NonCacheable,
 *              ReadWrite, 0, 0xC0000000, 0xDFFFFFFF, 0, 0x20000000)
 * Memory32Fixed (ReadWrite, 0xE0000000, 0x00100000)
 * Bytes as iasl 20221020 compiles them.
 */
Test(aml, address_space_descriptors)
{
	uint8_t buf[128];
	struct aml a;

	aml_init(&a, buf, sizeof(buf));
	aml_res_word_bus(&a, 0, 0);
	EXPECT_BYTES(&a, 0x88, 0x0d, 0x00, 0x02, 0x0c, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		     0x00, 0x00, 0x01, 0x00);

	aml_init(&a, buf, sizeof(buf));
	aml_res_dword_memory(&a, 0xc0000000, 0xdfffffff);
	EXPECT_BYTES(&a, 0x87, 0x17, 0x00, 0x00, 0x0c, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		     0x00, 0xc0, 0xff, 0xff, 0xff, 0xdf, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		     0x20);

	aml_init(&a, buf, sizeof(buf));
	aml_res_memory32_fixed(&a, 0xe0000000, 0x100000);
	EXPECT_BYTES(&a, 0x86, 0x09, 0x00, 0x01, 0x00, 0x00, 0x00, 0xe0, 0x00, 0x00, 0x10, 0x00);
}

Test(aml, address_space_bad_ranges)
{
	uint8_t buf[64];
	struct aml a;

	aml_init(&a, buf, sizeof(buf));
	aml_res_word_bus(&a, 5, 4);
	cr_assert_eq(a.err, -EINVAL, "max below min");
	aml_init(&a, buf, sizeof(buf));
	aml_res_word_bus(&a, 0, 0xffff);
	cr_assert_eq(a.err, -EINVAL, "length 0x10000 does not fit 16 bits");
	aml_init(&a, buf, sizeof(buf));
	aml_res_dword_memory(&a, 0, 0xffffffff);
	cr_assert_eq(a.err, -EINVAL, "length 2^32 does not fit 32 bits");
	aml_init(&a, buf, sizeof(buf));
	aml_res_dword_memory(&a, 2, 1);
	cr_assert_eq(a.err, -EINVAL);
	cr_assert_eq(a.len, 0);
}

/* Package (0x02) { Package (0x02) { 0xFFFF, One }, Package (0x02) { Zero, 0x10 } } */
Test(aml, package_of_packages)
{
	uint8_t buf[64];
	struct aml a;
	struct aml_mark outer, inner;

	aml_init(&a, buf, sizeof(buf));
	outer = aml_package_begin(&a, 2);
	inner = aml_package_begin(&a, 2);
	aml_integer(&a, 0xffff);
	aml_integer(&a, 1);
	aml_end(&a, inner);
	inner = aml_package_begin(&a, 2);
	aml_integer(&a, 0);
	aml_integer(&a, 0x10);
	aml_end(&a, inner);
	aml_end(&a, outer);
	/* The bytes iasl compiles from the ASL above. */
	EXPECT_BYTES(&a, 0x12, 0x0f, 0x02, 0x12, 0x06, 0x02, 0x0b, 0xff, 0xff, 0x01, 0x12, 0x05,
		     0x02, 0x00, 0x0a, 0x10);
}
