/*
 * Tests for the ACPI tables (src/vmm/x86/acpi.c). The tables are built into
 * fake guest memory and read back the way a guest does: from the RSDP,
 * following physical pointers. Field offsets come from the ACPI 6.3 spec,
 * not from acpi.c's structs, so a layout mistake there shows up here.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vmm/memory.h"
#include "vmm/x86/acpi.h"
#include "vmm/x86/layout.h"

#define GUEST_RAM (2ULL << 20)
#define ACPI_SIZE (LAYOUT_ACPI_END - LAYOUT_ACPI_START)

struct guest {
	struct guest_mem mem;
	uint8_t *ram;
	uint64_t rsdp;
	int used;
};

static void guest_build_pci(struct guest *g, uint32_t ncpus, bool pci)
{
	struct gmem_region r = {.gpa = 0, .size = GUEST_RAM};
	struct acpi_config cfg = {.ncpus = ncpus, .pci = pci};
	uint8_t *buf;

	g->ram = calloc(1, GUEST_RAM);
	cr_assert_not_null(g->ram);
	r.hva = g->ram;
	gmem_init_fake(&g->mem, &r, 1);
	buf = gmem_ptr(&g->mem, LAYOUT_ACPI_START, ACPI_SIZE);
	cr_assert_not_null(buf);
	g->used = acpi_build(buf, ACPI_SIZE, LAYOUT_ACPI_START, &cfg, &g->rsdp);
	cr_assert_gt(g->used, 0, "acpi_build: %d", g->used);
	cr_assert_leq((size_t)g->used, ACPI_SIZE);
}

static void guest_build(struct guest *g, uint32_t ncpus)
{
	guest_build_pci(g, ncpus, false);
}

static void guest_free(struct guest *g)
{
	free(g->ram);
}

static uint8_t rd8(const uint8_t *p, size_t off)
{
	return p[off];
}

static uint16_t rd16(const uint8_t *p, size_t off)
{
	return (uint16_t)(p[off] | p[off + 1] << 8);
}

static uint32_t rd32(const uint8_t *p, size_t off)
{
	return (uint32_t)rd16(p, off) | (uint32_t)rd16(p, off + 2) << 16;
}

static uint64_t rd64(const uint8_t *p, size_t off)
{
	return (uint64_t)rd32(p, off) | (uint64_t)rd32(p, off + 4) << 32;
}

static uint8_t sum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;

	for (size_t i = 0; i < n; i++)
		s = (uint8_t)(s + p[i]);
	return s;
}

/* A table at gpa, as the guest reads it; checks bounds, signature and checksum. */
static const uint8_t *guest_table(const struct guest *g, uint64_t gpa, const char *sig)
{
	const uint8_t *hdr = gmem_ptr(&g->mem, gpa, 36);
	const uint8_t *t;
	uint32_t len;

	cr_assert_not_null(hdr, "%s at 0x%llx: not in RAM", sig, (unsigned long long)gpa);
	cr_assert(gpa >= LAYOUT_ACPI_START && gpa < LAYOUT_ACPI_START + (uint64_t)g->used,
		  "%s at 0x%llx: outside the ACPI area", sig, (unsigned long long)gpa);
	cr_assert_arr_eq(hdr, sig, 4, "signature at 0x%llx is %.4s, want %s",
			 (unsigned long long)gpa, (const char *)hdr, sig);
	len = rd32(hdr, 4);
	cr_assert_geq(len, 36);
	cr_assert_leq(gpa + len, LAYOUT_ACPI_START + (uint64_t)g->used, "%s runs past the end",
		      sig);
	t = gmem_ptr(&g->mem, gpa, len);
	cr_assert_eq(sum(t, len), 0, "%s checksum", sig);
	cr_assert_arr_eq(t + 10, "EMBER ", 6, "%s OEM ID", sig);
	return t;
}

static const uint8_t *guest_rsdp(const struct guest *g)
{
	const uint8_t *r = gmem_ptr(&g->mem, g->rsdp, 36);

	cr_assert_eq(g->rsdp, LAYOUT_ACPI_START);
	cr_assert_eq(g->rsdp % 16, 0);
	cr_assert_not_null(r);
	return r;
}

static const uint8_t *guest_xsdt(const struct guest *g)
{
	return guest_table(g, rd64(guest_rsdp(g), 24), "XSDT");
}

