/*
 * Instruction decoder: bytes -> struct insn, for 16-, 32- and 64-bit code.
 * Table-driven: one entry per opcode of each map says whether it has a
 * ModRM byte, which immediate follows, and the opcode's mode quirks.
 */
#include <string.h>

#include "cpu/cpu.h"
#include "cpu/decode.h"
#include "cpu/insn.h"

/* Per-opcode attributes (uint16_t). */
#define M 0x0001      /* has ModRM */
#define I_SHIFT 1     /* immediate kind, bits 1..4 */
#define I_MASK 0x001e
#define INV64 0x0020  /* #UD in 64-bit mode */
#define DEF64 0x0040  /* operand size defaults to 64 in 64-bit mode */
#define F64 0x0080    /* operand size forced to 64 in 64-bit mode */
#define EOB 0x0100    /* ends a decoded block */
#define LK 0x0200     /* LOCK allowed (memory destination) */

enum {
	IM_NONE,
	IM_B,	  /* ib, zero-extended */
	IM_BS,	  /* ib, sign-extended */
	IM_W,	  /* iw */
	IM_Z,	  /* iz: 16 or 32 bits, sign-extended */
	IM_V,	  /* iv: 16, 32 or 64 bits (B8+r) */
	IM_ENTER, /* iw, ib */
	IM_FAR,	  /* ptr16:16 / ptr16:32 */
	IM_MOFFS, /* offset of address size */
	IM_GRP3B, /* F6: ib for /0 /1 */
	IM_GRP3Z, /* F7: iz for /0 /1 */
};
#define B (IM_B << I_SHIFT)
#define BS (IM_BS << I_SHIFT)
#define W (IM_W << I_SHIFT)
#define Z (IM_Z << I_SHIFT)
#define V (IM_V << I_SHIFT)
#define ENTER (IM_ENTER << I_SHIFT)
#define FAR (IM_FAR << I_SHIFT)
#define MOFFS (IM_MOFFS << I_SHIFT)
#define G3B (IM_GRP3B << I_SHIFT)
#define G3Z (IM_GRP3Z << I_SHIFT)

/* The 8 ALU ops 00..3F share a pattern: Eb,Gb Ev,Gv Gb,Eb Gv,Ev AL,ib eAX,iz. */
#define ALU(lk) M | (lk), M | (lk), M, M, B, Z

static const uint16_t tab_1b[256] = {
	/* 00 */ ALU(LK), INV64, INV64 | EOB,
	/* 08 */ ALU(LK), INV64, 0,
	/* 10 */ ALU(LK), INV64, INV64 | EOB,
	/* 18 */ ALU(LK), INV64, INV64,
	/* 20 */ ALU(LK), 0, INV64,
	/* 28 */ ALU(LK), 0, INV64,
	/* 30 */ ALU(LK), 0, INV64,
	/* 38 */ ALU(0), 0, INV64,
	/* 40 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	/* 50 */ DEF64, DEF64, DEF64, DEF64, DEF64, DEF64, DEF64, DEF64,
	/* 58 */ DEF64, DEF64, DEF64, DEF64, DEF64, DEF64, DEF64, DEF64,
	/* 60 */ INV64, INV64, M | INV64, M, 0, 0, 0, 0,
	/* 68 */ Z | DEF64, M | Z, BS | DEF64, M | BS, 0, 0, 0, 0,
	/* 70 */ BS | F64, BS | F64, BS | F64, BS | F64, BS | F64, BS | F64, BS | F64, BS | F64,
	/* 78 */ BS | F64, BS | F64, BS | F64, BS | F64, BS | F64, BS | F64, BS | F64, BS | F64,
	/* 80 */ M | B | LK, M | Z | LK, M | B | LK | INV64, M | BS | LK, M, M, M | LK, M | LK,
	/* 88 */ M, M, M, M, M, M, M | EOB, M | DEF64,
	/* 90 */ 0, 0, 0, 0, 0, 0, 0, 0,
	/* 98 */ 0, 0, FAR | INV64 | EOB, 0, DEF64, DEF64 | EOB, 0, 0,
	/* a0 */ MOFFS, MOFFS, MOFFS, MOFFS, 0, 0, 0, 0,
	/* a8 */ B, Z, 0, 0, 0, 0, 0, 0,
	/* b0 */ B, B, B, B, B, B, B, B,
	/* b8 */ V, V, V, V, V, V, V, V,
	/* c0 */ M | B, M | B, W | F64 | EOB, F64 | EOB, M | INV64, M | INV64, M | B, M | Z,
	/* c8 */ ENTER | DEF64, DEF64, W | EOB, EOB, EOB, B | EOB, INV64 | EOB, EOB,
	/* d0 */ M, M, M, M, B | INV64, B | INV64, INV64, 0,
	/* d8 */ M, M, M, M, M, M, M, M,
	/* e0 */ BS | F64, BS | F64, BS | F64, BS | F64, B, B, B, B,
	/* e8 */ Z | F64 | EOB, Z | F64 | EOB, FAR | INV64 | EOB, BS | F64 | EOB, 0, 0, 0, 0,
	/* f0 */ 0, EOB, 0, 0, EOB, 0, M | G3B | LK, M | G3Z | LK,
	/* f8 */ 0, 0, 0, EOB, 0, 0, M | LK, M | LK,
};

