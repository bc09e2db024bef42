/* Helpers shared by the integer instruction handlers (exec_alu.c, exec_ctrl.c, ...). */
#ifndef EMBER_CPU_EXEC_INT_H
#define EMBER_CPU_EXEC_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "cpu/cpu.h"
#include "cpu/decode.h"
#include "cpu/flags.h"
#include "cpu/insn.h"
#include "cpu/mem.h"
#include "cpu/mmu.h"

#define HANDLER(name) static void name(struct cpu *cpu, const struct insn *in)

/* Registration: every mandatory-prefix slot of an opcode (integer opcodes
 * ignore 66/F3/F2 as a selector). */
static inline void reg_op(unsigned map, unsigned op, insn_handler fn)
{
	for (int p = 0; p < 4; p++)
		cpu_dispatch[map][op][p] = fn;
}

/* General registers by operand size (2, 4, 8); 32-bit writes zero-extend. */
static inline uint64_t reg_read(const struct cpu *cpu, unsigned r, unsigned size)
{
	return cpu->gpr[r] & sz_mask(size);
}

static inline void reg_write(struct cpu *cpu, unsigned r, uint64_t v, unsigned size)
{
	if (size == 8)
		cpu->gpr[r] = v;
	else if (size == 4)
		cpu->gpr[r] = (uint32_t)v;
	else if (size == 2)
		cpu->gpr[r] = (cpu->gpr[r] & ~0xffffULL) | (v & 0xffff);
	else
		cpu->gpr[r] = (cpu->gpr[r] & ~0xffULL) | (v & 0xff);
}

/* Byte registers: AH..BH for 4..7 unless a REX prefix is present. */
static inline uint64_t greg_read(const struct cpu *cpu, const struct insn *in, unsigned r,
				 unsigned size)
{
	if (size == 1) {
		if (r < 4 || (in->pfx & PFX_REX))
			return (uint8_t)cpu->gpr[r];
		return (uint8_t)(cpu->gpr[r - 4] >> 8);
	}
	return reg_read(cpu, r, size);
}

static inline void greg_write(struct cpu *cpu, const struct insn *in, unsigned r, uint64_t v,
			      unsigned size)
{
	if (size == 1 && r >= 4 && r < 8 && !(in->pfx & PFX_REX)) {
		uint64_t *g = &cpu->gpr[r - 4];
		*g = (*g & ~0xff00ULL) | ((v & 0xff) << 8);
		return;
	}
	reg_write(cpu, r, v, size);
}

static inline uint64_t ea_of(const struct cpu *cpu, const struct insn *in)
{
	return insn_ea_inline(cpu, in);
}

/*
 * Host pointers for data accesses the TLB allows directly, in 64-bit code
 * (no limits; only FS/GS have a base): NULL sends the access down the full
 * path in mmu.c. A tag match implies a canonical page.
 */
static inline uint64_t fast_lin(const struct cpu *cpu, int seg, uint64_t off)
{
	return off + ((seg == SEG_FS || seg == SEG_GS) ? cpu->seg[seg].base : 0);
}

static inline void *fast_r(struct cpu *cpu, int seg, uint64_t off, unsigned size)
{
	return cpu->code_bits == 64 ? mmu_fast_r(cpu, fast_lin(cpu, seg, off), size) : NULL;
}

static inline void *fast_w(struct cpu *cpu, int seg, uint64_t off, unsigned size)
{
	return cpu->code_bits == 64 ? mmu_fast_w(cpu, fast_lin(cpu, seg, off), size) : NULL;
}

static inline uint64_t load_sz(const void *p, unsigned size)
{
	switch (size) {
	case 1: return *(const uint8_t *)p;
	case 2: { uint16_t v; memcpy(&v, p, 2); return v; }
	case 4: { uint32_t v; memcpy(&v, p, 4); return v; }
	default: { uint64_t v; memcpy(&v, p, 8); return v; }
	}
}

static inline void store_sz(void *p, uint64_t v, unsigned size)
{
	switch (size) {
	case 1: *(uint8_t *)p = (uint8_t)v; break;
	case 2: { uint16_t x = (uint16_t)v; memcpy(p, &x, 2); break; }
	case 4: { uint32_t x = (uint32_t)v; memcpy(p, &x, 4); break; }
	default: memcpy(p, &v, 8); break;
	}
}

