/*
 * x87/SSE state: reset, stack and tag bookkeeping, instruction prologues,
 * FXSAVE/FXRSTOR and XSAVE/XRSTOR with XCR0 = x87 | SSE.
 */
#include <string.h>

#include "cpu/fpu.h"
#include "cpu/mem.h"

void cpu_fpu_reset(struct cpu_fpu *fpu)
{
	memset(fpu, 0, sizeof(*fpu));
	fpu->fcw = 0x37f;
	fpu->ftw = 0xffff;
	fpu->mxcsr = 0x1f80;
}

unsigned fpu_top(const struct cpu_fpu *f)
{
	return (f->fsw >> 11) & 7;
}

void fpu_set_top(struct cpu_fpu *f, unsigned top)
{
	unsigned d = (top - fpu_top(f)) & 7;
	if (d) {
		uint8_t tmp[8][10];
		memcpy(tmp, f->st, sizeof(tmp));
		for (unsigned i = 0; i < 8; i++)
			memcpy(f->st[i], tmp[(i + d) & 7], 10);
	}
	f->fsw = (uint16_t)((f->fsw & ~FSW_TOP) | ((top & 7) << 11));
}

unsigned fpu_tag(const struct cpu_fpu *f, unsigned i)
{
	unsigned p = (fpu_top(f) + i) & 7;
	return (f->ftw >> (2 * p)) & 3;
}

void fpu_set_tag(struct cpu_fpu *f, unsigned i, unsigned tag)
{
	unsigned p = (fpu_top(f) + i) & 7;
	f->ftw = (uint16_t)((f->ftw & ~(3u << (2 * p))) | ((tag & 3) << (2 * p)));
}

unsigned fpu_classify(const uint8_t v[10])
{
	uint64_t m;
	memcpy(&m, v, 8);
	unsigned e = (v[8] | v[9] << 8) & 0x7fff;
	if (e == 0)
		return m ? TAG_SPECIAL : TAG_ZERO; /* denormal or zero */
	if (e == 0x7fff || !(m >> 63))
		return TAG_SPECIAL; /* inf, NaN, unnormal */
	return TAG_VALID;
}

void fpu_update_es(struct cpu_fpu *f)
{
	if (f->fsw & ~f->fcw & 0x3f)
		f->fsw |= FSW_ES | FSW_B;
	else
		f->fsw &= (uint16_t)~(FSW_ES | FSW_B);
}

uint8_t fpu_abridged_tw(const struct cpu_fpu *f)
{
	uint8_t t = 0;
	for (unsigned p = 0; p < 8; p++)
		if (((f->ftw >> (2 * p)) & 3) != TAG_EMPTY)
			t |= (uint8_t)(1u << p);
	return t;
}

void fpu_expand_tw(struct cpu_fpu *f, uint8_t abridged)
{
	unsigned top = fpu_top(f);
	uint16_t tw = 0;
	for (unsigned p = 0; p < 8; p++) {
		unsigned tag = TAG_EMPTY;
		if (abridged & (1u << p))
			tag = fpu_classify(f->st[(p - top) & 7]);
		tw |= (uint16_t)(tag << (2 * p));
	}
	f->ftw = tw;
}

void fpu_check_x87(struct cpu *cpu, bool wait)
{
	if (cpu->cr0 & (CR0_EM | CR0_TS))
		cpu_fault(cpu, EXC_NM, 0);
	/* A pending unmasked exception: #MF (CR0.NE) at the next waiting
	 * instruction; without NE the FERR# line is not wired: ignore. */
	if (wait && (cpu->fpu.fsw & FSW_ES) && (cpu->cr0 & CR0_NE))
		cpu_fault(cpu, EXC_MF, 0);
}

void fpu_check_sse(struct cpu *cpu)
{
	if ((cpu->cr0 & CR0_EM) || !(cpu->cr4 & CR4_OSFXSR))
		cpu_fault(cpu, EXC_UD, 0);
	if (cpu->cr0 & CR0_TS)
		cpu_fault(cpu, EXC_NM, 0);
}

