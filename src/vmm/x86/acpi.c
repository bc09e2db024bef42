/*
 * ACPI tables for x86 guests (ACPI 6.3 layouts). The platform is
 * hardware-reduced ACPI like Firecracker's: no PM1/GPE blocks, no SCI, no
 * FACS; power-off goes through the FADT sleep control register, reset
 * through the FADT reset register (the i8042's 0xfe command).
 *
 * Layout in the buffer: RSDP at offset 0, then DSDT, FADT, MADT, MCFG (with
 * PCI), XSDT, each 16-byte aligned. Pointers are guest-physical (base_gpa + offset).
 */
#include "vmm/x86/acpi.h"

#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "core/log.h"
#include "vmm/x86/aml.h"
#include "vmm/x86/layout.h"

#define ACPI_TABLE_ALIGN 16
#define ACPI_MAX_XSDT_ENTRIES 8
#define ACPI_CREATOR_ID "EMBR"
#define ACPI_CREATOR_REVISION 1
#define ACPI_OEM_REVISION 1

/* Table revisions for ACPI 6.3. */
#define ACPI_RSDP_REVISION 2 /* ACPI 2.0+: XSDT address and extended checksum */
#define ACPI_XSDT_REVISION 1
#define ACPI_FADT_REVISION 6
#define ACPI_FADT_MINOR_REVISION 3
#define ACPI_DSDT_REVISION 2 /* 2+: AML integers are 64-bit */
#define ACPI_MADT_REVISION 5
#define ACPI_MCFG_REVISION 1

/* FADT Flags (ACPI 6.3, table 5-34). */
#define ACPI_FADT_F_WBINVD (1U << 0)
#define ACPI_FADT_F_PWR_BUTTON (1U << 4) /* set: no fixed power button */
#define ACPI_FADT_F_SLP_BUTTON (1U << 5) /* set: no fixed sleep button */
#define ACPI_FADT_F_RESET_REG_SUP (1U << 10)
#define ACPI_FADT_F_HW_REDUCED_ACPI (1U << 20)

/* FADT IAPC_BOOT_ARCH (table 5-35). */
#define ACPI_IAPC_LEGACY_DEVICES (1U << 0)
#define ACPI_IAPC_8042 (1U << 1)
#define ACPI_IAPC_VGA_NOT_PRESENT (1U << 2)
#define ACPI_IAPC_PCIE_ASPM_CONTROLS (1U << 4)

/* Generic Address Structure (table 5-25). */
#define ACPI_GAS_SYSTEM_IO 1
#define ACPI_GAS_ACCESS_BYTE 1

#define ACPI_MADT_PCAT_COMPAT (1U << 0)
#define ACPI_MADT_LAPIC_ENABLED (1U << 0)
#define ACPI_MADT_TYPE_LAPIC 0
#define ACPI_MADT_TYPE_IOAPIC 1
#define ACPI_MADT_TYPE_ISO 2
#define ACPI_MADT_TYPE_LAPIC_NMI 4
#define ACPI_MADT_ALL_PROCESSORS 0xff
#define ACPI_MADT_INTI_CONFORMS 0 /* polarity/trigger per bus spec */

#define ACPI_PIT_IRQ 0
#define ACPI_PIT_GSI 2
#define ACPI_LINT1 1

#define ACPI_RSDP_V1_LEN 20 /* bytes covered by the first checksum */

struct acpi_header {
	char signature[4];
	uint32_t length;
	uint8_t revision;
	uint8_t checksum;
	char oem_id[6];
	char oem_table_id[8];
	uint32_t oem_revision;
	char creator_id[4];
	uint32_t creator_revision;
} __attribute__((packed));
static_assert(sizeof(struct acpi_header) == 36, "ACPI table header");

struct acpi_rsdp {
	char signature[8];
	uint8_t checksum;
	char oem_id[6];
	uint8_t revision;
	uint32_t rsdt_address;
	uint32_t length;
	uint64_t xsdt_address;
	uint8_t ext_checksum;
	uint8_t reserved[3];
} __attribute__((packed));
static_assert(sizeof(struct acpi_rsdp) == 36, "RSDP");

