/*
 * mmu.c internals shared with seg.c, except.c and exec_sys.c, and inline
 * fast paths for the hot memory helpers (the mem.h functions stay callable).
 */
#ifndef EMBER_CPU_MMU_H
#define EMBER_CPU_MMU_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "cpu/cpu.h"
#include "cpu/mem.h"

/* The physical-address width the page walker assumes (reserved bits above
 * it): the env's CPUID leaf 0x80000008 should report the same. */
#define MMU_PHYS_BITS 46

/* Page-fault error code bits. */
#define PF_P 0x1u
#define PF_W 0x2u
#define PF_U 0x4u
#define PF_RSVD 0x8u
#define PF_I 0x10u

static inline bool mmu_canonical(uint64_t lin)
{
	return (uint64_t)((int64_t)(lin << 16) >> 16) == lin;
}

static inline struct tlb_entry *mmu_tlb_entry(struct cpu *cpu, bool user, uint64_t lin)
{
	return &cpu->tlb[user][(lin >> 12) & (TLB_SIZE - 1)];
}

/* Host pointer for `len` bytes at linear lin when the TLB allows the access
 * fast (same page, tag matches), else NULL. */
static inline void *mmu_fast_r(struct cpu *cpu, uint64_t lin, unsigned len)
{
	const struct tlb_entry *e = mmu_tlb_entry(cpu, cpu->cpl == 3, lin);

	if (e->tag_r == (lin & ~0xfffULL) && (lin & 0xfff) + len <= 4096)
		return (void *)(e->addend + (uintptr_t)lin);
	return NULL;
}

static inline void *mmu_fast_w(struct cpu *cpu, uint64_t lin, unsigned len)
{
	const struct tlb_entry *e = mmu_tlb_entry(cpu, cpu->cpl == 3, lin);

	if (e->tag_w == (lin & ~0xfffULL) && (lin & 0xfff) + len <= 4096)
		return (void *)(e->addend + (uintptr_t)lin);
	return NULL;
}

/* Whether the current code segment runs in 64-bit mode. */
static inline bool cpu_is64(const struct cpu *cpu)
{
	return cpu->code_bits == 64;
}

/* cpu_linear with the 64-bit case inline. */
static inline uint64_t mmu_linear(struct cpu *cpu, int seg, uint64_t off, unsigned len, bool write)
{
	if (__builtin_expect(cpu->code_bits == 64, 1)) {
		uint64_t lin = off + ((seg == SEG_FS || seg == SEG_GS) ? cpu->seg[seg].base : 0);

		if (__builtin_expect(mmu_canonical(lin) && mmu_canonical(lin + len - 1), 1))
			return lin;
	}
	return cpu_linear(cpu, seg, off, len, write);
}

/*
 * Inline versions of cpu_read8..64 / cpu_write8..64 (same semantics): the
 * TLB hit is a compare and a load; misses go through cpu_read_lin /
 * cpu_write_lin.
 */
#define MMU_DEF_INLINE(bits)                                                               \
	static inline uint##bits##_t mmu_read##bits(struct cpu *cpu, int seg, uint64_t off)  \
	{                                                                                  \
		uint64_t lin = mmu_linear(cpu, seg, off, bits / 8, false);                 \
		void *p = mmu_fast_r(cpu, lin, bits / 8);                                  \
		uint##bits##_t v;                                                          \
		if (__builtin_expect(p != NULL, 1))                                        \
			memcpy(&v, p, sizeof(v));                                          \
		else                                                                       \
			cpu_read_lin(cpu, lin, &v, sizeof(v), false);                      \
		return v;                                                                  \
	}                                                                                  \
	static inline void mmu_write##bits(struct cpu *cpu, int seg, uint64_t off,         \
					   uint##bits##_t v)                               \
	{                                                                                  \
		uint64_t lin = mmu_linear(cpu, seg, off, bits / 8, true);                  \
		void *p = mmu_fast_w(cpu, lin, bits / 8);                                  \
		if (__builtin_expect(p != NULL, 1))                                        \
			memcpy(p, &v, sizeof(v));                                          \
		else                                                                       \
			cpu_write_lin(cpu, lin, &v, sizeof(v), false);                     \
	}
MMU_DEF_INLINE(8)
MMU_DEF_INLINE(16)
MMU_DEF_INLINE(32)
MMU_DEF_INLINE(64)
#undef MMU_DEF_INLINE

#endif
