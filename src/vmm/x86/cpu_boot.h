/*
 * Boot vCPU state for the two entry protocols: Linux's 64-bit boot protocol
 * (long mode, identity-mapped, RSI = zero page) and PVH (32-bit protected
 * mode, paging off, EBX = hvm_start_info). Also the state every vCPU gets:
 * FPU and local APIC LINT pins as firmware leaves them.
 */
#ifndef EMBER_VMM_X86_CPU_BOOT_H
#define EMBER_VMM_X86_CPU_BOOT_H

#include <stdbool.h>
#include <stdint.h>

#include "vmm/memory.h"

struct vcpu;

#define BOOT_GDT_CS 0x10 /* __BOOT_CS in Linux's boot protocol */
#define BOOT_GDT_DS 0x18 /* __BOOT_DS */
#define BOOT_GDT_TSS 0x20

/* Writes the GDT and (for long mode) identity page tables for 0-4 GiB. */
int cpu_boot_tables(const struct guest_mem *mem, bool long_mode);

/* Registers of the boot vCPU (eax: the multiboot magic, else 0). 0 or -errno. */
int cpu_boot_regs(struct vcpu *vcpu, bool long_mode, uint64_t entry, uint64_t boot_info,
		  uint32_t eax);

/* FPU at its reset values, LAPIC LINT0 = ExtINT, LINT1 = NMI. Every vCPU. */
int cpu_init_common(int vcpu_fd);

#endif
