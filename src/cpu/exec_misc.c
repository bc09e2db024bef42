/*
 * Data movement and the small integer instructions: mov forms, lea,
 * movzx/movsx, setcc/cmovcc, flag instructions, BCD adjusts, conversions,
 * xlat, nops and fences. exec_int_register() registers every integer file.
 */
#include "cpu/exec_int.h"

/* ---- mov ---- */

HANDLER(h_mov_eg) /* 88 89 */
{
	unsigned size = size_w(in);
	rm_write(cpu, in, greg_read(cpu, in, in->reg, size), size);
}

HANDLER(h_mov_ge) /* 8a 8b */
{
	unsigned size = size_w(in);
	greg_write(cpu, in, in->reg, rm_read(cpu, in, size), size);
}

HANDLER(h_mov_ei) /* c6 c7 /0 */
{
	if (in->reg & 7)
		cpu_fault(cpu, EXC_UD, 0); /* xabort / xbegin: no RTM */
	unsigned size = size_w(in);
	rm_write(cpu, in, in->imm, size);
}

HANDLER(h_mov_r8i) /* b0+r */
{
	greg_write(cpu, in, in->rm, in->imm, 1);
}

HANDLER(h_mov_ri) /* b8+r */
{
	reg_write(cpu, in->rm, in->imm, in->opsize);
}

HANDLER(h_mov_moffs) /* a0..a3 */
{
	unsigned size = (in->op & 1) ? in->opsize : 1;
	uint64_t off = in->imm;
	if (in->op < 0xa2)
		reg_write(cpu, R_RAX, cpu_read_sz(cpu, in->ea_seg, off, size), size);
	else
		cpu_write_sz(cpu, in->ea_seg, off, reg_read(cpu, R_RAX, size), size);
}

HANDLER(h_lea) /* 8d */
{
	if (in->mod == 3)
		cpu_fault(cpu, EXC_UD, 0);
	reg_write(cpu, in->reg, ea_of(cpu, in), in->opsize);
}

HANDLER(h_movzx) /* 0f b6 b7 */
{
	unsigned src = in->op & 1 ? 2 : 1;
	reg_write(cpu, in->reg, rm_read(cpu, in, src), in->opsize);
}

HANDLER(h_movsx) /* 0f be bf */
{
	unsigned src = in->op & 1 ? 2 : 1;
	reg_write(cpu, in->reg, (uint64_t)sz_sext(rm_read(cpu, in, src), src), in->opsize);
}

HANDLER(h_movsxd_arpl) /* 63 */
{
	if (cpu->code_bits == 64) {
		uint64_t v = rm_read(cpu, in, 4);
		reg_write(cpu, in->reg, in->opsize == 8 ? (uint64_t)(int64_t)(int32_t)v : v, in->opsize);
		return;
	}
	if (!(cpu->cr0 & CR0_PE) || (cpu->rflags & FL_VM))
		cpu_fault(cpu, EXC_UD, 0);
	/* arpl Ew, Gw */
	uint64_t d = rm_read(cpu, in, 2), s = reg_read(cpu, in->reg, 2);
	bool adj = (d & 3) < (s & 3);
	if (adj)
		rm_write(cpu, in, (d & ~3ULL) | (s & 3), 2);
	flags_put(cpu, FL_ZF, adj);
}

/* ---- conditions ---- */

HANDLER(h_setcc) /* 0f 90..9f */
{
	rm_write(cpu, in, cond(cpu, in->op & 15), 1);
}

HANDLER(h_cmovcc) /* 0f 40..4f */
{
	unsigned size = in->opsize;
	uint64_t v = rm_read(cpu, in, size); /* read (and fault) either way */
	if (cond(cpu, in->op & 15))
		reg_write(cpu, in->reg, v, size);
	else if (size == 4)
		cpu->gpr[in->reg] = (uint32_t)cpu->gpr[in->reg];
}

/* ---- flags ---- */

HANDLER(h_flagop) /* f5 f8 f9 fc fd */
{
	(void)in;
	switch (in->op) {
	case 0xf5: flags_put(cpu, FL_CF, !flag_cf(cpu)); break;
	case 0xf8: flags_put(cpu, FL_CF, false); break;
	case 0xf9: flags_put(cpu, FL_CF, true); break;
	case 0xfc: cpu->rflags &= ~FL_DF; break;
	case 0xfd: cpu->rflags |= FL_DF; break;
	}
}