struct acpi_gas {
	uint8_t space_id;
	uint8_t bit_width;
	uint8_t bit_offset;
	uint8_t access_size;
	uint64_t address;
} __attribute__((packed));
static_assert(sizeof(struct acpi_gas) == 12, "GAS");

struct acpi_fadt {
	struct acpi_header header;
	uint32_t firmware_ctrl;
	uint32_t dsdt;
	uint8_t reserved0;
	uint8_t preferred_pm_profile;
	uint16_t sci_int;
	uint32_t smi_cmd;
	uint8_t acpi_enable;
	uint8_t acpi_disable;
	uint8_t s4bios_req;
	uint8_t pstate_cnt;
	uint32_t pm1a_evt_blk;
	uint32_t pm1b_evt_blk;
	uint32_t pm1a_cnt_blk;
	uint32_t pm1b_cnt_blk;
	uint32_t pm2_cnt_blk;
	uint32_t pm_tmr_blk;
	uint32_t gpe0_blk;
	uint32_t gpe1_blk;
	uint8_t pm1_evt_len;
	uint8_t pm1_cnt_len;
	uint8_t pm2_cnt_len;
	uint8_t pm_tmr_len;
	uint8_t gpe0_blk_len;
	uint8_t gpe1_blk_len;
	uint8_t gpe1_base;
	uint8_t cst_cnt;
	uint16_t p_lvl2_lat;
	uint16_t p_lvl3_lat;
	uint16_t flush_size;
	uint16_t flush_stride;
	uint8_t duty_offset;
	uint8_t duty_width;
	uint8_t day_alrm;
	uint8_t mon_alrm;
	uint8_t century;
	uint16_t iapc_boot_arch;
	uint8_t reserved1;
	uint32_t flags;
	struct acpi_gas reset_reg;
	uint8_t reset_value;
	uint16_t arm_boot_arch;
	uint8_t minor_revision;
	uint64_t x_firmware_ctrl;
	uint64_t x_dsdt;
	struct acpi_gas x_pm1a_evt_blk;
	struct acpi_gas x_pm1b_evt_blk;
	struct acpi_gas x_pm1a_cnt_blk;
	struct acpi_gas x_pm1b_cnt_blk;
	struct acpi_gas x_pm2_cnt_blk;
	struct acpi_gas x_pm_tmr_blk;
	struct acpi_gas x_gpe0_blk;
	struct acpi_gas x_gpe1_blk;
	struct acpi_gas sleep_control_reg;
	struct acpi_gas sleep_status_reg;
	char hypervisor_vendor_id[8];
} __attribute__((packed));
static_assert(offsetof(struct acpi_fadt, iapc_boot_arch) == 109, "FADT IAPC_BOOT_ARCH");
static_assert(offsetof(struct acpi_fadt, flags) == 112, "FADT Flags");
static_assert(offsetof(struct acpi_fadt, reset_reg) == 116, "FADT RESET_REG");
static_assert(offsetof(struct acpi_fadt, minor_revision) == 131, "FADT minor version");
static_assert(offsetof(struct acpi_fadt, x_dsdt) == 140, "FADT X_DSDT");
static_assert(offsetof(struct acpi_fadt, sleep_control_reg) == 244, "FADT SLEEP_CONTROL_REG");
static_assert(offsetof(struct acpi_fadt, hypervisor_vendor_id) == 268, "FADT hypervisor ID");
static_assert(sizeof(struct acpi_fadt) == 276, "FADT revision 6");

struct acpi_madt {
	struct acpi_header header;
	uint32_t lapic_address;
	uint32_t flags;
} __attribute__((packed));

struct acpi_madt_lapic {
	uint8_t type;
	uint8_t length;
	uint8_t processor_uid;
	uint8_t apic_id;
	uint32_t flags;
} __attribute__((packed));
static_assert(sizeof(struct acpi_madt_lapic) == 8, "MADT LAPIC");

struct acpi_madt_ioapic {
	uint8_t type;
	uint8_t length;
	uint8_t ioapic_id;
	uint8_t reserved;
	uint32_t address;
	uint32_t gsi_base;
} __attribute__((packed));
static_assert(sizeof(struct acpi_madt_ioapic) == 12, "MADT I/O APIC");