/* The table the XSDT lists with signature sig (exactly one must exist). */
static const uint8_t *guest_find(const struct guest *g, const char *sig)
{
	const uint8_t *x = guest_xsdt(g);
	uint32_t n = (rd32(x, 4) - 36) / 8;
	const uint8_t *found = NULL;

	for (uint32_t i = 0; i < n; i++) {
		uint64_t gpa = rd64(x, 36 + 8 * i);
		const uint8_t *t = gmem_ptr(&g->mem, gpa, 4);

		cr_assert_not_null(t);
		if (!memcmp(t, sig, 4)) {
			cr_assert_null(found, "two %s tables", sig);
			found = guest_table(g, gpa, sig);
		}
	}
	cr_assert_not_null(found, "no %s in the XSDT", sig);
	return found;
}

static const uint8_t *guest_dsdt(const struct guest *g)
{
	return guest_table(g, rd64(guest_find(g, "FACP"), 140), "DSDT");
}

Test(acpi, rsdp)
{
	struct guest g;
	const uint8_t *r;

	guest_build(&g, 2);
	r = guest_rsdp(&g);
	cr_assert_arr_eq(r, "RSD PTR ", 8);
	cr_assert_eq(sum(r, 20), 0, "ACPI 1.0 checksum");
	cr_assert_eq(sum(r, 36), 0, "extended checksum");
	cr_assert_arr_eq(r + 9, "EMBER ", 6);
	cr_assert_eq(rd8(r, 15), 2, "revision");
	cr_assert_eq(rd32(r, 16), 0, "no RSDT");
	cr_assert_eq(rd32(r, 20), 36, "length");
	guest_xsdt(&g);
	guest_free(&g);
}

Test(acpi, xsdt_lists_fadt_and_madt)
{
	struct guest g;
	const uint8_t *x;

	guest_build(&g, 2);
	x = guest_xsdt(&g);
	cr_assert_eq(rd8(x, 8), 1, "XSDT revision");
	cr_assert_eq(rd32(x, 4), 36 + 2 * 8, "two entries");
	guest_find(&g, "FACP");
	guest_find(&g, "APIC");
	guest_free(&g);
}

static bool xsdt_has(const struct guest *g, const char *sig)
{
	const uint8_t *x = guest_xsdt(g);

	for (uint32_t i = 0; i < (rd32(x, 4) - 36) / 8; i++)
		if (!memcmp(gmem_ptr(&g->mem, rd64(x, 36 + 8 * i), 4), sig, 4))
			return true;
	return false;
}

Test(acpi, no_mcfg_without_pci)
{
	struct guest g;

	guest_build(&g, 2);
	cr_assert_not(xsdt_has(&g, "MCFG"));
	guest_free(&g);
}

/* PCI Firmware Specification 3.2, 4.1.2: one allocation for segment 0, bus 0. */
Test(acpi, mcfg_describes_ecam_bus_0)
{
	struct guest g;
	const uint8_t *x, *m;

	guest_build_pci(&g, 2, true);
	x = guest_xsdt(&g);
	cr_assert_eq(rd32(x, 4), 36 + 3 * 8, "FACP, APIC and MCFG");
	guest_find(&g, "FACP");
	guest_find(&g, "APIC");
	m = guest_find(&g, "MCFG");
	cr_assert_eq(rd32(m, 4), 44 + 16, "header, 8 reserved bytes, one allocation");
	cr_assert_eq(rd8(m, 8), 1, "revision");
	cr_assert_eq(rd64(m, 36), 0, "reserved");
	cr_assert_eq(rd64(m, 44), LAYOUT_PCI_ECAM, "base address");
	cr_assert_eq(rd16(m, 52), 0, "segment");
	cr_assert_eq(rd8(m, 54), 0, "start bus");
	cr_assert_eq(rd8(m, 55), 0, "end bus: ECAM covers bus 0 only");
	cr_assert_eq(LAYOUT_PCI_ECAM_SIZE, 1ULL << 20, "one bus is 1 MiB of ECAM");
	cr_assert_eq(rd32(m, 56), 0);
	guest_free(&g);
}

static void check_no_overlap(bool pci)
{
	struct guest g;
	uint64_t start[6], end[6];
	const uint8_t *x, *f;
	uint32_t ntables;
	int n = 0;

	guest_build_pci(&g, 255, pci);
	x = guest_xsdt(&g);
	f = guest_find(&g, "FACP");
	start[n] = g.rsdp;
	end[n++] = g.rsdp + 36;
	start[n] = rd64(guest_rsdp(&g), 24);
	end[n++] = start[1] + rd32(x, 4);
	start[n] = rd64(f, 140);
	end[n++] = start[2] + rd32(guest_dsdt(&g), 4);
	ntables = (rd32(x, 4) - 36) / 8;
	cr_assert_eq(ntables, pci ? 3 : 2);
	for (uint32_t i = 0; i < ntables; i++) {
		start[n] = rd64(x, 36 + 8 * i);
		end[n] = start[n] + rd32(gmem_ptr(&g.mem, start[n], 8), 4);
		n++;
	}
	for (int i = 0; i < n; i++) {
		cr_assert_leq(end[i], LAYOUT_ACPI_END);
		for (int j = i + 1; j < n; j++)
			cr_assert(end[i] <= start[j] || end[j] <= start[i],
				  "tables %d and %d overlap", i, j);
	}
	guest_free(&g);
}

