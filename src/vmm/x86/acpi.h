/*
 * ACPI tables for x86 guests booted without firmware: RSDP, XSDT, FADT
 * (hardware-reduced ACPI), DSDT and MADT, plus MCFG when the board has a
 * PCI bus, built into one buffer that the caller copies to guest-physical
 * base_gpa (LAYOUT_ACPI_START).
 *
 * The XSDT lists FACP and APIC, then MCFG with pci. With pci the DSDT also
 * describes the PCI root bridge \_SB.PCI0 (PNP0A08/PNP0A03: bus 0, ports
 * 0xcf8-0xcff, the BAR window LAYOUT_PCI_MMIO_START..END-1, a _PRT routing
 * INTA-INTD of every slot to GSIs LAYOUT_PCI_GSI_BASE..+7) and reserves the
 * ECAM window as a motherboard resource (\_SB.MRES, PNP0C02), which Linux
 * requires before it uses ECAM.
 */
#ifndef EMBER_VMM_X86_ACPI_H
#define EMBER_VMM_X86_ACPI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* APIC IDs 0..ncpus-1 fit xAPIC (8 bits, 0xff is broadcast). */
#define ACPI_MAX_CPUS 255

#define ACPI_OEM_ID "EMBER "
#define ACPI_HYPERVISOR_ID "EMBERVMM"

struct acpi_config {
	uint32_t ncpus; /* 1..ACPI_MAX_CPUS; APIC ID = ACPI UID = index */
	bool pci;	/* PCI bus 0 at the addresses of x86/layout.h: MCFG + \_SB.PCI0 */
};

/*
 * Builds the tables into buf[0..cap), laid out for guest-physical base_gpa
 * (16-byte aligned): the RSDP first, at base_gpa, then the other tables.
 * Returns the number of bytes used, -EINVAL for a bad config (logged) or
 * -ENOSPC when cap is too small. On success *rsdp_gpa = base_gpa.
 */
int acpi_build(uint8_t *buf, size_t cap, uint64_t base_gpa, const struct acpi_config *cfg,
	       uint64_t *rsdp_gpa);

#endif
