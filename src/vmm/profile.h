/*
 * Guest RIP sampling, a developer's tool for finding where a slow guest
 * spends its time: with EMBER_PROFILE=PATH in the environment, each vCPU
 * thread arms a timer on its own CPU-time clock that interrupts KVM_RUN
 * PROFILE_HZ times a second; the guest RIP at each interruption is counted,
 * and PATH.vcpuN gets one "count rip" line per address, most frequent
 * first: a section for every PROFILE_SLICE_S seconds of wall time (so a
 * phase of a long boot can be told from the others), headed by
 * "# slice T", and one for the whole run when the thread ends, headed by
 * "# total". Off (and free) without the variable.
 */
#ifndef EMBER_VMM_PROFILE_H
#define EMBER_VMM_PROFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#define PROFILE_HZ 1000
#define PROFILE_HZ_STR "1000"
#define PROFILE_SLICE_S 20

struct profile_slot {
	uint64_t rip;
	uint64_t count;
};

struct profile_table {
	struct profile_slot *slots; /* open addressing, PROFILE_SLOTS entries */
	size_t used;
	uint64_t samples, dropped;
};

struct profile {
	bool on;
	bool timed;	  /* a CPU-time timer signals the thread (else the caller samples) */
	const char *unit; /* what one sample stands for, for the file's headings */
	timer_t timer;
	struct profile_table total, slice;
	FILE *out;
	struct timespec start, slice_start;
};

/* In the vCPU thread: opens EMBER_PROFILE.vcpu<id> and arms the timer (signo; 0: none,
 * the caller calls profile_count at its own sampling points) when the variable is set.
 * 0 or -errno. */
int profile_start(struct profile *p, uint32_t vcpu_id, int signo);
/* Counts one sample at rip (a full table drops it); writes out a slice when one is due. */
void profile_count(struct profile *p, uint64_t rip);
/* Counts one sample at rip in table t (a full table drops it). */
void profile_table_count(struct profile_table *t, uint64_t rip);
/* Writes t's counts, most first, under the heading line `title` (samples `unit`). */
void profile_table_write(const struct profile_table *t, const char *title, const char *unit,
			 FILE *f);
/* Disarms, writes the last slice and the total, closes and frees. */
void profile_stop(struct profile *p);

#endif
