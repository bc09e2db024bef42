/* Decoded blocks (cache.c), as the run loop (run.c) sees them. */
#ifndef EMBER_CPU_BLOCK_H
#define EMBER_CPU_BLOCK_H

#include <stdatomic.h>
#include <stdint.h>

#include "cpu/insn.h"

#define BLOCK_MAX_INSNS 64

struct cpu_block {
	struct cpu_block *next;	     /* hash chain */
	uint64_t gpa;		     /* guest-physical address of the first byte */
	const _Atomic uint32_t *genp; /* the page's write generation, NULL: not cached */
	uint32_t gen;		     /* ... when decoded */
	uint8_t code_bits;
	uint16_t n;
	struct cpu_block *succ;	     /* the block that ran after this one last time */
	uint64_t succ_lin;	     /* ... and its linear address */
	struct insn insn[];
};

struct cpu_block_cache *block_cache_new(void);
void block_cache_free(struct cpu_block_cache *bc);
/* Moves when the code map's epoch is newer than this cache's (TLB flush due). */
bool block_cache_epoch_changed(struct cpu *cpu);
/* The block starting at linear address lin (decoded now if needed); may fault. */
struct cpu_block *block_get(struct cpu *cpu, uint64_t lin);

/*
 * The block at lin after `prev` ran (NULL: none): prev's remembered successor
 * when the TLB still maps lin to it (64-bit code), else block_get(). prev
 * must be a block this function or block_get returned since the last flush.
 */
struct cpu_block *block_next(struct cpu *cpu, struct cpu_block *prev, uint64_t lin);

static inline bool block_stale(const struct cpu_block *b)
{
	return b->genp && atomic_load_explicit(b->genp, memory_order_relaxed) != b->gen;
}

#endif
