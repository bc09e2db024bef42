/* An interrupt line a device drives; the board wires it to KVM_IRQ_LINE. */
#ifndef EMBER_VMM_IRQ_H
#define EMBER_VMM_IRQ_H

#include <stdint.h>

struct irq_line {
	void (*set_level)(void *ctx, uint32_t gsi, int level);
	void *ctx;
	uint32_t gsi;
};

static inline void irq_set(const struct irq_line *irq, int level)
{
	if (irq->set_level)
		irq->set_level(irq->ctx, irq->gsi, level);
}

#endif
