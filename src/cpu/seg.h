/*
 * Segment loads, descriptor tables and far control transfers (seg.c), and
 * IRET (except.c). The core's handlers for FF /3 (call far m16:xx) and
 * FF /5 (jmp far m16:xx) call seg_far_call / seg_far_jmp; exec_sys.c
 * registers 9A, EA, CA, CB, CF and the segment-register instructions itself.
 */
#ifndef EMBER_CPU_SEG_H
#define EMBER_CPU_SEG_H

#include <stdbool.h>
#include <stdint.h>

#include "cpu/cpu.h"

/* A raw 8-byte descriptor's fields. */
static inline uint64_t desc_base(uint64_t d)
{
	return ((d >> 16) & 0xffffff) | ((d >> 32) & 0xff000000ULL);
}

static inline uint32_t desc_limit(uint64_t d)
{
	uint32_t l = (uint32_t)((d & 0xffff) | ((d >> 32) & 0xf0000));

	return (d & (1ULL << 55)) ? (l << 12) | 0xfff : l;
}

/* VMX-style access rights (struct cpu_seg.attr) of a descriptor. */
static inline uint32_t desc_attr(uint64_t d)
{
	return (uint32_t)((d >> 40) & 0xf0ff);
}

/*
 * Reads the descriptor `sel` names (GDT or LDT). Faults with `vector`
 * (EXC_GP or EXC_TS), error code sel & 0xfffc | ext, when the selector is
 * outside its table. Returns the 8 bytes.
 */
uint64_t seg_read_desc(struct cpu *cpu, uint16_t sel, int vector, uint32_t ext);
/* The upper 8 bytes of a 16-byte system descriptor (long mode). */
uint64_t seg_read_desc_hi(struct cpu *cpu, uint16_t sel, int vector, uint32_t ext);
/* Sets the accessed bit of the descriptor in memory if clear. */
void seg_set_accessed(struct cpu *cpu, uint16_t sel, uint64_t *desc);

/* Fills a hidden segment register from a descriptor. */
void seg_cache_from_desc(struct cpu_seg *s, uint16_t sel, uint64_t desc);

/*
 * MOV/POP to a segment register and LDS..LGS: every mode's checks and
 * faults. SS loads also set cpu->intr_shadow. CS is not loadable this way.
 */
void seg_load(struct cpu *cpu, int sreg, uint16_t sel);
/* Real-mode / v86 style load: base = sel << 4. */
void seg_load_real(struct cpu *cpu, int sreg, uint16_t sel);

/* Far transfers. opsize: 2, 4 or 8 (operand size of the instruction). */
void seg_far_jmp(struct cpu *cpu, uint16_t sel, uint64_t off, unsigned opsize);
void seg_far_call(struct cpu *cpu, uint16_t sel, uint64_t off, unsigned opsize);
void seg_far_ret(struct cpu *cpu, unsigned opsize, uint16_t pop_bytes);
/* IRET/IRETD/IRETQ (except.c). */
void cpu_iret(struct cpu *cpu, unsigned opsize);

/*
 * A stack being built or read by far transfers, interrupt delivery and
 * IRET: pushes and pops are checked (limit / canonical: #SS(fault_sel)) and
 * written at privilege `cpl`, and only stk_commit() makes them visible in
 * SS:RSP, so a fault half-way leaves the registers as they were.
 */
struct stack_ctx {
	struct cpu_seg ss;
	uint64_t sp;
	unsigned bits; /* 16, 32 or 64: stack pointer width */
	unsigned cpl;
	uint16_t fault_sel;
};
void stk_current(struct cpu *cpu, struct stack_ctx *s);
void stk_push(struct cpu *cpu, struct stack_ctx *s, uint64_t v, unsigned size);
uint64_t stk_pop(struct cpu *cpu, struct stack_ctx *s, unsigned size);
void stk_commit(struct cpu *cpu, const struct stack_ctx *s);

/* A privilege change made some data segments inaccessible: null them
 * (far ret / iret to an outer level). */
void seg_null_invalid(struct cpu *cpu);

#endif
