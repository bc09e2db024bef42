#include "vmm/profile.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"

#define PROFILE_SLOTS (1u << 16) /* distinct addresses kept; a power of two */

static int table_init(struct profile_table *t)
{
	memset(t, 0, sizeof(*t));
	t->slots = calloc(PROFILE_SLOTS, sizeof(*t->slots));
	return t->slots ? 0 : -ENOMEM;
}

static void table_clear(struct profile_table *t)
{
	memset(t->slots, 0, PROFILE_SLOTS * sizeof(*t->slots));
	t->used = 0;
	t->samples = t->dropped = 0;
}

static void table_free(struct profile_table *t)
{
	free(t->slots);
	t->slots = NULL;
}

static double since(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) + (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

int profile_start(struct profile *p, uint32_t vcpu_id, int signo)
{
	struct sigevent ev = {.sigev_notify = SIGEV_THREAD_ID, .sigev_signo = signo};
	struct itimerspec its = {.it_interval.tv_nsec = 1000000000L / PROFILE_HZ,
				 .it_value.tv_nsec = 1000000000L / PROFILE_HZ};
	const char *base = getenv("EMBER_PROFILE");
	char path[4096];
	int ret;

	memset(p, 0, sizeof(*p));
	if (!base || !*base)
		return 0;
	snprintf(path, sizeof(path), "%s.vcpu%u", base, vcpu_id);
	p->out = fopen(path, "w");
	if (!p->out)
		return -errno;
	if (table_init(&p->total) || table_init(&p->slice)) {
		ret = -ENOMEM;
		goto err;
	}
	p->unit = "at " PROFILE_HZ_STR " Hz of vCPU thread CPU time";
	if (!signo) { /* the caller counts samples itself */
		p->unit = "one per fixed count of guest instructions";
		goto started;
	}
	p->timed = true;
	/* sigev_notify_thread_id: glibc 2.36 lacks the name. */
	ev._sigev_un._tid = gettid();
	if (timer_create(CLOCK_THREAD_CPUTIME_ID, &ev, &p->timer)) {
		ret = -errno;
		goto err;
	}
	if (timer_settime(p->timer, 0, &its, NULL)) {
		ret = -errno;
		timer_delete(p->timer);
		goto err;
	}
started:
	clock_gettime(CLOCK_MONOTONIC, &p->start);
	p->slice_start = p->start;
	p->on = true;
	return 0;
err:
	table_free(&p->total);
	table_free(&p->slice);
	fclose(p->out);
	p->out = NULL;
	return ret;
}

void profile_table_count(struct profile_table *t, uint64_t rip)
{
	/* Fibonacci hashing; linear probing. */
	size_t i = (size_t)((rip * 0x9e3779b97f4a7c15ull) >> 48) & (PROFILE_SLOTS - 1);

	t->samples++;
	for (size_t n = 0; n < PROFILE_SLOTS; n++, i = (i + 1) & (PROFILE_SLOTS - 1)) {
		if (t->slots[i].count && t->slots[i].rip == rip) {
			t->slots[i].count++;
			return;
		}
		if (!t->slots[i].count) {
			if (t->used >= PROFILE_SLOTS / 2)
				break; /* keep probes short: count it as dropped */
			t->slots[i] = (struct profile_slot){.rip = rip, .count = 1};
			t->used++;
			return;
		}
	}
	t->dropped++;
}

static int by_count_desc(const void *a, const void *b)
{
	const struct profile_slot *x = a, *y = b;

	return x->count < y->count ? 1 : x->count > y->count ? -1 : 0;
}

void profile_table_write(const struct profile_table *t, const char *title, const char *unit,
			 FILE *f)
{
	struct profile_slot *sorted = malloc(PROFILE_SLOTS * sizeof(*sorted));
	size_t n = 0;

	if (!sorted)
		return;
	for (size_t i = 0; i < PROFILE_SLOTS; i++)
		if (t->slots[i].count)
			sorted[n++] = t->slots[i];
	qsort(sorted, n, sizeof(*sorted), by_count_desc);
	fprintf(f, "# %s: %llu samples %s, %llu dropped\n", title, (unsigned long long)t->samples,
		unit, (unsigned long long)t->dropped);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%llu 0x%llx\n", (unsigned long long)sorted[i].count,
			(unsigned long long)sorted[i].rip);
	free(sorted);
}

static void slice_flush(struct profile *p, const struct timespec *now)
{
	char title[64];

	snprintf(title, sizeof(title), "slice %.0f-%.0f s", since(&p->start, &p->slice_start),
		 since(&p->start, now));
	profile_table_write(&p->slice, title, p->unit, p->out);
	fflush(p->out);
	table_clear(&p->slice);
	p->slice_start = *now;
}

void profile_count(struct profile *p, uint64_t rip)
{
	struct timespec now;

	profile_table_count(&p->total, rip);
	profile_table_count(&p->slice, rip);
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (since(&p->slice_start, &now) >= PROFILE_SLICE_S)
		slice_flush(p, &now);
}

void profile_stop(struct profile *p)
{
	struct timespec now;

	if (!p->on)
		return;
	if (p->timed)
		timer_delete(p->timer);
	p->on = false;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (p->slice.samples)
		slice_flush(p, &now);
	profile_table_write(&p->total, "total", p->unit, p->out);
	if (fclose(p->out))
		log_warn("profile: %s", strerror(errno));
	table_free(&p->total);
	table_free(&p->slice);
}