HANDLER(h_sahf) /* 9e */
{
	(void)in;
	uint64_t ah = (cpu->gpr[R_RAX] >> 8) & 0xff;
	flags_materialize(cpu);
	uint64_t keep = FL_CF | FL_PF | FL_AF | FL_ZF | FL_SF;
	cpu->rflags = (cpu->rflags & ~keep) | (ah & keep);
}

HANDLER(h_lahf) /* 9f */
{
	(void)in;
	uint64_t f = (cpu_get_rflags(cpu) & (FL_CF | FL_PF | FL_AF | FL_ZF | FL_SF)) | 2;
	cpu->gpr[R_RAX] = (cpu->gpr[R_RAX] & ~0xff00ULL) | (f << 8);
}

/* ---- conversions ---- */

HANDLER(h_cbw) /* 98: cbw / cwde / cdqe */
{
	unsigned size = in->opsize;
	uint64_t v = reg_read(cpu, R_RAX, size / 2);
	reg_write(cpu, R_RAX, (uint64_t)sz_sext(v, size / 2), size);
}

HANDLER(h_cwd) /* 99: cwd / cdq / cqo */
{
	unsigned size = in->opsize;
	bool neg = reg_read(cpu, R_RAX, size) & sz_sign(size);
	reg_write(cpu, R_RDX, neg ? ~0ULL : 0, size);
}

HANDLER(h_xlat) /* d7 */
{
	uint64_t a = cpu->gpr[R_RBX] + (uint8_t)cpu->gpr[R_RAX];
	a = in->adsize == 8 ? a : in->adsize == 4 ? (uint32_t)a : (uint16_t)a;
	reg_write(cpu, R_RAX, cpu_read8(cpu, in->ea_seg, a), 1);
}

/* ---- BCD (16/32-bit code only; the decoder rejects them in 64-bit) ---- */

static uint8_t al_get(const struct cpu *cpu) { return (uint8_t)cpu->gpr[R_RAX]; }
static uint8_t ah_get(const struct cpu *cpu) { return (uint8_t)(cpu->gpr[R_RAX] >> 8); }

HANDLER(h_daa_das) /* 27 2f */
{
	bool sub = in->op == 0x2f;
	uint64_t f = cpu_get_rflags(cpu);
	uint8_t al = al_get(cpu), old = al;
	bool cf = f & FL_CF, af = false;

	bool borrow = false;
	if ((al & 0xf) > 9 || (f & FL_AF)) {
		borrow = sub && al < 6; /* DAS: CF also takes the borrow of AL - 6 */
		al = sub ? al - 6 : al + 6;
		af = true;
	}
	if (old > 0x99 || cf) {
		al = sub ? al - 0x60 : al + 0x60;
		cf = true;
	} else {
		cf = borrow;
	}
	reg_write(cpu, R_RAX, al, 1);
	uint64_t nf = flags_szp(al, 1) | (cf ? FL_CF : 0) | (af ? FL_AF : 0);
	/* OF undefined: Intel CPUs leave the sign-change of the adjust. */
	flags_set_all(cpu, nf);
}

HANDLER(h_aaa_aas) /* 37 3f */
{
	bool sub = in->op == 0x3f;
	uint64_t f = cpu_get_rflags(cpu);
	uint16_t ax = (uint16_t)cpu->gpr[R_RAX];
	bool adj = (ax & 0xf) > 9 || (f & FL_AF);
	if (adj) {
		if (sub) {
			ax = (uint16_t)(ax - 6);
			/* AH - 1 wraps (unsigned: AH 0 becomes 0xff, no signed shift). */
			ax = (uint16_t)((ax & 0xffu) | ((((unsigned)ax >> 8) - 1u) & 0xffu) << 8);
		} else {
			ax = (uint16_t)(ax + 0x106);
		}
	}
	ax &= 0xff0f;
	reg_write(cpu, R_RAX, ax, 2);
	uint64_t nf = flags_szp(ax & 0xff, 1) & ~(FL_SF | FL_ZF | FL_PF);
	if (adj)
		nf |= FL_AF | FL_CF;
	flags_set_all(cpu, nf | (f & (FL_SF | FL_ZF | FL_PF | FL_OF)));
}

