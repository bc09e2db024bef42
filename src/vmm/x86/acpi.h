/*
 * ACPI tables for x86 guests booted without firmware: RSDP, XSDT, FADT
 * (hardware-reduced ACPI), DSDT and MADT, built into one buffer that the
 * caller copies to guest-physical base_gpa (LAYOUT_ACPI_START).
 */
#ifndef EMBER_VMM_X86_ACPI_H
#define EMBER_VMM_X86_ACPI_H

#include <stddef.h>
#include <stdint.h>

/* APIC IDs 0..ncpus-1 fit xAPIC (8 bits, 0xff is broadcast). */
#define ACPI_MAX_CPUS 255

#define ACPI_OEM_ID "EMBER "
#define ACPI_HYPERVISOR_ID "EMBERVMM"

struct acpi_config {
	uint32_t ncpus; /* 1..ACPI_MAX_CPUS; APIC ID = ACPI UID = index */
			/*
			 * To add PCI ECAM later: ecam_base, bus_start, bus_end here, an
			 * acpi_build_mcfg() in acpi.c, and one more acpi_add_table() call.
			 */
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
