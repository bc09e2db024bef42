/* Decoder internals shared by the core's own files (decode.c, cache.c, exec_*.c). */
#ifndef EMBER_CPU_DECODE_H
#define EMBER_CPU_DECODE_H

#include <stdbool.h>

#include "cpu/insn.h"

/* Does this instruction end a decoded block (branch, system, serialising)? */
bool insn_ends_block(const struct insn *in);

static inline uint64_t insn_ea_inline(const struct cpu *cpu, const struct insn *in)
{
	uint64_t a = (uint64_t)in->disp;
	if (in->base != EA_NONE)
		a += cpu->gpr[in->base];
	if (in->index != EA_NONE)
		a += cpu->gpr[in->index] << in->scale;
	if (in->rip_rel)
		a += cpu->rip + in->len;
	if (in->adsize == 8)
		return a;
	return in->adsize == 4 ? (uint32_t)a : (uint16_t)a;
}

#endif