HANDLER(h_aam) /* d4 ib */
{
	uint8_t base = (uint8_t)in->imm, al = al_get(cpu);
	if (base == 0)
		cpu_fault(cpu, EXC_DE, 0);
	uint8_t q = al / base, r = al % base;
	reg_write(cpu, R_RAX, (uint64_t)r | ((uint64_t)q << 8), 2);
	flags_set_all(cpu, flags_szp(r, 1));
}

HANDLER(h_aad) /* d5 ib */
{
	uint8_t al = (uint8_t)(al_get(cpu) + ah_get(cpu) * (uint8_t)in->imm);
	reg_write(cpu, R_RAX, al, 2);
	flags_set_all(cpu, flags_szp(al, 1));
}

HANDLER(h_salc) /* d6 (undocumented) */
{
	(void)in;
	reg_write(cpu, R_RAX, flag_cf(cpu) ? 0xff : 0, 1);
}

HANDLER(h_bound) /* 62 (16/32-bit) */
{
	if (in->mod == 3)
		cpu_fault(cpu, EXC_UD, 0);
	unsigned size = in->opsize;
	uint64_t ea = ea_of(cpu, in);
	int64_t idx = sz_sext(reg_read(cpu, in->reg, size), size);
	int64_t lo = sz_sext(cpu_read_sz(cpu, in->ea_seg, ea, size), size);
	uint64_t ea2 = in->adsize == 4 ? (uint32_t)(ea + size) : (uint16_t)(ea + size);
	int64_t hi = sz_sext(cpu_read_sz(cpu, in->ea_seg, ea2, size), size);
	if (idx < lo || idx > hi)
		cpu_fault(cpu, EXC_BR, 0);
}

/* ---- nops, hints, fences ---- */

HANDLER(h_nop)
{
	(void)cpu;
	(void)in;
}

HANDLER(h_grp15) /* 0f ae: fences and clflush (the rest is the FPU's) */
{
	unsigned r = in->reg & 7;
	if (in->mod == 3 && in->mandatory == MP_NONE && r >= 5) {
		__atomic_thread_fence(__ATOMIC_SEQ_CST); /* lfence / mfence / sfence */
		return;
	}
	if (in->mod != 3 && r == 7 && (in->mandatory == MP_NONE || in->mandatory == MP_66)) {
		/* clflush / clflushopt: no caches to flush; checks the access. */
		(void)cpu_read8(cpu, in->ea_seg, ea_of(cpu, in));
		return;
	}
	if (in->mod != 3 && r == 6 && in->mandatory == MP_66) { /* clwb */
		(void)cpu_read8(cpu, in->ea_seg, ea_of(cpu, in));
		return;
	}
	cpu_fault(cpu, EXC_UD, 0);
}

/* ---- movbe, adcx, adox (0f 38) ---- */

HANDLER(h_movbe) /* 0f 38 f0 / f1 (none or 66) */
{
	unsigned size = in->opsize;
	if (in->mod == 3)
		cpu_fault(cpu, EXC_UD, 0);
	if (in->op == 0xf0) {
		uint64_t v = mem_read(cpu, in->ea_seg, ea_of(cpu, in), size);
		v = size == 8 ? __builtin_bswap64(v) : size == 4 ? __builtin_bswap32((uint32_t)v)
							: __builtin_bswap16((uint16_t)v);
		reg_write(cpu, in->reg, v, size);
	} else {
		uint64_t v = reg_read(cpu, in->reg, size);
		v = size == 8 ? __builtin_bswap64(v) : size == 4 ? __builtin_bswap32((uint32_t)v)
							: __builtin_bswap16((uint16_t)v);
		mem_write(cpu, in->ea_seg, ea_of(cpu, in), v, size);
	}
}