void fpu_check_mmx(struct cpu *cpu)
{
	if (cpu->cr0 & CR0_EM)
		cpu_fault(cpu, EXC_UD, 0);
	if (cpu->cr0 & CR0_TS)
		cpu_fault(cpu, EXC_NM, 0);
	if ((cpu->fpu.fsw & FSW_ES) && (cpu->cr0 & CR0_NE))
		cpu_fault(cpu, EXC_MF, 0);
}

void fpu_mmx_enter(struct cpu *cpu)
{
	fpu_set_top(&cpu->fpu, 0);
	cpu->fpu.ftw = 0;
}

_Noreturn void fpu_simd_fault(struct cpu *cpu)
{
	cpu_fault(cpu, (cpu->cr4 & CR4_OSXMMEXCPT) ? EXC_XM : EXC_UD, 0);
}

/* The linear address alignment checks use: segment base + offset. */
static uint64_t lin_addr(const struct cpu *cpu, int seg, uint64_t ea)
{
	if (cpu->long_mode && cpu->code_bits == 64 && seg != SEG_FS && seg != SEG_GS)
		return ea;
	return cpu->seg[seg].base + ea;
}

void fpu_check_align(struct cpu *cpu, const struct insn *in, uint64_t ea, unsigned align)
{
	if (lin_addr(cpu, in->ea_seg, ea) & (align - 1))
		cpu_fault(cpu, EXC_GP, 0);
}

/* ---- FXSAVE / FXRSTOR ---- */

static void put16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static uint16_t get16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t get64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

static unsigned nxmm(const struct cpu *cpu)
{
	return cpu->code_bits == 64 ? 16 : 8;
}

/* Bytes 0..23 and 32..159 (the x87 component). FCS/FDS are saved as 0
 * (CPUID.7.0:EBX[13], deprecated FPU CS/DS). */
static void x87_image(const struct cpu *cpu, uint8_t *img, bool rex_w)
{
	const struct cpu_fpu *f = &cpu->fpu;
	put16(img + 0, f->fcw);
	put16(img + 2, f->fsw);
	img[4] = fpu_abridged_tw(f);
	img[5] = 0;
	put16(img + 6, f->fop);
	if (rex_w) {
		put64(img + 8, f->fip);
		put64(img + 16, f->fdp);
	} else {
		put64(img + 8, (uint32_t)f->fip);
		put64(img + 16, (uint32_t)f->fdp);
	}
	for (unsigned i = 0; i < 8; i++) {
		memcpy(img + 32 + 16 * i, f->st[i], 10);
		memset(img + 42 + 16 * i, 0, 6);
	}
}

static void sse_image(const struct cpu *cpu, uint8_t *img)
{
	for (unsigned i = 0; i < nxmm(cpu); i++)
		memcpy(img + 160 + 16 * i, &cpu->fpu.xmm[i], 16);
}

static void mxcsr_image(const struct cpu *cpu, uint8_t *img)
{
	put32(img + 24, cpu->fpu.mxcsr);
	put32(img + 28, MXCSR_MASK);
}

static void load_x87(struct cpu *cpu, const uint8_t *img, bool rex_w)
{
	struct cpu_fpu *f = &cpu->fpu;
	f->fcw = get16(img + 0);
	f->fsw = get16(img + 2);
	f->fop = get16(img + 6) & 0x7ff;
	f->fip = rex_w ? get64(img + 8) : get32(img + 8);
	f->fdp = rex_w ? get64(img + 16) : get32(img + 16);
	for (unsigned i = 0; i < 8; i++)
		memcpy(f->st[i], img + 32 + 16 * i, 10);
	fpu_expand_tw(f, img[4]);
}

static void load_sse(struct cpu *cpu, const uint8_t *img)
{
	for (unsigned i = 0; i < nxmm(cpu); i++)
		memcpy(&cpu->fpu.xmm[i], img + 160 + 16 * i, 16);
}

static void init_x87(struct cpu_fpu *f)
{
	f->fcw = 0x37f;
	f->fsw = 0;
	f->ftw = 0xffff;
	f->fop = 0;
	f->fip = f->fdp = 0;
	memset(f->st, 0, sizeof(f->st));
}