#define M8 M, M, M, M, M, M, M, M
#define M16 M8, M8

static const uint16_t tab_0f[256] = {
	/* 00 */ M | EOB, M | EOB, M, M, 0, EOB, EOB, EOB,
	/* 08 */ EOB, EOB, 0, EOB, 0, M, 0, 0,
	/* 10 */ M16,
	/* 20 */ M | EOB, M | EOB, M | EOB, M | EOB, 0, 0, 0, 0,
	/* 28 */ M8,
	/* 30 */ EOB, 0, 0, 0, EOB, EOB, 0, EOB,
	/* 38 */ 0, 0, 0, 0, 0, 0, 0, 0,
	/* 40 */ M16,
	/* 50 */ M16,
	/* 60 */ M16,
	/* 70 */ M | B, M | B, M | B, M | B, M, M, M, 0,
	/* 78 */ M, M, M, M, M, M, M, M,
	/* 80 */ Z | F64, Z | F64, Z | F64, Z | F64, Z | F64, Z | F64, Z | F64, Z | F64,
	/* 88 */ Z | F64, Z | F64, Z | F64, Z | F64, Z | F64, Z | F64, Z | F64, Z | F64,
	/* 90 */ M16,
	/* a0 */ DEF64, DEF64 | EOB, 0, M, M | B, M, 0, 0,
	/* a8 */ DEF64, DEF64 | EOB, EOB, M | LK, M | B, M, M, M,
	/* b0 */ M | LK, M | LK, M, M | LK, M, M, M, M,
	/* b8 */ M, M, M | B | LK, M | LK, M, M, M, M,
	/* c0 */ M | LK, M | LK, M | B, M, M | B, M | B, M | B, M | LK,
	/* c8 */ 0, 0, 0, 0, 0, 0, 0, 0,
	/* d0 */ M16,
	/* e0 */ M16,
	/* f0 */ M16,
};

static void exec_gp0(struct cpu *cpu, const struct insn *in)
{
	(void)in;
	cpu_fault(cpu, EXC_GP, 0);
}

/* Is LOCK allowed with this opcode and ModRM.reg? (memory destination checked by the caller) */
static bool lock_ok(unsigned map, unsigned op, unsigned attr, unsigned reg)
{
	if (!(attr & LK))
		return false;
	if (map == MAP_1B) {
		switch (op) {
		case 0x80: case 0x81: case 0x82: case 0x83:
			return reg != 7;
		case 0xf6: case 0xf7:
			return reg == 2 || reg == 3;
		case 0xfe: case 0xff:
			return reg <= 1;
		}
		return true;
	}
	if (op == 0xba)
		return reg >= 5;
	if (op == 0xc7)
		return reg == 1;
	return true;
}

uint64_t insn_ea(const struct cpu *cpu, const struct insn *in)
{
	return insn_ea_inline(cpu, in);
}

static uint64_t rd_le(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;
	memcpy(&v, p, n);
	return v;
}

/* Invalid: the #UD handler (or #GP for the 15-byte limit), length as far as known. */
static int bad(struct insn *in, unsigned len, insn_handler fn)
{
	in->fn = fn;
	in->len = len > 15 ? 15 : (uint8_t)(len ? len : 1);
	return -1;
}

