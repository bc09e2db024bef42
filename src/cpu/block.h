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
	struct cpu_block *succ[2];   /* the blocks that ran after this one lately */
	uint64_t succ_lin[2];	     /* ... and their linear addresses */
	struct insn insn[];
};

struct cpu_block_cache *block_cache_new(void);
void block_cache_free(struct cpu_block_cache *bc);
/* Moves when the code map's epoch is newer than this cache's (TLB flush due). */
bool block_cache_epoch_changed(struct cpu *cpu);
/* The block starting at linear address lin (decoded now if needed); may fault. */
struct cpu_block *block_get(struct cpu *cpu, uint64_t lin);

/* block_next's other half: block_get(), remembered as prev's successor. */
struct cpu_block *block_next_slow(struct cpu *cpu, struct cpu_block *prev, uint64_t lin);

static inline bool block_stale(const struct cpu_block *b)
{
	return b->genp && atomic_load_explicit(b->genp, memory_order_relaxed) != b->gen;
}

/*
 * The block at lin after `prev` ran (NULL: none): prev's remembered successor
 * when the TLB still maps lin to it (64-bit code), else block_get(). prev
 * must be a block this function or block_get returned since the last flush.
 * Inline: the remembered successor is the common case between blocks.
 */
static inline struct cpu_block *block_next(struct cpu *cpu, struct cpu_block *prev, uint64_t lin)
{
	if (prev && cpu->code_bits == 64) {
		struct cpu_block *b = prev->succ_lin[0] == lin ? prev->succ[0]
				      : prev->succ_lin[1] == lin ? prev->succ[1] : NULL;
		if (b && b->code_bits == 64 && !block_stale(b)) {
			const struct tlb_entry *e =
				&cpu->tlb[cpu->cpl == 3][(lin >> 12) & (TLB_SIZE - 1)];
			if (e->tag_x == (lin & ~0xfffULL) && (e->gpa | (lin & 0xfff)) == b->gpa)
				return b;
		}
	}
	return block_next_slow(cpu, prev, lin);
}

/* The handler to cache for a decoded instruction: a specialised one for the
 * hottest forms (exec_fast.c), else in->fn. */
insn_handler exec_int_specialize(const struct insn *in, unsigned code_bits);

#endif
