/*
 * PCI bus 0 for the virtio checks: configuration space through ECAM (base
 * from the ACPI MCFG table) or, without an MCFG, mechanism #1 (ports
 * 0xcf8/0xcfc); function 0 of each device only; memory BARs used where the
 * firmware or monitor put them, or placed here when they read 0.
 */
#include "guest.h"

#define PCI_ADDR_PORT 0xcf8
#define PCI_DATA_PORT 0xcfc
#define PCI_COMMAND 0x04
#define PCI_BAR0 0x10
#define PCI_CMD_MEM 0x0002
#define PCI_CMD_MASTER 0x0004
#define PCI_CMD_INTX_OFF 0x0400
#define BAR_IO 0x1
#define BAR_TYPE_MASK 0x6
#define BAR_TYPE_64 0x4
#define MCFG_ENTRIES 44 /* header 36 + 8 reserved */
/* ember's 32-bit BAR window (src/vmm/x86/layout.h); used when a BAR is 0. */
#define PCI_WIN_START 0xc0000000ull
#define PCI_WIN_END 0xe0000000ull

static uint32_t rd32(uint64_t a)
{
	uint32_t v;

	memcpy(&v, phys(a), 4);
	return v;
}

static uint64_t rd64(uint64_t a)
{
	uint64_t v;

	memcpy(&v, phys(a), 8);
	return v;
}

/* An ACPI table by signature from the XSDT (or RSDT); acpi.c checked them. */
static uint64_t acpi_table(uint64_t rsdp, const char *sig)
{
	if (!rsdp)
		return 0;
	bool x = *(const uint8_t *)phys(rsdp + 15) >= 2 && rd64(rsdp + 24);
	uint64_t sdt = x ? rd64(rsdp + 24) : rd32(rsdp + 16);
	unsigned int esize = x ? 8 : 4;

	if (!sdt || !phys_ok(sdt, 36))
		return 0;
	for (uint32_t off = 36; off + esize <= rd32(sdt + 4); off += esize) {
		uint64_t t = esize == 8 ? rd64(sdt + off) : rd32(sdt + off);

		if (t && phys_ok(t, 36) && !memcmp(phys(t), sig, 4))
			return t;
	}
	return 0;
}

/* The MCFG allocation for segment 0 covering bus 0. */
static uint64_t mcfg_ecam(uint64_t rsdp)
{
	uint64_t m = acpi_table(rsdp, "MCFG");

	if (!m)
		return 0;
	for (uint64_t e = m + MCFG_ENTRIES; e + 16 <= m + rd32(m + 4); e += 16) {
		uint16_t seg = *(const uint16_t *)phys(e + 8);
		uint8_t start = *(const uint8_t *)phys(e + 10);

		if (seg == 0 && start == 0)
			return rd64(e);
	}
	return 0;
}

uint32_t pci_read32(const struct pci_bus *pb, uint8_t dev, uint16_t off)
{
	if (pb->ecam)
		return mmio_read32(pb->ecam + ((uint64_t)dev << 15) + (off & 0xffc));
	outl(PCI_ADDR_PORT, 0x80000000u | (uint32_t)dev << 11 | (off & 0xfc));
	return inl(PCI_DATA_PORT);
}

void pci_write32(const struct pci_bus *pb, uint8_t dev, uint16_t off, uint32_t v)
{
	if (pb->ecam) {
		mmio_write32(pb->ecam + ((uint64_t)dev << 15) + (off & 0xffc), v);
		return;
	}
	outl(PCI_ADDR_PORT, 0x80000000u | (uint32_t)dev << 11 | (off & 0xfc));
	outl(PCI_DATA_PORT, v);
}

uint8_t pci_read8(const struct pci_bus *pb, uint8_t dev, uint16_t off)
{
	return (uint8_t)(pci_read32(pb, dev, off) >> (off & 3) * 8);
}

