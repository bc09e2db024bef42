/*
 * The CPU benchmark's loops (bench/cpu.sh), one source for both sides: the
 * test guest's `action=bench-cpu` (tests/guest/bench_cpu.c) and the host's
 * native run (bench/cpubench_kernels.c, built with the guest's code
 * generation flags, driven by bench/cpubench.c). Freestanding: no libc, no
 * SSE (the guest is built -mgeneral-regs-only), so both sides run the same
 * integer instructions.
 *
 * Each kernel does its setup (filling its scratch memory) and then `n`
 * iterations of its loop, and returns a checksum that depends on every
 * iteration (the host compares the guest's with its own). Its hot loop is
 * alone in a noinline function (cpubench_*_loop), so bench/cpu.sh can count
 * the loop's instructions in the disassembly.
 *
 * Include it from exactly one translation unit (it defines the functions),
 * or define CPUBENCH_PROTOTYPES first for the declarations only.
 */
#ifndef EMBER_CPUBENCH_KERNELS_H
#define EMBER_CPUBENCH_KERNELS_H

#include <stdint.h>

/* copy: two 64 KiB halves, copied back and forth; n counts 8-byte words. */
#define CPUBENCH_COPY_WORDS 8192u
/* chase: a random single cycle over 1 MiB of 8-byte indices; n counts loads. */
#define CPUBENCH_CHASE_NODES 131072u
/* Scratch memory the kernels need (8-byte aligned, 4 KiB better). */
#define CPUBENCH_SCRATCH_BYTES (1u << 20)

#ifdef __clang__
#define CPUBENCH_NOINLINE __attribute__((noinline, used))
#else
#define CPUBENCH_NOINLINE __attribute__((noinline, noclone, used))
#endif

uint64_t cpubench_int(uint64_t n);
uint64_t cpubench_copy(uint64_t n, uint64_t *scratch);
uint64_t cpubench_chase(uint64_t n, uint64_t *scratch);
/* kind: "int", "copy" or "chase"; (uint64_t)-1 for anything else. */
uint64_t cpubench_run(const char *kind, uint64_t n, uint64_t *scratch);

#ifndef CPUBENCH_PROTOTYPES

/* int: a 64-bit LCG, xor-shift and add/sub chain: multiply, shifts, ALU. */
CPUBENCH_NOINLINE uint64_t cpubench_int_loop(uint64_t n)
{
	uint64_t a = 1, b = 0x9e3779b97f4a7c15ull, c = 0;

	for (uint64_t i = 0; i < n; i++) {
		a = a * 6364136223846793005ull + 1442695040888963407ull;
		b ^= a >> 29;
		c += (b << 7) - a;
	}
	return a ^ b ^ c;
}

uint64_t cpubench_int(uint64_t n)
{
	return cpubench_int_loop(n);
}

/* One pass of the copy loop: m words from src to dst. */
CPUBENCH_NOINLINE void cpubench_copy_loop(uint64_t *dst, const uint64_t *src, uint64_t m)
{
	for (uint64_t i = 0; i < m; i++)
		dst[i] = src[i];
}

uint64_t cpubench_copy(uint64_t n, uint64_t *scratch)
{
	uint64_t *a = scratch, *b = scratch + CPUBENCH_COPY_WORDS, sum = 0;

	for (uint64_t i = 0; i < CPUBENCH_COPY_WORDS; i++) {
		a[i] = (i + 1) * 0x9e3779b97f4a7c15ull;
		b[i] = 0;
	}
	/* Back and forth, each pass copying what the previous one wrote. */
	while (n) {
		uint64_t m = n < CPUBENCH_COPY_WORDS ? n : CPUBENCH_COPY_WORDS, *t;

		cpubench_copy_loop(b, a, m);
		b[0] += m; /* so no pass copies the same bytes as the one before */
		t = a, a = b, b = t;
		n -= m;
	}
	for (uint64_t i = 0; i < CPUBENCH_COPY_WORDS; i++)
		sum = sum * 31 + a[i] + b[i];
	return sum;
}

/* n dependent loads: p = next[p]. */
CPUBENCH_NOINLINE uint64_t cpubench_chase_loop(const uint64_t *next, uint64_t n)
{
	uint64_t p = 0;

	for (uint64_t i = 0; i < n; i++)
		p = next[p];
	return p;
}

uint64_t cpubench_chase(uint64_t n, uint64_t *scratch)
{
	uint64_t x = 88172645463325252ull;

	for (uint64_t i = 0; i < CPUBENCH_CHASE_NODES; i++)
		scratch[i] = i;
	/* Sattolo's shuffle: one cycle through every node (xorshift64). */
	for (uint64_t i = CPUBENCH_CHASE_NODES - 1; i > 0; i--) {
		uint64_t j, t;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		j = x % i;
		t = scratch[i], scratch[i] = scratch[j], scratch[j] = t;
	}
	return cpubench_chase_loop(scratch, n);
}

uint64_t cpubench_run(const char *kind, uint64_t n, uint64_t *scratch)
{
	if (kind[0] == 'i' && kind[1] == 'n' && kind[2] == 't' && !kind[3])
		return cpubench_int(n);
	if (kind[0] == 'c' && kind[1] == 'o' && kind[2] == 'p' && kind[3] == 'y' && !kind[4])
		return cpubench_copy(n, scratch);
	if (kind[0] == 'c' && kind[1] == 'h' && kind[2] == 'a' && kind[3] == 's' &&
	    kind[4] == 'e' && !kind[5])
		return cpubench_chase(n, scratch);
	return (uint64_t)-1;
}

#endif /* CPUBENCH_PROTOTYPES */
#endif
