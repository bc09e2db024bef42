/*
 * Guest RIP sampling, a developer's tool for finding where a slow guest
 * spends its time: with EMBER_PROFILE=PATH in the environment, each vCPU
 * thread arms a timer on its own CPU-time clock that interrupts KVM_RUN
 * PROFILE_HZ times a second; the guest RIP at each interruption is counted,
 * and when the thread ends PATH.vcpuN gets one "count rip" line per
 * address, most frequent first. Off (and free) without the variable.
 */
#ifndef EMBER_VMM_PROFILE_H
#define EMBER_VMM_PROFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#define PROFILE_HZ 1000

struct profile_slot {
	uint64_t rip;
	uint64_t count;
};

struct profile {
	bool on;
	timer_t timer;
	struct profile_slot *slots; /* open addressing, PROFILE_SLOTS entries */
	size_t used;
	uint64_t samples, dropped;
};

/* In the vCPU thread: arms the timer when EMBER_PROFILE is set. 0 or -errno. */
int profile_start(struct profile *p, int signo);
/* Counts one sample at rip (a full table drops it). */
void profile_count(struct profile *p, uint64_t rip);
/* Writes the counts, most first, to f. */
void profile_write(const struct profile *p, FILE *f);
/* Disarms, writes EMBER_PROFILE.vcpu<id> and frees. */
void profile_stop(struct profile *p, uint32_t vcpu_id);

#endif
