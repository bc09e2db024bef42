#include "vmm/dev/pmtimer.h"

#include <time.h>

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

uint32_t pmtimer_count_at(const struct pmtimer *pt, uint64_t ns)
{
	uint64_t d = ns - pt->start_ns;
	/* Seconds and the rest apart: no overflow for centuries of uptime. */
	uint64_t ticks =
	    (d / 1000000000ULL) * PMTIMER_HZ + (d % 1000000000ULL) * PMTIMER_HZ / 1000000000ULL;

	return (uint32_t)(ticks & PMTIMER_MASK);
}

static void pmtimer_read(void *opaque, uint64_t offset, uint8_t *data, uint32_t len)
{
	uint32_t v = pmtimer_count_at(opaque, now_ns());

	for (uint32_t i = 0; i < len; i++)
		data[i] = offset + i < 4 ? (uint8_t)(v >> (8 * (offset + i))) : 0xff;
}

static void pmtimer_write(void *opaque, uint64_t offset, const uint8_t *data, uint32_t len)
{
	(void)opaque;
	(void)offset;
	(void)data;
	(void)len;
}

const struct bus_dev_ops pmtimer_ops = {
    .read = pmtimer_read,
    .write = pmtimer_write,
};

void pmtimer_init(struct pmtimer *pt)
{
	pt->start_ns = now_ns();
}