static unsigned image_len(const struct cpu *cpu)
{
	return 160 + 16 * nxmm(cpu);
}

void fpu_fxsave(struct cpu *cpu, int seg, uint64_t ea, bool rex_w)
{
	uint8_t img[416];
	memset(img, 0, sizeof(img));
	x87_image(cpu, img, rex_w);
	mxcsr_image(cpu, img);
	sse_image(cpu, img);
	/* Bytes 416..511 are software's: never written. */
	cpu_write(cpu, seg, ea, img, image_len(cpu));
}

void fpu_fxrstor(struct cpu *cpu, int seg, uint64_t ea, bool rex_w)
{
	uint8_t img[416];
	cpu_read(cpu, seg, ea, img, image_len(cpu));
	uint32_t mxcsr = get32(img + 24);
	if (mxcsr & ~MXCSR_MASK)
		cpu_fault(cpu, EXC_GP, 0);
	load_x87(cpu, img, rex_w);
	cpu->fpu.mxcsr = mxcsr;
	load_sse(cpu, img);
}

/* ---- XSAVE / XRSTOR (standard format; components 0 and 1 only) ---- */

/* MXCSR belongs to components 1 (SSE) and 2 (AVX): saved/restored with either. */
static uint64_t rfbm(const struct cpu *cpu)
{
	uint64_t mask = (cpu->gpr[R_RDX] << 32) | (uint32_t)cpu->gpr[R_RAX];
	return mask & cpu->xcr0 & 3;
}

void fpu_xsave(struct cpu *cpu, int seg, uint64_t ea, bool rex_w)
{
	uint64_t rf = rfbm(cpu);
	uint8_t hdr[8];
	/* Check the whole area is writable before writing any of it. */
	cpu_linear(cpu, seg, ea, 576, true);
	cpu_read(cpu, seg, ea + 512, hdr, 8);
	uint64_t bv = get64(hdr);
	if (rf & 1) {
		uint8_t img[160];
		memset(img, 0, sizeof(img));
		x87_image(cpu, img, rex_w);
		cpu_write(cpu, seg, ea, img, 24);
		cpu_write(cpu, seg, ea + 32, img + 32, 128);
	}
	if (rf & 6) {
		uint8_t m[8];
		put32(m, cpu->fpu.mxcsr);
		put32(m + 4, MXCSR_MASK);
		cpu_write(cpu, seg, ea + 24, m, 8);
	}
	if (rf & 2) {
		uint8_t img[416];
		sse_image(cpu, img);
		cpu_write(cpu, seg, ea + 160, img + 160, 16 * nxmm(cpu));
	}
	/* XINUSE is allowed to be 1 for any component in RFBM. */
	bv = (bv & ~rf) | rf;
	put64(hdr, bv);
	cpu_write(cpu, seg, ea + 512, hdr, 8);
}

void fpu_xrstor(struct cpu *cpu, int seg, uint64_t ea, bool rex_w)
{
	uint8_t hdr[64];
	cpu_read(cpu, seg, ea + 512, hdr, 64);
	uint64_t bv = get64(hdr), comp = get64(hdr + 8);
	if ((bv & ~cpu->xcr0) || comp)
		cpu_fault(cpu, EXC_GP, 0);
	for (unsigned i = 16; i < 64; i++)
		if (hdr[i])
			cpu_fault(cpu, EXC_GP, 0);
	uint64_t rf = rfbm(cpu);
	uint8_t img[416];
	cpu_read(cpu, seg, ea, img, image_len(cpu));
	uint32_t mxcsr = get32(img + 24);
	if ((rf & 6) && (mxcsr & ~MXCSR_MASK))
		cpu_fault(cpu, EXC_GP, 0);
	if (rf & 1) {
		if (bv & 1)
			load_x87(cpu, img, rex_w);
		else
			init_x87(&cpu->fpu);
	}
	if (rf & 6)
		cpu->fpu.mxcsr = mxcsr;
	if (rf & 2) {
		if (bv & 2)
			load_sse(cpu, img);
		else
			memset(cpu->fpu.xmm, 0, 16 * nxmm(cpu));
	}
}
