#include "vmm/profile.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"

#define PROFILE_SLOTS (1u << 16) /* distinct addresses kept; a power of two */

int profile_start(struct profile *p, int signo)
{
	struct sigevent ev = {.sigev_notify = SIGEV_THREAD_ID, .sigev_signo = signo};
	struct itimerspec its = {.it_interval.tv_nsec = 1000000000L / PROFILE_HZ,
				 .it_value.tv_nsec = 1000000000L / PROFILE_HZ};

	memset(p, 0, sizeof(*p));
	if (!getenv("EMBER_PROFILE"))
		return 0;
	p->slots = calloc(PROFILE_SLOTS, sizeof(*p->slots));
	if (!p->slots)
		return -ENOMEM;
	ev._sigev_un._tid = gettid(); /* sigev_notify_thread_id: glibc 2.36 lacks the name */
	if (timer_create(CLOCK_THREAD_CPUTIME_ID, &ev, &p->timer) ||
	    timer_settime(p->timer, 0, &its, NULL)) {
		int e = errno;

		free(p->slots);
		p->slots = NULL;
		return -e;
	}
	p->on = true;
	return 0;
}

void profile_count(struct profile *p, uint64_t rip)
{
	/* Fibonacci hashing; linear probing. */
	size_t i = (size_t)((rip * 0x9e3779b97f4a7c15ull) >> 48) & (PROFILE_SLOTS - 1);

	p->samples++;
	for (size_t n = 0; n < PROFILE_SLOTS; n++, i = (i + 1) & (PROFILE_SLOTS - 1)) {
		if (p->slots[i].count && p->slots[i].rip == rip) {
			p->slots[i].count++;
			return;
		}
		if (!p->slots[i].count) {
			if (p->used >= PROFILE_SLOTS / 2)
				break; /* keep probes short: count it as dropped */
			p->slots[i] = (struct profile_slot){.rip = rip, .count = 1};
			p->used++;
			return;
		}
	}
	p->dropped++;
}

static int by_count_desc(const void *a, const void *b)
{
	const struct profile_slot *x = a, *y = b;

	return x->count < y->count ? 1 : x->count > y->count ? -1 : 0;
}

void profile_write(const struct profile *p, FILE *f)
{
	struct profile_slot *sorted = malloc(PROFILE_SLOTS * sizeof(*sorted));
	size_t n = 0;

	if (!sorted)
		return;
	for (size_t i = 0; i < PROFILE_SLOTS; i++)
		if (p->slots[i].count)
			sorted[n++] = p->slots[i];
	qsort(sorted, n, sizeof(*sorted), by_count_desc);
	fprintf(f, "# %llu samples at %d Hz of vCPU thread CPU time, %llu dropped\n",
		(unsigned long long)p->samples, PROFILE_HZ, (unsigned long long)p->dropped);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%llu 0x%llx\n", (unsigned long long)sorted[i].count,
			(unsigned long long)sorted[i].rip);
	free(sorted);
}

void profile_stop(struct profile *p, uint32_t vcpu_id)
{
	const char *base = getenv("EMBER_PROFILE");
	char path[4096];
	FILE *f;

	if (!p->on)
		return;
	timer_delete(p->timer);
	p->on = false;
	snprintf(path, sizeof(path), "%s.vcpu%u", base ? base : "ember-profile", vcpu_id);
	f = fopen(path, "w");
	if (f) {
		profile_write(p, f);
		fclose(f);
	} else {
		log_warn("profile: %s: %s", path, strerror(errno));
	}
	free(p->slots);
	p->slots = NULL;
}
