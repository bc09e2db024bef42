/*
 * A small AML (ACPI Machine Language) byte-code builder, enough for ember's
 * DSDT: names, integers, strings, packages (nested too), EISA IDs,
 * resource templates, Scope, Device and Name (ACPI 6.3, chapter 20).
 *
 * It writes into a caller-owned fixed buffer. Errors are sticky: the first
 * one (-ENOSPC when the buffer is full, -EINVAL for a malformed name, ID or
 * misnested mark, -E2BIG for an object too large for a PkgLength) is kept
 * in a->err, every later call does nothing, and the caller checks once at
 * the end. Nothing is ever written past buf + cap.
 *
 * Objects with a PkgLength (Scope, Device, Package, Buffer) are opened with
 * a *_begin() call that returns a mark and closed with aml_end(), which
 * inserts the PkgLength once the content size is known. Marks must be
 * closed innermost first.
 */
#ifndef EMBER_VMM_X86_AML_H
#define EMBER_VMM_X86_AML_H

#include <stddef.h>
#include <stdint.h>

struct aml {
	uint8_t *buf;
	size_t cap;
	size_t len;
	int err; /* 0 or the first -errno; sticky */
};

enum aml_mark_kind { AML_MARK_PKG, AML_MARK_BUFFER, AML_MARK_RESTEMPLATE };

struct aml_mark {
	size_t pos; /* where the PkgLength goes */
	enum aml_mark_kind kind;
};

/* Largest PkgLength value (28 bits), counting the PkgLength bytes. */
#define AML_PKGLEN_MAX 0x0fffffffU

void aml_init(struct aml *a, uint8_t *buf, size_t cap);

/* Raw bytes, e.g. a resource descriptor not covered below. */
void aml_bytes(struct aml *a, const void *data, size_t n);

/*
 * A NameString: optional root '\' or parent '^' prefixes, then NameSegs of
 * 1-4 characters ([A-Z_][A-Z0-9_]*, padded with '_') separated by '.'.
 * Examples: "_S5", "\\_SB.COM1", "^^FOO", "\\".
 */
void aml_namestring(struct aml *a, const char *path);

/* The shortest encoding: Zero, One, BytePrefix, Word, DWord or QWord. */
void aml_integer(struct aml *a, uint64_t v);

/* A String object; s must be ASCII 0x01-0x7f. */
void aml_string(struct aml *a, const char *s);

/* EISAID("PNP0501"): three letters A-Z and four hex digits, as a DWord. */
void aml_eisaid(struct aml *a, const char *id);

/* Name(path, ...): the caller emits the value object next. */
void aml_name(struct aml *a, const char *path);
void aml_name_integer(struct aml *a, const char *path, uint64_t v);
void aml_name_string(struct aml *a, const char *path, const char *s);
void aml_name_eisaid(struct aml *a, const char *path, const char *id);

struct aml_mark aml_scope_begin(struct aml *a, const char *path);
struct aml_mark aml_device_begin(struct aml *a, const char *path);
/* Package with nelems elements (the caller emits exactly that many). */
struct aml_mark aml_package_begin(struct aml *a, uint8_t nelems);
/* Buffer: BufferSize is computed from the bytes emitted before aml_end. */
struct aml_mark aml_buffer_begin(struct aml *a);
/* ResourceTemplate: a Buffer that aml_end closes with an End Tag. */
struct aml_mark aml_restemplate_begin(struct aml *a);
void aml_end(struct aml *a, struct aml_mark m);

/* Resource descriptors (ACPI 6.3, 6.4.2), for use inside a template. */
void aml_res_io(struct aml *a, uint16_t min, uint16_t max, uint8_t align, uint8_t len);
void aml_res_irq_noflags(struct aml *a, uint8_t irq);
/* Memory32Fixed(ReadWrite, base, len). */
void aml_res_memory32_fixed(struct aml *a, uint32_t base, uint32_t len);
/*
 * Address space descriptors for a PCI root bridge's _CRS, as windows the
 * bridge produces (ResourceProducer, MinFixed, MaxFixed, PosDecode, no
 * translation): WordBusNumber(min..max) and DWordMemory(NonCacheable,
 * ReadWrite, min..max). max < min, or a range whose length does not fit
 * the descriptor's length field (0..0xffff, 0..0xffffffff), fails with
 * -EINVAL.
 */
void aml_res_word_bus(struct aml *a, uint16_t min, uint16_t max);
void aml_res_dword_memory(struct aml *a, uint32_t min, uint32_t max);

/*
 * Encodes the PkgLength for content_len bytes of content (the encoded value
 * counts its own 1-4 bytes). Returns the number of bytes written to out, or
 * -E2BIG when the total exceeds AML_PKGLEN_MAX.
 */
int aml_pkglen_encode(uint8_t out[4], size_t content_len);

#endif