Test(acpi, tables_do_not_overlap)
{
	check_no_overlap(false);
}

Test(acpi, tables_do_not_overlap_with_pci)
{
	check_no_overlap(true);
}

Test(acpi, fadt_fields)
{
	struct guest g;
	const uint8_t *f;
	uint32_t flags;

	guest_build(&g, 2);
	f = guest_find(&g, "FACP");
	cr_assert_eq(rd32(f, 4), 276, "FADT length (revision 6)");
	cr_assert_eq(rd8(f, 8), 6, "FADT revision");
	cr_assert_eq(rd8(f, 131), 3, "FADT minor revision (ACPI 6.3)");
	cr_assert_eq(rd32(f, 36), 0, "FIRMWARE_CTRL: no FACS");
	cr_assert_eq(rd64(f, 132), 0, "X_FIRMWARE_CTRL: no FACS");
	cr_assert_eq(rd32(f, 40), 0, "32-bit DSDT unset, X_DSDT is used");
	cr_assert_eq(rd16(f, 46), 0, "no SCI");

	flags = rd32(f, 112);
	cr_assert(flags & (1U << 20), "HW_REDUCED_ACPI");
	cr_assert(flags & (1U << 10), "RESET_REG_SUP");
	cr_assert(flags & (1U << 4), "PWR_BUTTON (no fixed power button)");
	cr_assert(flags & (1U << 5), "SLP_BUTTON (no fixed sleep button)");
	cr_assert_eq(flags, 0x00100431, "flags 0x%08x", flags);

	/* LEGACY_DEVICES, 8042, VGA not present, no ASPM; MSI and RTC present. */
	cr_assert_eq(rd16(f, 109), 0x0017, "IAPC_BOOT_ARCH 0x%04x", rd16(f, 109));

	/* RESET_REG: system I/O port 0x64, 8 bits, byte access; value 0xfe. */
	cr_assert_eq(rd8(f, 116), 1);
	cr_assert_eq(rd8(f, 117), 8);
	cr_assert_eq(rd8(f, 118), 0);
	cr_assert_eq(rd8(f, 119), 1);
	cr_assert_eq(rd64(f, 120), 0x64);
	cr_assert_eq(rd8(f, 128), 0xfe);

	/* SLEEP_CONTROL_REG and SLEEP_STATUS_REG. */
	cr_assert_eq(rd8(f, 244), 1);
	cr_assert_eq(rd8(f, 245), 8);
	cr_assert_eq(rd8(f, 247), 1);
	cr_assert_eq(rd64(f, 248), LAYOUT_PORT_SLEEP_CTL);
	cr_assert_eq(rd8(f, 256), 1);
	cr_assert_eq(rd8(f, 257), 8);
	cr_assert_eq(rd8(f, 259), 1);
	cr_assert_eq(rd64(f, 260), LAYOUT_PORT_SLEEP_STS);

	cr_assert_arr_eq(f + 268, "EMBERVMM", 8, "hypervisor vendor identity");

	/*
	 * Every legacy PM block is absent in hardware-reduced mode but the PM
	 * timer (PM_TMR_BLK at 76, PM_TMR_LEN at 91), for kvm-unit-tests;
	 * ACPICA ignores legacy blocks there and X_PM_TMR_BLK stays empty.
	 */
	for (size_t off = 56; off < 88; off += 4)
		if (off != 76)
			cr_assert_eq(rd32(f, off), 0, "legacy block at %zu", off);
	cr_assert_eq(rd32(f, 76), LAYOUT_PORT_PM_TMR, "PM_TMR_BLK");
	cr_assert_eq(rd8(f, 91), 4, "PM_TMR_LEN");
	for (size_t off = 148; off < 244; off++)
		cr_assert_eq(rd8(f, off), 0, "X_ block byte %zu", off);

	guest_dsdt(&g); /* X_DSDT points at a valid DSDT */
	guest_free(&g);
}

