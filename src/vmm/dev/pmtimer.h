/*
 * The ACPI power-management timer: a free-running 24-bit counter at
 * 3.579545 MHz, read as 32 bits (bits 24-31 zero) at LAYOUT_PORT_PM_TMR.
 * The FADT names it in its legacy PM_TMR_BLK field only (acpi.c):
 * kvm-unit-tests' vmexit test reads that field; ACPICA ignores it on a
 * hardware-reduced machine, so Linux keeps its clocksources.
 *
 * Immutable after pmtimer_init() (the count comes from CLOCK_MONOTONIC),
 * so it needs no lock. Writes are ignored.
 */
#ifndef EMBER_VMM_DEV_PMTIMER_H
#define EMBER_VMM_DEV_PMTIMER_H

#include <stdint.h>

#include "vmm/bus.h"

#define PMTIMER_HZ 3579545ULL
#define PMTIMER_NR_PORTS 4
#define PMTIMER_MASK 0xffffffu

struct pmtimer {
	uint64_t start_ns; /* CLOCK_MONOTONIC at init: the count starts at 0 */
};

extern const struct bus_dev_ops pmtimer_ops;

void pmtimer_init(struct pmtimer *pt);

/* The counter at CLOCK_MONOTONIC time now_ns (for tests). */
uint32_t pmtimer_count_at(const struct pmtimer *pt, uint64_t now_ns);

#endif