struct acpi_madt_iso {
	uint8_t type;
	uint8_t length;
	uint8_t bus;
	uint8_t source;
	uint32_t gsi;
	uint16_t flags;
} __attribute__((packed));
static_assert(sizeof(struct acpi_madt_iso) == 10, "MADT interrupt source override");

struct acpi_madt_lapic_nmi {
	uint8_t type;
	uint8_t length;
	uint8_t processor_uid;
	uint16_t flags;
	uint8_t lint;
} __attribute__((packed));
static_assert(sizeof(struct acpi_madt_lapic_nmi) == 6, "MADT local APIC NMI");

struct acpi_mcfg {
	struct acpi_header header;
	uint64_t reserved;
} __attribute__((packed));
static_assert(sizeof(struct acpi_mcfg) == 44, "MCFG");

/* PCI Firmware spec 3.2, table 4-3: one ECAM region. */
struct acpi_mcfg_allocation {
	uint64_t base_address;
	uint16_t segment;
	uint8_t start_bus;
	uint8_t end_bus;
	uint32_t reserved;
} __attribute__((packed));
static_assert(sizeof(struct acpi_mcfg_allocation) == 16, "MCFG allocation");

#define ACPI_PCI_SLOTS 32
#define ACPI_PCI_PINS 4 /* INTA..INTD */

/* The output buffer and the tables the XSDT will list. */
struct acpi_builder {
	uint8_t *buf;
	size_t cap;
	size_t len;
	uint64_t base_gpa;
	uint64_t tables[ACPI_MAX_XSDT_ENTRIES];
	unsigned int ntables;
};

static uint8_t acpi_checksum(const uint8_t *p, size_t n)
{
	uint8_t sum = 0;

	for (size_t i = 0; i < n; i++)
		sum = (uint8_t)(sum + p[i]);
	return (uint8_t)(0 - sum);
}

/* Reserves size zeroed bytes, 16-byte aligned; returns the offset or -ENOSPC. */
static long acpi_alloc(struct acpi_builder *b, size_t size)
{
	size_t off = (b->len + ACPI_TABLE_ALIGN - 1) & ~(size_t)(ACPI_TABLE_ALIGN - 1);

	if (off > b->cap || size > b->cap - off)
		return -ENOSPC;
	memset(b->buf + b->len, 0, off + size - b->len);
	b->len = off + size;
	return (long)off;
}

static void acpi_header_init(struct acpi_header *h, const char *sig, uint32_t len, uint8_t rev)
{
	memset(h, 0, sizeof(*h));
	memcpy(h->signature, sig, 4);
	h->length = len;
	h->revision = rev;
	memcpy(h->oem_id, ACPI_OEM_ID, 6);
	memcpy(h->oem_table_id, "EMBR", 4);
	memcpy(h->oem_table_id + 4, sig, 4);
	h->oem_revision = ACPI_OEM_REVISION;
	memcpy(h->creator_id, ACPI_CREATOR_ID, 4);
	h->creator_revision = ACPI_CREATOR_REVISION;
}

/* Checksums the table at off (its header holds its length); lists it in the XSDT. */
static int acpi_finish(struct acpi_builder *b, size_t off, bool in_xsdt)
{
	uint32_t len;

	memcpy(&len, b->buf + off + offsetof(struct acpi_header, length), sizeof(len));
	b->buf[off + offsetof(struct acpi_header, checksum)] = acpi_checksum(b->buf + off, len);
	if (!in_xsdt)
		return 0;
	if (b->ntables == ACPI_MAX_XSDT_ENTRIES)
		return -ENOSPC;
	b->tables[b->ntables++] = b->base_gpa + off;
	return 0;
}

/* A legacy ISA device ember emulates, for Linux's PNP drivers. */
struct acpi_isa_dev {
	const char *name;
	const char *hid;
	int uid; /* -1: no _UID */
	int nports;
	uint16_t port[2];
	uint8_t port_len[2];
	uint8_t irq;
};