static void check_madt(uint32_t ncpus)
{
	struct guest g;
	const uint8_t *m;
	uint32_t len, nlapic = 0, nioapic = 0, niso = 0, nnmi = 0;
	size_t off;

	guest_build(&g, ncpus);
	m = guest_find(&g, "APIC");
	len = rd32(m, 4);
	cr_assert_eq(rd32(m, 36), LAYOUT_LAPIC);
	cr_assert_eq(rd32(m, 40), 1, "PCAT_COMPAT");
	for (off = 44; off < len; off += rd8(m, off + 1)) {
		uint8_t type = rd8(m, off), elen = rd8(m, off + 1);

		cr_assert_geq(elen, 2);
		cr_assert_leq(off + elen, len, "entry at %zu runs past the MADT", off);
		switch (type) {
		case 0:
			cr_assert_eq(elen, 8);
			cr_assert_eq(rd8(m, off + 2), nlapic, "ACPI UID");
			cr_assert_eq(rd8(m, off + 3), nlapic, "APIC ID");
			cr_assert_eq(rd32(m, off + 4), 1, "enabled");
			nlapic++;
			break;
		case 1:
			cr_assert_eq(elen, 12);
			cr_assert_eq(rd8(m, off + 2), ncpus, "I/O APIC ID distinct from APIC IDs");
			cr_assert_eq(rd32(m, off + 4), LAYOUT_IOAPIC);
			cr_assert_eq(rd32(m, off + 8), 0, "GSI base");
			nioapic++;
			break;
		case 2:
			cr_assert_eq(elen, 10);
			cr_assert_eq(rd8(m, off + 2), 0, "ISA bus");
			cr_assert_eq(rd8(m, off + 3), 0, "IRQ0");
			cr_assert_eq(rd32(m, off + 4), 2, "-> GSI2");
			cr_assert_eq(rd16(m, off + 8), 0, "conforms to bus");
			niso++;
			break;
		case 4:
			cr_assert_eq(elen, 6);
			cr_assert_eq(rd8(m, off + 2), 0xff, "all processors");
			cr_assert_eq(rd8(m, off + 5), 1, "LINT1");
			nnmi++;
			break;
		default:
			cr_assert_fail("unexpected MADT entry type %u", type);
		}
	}
	cr_assert_eq(off, len, "entries fill the MADT exactly");
	cr_assert_eq(nlapic, ncpus);
	cr_assert_eq(nioapic, 1);
	cr_assert_eq(niso, 1);
	cr_assert_eq(nnmi, 1);
	guest_free(&g);
}

Test(acpi, madt_1_cpu)
{
	check_madt(1);
}

Test(acpi, madt_2_cpus)
{
	check_madt(2);
}

Test(acpi, madt_255_cpus)
{
	check_madt(255);
}

static size_t count_bytes(const uint8_t *hay, size_t n, const void *needle, size_t k)
{
	size_t c = 0;

	for (size_t i = 0; i + k <= n; i++)
		c += !memcmp(hay + i, needle, k);
	return c;
}

static void check_dsdt(uint32_t ncpus)
{
	static const uint8_t s5[] = {
	    0x08, '_', 'S', '5', '_', 0x12, 0x07, 0x04, 0x0a, LAYOUT_SLP_TYP_S5, 0x00, 0x00, 0x00};
	static const uint8_t com1_hid[] = {'_', 'H', 'I', 'D', 0x0c, 0x41, 0xd0, 0x05, 0x01};
	static const uint8_t kbd_hid[] = {'_', 'H', 'I', 'D', 0x0c, 0x41, 0xd0, 0x03, 0x03};
	static const uint8_t rtc_hid[] = {'_', 'H', 'I', 'D', 0x0c, 0x41, 0xd0, 0x0b, 0x00};
	struct guest g;
	const uint8_t *d;
	uint32_t len;
	char name[8];

	guest_build(&g, ncpus);
	d = guest_dsdt(&g);
	len = rd32(d, 4);
	cr_assert_eq(rd8(d, 8), 2, "DSDT revision 2: 64-bit integers");
	cr_assert_eq(count_bytes(d, len, s5, sizeof(s5)), 1, "Name(_S5, Package(){5,0,0,0})");
	cr_assert_eq(count_bytes(d, len, com1_hid, sizeof(com1_hid)), 1);
	cr_assert_eq(count_bytes(d, len, kbd_hid, sizeof(kbd_hid)), 1);
	cr_assert_eq(count_bytes(d, len, rtc_hid, sizeof(rtc_hid)), 1);
	cr_assert_eq(count_bytes(d, len, "ACPI0007", 8), ncpus);
	snprintf(name, sizeof(name), "C%03X", (ncpus - 1) & 0xfff);
	cr_assert_eq(count_bytes(d, len, name, 4), 1, "%s", name);
	guest_free(&g);
}