int insn_decode(struct insn *in, const uint8_t *bytes, unsigned avail, unsigned code_bits)
{
	bool mode64 = code_bits == 64;
	unsigned pos = 0, last_rep = 0, rex = 0, pfx = 0;
	uint8_t seg = SEG_NONE;
	unsigned lim = avail < 15 ? avail : 15;

	memset(in, 0, sizeof(*in));
	in->base = in->index = EA_NONE;

/* Bytes [pos, pos+n) must exist: beyond 15 #GP, beyond avail "need more". */
#define NEED(n)                                                    \
	do {                                                       \
		if (pos + (n) > lim)                               \
			return pos + (n) > 15 ? bad(in, 15, exec_gp0) : 0; \
	} while (0)

	for (;;) {
		NEED(1);
		uint8_t b = bytes[pos];
		switch (b) {
		case 0xf0: pfx |= PFX_LOCK; break;
		case 0xf2: pfx |= PFX_REPNE; last_rep = 0xf2; break;
		case 0xf3: pfx |= PFX_REP; last_rep = 0xf3; break;
		case 0x66: pfx |= PFX_OPSZ; break;
		case 0x67: pfx |= PFX_ADSZ; break;
		case 0x26: if (!mode64) seg = SEG_ES; break;
		case 0x2e: if (!mode64) seg = SEG_CS; break;
		case 0x36: if (!mode64) seg = SEG_SS; break;
		case 0x3e: if (!mode64) seg = SEG_DS; break;
		case 0x64: seg = SEG_FS; break;
		case 0x65: seg = SEG_GS; break;
		default:
			if (mode64 && (b & 0xf0) == 0x40) {
				rex = b;
				pos++;
				continue;
			}
			goto opcode;
		}
		rex = 0; /* a REX not right before the opcode is ignored */
		pos++;
	}
opcode:;
	unsigned map = MAP_1B, op = bytes[pos++];
	const uint16_t *tab = tab_1b;
	uint16_t attr;
	if (op == 0x0f) {
		NEED(1);
		op = bytes[pos++];
		map = MAP_0F;
		tab = tab_0f;
		if (op == 0x38 || op == 0x3a) {
			map = op == 0x38 ? MAP_0F38 : MAP_0F3A;
			NEED(1);
			op = bytes[pos++];
		}
	}
	if (map == MAP_0F38)
		attr = M;
	else if (map == MAP_0F3A)
		attr = M | B;
	else
		attr = tab[op];

	if (rex) {
		pfx |= PFX_REX;
		in->rex = (uint8_t)rex;
	}
	in->map = (uint8_t)map;
	in->op = (uint8_t)op;
	in->seg = seg;
	if (map != MAP_1B) {
		if (last_rep == 0xf3)
			in->mandatory = MP_F3;
		else if (last_rep == 0xf2)
			in->mandatory = MP_F2;
		else if (pfx & PFX_OPSZ)
			in->mandatory = MP_66;
	}

	/* Operand and address size. */
	unsigned opsize, adsize;
	if (mode64) {
		adsize = (pfx & PFX_ADSZ) ? 4 : 8;
		if (rex & 8)
			opsize = 8;
		else if (attr & F64)
			opsize = 8;
		else if (pfx & PFX_OPSZ)
			opsize = 2;
		else
			opsize = (attr & DEF64) ? 8 : 4;
		if (attr & INV64) /* includes VEX c4/c5 and EVEX 62: not supported */
			return bad(in, pos, exec_ud);
	} else {
		bool big = code_bits == 32;
		opsize = (big ^ !!(pfx & PFX_OPSZ)) ? 4 : 2;
		adsize = (big ^ !!(pfx & PFX_ADSZ)) ? 4 : 2;
	}
	in->opsize = (uint8_t)opsize;
	in->adsize = (uint8_t)adsize;

	/* Register encoded in the opcode byte (push/pop/xchg/mov/bswap): rm. */
	in->rm = (uint8_t)((op & 7) | ((rex & 1) << 3));

	if (attr & M) {
		NEED(1);
		uint8_t modrm = bytes[pos++];
		unsigned mod = modrm >> 6, reg = (modrm >> 3) & 7, rm = modrm & 7;
		in->has_modrm = 1;
		in->mod = (uint8_t)mod;
		in->reg = (uint8_t)(reg | ((rex & 4) << 1));
		if (map == MAP_1B && !mode64 && mod == 3 &&
		    (op == 0xc4 || op == 0xc5 || op == 0x62))
			return bad(in, pos, exec_ud); /* VEX / EVEX */
		/* mov to/from CR/DR: always a register operand. */
		if (map == MAP_0F && op >= 0x20 && op <= 0x23)
			mod = in->mod = 3;
		if (mod == 3) {
			in->rm = (uint8_t)(rm | ((rex & 1) << 3));
		} else if (adsize == 2) {
			static const uint8_t b16[8] = { R_RBX, R_RBX, R_RBP, R_RBP, EA_NONE, EA_NONE, R_RBP, R_RBX };
			static const uint8_t i16[8] = { R_RSI, R_RDI, R_RSI, R_RDI, R_RSI, R_RDI, EA_NONE, EA_NONE };
			in->base = b16[rm];
			in->index = i16[rm];
			if (rm == 4 || rm == 5) { /* [si] / [di]: the register is the base */
				in->base = in->index;
				in->index = EA_NONE;
			}
			if (mod == 0 && rm == 6) {
				in->base = EA_NONE;
				NEED(2);
				in->disp = (int16_t)rd_le(bytes + pos, 2);
				pos += 2;
			} else if (mod == 1) {
				NEED(1);
				in->disp = (int8_t)bytes[pos++];
			} else if (mod == 2) {
				NEED(2);
				in->disp = (int16_t)rd_le(bytes + pos, 2);
				pos += 2;
			}
			in->ea_seg = in->base == R_RBP ? SEG_SS : SEG_DS;
		} else {
			unsigned base = rm | ((rex & 1) << 3);
			if (rm == 4) {
				NEED(1);
				uint8_t sib = bytes[pos++];
				unsigned idx = ((sib >> 3) & 7) | ((rex & 2) << 2);
				in->scale = sib >> 6;
				in->index = idx == 4 ? EA_NONE : (uint8_t)idx;
				base = (sib & 7) | ((rex & 1) << 3);
				if ((sib & 7) == 5 && mod == 0) {
					base = EA_NONE;
					NEED(4);
					in->disp = (int32_t)rd_le(bytes + pos, 4);
					pos += 4;
				}
			} else if (rm == 5 && mod == 0) {
				base = EA_NONE;
				in->rip_rel = mode64;
				NEED(4);
				in->disp = (int32_t)rd_le(bytes + pos, 4);
				pos += 4;
			}
			in->base = (uint8_t)base;
			if (mod == 1) {
				NEED(1);
				in->disp = (int8_t)bytes[pos++];
			} else if (mod == 2) {
				NEED(4);
				in->disp = (int32_t)rd_le(bytes + pos, 4);
				pos += 4;
			}
			in->ea_seg = (base == R_RSP || base == R_RBP) ? SEG_SS : SEG_DS;
		}
		if (seg != SEG_NONE)
			in->ea_seg = seg;

		/* Opcode-group quirks that depend on ModRM.reg. */
		if (map == MAP_1B && op == 0xff) {
			if (mode64 && (reg == 2 || reg == 4))
				in->opsize = 8;
			else if (mode64 && reg == 6 && !(rex & 8))
				in->opsize = (pfx & PFX_OPSZ) ? 2 : 8;
		}
		if ((pfx & PFX_LOCK) && (mod == 3 || !lock_ok(map, op, attr, reg)))
			return bad(in, pos, exec_ud);
	} else {
		in->ea_seg = seg != SEG_NONE ? seg : SEG_DS;
		if (pfx & PFX_LOCK)
			return bad(in, pos, exec_ud);
	}

	/* Immediates. */
	unsigned n;
	switch ((attr & I_MASK) >> I_SHIFT) {
	case IM_B:
		NEED(1);
		in->imm = bytes[pos++];
		break;
	case IM_BS:
		NEED(1);
		in->imm = (uint64_t)(int64_t)(int8_t)bytes[pos++];
		break;
	case IM_W:
		NEED(2);
		in->imm = rd_le(bytes + pos, 2);
		pos += 2;
		break;
	case IM_GRP3B:
		if ((in->reg & 7) > 1)
			break;
		NEED(1);
		in->imm = bytes[pos++];
		break;
	case IM_GRP3Z:
		if ((in->reg & 7) > 1)
			break;
		/* fall through */
	case IM_Z:
		n = in->opsize == 2 ? 2 : 4;
		NEED(n);
		in->imm = n == 2 ? (uint64_t)(int64_t)(int16_t)rd_le(bytes + pos, 2)
				 : (uint64_t)(int64_t)(int32_t)rd_le(bytes + pos, 4);
		pos += n;
		break;
	case IM_V:
		n = in->opsize;
		NEED(n);
		in->imm = rd_le(bytes + pos, n);
		pos += n;
		break;
	case IM_ENTER:
		NEED(3);
		in->imm = rd_le(bytes + pos, 2);
		in->imm2 = bytes[pos + 2];
		pos += 3;
		break;
	case IM_FAR:
		n = in->opsize == 2 ? 2 : 4;
		NEED(n + 2);
		in->imm = rd_le(bytes + pos, n);
		in->imm2 = (uint16_t)rd_le(bytes + pos + n, 2);
		pos += n + 2;
		break;
	case IM_MOFFS:
		n = adsize;
		NEED(n);
		in->imm = rd_le(bytes + pos, n);
		pos += n;
		break;
	}
#undef NEED

	in->pfx = (uint8_t)pfx;
	in->len = (uint8_t)pos;
	in->fn = cpu_dispatch[map][op][map == MAP_1B ? 0 : in->mandatory];
	return (int)pos;
}

bool insn_ends_block(const struct insn *in)
{
	if (in->map == MAP_1B) {
		if (in->op == 0xff)
			return (in->reg & 7) >= 2 && (in->reg & 7) <= 5;
		return (tab_1b[in->op] & EOB) != 0;
	}
	if (in->map == MAP_0F)
		return (tab_0f[in->op] & EOB) != 0;
	return false;
}