static const struct acpi_isa_dev acpi_isa_devs[] = {
    {"COM1", "PNP0501", 1, 1, {0x3f8}, {8}, LAYOUT_IRQ_COM1},
    /* i8042: data port first, then command/status, as Linux's PNP probe expects. */
    {"KBD", "PNP0303", -1, 2, {0x60, 0x64}, {1, 1}, LAYOUT_IRQ_KBD},
    {"RTC", "PNP0B00", -1, 1, {0x70}, {2}, LAYOUT_IRQ_RTC},
};

static void acpi_dsdt_isa_dev(struct aml *a, const struct acpi_isa_dev *d)
{
	struct aml_mark dev, crs;

	dev = aml_device_begin(a, d->name);
	aml_name_eisaid(a, "_HID", d->hid);
	if (d->uid >= 0)
		aml_name_integer(a, "_UID", (uint64_t)d->uid);
	aml_name(a, "_CRS");
	crs = aml_restemplate_begin(a);
	for (int i = 0; i < d->nports; i++)
		aml_res_io(a, d->port[i], d->port[i], 0, d->port_len[i]);
	aml_res_irq_noflags(a, d->irq);
	aml_end(a, crs);
	aml_end(a, dev);
}

static void acpi_dsdt_cpus(struct aml *a, uint32_t ncpus)
{
	for (uint32_t i = 0; i < ncpus; i++) {
		struct aml_mark dev;
		char name[8];

		snprintf(name, sizeof(name), "C%03X", i & 0xfff); /* ncpus <= 255 */
		dev = aml_device_begin(a, name);
		/* Linux's processor driver matches _UID to the MADT UID. */
		aml_name_string(a, "_HID", "ACPI0007");
		aml_name_integer(a, "_UID", i);
		aml_end(a, dev);
	}
}

/* _PRT: pin p of slot s -> GSI base + (s + p) % 8, the usual swizzle; INTA = slot % 8. */
static void acpi_dsdt_pci_prt(struct aml *a)
{
	struct aml_mark prt, entry;

	aml_name(a, "_PRT");
	prt = aml_package_begin(a, ACPI_PCI_SLOTS * ACPI_PCI_PINS);
	for (uint32_t slot = 0; slot < ACPI_PCI_SLOTS; slot++) {
		for (uint32_t pin = 0; pin < ACPI_PCI_PINS; pin++) {
			entry = aml_package_begin(a, 4);
			aml_integer(a, (uint64_t)slot << 16 | 0xffff); /* any function */
			aml_integer(a, pin);
			aml_integer(a, 0); /* Source: none, a GSI */
			aml_integer(a, LAYOUT_PCI_GSI_BASE + (slot + pin) % LAYOUT_PCI_GSI_COUNT);
			aml_end(a, entry);
		}
	}
	aml_end(a, prt);
}

/*
 * The PCI root bridge. Its interrupts need no MADT override: Linux gives a
 * GSI from a static _PRT entry level trigger and low polarity (the PCI
 * default in drivers/acpi/pci_irq.c) and programs the IOAPIC pin so.
 */
static void acpi_dsdt_pci(struct aml *a)
{
	struct aml_mark dev, crs;

	dev = aml_device_begin(a, "PCI0");
	aml_name_eisaid(a, "_HID", "PNP0A08"); /* PCI Express root bridge: ECAM */
	aml_name_eisaid(a, "_CID", "PNP0A03");
	aml_name_integer(a, "_SEG", 0);
	aml_name_integer(a, "_BBN", 0);
	aml_name_integer(a, "_UID", 0);
	aml_name(a, "_CRS");
	crs = aml_restemplate_begin(a);
	aml_res_word_bus(a, 0, 0);
	/* Consumed, not a window: Linux drops it from the bridge's windows. */
	aml_res_io(a, 0xcf8, 0xcf8, 1, 8);
	aml_res_dword_memory(a, (uint32_t)LAYOUT_PCI_MMIO_START,
			     (uint32_t)(LAYOUT_PCI_MMIO_END - 1));
	aml_end(a, crs);
	acpi_dsdt_pci_prt(a);
	aml_end(a, dev);

	/* Linux uses ECAM only inside an E820 or PNP0C01/PNP0C02 reservation. */
	dev = aml_device_begin(a, "MRES");
	aml_name_eisaid(a, "_HID", "PNP0C02");
	aml_name(a, "_CRS");
	crs = aml_restemplate_begin(a);
	aml_res_memory32_fixed(a, (uint32_t)LAYOUT_PCI_ECAM, (uint32_t)LAYOUT_PCI_ECAM_SIZE);
	aml_end(a, crs);
	aml_end(a, dev);
}

