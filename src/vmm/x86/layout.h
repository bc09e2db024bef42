/*
 * The guest-physical memory map ember builds on x86-64. One place for every
 * fixed address so loaders, ACPI and the e820 map agree.
 *
 *   0x0000_0000  real-mode IVT + BDA (RAM)
 *   0x0000_0500  GDT for the boot vCPU
 *   0x0000_6000  PVH hvm_start_info, then its memory map and module list
 *   0x0000_7000  bzImage boot_params ("zero page")
 *   0x0000_9000  boot page tables: PML4, PDPT, 4 PDs (identity, 0-4 GiB, 2 MiB pages)
 *   0x0002_0000  kernel command line (up to LAYOUT_CMDLINE_MAX bytes)
 *   0x0009_fc00  EBDA (reserved) .. 0xa0000
 *   0x000e_0000  ACPI tables, RSDP first (reserved) .. 0x100000
 *   0x0010_0000  kernel
 *   ...          initrd at the top of low RAM, below initrd_addr_max
 *   0xc000_0000  32-bit hole for devices (LAYOUT_LOWMEM_END .. 4 GiB):
 *                0xc000_0000 .. 0xe000_0000 PCI BARs (32-bit memory window)
 *                0xe000_0000 .. 0xe010_0000 PCI ECAM, bus 0 (MCFG)
 *   0xfec0_0000  IOAPIC
 *   0xfee0_0000  local APICs
 *   0x1_0000_0000 RAM above 3 GiB continues here
 */
#ifndef EMBER_VMM_X86_LAYOUT_H
#define EMBER_VMM_X86_LAYOUT_H

#define LAYOUT_GDT 0x500ULL
#define LAYOUT_PVH_START_INFO 0x6000ULL
#define LAYOUT_PVH_END 0x7000ULL
#define LAYOUT_ZERO_PAGE 0x7000ULL
#define LAYOUT_PML4 0x9000ULL
#define LAYOUT_PDPT 0xa000ULL
#define LAYOUT_PD 0xb000ULL /* 4 pages: 0xb000 .. 0xefff */
#define LAYOUT_CMDLINE 0x20000ULL
#define LAYOUT_CMDLINE_MAX 0x10000ULL
#define LAYOUT_EBDA_START 0x9fc00ULL
#define LAYOUT_ACPI_START 0xe0000ULL
#define LAYOUT_ACPI_END 0x100000ULL
#define LAYOUT_KERNEL_START 0x100000ULL
#define LAYOUT_LOWMEM_END 0xc0000000ULL
#define LAYOUT_PCI_MMIO_START 0xc0000000ULL
#define LAYOUT_PCI_MMIO_END 0xe0000000ULL
#define LAYOUT_PCI_ECAM 0xe0000000ULL
#define LAYOUT_PCI_ECAM_SIZE 0x100000ULL /* bus 0 only */
/* PCI INTx lines: IOAPIC pins 16..23, level-triggered, active low (as on q35). */
#define LAYOUT_PCI_GSI_BASE 16
#define LAYOUT_PCI_GSI_COUNT 8
#define LAYOUT_IOAPIC 0xfec00000ULL
#define LAYOUT_LAPIC 0xfee00000ULL
#define LAYOUT_HIGHMEM_START 0x100000000ULL

/* KVM's private pages for VMX (TSS, identity map); outside RAM, in the hole. */
#define LAYOUT_KVM_IDENTITY_MAP 0xfeffc000ULL
#define LAYOUT_KVM_TSS 0xfeffd000ULL

/* I/O ports of ember's own ACPI sleep registers (hardware-reduced ACPI). */
#define LAYOUT_PORT_SLEEP_CTL 0x600
#define LAYOUT_PORT_SLEEP_STS 0x601
#define LAYOUT_SLP_TYP_S5 5
/* ACPI PM timer (24-bit, 3.579545 MHz), in the FADT's legacy PM_TMR_BLK. */
#define LAYOUT_PORT_PM_TMR 0x608

/* Legacy ISA interrupts. */
#define LAYOUT_IRQ_KBD 1
#define LAYOUT_IRQ_COM1 4
#define LAYOUT_IRQ_RTC 8

#endif