uint16_t pci_read16(const struct pci_bus *pb, uint8_t dev, uint16_t off)
{
	return (uint16_t)(pci_read32(pb, dev, off) >> (off & 2) * 8);
}

/* Read-modify-write of the dword: fine for the registers used here (command). */
void pci_write16(const struct pci_bus *pb, uint8_t dev, uint16_t off, uint16_t v)
{
	unsigned int sh = (off & 2) * 8;
	uint32_t d = pci_read32(pb, dev, off);

	d = (d & ~(0xffffu << sh)) | (uint32_t)v << sh;
	if (off == PCI_COMMAND)
		d &= 0xffff; /* the status half is write-1-to-clear */
	pci_write32(pb, dev, off, d);
}

void pci_init(struct pci_bus *pb, uint64_t rsdp)
{
	pb->ecam = mcfg_ecam(rsdp);
	if (pb->ecam && !phys_ok(pb->ecam, 1u << 20)) {
		gfail("virtio pci ecam 0x%lx not addressable", pb->ecam);
		pb->ecam = 0;
	}
	pb->win_next = PCI_WIN_START;
	pb->win_end = PCI_WIN_END;
	pb->nfn = 0;
	for (unsigned int d = 0; d < 32 && pb->nfn < PCI_MAX_FNS; d++) {
		uint32_t id = pci_read32(pb, (uint8_t)d, 0);

		if ((id & 0xffff) == 0xffff || (id & 0xffff) == 0)
			continue;
		pb->fn[pb->nfn++] = (struct pci_fn){
		    .dev = (uint8_t)d, .vendor = (uint16_t)id, .device = (uint16_t)(id >> 16)};
	}
}

/* Sizes a memory BAR and places it in the window; returns its address or 0. */
static uint64_t bar_assign(struct pci_bus *pb, uint8_t dev, uint16_t off, bool is64)
{
	uint32_t lo = pci_read32(pb, dev, off), hi_old = is64 ? pci_read32(pb, dev, off + 4) : 0;
	uint64_t size, addr;

	pci_write32(pb, dev, off, ~0u);
	size = ~(uint64_t)(pci_read32(pb, dev, off) & ~0xfu) + 1;
	size &= 0xffffffffull;
	pci_write32(pb, dev, off, lo);
	if (is64)
		pci_write32(pb, dev, off + 4, hi_old);
	if (!size)
		return 0;
	addr = (pb->win_next + size - 1) & ~(size - 1);
	if (addr + size > pb->win_end)
		return 0;
	pb->win_next = addr + size;
	pci_write32(pb, dev, off, (uint32_t)addr | (lo & 0xf));
	if (is64)
		pci_write32(pb, dev, off + 4, 0);
	return addr;
}

uint64_t pci_bar(struct pci_bus *pb, uint8_t dev, unsigned int bar)
{
	uint16_t off = (uint16_t)(PCI_BAR0 + bar * 4);
	uint32_t lo = pci_read32(pb, dev, off);
	bool is64 = (lo & BAR_TYPE_MASK) == BAR_TYPE_64;
	uint64_t addr = lo & ~0xfull;

	if (bar > 5 || (lo & BAR_IO) || (is64 && bar == 5))
		return 0;
	if (is64)
		addr |= (uint64_t)pci_read32(pb, dev, off + 4) << 32;
	/* Memory decoding off while a BAR moves, then on, with bus mastering. */
	uint16_t cmd = pci_read16(pb, dev, PCI_COMMAND);

	if (!addr || !phys_ok(addr, 4096)) {
		pci_write16(pb, dev, PCI_COMMAND, cmd & ~PCI_CMD_MEM);
		addr = bar_assign(pb, dev, off, is64);
	}
	pci_write16(pb, dev, PCI_COMMAND, cmd | PCI_CMD_MEM | PCI_CMD_MASTER | PCI_CMD_INTX_OFF);
	return addr;
}