static void acpi_dsdt_aml(struct aml *a, const struct acpi_config *cfg)
{
	struct aml_mark pkg, sb;

	/* SLP_TYPa for the hardware-reduced sleep control register. */
	aml_name(a, "_S5");
	pkg = aml_package_begin(a, 4);
	aml_integer(a, LAYOUT_SLP_TYP_S5);
	aml_integer(a, 0);
	aml_integer(a, 0);
	aml_integer(a, 0);
	aml_end(a, pkg);

	sb = aml_scope_begin(a, "\\_SB");
	for (size_t i = 0; i < sizeof(acpi_isa_devs) / sizeof(acpi_isa_devs[0]); i++)
		acpi_dsdt_isa_dev(a, &acpi_isa_devs[i]);
	acpi_dsdt_cpus(a, cfg->ncpus);
	if (cfg->pci)
		acpi_dsdt_pci(a);
	aml_end(a, sb);
}

static int acpi_build_dsdt(struct acpi_builder *b, const struct acpi_config *cfg, uint64_t *gpa)
{
	struct acpi_header h;
	struct aml a;
	long off;

	off = acpi_alloc(b, sizeof(h));
	if (off < 0)
		return (int)off;
	aml_init(&a, b->buf + b->len, b->cap - b->len);
	acpi_dsdt_aml(&a, cfg);
	if (a.err)
		return a.err;
	b->len += a.len;
	acpi_header_init(&h, "DSDT", (uint32_t)(sizeof(h) + a.len), ACPI_DSDT_REVISION);
	memcpy(b->buf + off, &h, sizeof(h));
	*gpa = b->base_gpa + (uint64_t)off;
	return acpi_finish(b, (size_t)off, false);
}

static struct acpi_gas acpi_gas_io8(uint16_t port)
{
	return (struct acpi_gas){
	    .space_id = ACPI_GAS_SYSTEM_IO,
	    .bit_width = 8,
	    .access_size = ACPI_GAS_ACCESS_BYTE,
	    .address = port,
	};
}

static int acpi_build_fadt(struct acpi_builder *b, uint64_t dsdt_gpa)
{
	struct acpi_fadt f;
	long off;

	off = acpi_alloc(b, sizeof(f));
	if (off < 0)
		return (int)off;
	memset(&f, 0, sizeof(f));
	acpi_header_init(&f.header, "FACP", sizeof(f), ACPI_FADT_REVISION);
	f.minor_revision = ACPI_FADT_MINOR_REVISION;
	/*
	 * Only X_DSDT: ACPICA warns when DSDT and X_DSDT are both set and
	 * differ, and the spec says to ignore DSDT when X_DSDT is valid.
	 * FIRMWARE_CTRL stays 0: hardware-reduced ACPI has no FACS.
	 */
	f.x_dsdt = dsdt_gpa;
	f.flags = ACPI_FADT_F_WBINVD | ACPI_FADT_F_PWR_BUTTON | ACPI_FADT_F_SLP_BUTTON |
		  ACPI_FADT_F_RESET_REG_SUP | ACPI_FADT_F_HW_REDUCED_ACPI;
	/* i8042 and CMOS RTC exist; no VGA; no PCIe ASPM to manage. */
	f.iapc_boot_arch = ACPI_IAPC_LEGACY_DEVICES | ACPI_IAPC_8042 | ACPI_IAPC_VGA_NOT_PRESENT |
			   ACPI_IAPC_PCIE_ASPM_CONTROLS;
	f.reset_reg = acpi_gas_io8(0x64);
	f.reset_value = 0xfe; /* i8042 "pulse reset line" */
	f.sleep_control_reg = acpi_gas_io8(LAYOUT_PORT_SLEEP_CTL);
	f.sleep_status_reg = acpi_gas_io8(LAYOUT_PORT_SLEEP_STS);
	/*
	 * The PM timer in the legacy field only, for kvm-unit-tests (vmexit
	 * reads pm_tmr_blk): ACPICA copies legacy blocks to their X_ fields
	 * only without HW_REDUCED_ACPI, so Linux does not use it here.
	 */
	f.pm_tmr_blk = LAYOUT_PORT_PM_TMR;
	f.pm_tmr_len = 4;
	memcpy(f.hypervisor_vendor_id, ACPI_HYPERVISOR_ID, sizeof(f.hypervisor_vendor_id));
	memcpy(b->buf + off, &f, sizeof(f));
	return acpi_finish(b, (size_t)off, true);
}

