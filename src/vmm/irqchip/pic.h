/*
 * The two cascaded 8259A PICs (master IRQ 0-7 at 0x20, slave IRQ 8-15 at
 * 0xa0 on the master's IRQ 2) and the ELCR (0x4d0/0x4d1: level triggering
 * per IRQ). Plain state under the irqchip's lock; the irqchip reads the
 * master's INTR output with pic_output() after each change.
 */
#ifndef EMBER_VMM_IRQCHIP_PIC_H
#define EMBER_VMM_IRQCHIP_PIC_H

#include <stdbool.h>
#include <stdint.h>

struct pic_chip {
	uint8_t irr, imr, isr;
	uint8_t last_irr; /* input levels, for edge detection */
	uint8_t elcr, elcr_mask;
	uint8_t priority_add; /* rotation: the IRQ of highest priority */
	uint8_t irq_base;
	uint8_t init_state; /* 0 ready, 1 wants ICW2, 2 ICW3, 3 ICW4 */
	bool init4, single_mode;
	bool read_isr, poll, special_mask;
	bool auto_eoi, rotate_on_auto_eoi, special_fully_nested;
	bool master;
};

struct pic {
	struct pic_chip chip[2]; /* master, slave */
};

void pic_init(struct pic *p);
/* ISA IRQ 0-15 input level. */
void pic_set_irq(struct pic *p, uint32_t irq, int level);
/* The master's INTR output. */
bool pic_output(struct pic *p);
/* INTA cycle: the vector (spurious IRQ 7 / 15 if nothing is pending). */
uint8_t pic_intack(struct pic *p);
/* chip 0 master, 1 slave; port 0 or 1. */
uint8_t pic_port_read(struct pic *p, int chip, uint32_t port);
void pic_port_write(struct pic *p, int chip, uint32_t port, uint8_t val);
uint8_t pic_elcr_read(struct pic *p, int chip);
void pic_elcr_write(struct pic *p, int chip, uint8_t val);

#endif
