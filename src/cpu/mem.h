/*
 * Guest memory as instructions see it: segmentation, paging through the
 * software TLB, RAM or MMIO (mmu.c, seg.c). Every function that can fault
 * calls cpu_fault()/cpu_fault_pf() and does not return then.
 *
 * seg is SEG_* (the instruction's effective segment, insn.ea_seg); off the
 * offset within it (already truncated to the address size by the caller).
 * The access is made at the current CPL. Unaligned and page-crossing
 * accesses work (a page-crossing write checks both pages before writing
 * either). len is 1, 2, 4, 8, 10 or 16 for the sized helpers; any length
 * up to 4096 for cpu_read/cpu_write.
 */
#ifndef EMBER_CPU_MEM_H
#define EMBER_CPU_MEM_H

#include <stdbool.h>
#include <stdint.h>

#include "cpu/cpu.h"

/* Segment checks (limit, type, canonical form) -> linear address. */
uint64_t cpu_linear(struct cpu *cpu, int seg, uint64_t off, unsigned len, bool write);

void cpu_read(struct cpu *cpu, int seg, uint64_t off, void *dst, unsigned len);
void cpu_write(struct cpu *cpu, int seg, uint64_t off, const void *src, unsigned len);

uint8_t cpu_read8(struct cpu *cpu, int seg, uint64_t off);
uint16_t cpu_read16(struct cpu *cpu, int seg, uint64_t off);
uint32_t cpu_read32(struct cpu *cpu, int seg, uint64_t off);
uint64_t cpu_read64(struct cpu *cpu, int seg, uint64_t off);
void cpu_write8(struct cpu *cpu, int seg, uint64_t off, uint8_t v);
void cpu_write16(struct cpu *cpu, int seg, uint64_t off, uint16_t v);
void cpu_write32(struct cpu *cpu, int seg, uint64_t off, uint32_t v);
void cpu_write64(struct cpu *cpu, int seg, uint64_t off, uint64_t v);
/* By size in bytes (1, 2, 4, 8): zero-extended. */
uint64_t cpu_read_sz(struct cpu *cpu, int seg, uint64_t off, unsigned size);
void cpu_write_sz(struct cpu *cpu, int seg, uint64_t off, uint64_t v, unsigned size);

/*
 * Host pointer to `len` bytes at seg:off for a read-modify-write (checked
 * for writing; dirty bit set), or NULL when the operand is not in RAM or
 * crosses a page: the caller then falls back to read + write under
 * cpu_lock_slow(). Locked instructions use __atomic builtins on the pointer.
 */
void *cpu_rmw_ptr(struct cpu *cpu, int seg, uint64_t off, unsigned len);
void cpu_lock_slow(struct cpu *cpu);
void cpu_unlock_slow(struct cpu *cpu);

/* Linear-address accesses (descriptor tables, TSS, IDT: supervisor=true
 * makes them implicit supervisor accesses, as the SDM specifies). */
void cpu_read_lin(struct cpu *cpu, uint64_t lin, void *dst, unsigned len, bool supervisor);
void cpu_write_lin(struct cpu *cpu, uint64_t lin, const void *src, unsigned len,
		   bool supervisor);

/*
 * Instruction fetch: a host pointer to the code at linear `lin` and how many
 * bytes are valid from it up to the end of its page; the guest-physical
 * address in *gpa. Faults (#PF with the fetch bit, #GP) as the CPU would.
 */
const uint8_t *cpu_fetch_ptr(struct cpu *cpu, uint64_t lin, unsigned *avail, uint64_t *gpa);

/*
 * Page walk without side effects (no fault, no A/D bits) for the monitor's
 * crash reports and debugging: 0 and *gpa, or -1 when not mapped.
 */
int cpu_translate(struct cpu *cpu, uint64_t lin, uint64_t *gpa);

/* Stack helpers at the current stack size (SS.B / long mode). */
void cpu_push(struct cpu *cpu, uint64_t v, unsigned size);
uint64_t cpu_pop(struct cpu *cpu, unsigned size);

#endif
