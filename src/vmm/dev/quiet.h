/*
 * Ports that kernels without firmware probe on purpose and nothing else
 * uses: 0x80 (POST codes, Linux's io_delay) and 0xed (the alternative
 * delay port). Reads return a constant, writes are dropped, nothing is
 * logged. Immutable after quiet_init(), so it needs no lock; one struct may
 * back several ranges.
 */
#ifndef EMBER_VMM_DEV_QUIET_H
#define EMBER_VMM_DEV_QUIET_H

#include <stdint.h>

#include "vmm/bus.h"

#define QUIET_PORT_POST 0x80
#define QUIET_PORT_DELAY 0xed

struct quiet {
	uint8_t value; /* every byte read */
};

extern const struct bus_dev_ops quiet_ops;

/* value 0xff reads like an empty ISA bus. */
void quiet_init(struct quiet *q, uint8_t value);

#endif
