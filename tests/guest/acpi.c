/*
 * ACPI: find the RSDP, check every table's checksum, count the MADT's local
 * APICs, find the S5 sleep type, and power off through the FADT.
 */
#include "guest.h"

#define SDT_HEADER 36
#define SDT_MAX_LEN (16u << 20)

/* FADT offsets (ACPI 6.x, table 5.9). */
#define FADT_DSDT 40
#define FADT_PM1A_CNT_BLK 64
#define FADT_FLAGS 112
#define FADT_X_DSDT 140
#define FADT_X_PM1A_CNT_BLK 172
#define FADT_SLEEP_CONTROL_REG 244
#define FADT_HW_REDUCED_ACPI (1u << 20)

/* Generic Address Structure. */
#define GAS_SYSTEM_MEMORY 0
#define GAS_SYSTEM_IO 1

#define SLP_EN_HW_REDUCED (1u << 5)
#define SLP_EN_PM1 (1u << 13)
#define AML_PACKAGE_OP 0x12

#define MADT_LAPIC_ADDR 36
#define MADT_ENTRIES 44
#define MADT_TYPE_LAPIC 0
#define MADT_TYPE_LAPIC_OVERRIDE 5
#define MADT_TYPE_X2APIC 9
#define MADT_ENABLED 1

static uint8_t rd8(uint64_t a)
{
	return *(const uint8_t *)phys(a);
}

static uint32_t rd32(uint64_t a)
{
	uint32_t v;

	memcpy(&v, phys(a), sizeof(v));
	return v;
}

static uint64_t rd64(uint64_t a)
{
	uint64_t v;

	memcpy(&v, phys(a), sizeof(v));
	return v;
}

static uint8_t checksum(uint64_t a, uint32_t len)
{
	uint8_t s = 0;

	while (len--)
		s += rd8(a++);
	return s;
}

static bool rsdp_valid(uint64_t a)
{
	return phys_ok(a, 36) && !memcmp(phys(a), "RSD PTR ", 8) && !checksum(a, 20);
}

/* The legacy places: first KiB of the EBDA, then 0xe0000-0xfffff. */
static uint64_t rsdp_search(void)
{
	uint64_t ebda = (uint64_t)(*(const uint16_t *)phys(0x40e)) << 4;

	if (ebda >= 0x80000 && ebda < 0xa0000)
		for (uint64_t a = ebda; a < ebda + 1024; a += 16)
			if (rsdp_valid(a))
				return a;
	for (uint64_t a = 0xe0000; a < 0x100000; a += 16)
		if (rsdp_valid(a))
			return a;
	return 0;
}

/* Checks one table; returns its length or 0 after printing why not. */
static uint32_t table_check(struct acpi_info *ai, uint64_t a, const char *sig)
{
	if (!a || !phys_ok(a, SDT_HEADER)) {
		gfail("acpi table %s at 0x%lx not addressable", sig ? sig : "", a);
		return 0;
	}
	uint32_t len = rd32(a + 4);
	char name[5] = {0};

	memcpy(name, phys(a), 4);
	if (sig && memcmp(name, sig, 4)) {
		gfail("acpi table at 0x%lx is '%s', expected %s", a, name, sig);
		return 0;
	}
	if (len < SDT_HEADER || len > SDT_MAX_LEN || !phys_ok(a, len)) {
		gfail("acpi %s at 0x%lx has bad length %u", name, a, len);
		return 0;
	}
	if (checksum(a, len)) {
		gfail("acpi %s at 0x%lx bad checksum", name, a);
		return 0;
	}
	ai->tables++;
	return len;
}

/* SLP_TYP for S5: Name(_S5_, Package() { typ, ... }) in the DSDT's AML. */
static unsigned int s5_slp_typ(uint64_t dsdt)
{
	uint32_t len = rd32(dsdt + 4);

	for (uint64_t p = dsdt + SDT_HEADER; p + 8 <= dsdt + len; p++) {
		if (memcmp(phys(p), "_S5_", 4) || rd8(p + 4) != AML_PACKAGE_OP)
			continue;
		/* PkgLength: bits 7:6 of its lead byte = extra bytes. */
		uint64_t q = p + 5;

		q += 1 + (rd8(q) >> 6);
		q++; /* NumElements */
		if (q + 2 > dsdt + len)
			break;
		switch (rd8(q)) {
		case 0x0a: /* BytePrefix */
			return rd8(q + 1);
		case 0x00: /* ZeroOp */
			return 0;
		case 0x01: /* OneOp */
			return 1;
		}
		break;
	}
	return 5;
}

static void madt_parse(struct acpi_info *ai, uint64_t madt)
{
	uint32_t len = rd32(madt + 4);

	ai->lapic_addr = rd32(madt + MADT_LAPIC_ADDR);
	for (uint64_t p = madt + MADT_ENTRIES; p + 2 <= madt + len;) {
		uint8_t type = rd8(p), elen = rd8(p + 1);
		uint32_t id = ~0u, flags = 0;

		if (elen < 2 || p + elen > madt + len) {
			gfail("acpi MADT entry at 0x%lx has bad length %u", p, elen);
			return;
		}
		if (type == MADT_TYPE_LAPIC && elen >= 8) {
			id = rd8(p + 3);
			flags = rd32(p + 4);
		} else if (type == MADT_TYPE_X2APIC && elen >= 16) {
			id = rd32(p + 4);
			flags = rd32(p + 8);
		} else if (type == MADT_TYPE_LAPIC_OVERRIDE && elen >= 12) {
			ai->lapic_addr = rd64(p + 4);
		}
		if (id != ~0u && (flags & MADT_ENABLED)) {
			if (ai->lapics < sizeof(ai->apic_ids) / sizeof(uint32_t))
				ai->apic_ids[ai->lapics] = id;
			ai->lapics++;
		}
		p += elen;
	}
}