static void acpi_put(struct acpi_builder *b, size_t *pos, const void *entry, size_t n)
{
	memcpy(b->buf + *pos, entry, n);
	*pos += n;
}

static int acpi_build_madt(struct acpi_builder *b, const struct acpi_config *cfg)
{
	struct acpi_madt m;
	struct acpi_madt_ioapic ioapic = {
	    .type = ACPI_MADT_TYPE_IOAPIC,
	    .length = sizeof(ioapic),
	    .ioapic_id = (uint8_t)cfg->ncpus, /* first ID no LAPIC uses */
	    .address = (uint32_t)LAYOUT_IOAPIC,
	    .gsi_base = 0,
	};
	struct acpi_madt_iso pit = {
	    .type = ACPI_MADT_TYPE_ISO,
	    .length = sizeof(pit),
	    .bus = 0, /* ISA */
	    .source = ACPI_PIT_IRQ,
	    .gsi = ACPI_PIT_GSI,
	    .flags = ACPI_MADT_INTI_CONFORMS,
	};
	struct acpi_madt_lapic_nmi nmi = {
	    .type = ACPI_MADT_TYPE_LAPIC_NMI,
	    .length = sizeof(nmi),
	    .processor_uid = ACPI_MADT_ALL_PROCESSORS,
	    .flags = ACPI_MADT_INTI_CONFORMS,
	    .lint = ACPI_LINT1,
	};
	size_t len = sizeof(m) + cfg->ncpus * sizeof(struct acpi_madt_lapic) + sizeof(ioapic) +
		     sizeof(pit) + sizeof(nmi);
	size_t pos;
	long off;

	off = acpi_alloc(b, len);
	if (off < 0)
		return (int)off;
	memset(&m, 0, sizeof(m));
	acpi_header_init(&m.header, "APIC", (uint32_t)len, ACPI_MADT_REVISION);
	m.lapic_address = (uint32_t)LAYOUT_LAPIC;
	m.flags = ACPI_MADT_PCAT_COMPAT;
	pos = (size_t)off;
	acpi_put(b, &pos, &m, sizeof(m));
	for (uint32_t i = 0; i < cfg->ncpus; i++) {
		struct acpi_madt_lapic lapic = {
		    .type = ACPI_MADT_TYPE_LAPIC,
		    .length = sizeof(lapic),
		    .processor_uid = (uint8_t)i,
		    .apic_id = (uint8_t)i,
		    .flags = ACPI_MADT_LAPIC_ENABLED,
		};

		acpi_put(b, &pos, &lapic, sizeof(lapic));
	}
	acpi_put(b, &pos, &ioapic, sizeof(ioapic));
	acpi_put(b, &pos, &pit, sizeof(pit));
	acpi_put(b, &pos, &nmi, sizeof(nmi));
	return acpi_finish(b, (size_t)off, true);
}

static int acpi_build_mcfg(struct acpi_builder *b)
{
	struct acpi_mcfg m;
	struct acpi_mcfg_allocation e = {
	    .base_address = LAYOUT_PCI_ECAM,
	    .segment = 0,
	    .start_bus = 0,
	    .end_bus = (uint8_t)(LAYOUT_PCI_ECAM_SIZE / (1U << 20) - 1), /* 1 MiB per bus */
	};
	long off;

	off = acpi_alloc(b, sizeof(m) + sizeof(e));
	if (off < 0)
		return (int)off;
	memset(&m, 0, sizeof(m));
	acpi_header_init(&m.header, "MCFG", sizeof(m) + sizeof(e), ACPI_MCFG_REVISION);
	memcpy(b->buf + off, &m, sizeof(m));
	memcpy(b->buf + off + sizeof(m), &e, sizeof(e));
	return acpi_finish(b, (size_t)off, true);
}