Test(acpi, dsdt_1_cpu)
{
	check_dsdt(1);
}

Test(acpi, dsdt_255_cpus)
{
	check_dsdt(255);
}

/* Returns the offset just past the first occurrence of needle, or 0. */
static size_t find_bytes(const uint8_t *hay, size_t n, const void *needle, size_t k)
{
	for (size_t i = 0; i + k <= n; i++)
		if (!memcmp(hay + i, needle, k))
			return i + k;
	return 0;
}

Test(acpi, dsdt_pci_root_bridge)
{
	/* EISAID("PNP0A08") = 0x080AD041, EISAID("PNP0A03") = 0x030AD041, PNP0C02. */
	static const uint8_t hid[] = {'_', 'H', 'I', 'D', 0x0c, 0x41, 0xd0, 0x0a, 0x08};
	static const uint8_t cid[] = {'_', 'C', 'I', 'D', 0x0c, 0x41, 0xd0, 0x0a, 0x03};
	static const uint8_t mres[] = {'_', 'H', 'I', 'D', 0x0c, 0x41, 0xd0, 0x0c, 0x02};
	/* WordBusNumber 0..0, IO 0xcf8 len 8, DWordMemory 0xc0000000..0xdfffffff. */
	static const uint8_t crs[] = {
	    0x88, 0x0d, 0x00, 0x02, 0x0c, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	    0x00, 0x01, 0x00, 0x47, 0x01, 0xf8, 0x0c, 0xf8, 0x0c, 0x01, 0x08, 0x87, 0x17,
	    0x00, 0x00, 0x0c, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc0, 0xff,
	    0xff, 0xff, 0xdf, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x20, 0x79, 0x00};
	/* Memory32Fixed(ReadWrite, ECAM, 1 MiB). */
	static const uint8_t ecam[] = {0x86, 0x09, 0x00, 0x01, 0x00, 0x00,
				       0x00, 0xe0, 0x00, 0x00, 0x10, 0x00};
	/* Package(4){0x1FFFF, One, Zero, 0x12}: slot 1 INTB -> GSI 16 + (1 + 1) % 8. */
	static const uint8_t prt_1b[] = {0x12, 0x0b, 0x04, 0x0c, 0xff, 0xff,
					 0x01, 0x00, 0x01, 0x00, 0x0a, 0x12};
	/* Package(4){0x1FFFFF, 0x03, Zero, 0x12}: slot 31 INTD -> 16 + (31 + 3) % 8. */
	static const uint8_t prt_31d[] = {0x12, 0x0c, 0x04, 0x0c, 0xff, 0xff, 0x1f,
					  0x00, 0x0a, 0x03, 0x00, 0x0a, 0x12};
	struct guest g;
	const uint8_t *d;
	size_t len, at;

	guest_build_pci(&g, 4, true);
	d = guest_dsdt(&g);
	len = rd32(d, 4);
	at = find_bytes(d, len, "PCI0", 4);
	cr_assert(at, "no PCI0");
	cr_assert(find_bytes(d + at, len - at, hid, sizeof(hid)), "_HID PNP0A08 after PCI0");
	cr_assert(find_bytes(d + at, len - at, cid, sizeof(cid)), "_CID PNP0A03");
	cr_assert(find_bytes(d, len, crs, sizeof(crs)), "_CRS windows");
	cr_assert(find_bytes(d, len, "_PRT\x12", 5), "_PRT package");
	cr_assert(find_bytes(d, len, prt_1b, sizeof(prt_1b)), "_PRT slot 1 INTB");
	cr_assert(find_bytes(d, len, prt_31d, sizeof(prt_31d)), "_PRT slot 31 INTD");
	cr_assert_eq(count_bytes(d, len, mres, sizeof(mres)), 1, "one PNP0C02");
	cr_assert(find_bytes(d, len, ecam, sizeof(ecam)), "ECAM reserved");
	guest_free(&g);

	guest_build(&g, 4);
	d = guest_dsdt(&g);
	cr_assert_eq(count_bytes(d, rd32(d, 4), "PCI0", 4), 0, "no PCI0 without pci");
	guest_free(&g);
}

Test(acpi, bad_config)
{
	static uint8_t buf[4096];
	struct acpi_config cfg = {.ncpus = 0};
	uint64_t rsdp = 0;

	cr_assert_eq(acpi_build(buf, sizeof(buf), LAYOUT_ACPI_START, &cfg, &rsdp), -EINVAL);
	cfg.ncpus = ACPI_MAX_CPUS + 1;
	cr_assert_eq(acpi_build(buf, sizeof(buf), LAYOUT_ACPI_START, &cfg, &rsdp), -EINVAL);
	cfg.ncpus = 1;
	cr_assert_eq(acpi_build(buf, sizeof(buf), LAYOUT_ACPI_START + 8, &cfg, &rsdp), -EINVAL);
	cr_assert_eq(rsdp, 0);
}

