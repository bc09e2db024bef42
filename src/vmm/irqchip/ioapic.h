/*
 * I/O APIC (82093AA, version 0x11): 24 pins, redirection table, edge and
 * level (remote IRR) triggering. Plain state under the irqchip's lock;
 * interrupts leave through deliver(). The pin level is the logical
 * assertion (asserted = 1) whatever the polarity bit says, as KVM's.
 */
#ifndef EMBER_VMM_IRQCHIP_IOAPIC_H
#define EMBER_VMM_IRQCHIP_IOAPIC_H

#include <stdbool.h>
#include <stdint.h>

#include "vmm/irqchip/lapic.h"

#define IOAPIC_PINS 24
#define IOAPIC_VERSION 0x00170011 /* max redirection entry 23, version 0x11 */

#define IOAPIC_REG_SEL 0x00
#define IOAPIC_REG_WIN 0x10
#define IOAPIC_REG_EOI 0x40

#define IOAPIC_RTE_MASKED (1ULL << 16)
#define IOAPIC_RTE_LEVEL (1ULL << 15)
#define IOAPIC_RTE_REMOTE_IRR (1ULL << 14)
#define IOAPIC_RTE_LOGICAL (1ULL << 11)

struct ioapic {
	uint32_t id;
	uint8_t sel;
	uint64_t rte[IOAPIC_PINS];
	uint32_t irr;	/* pending: edge seen / level asserted */
	uint32_t level; /* input line levels */
	/* Returns how many APICs accepted the message. */
	int (*deliver)(void *ctx, const struct apic_msg *m);
	void *ctx;
};

void ioapic_init(struct ioapic *io, uint32_t id,
		 int (*deliver)(void *ctx, const struct apic_msg *m), void *ctx);
void ioapic_set_irq(struct ioapic *io, uint32_t pin, int level);
/* EOI of vector (LAPIC broadcast or the EOI register): remote IRR clear, re-delivery. */
void ioapic_eoi(struct ioapic *io, uint8_t vector);
uint32_t ioapic_mmio_read32(struct ioapic *io, uint64_t offset);
void ioapic_mmio_write32(struct ioapic *io, uint64_t offset, uint32_t val, uint32_t len);

#endif
