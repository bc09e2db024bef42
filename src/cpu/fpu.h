/*
 * x87 / SSE state helpers shared by exec_x87.c, exec_sse*.c and fpu.c:
 * the initial state, tag-word and stack bookkeeping, the FXSAVE/XSAVE
 * images, and the checks every x87/SSE/MMX instruction starts with.
 *
 * The struct cpu_fpu keeps st[i] = ST(i) (FXSAVE order) and the full tag
 * word by physical register; fpu_set_top() rotates st[] when TOP moves so
 * both stay true.
 */
#ifndef EMBER_CPU_FPU_H
#define EMBER_CPU_FPU_H

#include <stdbool.h>
#include <stdint.h>

#include "cpu/cpu.h"
#include "cpu/insn.h"

/* The state after FNINIT plus MXCSR 0x1f80 and cleared XMM registers
 * (RESET / INIT; cpu_reset calls this). */
void cpu_fpu_reset(struct cpu_fpu *fpu);

/*
 * CPUID bits the x87/MMX/SSE part implements completely, for the CPUID
 * model (the monitor's): leaf 1 EDX FPU, MMX, FXSR, SSE, SSE2; leaf 1 ECX
 * SSE3, SSSE3, SSE4.1, SSE4.2 (with CRC32; POPCNT is the integer part's),
 * XSAVE (OSXSAVE mirrors CR4); leaf 7 EBX bit 13 (FCS/FDS saved as 0);
 * leaf 0xD: XCR0 x87|SSE, 576-byte area, XSAVEOPT only (no XSAVEC/XSAVES);
 * AMD leaf 0x80000001 EDX MmxExt, MMX, FXSR (not FFXSR). Not implemented:
 * PCLMULQDQ, AES, AVX*, SSE4A, 3DNow!, MisAlignSse.
 */
#define FPU_CPUID1_EDX ((1u << 0) | (1u << 23) | (1u << 24) | (1u << 25) | (1u << 26))
#define FPU_CPUID1_ECX ((1u << 0) | (1u << 9) | (1u << 19) | (1u << 20) | (1u << 26))
#define FPU_CPUID7_EBX (1u << 13)
#define FPU_CPUID_D0_EAX 0x3u	   /* XCR0 bits supported */
#define FPU_CPUID_D0_SIZE 576u	   /* EBX (for XCR0 = 3) and ECX */
#define FPU_CPUID_D1_EAX 0x1u	   /* XSAVEOPT */
#define FPU_CPUID_80000001_EDX ((1u << 22) | (1u << 23) | (1u << 24))

/* FSW bits. */
#define FSW_IE 0x0001u
#define FSW_DE 0x0002u
#define FSW_ZE 0x0004u
#define FSW_OE 0x0008u
#define FSW_UE 0x0010u
#define FSW_PE 0x0020u
#define FSW_SF 0x0040u
#define FSW_ES 0x0080u
#define FSW_C0 0x0100u
#define FSW_C1 0x0200u
#define FSW_C2 0x0400u
#define FSW_TOP 0x3800u
#define FSW_C3 0x4000u
#define FSW_B 0x8000u
#define FSW_CC (FSW_C0 | FSW_C1 | FSW_C2 | FSW_C3)

/* Tags (2 bits per physical register). */
enum { TAG_VALID, TAG_ZERO, TAG_SPECIAL, TAG_EMPTY };

/* MXCSR. */
#define MXCSR_MASK 0xffffu /* the bits FXRSTOR/LDMXCSR accept (DAZ included) */
#define MXCSR_FLAGS 0x3fu
#define MXCSR_DAZ 0x40u
#define MXCSR_MASKS 0x1f80u

unsigned fpu_top(const struct cpu_fpu *f);
/* Makes TOP = top, rotating st[] so st[i] stays ST(i). */
void fpu_set_top(struct cpu_fpu *f, unsigned top);
unsigned fpu_tag(const struct cpu_fpu *f, unsigned i); /* of ST(i) */
void fpu_set_tag(struct cpu_fpu *f, unsigned i, unsigned tag);
unsigned fpu_classify(const uint8_t v[10]);
/* ES and B from the flags and the masks (after FLDCW, FLDENV, ...). */
void fpu_update_es(struct cpu_fpu *f);
/* Abridged (FXSAVE) tag byte, and the full word recomputed from it. */
uint8_t fpu_abridged_tw(const struct cpu_fpu *f);
void fpu_expand_tw(struct cpu_fpu *f, uint8_t abridged);

/*
 * Instruction prologues: #NM / #UD / #MF as the SDM orders them.
 * fpu_check_x87: wait=false for the FN* no-wait control instructions.
 * fpu_check_mmx: the checks of an MMX instruction; fpu_mmx_enter then
 * makes TOP 0 and all tags valid (what every MMX instruction but EMMS
 * does), once the instruction can no longer fault.
 */
void fpu_check_x87(struct cpu *cpu, bool wait);
void fpu_check_sse(struct cpu *cpu);
void fpu_check_mmx(struct cpu *cpu);
void fpu_mmx_enter(struct cpu *cpu);
/* An unmasked SIMD floating-point exception: #XM, or #UD without OSXMMEXCPT. */
_Noreturn void fpu_simd_fault(struct cpu *cpu);
/* #GP(0) unless the memory operand's linear address is `align`-aligned. */
void fpu_check_align(struct cpu *cpu, const struct insn *in, uint64_t ea, unsigned align);

/* FXSAVE, FXRSTOR, XSAVE(OPT), XRSTOR bodies (the 0F AE handler checks first). */
void fpu_fxsave(struct cpu *cpu, int seg, uint64_t ea, bool rex_w);
void fpu_fxrstor(struct cpu *cpu, int seg, uint64_t ea, bool rex_w);
void fpu_xsave(struct cpu *cpu, int seg, uint64_t ea, bool rex_w);
void fpu_xrstor(struct cpu *cpu, int seg, uint64_t ea, bool rex_w);

/*
 * SSE/MMX operand helpers (exec_sse.c) for the exec_sse*.c files.
 * sse_src: the ModRM.rm operand as `len` bytes (rest zeroed); aligned:
 * #GP(0) unless a memory operand is 16-byte aligned.
 */
void sse_src(struct cpu *cpu, const struct insn *in, union cpu_xmm *s, unsigned len,
	     bool aligned);
/* The ModRM.rm operand of an MMX instruction (register or m64); enters
 * MMX mode (fpu_mmx_enter) once read. */
uint64_t mmx_src(struct cpu *cpu, const struct insn *in);
/* The low 64 bits of ST(i): MMX register i once fpu_mmx_enter made TOP 0.
 * mmx_set also sets the exponent bits to all ones, as MMX writes do. */
void mmx_set(struct cpu *cpu, unsigned i, uint64_t v);
uint64_t mmx_get(struct cpu *cpu, unsigned i);
/* The SSE MXCSR flags an operation raised: set them, or fault (#XM/#UD)
 * without writing a result when one is unmasked. */
void sse_flags(struct cpu *cpu, uint32_t flags);

/* Each exec_sse*.c file's part of exec_sse_register(). */
void sse_int_register(void);
void sse_mov_register(void);
void sse_fp_register(void);
void sse4_register(void);
void sse42_register(void);

#endif
