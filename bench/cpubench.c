#define _GNU_SOURCE
/*
 * cpubench: the host's native run of the CPU benchmark's loops
 * (cpubench_kernels.h), for bench/cpu.sh.
 *
 *   cpubench KIND ITERS RUNS      KIND: int, copy or chase
 * runs KIND with ITERS iterations and with 0 (setup only) RUNS times each
 * (alternately) and prints one line:
 *   "native_ms=<median(ITERS) - median(0)> native_cpu_ms=<the same in CPU time>
 *    result=0x<checksum> runs=RUNS"
 * where the checksum is what the guest prints for the same ITERS.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CPUBENCH_PROTOTYPES
#include "cpubench_kernels.h"

#define MAX_RUNS 100

static double now_ms(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
	double full[MAX_RUNS], null[MAX_RUNS], cfull[MAX_RUNS], cnull[MAX_RUNS];
	uint64_t iters, result = 0;
	uint64_t *scratch;
	int runs;

	if (argc != 4) {
		fprintf(stderr, "usage: cpubench int|copy|chase ITERS RUNS\n");
		return 2;
	}
	iters = strtoull(argv[2], NULL, 10);
	runs = atoi(argv[3]);
	if (runs < 1 || runs > MAX_RUNS) {
		fprintf(stderr, "cpubench: RUNS: %s is not in 1..%d\n", argv[3], MAX_RUNS);
		return 2;
	}
	scratch = aligned_alloc(4096, CPUBENCH_SCRATCH_BYTES);
	if (!scratch || cpubench_run(argv[1], 0, scratch) == (uint64_t)-1) {
		fprintf(stderr, "cpubench: %s: not int, copy or chase\n", argv[1]);
		return 2;
	}
	for (int i = 0; i < runs; i++) {
		double t0 = now_ms(CLOCK_MONOTONIC), c0 = now_ms(CLOCK_PROCESS_CPUTIME_ID);

		cpubench_run(argv[1], 0, scratch);
		null[i] = now_ms(CLOCK_MONOTONIC) - t0;
		cnull[i] = now_ms(CLOCK_PROCESS_CPUTIME_ID) - c0;
		t0 = now_ms(CLOCK_MONOTONIC);
		c0 = now_ms(CLOCK_PROCESS_CPUTIME_ID);
		result = cpubench_run(argv[1], iters, scratch);
		full[i] = now_ms(CLOCK_MONOTONIC) - t0;
		cfull[i] = now_ms(CLOCK_PROCESS_CPUTIME_ID) - c0;
	}
	printf("native_ms=%.3f native_cpu_ms=%.3f result=0x%llx runs=%d\n",
	       median(full, runs) - median(null, runs), median(cfull, runs) - median(cnull, runs),
	       (unsigned long long)result, runs);
	return 0;
}