Test(acpi, too_small_buffer_fails_without_overrun)
{
	static const size_t caps[] = {0, 20, 36, 100, 400, 700, 1000, 4000, 9000};
	static uint8_t buf[16384];
	struct acpi_config cfg = {.ncpus = 255};
	uint64_t rsdp = 0;

	for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
		memset(buf, 0xcc, sizeof(buf));
		cr_assert_eq(acpi_build(buf, caps[i], LAYOUT_ACPI_START, &cfg, &rsdp), -ENOSPC,
			     "cap %zu", caps[i]);
		for (size_t j = caps[i]; j < sizeof(buf); j++)
			cr_assert_eq(buf[j], 0xcc, "cap %zu: byte %zu written", caps[i], j);
	}
}

Test(acpi, deterministic)
{
	struct guest a, b;

	guest_build(&a, 4);
	guest_build(&b, 4);
	cr_assert_eq(a.used, b.used);
	cr_assert_arr_eq(a.ram + LAYOUT_ACPI_START, b.ram + LAYOUT_ACPI_START, (size_t)a.used);
	guest_free(&a);
	guest_free(&b);
}

/* iasl: disassemble each table, check the text, recompile the text. */

static int run(const char *dir, const char *cmd, const char *log)
{
	char line[1024];
	int st;

	snprintf(line, sizeof(line), "cd '%s' && %s >'%s' 2>&1", dir, cmd, log);
	st = system(line);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *s;
	long n;

	cr_assert_not_null(f, "open %s", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	s = calloc(1, (size_t)n + 1);
	cr_assert_not_null(s);
	cr_assert_eq(fread(s, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	return s;
}

static void write_file(const char *path, const void *data, size_t n)
{
	FILE *f = fopen(path, "wb");

	cr_assert_not_null(f, "create %s", path);
	cr_assert_eq(fwrite(data, 1, n, f), n);
	fclose(f);
}

/*
 * Scratch directory for the tools' files. Criterion runs each test in its
 * own process, so this is per test; .fini removes it even after a failed
 * assertion.
 */
static char scratch[64];

static void scratch_make(void)
{
	snprintf(scratch, sizeof(scratch), "/tmp/ember-acpi-XXXXXX");
	cr_assert_not_null(mkdtemp(scratch));
}

static void scratch_remove(void)
{
	char cmd[128];

	if (scratch[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", scratch);
		if (system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", scratch);
	}
}

/* Disassembles table t as <dir>/<name>.dat; returns the .dsl text. */
static char *iasl_check(const char *dir, const char *name, const uint8_t *t)
{
	static const char *const bad[] = {"Error",   "Warning",	  "Incorrect",
					  "Invalid", "should be", "Unknown"};
	char path[512], cmd[256], *dsl, *log;

	snprintf(path, sizeof(path), "%s/%s.dat", dir, name);
	write_file(path, t, rd32(t, 4));
	snprintf(cmd, sizeof(cmd), "iasl -d %s.dat", name);
	cr_assert_eq(run(dir, cmd, "dis.log"), 0, "iasl -d %s failed", name);
	snprintf(path, sizeof(path), "%s/%s.dsl", dir, name);
	dsl = slurp(path);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_null(strstr(dsl, bad[i]), "%s.dsl mentions \"%s\"", name, bad[i]);

	/* The disassembly must compile back without errors or warnings. */
	snprintf(cmd, sizeof(cmd), "iasl -p re-%s %s.dsl", name, name);
	cr_assert_eq(run(dir, cmd, "re.log"), 0, "iasl %s.dsl failed", name);
	snprintf(path, sizeof(path), "%s/re.log", dir);
	log = slurp(path);
	cr_assert_not_null(strstr(log, "0 Errors, 0 Warnings"), "%s recompile:\n%s", name, log);
	free(log);
	return dsl;
}

static void iasl_pci(const struct guest *g)
{
	char *s = iasl_check(scratch, "dsdt", guest_dsdt(g));

	cr_assert_not_null(strstr(s, "Device (PCI0)"));
	cr_assert_not_null(strstr(s, "Name (_HID, EisaId (\"PNP0A08\")"));
	cr_assert_not_null(strstr(s, "Name (_CID, EisaId (\"PNP0A03\")"));
	cr_assert_not_null(strstr(s, "Name (_SEG, Zero)"));
	cr_assert_not_null(strstr(s, "Name (_BBN, Zero)"));
	cr_assert_not_null(
	    strstr(s, "WordBusNumber (ResourceProducer, MinFixed, MaxFixed, PosDecode,"));
	cr_assert_not_null(strstr(s, "0x0CF8,             // Range Minimum"));
	cr_assert_not_null(strstr(s,
				  "DWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed, "
				  "NonCacheable, ReadWrite,"));
	cr_assert_not_null(strstr(s, "0xC0000000,         // Range Minimum"));
	cr_assert_not_null(strstr(s, "0xDFFFFFFF,         // Range Maximum"));
	cr_assert_not_null(strstr(s, "Name (_PRT, Package (0x80)"));
	cr_assert_not_null(strstr(s, "EisaId (\"PNP0C02\")"));
	cr_assert_not_null(strstr(s, "Memory32Fixed (ReadWrite,\n                    0xE0000000,"),
			   "%s", s);
	free(s);

	s = iasl_check(scratch, "mcfg", guest_find(g, "MCFG"));
	cr_assert_not_null(strstr(s, "Base Address : 00000000E0000000"));
	cr_assert_not_null(strstr(s, "Segment Group Number : 0000"));
	cr_assert_not_null(strstr(s, "Start Bus Number : 00"));
	cr_assert_not_null(strstr(s, "End Bus Number : 00"));
	free(s);

	s = iasl_check(scratch, "xsdt", guest_xsdt(g));
	cr_assert_not_null(strstr(s, "ACPI Table Address   2"));
	free(s);
}

static void iasl_all_cfg(uint32_t ncpus, bool pci)
{
	const char *dir = scratch;
	struct guest g;
	char *s;

	if (system("command -v iasl >/dev/null 2>&1") != 0)
		cr_skip_test("iasl (acpica-tools) is not installed");
	guest_build_pci(&g, ncpus, pci);

	s = iasl_check(dir, "dsdt", guest_dsdt(&g));
	cr_assert_not_null(strstr(s, "DefinitionBlock (\"\", \"DSDT\", 2, \"EMBER \""));
	cr_assert_not_null(strstr(s, "Name (_S5, Package (0x04)"));
	cr_assert_not_null(strstr(s, "_S5_"));
	cr_assert_not_null(strstr(s, "Scope (\\_SB)"));
	cr_assert_not_null(strstr(s, "EisaId (\"PNP0501\")"));
	cr_assert_not_null(strstr(s, "EisaId (\"PNP0303\")"));
	cr_assert_not_null(strstr(s, "EisaId (\"PNP0B00\")"));
	cr_assert_not_null(strstr(s, "0x03F8,             // Range Minimum"));
	cr_assert_not_null(strstr(s, "Device (C000)"));
	cr_assert_not_null(strstr(s, "\"ACPI0007\""));
	free(s);

	s = iasl_check(dir, "facp", guest_find(&g, "FACP"));
	cr_assert_not_null(strstr(s, "Hardware Reduced (V5) : 1"));
	cr_assert_not_null(strstr(s, "Reset Register Supported (V2) : 1"));
	cr_assert_not_null(strstr(s, "8042 Present on ports 60/64 (V2) : 1"));
	cr_assert_not_null(strstr(s, "CMOS RTC Not Present (V5) : 0"));
	cr_assert_not_null(strstr(s, "Value to cause reset : FE"));
	cr_assert_not_null(strstr(s, "Address : 0000000000000600"));
	cr_assert_not_null(strstr(s, "Address : 0000000000000601"));
	free(s);

	s = iasl_check(dir, "apic", guest_find(&g, "APIC"));
	cr_assert_not_null(strstr(s, "Local Apic Address : FEE00000"));
	cr_assert_not_null(strstr(s, "[I/O APIC]"));
	cr_assert_not_null(strstr(s, "[Interrupt Source Override]"));
	cr_assert_not_null(strstr(s, "[Local APIC NMI]"));
	free(s);

	s = iasl_check(dir, "xsdt", guest_xsdt(&g));
	cr_assert_not_null(strstr(s, "ACPI Table Address   1"));
	free(s);
	if (pci)
		iasl_pci(&g);
	guest_free(&g);
}

static void iasl_all(uint32_t ncpus)
{
	iasl_all_cfg(ncpus, false);
}

Test(acpi, iasl_accepts_tables_with_pci, .init = scratch_make, .fini = scratch_remove,
     .timeout = 60)
{
	iasl_all_cfg(255, true);
}

Test(acpi, iasl_accepts_tables_2_cpus, .init = scratch_make, .fini = scratch_remove, .timeout = 60)
{
	iasl_all(2);
}

Test(acpi, iasl_accepts_tables_255_cpus, .init = scratch_make, .fini = scratch_remove,
     .timeout = 60)
{
	iasl_all(255);
}

/*
 * acpiexec runs ACPICA, the interpreter Linux uses: load FADT, DSDT and
 * MADT, then enter S5 the way Linux powers off (hardware-reduced: the
 * sleep control register with SLP_TYP from \_S5). ACPICA's table and
 * namespace checks print "Warning"/"Error" lines that Linux would log.
 */
Test(acpi, acpiexec_loads_tables_and_enters_s5, .init = scratch_make, .fini = scratch_remove,
     .timeout = 60)
{
	static const char *const bad[] = {"Error", "Warning", "WARNING", "Failure", "ERROR"};
	const char *dir = scratch;
	char path[512], *log;
	struct guest g;

	if (system("command -v acpiexec >/dev/null 2>&1") != 0)
		cr_skip_test("acpiexec (acpica-tools) is not installed");
	guest_build(&g, 255);
	snprintf(path, sizeof(path), "%s/facp.dat", dir);
	write_file(path, guest_find(&g, "FACP"), 276);
	snprintf(path, sizeof(path), "%s/dsdt.dat", dir);
	write_file(path, guest_dsdt(&g), rd32(guest_dsdt(&g), 4));
	snprintf(path, sizeof(path), "%s/apic.dat", dir);
	write_file(path, guest_find(&g, "APIC"), rd32(guest_find(&g, "APIC"), 4));

	cr_assert_eq(
	    run(dir, "acpiexec -b 'sleep 5; evaluate \\_SB.C0FE._UID' facp.dat dsdt.dat apic.dat",
		"ae.log"),
	    0);
	snprintf(path, sizeof(path), "%s/ae.log", dir);
	log = slurp(path);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_null(strstr(log, bad[i]), "acpiexec says \"%s\":\n%s", bad[i], log);
	cr_assert_not_null(strstr(log, "Sleep-A: 05"), "%s", log);
	cr_assert_not_null(strstr(log, "HwExtendedSleep"), "%s", log);
	cr_assert_not_null(strstr(log, "[Integer] = 00000000000000FE"), "%s", log);
	free(log);
	guest_free(&g);
}

/*
 * With PCI: ACPICA loads all tables, evaluates the root bridge's objects
 * (its predefined-name checks validate _PRT's package shapes and _CRS)
 * and prints no warnings.
 */
Test(acpi, acpiexec_evaluates_pci_root_bridge, .init = scratch_make, .fini = scratch_remove,
     .timeout = 60)
{
	static const char *const bad[] = {"Error", "Warning", "WARNING", "Failure", "ERROR"};
	static const char *const files[] = {"FACP", "APIC", "MCFG"};
	const char *dir = scratch;
	char path[512], *log;
	struct guest g;

	if (system("command -v acpiexec >/dev/null 2>&1") != 0)
		cr_skip_test("acpiexec (acpica-tools) is not installed");
	guest_build_pci(&g, 2, true);
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		const uint8_t *t = guest_find(&g, files[i]);

		snprintf(path, sizeof(path), "%s/%s.dat", dir, files[i]);
		write_file(path, t, rd32(t, 4));
	}
	snprintf(path, sizeof(path), "%s/dsdt.dat", dir);
	write_file(path, guest_dsdt(&g), rd32(guest_dsdt(&g), 4));
	cr_assert_eq(run(dir,
			 "acpiexec -b 'evaluate \\_SB.PCI0._PRT; evaluate \\_SB.PCI0._CRS; "
			 "evaluate \\_SB.PCI0._HID; evaluate \\_SB.MRES._CRS' "
			 "FACP.dat dsdt.dat APIC.dat MCFG.dat",
			 "ae.log"),
		     0);
	snprintf(path, sizeof(path), "%s/ae.log", dir);
	log = slurp(path);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_null(strstr(log, bad[i]), "acpiexec says \"%s\":\n%s", bad[i], log);
	cr_assert_not_null(strstr(log, "MCFG"), "%s", log);
	cr_assert_not_null(strstr(log, "[Package] Contains 128 Elements"), "%s", log);
	cr_assert_not_null(strstr(log, "[Integer] = 00000000080AD041"), "PNP0A08:\n%s", log);
	cr_assert_not_null(strstr(log, "86 09 00 01 00 00 00 E0 00 00 10 00 79 00"), "%s", log);
	free(log);
	guest_free(&g);
}
