/*
 * ACPI sleep control and status registers of a hardware-reduced ACPI
 * machine (FADT SLEEP_CONTROL_REG / SLEEP_STATUS_REG), 8 bits each at
 * LAYOUT_PORT_SLEEP_CTL and LAYOUT_PORT_SLEEP_STS: the board registers one
 * range of SLEEP_NR_PORTS ports at LAYOUT_PORT_SLEEP_CTL.
 *
 * Writing SLP_EN with SLP_TYP == LAYOUT_SLP_TYP_S5 calls poweroff() (every
 * time: the board makes it idempotent). Other sleep states are not
 * supported: the request is logged and the machine "wakes" at once by
 * setting WAK_STS, because Linux's acpi_hw_extended_sleep() spins reading
 * the status register until WAK_STS is 1 and would otherwise hang. WAK_STS
 * is write-1-to-clear; every other status bit reads 0.
 *
 * poweroff() is called without the device lock.
 */
#ifndef EMBER_VMM_DEV_SLEEP_H
#define EMBER_VMM_DEV_SLEEP_H

#include <pthread.h>
#include <stdint.h>

#include "core/log.h"
#include "vmm/bus.h"

#define SLEEP_NR_PORTS 2 /* control, then status */
#define SLEEP_CTL_SLP_EN 0x20
#define SLEEP_CTL_SLP_TYP_SHIFT 2
#define SLEEP_CTL_SLP_TYP_MASK 0x1c
#define SLEEP_STS_WAK 0x80

struct sleep_config {
	void (*poweroff)(void *ctx);
	void *ctx;
};

struct sleep {
	pthread_mutex_t lock; /* guards status */
	struct sleep_config cfg;
	uint8_t status;
	struct ratelimit rl;
};

extern const struct bus_dev_ops sleep_ops;

int sleep_init(struct sleep *sl, const struct sleep_config *cfg);
void sleep_destroy(struct sleep *sl);

#endif