HANDLER(h_adcx_adox) /* 66 0f 38 f6 (adcx: CF) / f3 0f 38 f6 (adox: OF) */
{
	unsigned size = in->opsize == 8 ? 8 : 4;
	uint64_t bit = in->mandatory == MP_66 ? FL_CF : FL_OF;
	uint64_t a = reg_read(cpu, in->reg, size), b = rm_read(cpu, in, size);
	flags_materialize(cpu);
	uint64_t c = (cpu->rflags & bit) ? 1 : 0, m = sz_mask(size);
	uint64_t r = (a + b + c) & m;
	bool out = c ? r <= a : r < a;
	reg_write(cpu, in->reg, r, size);
	cpu->rflags = (cpu->rflags & ~bit) | (out ? bit : 0);
}

void exec_int_register(void)
{
	exec_alu_register();
	exec_ctrl_register();
	exec_string_register();
	exec_misc_register();
}

void exec_misc_register(void)
{
	reg_op(MAP_1B, 0x88, h_mov_eg);
	reg_op(MAP_1B, 0x89, h_mov_eg);
	reg_op(MAP_1B, 0x8a, h_mov_ge);
	reg_op(MAP_1B, 0x8b, h_mov_ge);
	reg_op(MAP_1B, 0xc6, h_mov_ei);
	reg_op(MAP_1B, 0xc7, h_mov_ei);
	for (unsigned o = 0; o < 8; o++) {
		reg_op(MAP_1B, 0xb0 + o, h_mov_r8i);
		reg_op(MAP_1B, 0xb8 + o, h_mov_ri);
	}
	for (unsigned o = 0xa0; o <= 0xa3; o++)
		reg_op(MAP_1B, o, h_mov_moffs);
	reg_op(MAP_1B, 0x8d, h_lea);
	reg_op(MAP_0F, 0xb6, h_movzx);
	reg_op(MAP_0F, 0xb7, h_movzx);
	reg_op(MAP_0F, 0xbe, h_movsx);
	reg_op(MAP_0F, 0xbf, h_movsx);
	reg_op(MAP_1B, 0x63, h_movsxd_arpl);
	for (unsigned o = 0; o < 16; o++) {
		reg_op(MAP_0F, 0x90 + o, h_setcc);
		reg_op(MAP_0F, 0x40 + o, h_cmovcc);
	}
	reg_op(MAP_1B, 0xf5, h_flagop);
	reg_op(MAP_1B, 0xf8, h_flagop);
	reg_op(MAP_1B, 0xf9, h_flagop);
	reg_op(MAP_1B, 0xfc, h_flagop);
	reg_op(MAP_1B, 0xfd, h_flagop);
	reg_op(MAP_1B, 0x9e, h_sahf);
	reg_op(MAP_1B, 0x9f, h_lahf);
	reg_op(MAP_1B, 0x98, h_cbw);
	reg_op(MAP_1B, 0x99, h_cwd);
	reg_op(MAP_1B, 0xd7, h_xlat);
	reg_op(MAP_1B, 0x27, h_daa_das);
	reg_op(MAP_1B, 0x2f, h_daa_das);
	reg_op(MAP_1B, 0x37, h_aaa_aas);
	reg_op(MAP_1B, 0x3f, h_aaa_aas);
	reg_op(MAP_1B, 0xd4, h_aam);
	reg_op(MAP_1B, 0xd5, h_aad);
	reg_op(MAP_1B, 0xd6, h_salc);
	reg_op(MAP_1B, 0x62, h_bound);
	/* 0f 18..1f: prefetch and hint nops (endbr64 included); 0f 0d prefetchw. */
	for (unsigned o = 0x18; o <= 0x1f; o++)
		reg_op(MAP_0F, o, h_nop);
	reg_op(MAP_0F, 0x0d, h_nop);
	reg_op(MAP_0F, 0xae, h_grp15);
	for (unsigned o = 0xf0; o <= 0xf1; o++) {
		cpu_dispatch[MAP_0F38][o][MP_NONE] = h_movbe;
		cpu_dispatch[MAP_0F38][o][MP_66] = h_movbe;
	}
	cpu_dispatch[MAP_0F38][0xf6][MP_66] = h_adcx_adox;
	cpu_dispatch[MAP_0F38][0xf6][MP_F3] = h_adcx_adox;
}