static void sdt_walk(struct acpi_info *ai, uint64_t sdt, unsigned int esize)
{
	uint32_t len = table_check(ai, sdt, esize == 8 ? "XSDT" : "RSDT");

	for (uint32_t off = SDT_HEADER; len && off + esize <= len; off += esize) {
		uint64_t t = esize == 8 ? rd64(sdt + off) : rd32(sdt + off);

		if (!table_check(ai, t, NULL))
			continue;
		if (!memcmp(phys(t), "FACP", 4) && !ai->fadt)
			ai->fadt = t;
		else if (!memcmp(phys(t), "APIC", 4) && !ai->madt)
			ai->madt = t;
	}
}

void acpi_scan(struct acpi_info *ai, uint64_t rsdp_hint)
{
	uint64_t rsdp = rsdp_hint;

	ai->slp_typ = 5;
	if (!rsdp)
		rsdp = rsdp_search();
	if (!rsdp || !phys_ok(rsdp, 36) || memcmp(phys(rsdp), "RSD PTR ", 8)) {
		gfail("acpi no rsdp (hint 0x%lx)", rsdp_hint);
		return;
	}
	ai->rsdp = rsdp;
	if (checksum(rsdp, 20))
		gfail("acpi rsdp checksum (20 bytes)");
	uint8_t rev = rd8(rsdp + 15);

	if (rev >= 2 && checksum(rsdp, 36))
		gfail("acpi rsdp extended checksum (36 bytes)");
	if (rev >= 2 && rd64(rsdp + 24))
		sdt_walk(ai, rd64(rsdp + 24), 8);
	else
		sdt_walk(ai, rd32(rsdp + 16), 4);

	if (!ai->fadt) {
		gfail("acpi no FADT");
	} else {
		uint32_t flen = rd32(ai->fadt + 4);
		uint64_t dsdt = 0;

		if (flen >= FADT_X_DSDT + 8)
			dsdt = rd64(ai->fadt + FADT_X_DSDT);
		if (!dsdt)
			dsdt = rd32(ai->fadt + FADT_DSDT);
		if (table_check(ai, dsdt, "DSDT")) {
			ai->dsdt = dsdt;
			ai->slp_typ = s5_slp_typ(dsdt);
		}
	}
	if (!ai->madt)
		gfail("acpi no MADT");
	else
		madt_parse(ai, ai->madt);
	gprintf("guest: acpi rsdp=0x%lx tables=%u lapics=%u\n", rsdp, ai->tables, ai->lapics);
}

static void gas_write(uint64_t fadt, uint32_t off, uint32_t v, int width)
{
	uint8_t space = rd8(fadt + off);
	uint64_t addr = rd64(fadt + off + 4);

	if (space == GAS_SYSTEM_IO && width == 8)
		outb((uint16_t)addr, (uint8_t)v);
	else if (space == GAS_SYSTEM_IO)
		outw((uint16_t)addr, (uint16_t)v);
	else if (space == GAS_SYSTEM_MEMORY && width == 8 && phys_ok(addr, 1))
		*(volatile uint8_t *)phys(addr) = (uint8_t)v;
	else if (space == GAS_SYSTEM_MEMORY && phys_ok(addr, 2))
		*(volatile uint16_t *)phys(addr) = (uint16_t)v;
}

static bool gas_present(uint64_t fadt, uint32_t off)
{
	return rd32(fadt + 4) >= off + 12 && rd64(fadt + off + 4);
}

void acpi_poweroff(const struct acpi_info *ai)
{
	gprintf("guest: poweroff\n");
	if (ai->fadt) {
		uint64_t f = ai->fadt;
		uint32_t typ = ai->slp_typ & 7;

		if ((rd32(f + FADT_FLAGS) & FADT_HW_REDUCED_ACPI) &&
		    gas_present(f, FADT_SLEEP_CONTROL_REG)) {
			gas_write(f, FADT_SLEEP_CONTROL_REG, typ << 2 | SLP_EN_HW_REDUCED, 8);
		} else if (gas_present(f, FADT_X_PM1A_CNT_BLK)) {
			gas_write(f, FADT_X_PM1A_CNT_BLK, typ << 10 | SLP_EN_PM1, 16);
		} else if (rd32(f + FADT_PM1A_CNT_BLK)) {
			uint16_t port = (uint16_t)rd32(f + FADT_PM1A_CNT_BLK);
			uint16_t v = inw(port) & ~(7u << 10);

			outw(port, v | typ << 10 | SLP_EN_PM1);
		}
	}
	/* QEMU finishes the power-off asynchronously: give it time. */
	tsc_delay(3000000000ull);
	gprintf("guest: FAIL poweroff\n");
	for (;;)
		cpu_idle();
}
