/*
 * The fpu helper's test harness: a 64-bit guest on fake memory, and the
 * host CPU running the same instruction bytes (a small generated stub),
 * so x87/SSE/MMX results can be compared bit for bit.
 *
 * State travels as an FXSAVE image (x87, MMX, XMM, MXCSR) plus the
 * general registers and RFLAGS. RSI points at a data buffer on both sides
 * (DATA_GPA in the guest), so memory operands use [rsi].
 */
#ifndef EMBER_TEST_FAKE_FPU_H
#define EMBER_TEST_FAKE_FPU_H

#include <stdbool.h>
#include <stdint.h>

#include "cpu/cpu.h"

#define DATA_GPA 0x100000ULL
#define DATA_LEN 256
#define IMG_GPA 0x200000ULL

struct fstate {
	uint8_t fx[512] __attribute__((aligned(64)));
	uint64_t gpr[16];
	uint64_t rflags;
	uint8_t data[DATA_LEN] __attribute__((aligned(64)));
};

/* A fresh 64-bit guest (flat, paging identity, OSFXSR/OSXMMEXCPT/OSXSAVE). */
struct cpu *ff_guest(void);
void ff_free(void);

/* Runs one instruction (bytes, len) on the guest: -1, or the exception vector. */
int ff_exec(struct cpu *cpu, const uint8_t *bytes, unsigned len);

/* Runs bytes with state st: on the host (in place), and on the guest
 * (returns the guest's state / the exception vector in *vec). */
void ff_host(struct fstate *st, const uint8_t *bytes, unsigned len);
/* Did the last ff_host raise an unmasked SIMD exception (SIGFPE)? */
bool ff_host_faulted(void);
void ff_guest_run(struct cpu *cpu, struct fstate *st, const uint8_t *bytes, unsigned len, int *vec);

/* An FXSAVE image from fields (tags: abridged byte). */
void ff_image(struct fstate *st, uint16_t fcw, uint16_t fsw, uint8_t tag, uint32_t mxcsr);

/* Compares host vs guest state; fills why. */
bool ff_same(const struct fstate *h, const struct fstate *g, char *why, unsigned whylen);

/* A small deterministic PRNG. */
uint64_t ff_rand(uint64_t *s);

/* Random inputs: FF_X87 random x87 state (else the FNINIT one with
 * integer-ish MMX values), FF_MXCSR random rounding/DAZ/FTZ. */
#define FF_X87 1u
#define FF_MXCSR 2u
#define FF_UNMASK 4u /* with FF_MXCSR: some SIMD exceptions unmasked */
void ff_random(struct fstate *st, uint64_t *seed, unsigned flags);

/* Each instruction (hex bytes) `iters` times on random states, host vs
 * guest; prints the first mismatch of each and returns how many
 * instructions mismatched. */
unsigned ff_diff(const char *const *insns, unsigned n, unsigned iters, unsigned flags,
		 uint64_t seed);

#endif