static inline uint64_t mem_read(struct cpu *cpu, int seg, uint64_t off, unsigned size)
{
	void *p = fast_r(cpu, seg, off, size);
	return p ? load_sz(p, size) : cpu_read_sz(cpu, seg, off, size);
}

static inline void mem_write(struct cpu *cpu, int seg, uint64_t off, uint64_t v, unsigned size)
{
	void *p = fast_w(cpu, seg, off, size);
	if (p)
		store_sz(p, v, size);
	else
		cpu_write_sz(cpu, seg, off, v, size);
}

static inline uint64_t rm_read(struct cpu *cpu, const struct insn *in, unsigned size)
{
	if (in->mod == 3)
		return greg_read(cpu, in, in->rm, size);
	return mem_read(cpu, in->ea_seg, ea_of(cpu, in), size);
}

static inline void rm_write(struct cpu *cpu, const struct insn *in, uint64_t v, unsigned size)
{
	if (in->mod == 3)
		greg_write(cpu, in, in->rm, v, size);
	else
		mem_write(cpu, in->ea_seg, ea_of(cpu, in), v, size);
}

/* Operand size of opcodes whose bit 0 selects byte vs. full size. */
static inline unsigned size_w(const struct insn *in)
{
	return (in->op & 1) ? in->opsize : 1;
}

/* Read-modify-write operations (locked when LOCK is present). */
enum {
	RMW_ADD, RMW_OR, RMW_ADC, RMW_SBB, RMW_AND, RMW_SUB, RMW_XOR, RMW_CMP,
	RMW_NOT, RMW_NEG, RMW_INC, RMW_DEC, RMW_XADD, RMW_XCHG, RMW_BTS, RMW_BTR, RMW_BTC,
};

static inline uint64_t rmw_calc(unsigned op, uint64_t d, uint64_t s, bool c, uint64_t m)
{
	switch (op) {
	case RMW_ADD: case RMW_XADD: return (d + s) & m;
	case RMW_OR: case RMW_BTS: return d | s;
	case RMW_ADC: return (d + s + c) & m;
	case RMW_SBB: return (d - s - c) & m;
	case RMW_AND: return d & s;
	case RMW_SUB: case RMW_CMP: return (d - s) & m;
	case RMW_XOR: case RMW_BTC: return d ^ s;
	case RMW_NOT: return ~d & m;
	case RMW_NEG: return -d & m;
	case RMW_INC: return (d + 1) & m;
	case RMW_DEC: return (d - 1) & m;
	case RMW_XCHG: return s;
	case RMW_BTR: return d & ~s;
	}
	return d;
}

/* Memory read-modify-write at in->ea_seg:ea; returns the old value, *res the new. */
uint64_t rmw_mem(struct cpu *cpu, const struct insn *in, uint64_t ea, unsigned size, unsigned op,
		 uint64_t s, bool c, uint64_t *res);

/* Near branch target, truncated to the operand size (16/32) as the CPU does. */
static inline void branch_to(struct cpu *cpu, uint64_t target, unsigned opsize)
{
	/* A non-canonical target faults on the branch (#GP), not on the fetch. */
	if (opsize == 8 && __builtin_expect(!mmu_canonical(target), 0))
		cpu_fault(cpu, EXC_GP, 0);
	cpu->next_rip = opsize == 8 ? target : (opsize == 4 ? (uint32_t)target : (uint16_t)target);
}

/* Stack pointer width in bytes (SS.B or long mode). */
static inline unsigned stack_size(const struct cpu *cpu)
{
	if (cpu->code_bits == 64)
		return 8;
	return (cpu->seg[SEG_SS].attr & SEG_ATTR_DB) ? 4 : 2;
}

/* FF /0 /1 (exec_alu.c), for the group-5 handler (exec_ctrl.c). */
void exec_grp5_incdec(struct cpu *cpu, const struct insn *in);

void exec_alu_register(void);
void exec_ctrl_register(void);
void exec_string_register(void);
void exec_misc_register(void);

#endif