static int acpi_build_xsdt(struct acpi_builder *b, uint64_t *gpa)
{
	struct acpi_header h;
	size_t len = sizeof(h) + b->ntables * sizeof(uint64_t);
	long off;

	off = acpi_alloc(b, len);
	if (off < 0)
		return (int)off;
	acpi_header_init(&h, "XSDT", (uint32_t)len, ACPI_XSDT_REVISION);
	memcpy(b->buf + off, &h, sizeof(h));
	memcpy(b->buf + off + sizeof(h), b->tables, b->ntables * sizeof(uint64_t));
	*gpa = b->base_gpa + (uint64_t)off;
	return acpi_finish(b, (size_t)off, false);
}

/* No RSDT: Linux (ACPICA) uses the XSDT whenever RSDP revision >= 2. */
static void acpi_write_rsdp(struct acpi_builder *b, size_t off, uint64_t xsdt_gpa)
{
	struct acpi_rsdp r;

	memset(&r, 0, sizeof(r));
	memcpy(r.signature, "RSD PTR ", 8);
	memcpy(r.oem_id, ACPI_OEM_ID, 6);
	r.revision = ACPI_RSDP_REVISION;
	r.length = sizeof(r);
	r.xsdt_address = xsdt_gpa;
	r.checksum = acpi_checksum((const uint8_t *)&r, ACPI_RSDP_V1_LEN);
	r.ext_checksum = acpi_checksum((const uint8_t *)&r, sizeof(r));
	memcpy(b->buf + off, &r, sizeof(r));
}

static int acpi_check_config(uint64_t base_gpa, const struct acpi_config *cfg)
{
	if (cfg->ncpus < 1 || cfg->ncpus > ACPI_MAX_CPUS) {
		log_err("acpi: ncpus %u: must be 1..%d", cfg->ncpus, ACPI_MAX_CPUS);
		return -EINVAL;
	}
	if (base_gpa % ACPI_TABLE_ALIGN) {
		log_err("acpi: base address 0x%llx: must be %d-byte aligned",
			(unsigned long long)base_gpa, ACPI_TABLE_ALIGN);
		return -EINVAL;
	}
	return 0;
}

int acpi_build(uint8_t *buf, size_t cap, uint64_t base_gpa, const struct acpi_config *cfg,
	       uint64_t *rsdp_gpa)
{
	struct acpi_builder b = {.buf = buf, .cap = cap, .base_gpa = base_gpa};
	uint64_t dsdt_gpa = 0, xsdt_gpa = 0;
	long rsdp_off;
	int ret;

	ret = acpi_check_config(base_gpa, cfg);
	if (ret)
		return ret;
	rsdp_off = acpi_alloc(&b, sizeof(struct acpi_rsdp));
	ret = rsdp_off < 0 ? (int)rsdp_off : 0;
	if (!ret)
		ret = acpi_build_dsdt(&b, cfg, &dsdt_gpa);
	if (!ret)
		ret = acpi_build_fadt(&b, dsdt_gpa);
	if (!ret)
		ret = acpi_build_madt(&b, cfg);
	if (!ret && cfg->pci)
		ret = acpi_build_mcfg(&b);
	if (!ret)
		ret = acpi_build_xsdt(&b, &xsdt_gpa);
	if (ret)
		goto err_build;
	acpi_write_rsdp(&b, (size_t)rsdp_off, xsdt_gpa);
	*rsdp_gpa = base_gpa + (uint64_t)rsdp_off;
	return (int)b.len;

err_build:
	if (ret == -ENOSPC)
		log_err("acpi: tables for %u vCPUs do not fit in %zu bytes", cfg->ncpus, cap);
	else
		log_err("acpi: building tables: %s", strerror(-ret));
	return ret;
}
