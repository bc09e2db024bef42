/*
 * A decoded instruction, as the decoder (decode.c) leaves it in the block
 * cache: everything a handler needs without looking at the bytes again.
 *
 * Handlers: `void handler(struct cpu *cpu, const struct insn *in)`. On entry
 * cpu->rip is the instruction's address and cpu->next_rip the address after
 * it; a branch sets cpu->next_rip. A fault calls cpu_fault() and never
 * returns. Handlers are looked up by opcode (map, byte, mandatory prefix)
 * in the dispatch tables (dispatch.c), filled by each exec_*.c file's
 * register function.
 */
#ifndef EMBER_CPU_INSN_H
#define EMBER_CPU_INSN_H

#include <stdint.h>

#include "cpu/cpu.h"

struct insn;
typedef void (*insn_handler)(struct cpu *cpu, const struct insn *in);

/* Opcode maps. */
enum { MAP_1B, MAP_0F, MAP_0F38, MAP_0F3A, MAP_COUNT };

/* Prefix bits (insn.pfx). */
#define PFX_LOCK 0x01
#define PFX_REP 0x02   /* F3 */
#define PFX_REPNE 0x04 /* F2 */
#define PFX_OPSZ 0x08  /* 66 */
#define PFX_ADSZ 0x10  /* 67 */
#define PFX_REX 0x20   /* any REX prefix present (byte registers SPL..DIL) */
#define PFX_VEX 0x40

/* insn.mandatory: the SSE-style prefix that selects the operation. */
enum { MP_NONE, MP_66, MP_F3, MP_F2 };

struct insn {
	insn_handler fn;
	uint8_t len;	   /* bytes, 1..15 */
	uint8_t map;	   /* MAP_* */
	uint8_t op;	   /* opcode byte within the map */
	uint8_t pfx;	   /* PFX_* */
	uint8_t mandatory; /* MP_*: last of 66/F3/F2 (F3/F2 win over 66) for maps 0F.. */
	uint8_t opsize;	   /* operand size in bytes: 2, 4 or 8 (from mode, 66, REX.W) */
	uint8_t adsize;	   /* address size in bytes: 2, 4 or 8 */
	uint8_t seg;	   /* override prefix (SEG_*), or SEG_NONE */
	uint8_t rex;	   /* the REX byte, 0 if none (W R X B in bits 3..0) */

	/* ModRM, with REX already applied to reg and rm (0..15). */
	uint8_t has_modrm;
	uint8_t mod; /* 0..3; 3 = register operand */
	uint8_t reg; /* ModRM.reg | REX.R << 3 (group opcodes: /digit is reg & 7) */
	uint8_t rm;  /* mod == 3: register number (| REX.B << 3) */

	/* Memory operand (mod != 3): seg:[base + index * scale + disp]. */
	uint8_t base;	 /* register number, or EA_NONE */
	uint8_t index;	 /* register number, or EA_NONE */
	uint8_t scale;	 /* 0..3 (shift) */
	uint8_t ea_seg;	 /* effective segment: override, else DS or SS (BP/SP base) */
	uint8_t rip_rel; /* base is RIP: disp is relative to next_rip */
	int64_t disp;

	/* Immediates: imm (sign- or zero-extended as the opcode defines), imm2
	 * for the second one (enter's, far pointers' selector). */
	uint64_t imm;
	uint16_t imm2;

	/* VEX (if ever decoded): vvvv, L. */
	uint8_t vex_v, vex_l;
};

#define EA_NONE 0xff

/* The effective address (offset within ea_seg) of a memory operand. */
uint64_t insn_ea(const struct cpu *cpu, const struct insn *in);

/*
 * Decodes the instruction at linear address `rip` whose bytes are `bytes`
 * (up to `avail` valid, at most 15 needed). Fills *in and returns its length,
 * 0 when more bytes are needed than avail, or -1 for an invalid encoding
 * (the handler is then the #UD one). code_bits: 16, 32 or 64.
 */
int insn_decode(struct insn *in, const uint8_t *bytes, unsigned avail, unsigned code_bits);

/* Dispatch tables (dispatch.c): [map][opcode][mandatory prefix]. */
extern insn_handler cpu_dispatch[MAP_COUNT][256][4];
/* Each exec file fills its entries; dispatch_init calls them all once. */
void dispatch_init(void);
void exec_int_register(void);	 /* exec_alu.c, exec_ctrl.c, exec_string.c, ... */
void exec_sys_register(void);	 /* exec_sys.c */
void exec_fpu_register(void);	 /* exec_x87.c */
void exec_sse_register(void);	 /* exec_sse*.c */
/* The #UD handler: the entry every unset slot holds. */
void exec_ud(struct cpu *cpu, const struct insn *in);

#endif
